"""Structured channel pruning on Torch-Pruning's dependency graph, recording which dense channels
every layer keeps, so coupled channels (residual additions) go together and the map stays exact."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import UserError
from ..validation import check_number
from .channel_map import ChannelMap, mapped_layers

IMPORTANCES = ("l2", "l1", "random", "bn_scale", "taylor")


def make_importance(name: str, model: nn.Module):
    if name == "l2":
        return tp.importance.MagnitudeImportance(p=2)
    if name == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if name == "random":
        return tp.importance.RandomImportance()
    if name == "bn_scale":
        if not any(isinstance(m, _BatchNorm) for m in model.modules()):
            raise UserError("bn_scale importance needs BatchNorm layers, and this model has none; use l2")
        return tp.importance.BNScaleImportance()
    if name == "taylor":
        return tp.importance.TaylorImportance()
    raise UserError(f"unknown importance '{name}'; choose one of: {', '.join(IMPORTANCES)}")


def check_ratio(ratio: float) -> None:
    check_number("prune ratio (the fraction of channels to remove)", ratio, 0, 1, closed="neither")


def check_prunable(model: nn.Module, ratio: float, round_to: int | None = None,
                   global_pruning: bool = False) -> None:
    """Refuse what ``prune`` would refuse for this ratio without pruning, so that a command can check
    before it claims its run directory (a refused run must not leave one behind)."""
    check_ratio(ratio)
    if round_to is None and not global_pruning:
        check_nothing_emptied(mapped_layers(model), classifier_of(model), ratio)


def check_nothing_emptied(layers: dict[str, nn.Module], head: nn.Module, ratio: float) -> None:
    """Torch-Pruning keeps int(width * (1 - ratio)) channels and leaves a layer whole where that is none, so
    too high a ratio would prune less, or nothing, without a word."""
    widths = {name: m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
              for name, m in layers.items() if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not head}
    name = min(widths, key=widths.get)
    if int(widths[name] * (1 - ratio)) < 1:
        highest = math.floor((1 - 1 / widths[name]) * 1e4) / 1e4
        raise UserError(f"ratio {ratio:g} would leave none of the {widths[name]} channels of {name}, which is then "
                        f"not pruned at all; use a ratio of at most {highest:g}, or round to keep one channel "
                        "(--round-to 1)")


class RoundingPruner(tp.pruner.BasePruner):
    """Torch-Pruning's pruner with ``round_to`` rounding the kept channels to the *nearest* multiple
    (at least one multiple), where Torch-Pruning rounds them down and can empty a narrow layer."""

    def _round_to(self, n_pruned: int, current_channels: int, round_to: int) -> int:
        target = current_channels - n_pruned
        kept = max(round_to, round_to * int(target / round_to + 0.5))
        return max(current_channels - kept, 0)


def classifier_of(model: nn.Module) -> nn.Module:
    head = getattr(model, "classifier", None)
    if isinstance(head, nn.Linear):
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UserError("cannot find the classifier (no nn.Linear, and no 'classifier' attribute)")
    return linears[-1]


def prune(model: nn.Module, ratio: float, example_input: torch.Tensor, importance: str = "l2", steps: int = 1,
          global_pruning: bool = False, batch: tuple[torch.Tensor, torch.Tensor] | None = None,
          channel_map: ChannelMap | None = None, arch: str | None = None,
          round_to: int | None = None) -> tuple[nn.Module, ChannelMap]:
    """Remove the fraction ``ratio`` of channels (the same in every layer unless ``global_pruning``).

    ``batch`` (inputs, labels) is needed for ``taylor`` importance. ``round_to`` keeps a multiple of
    that many channels in every pruned layer (the nearest one, at least one), widths vector units like.
    Pass the ``channel_map`` of an already pruned ``model`` to get a map that refers to the original
    dense network. The input model is left untouched."""
    check_prunable(model, ratio, round_to, global_pruning)
    check_number("steps", steps, 1, integer=True)
    if round_to is not None:
        check_number("round_to", round_to, 1, integer=True)
    if importance == "taylor" and batch is None:
        raise UserError("taylor importance is data-dependent: pass batch=(inputs, labels)")
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.requires_grad_(True)  # Torch-Pruning silently skips frozen parameters
    was_training = model.training
    model.eval()
    names = {m: n for n, m in mapped_layers(model).items()}
    kept = ChannelMap.identity(model, arch)
    try:
        pruner = RoundingPruner(model, example_input, importance=make_importance(importance, model),
                                pruning_ratio=ratio, iterative_steps=steps, global_pruning=global_pruning,
                                ignored_layers=[classifier_of(model)], round_to=round_to)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"the dependency graph cannot trace this model ({type(e).__name__}: {e}); use a zoo "
                        "architecture, or give shortcuts 1x1 projections instead of zero padding") from None
    for _ in range(steps):
        if importance == "taylor":
            model.zero_grad()
            x, y = batch
            F.cross_entropy(model(x), y).backward()
        for group in pruner.step(interactive=True):
            record_group(group, pruner.DG, names, kept)
            group.prune()
    model.zero_grad(set_to_none=True)
    check_runs(model, example_input)
    model.train(was_training)
    kept.ratio = ratio
    return model, (channel_map.compose(kept) if channel_map is not None else kept)


def record_group(group, graph, names: dict[nn.Module, str], kept: ChannelMap) -> None:
    """Drop the group's removed positions from each layer's kept list; positions are relative to the
    layer as it is now, so applying them in order composes the steps."""
    done = set()
    for dep, idxs in group:
        name = names.get(dep.target.module)
        if name is None:
            continue
        entry = kept.layers[name]
        side = "out" if entry.kind == "bn" or graph.is_out_channel_pruning_fn(dep.handler) else "inp"
        if (name, side) in done:
            continue
        done.add((name, side))
        removed = {int(i) for i in idxs}
        current = getattr(entry, side)
        setattr(entry, side, [c for pos, c in enumerate(current) if pos not in removed])


def check_runs(model: nn.Module, example_input: torch.Tensor) -> None:
    try:
        with torch.no_grad():
            model(example_input)
    except RuntimeError as e:
        raise UserError(f"the pruned model no longer runs ({str(e).splitlines()[0]}); the dependency graph "
                        "could not follow this model, use a zoo architecture") from None


def pruned_costs(arch: str, input_shape: Sequence[int], num_classes: int, width: float,
                 ratios: Sequence[float], round_to: int | None = None, steps: int = 1) -> list[dict]:
    """FLOPs, MACs and params of ``arch`` pruned at each ratio, beside the dense network."""
    from .. import models
    from ..flops import count

    c, h, _ = input_shape
    dense = models.create(arch, num_classes, c, h, width)
    base = count(dense, input_shape)
    out = []
    for r in ratios:
        pruned, _ = prune(dense, r, torch.zeros(1, *input_shape), steps=steps, arch=arch, round_to=round_to)
        cost = count(pruned, input_shape)
        out.append({"ratio": r, "flops": cost["flops"], "macs": cost["macs"], "params": cost["params"],
                    "flops_ratio": base["flops"] / max(cost["flops"], 1)})
    return out


def save_pruned(stem, model: nn.Module, channel_map: ChannelMap, spec: dict, **metadata) -> None:
    """A pruned checkpoint: weights, metadata with the map inside, and the map alone beside them."""
    from pathlib import Path

    from ..io import checkpoint
    from ..io.storage import write_text

    checkpoint.save(stem, model, {**spec, "channel_map": channel_map.to_dict(), **metadata})
    write_text(Path(str(stem) + ".map.json"), channel_map.to_json() + "\n")
