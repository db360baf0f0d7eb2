"""Device, threads and mixed precision: picked once, used by training, scoring and benchmarks."""

from __future__ import annotations

import contextlib
import os

import torch

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
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for but CUDA is not available; use --device cpu")
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
