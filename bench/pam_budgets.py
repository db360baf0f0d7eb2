"""Every method at budgets of its own, under one schedule: prune to the budget, retrain, then judge the
tolerance. The tolerance pruner stops where short fine-tunes stop recovering accuracy, so a ratio of
its FLOPs measures that stop as much as the method; here every method is shrunk and retrained alike,
and the methods are compared where each is smallest within the tolerance.

    python bench/pam_budgets.py --out runs/budgets --retrain-epochs 240 \\
        --budgets pam=0.0265,0.0322 --budgets nomerge=0.07,0.1 \\
        --flags "pam=--exclusive-quota 1 --merge-epochs 0" -- \\
        --dataset fashion-mnist-grid --arch lenet5 --tasks 0-1,2-3,4-5,6-7,8-9 --seed 3 \\
        --checkpoints S/task0,S/task1,S/task2,S/task3,S/task4 --allocation cost --step-fraction 0.2

Each method and budget is one merge run, ``OUT/METHOD-BUDGET`` (``--methods METHOD --prune-budget
BUDGET --retrain-epochs N`` added to the flags after ``--``, and the method's own flags from
``--flags "METHOD=..."``, since merge refuses a flag its methods do not read, such as
``--exclusive-quota`` for nomerge); a finished one is read back, not rerun,
and every run must hold the same single networks. Pass ``--checkpoints`` so that they do.
``--train-seeds 3,4,5`` repeats every run at each training seed on ``--seed``'s split
(``OUT/METHOD-BUDGET-trainS``; merge's ``--train-seed``): one run's worst task moves by a point or two
from one training seed to the next, as much as a budget a quarter larger moves it. The first table has
every run; the second each method at its cheapest budget within the tolerance at every training seed
(or, with none, at the budget whose worst task falls least short on average, marked), its mean
shortfall, and every method's FLOPs and shortfall against ``--reference``'s, paired by training seed.
A method may run in two arms that differ in their flags: ``--budgets pam.costall=0.008 --flags
"pam.costall=--allocation cost-all"`` is pam again, in ``OUT/pam.costall-0.008``, and a row of its own."""

from __future__ import annotations

import argparse
import shlex
import statistics
from pathlib import Path

from common import (
    geometric_interval_text,
    header,
    largest_drop,
    merge_results,
    parsed_merge_config,
    ratio_columns,
    subset_costs,
    table,
)
from prunefuse.active.stats import mean_interval
from prunefuse.cli.args import number_list
from prunefuse.merge.pipeline import METHODS, flops_ratios


def method_of(arm: str) -> str:
    """The merge method an arm runs: ``pam.costall`` runs pam."""
    return arm.partition(".")[0]


def split_method(option: str, text: str, form: str) -> tuple[str, str]:
    """``ARM=REST`` of a per-arm option, the arm's method checked."""
    arm, sep, rest = text.partition("=")
    arm = arm.strip()
    if not sep or method_of(arm) not in METHODS:
        raise SystemExit(f"{option} {text}: give {form} with METHOD one of {', '.join(METHODS)}, or METHOD.LABEL "
                         "for a second arm of one method")
    return arm, rest


def parse_budgets(texts: list[str]) -> dict[str, list[str]]:
    """Checked before the first run, since a typo found at its turn would come hours in; each budget
    written one way (``0.03``, ``0.030``, ``.03`` are one run, ``OUT/pam-0.03``)."""
    budgets: dict[str, set[float]] = {}
    for text in texts:
        method, values = split_method("--budgets", text, "METHOD=B1,B2")
        try:
            numbers = {float(v) for v in values.split(",")}
        except ValueError:
            raise SystemExit(f"--budgets {text}: the budgets must be numbers, e.g. pam=0.03,0.04") from None
        if not all(0 < b < 1 for b in numbers):
            raise SystemExit(f"--budgets {text}: a budget is a fraction of the method's FLOPs, between 0 and 1")
        budgets.setdefault(method, set()).update(numbers)
    return {method: [f"{b:g}" for b in sorted(values)] for method, values in budgets.items()}


def method_flags(texts: list[str]) -> dict[str, list[str]]:
    flags: dict[str, list[str]] = {}
    for text in texts:
        method, rest = split_method("--flags", text, "METHOD=FLAGS")
        flags.setdefault(method, []).extend(shlex.split(rest))
    return flags


def budget_run(out: Path, flags: list[str], arm: str, budget: str, epochs: int) -> dict:
    """The arm's results at the budget; a run read back must have run with these flags (merge's
    config check), so a 240-epoch run is never read as a 120-epoch one."""
    method = method_of(arm)
    results = merge_results(out, [*flags, "--methods", method, "--prune-budget", budget,
                                  "--retrain-epochs", str(epochs)])
    if "worst_val_drop" not in results["methods"][method]:
        raise SystemExit(f"{out} was made before results.json kept validation accuracy; remove it to rerun it")
    return results


def run_name(method: str, budget: str, train_seed: int, split_seed: int) -> str:
    """``METHOD-BUDGET``, and ``-trainS`` for a replicate: a run at the split's own seed is the run that
    merge makes without ``--train-seed``."""
    return f"{method}-{budget}" + ("" if train_seed == split_seed else f"-train{train_seed}")


