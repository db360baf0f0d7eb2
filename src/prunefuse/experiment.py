"""Train one zoo model on one dataset and leave a complete run directory: the ``train`` command."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import data, models
from .data.batching import Normalizer
from .errors import UserError
from .flops import count
from .io import checkpoint
from .io.rundir import seed_everything, write_config
from .io.storage import write_json
from .train import TrainConfig, fit


@dataclass
class DataSpec:
    """Which dataset to read, and how; the same fields for every command that reads data."""

    name: str = "digits"
    data_dir: str | None = None
    download: bool = False
    subset: int | None = None  # keep this many training samples (a uniform random draw)
    seed: int = 0

    def load(self) -> tuple[data.Dataset, data.Dataset]:
        train = data.load(self.name, "train", self.data_dir, self.download)
        test = data.load(self.name, "test", self.data_dir, self.download)
        if self.subset is not None:
            if not 0 < self.subset <= len(train):
                raise UserError(f"--subset {self.subset} is out of range; the training split has {len(train)} samples")
            keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))[: self.subset]
            train = train.subset(keep.sort().values)
        return train, test


def train_model(data_spec: DataSpec, arch: str, config: TrainConfig, out: str | Path, width: float = 1.0,
                quiet: bool = False) -> dict:
    """Train ``arch`` on the dataset, evaluate it, and write checkpoint, metrics and results to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = data_spec.load()
    c, h, w = train.input_shape
    write_config(out, {"command": "train", "data": vars(data_spec), "arch": arch, "width": width,
                       "train": config.to_dict()})
    seed_everything(config.seed)
    model = models.create(arch, train.num_classes, c, h, width)
    normalizer = Normalizer(*train.channel_stats())
    metrics = out / "metrics.jsonl"
    metrics.unlink(missing_ok=True)
    start = time.perf_counter()
    result = fit(model, train, config, test, normalizer, metrics_path=metrics, quiet=quiet)
    wall = time.perf_counter() - start
    spec = checkpoint.model_spec(arch, train.num_classes, (c, h, w), width)
    checkpoint.save(out / "model", model, {**spec, "dataset": train.name, "classes": train.classes,
                                           "normalizer": vars(normalizer), "config": config.to_dict()})
    cost = count(model.cpu(), (c, h, w))
    results = {"arch": arch, "dataset": train.name, "train_samples": len(train), "epochs": config.epochs,
               "test_accuracy": result.test_accuracy, "wall_seconds": round(wall, 2),
               "train_images_per_second": round(result.images_per_second, 1),
               "flops": cost["flops"], "macs": cost["macs"], "params": cost["params"]}
    write_json(out / "results.json", results)
    return results
