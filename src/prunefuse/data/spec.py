"""Which dataset a command reads, and how: the same fields for every command that reads data."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError
from ..validation import check_number, check_seed
from .dataset import Dataset, check_trainable
from .registry import info, load


@dataclass
class DataSpec:
    name: str = "digits"
    data_dir: str | None = None
    download: bool = False
    subset: int | None = None  # keep this many training samples (a uniform random draw)
    seed: int = 0

    def __post_init__(self) -> None:
        info(self.name)
        if self.subset is not None:
            check_number("subset", self.subset, 1, integer=True)
        check_seed("seed", self.seed)

    def load(self) -> tuple[Dataset, Dataset]:
        """The training split (``subset`` of it, drawn with ``seed``) and the test split."""
        train = load(self.name, "train", self.data_dir, self.download)
        test = load(self.name, "test", self.data_dir, self.download)
        if self.subset is not None:
            if self.subset > len(train):
                raise UserError(f"--subset {self.subset} is out of range; the training split has {len(train)} samples")
            keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))[: self.subset]
            train = train.subset(keep.sort().values)
        check_trainable(train)
        check_trainable(test, "testing")
        return train, test
