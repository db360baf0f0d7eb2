"""The engine's CUDA paths side by side: fp32 against bf16 and fp16 autocast, NCHW against
channels_last, eager against torch.compile. Each variant trains the same initial network on the same
batches; training is timed epoch by epoch, round-robin, and every variant's test accuracy after its
epochs shows that the fast paths still learn.

    python bench/gpu_paths.py [--arch preact20] [--images 20000] [--batch-size 256] [--epochs 4]

On a machine without CUDA it says so and exits: these paths do not exist on the CPU."""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from common import header, table
from prunefuse import data, models
from prunefuse.data.batching import Normalizer
from prunefuse.train import TrainConfig, fit, predict

VARIANTS = {  # name: (amp, channels_last, compile)
    "fp32, NCHW": ("off", False, False),
    "fp32, channels_last": ("off", True, False),
    "bf16, channels_last": ("bf16", True, False),
    "fp16, channels_last": ("fp16", True, False),
    "bf16, channels_last, compile": ("bf16", True, True),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="preact20")
    p.add_argument("--images", type=int, default=20_000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=4, help="timed epochs per variant, after one warm-up epoch")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to compare")
        return
    header(f"CUDA training paths, {args.arch} on Fashion-MNIST ({args.images} images), batch {args.batch_size}, "
           f"{torch.cuda.get_device_name()}")
    train = data.load("fashion-mnist", "train").subset(torch.arange(args.images))
    test = data.load("fashion-mnist", "test")
    norm = Normalizer(*train.channel_stats())
    torch.manual_seed(0)
    initial = models.create(args.arch, 10, 1, 28)
    nets = {name: copy.deepcopy(initial) for name in VARIANTS}
    times: dict = {name: [] for name in VARIANTS}
    for epoch in range(args.epochs + 1):  # epoch 0 warms up (cuDNN autotuning, compilation)
        for name, (amp, channels_last, compiled) in VARIANTS.items():
            config = TrainConfig(epochs=1, batch_size=args.batch_size, lr=0.05, schedule="constant", amp=amp,
                                 channels_last=channels_last, compile=compiled, seed=epoch)
            torch.cuda.synchronize()
            start = time.perf_counter()
            fit(nets[name], train, config, normalizer=norm, quiet=True)
            torch.cuda.synchronize()
            if epoch:
                times[name].append(time.perf_counter() - start)
    base = args.images / statistics.median(times["fp32, NCHW"])
    rows = []
    for name, (amp, channels_last, _) in VARIANTS.items():
        rate = args.images / statistics.median(times[name])
        logits = predict(nets[name], test.images, norm, 1024, channels_last, amp)
        accuracy = (logits.argmax(1).cpu() == test.labels).float().mean().item()
        rows.append({"variant": name, "train img/s": rate, "÷ fp32 NCHW": rate / base,
                     f"test acc after {args.epochs + 1} epochs": accuracy})
    table(rows)


if __name__ == "__main__":
    main()
