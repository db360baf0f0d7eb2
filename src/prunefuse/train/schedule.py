"""Learning-rate schedules as step-indexed multipliers of the peak rate."""

from __future__ import annotations

import math

import torch

# The reference protocol (SVP, PruneFuse): 181 epochs as (1, 90, 45, 45) at lr (0.01, 0.1, 0.01, 0.001).
REFERENCE_EPOCHS = (1, 90, 45, 45)
REFERENCE_FACTORS = (0.1, 1.0, 0.1, 0.01)


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


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, peak_lr: float, total_steps: int):
    total_steps = max(1, total_steps)
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak_lr, total_steps=total_steps + 1,
                                                   pct_start=0.25, anneal_strategy="linear")

    def factor(step: int) -> float:
        if name == "piecewise":
            return piecewise_factor(step, total_steps)
        if name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
