"""Build a merged GroupedNet from single-task networks and a grouping of their neurons, inheriting
weights block-diagonally: a merged neuron keeps its original incoming weights from inputs that came
from its own network, links between networks start at zero, and links the group wiring does not
have (e.g. exclusive -> shared) are dropped."""

from __future__ import annotations

import torch
from torch import nn

from .grouped import SHARED, GroupedNet, group_name
from .pam import Origin


def expand(indices: list[int], per: int) -> list[int]:
    """Neuron indices -> input columns when each neuron feeds ``per`` columns (flattened maps)."""
    return [i * per + r for i in indices for r in range(per)]


def inherit_rows(target: nn.Module, sources: list[nn.Module], rows: list[Origin],
                 inputs: list[Origin] | None, per: int) -> None:
    """Fill ``target``'s weight (out x in ...) and bias from each output row's first origin network;
    ``inputs`` (None for the image) lists the origins of the input neurons, in column order."""
    weight = torch.zeros_like(target.weight)
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
        if target.bias is not None:
            target.bias[out_pos] = source.bias[out_idx]
    target.weight.copy_(weight)


def inherit_batch_norm(target: nn.BatchNorm2d, sources: list[nn.BatchNorm2d], rows: list[Origin]) -> None:
    """Per neuron, the mean over its origins (one origin: a copy)."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        values = torch.stack([torch.stack([getattr(sources[k], name)[i] for k, i in o]).mean() for o in rows])
        getattr(target, name).copy_(values)


@torch.no_grad()
def assemble(singles: list[GroupedNet], groups: list[dict[str, list[Origin]]]) -> GroupedNet:
    """The merged network for ``groups[l][group] = [origin of each neuron]``; single k serves task k."""
    n = len(singles)
    widths = [{g: len(v) for g, v in layer.items()} for layer in groups]
    merged = GroupedNet(singles[0].plan, widths, [net.head_sizes[0] for net in singles])
    for layer, unit in enumerate(merged.units):
        per = merged.columns_per_neuron(layer)
        for g, module in unit.items():
            inputs = None if layer == 0 else [o for s in merged.sources(g) for o in groups[layer - 1][s]]
            inherit_rows(module[0], [net.units[layer][SHARED][0] for net in singles], groups[layer][g], inputs, per)
            if len(module) > 1:
                inherit_batch_norm(module[1], [net.units[layer][SHARED][1] for net in singles], groups[layer][g])
    last = groups[-1]
    for t in range(n):
        head = merged.heads[group_name(t)]
        inputs = [o for s in merged.sources(group_name(t)) for o in last[s]]
        rows: list[Origin] = [((t, c),) for c in range(head.out_features)]
        inherit_rows(head, [net.heads[group_name(0)] for net in singles], rows, inputs,
                     merged.columns_per_neuron(len(merged.plan.layers)))
    return merged
