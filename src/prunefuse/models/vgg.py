"""CIFAR-style VGG with batch norm; a max-pool is skipped once the map is 1 pixel, so small
inputs (28x28, 8x8) work too."""

from __future__ import annotations

import torch
from torch import nn

from .base import Classifier, scaled

CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(Classifier):
    def __init__(self, depth: int, num_classes: int, in_channels: int = 3, image_size: int = 32,
                 width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        for v in CONFIGS[depth]:
            if v == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                continue
            out = scaled(v, width)
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        self.initialize()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)
