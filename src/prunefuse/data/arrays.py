"""``.npz`` arrays (``x`` images, ``y`` labels) and scikit-learn's bundled digits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError


def to_nchw_uint8(x: np.ndarray, source: str) -> torch.Tensor:
    """Accept N x H x W, N x H x W x C or N x C x H x W arrays of 8-bit values, or floats in [0, 1]
    (scaled by 255) or in [0, 255]; anything else (NaN, complex, out of range) is refused."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4:
        raise UserError(f"{source}: x must be N x H x W or N x H x W x C images, got shape {x.shape}")
    if len(x) == 0:
        raise UserError(f"{source}: x holds no images; save at least one image")
    if x.dtype != np.uint8:
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)) or x.dtype == np.bool_:
            raise UserError(f"{source}: x has dtype {x.dtype}; save images as uint8 (or floats in [0, 1])")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise UserError(f"{source}: x holds NaN or infinite pixel values; clean the images and save them again")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 255:
            raise UserError(f"{source}: pixel values span {lo:g}..{hi:g}; save 8-bit images (0..255), or floats "
                            "in [0, 1]")
        if np.issubdtype(x.dtype, np.floating) and hi <= 1.0:
            x = x * 255.0
        x = np.rint(x).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(x))


def to_labels(y: np.ndarray, source: str) -> torch.Tensor:
    """Integer class indices (-1 marks an unlabeled sample); floats only where they are whole numbers."""
    y = np.asarray(y).reshape(-1)
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise UserError(f"{source}: y has dtype {y.dtype}; save labels as integer class indices")
    if np.issubdtype(y.dtype, np.floating) and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise UserError(f"{source}: y holds labels that are not whole numbers (e.g. 1.7 or NaN); save integer "
                        "class indices")
    return torch.from_numpy(y.astype(np.int64))


def open_npz(file: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (never unpickled), with a one-line error for a damaged file."""
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise UserError(f"{file}: not a readable .npz ({e}); re-save it with numpy.savez") from None
    if "x" not in arrays:
        raise UserError(f"{file}: no array named 'x'; save images as x (and labels as y)")
    return arrays


def read_npz(path: Path, split: str):
    """``path`` is a file, or a folder with ``train.npz`` and ``test.npz``."""
    file = path / f"{split}.npz" if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"{file}: no such file; pass --data-dir with an .npz file or a folder holding "
                        "train.npz and test.npz")
    arrays = open_npz(file)
    images = to_nchw_uint8(arrays["x"], str(file))
    if "y" not in arrays:
        raise UserError(f"{file}: no array named 'y'; save the labels as y (class indices)")
    labels = to_labels(arrays["y"], str(file))
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    if classes is None:
        n = int(labels.max()) + 1 if labels.numel() and labels.max() >= 0 else 1
        classes = [str(i) for i in range(n)]
    return images, labels, classes


def fixed_split(labels: np.ndarray, split: str) -> np.ndarray:
    """The positions of ``split`` in a fixed 75/25 split (stratified where the classes allow it), for a
    source that ships one set of images: measured on its training images, every method would look better."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(labels))
    if len(positions) < 2:  # nothing to hold out; the checks downstream name the problem
        return positions
    try:
        train, test = train_test_split(positions, test_size=0.25, random_state=0, stratify=labels)
    except ValueError:  # a class with one sample, or more classes than test samples
        train, test = train_test_split(positions, test_size=0.25, random_state=0)
    return train if split == "train" else test


def read_digits(split: str):
    """The 8x8 digits shipped inside scikit-learn's wheel; a fixed stratified 75/25 split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    idx = fixed_split(digits.target, split)
    return to_nchw_uint8(x[idx], "digits"), torch.from_numpy(digits.target[idx].astype(np.int64)), \
        [str(i) for i in range(10)]
