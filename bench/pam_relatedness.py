"""PAM's gain against task relatedness: two five-attribute tasks of ``fashion-mnist-grid`` whose
attribute sets overlap by 0, 2, 4 and 5 attributes, from unrelated to identical labels. The paper's
claim: the more related the tasks, the more neurons PAM shares and the larger its gain.

    python bench/pam_relatedness.py --out runs/relatedness -- --epochs 8 --max-steps 8

Everything after ``--`` goes to ``prunefuse merge`` unchanged (every overlap gets the same flags);
each overlap is one merge run under ``--out``, and a finished one is read back, not rerun. The label
MI is the plug-in mutual information between the two tasks' label vectors on the test split."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from sklearn.metrics import mutual_info_score

from common import header, merge_results, table
from prunefuse import data
from prunefuse.merge.grouped import SHARED
from prunefuse.merge.tasks import TaskSet

OVERLAPS = {0: "0-4,5-9", 2: "0-4,3-7", 4: "0-4,1-5", 5: "0-4,0-4"}


def label_mi(tasks: str, labels: torch.Tensor) -> float:
    """I(Y_A; Y_B) in nats on the attribute ``labels``, each task's attributes read as one label."""
    parsed = TaskSet.parse(tasks, labels.shape[1], attributes=True)
    codes = [(parsed.labels(labels, t) * 2 ** torch.arange(len(parsed.classes[t]))).sum(1).tolist() for t in range(2)]
    return float(mutual_info_score(*codes))


def row(overlap: int, tasks: str, results: dict, labels: torch.Tensor) -> dict:
    methods = results["methods"]
    groups = methods["pam"]["merged_widths"]
    kept = sum(sum(layer.values()) for layer in groups)
    flops = {m: [s["flops"] for s in v["subsets"]] for m, v in methods.items()}  # subsets T0, T1, T0+T1
    out = {"overlap": overlap, "tasks": tasks, "label MI (nats)": round(label_mi(tasks, labels), 3),
           "shared neurons": f"{sum(layer[SHARED] for layer in groups)} of {kept}"}
    for base in ("nomerge", "mtz", "shared"):
        if base in flops:
            r = [b / p for b, p in zip(flops[base], flops["pam"], strict=True)]
            out[f"{base}/pam T0, T1, both"] = ", ".join(f"{v:.2f}" for v in r)
    out["pam within tolerance"] = methods["pam"]["within_tolerance"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--overlaps", default="0,2,4,5", help="which of 0, 2, 4, 5 to run")
    p.add_argument("merge_flags", nargs="*", help="flags for prunefuse merge, after --")
    args = p.parse_args()
    overlaps = [int(v) for v in args.overlaps.split(",")]
    flags = " ".join(args.merge_flags) or "as each finished run's config.json records (none given here)"
    header(f"PAM against task relatedness, fashion-mnist-grid, merge flags: {flags}")
    labels = data.load("fashion-mnist-grid", "test").labels  # built once: each load composes the grids afresh
    rows = [row(k, OVERLAPS[k], merge_results(args.out / f"overlap{k}", ["--dataset", "fashion-mnist-grid", "--tasks",
                                                                        OVERLAPS[k], *args.merge_flags]), labels)
            for k in overlaps]
    table(rows)


if __name__ == "__main__":
    main()