def mean_flops(seeds: dict[int, dict]) -> float:
    return statistics.mean(m["subsets"][-1]["flops"] for m in seeds.values())


def chosen(runs: dict[str, dict[int, dict]]) -> str:
    """The cheapest budget within the tolerance at every training seed, else the one whose worst task
    falls least short on average."""
    within = [b for b, seeds in runs.items() if all(m["within_tolerance"] for m in seeds.values())]
    if within:
        return min(within, key=lambda b: mean_flops(runs[b]))
    return min(runs, key=lambda b: statistics.mean(m["worst_val_drop"] for m in runs[b].values()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budgets", action="append", required=True, metavar="METHOD=B1,B2",
                   help="budgets (fractions of the method's FLOPs) for one method, or METHOD.LABEL for another arm of "
                   "it; repeat per method")
    p.add_argument("--flags", action="append", default=[], metavar="METHOD=FLAGS",
                   help="merge flags for one method's runs only, e.g. \"pam=--exclusive-quota 1\"; repeatable")
    p.add_argument("--retrain-epochs", type=int, required=True)
    p.add_argument("--train-seeds", type=number_list(0, integer=True),
                   help="run every budget at each of these training seeds (merge's --train-seed) on --seed's "
                   "split, e.g. 3,4,5 (default: --seed's alone)")
    p.add_argument("--reference", default="pam", help="the method the others' FLOPs are divided by")
    p.add_argument("merge_flags", nargs="*", help="flags for prunefuse merge, after --")
    args = p.parse_args()
    budgets, own = parse_budgets(args.budgets), method_flags(args.flags)
    if args.reference not in budgets or len(budgets) < 2:
        raise SystemExit(f"give --budgets for --reference ({args.reference}) and for a method to compare it with")
    if not args.merge_flags:  # the runs' names follow --seed, and a run read back is checked against them
        raise SystemExit("give prunefuse merge's flags after --, as the runs were made with (at least --seed)")
    config = parsed_merge_config(args.merge_flags)
    split_seed = config.validation_seed
    if config.single.seed != split_seed:
        raise SystemExit("give training seeds as --train-seeds before --, not as --train-seed after it")
    train_seeds = sorted(set(args.train_seeds or [split_seed]))
    header(f"Methods pruned to budgets and retrained {args.retrain_epochs} epochs, merge flags: "
           f"{' '.join(args.merge_flags)}"
           + "".join(f"; {method} also {' '.join(flags)}" for method, flags in own.items()))
    runs: dict[str, dict[str, dict[int, dict]]] = {}
    singles = None
    rows = []
    for arm, values in budgets.items():
        for budget in values:
            for seed in train_seeds:
                out = args.out / run_name(arm, budget, seed, split_seed)
                replicate = [] if seed == split_seed else ["--train-seed", str(seed)]
                results = budget_run(out, [*args.merge_flags, *own.get(arm, []), *replicate], arm, budget,
                                     args.retrain_epochs)
                if singles not in (None, results["single_task"]):
                    raise SystemExit(f"{out} holds other single networks than the runs before it; pass "
                                     "--checkpoints so every run merges the same ones")
                singles = results["single_task"]
                m = runs.setdefault(arm, {}).setdefault(budget, {})[seed] = results["methods"][method_of(arm)]
                rows.append({"method": arm, "budget": budget, "train seed": seed, **subset_costs(m),
                             "worst task below on validation (points)": m["worst_val_drop"],
                             "worst task below on test (points)": largest_drop(results, m),
                             "within tolerance": m["within_tolerance"]})
    table(rows)
    best = {method: chosen(r) for method, r in runs.items()}
    print(f"Each method at its cheapest budget within the tolerance at every training seed (marked where none "
          f"is), its FLOPs over {args.reference}'s per training seed; over {len(train_seeds)} training seed(s), "
          "geometric mean of the ratios, mean of the shortfall and of its paired difference, [95% interval]:\n")
    per_seed = [flops_ratios({method: runs[method][b][seed] for method, b in best.items()}, reference=args.reference)
                for seed in train_seeds]
    itself = dict.fromkeys(next(iter(per_seed[0].values())), 1.0)
    reference = runs[args.reference][best[args.reference]]
    summary = []
    for method, budget in best.items():
        seeds = runs[method][budget]
        outside = not all(m["within_tolerance"] for m in seeds.values())
        ratios = [r.get(f"{method}/{args.reference}", itself) for r in per_seed]
        summary.append({"method": method, "budget": budget + (" (outside)" if outside else ""),
                        "MFLOPs all tasks": mean_flops(seeds) / 1e6,
                        "worst task below on validation (points)": mean_interval(
                            [m["worst_val_drop"] for m in seeds.values()]).text(scale=1),
                        **ratio_columns(f"it/{args.reference}", {k: geometric_interval_text([r[k] for r in ratios])
                                                                 for k in ratios[0]}),
                        f"worst below minus {args.reference}'s, paired (points)": mean_interval(
                            [seeds[s]["worst_val_drop"] - reference[s]["worst_val_drop"] for s in train_seeds]
                        ).text(scale=1)})
    table(summary)


if __name__ == "__main__":
    main()
