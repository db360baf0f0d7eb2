"""``prunefuse select``: pick the next samples to label from a real, mostly unlabeled pool, with a
pruned selector trained on the samples labeled so far."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import models
from .data.arrays import to_nchw_uint8
from .data.batching import Normalizer
from .data.dataset import Dataset
from .data.images import list_images, read_images
from .errors import UserError
from .io.rundir import seed_everything
from .io.storage import write_text
from .pruning import prune
from .selection import select
from .train import TrainConfig, fit, predict


@dataclass
class UnlabeledPool:
    images: torch.Tensor
    ids: list[str]
    classes: list[str] | None = None


def read_pool(path: str | Path, image_size: int | None = None) -> UnlabeledPool:
    """An image folder (ids are paths relative to it) or an ``.npz`` with ``x`` (ids: ``ids`` or row numbers)."""
    path = Path(path)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise UserError(f"{path}: no images found; point --pool at a folder of images or an .npz file")
        return UnlabeledPool(read_images(files, image_size), [str(f.relative_to(path)) for f in files])
    if path.suffix == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z:
                    raise UserError(f"{path}: no array named 'x'; save the pool's images as x")
                images = to_nchw_uint8(z["x"], str(path))
                ids = [str(i) for i in z["ids"]] if "ids" in z else [str(i) for i in range(len(images))]
                classes = [str(c) for c in z["classes"]] if "classes" in z else None
        except ValueError as e:
            raise UserError(f"{path}: not a readable .npz ({e})") from None
        return UnlabeledPool(images, ids, classes)
    raise UserError(f"{path}: not a folder or an .npz file; pass --pool with one of those")


def read_labels(path: str | Path, pool: UnlabeledPool, classes: list[str] | None) -> tuple[list[int], list[str],
                                                                                            list[str]]:
    """Rows ``id,label``; returns pool positions, their class names, and the class list."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such labels file; write a CSV with the header id,label")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"id", "label"} <= set(reader.fieldnames):
            raise UserError(f"{path}: the header must name the columns id and label")
        rows = [(r["id"].strip(), r["label"].strip()) for r in reader]
    position = {i: n for n, i in enumerate(pool.ids)}
    seen: set[str] = set()
    for line, (sample, _) in enumerate(rows, start=2):
        if sample not in position:
            raise UserError(f"{path}:{line}: id '{sample}' is not in the pool; use the pool's ids, "
                            f"e.g. '{pool.ids[0]}'")
        if sample in seen:
            raise UserError(f"{path}:{line}: id '{sample}' is labeled twice; keep one row per sample")
        seen.add(sample)
    classes = classes or pool.classes or sorted({label for _, label in rows})
    unknown = sorted({label for _, label in rows} - set(classes))
    if unknown:
        raise UserError(f"{path}: unknown classes {unknown[:5]}; the classes are {classes[:10]}")
    if len(rows) < 2:
        raise UserError(f"{path}: label at least two samples before asking for a selection")
    return [position[s] for s, _ in rows], [label for _, label in rows], classes


def select_from_pool(pool_path: str | Path, labels_path: str | Path, budget: int, out: str | Path,
                     arch: str = "preact20", prune_ratio: float = 0.5, epochs: int = 30,
                     strategy: str = "least_confidence", classes: list[str] | None = None, seed: int = 0,
                     batch_size: int = 32, image_size: int | None = None, quiet: bool = False) -> list[dict]:
    """Write ``out`` (CSV: id, score) with the ``budget`` unlabeled samples to label next."""
    pool = read_pool(pool_path, image_size)
    positions, names, classes = read_labels(labels_path, pool, classes)
    unlabeled = torch.tensor(sorted(set(range(len(pool.ids))) - set(positions)), dtype=torch.long)
    if budget < 1 or budget > len(unlabeled):
        raise UserError(f"--budget {budget} is out of range: the pool has {len(unlabeled)} unlabeled samples")
    seed_everything(seed)
    index = {c: i for i, c in enumerate(classes)}
    labeled = Dataset(pool.images[positions], torch.tensor([index[n] for n in names]), classes, "pool", "train")
    c, h, _ = labeled.input_shape
    dense = models.create(arch, len(classes), c, h)
    selector, _ = prune(dense, prune_ratio, torch.zeros(1, c, h, h), steps=5, arch=arch)
    normalizer = Normalizer(*Dataset(pool.images, torch.zeros(len(pool.ids), dtype=torch.long), ["x"], "pool",
                                     "train").channel_stats())
    config = TrainConfig(epochs=epochs, batch_size=batch_size, schedule="onecycle", seed=seed)
    fit(selector, labeled, config, normalizer=normalizer, quiet=quiet, desc="selector")
    logits, feats = predict(selector, pool.images[unlabeled], normalizer, with_features=True)
    labeled_feats = predict(selector, labeled.images, normalizer, with_features=True)[1]
    chosen = select(strategy, budget, unlabeled, logits, feats, labeled_feats, torch.Generator().manual_seed(seed))
    rows = [{"id": pool.ids[i], "score": float(s)} for i, s in zip(chosen.indices.tolist(), chosen.scores.tolist())]
    write_text(out, "id,score\n" + "".join(f"{r['id']},{r['score']:.6g}\n" for r in rows))
    return rows
