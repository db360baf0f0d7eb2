"""PAM (or any method) against no merging (or any baseline) over paired seeds. One FLOPs ratio is one draw:
the single networks, the validation split and every pruning step follow the seed, and on two tasks
the ratio moved across 1 from one seed to the next. Each seed here trains its own single networks,
merges and prunes them (both methods from the same singles), and the table gives per seed and
then over seeds the ratios (all tasks, the mean over subsets and over single tasks, the least
favourable subset), their geometric mean with a 95% t-interval (of the log ratio), the paired
accuracy difference, and how far the method's worst task falls below its single network.

    python bench/pam_seeds.py --out runs/pam2-seeds --seeds 0,1,2,3,4 -- \
        --dataset fashion-mnist-grid --tasks 0-4,5-9 --epochs 8 --methods pam,nomerge

Everything after ``--`` goes to ``prunefuse merge`` (``--seed`` is added per seed); each seed is one
merge run, ``OUT/seedN``, and a finished one is read back, not rerun. ``--method`` and ``--baseline``
compare any two of the run's methods, e.g. ``--method shared`` for the all-shared trunk.
``--baseline-out DIR`` reads the baseline from the finished runs ``DIR/seedN`` instead: the same
method under two settings on the same singles, e.g. PAM after 48 against 12 epochs of joint training:

    python bench/pam_seeds.py --out runs/pam2e48-seeds --baseline pam --baseline-out runs/pam2-seeds"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import finished_results, geometric_interval_text, header, largest_drop, merge_results, ratio_columns, table
from prunefuse.active.stats import mean_interval
from prunefuse.merge.pipeline import flops_ratios


def mean_accuracy(method: dict) -> float:
    accuracy = method["test_accuracy"]
    return sum(accuracy.values()) / len(accuracy)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--method", default="pam", help="the method whose savings are measured")
    p.add_argument("--baseline", default="nomerge", help="the method it is compared with")
    p.add_argument("--baseline-out", type=Path,
                   help="finished runs (DIR/seedN, the same singles) to read the baseline from instead of --out")
    p.add_argument("merge_flags", nargs="*", help="flags for prunefuse merge, after --")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    baseline = f"{args.baseline} ({args.baseline_out.name})" if args.baseline_out else args.baseline
    name = f"{baseline}/{args.method}"
    accuracy_key = f"test accuracy {args.method} - {baseline}, mean over tasks (points)"
    drop_key = f"{args.method}'s largest test drop below a single network (points)"
    header(f"{name} FLOPs over paired seeds, merge flags: {' '.join(args.merge_flags) or '(as recorded)'}")
    per_seed = {s: merge_results(args.out / f"seed{s}", [*args.merge_flags, "--seed", str(s)],
                                 as_recorded=not args.merge_flags) for s in seeds}
    rows = []
    for s, results in per_seed.items():
        other = (finished_results(args.baseline_out / f"seed{s}", "run it first or leave out --baseline-out")
                 if args.baseline_out else results)
        if other["single_task"] != results["single_task"]:
            raise SystemExit(f"seed {s}: {args.baseline_out} holds other single networks; "
                             "pass runs made from the same ones")
        methods = {args.method: results["methods"][args.method], baseline: other["methods"][args.baseline]}
        row = {"seed": s, **{f"{m} MFLOPs all": methods[m]["subsets"][-1]["flops"] / 1e6 for m in methods}}
        ratio = flops_ratios(methods, reference=args.method)[name]
        row.update(ratio_columns(name, ratio))
        row[accuracy_key] = 100 * (mean_accuracy(methods[args.method]) - mean_accuracy(methods[baseline]))
        row[drop_key] = largest_drop(results, methods[args.method])
        rows.append(row)
    table(rows)
    keys = [k for k in rows[0] if k.startswith(name)]
    summary = {k: geometric_interval_text([r[k] for r in rows]) for k in keys}
    for key in (accuracy_key, drop_key):
        summary[key] = mean_interval([r[key] for r in rows]).text(scale=1)
    seeds_text = f"{len(rows)} seed{'s' * (len(rows) > 1)}"
    print(f"Over {seeds_text}, geometric mean of the ratios and mean of the accuracy columns, [95% interval]:\n")
    table([summary])


if __name__ == "__main__":
    main()
