"""Rebuild a pruned network from a dense one and a channel map, without Torch-Pruning, so a
pruned checkpoint (safetensors plus map JSON) loads anywhere."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import UserError
from .channel_map import ChannelMap, LayerMap


def _index(ids: list[int], device: torch.device) -> torch.Tensor:
    return torch.tensor(ids, dtype=torch.long, device=device)


def sliced_layer(module: nn.Module, entry: LayerMap) -> nn.Module:
    """A new layer holding the kept rows and columns of ``module``."""
    device = next(module.parameters(), torch.empty(0)).device
    out = _index(entry.out, device)
    with torch.no_grad():
        if entry.kind == "bn":
            reference = module.weight if module.affine else module.running_mean
            new = type(module)(len(entry.out), module.eps, module.momentum, module.affine,
                               module.track_running_stats).to(device=device, dtype=reference.dtype)
            for name in ("weight", "bias", "running_mean", "running_var"):
                src = getattr(module, name)
                if src is not None:
                    getattr(new, name).copy_(src[out])
            if module.num_batches_tracked is not None:
                new.num_batches_tracked.copy_(module.num_batches_tracked)
            return new.train(module.training)
        inp = _index(entry.inp, device)
        if entry.kind == "conv":
            if module.groups != 1:
                raise UserError(f"grouped convolutions are not supported by channel maps (groups={module.groups})")
            new = nn.Conv2d(len(entry.inp), len(entry.out), module.kernel_size, module.stride, module.padding,
                            module.dilation, bias=module.bias is not None, padding_mode=module.padding_mode)
        else:
            new = nn.Linear(len(entry.inp), len(entry.out), bias=module.bias is not None)
        new = new.to(device=device, dtype=module.weight.dtype)
        new.weight.copy_(module.weight[out][:, inp])
        if module.bias is not None:
            new.bias.copy_(module.bias[out])
    return new.train(module.training)


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


def materialize(dense_model: nn.Module, channel_map: ChannelMap) -> nn.Module:
    """A pruned copy of ``dense_model`` that keeps exactly the channels the map names."""
    layers = channel_map.check_fits(dense_model)
    pruned = copy.deepcopy(dense_model)
    for name in layers:
        replace_module(pruned, name, sliced_layer(pruned.get_submodule(name), channel_map.layers[name]))
    return pruned
