"""Device, threads and mixed precision: picked once, used by training, scoring and benchmarks."""

from __future__ import annotations

import contextlib
import logging
import os

import torch
from torch import nn

from ..errors import UserError


def configure_threads() -> int:
    """Use every core this process may run on, unless the user fixed OMP_NUM_THREADS."""
    if not os.environ.get("OMP_NUM_THREADS"):
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:
            n = os.cpu_count() or 1
        torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            from ..distributed import local_device_index, world_size

            return torch.device("cuda", local_device_index() if world_size() > 1 else torch.cuda.current_device())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise UserError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for but CUDA is not available; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device '{name}' asked for but this machine has {torch.cuda.device_count()} GPU(s); "
                        "use cuda:0 up to the last one")
    return device


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16; the CPU runs in fp32 unless asked."""
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def channels_last_hazard(model: nn.Module) -> str | None:
    """torch 2.13's CPU backward of a 1x1 stride-2 convolution in channels_last has aborted the process
    with heap corruption when the layer has 2 to 7 input channels: an earlier session measured it, and
    CI hit an abort after the guard was taken out. Pruned shortcuts reach such widths.
    Returns the first such layer's name."""
    for name, m in model.named_modules():
        if (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and max(m.stride) > 1
                and 1 < m.in_channels < 8):
            return name
    return None


def safe_channels_last(model: nn.Module, device: torch.device, requested: bool) -> bool:
    """channels_last where asked for, except for training on the CPU through a hazardous layer."""
    if not requested or device.type != "cpu":
        return requested
    hazard = channels_last_hazard(model)
    if hazard is None:
        return True
    logging.getLogger("prunefuse").info(
        "channels_last off for training: layer %s is a 1x1 stride-2 convolution with under 8 input channels", hazard)
    return False
