"""Measured speed of pruned against dense networks, beside their FLOPs ratio, in one run.

    python bench/pruned_speed.py [--archs preact20,preact56] [--ratios 0.5,0.6,0.7,0.8]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from common import header, median_rate, table
from prunefuse import models
from prunefuse.flops import count
from prunefuse.pruning import prune
from prunefuse.train import configure_threads
from prunefuse.train.engine import prepare_model


def rates(model, shape, train_batch, infer_batch):
    """Training and inference images per second, in the memory format the engine would use."""
    model, channels_last = prepare_model(model, torch.device("cpu"), True)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(train_batch, *shape).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (train_batch,))
    xi = torch.randn(infer_batch, *shape).contiguous(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def infer():
        model.eval()
        with torch.inference_mode():
            model(xi)

    return (median_rate(step, train_batch, repeats=5, warmup=2), median_rate(infer, infer_batch, repeats=5),
            "NHWC" if channels_last else "NCHW")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", default="preact20,preact56")
    parser.add_argument("--ratios", default="0.5,0.6,0.7,0.8")
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--infer-batch", type=int, default=512)
    args = parser.parse_args()
    configure_threads()
    shape = (3, 32, 32)
    header(f"Pruned vs dense speed on {shape}, train batch {args.train_batch}, inference batch {args.infer_batch}")
    rows = []
    for arch in args.archs.split(","):
        torch.manual_seed(0)
        dense = models.create(arch, 10, *shape[:2])
        dense_flops = count(dense, shape)["flops"]
        dense_train, dense_infer, fmt = rates(dense, shape, args.train_batch, args.infer_batch)
        rows.append({"arch": arch, "p": 0.0, "format": fmt, "MFLOPs": dense_flops / 1e6, "FLOPs ratio": 1.0,
                     "train img/s": dense_train, "train speed-up": 1.0, "infer img/s": dense_infer,
                     "infer speed-up": 1.0})
        for p in (float(r) for r in args.ratios.split(",")):
            pruned, _ = prune(dense, p, torch.zeros(1, *shape))
            flops = count(pruned, shape)["flops"]
            train, infer, fmt = rates(pruned, shape, args.train_batch, args.infer_batch)
            rows.append({"arch": arch, "p": p, "format": fmt, "MFLOPs": flops / 1e6, "FLOPs ratio": dense_flops / flops,
                         "train img/s": train, "train speed-up": train / dense_train, "infer img/s": infer,
                         "infer speed-up": infer / dense_infer})
    table(rows)


if __name__ == "__main__":
    main()
