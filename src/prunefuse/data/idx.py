"""IDX files (MNIST, Fashion-MNIST), gzipped or raw, with checks that catch truncation and mix-ups."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def find_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, magic: int, hint: str) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read ({e}); the file is damaged, {hint}") from None
    if len(raw) < 8:
        raise UserError(f"{path}: too short to be an IDX file; {hint}")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise UserError(f"{path}: wrong magic number {found:#010x} (expected {magic:#010x}); "
                        f"this is not the expected IDX file, {hint}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise UserError(f"{path}: holds {len(raw) - offset} bytes of data but its header says {expected}; "
                        f"the file is truncated, {hint}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def read_idx_split(directory: Path, split: str, hint: str) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = SPLIT_PREFIX[split]
    image_file = find_file(directory, f"{prefix}-images-idx3-ubyte")
    label_file = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    if image_file is None or label_file is None:
        raise UserError(f"{directory}: no {prefix}-images/labels IDX files; {hint}")
    images = read_idx(image_file, IMAGE_MAGIC, hint)
    labels = read_idx(label_file, LABEL_MAGIC, hint)
    if images.ndim != 3:
        raise UserError(f"{image_file}: expected N x H x W images, got shape {images.shape}; {hint}")
    if len(images) != len(labels):
        raise UserError(f"{directory}: {len(images)} images but {len(labels)} labels in the {split} split; "
                        f"the files do not belong together, {hint}")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def missing_idx_files(directory: str | os.PathLike) -> list[str]:
    """The four IDX files (``.gz`` or raw) that ``directory`` lacks."""
    d = Path(directory)
    stems = [f"{p}-{kind}-idx{n}-ubyte" for p in SPLIT_PREFIX.values() for kind, n in (("images", 3), ("labels", 1))]
    return [f"{s}[.gz]" for s in stems if not d.is_dir() or find_file(d, s) is None]


def has_idx_files(directory: str | os.PathLike) -> bool:
    return not missing_idx_files(directory)
