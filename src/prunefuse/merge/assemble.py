"""Build a merged GroupedNet from single-task networks and a grouping of their neurons, inheriting
weights block-diagonally: a merged neuron keeps its original incoming weights from inputs that came
from its own network, links between networks start at zero, and links the group wiring does not
have (e.g. exclusive -> shared) are dropped. Given calibration images, each neuron also takes the
mean of what its lost inputs (dropped neurons, links the wiring lacks) fed it, in its bias (or its
batch norm's mean), so that a lost input that varies little costs little."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .grouped import SHARED, GroupedNet, group_name
from .pam import Origin


def expand(indices: list[int], per: int) -> list[int]:
    """Neuron indices -> input columns when each neuron feeds ``per`` columns (flattened maps)."""
    return [i * per + r for i in indices for r in range(per)]


def input_means(net: GroupedNet, x: torch.Tensor) -> list[torch.Tensor]:
    """For each layer after the first and then the head, a single-task network's mean input on ``x``:
    per column of a linear layer, per input channel and position of a conv layer."""
    with torch.no_grad():
        outputs = [o[SHARED] for o in net.eval().hidden(x, [0])]
    means = []
    for layer, below in enumerate(outputs[:-1], 1):
        means.append(below.flatten(1).mean(0) if net.plan.layers[layer].flatten else below.mean(0))
    last = outputs[-1]
    if net.plan.global_pool:
        last = last.mean((2, 3))
    return means + [last.flatten(1).mean(0)]


def inherit_rows(target: nn.Module, sources: list[nn.Module], rows: list[Origin],
                 inputs: list[Origin] | None, per: int, means: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Fill ``target``'s weight (out x in ...) and bias from each output row's first origin network;
    ``inputs`` (None for the image) lists the origins of the input neurons, in column order. With
    ``means`` (each source's mean input, as ``input_means`` gives it) returns per row what the source's
    inputs that are not carried over fed it on average, for the caller to fold in."""
    weight = torch.zeros_like(target.weight)
    lost = torch.zeros(len(rows))
    for k, source in enumerate(sources):
        out_pos = [r for r, o in enumerate(rows) if o[0][0] == k]
        if not out_pos:
            continue
        out_idx = [rows[r][0][1] for r in out_pos]
        if inputs is None:
            weight[out_pos] = source.weight[out_idx]
        else:
            in_pos = [c for c, o in enumerate(inputs) if k in dict(o)]  # empty: k's neurons below were dropped
            in_idx = [dict(inputs[c])[k] for c in in_pos]
            block = source.weight[out_idx][:, expand(in_idx, per)]
            columns = torch.tensor(expand(in_pos, per), dtype=torch.long)
            weight[torch.tensor(out_pos)[:, None], columns[None, :]] = block
            if means is not None:
                missing = torch.ones(source.weight.shape[1], dtype=torch.bool)
                missing[expand(in_idx, per)] = False
                if missing.any():
                    lost[out_pos] = lost_input(source, out_idx, missing, means[k])
        if target.bias is not None:
            target.bias[out_pos] = source.bias[out_idx]
    target.weight.copy_(weight)
    return lost


def lost_input(source: nn.Module, rows: list[int], missing: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """What the ``missing`` input columns fed ``rows`` of ``source`` on average; for a conv layer averaged
    over its output positions too, padding included, since a bias is one number per channel."""
    weight = source.weight[rows][:, missing]
    if weight.dim() == 2:
        return weight @ mean[missing]
    return F.conv2d(mean[missing][None], weight, stride=source.stride, padding=source.padding).mean((0, 2, 3))


def inherit_batch_norm(target: nn.BatchNorm2d, sources: list[nn.BatchNorm2d], rows: list[Origin]) -> None:
    """Per neuron, the mean over its origins (one origin: a copy)."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        values = torch.stack([torch.stack([getattr(sources[k], name)[i] for k, i in o]).mean() for o in rows])
        getattr(target, name).copy_(values)


@torch.no_grad()
def assemble(singles: list[GroupedNet], groups: list[dict[str, list[Origin]]],
             calibration: torch.Tensor | None = None) -> GroupedNet:
    """The merged network for ``groups[l][group] = [origin of each neuron]``; single k serves task k.
    ``calibration`` (normalised images) turns on folding the mean of lost inputs."""
    n = len(singles)
    means = None if calibration is None else [input_means(net, calibration) for net in singles]
    widths = [{g: len(v) for g, v in layer.items()} for layer in groups]
    merged = GroupedNet(singles[0].plan, widths, [net.head_sizes[0] for net in singles])
    for layer, unit in enumerate(merged.units):
        per = merged.columns_per_neuron(layer)
        for g, module in unit.items():
            inputs = None if layer == 0 else [o for s in merged.sources(g) for o in groups[layer - 1][s]]
            lost = inherit_rows(module[0], [net.units[layer][SHARED][0] for net in singles], groups[layer][g], inputs,
                                per, layer_means(means, layer - 1))
            if len(module) > 1:
                inherit_batch_norm(module[1], [net.units[layer][SHARED][1] for net in singles], groups[layer][g])
                module[1].running_mean -= lost  # batch norm subtracts it: a lower mean adds it back
            elif module[0].bias is not None:
                module[0].bias += lost
    last = groups[-1]
    for t in range(n):
        head = merged.heads[group_name(t)]
        inputs = [o for s in merged.sources(group_name(t)) for o in last[s]]
        rows: list[Origin] = [((t, c),) for c in range(head.out_features)]
        lost = inherit_rows(head, [net.heads[group_name(0)] for net in singles], rows, inputs,
                            merged.columns_per_neuron(len(merged.plan.layers)),
                            layer_means(means, len(merged.plan.layers) - 1))
        head.bias += lost
    return merged


def layer_means(means: list[list[torch.Tensor]] | None, index: int) -> list[torch.Tensor] | None:
    """Every single network's mean inputs to one consuming layer (``index`` 0: the second layer)."""
    return None if means is None or index < 0 else [m[index] for m in means]
