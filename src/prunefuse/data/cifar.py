"""CIFAR-10 and CIFAR-100 python batches, read without unpickling arbitrary objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .safe_pickle import load_data_pickle

HINT = "download the python version from https://www.cs.toronto.edu/~kriz/cifar.html and pass --data-dir"
LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                "batches.meta", "label_names", "labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_label_names", "fine_labels"),
}


def read_cifar(name: str, root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    folder, train_files, test_files, meta_file, names_key, labels_key = LAYOUT[name]
    base = root / folder if (root / folder).is_dir() else root
    files = train_files if split == "train" else test_files
    missing = [f for f in files + [meta_file] if not (base / f).is_file()]
    if missing:
        raise UserError(f"{base}: missing {', '.join(missing)}; {HINT}")
    meta = load_data_pickle(base / meta_file, HINT)
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta.get(names_key, [])]
    images, labels = [], []
    for f in files:
        batch = load_data_pickle(base / f, HINT)
        data = np.asarray(batch.get("data"), dtype=np.uint8)
        y = np.asarray(batch.get(labels_key), dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise UserError(f"{base / f}: expected N x 3072 image rows, got shape {data.shape}; {HINT}")
        if len(data) != len(y):
            raise UserError(f"{base / f}: {len(data)} images but {len(y)} labels; the batch is damaged, {HINT}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(y)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)), classes
