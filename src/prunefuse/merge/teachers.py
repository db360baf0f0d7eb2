"""The single-task networks as one teacher whose heads line up with a merged network's, so that
joint training and pruning can distil each task from the network that was trained for it alone."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .grouped import GroupedNet


class TaskTeachers(nn.Module):
    """Copies of ``singles[t]`` for each t in ``which``, their logits side by side in that order. Copies,
    because training moves a teacher to its device and sets its mode, and the single networks are
    still to be merged and pruned on the CPU."""

    def __init__(self, singles: list[GroupedNet], which: tuple[int, ...]):
        super().__init__()
        self.nets = nn.ModuleList(copy.deepcopy(singles[t]) for t in which)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(x) for net in self.nets], 1)
