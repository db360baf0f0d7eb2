"""LeNet-5 with 'same' padding on both convolutions, so any input of 8 pixels or more fits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Classifier, scaled


class LeNet5(Classifier):
    def __init__(self, num_classes: int, in_channels: int = 1, image_size: int = 28, width: float = 1.0):
        super().__init__()
        c1, c2, f1, f2 = (scaled(c, width) for c in (6, 16, 120, 84))
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        side = image_size // 4
        self.fc1 = nn.Linear(c2 * side * side, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.classifier = nn.Linear(f2, num_classes)

    def initialize(self) -> None:
        """PyTorch's default layer initialisation, as LeNet-5 is usually trained."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.reset_parameters()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return F.relu(self.fc2(x))
