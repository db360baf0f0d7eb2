"""VIB pruning (Dai et al. 2018, VIBNet), the PAM paper's main pruner: a multiplicative gate
z = μ + ε·σ on every neuron's output, trained with the task losses plus an information penalty
½·log(1 + μ²/σ²) per neuron (weighted by the neuron's spatial size), after which the neurons whose gate
carries no signal (μ²/σ² below ``GATE_THRESHOLD``) are removed and the kept gates' μ are folded into
the next layer's weights, so the pruned network needs no gates.

As in the authors' code: μ starts near 1 and log σ² near -9, the noise is drawn per sample and
channel, fully connected layers weigh their penalty ``FC_WEIGHT`` times more than convolutions. The
gate sits after max-pooling (the authors put it before), so folding μ forward is exact; and every
group, exclusive ones included, is penalised alike, so one pruner treats every merging method the same.
The authors' LeNet-5 run also multiplies each layer by a hand-set factor, which makes a fully
connected neuron's penalty 18-31 times a conv channel's (9.8, 13.7, 300, 249 per neuron on 28×28
images); here it is the other way round (676, 121, 30, 30 on the 56×56 grid), because their
weights prune the fully connected layers first (to 3 neurons in one network), keep every conv
channel and raise the FLOPs (4.72 and 5.30 against 3.91 and 3.13 MFLOPs on two networks,
BENCHMARKS.md, issue 9)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from ..data.batching import Normalizer
from ..data.dataset import Dataset
from ..io.rundir import derive_seed
from ..train import TrainConfig, fit
from .grouped import GroupedNet
from .tasks import MultiTaskObjective

GATE_THRESHOLD = math.exp(-0.01)  # keep a neuron while μ²/σ² exceeds this (the authors' log-α threshold 0.01)
FC_WEIGHT = 30.0  # the authors' γ_fc / γ_conv


def key(layer: int, group: str) -> str:
    return f"l{layer}_{group}"


class Gates(nn.Module):
    """One gate per neuron of every group of a GroupedNet; called by its ``run_unit``."""

    def __init__(self, net: GroupedNet, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.mu, self.log_var, self.weight = nn.ParameterDict(), nn.ParameterDict(), {}
        sides = net.plan.sides()
        for layer, units in enumerate(net.units):
            spec = net.plan.layers[layer]
            for group in units:
                width = net.widths[layer][group]
                self.mu[key(layer, group)] = nn.Parameter(1 + 0.01 * torch.randn(width, generator=g))
                self.log_var[key(layer, group)] = nn.Parameter(-9 + 0.01 * torch.randn(width, generator=g))
                self.weight[key(layer, group)] = sides[layer][1] ** 2 if spec.kind == "conv" else FC_WEIGHT

    def forward(self, layer: int, group: str, x: torch.Tensor) -> torch.Tensor:
        mu = self.mu[key(layer, group)]
        if self.training:
            eps = torch.randn(x.shape[0], len(mu), device=x.device, dtype=x.dtype)
            z = mu + eps * torch.exp(0.5 * self.log_var[key(layer, group)])
        else:
            z = (mu * self.keep(layer, group)).expand(x.shape[0], -1)
        return x * z.view(*z.shape, *([1] * (x.dim() - 2)))

    def signal(self, layer: int, group: str) -> torch.Tensor:
        """μ²/σ² of each gate: how much of the neuron gets through the noise."""
        return self.mu[key(layer, group)].detach() ** 2 / torch.exp(self.log_var[key(layer, group)].detach())

    def keep(self, layer: int, group: str) -> torch.Tensor:
        return (self.signal(layer, group) > GATE_THRESHOLD).to(self.mu[key(layer, group)].dtype)

    def penalty(self) -> torch.Tensor:
        """Σ over gates of ½·weight·log(1 + μ²/σ²), per neuron on average."""
        total, count = 0.0, 0
        for k, mu in self.mu.items():
            total = total + 0.5 * self.weight[k] * torch.log1p(mu ** 2 / torch.exp(self.log_var[k])).sum()
            count += len(mu)
        return total / max(count, 1)


class PenalisedObjective:
    """The task losses plus ``strength`` times the gates' information penalty."""

    def __init__(self, objective: MultiTaskObjective, gates: Gates, strength: float):
        self.objective, self.gates, self.strength = objective, gates, strength

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.objective.loss(logits, y) + self.strength * self.gates.penalty()

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.objective.correct(logits, y)

    def distill(self, logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, alpha: float,
                temperature: float) -> torch.Tensor:
        return (self.objective.distill(logits, teacher_logits, y, alpha, temperature)
                + self.strength * self.gates.penalty())


def vib_prune(net: GroupedNet, train: Dataset, normalizer: Normalizer, objective: MultiTaskObjective,
              strength: float, epochs: int, train_config: TrainConfig, lr: float,
              log: Callable[[dict], None] | None = None, teacher: nn.Module | None = None) -> GroupedNet:
    """A pruned copy of ``net``: gates trained ``epochs`` epochs with penalty ``strength`` (distilling
    from ``teacher`` if given), silent neurons removed (at least one kept per group), kept gates folded
    into the next layer."""
    net = copy.deepcopy(net)
    seed = derive_seed(train_config.seed, f"vib{strength:g}")
    net.gates = Gates(net, seed)
    config = TrainConfig(**{**train_config.to_dict(), "epochs": epochs, "lr": lr, "schedule": "cosine",
                            "channels_last": False, "seed": seed})
    torch.manual_seed(seed)
    fit(net, train, config, normalizer=normalizer, objective=PenalisedObjective(objective, net.gates, strength),
        teacher=teacher, quiet=True)
    gates, net.gates = net.gates.cpu(), None
    net = net.cpu()
    removed = 0
    for layer, units in enumerate(net.units):
        for group in list(units):
            signal = gates.signal(layer, group)
            keep = signal > GATE_THRESHOLD
            if not keep.any():
                keep[int(signal.argmax())] = True
            net.scale_outputs(layer, group, gates.mu[key(layer, group)].detach() * keep)
            drop = (~keep).nonzero().flatten().tolist()
            if drop:
                net.remove(layer, group, drop)
                removed += len(drop)
    if log:
        log({"vib_strength": strength, "removed": removed, "widths": net.widths})
    return net
