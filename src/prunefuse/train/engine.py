"""The training loop and batched inference that every method in the toolkit runs on."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import distributed
from ..data.batching import Normalizer, TensorBatches
from ..data.dataset import Dataset
from ..data.registry import DATASETS, grid_side
from ..errors import UserError
from ..io.storage import append_jsonl
from .config import TrainConfig
from .objective import Objective, default_objective
from .runtime import autocast, autocast_dtype, configure_threads, resolve_device, safe_channels_last
from .schedule import make_scheduler


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # training alone; evaluation has its own line
    eval_seconds: float = 0.0  # the per-epoch test evaluations
    images_per_second: float = 0.0
    samples: int = 0  # training samples processed, over all epochs
    epochs: int = 0
    steps: int = 0  # optimizer steps
    test_accuracy: float | None = None


def default_crop_padding(image_size: int) -> int:
    return 4 if image_size >= 28 else 1


def default_flip(dataset_name: str) -> bool:
    info = DATASETS.get(dataset_name)
    return info.flip if info else True


def kd_alpha(config: TrainConfig, step: int, total: int) -> float:
    """The cross-entropy weight at ``step``: constant, or rising linearly to 1 so that distillation
    shapes the start of training and the labels alone its end."""
    if config.kd_schedule == "constant":
        return config.kd_alpha
    return min(1.0, config.kd_alpha + (1 - config.kd_alpha) * step / max(total, 1))


def progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty() and distributed.is_main()


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool,
                  trains: bool = True) -> tuple[nn.Module, bool]:
    """Move to the device in the memory format asked for (for a model that trains, where its backward is
    safe in it); returns the model and whether it is channels_last."""
    channels_last = safe_channels_last(model, device, channels_last) if trains else channels_last
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return model, channels_last


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, normalizer: Normalizer, batch_size: int = 1024,
            channels_last: bool = True, amp: str = "auto", with_features: bool = False, device: str | None = None):
    """Logits (and penultimate features) for uint8 images, in large batches under inference mode;
    results come back as float32 on the CPU. ``device`` None runs on the model's device; a name
    ("auto": the GPU where there is one) moves the model there first, as pool scoring wants for a
    selector read back from its checkpoint onto the CPU."""
    if device is not None:
        model.to(resolve_device(device))
    device = next(model.parameters()).device
    dtype = autocast_dtype(amp, device)
    was_training = model.training
    model.eval()
    logits, feats = [], []
    rank, world = distributed.rank(), distributed.world_size()
    batches = TensorBatches(images, torch.zeros(len(images), dtype=torch.long), normalizer, batch_size,
                            channels_last=channels_last)
    for b, (x, _) in enumerate(batches):
        if b % world != rank:  # under torchrun, rank r scores batches r, r + N, r + 2N, ...
            continue
        x = x.to(device, non_blocking=True)
        with autocast(device, dtype):
            if with_features:
                f = model.forward_features(x)
                z = model.forward_head(f)
                feats.append(f.float().cpu())
            else:
                z = model(x)
        logits.append(z.float().cpu())
    model.train(was_training)
    out = torch.cat(logits) if logits else torch.zeros(0)
    if world > 1:
        out = interleave_batches(out, len(images), batch_size)
        feats = [interleave_batches(torch.cat(feats), len(images), batch_size)] if with_features else feats
    return (out, torch.cat(feats)) if with_features else out


def interleave_batches(local: torch.Tensor, n: int, batch_size: int) -> torch.Tensor:
    """Gather every rank's batches (rank r holds batches r, r + N, ...) back into the input order, so
    each batch is scored exactly as one process scores it."""
    world = distributed.world_size()
    gathered = distributed.gather_shards(local)
    sizes = [min(batch_size, n - b * batch_size) for b in range(-(-n // batch_size))]
    per_rank = [[s for b, s in enumerate(sizes) if b % world == r] for r in range(world)]
    chunks, start = [], 0
    for r in range(world):
        chunks.append(list(torch.split(gathered[start: start + sum(per_rank[r])], per_rank[r])))
        start += sum(per_rank[r])
    return torch.cat([chunks[b % world][b // world] for b in range(len(sizes))]) if sizes else gathered


def evaluate(model: nn.Module, data: Dataset, normalizer: Normalizer, config: TrainConfig,
             objective: Objective | None = None) -> float:
    """Accuracy of ``model`` on ``data`` (the objective's notion of correct), scored as ``predict`` does."""
    objective = objective or default_objective(data)
    logits = predict(model, data.images, normalizer, config.eval_batch_size, config.channels_last, config.amp)
    return float(objective.correct(logits, data.labels)) / len(data) if len(data) else 0.0


def data_parallel(model: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """Wrap in DistributedDataParallel under torchrun (else return the model as it is)."""
    if distributed.world_size() == 1:
        return model
    if sync_bn:
        if device.type != "cuda":
            raise UserError("--sync-bn needs CUDA (PyTorch's SyncBatchNorm has no CPU kernel); on the CPU batch "
                            "norm stays per process")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def fit(model: nn.Module, train: Dataset, config: TrainConfig, test: Dataset | None = None,
        normalizer: Normalizer | None = None, teacher: nn.Module | None = None,
        metrics_path: str | Path | None = None, quiet: bool = False, desc: str = "train",
        on_epoch: Callable[[dict], None] | None = None, objective: Objective | None = None,
        eval_every: int = 1) -> TrainResult:
    """Train ``model`` in place with SGD on an in-memory split; optionally distil from ``teacher``.
    ``objective`` replaces the cross-entropy (multitask networks pass their summed task losses).

    Trains ``config.epochs`` epochs, or more where ``config.min_steps`` asks for more optimizer steps.
    ``test`` is evaluated every ``eval_every`` epochs and after the last. Per-epoch metrics go to
    ``metrics_path`` (JSON lines) and to ``on_epoch``."""
    configure_threads()
    objective = objective or default_objective(train, config.label_smoothing)
    device = resolve_device(config.device)
    dtype = autocast_dtype(config.amp, device)
    normalizer = normalizer or Normalizer(*train.channel_stats())
    model, channels_last = prepare_model(model, device, config.channels_last)
    teacher_format = None
    if teacher is not None:  # the teacher picks its own memory format; the student's never changes for it
        teacher, teacher_channels_last = prepare_model(teacher, device, config.channels_last, trains=False)
        teacher.eval()
        teacher_format = torch.channels_last if teacher_channels_last else torch.contiguous_format
    step_model = data_parallel(model, device, config.sync_bn)
    step_model = torch.compile(step_model) if config.compile else step_model
    generator = torch.Generator().manual_seed(config.seed)
    image_size = train.images.shape[-1]
    batches = TensorBatches(
        train.images.to(device), train.labels.to(device), normalizer, config.batch_size, shuffle=True,
        crop_padding=config.crop_padding if config.crop_padding is not None else default_crop_padding(image_size),
        flip=config.flip if config.flip is not None else default_flip(train.name),
        tiles=grid_side(train.name) if config.shuffle_tiles else 1,
        drop_last=len(train) > config.batch_size, channels_last=channels_last, generator=generator,
        rank=distributed.rank(), world_size=distributed.world_size())
    world = distributed.world_size()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    epochs = max(config.epochs, -(-config.min_steps // len(batches)))
    scheduler = make_scheduler(config.schedule, optimizer, epochs * len(batches))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    total_steps = epochs * len(batches)
    result = TrainResult(epochs=epochs, steps=total_steps)
    bar = tqdm(total=epochs * len(batches), desc=desc, disable=not progress_enabled(quiet), leave=False)
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        for x, y in batches:
            with autocast(device, dtype):
                logits = step_model(x)
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = teacher(x.contiguous(memory_format=teacher_format))
                    alpha = kd_alpha(config, scheduler.last_epoch, total_steps)
                    loss = objective.distill(logits, teacher_logits, y, alpha, config.kd_temperature)
                else:
                    loss = objective.loss(logits, y)
                if world > 1:  # DDP averages over ranks: weight each slice by its share of the global batch
                    loss = loss * (len(y) * world / batches.global_batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach() * batches.global_batch
            correct += objective.correct(logits.detach(), y)
            seen += len(y)
            bar.update()
        seconds = time.perf_counter() - epoch_start
        if world > 1:
            totals = distributed.all_reduce_sum(torch.stack([loss_sum / world, correct.float(),
                                                             torch.tensor(float(seen), device=device)]))
            loss_sum, correct, seen = totals[0], totals[1], int(totals[2])
        record = {"epoch": epoch + 1, "epochs": epochs, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": float(loss_sum) / max(seen, 1), "train_accuracy": float(correct) / max(seen, 1),
                  "samples": seen, "seconds": round(seconds, 3),
                  "images_per_second": round(seen / max(seconds, 1e-9), 1)}
        if test is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            eval_start = time.perf_counter()
            record["test_accuracy"] = evaluate(model, test, normalizer, config, objective)
            result.test_accuracy = record["test_accuracy"]
            record["eval_seconds"] = round(time.perf_counter() - eval_start, 3)
            result.eval_seconds += record["eval_seconds"]
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record.get('test_accuracy', 0):.4f}")
        result.history.append(record)
        if metrics_path is not None:
            append_jsonl(metrics_path, {"phase": desc, **record})
        if on_epoch is not None:
            on_epoch(record)
    bar.close()
    result.seconds = time.perf_counter() - start - result.eval_seconds
    result.samples = sum(h["samples"] for h in result.history)
    result.images_per_second = result.samples / max(result.seconds, 1e-9)
    model.eval()
    return result
