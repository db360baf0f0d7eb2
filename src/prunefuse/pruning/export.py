"""Prune a fresh, trained or already pruned network and write it with its channel map: the
``prune`` command."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import models
from ..errors import UserError
from ..flops import count
from ..io import checkpoint
from ..io.rundir import RunDirectory, seed_everything
from ..validation import check_choice
from .channel_map import ChannelMap
from .structured import IMPORTANCES, check_prunable, check_ratio, prune, save_pruned


def prune_to_directory(out: str | Path, ratio: float, *, arch: str | None = None, num_classes: int = 10,
                       input_shape: tuple[int, int, int] = (3, 32, 32), width: float = 1.0,
                       checkpoint_path: str | Path | None = None, importance: str = "l2", steps: int = 1,
                       global_pruning: bool = False, round_to: int | None = None, seed: int = 0,
                       overwrite: bool = False) -> dict:
    """Prune ``arch`` at a fresh initialisation, or the network in ``checkpoint_path`` (whose map, if it
    is pruned already, is composed back to the dense network; its own architecture, classes, input shape
    and width are used and recorded), and write ``out/pruned.*``."""
    check_ratio(ratio)
    if importance == "taylor":
        raise UserError("taylor importance needs a labelled batch; use prunefuse.pruning.prune(..., batch=...)")
    if checkpoint_path is None:
        models.check_name(arch)
    check_choice("importance", importance, IMPORTANCES)
    base_map = None
    if checkpoint_path:
        model, meta = checkpoint.load_model(checkpoint_path)
        if "grouped" in meta:
            raise UserError(f"{checkpoint_path} is a network from 'prunefuse merge', which prunes its own; pass a "
                            "zoo model's checkpoint (from prunefuse train, fit or prune)")
        if arch and arch != meta["arch"]:
            raise UserError(f"{checkpoint_path} holds a {meta['arch']}, not the --arch {arch} asked for; drop --arch "
                            "or pass a checkpoint of that architecture")
        shape, arch, width = tuple(meta["input_shape"]), meta["arch"], meta.get("width", 1.0)
        base_map = ChannelMap.from_dict(meta["channel_map"]) if meta.get("channel_map") else None
        num_classes = meta["num_classes"]
    else:
        shape = tuple(input_shape)
        seed_everything(seed)
        model = models.create(arch, num_classes, shape[0], shape[1], width)
    check_prunable(model, ratio, round_to, global_pruning)
    settings = {"arch": arch, "num_classes": num_classes, "input_shape": list(shape), "width": width,
                "checkpoint": str(checkpoint_path) if checkpoint_path else None, "ratio": ratio,
                "importance": importance, "steps": steps, "global_pruning": global_pruning, "round_to": round_to,
                "seed": seed}
    with RunDirectory.claim(out, "prune", settings, overwrite=overwrite):
        seed_everything(seed)
        dense_cost = count(model, shape)
        pruned, cmap = prune(model, ratio, torch.zeros(1, *shape), importance, steps, global_pruning,
                             channel_map=base_map, arch=arch, round_to=round_to)
        cost = count(pruned, shape)
        save_pruned(Path(out) / "pruned", pruned, cmap, checkpoint.model_spec(arch, num_classes, shape, width))
    return {"arch": arch, "ratio": ratio, "dense_flops": dense_cost["flops"], "flops": cost["flops"],
            "params": cost["params"], "flops_ratio": dense_cost["flops"] / max(cost["flops"], 1), "out": str(out)}
