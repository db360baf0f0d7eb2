"""Dataset names, where their files are looked for, and the public ``load``."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .arrays import fixed_split, read_digits, read_npz
from .cifar import read_cifar
from .dataset import Dataset
from .grid import GRID_SIDE, fashion_grid
from .idx import has_idx_files, missing_idx_files, read_idx_split
from .images import read_image_folder, read_tiny_imagenet, split_folders

SPLITS = ("train", "test")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot"]
IDX_DOWNLOADS = {
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
}
SYSTEM_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    needs_files: bool
    flip: bool  # horizontal flip is a sensible augmentation (not for digits)
    source: str | None = None  # made on the fly from this dataset's files
    build: Callable[[Dataset], Dataset] | None = None  # how, from a split of ``source``
    tiles: int = 1  # an image is a grid of this many independent items per side, labelled by which are present


DATASETS = {
    "digits": DatasetInfo("digits", "scikit-learn 8x8 digits (bundled default)", False, False),
    "fashion-mnist": DatasetInfo("fashion-mnist", "Fashion-MNIST IDX files (.gz or raw)", True, True),
    "fashion-mnist-grid": DatasetInfo("fashion-mnist-grid", "2x2 Fashion-MNIST grids, 10 binary attributes", True,
                                      True, source="fashion-mnist", build=fashion_grid, tiles=GRID_SIDE),
    "mnist": DatasetInfo("mnist", "MNIST IDX files (.gz or raw)", True, False),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10 python batches", True, True),
    "cifar100": DatasetInfo("cifar100", "CIFAR-100 python batches", True, True),
    "tiny-imagenet": DatasetInfo("tiny-imagenet", "Tiny-ImageNet-200 folders (val used as test)", True, True),
    "imagefolder": DatasetInfo("imagefolder", "one subfolder per class, any Pillow format", True, True),
    "npz": DatasetInfo("npz", ".npz with arrays x (images) and y (labels)", True, True),
}


def names() -> list[str]:
    return list(DATASETS)


def info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def grid_side(name: str) -> int:
    """Tiles per side that ``--shuffle-tiles`` may reorder; only a dataset of item grids has them."""
    side = info(name).tiles
    if side < 2:
        grids = ", ".join(n for n, d in DATASETS.items() if d.tiles > 1)
        raise UserError(f"--shuffle-tiles reorders the items of a grid image, and {name} images are not grids; "
                        f"use a grid dataset ({grids}), or drop it")
    return side


def cache_dir(name: str) -> Path:
    base = os.environ.get("PRUNEFUSE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "prunefuse")
    return Path(base) / name


def candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """Where a dataset is looked for: only ``data_dir`` when the user names one, else the system
    folder and the cache."""
    if data_dir:
        return [Path(data_dir)]
    return ([SYSTEM_DIRS[name]] if name in SYSTEM_DIRS else []) + [cache_dir(name)]


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder that holds the dataset, or None."""
    if not info(name).needs_files:
        return Path("<bundled>")
    for d in candidate_dirs(name, data_dir):
        if name in IDX_DOWNLOADS:
            if has_idx_files(d):
                return d
        elif d.exists():
            return d
    return None


def availability(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Each dataset, whether it is found (``data_dir`` alone is searched when given) and where, with
    the way to get it when it is not."""
    rows = []
    for name, entry in DATASETS.items():
        source = entry.source or name
        where = locate(source, data_dir) if source in ("digits", *IDX_DOWNLOADS) else None
        if where is not None:
            status = str(where)
        elif source in IDX_DOWNLOADS:
            status = "not found: " + missing_hint(source)
        else:
            status = "read from --data-dir"
        rows.append({"name": name, "found": where is not None, "where": str(where) if where else None,
                     "description": entry.description, "status": status})
    return rows


def missing_hint(name: str) -> str:
    if name == "fashion-mnist":
        return ("install it with 'apt-get install -y dataset-fashion-mnist', pass --data-dir, "
                "or add --download")
    if name == "mnist":
        return "pass --data-dir with the MNIST IDX files, or add --download"
    return "pass --data-dir pointing at the files"


def download_idx(name: str, target: Path | None = None) -> Path:
    base, files = IDX_DOWNLOADS[name]
    target = target or cache_dir(name)
    target.mkdir(parents=True, exist_ok=True)
    for fname, md5 in files.items():
        dest = target / fname
        if dest.is_file() and _md5(dest) == md5:
            continue
        tmp = dest.with_suffix(".part")
        try:
            urllib.request.urlretrieve(base + fname, tmp)
        except OSError as e:
            raise UserError(f"cannot download {base + fname} ({e}); without internet, "
                            f"{missing_hint(name).replace(', or add --download', '')}") from None
        if _md5(tmp) != md5:
            tmp.unlink()
            raise UserError(f"{fname}: checksum mismatch after download; try again later")
        os.replace(tmp, dest)
    return target


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
         download: bool = False, image_size: int | None = None) -> Dataset:
    """Read a dataset split into memory as uint8 N x C x H x W images and int64 labels."""
    entry = info(name)
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}'; use 'train' or 'test'")
    if name == "digits":
        images, labels, classes = read_digits(split)
        return Dataset(images, labels, classes, name, split)
    if entry.build is not None:
        return entry.build(load(entry.source, split, data_dir, download))
    if name in IDX_DOWNLOADS:
        root = locate(name, data_dir)
        if root is None:
            if data_dir and Path(data_dir).exists() and not Path(data_dir).is_dir():
                raise UserError(f"--data-dir {data_dir} is a file; pass the folder that holds the {name} IDX files")
            if not download:
                if data_dir:
                    raise UserError(f"--data-dir {data_dir} lacks {', '.join(missing_idx_files(data_dir))}; put "
                                    f"the {name} IDX files there, or add --download")
                searched = ", ".join(str(d) for d in candidate_dirs(name, data_dir))
                raise UserError(f"{name} not found (looked in {searched}); {missing_hint(name)}")
            root = download_idx(name, Path(data_dir) if data_dir else None)
        images, labels = read_idx_split(root, split, missing_hint(name))
        classes = FASHION_CLASSES if name == "fashion-mnist" else [str(i) for i in range(10)]
        return Dataset(images, labels, classes, name, split)
    if data_dir is None:
        raise UserError(f"{name} needs --data-dir pointing at its files")
    root = Path(data_dir)
    if not root.exists():
        raise UserError(f"{root}: no such file or folder; check --data-dir")
    ids = None
    if name in ("cifar10", "cifar100"):
        images, labels, classes = read_cifar(name, root, split)
    elif name == "tiny-imagenet":
        images, labels, classes, ids = read_tiny_imagenet(root, split)
    elif name == "imagefolder":
        images, labels, classes, ids = read_image_folder(root, split, image_size)
    else:
        images, labels, classes = read_npz(root, split)
    dataset = Dataset(images, labels, classes, name, split, ids)
    one_set = root.is_file() if name == "npz" else name == "imagefolder" and not split_folders(root)
    if not one_set:
        return dataset
    if len(dataset) == 1:
        raise UserError(f"{root}: one image, and a test split is held out of the same images; add images")
    return dataset.subset(fixed_split(labels.numpy(), split).tolist())
