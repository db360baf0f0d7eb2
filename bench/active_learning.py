"""PruneFuse against its baselines on Fashion-MNIST with a protocol sized for a 2-core CPU.

Runs (or resumes) ``prunefuse compare`` and prints the accuracy table (mean ± std over seeds), the
selection cost ratios, and the target's per-epoch test accuracy with and without fusion.

    python bench/active_learning.py --out runs/bench-al [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import statistics

from prunefuse.active import ActiveConfig, compare
from prunefuse.train import TrainConfig, configure_threads

METHODS = ["random", "al", "svp", "prunefuse@0.5", "prunefuse@0.7", "prunefuse@0.5-nofusion", "prunefuse@0.5-nokd"]
PROTOCOL = dict(dataset="fashion-mnist", pool_size=2000, test_size=1000, arch="preact20", initial=0.02,
                budgets=[0.1, 0.2, 0.3], eval_at=[0.1, 0.2, 0.3], selector_epochs=8, target_epochs=12,
                train=TrainConfig(batch_size=32, schedule="onecycle").to_dict())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/bench-al")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    configure_threads()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    print(f"protocol: {PROTOCOL}\nseeds: {seeds}\n")
    results, table = compare(methods, seeds, ActiveConfig(**PROTOCOL), args.out, quiet=True)
    print(table)
    by_label = {}
    for r in results:
        by_label.setdefault(r["label"], []).append(r)
    curves = {label: [r["target_curve"] for res in runs for r in res["rounds"] if r.get("target_curve")]
              for label, runs in by_label.items()}
    labels = [label for label in ("prunefuse@0.5", "prunefuse@0.5-nokd", "prunefuse@0.5-nofusion", "al", "random")
              if curves.get(label)]
    print("\ntarget test accuracy (%) per epoch at the final budget, mean over seeds\n")
    print("| epoch | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels))
    for e in range(min(len(c) for label in labels for c in curves[label])):
        print(f"| {e + 1} | " + " | ".join(f"{100 * statistics.mean(c[e] for c in curves[label]):.2f}"
                                          for label in labels) + " |")


if __name__ == "__main__":
    main()
