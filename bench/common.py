"""Shared helpers for the benchmarks: the networks they compare, timing by median of repeats, and table
printing."""

from __future__ import annotations

import math
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch

from prunefuse import models
from prunefuse.active.stats import mean_interval
from prunefuse.cli import build_parser
from prunefuse.cli.merge import merge_config
from prunefuse.errors import UserError
from prunefuse.io.rundir import RunDirectory
from prunefuse.io.storage import read_json
from prunefuse.merge import run_merge
from prunefuse.merge.pipeline import MergeConfig, saved_in_todays_schema
from prunefuse.pruning import prune


def pruned_family(arch: str, shape: tuple[int, ...], variants) -> dict[str, torch.nn.Module]:
    """A seeded dense network and copies of it pruned at each (ratio, round_to) of ``variants``, as
    PruneFuse prunes its selector (5 steps)."""
    torch.manual_seed(0)
    dense = models.create(arch, 10, shape[0], shape[1])
    nets = {"dense": dense}
    for p, r in variants:
        name = f"p={p:g}" + (f" round_to={r}" if r else "")
        nets[name] = prune(dense, p, torch.zeros(1, *shape), steps=5, arch=arch, round_to=r)[0]
    return nets


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


def parsed_merge_config(flags: list[str], out: Path | None = None) -> MergeConfig:
    """``prunefuse merge FLAGS``' config; bad flags are refused in one line, as the CLI gives them (named
    by ``out`` where a bench has several runs)."""
    args = build_parser().parse_args(["merge", "--out", str(out or "unused"), "--quiet", *flags])
    try:
        return merge_config(args)
    except UserError as e:
        raise SystemExit(f"{out}: {e}" if out else str(e)) from None


def merge_results(out: Path, flags: list[str], as_recorded: bool = False) -> dict:
    """``prunefuse merge FLAGS --out OUT``'s results; a finished run is read back, not rerun, if it ran
    with the config these flags give (``as_recorded``: whatever it ran with, for a bench given no
    merge flags). A new run is read back too, so that both come as JSON has them (task keys as
    strings) and compare equal."""
    config = parsed_merge_config(flags, out)
    try:
        if not (out / "results.json").is_file():
            run_merge(config, out, quiet=True)
        elif not as_recorded:
            RunDirectory(out, "merge", config.to_dict(), upgrade=saved_in_todays_schema,
                         hint="give another --out or remove it").check(False)
    except UserError as e:  # names the folder itself
        raise SystemExit(str(e)) from None
    return read_json(out / "results.json")


def finished_results(run: Path, hint: str) -> dict:
    """A finished merge run's results, read and never run (the caller's flags are not the run's own)."""
    if not (run / "results.json").is_file():
        raise SystemExit(f"{run} holds no finished merge run; {hint}")
    return read_json(run / "results.json")


def largest_drop(results: dict, method: dict) -> float:
    """How far ``method``'s worst task falls below its single-task network on test, in points: the
    accuracy target is one point."""
    single = results["single_task"]["test_accuracy"]
    return 100 * max(float(single[t]) - a for t, a in method["test_accuracy"].items())


def subset_costs(method: dict) -> dict:
    """A merge method's FLOPs with all its tasks and for one task, in MFLOPs, as the tables show them."""
    single = [s["flops"] for s in method["subsets"] if len(s["tasks"]) == 1]
    return {"MFLOPs all tasks": method["subsets"][-1]["flops"] / 1e6,
            "MFLOPs one task (mean)": sum(single) / len(single) / 1e6}


def ratio_columns(label: str, ratio: dict) -> dict:
    """``flops_ratios``' four figures as table columns named ``LABEL all tasks`` and so on."""
    return {f"{label} {k.replace('_', ' ')}": v for k, v in ratio.items()}


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


def geometric_interval_text(ratios: list[float]) -> str:
    """The geometric mean of ``ratios`` with the t-interval of their logs, mapped back: FLOPs ratios
    multiply, so their spread over seeds is read on a log scale. One ratio has no interval."""
    i = mean_interval([math.log(v) for v in ratios])
    if i.n < 2:
        return f"{math.exp(i.mean):.3f}"
    return f"{math.exp(i.mean):.3f} [{math.exp(i.low):.3f}, {math.exp(i.high):.3f}]"
