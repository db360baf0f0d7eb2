"""Checkpoints as safetensors plus a JSON sidecar; nothing is ever unpickled."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError
from .storage import atomic_write, read_json, write_json

FORMAT_VERSION = 1


def paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    """``run/model`` -> ``run/model.safetensors`` and ``run/model.json``."""
    stem = Path(stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def stem_of(path: str | os.PathLike, name: str = "model") -> Path:
    """Accept a run directory (holding ``model.*`` or ``pruned.*``), a stem, or either file."""
    path = Path(path)
    if path.is_dir():
        for candidate in (name, "model", "pruned", "fused"):
            if (path / f"{candidate}.safetensors").is_file():
                return path / candidate
        raise UserError(f"{path}: no checkpoint (*.safetensors with its .json) in this directory")
    return paths(path)[0].with_suffix("")


def model_spec(arch: str, num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> dict:
    return {"arch": arch, "num_classes": num_classes, "input_shape": list(input_shape), "width": width}


def weights_digest(models: list[nn.Module]) -> str:
    """A short hash of the models' weights, in order: what a checkpoint derived from them records, so
    that it is never combined with other ones."""
    h = hashlib.sha256()
    for model in models:
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save(stem: str | os.PathLike, model: nn.Module, metadata: dict[str, Any]) -> None:
    """Write the weights (and BN buffers) and the metadata, each atomically."""
    weights, meta_path = paths(stem)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(weights, lambda tmp: save_file(tensors, tmp))
    write_json(meta_path, {"format_version": FORMAT_VERSION, **metadata})


def read(stem: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    weights, meta_path = paths(stem)
    for p in (weights, meta_path):
        if not p.is_file():
            raise UserError(f"{p}: checkpoint file missing; point at a directory or stem written by prunefuse")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{weights}: not a readable safetensors file ({e}); the checkpoint is damaged") from None
    try:
        meta = read_json(meta_path)
    except ValueError as e:
        raise UserError(f"{meta_path}: not valid JSON ({e}); the checkpoint metadata is damaged") from None
    return state, meta


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy weights after checking that every name and shape fits, naming what differs."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}" + (" ..." if len(unexpected) > 3 else ""))
        if mismatched:
            parts.append("shape " + "; ".join(mismatched[:3]) + (" ..." if len(mismatched) > 3 else ""))
        raise UserError(f"{source} does not fit this model ({'; '.join(parts)}); load it with the architecture, "
                        "width, classes, input shape and channel map it was saved with")
    model.load_state_dict(state)


def load_model(stem: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes (pruned ones through their channel map, merged ones
    from their group widths)."""
    from .. import models
    from ..pruning.channel_map import ChannelMap
    from ..pruning.materialize import materialize

    stem = stem_of(stem)
    state, meta = read(stem)
    if "grouped" in meta:  # a merged (or single-task) network from ``prunefuse merge``
        from ..merge.grouped import GroupedNet

        model = GroupedNet.from_spec(meta["grouped"])
        load_into(model, state, str(paths(stem)[0]))
        return model, meta
    try:
        c, h, _ = meta["input_shape"]
        model = models.create(meta["arch"], meta["num_classes"], c, h, meta.get("width", 1.0))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{paths(stem)[1]}: metadata lacks the model description ({e})") from None
    if meta.get("channel_map"):
        model = materialize(model, ChannelMap.from_dict(meta["channel_map"]))
    load_into(model, state, str(paths(stem)[0]))
    return model, meta
