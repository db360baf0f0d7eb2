"""The statistics behind a comparison: accuracy per budget over seeds, paired differences with a
95% confidence interval (Student's t over seeds), and the area under the budget-accuracy curve.
Active-learning gains are a few points and seed noise is as large, so methods are compared seed by
seed on the same pool, initial set and test set, never by their means alone."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

CONFIDENCE = 0.95


def accuracy_by_budget(run: dict) -> dict[int, float]:
    """{labels: test accuracy} of one run, at every budget where its target was evaluated."""
    return {r["labeled"]: r["accuracy"] for r in run["rounds"] if "accuracy" in r}


def area_under_curve(points: dict[int, float]) -> float | None:
    """Mean accuracy over the labeled range: the trapezoid area under accuracy against labels,
    divided by the range, so it reads as an accuracy. One budget: that accuracy."""
    xs = sorted(points)
    if not xs:
        return None
    if len(xs) == 1:
        return points[xs[0]]
    area = sum((b - a) * (points[a] + points[b]) / 2 for a, b in itertools.pairwise(xs))
    return area / (xs[-1] - xs[0])


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        return self.n > 1 and (self.low > 0 or self.high < 0)

    def text(self, scale: float = 100.0) -> str:
        if self.n < 2:
            return f"{scale * self.mean:+.2f}"
        return f"{scale * self.mean:+.2f} [{scale * self.low:+.2f}, {scale * self.high:+.2f}]"


def mean_interval(values: list[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean with its t-interval; a single value has no interval (low = high = the value)."""
    n = len(values)
    mean = statistics.mean(values)
    if n < 2:
        return Interval(mean, mean, mean, n)
    half = t_quantile(n - 1, confidence) * statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def by_seed(runs: list[dict]) -> dict[int, dict]:
    return {r["seed"]: r for r in runs}


def paired_differences(runs: list[dict], reference: list[dict]) -> dict[int | str, Interval]:
    """Per budget (and ``"auc"``), the mean of (run − reference) over the seeds both have, with its
    confidence interval."""
    mine, theirs = by_seed(runs), by_seed(reference)
    diffs: dict[int | str, list[float]] = defaultdict(list)
    for seed in sorted(set(mine) & set(theirs)):
        a, b = accuracy_by_budget(mine[seed]), accuracy_by_budget(theirs[seed])
        for budget in sorted(set(a) & set(b)):
            diffs[budget].append(a[budget] - b[budget])
        common = sorted(set(a) & set(b))
        if common:
            diffs["auc"].append(area_under_curve({k: a[k] for k in common})
                                - area_under_curve({k: b[k] for k in common}))
    return {k: mean_interval(v) for k, v in diffs.items()}


def band(runs: list[dict]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Budgets, mean accuracy and the confidence band over seeds, for a plot."""
    values: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        for budget, acc in accuracy_by_budget(run).items():
            values[budget].append(acc)
    xs = sorted(values)
    intervals = [mean_interval(values[x]) for x in xs]
    return xs, [i.mean for i in intervals], [i.low for i in intervals], [i.high for i in intervals]


def epochs_to_reach(curve: list[dict], target: float) -> dict | None:
    """The first curve point at or above ``target`` (its epoch and cumulative training seconds)."""
    for point in curve:
        if point["accuracy"] >= target - 1e-12:
            return point
    return None
