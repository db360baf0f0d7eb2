"""Learning-rate schedules as step-indexed multipliers of the peak rate. Each is a pure function of
(step, total steps) with no division by a phase length, so a run of one or two steps trains too."""

from __future__ import annotations

import math

import torch

# The reference protocol (SVP, PruneFuse): 181 epochs as (1, 90, 45, 45) at lr (0.01, 0.1, 0.01, 0.001).
REFERENCE_EPOCHS = (1, 90, 45, 45)
REFERENCE_FACTORS = (0.1, 1.0, 0.1, 0.01)
# One-cycle (Smith & Topin): linear warm-up from peak/25 over the first quarter, then linear decay to
# peak/25e4, the shape and end points of torch's OneCycleLR defaults.
ONECYCLE_WARMUP = 0.25
ONECYCLE_START = 1 / 25
ONECYCLE_END = 1 / 25e4


def piecewise_factor(step: int, total_steps: int) -> float:
    """The reference schedule, stretched or shrunk to ``total_steps``; integer arithmetic, so the
    phase edges fall exactly where the reference puts them."""
    reference_total = sum(REFERENCE_EPOCHS)
    edge = 0
    for length, factor in zip(REFERENCE_EPOCHS, REFERENCE_FACTORS):
        edge += length
        if step * reference_total < edge * total_steps:
            return factor
    return REFERENCE_FACTORS[-1]


def onecycle_factor(step: int, total_steps: int) -> float:
    """Warm up over the first quarter of ``total_steps``, then decay; ``step`` counts from 0."""
    warmup = ONECYCLE_WARMUP * total_steps
    if step < warmup:
        return ONECYCLE_START + (1 - ONECYCLE_START) * step / warmup
    decay = max(total_steps - warmup, 1e-9)
    return max(ONECYCLE_END, 1 - (1 - ONECYCLE_END) * (step - warmup) / decay)


def cosine_factor(step: int, total_steps: int) -> float:
    return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


FACTORS = {"piecewise": piecewise_factor, "onecycle": onecycle_factor, "cosine": cosine_factor,
           "constant": lambda step, total: 1.0}


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, total_steps: int):
    """A LambdaLR over ``total_steps`` optimizer steps (at least 1) for a schedule in ``FACTORS``."""
    total_steps = max(1, total_steps)
    factor = FACTORS[name]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step, total_steps))
