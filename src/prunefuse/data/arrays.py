"""``.npz`` arrays (``x`` images, ``y`` labels) and scikit-learn's bundled digits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError


def to_nchw_uint8(x: np.ndarray, source: str) -> torch.Tensor:
    """Accept N x H x W, N x H x W x C or N x C x H x W arrays, 8-bit or floats in [0, 1]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4:
        raise UserError(f"{source}: x must be N x H x W or N x H x W x C images, got shape {x.shape}")
    if x.dtype != np.uint8:
        if np.issubdtype(x.dtype, np.floating) and x.size and x.max() <= 1.0:
            x = x * 255.0
        x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(x))


def read_npz(path: Path, split: str):
    """``path`` is a file, or a folder with ``train.npz`` and ``test.npz``."""
    file = path / f"{split}.npz" if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"{file}: no such file; pass --data-dir with an .npz file or a folder holding "
                        "train.npz and test.npz")
    try:
        with np.load(file, allow_pickle=False) as z:
            if "x" not in z:
                raise UserError(f"{file}: no array named 'x'; save images as x (and labels as y)")
            x = z["x"]
            y = z.get("y")
            classes = [str(c) for c in z["classes"]] if "classes" in z else None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise UserError(f"{file}: not a readable .npz ({e}); re-save it with numpy.savez") from None
    images = to_nchw_uint8(x, str(file))
    if y is None:
        labels = torch.full((len(images),), -1, dtype=torch.long)
    else:
        labels = torch.from_numpy(np.asarray(y).astype(np.int64).reshape(-1))
    if classes is None:
        n = int(labels.max()) + 1 if labels.numel() and labels.max() >= 0 else 1
        classes = [str(i) for i in range(n)]
    return images, labels, classes


def read_digits(split: str):
    """The 8x8 digits shipped inside scikit-learn's wheel; a fixed stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    idx_train, idx_test = train_test_split(np.arange(len(x)), test_size=0.25, random_state=0,
                                           stratify=digits.target)
    idx = idx_train if split == "train" else idx_test
    return to_nchw_uint8(x[idx], "digits"), torch.from_numpy(digits.target[idx].astype(np.int64)), \
        [str(i) for i in range(10)]
