"""The single in-memory form every reader produces, so training never touches per-sample Python."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import UserError


@dataclass
class Dataset:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64: N class indices, or N x K binary attributes (then ``classes`` names them)
    classes: list[str]
    name: str
    split: str
    ids: list[str] | None = field(default=None, repr=False)  # file paths or ids, where the source has them

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise UserError(
                f"{self.name}/{self.split}: images must be uint8 N x C x H x W, got {self.images.dtype} "
                f"with shape {tuple(self.images.shape)}; convert the data to 8-bit images"
            )
        if self.labels.dim() not in (1, 2) or len(self.labels) != len(self.images):
            raise UserError(
                f"{self.name}/{self.split}: {len(self.images)} images but {len(self.labels)} labels; "
                "the image and label files do not belong together, re-extract or re-download them"
            )
        self.labels = self.labels.long()
        if self.multilabel:
            if self.labels.shape[1] != len(self.classes) or self.labels.lt(0).any() or self.labels.gt(1).any():
                raise UserError(f"{self.name}/{self.split}: attribute labels must be 0/1, one column per attribute "
                                f"({len(self.classes)}); found shape {tuple(self.labels.shape)}")
        elif len(self.labels) and (self.labels.min() < -1 or self.labels.max() >= len(self.classes)):
            raise UserError(
                f"{self.name}/{self.split}: labels must lie in 0..{len(self.classes) - 1} (-1 for unlabeled), found "
                f"{int(self.labels.min())}..{int(self.labels.max())}; check the class list"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def multilabel(self) -> bool:
        """Binary attributes (several per image) rather than one class."""
        return self.labels.dim() == 2

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: torch.Tensor | list[int]) -> Dataset:
        idx = torch.as_tensor(indices, dtype=torch.long)
        ids = [self.ids[i] for i in idx.tolist()] if self.ids is not None else None
        return Dataset(self.images[idx], self.labels[idx], self.classes, self.name, self.split, ids)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in [0, 1], for normalisation."""
        x = self.images.float().div_(255)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return mean.tolist(), std.tolist()


def check_trainable(data: Dataset, purpose: str = "training") -> None:
    """A split a classifier can learn from: labeled samples of at least two classes."""
    if len(data) == 0:
        raise UserError(f"{data.name}/{data.split}: no samples to use for {purpose}; check the data")
    if (data.labels < 0).any():
        raise UserError(f"{data.name}/{data.split}: {int((data.labels < 0).sum())} samples have no label (-1); "
                        f"{purpose} needs a label for every sample")
    if purpose == "training" and not data.multilabel and len(data.labels.unique()) < 2:
        raise UserError(f"{data.name}/{data.split}: every sample has the same class; training needs at least two "
                        "classes")
