"""Shared helpers for the benchmarks: timing by median of repeats, and table printing."""

from __future__ import annotations

import platform
import statistics
import time
from datetime import date

import torch


def median_rate(fn, items: int, repeats: int = 3, warmup: int = 1) -> float:
    """Items per second of ``fn()``, the median over ``repeats`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


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
