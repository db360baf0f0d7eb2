"""The model zoo: ``create(arch, ...)`` and ``names()``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from ..errors import UserError
from .base import Classifier
from .lenet import LeNet5
from .preact_resnet import PreActResNet
from .resnet import ResNet18
from .vgg import VGG


def _preact(depth: int, num_classes: int, in_channels: int, image_size: int, width: float) -> Classifier:
    return PreActResNet(depth, num_classes, in_channels, width)


Builder = Callable[[int, int, int, float], Classifier]

_REGISTRY: dict[str, Builder] = {
    **{f"preact{d}": partial(_preact, d) for d in (8, 14, 20, 56, 110, 164)},
    "resnet18": lambda n, c, s, w: ResNet18(n, c, w),
    "vgg11": lambda n, c, s, w: VGG(11, n, c, s, w),
    "vgg16": lambda n, c, s, w: VGG(16, n, c, s, w),
    "lenet5": lambda n, c, s, w: LeNet5(n, c, s, w),
}


def names() -> list[str]:
    return list(_REGISTRY)


def is_model(arch: str) -> bool:
    return arch in _REGISTRY


def check_name(arch: str) -> None:
    """Refuse an unknown architecture before any data is read."""
    if arch not in _REGISTRY:
        raise UserError(f"unknown architecture '{arch}'; choose one of: {', '.join(_REGISTRY)}")


def create(arch: str, num_classes: int, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> nn.Module:
    """Build a freshly initialised zoo model (seed with ``torch.manual_seed`` first)."""
    check_name(arch)
    if num_classes < 1 or in_channels < 1:
        raise UserError(f"num_classes and in_channels must be positive, got {num_classes} and {in_channels}")
    if image_size < 8:
        raise UserError(f"image_size {image_size} is too small; the zoo needs inputs of 8x8 pixels or more")
    if not 0 < width <= 16:
        raise UserError(f"width {width} is out of range; use a multiplier in (0, 16]")
    return _REGISTRY[arch](num_classes, in_channels, image_size, width)


__all__ = ["Classifier", "check_name", "create", "is_model", "names"]
