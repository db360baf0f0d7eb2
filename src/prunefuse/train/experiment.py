"""Train one zoo model on one dataset and leave a complete run directory: the ``train`` command."""

from __future__ import annotations

import time
from pathlib import Path

from .. import models
from ..data.batching import Normalizer
from ..data.registry import grid_side
from ..data.spec import DataSpec
from ..flops import count
from ..io import checkpoint
from ..io.rundir import RunDirectory, seed_everything, with_defaults
from ..io.storage import write_json
from .config import ADDED_SINCE_SAVED, TrainConfig
from .engine import fit


def train_model(data_spec: DataSpec, arch: str, config: TrainConfig, out: str | Path, width: float = 1.0,
                quiet: bool = False, overwrite: bool = False) -> dict:
    """Train ``arch`` on the dataset, evaluate it, and write checkpoint, metrics and results to ``out``.

    ``out`` must be new, empty, or hold a ``train`` run of this very config (which is then trained
    again); ``overwrite`` clears another run that is there."""
    models.check_name(arch)
    if config.shuffle_tiles:
        grid_side(data_spec.name)  # refused before the run directory is made
    settings = {"data": vars(data_spec), "arch": arch, "width": width, "train": config.to_dict()}
    train, test = data_spec.load()
    with RunDirectory.claim(out, "train", settings, overwrite=overwrite,
                            upgrade=lambda saved: with_defaults(saved, {"train": ADDED_SINCE_SAVED})):
        out = Path(out)
        c, h, w = train.input_shape
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
        results = {"arch": arch, "dataset": train.name, "train_samples": len(train), "epochs": result.epochs,
                   "steps": result.steps, "test_accuracy": result.test_accuracy, "wall_seconds": round(wall, 2),
                   "train_seconds": round(result.seconds, 2), "eval_seconds": round(result.eval_seconds, 2),
                   "train_images_per_second": round(result.images_per_second, 1),
                   "flops": cost["flops"], "macs": cost["macs"], "params": cost["params"]}
        write_json(out / "results.json", results)
    return results
