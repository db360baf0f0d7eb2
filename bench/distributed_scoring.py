"""Pool-scoring throughput under torchrun: 1 process against 2 processes on the same pool, as ratios.

    python bench/distributed_scoring.py [--arch preact20] [--pool 10000] [--batch-size 1024]

The driver launches this file under ``torch.distributed.run`` once per configuration; each launch
times ``predict`` (sharded by batches across ranks, gathered on every rank) and rank 0 reports."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from common import header, table
from prunefuse import data, distributed, models
from prunefuse.data.batching import Normalizer
from prunefuse.train import predict

CONFIGS = [("1 process x 1 thread", 1, 1), ("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1)]


def worker(args) -> None:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    name = "fashion-mnist" if data.locate("fashion-mnist") else "digits"
    train = data.load(name, "train")
    images = train.images[torch.arange(args.pool) % len(train)]
    normalizer = Normalizer(*train.channel_stats())
    torch.manual_seed(0)
    model = models.create(args.arch, 10, *train.input_shape[:2])
    predict(model, images[: args.batch_size], normalizer, args.batch_size)  # warm-up
    times = []
    for _ in range(args.repeats):
        distributed.barrier()
        start = time.perf_counter()
        predict(model, images, normalizer, args.batch_size)
        times.append(time.perf_counter() - start)
    if distributed.is_main():
        with open(args.report, "w") as f:
            json.dump({"dataset": name, "images_per_second": args.pool / sorted(times)[len(times) // 2]}, f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="preact20")
    p.add_argument("--pool", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--report", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.report:
        return worker(args)
    rows, base = [], None
    for label, nproc, threads in CONFIGS:
        with tempfile.NamedTemporaryFile(suffix=".json") as report:
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                            __file__, "--arch", args.arch, "--pool", str(args.pool), "--batch-size",
                            str(args.batch_size), "--repeats", str(args.repeats), "--report", report.name],
                           check=True, env=env, capture_output=True)
            with open(report.name) as f:
                result = json.load(f)
        base = base or result["images_per_second"]
        rows.append({"configuration": label, "images/s": round(result["images_per_second"], 1),
                     "vs 1x1": round(result["images_per_second"] / base, 2)})
    header(f"Pool scoring under torchrun: {args.arch}, {args.pool} {result['dataset']} images, "
           f"batch {args.batch_size}")
    table(rows)


if __name__ == "__main__":
    main()
