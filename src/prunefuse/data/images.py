"""Image files read with Pillow: the generic class-per-folder layout and Tiny-ImageNet-200."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def read_images(paths: list[Path], image_size: int | None = None) -> torch.Tensor:
    """Stack files into uint8 N x C x H x W; grey if every file is grey, else RGB; resized to
    ``image_size`` or, by default, to the most common size among the files."""
    from PIL import Image, UnidentifiedImageError

    opened = []
    for p in paths:
        try:
            img = Image.open(p)
            img.load()
        except (UnidentifiedImageError, OSError) as e:
            raise UserError(f"{p}: not a readable image ({e}); remove or replace the file") from None
        opened.append(img)
    mode = "L" if all(img.mode in ("L", "1", "I;16") for img in opened) else "RGB"
    if image_size:
        size = (image_size, image_size)
    else:
        size = Counter(img.size for img in opened).most_common(1)[0][0] if opened else (1, 1)
    arrays = []
    for img in opened:
        img = img.convert(mode)
        if img.size != size:
            img = img.resize(size, Image.BILINEAR)
        a = np.asarray(img, dtype=np.uint8)
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    if not arrays:
        return torch.zeros(0, 1 if mode == "L" else 3, size[1], size[0], dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays))


def split_folders(root: Path) -> list[str]:
    """The split folders under ``root``: those that hold class folders (a class called "train" holds images)."""
    return [s for s in ("train", "test") if (root / s).is_dir() and any(d.is_dir() for d in (root / s).iterdir())]


def read_image_folder(root: Path, split: str, image_size: int | None = None):
    """``root/<split>/<class>/*.png``, or ``root/<class>/*.png`` (the caller splits that)."""
    splits = split_folders(root) if root.is_dir() else []
    if splits and split not in splits:
        raise UserError(f"{root} has {splits[0]}/ but no {split}/; add {root / split}/<class>/<image>, or "
                        "put the class folders directly in the root to have a fixed 25% held out")
    base = root / split if splits else root
    if not base.is_dir():
        raise UserError(f"{base}: no such folder; pass --data-dir pointing at a folder with one subfolder per class")
    classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    if not classes:
        raise UserError(f"{base}: no class subfolders; arrange images as {base}/<class>/<image>.png")
    paths, labels = [], []
    for label, c in enumerate(classes):
        files = list_images(base / c)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise UserError(f"{base}: the class folders hold no images ({', '.join(sorted(EXTENSIONS))})")
    return read_images(paths, image_size), torch.tensor(labels), classes, [str(p) for p in paths]


def read_tiny_imagenet(root: Path, split: str):
    """``train/<wnid>/images/*.JPEG``; the labelled ``val`` split is used as the test split."""
    hint = "unpack tiny-imagenet-200.zip and pass --data-dir pointing at the tiny-imagenet-200 folder"
    base = root / "tiny-imagenet-200" if (root / "tiny-imagenet-200").is_dir() else root
    wnids_file = base / "wnids.txt"
    if not wnids_file.is_file():
        raise UserError(f"{base}: no wnids.txt; {hint}")
    wnids = [w.strip() for w in wnids_file.read_text().split() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    paths, labels = [], []
    if split == "train":
        for w in wnids:
            files = list_images(base / "train" / w / "images")
            paths += files
            labels += [index[w]] * len(files)
    else:
        ann = base / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise UserError(f"{ann}: missing; {hint}")
        for line_no, line in enumerate(ann.read_text().splitlines(), 1):
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in index:
                raise UserError(f"{ann}:{line_no}: expected '<file>\\t<wnid>' with a wnid from wnids.txt; {hint}")
            paths.append(base / "val" / "images" / parts[0])
            labels.append(index[parts[1]])
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"{missing[0]}: listed in val_annotations.txt but missing "
                            f"({len(missing)} files in all); {hint}")
    if not paths:
        raise UserError(f"{base}: no images found for the {split} split; {hint}")
    names = _wnid_names(base, wnids)
    return read_images(paths, 64), torch.tensor(labels), names, [str(p) for p in paths]


def _wnid_names(base: Path, wnids: list[str]) -> list[str]:
    words = base / "words.txt"
    if not words.is_file():
        return wnids
    lookup = dict(line.split("\t", 1) for line in words.read_text().splitlines() if "\t" in line)
    return [lookup.get(w, w).split(",")[0].strip() for w in wnids]
