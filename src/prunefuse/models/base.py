"""The contract every zoo model keeps: penultimate features and the classifier as separate calls,
so selection (k-centers, BADGE) and fusion need no forward hooks."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    classifier: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def initialize(self) -> None:
        """A fresh draw of the architecture's own initialisation (seed with ``torch.manual_seed``)."""
        init_weights(self)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convolutions, unit BN, small linear layers: the usual CIFAR-ResNet start."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.Linear)):
            m.reset_parameters()
        elif hasattr(m, "reset_running_stats"):
            m.reset_running_stats()


def scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))
