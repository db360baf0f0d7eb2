"""What the training loop minimises and counts as correct, so multitask networks share the loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F


class Objective(Protocol):
    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class CrossEntropy:
    label_smoothing: float = 0.0

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(1) == y).sum()
