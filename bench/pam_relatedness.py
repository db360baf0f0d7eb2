"""PAM's gain against task relatedness: two five-attribute tasks of ``fashion-mnist-grid`` whose
attribute sets overlap by 0, 2, 4 and 5 attributes, from unrelated to identical labels. The paper's
claim: the more related the tasks, the more neurons PAM shares and the larger its gain.

    python bench/pam_relatedness.py --out runs/relatedness --seeds 0,1,2 -- --epochs 8 --methods pam,nomerge,mtz

Everything after ``--`` goes to ``prunefuse merge`` unchanged (every overlap gets the same flags,
``--seed`` is added per seed); each overlap and seed is one merge run, ``OUT/seedN/overlapK``, and a
finished one is read back, not rerun. The first table has one row per run; over several seeds the
second gives, per overlap, the geometric mean of each ratio with a 95% t-interval, and the gain on
both tasks against that of overlap 0 paired by seed (the claim is that it exceeds 1). The label MI
is the plug-in mutual information between the two tasks' label vectors on the test split."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from sklearn.metrics import mutual_info_score

from common import geometric_interval_text, header, merge_results, table
from prunefuse import data
from prunefuse.merge.grouped import SHARED
from prunefuse.merge.tasks import TaskSet

OVERLAPS = {0: "0-4,5-9", 2: "0-4,3-7", 4: "0-4,1-5", 5: "0-4,0-4"}
BASELINES = ("nomerge", "mtz", "shared")


def label_mi(tasks: str, labels: torch.Tensor) -> float:
    """I(Y_A; Y_B) in nats on the attribute ``labels``, each task's attributes read as one label."""
    parsed = TaskSet.parse(tasks, labels.shape[1], attributes=True)
    codes = [(parsed.labels(labels, t) * 2 ** torch.arange(len(parsed.classes[t]))).sum(1).tolist() for t in range(2)]
    return float(mutual_info_score(*codes))


def gains(results: dict) -> dict[str, list[float]]:
    """Each baseline's FLOPs over PAM's on the subsets T0, T1 and T0+T1."""
    flops = {m: [s["flops"] for s in v["subsets"]] for m, v in results["methods"].items()}
    return {base: [b / p for b, p in zip(flops[base], flops["pam"], strict=True)]
            for base in BASELINES if base in flops}


def shared_fraction(results: dict) -> tuple[int, int]:
    groups = results["methods"]["pam"]["merged_widths"]
    return sum(layer[SHARED] for layer in groups), sum(sum(layer.values()) for layer in groups)


def run_row(seed: int, overlap: int, mi: float, results: dict) -> dict:
    shared, kept = shared_fraction(results)
    row = {"seed": seed, "overlap": overlap, "tasks": OVERLAPS[overlap], "label MI (nats)": round(mi, 3),
           "shared neurons (merged)": f"{shared} of {kept}"}
    for base, r in gains(results).items():
        row[f"{base}/pam T0, T1, both"] = ", ".join(f"{v:.2f}" for v in r)
    row["pam within tolerance"] = results["methods"]["pam"]["within_tolerance"]
    return row


def overlap_row(overlap: int, mi: float, per_seed: dict[int, dict], reference: dict[int, dict]) -> dict:
    """One overlap over the seeds: geometric means of the gains, and the gain on both tasks against
    overlap 0's at the same seed."""
    by_seed = {s: gains(r) for s, r in per_seed.items()}
    fractions = [shared_fraction(r) for r in per_seed.values()]
    row = {"overlap": overlap, "label MI (nats)": round(mi, 3),
           "shared neurons (merged), mean": f"{sum(s for s, _ in fractions) / sum(k for _, k in fractions):.0%}"}
    for base in next(iter(by_seed.values())):
        row[f"{base}/pam both"] = geometric_interval_text([g[base][2] for g in by_seed.values()])
        row[f"{base}/pam single tasks"] = geometric_interval_text([(g[base][0] * g[base][1]) ** 0.5
                                                                   for g in by_seed.values()])
    if reference and "nomerge/pam both" in row:
        ref = {s: gains(r)["nomerge"][2] for s, r in reference.items()}
        row["nomerge/pam both, against overlap 0"] = "1 (the reference)" if overlap == 0 else geometric_interval_text(
            [g["nomerge"][2] / ref[s] for s, g in by_seed.items()])
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", default="0", help="comma-separated seeds; each trains its own single networks")
    p.add_argument("--overlaps", default="0,2,4,5", help="which of 0, 2, 4, 5 to run")
    p.add_argument("merge_flags", nargs="*", help="flags for prunefuse merge, after --")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    overlaps = [int(v) for v in args.overlaps.split(",")]
    if unknown := set(overlaps) - set(OVERLAPS):
        raise SystemExit(f"unknown overlap {sorted(unknown)}; choose from {', '.join(map(str, OVERLAPS))}")
    flags = " ".join(args.merge_flags) or "as each finished run's config.json records (none given here)"
    header(f"PAM against task relatedness, fashion-mnist-grid, merge flags: {flags}")
    labels = data.load("fashion-mnist-grid", "test").labels  # built once: each load composes the grids afresh
    mi = {k: label_mi(OVERLAPS[k], labels) for k in overlaps}
    runs = {k: {s: merge_results(args.out / f"seed{s}" / f"overlap{k}",
                                 ["--dataset", "fashion-mnist-grid", "--tasks", OVERLAPS[k], *args.merge_flags,
                                  "--seed", str(s)], as_recorded=not args.merge_flags) for s in seeds}
            for k in overlaps}
    table([run_row(s, k, mi[k], runs[k][s]) for k in overlaps for s in seeds])
    if len(seeds) > 1:
        print(f"Over {len(seeds)} seeds, geometric mean [95% interval]; single tasks: the geometric mean of "
              "T0's and T1's ratios per seed:\n")
        table([overlap_row(k, mi[k], runs[k], runs.get(0, {})) for k in overlaps])


if __name__ == "__main__":
    main()
