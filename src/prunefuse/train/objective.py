"""What the training loop minimises and counts as correct, so multitask networks share the loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from .distill import binary_kd_loss, kd_loss


class Objective(Protocol):
    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def distill(self, logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, alpha: float,
                temperature: float) -> torch.Tensor: ...


@dataclass(frozen=True)
class CrossEntropy:
    label_smoothing: float = 0.0

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(1) == y).sum()

    def distill(self, logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, alpha: float,
                temperature: float) -> torch.Tensor:
        return kd_loss(logits, teacher_logits, y, alpha, temperature, self.label_smoothing)


@dataclass(frozen=True)
class MultiLabel:
    """Independent binary attributes: summed-over-attributes logistic loss; a sample counts as
    correct by the fraction of its attributes predicted right (so accuracy is mean binary accuracy)."""

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, y.float())

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((logits > 0) == y.bool()).float().mean(1).sum()

    def distill(self, logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, alpha: float,
                temperature: float) -> torch.Tensor:
        return binary_kd_loss(logits, teacher_logits, y, alpha, temperature)


def objective_for(multilabel: bool, label_smoothing: float = 0.0) -> Objective:
    """Cross-entropy for one class per image, the logistic loss for binary attributes."""
    return MultiLabel() if multilabel else CrossEntropy(label_smoothing)


def default_objective(data, label_smoothing: float = 0.0) -> Objective:
    return objective_for(data.multilabel, label_smoothing)
