"""Cost and accuracy of every non-empty subset of tasks, for a merged network or for a set of
separate single-task networks (whose subset cost is the sum of the networks it needs)."""

from __future__ import annotations

import itertools
import statistics
import time
from functools import partial

import torch

from ..flops import count
from .grouped import GroupedNet


def all_subsets(n: int) -> list[list[int]]:
    return [list(c) for size in range(1, n + 1) for c in itertools.combinations(range(n), size)]


def subset_flops(net: GroupedNet, tasks: list[int]) -> int:
    """FLOPs (2 x MACs) of one sample, counted by running the subset under the FLOPs counter and
    checked against the analytic sum over the groups the subset computes."""
    measured = count(net, net.plan.input_shape, partial(net, tasks=tasks))["flops"]
    analytic = 2 * net.analytic_macs(tasks)
    if measured != analytic:
        raise RuntimeError(f"FLOPs counter {measured} != analytic {analytic} for tasks {tasks}")
    return measured


@torch.inference_mode()
def latency_ms(net: GroupedNet, tasks: list[int], batch: int, repeats: int) -> float:
    """Median wall-clock of one forward pass over ``batch`` images, on the CPU."""
    net = net.eval().cpu()
    x = torch.randn(batch, *net.plan.input_shape)
    net(x, tasks)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net(x, tasks)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def subset_table(nets: dict[int, GroupedNet] | GroupedNet, accuracy: dict[int, float], n: int,
                 batches: list[int] | tuple[int, ...] = (1, 64), repeats: int = 20) -> list[dict]:
    """One entry per subset, with its latency at each batch size in ``batches`` (``latency_ms`` maps the
    batch size to milliseconds). ``nets`` is a merged network or, for no merging, one network per task."""
    rows = []

    def latencies(net: GroupedNet, tasks: list[int]) -> dict[str, float]:
        return {str(b): latency_ms(net, tasks, b, repeats) for b in batches}

    if not isinstance(nets, GroupedNet):  # each network is measured once; a subset sums its networks
        alone = {t: (subset_flops(net, [0]), latencies(net, [0])) for t, net in nets.items()}
    for tasks in all_subsets(n):
        if isinstance(nets, GroupedNet):
            flops, latency = subset_flops(nets, tasks), latencies(nets, tasks)
        else:
            flops = sum(alone[t][0] for t in tasks)
            latency = {str(b): sum(alone[t][1][str(b)] for t in tasks) for b in batches}
        rows.append({"tasks": tasks, "flops": flops, "macs": flops // 2,
                     "latency_ms": {b: round(v, 4) for b, v in latency.items()},
                     "accuracy": {str(t): accuracy[t] for t in tasks}})
    return rows
