"""Exact FLOPs from PyTorch's own counter (FLOPs = 2 x MACs; BN, ReLU, add and pooling count 0),
for one forward of one sample. Runs on whatever device the model is on, meta included."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .errors import UserError


def count(model: nn.Module, input_shape: Sequence[int], forward: Callable | None = None) -> dict:
    """``{"flops", "macs", "params", "by_module"}`` for one sample of ``input_shape`` (C, H, W);
    ``forward(x)`` replaces ``model(x)`` for models called with more than the input."""
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise UserError(f"input shape {tuple(input_shape)} must be three positive numbers C,H,W (e.g. 3,32,32)")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(1, *input_shape, device=device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            (forward or model)(x)
    except RuntimeError as e:
        raise UserError(f"the model cannot run on input shape {tuple(input_shape)} ({str(e).splitlines()[0]}); "
                        "check --input-shape") from None
    finally:
        model.train(was_training)
    total = int(counter.get_total_flops())
    root = type(model).__name__
    by_module = {}
    for name, ops in counter.get_flop_counts().items():
        if name == "Global":
            continue
        key = "total" if name == root else name.removeprefix(root + ".")
        by_module[key] = int(sum(ops.values()))
    return {"flops": total, "macs": total // 2, "params": sum(p.numel() for p in model.parameters()),
            "by_module": by_module}


def count_arch(arch: str, input_shape: Sequence[int], num_classes: int, width: float = 1.0) -> dict:
    """Count a zoo architecture without allocating its weights (built on the meta device)."""
    from . import models

    with torch.device("meta"):
        model = models.create(arch, num_classes, input_shape[0], input_shape[1], width)
    return count(model, input_shape)

