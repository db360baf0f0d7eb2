"""Network fusion: write a trained pruned network into a dense one through its channel map, as
the warm start PruneFuse trains from."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import UserError
from .channel_map import ChannelMap, mapped_layers

FILLS = ("reinit", "init", "zero")
SCOPES = ("all", "conv")


def reinitialize(model: nn.Module) -> None:
    if hasattr(model, "initialize"):
        model.initialize()
        return
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if hasattr(m, "reset_running_stats"):
            m.reset_running_stats()


def zero_fill(model: nn.Module) -> None:
    """Zero every parameter and statistic (variance 1, so BN stays finite)."""
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith("running_var"):
                t.fill_(1.0)
            elif name.endswith("num_batches_tracked"):
                continue
            else:
                t.zero_()


def fuse(pruned_model: nn.Module, dense_model: nn.Module, channel_map: ChannelMap, fill: str = "reinit",
         scope: str = "all") -> nn.Module:
    """A copy of ``dense_model`` holding every kept parameter and buffer of ``pruned_model`` at its
    dense position; the rest is filled by ``fill``: ``reinit`` (fresh initialisation; seed first),
    ``init`` (the dense model's own values) or ``zero``. ``scope="conv"`` copies convolution
    weights only, as the authors' code did (for the ablation)."""
    if fill not in FILLS:
        raise UserError(f"unknown fill '{fill}'; choose one of: {', '.join(FILLS)}")
    if scope not in SCOPES:
        raise UserError(f"unknown fusion scope '{scope}'; choose one of: {', '.join(SCOPES)}")
    channel_map.check_fits(dense_model)
    pruned_layers = mapped_layers(pruned_model)
    fused = copy.deepcopy(dense_model)
    if fill == "reinit":
        reinitialize(fused)
    elif fill == "zero":
        zero_fill(fused)
    fused_layers = mapped_layers(fused)
    with torch.no_grad():
        for name, entry in channel_map.layers.items():
            if scope == "conv" and entry.kind != "conv":
                continue
            src, dst = pruned_layers.get(name), fused_layers[name]
            if src is None:
                raise UserError(f"the pruned model has no layer {name}; pass the model the map was made for")
            out = torch.tensor(entry.out, dtype=torch.long, device=dst.weight.device)
            if entry.kind == "bn":
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    value = getattr(src, attr)
                    if value is not None:
                        _check(name, attr, value.shape, (len(out),))
                        getattr(dst, attr)[out] = value.to(dst.weight.device)
                if src.num_batches_tracked is not None:
                    dst.num_batches_tracked.copy_(src.num_batches_tracked)
                continue
            inp = torch.tensor(entry.inp, dtype=torch.long, device=dst.weight.device)
            _check(name, "weight", src.weight.shape[:2], (len(out), len(inp)))
            dst.weight[out[:, None], inp[None, :]] = src.weight.to(dst.weight.device)
            if src.bias is not None:
                dst.bias[out] = src.bias.to(dst.weight.device)
    return fused


def _check(name: str, attr: str, got, expected) -> None:
    if tuple(got) != tuple(expected):
        raise UserError(f"layer {name}.{attr} has shape {tuple(got)} but the map keeps {tuple(expected)}; "
                        "the pruned model and the channel map do not belong together")
