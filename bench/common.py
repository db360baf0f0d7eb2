"""Shared helpers for the benchmarks: timing by median of repeats, and table printing."""

from __future__ import annotations

import platform
import statistics
import time
from datetime import date

import torch


def median_rate(fn, items: int, repeats: int = 3, warmup: int = 1) -> float:
    """Items per second of ``fn()``, the median over ``repeats`` after ``warmup`` calls."""
    return interleaved_rates({"only": fn}, items, repeats, warmup)["only"]


def interleaved_rates(fns: dict, items: int, repeats: int = 5, warmup: int = 1) -> dict:
    """Items per second of each function, timed round-robin so that drift in the machine's speed
    (shared, noisy hosts) falls on every contender alike; the median of ``repeats`` rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: items / statistics.median(t) for name, t in times.items()}


def header(title: str) -> None:
    print(f"# {title}\n{date.today()} | {platform.processor() or platform.machine()} | "
          f"torch {torch.__version__} | {torch.get_num_threads()} thread(s)\n")


def table(rows: list[dict]) -> None:
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    print()
