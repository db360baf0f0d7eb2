"""torch.distributed under ``torchrun``: process-group set-up, which rank writes, and the collectives
the toolkit needs. Outside torchrun (no WORLD_SIZE, or 1) every function is the single-process no-op,
so the same code runs on a laptop and on many GPUs.

Data parallelism keeps the global batch: each step's batch (``--batch-size``) is cut into one slice
per rank, so N processes take the same steps, on the same samples, as one process."""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist

from .errors import UserError

T = TypeVar("T")


def launched() -> bool:
    """True under torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> bool:
    """Join the process group torchrun describes (nccl on CUDA, gloo on the CPU); idempotent."""
    if not launched() or not dist.is_available():
        return False
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            local, gpus = local_device_index(), torch.cuda.device_count()
            if local >= gpus:
                raise UserError(f"local rank {local} has no GPU of its own: this node shows {gpus}; start at most "
                                f"{gpus} processes per node (--nproc_per_node), or hide the GPUs "
                                "(CUDA_VISIBLE_DEVICES=) to run every process on the CPU")
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if cuda else "gloo")
        atexit.register(shutdown)
    return True


def shutdown() -> None:
    """Leave the process group before the interpreter exits: a gloo group left to die with the process
    can abort it ("terminate called without an active exception") after its work is done. No barrier:
    a rank that exits on an error must not wait for ranks still at work."""
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return init() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def local_device_index() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def barrier() -> None:
    if active():
        dist.barrier()


def shard(n: int, r: int | None = None, w: int | None = None) -> slice:
    """This rank's contiguous share of ``n`` items; the shares of ranks 0..w-1 tile 0..n in order."""
    r = rank() if r is None else r
    w = world_size() if w is None else w
    return slice(n * r // w, n * (r + 1) // w)


def gather_shards(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's shard in rank order, on every rank. Shards may differ in length, and
    an empty one (a rank that had nothing to do) takes its row shape from the others."""
    if not active():
        return local
    device = torch.device("cuda", local_device_index()) if dist.get_backend() == "nccl" else torch.device("cpu")
    shapes: list = [None] * world_size()
    dist.all_gather_object(shapes, tuple(local.shape) if len(local) else None)
    rows = next((s[1:] for s in shapes if s is not None), None)
    if rows is None:
        return local
    longest = max(s[0] if s is not None else 0 for s in shapes)
    padded = torch.zeros(longest, *rows, dtype=local.dtype, device=device)
    padded[: len(local)] = local.reshape(-1, *rows).to(device)
    parts = [torch.empty_like(padded) for _ in shapes]
    dist.all_gather(parts, padded)
    return torch.cat([p[: s[0] if s is not None else 0] for p, s in zip(parts, shapes, strict=True)]).to(local.device)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if active():
        t = t.clone()
        dist.all_reduce(t)
    return t


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result to every rank."""
    if not active():
        return fn()
    box = [fn() if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]
