"""How far single-task networks trained alike fall from one another: the floor under the tolerance.

Every merge method is judged against one trained draw of each single-task network (its accuracy on
the held-out split), and the five-task target asks the worst of five tasks to stay within a point of
it. This reads single networks trained as the reference run's were, on its held-out split, from other
training seeds, and gives per replicate how far each task falls below the reference's (negative:
above) on validation, and how far its worst task falls on validation and on test; over the
replicates that shortfall's mean with a 95% interval; then per task the mean and spread over every
draw, the reference's included, and how far the reference lies above that mean. ``--judge`` reads
merge runs made on the reference's single networks (``--checkpoints``) and gives each method's
worst task against the reference and against the mean of the draws: the network a merge is expected
to match, rather than one lucky or unlucky training run.

    python bench/pam_reference_noise.py --reference runs/five/seed3 \\
        --replicates runs/noise/train4,runs/noise/train5,runs/noise/train6

A replicate is any finished merge run with the reference's data, tasks, held-out split and
single-network training but for the seed; only its ``single_task`` results are read. The cheapest
trains the five networks and prunes one short step (about 13 minutes on one CPU thread for five
LeNet-5 tasks on fashion-mnist-grid)::

    prunefuse merge FLAGS --seed 3 --train-seed 4 --methods nomerge --prune-budget 0.99 --retrain-epochs 0 \\
        --out runs/noise/train4"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import finished_results, header, subset_costs, table
from prunefuse.active.stats import mean_interval
from prunefuse.io.rundir import describe, differing_keys, stored_config
from prunefuse.io.storage import read_json
from prunefuse.merge.group_pruning import within
from prunefuse.merge.pipeline import recorded_split_seed, saved_in_todays_schema, without_local

# what a single network's accuracy depends on, beside its training seed
SETTINGS = ("data", "tasks", "arch", "width", "val_size", "single")


def recorded(run: Path) -> dict:
    """``run``'s merge config as its config.json holds it; anything else is refused in one line."""
    hint = "pass a finished 'prunefuse merge' run's folder"
    try:
        saved = read_json(run / "config.json")
    except FileNotFoundError:
        raise SystemExit(f"{run} holds no merge run (no config.json); {hint}") from None
    except (ValueError, OSError) as e:
        raise SystemExit(f"{run / 'config.json'}: damaged ({e}); {hint}") from None
    if not isinstance(saved, dict) or saved.get("command") != "merge" or stored_config(saved) is None:
        raise SystemExit(f"{run} holds no merge run (its config.json is not a merge's); {hint}")
    return saved_in_todays_schema(stored_config(saved))


def singles_setting(run: Path, config: dict) -> dict:
    """What trained ``run``'s single networks and drew its held-out split, the training seed and the
    machine left out."""
    if config.get("checkpoints"):
        raise SystemExit(f"{run} merged single networks of another run (--checkpoints); pass the run that "
                         "trained them")
    every = without_local(config)
    setting = {k: every[k] for k in SETTINGS}
    setting["single"] = {k: v for k, v in setting["single"].items() if k != "seed"}
    return {**setting, "split_seed": recorded_split_seed(config)}


def below(reference: dict, accuracy: dict) -> dict[str, float]:
    """Each task's accuracy in points below the reference's (negative: above)."""
    return {t: 100 * (float(reference[t]) - float(accuracy[t])) for t in reference}


def judged_results(run: Path, reference: dict) -> dict:
    """A run to judge, checked before any table is printed: finished, merged from the reference's very
    single networks (same accuracies), and recording each method's validation accuracy."""
    results = finished_results(run, "let it finish or leave it out of --judge")
    if results["single_task"] != reference:
        raise SystemExit(f"{run} merged other single networks than the reference's (or scored them on "
                         "another machine); judge runs made with --checkpoints of the reference's singles/taskN")
    if any("val_accuracy" not in method for method in results["methods"].values()):
        raise SystemExit(f"{run}'s results.json predates each method's validation accuracy; leave it out of "
                         "--judge or run it again")
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, required=True, help="the merge run whose single networks judge")
    p.add_argument("--replicates", required=True,
                   help="comma-separated finished merge runs: the same singles' training at other seeds")
    p.add_argument("--judge", default="",
                   help="comma-separated finished merge runs on the reference's single networks, whose "
                        "methods are judged against the draws' mean as well")
    args = p.parse_args()
    replicates = [Path(r) for r in args.replicates.split(",") if r]
    if not replicates:
        raise SystemExit("--replicates names no run; give one or more finished merge runs, comma-separated")
    configs = {run: recorded(run) for run in [args.reference, *replicates]}
    setting = singles_setting(args.reference, configs[args.reference])
    for run in replicates:
        keys = differing_keys(setting, theirs := singles_setting(run, configs[run]))
        if keys:
            raise SystemExit(f"{run} trained its single networks or drew its held-out split otherwise than "
                             f"{args.reference} ({describe(keys, theirs, setting)}); make it with the "
                             "reference's flags and another --train-seed")
    seeds = [config["single"]["seed"] for config in configs.values()]
    if len(set(seeds)) < len(seeds):
        raise SystemExit(f"two runs share a training seed ({', '.join(map(str, seeds))}); a replicate is "
                         "another draw only with a seed of its own")
    tolerance = configs[args.reference]["prune"]["tolerance"]
    hint = "let it finish or leave it out"
    reference = finished_results(args.reference, hint)["single_task"]
    draws = [finished_results(run, hint)["single_task"] for run in replicates]
    judged = {Path(r): judged_results(Path(r), reference) for r in args.judge.split(",") if r}

    header(f"Single networks at {len(draws)} other training seeds against {args.reference}'s "
           f"(training seed {seeds[0]}), on its held-out split")
    rows, worst = [], {"val": [], "test": []}
    for seed, draw in zip(seeds[1:], draws, strict=True):
        gaps = {split: below(reference[f"{split}_accuracy"], draw[f"{split}_accuracy"]) for split in worst}
        row = {"training seed": seed, **{f"T{t} below on validation": g for t, g in gaps["val"].items()}}
        for split, name in (("val", "validation"), ("test", "test")):
            worst[split].append(max(gaps[split].values()))
            row[f"worst below on {name}"] = worst[split][-1]
        rows.append(row)
    table(rows)
    kept = sum(within(d["val_accuracy"], reference["val_accuracy"], tolerance) for d in draws)
    spread = " [95% interval]" if len(draws) > 1 else ""
    print(f"Worst task below the reference's single network, mean over {len(draws)} replicates{spread}: "
          f"validation {mean_interval(worst['val']).text(scale=1)}, test {mean_interval(worst['test']).text(scale=1)} "
          f"points; within the tolerance ({100 * tolerance:g} point(s)) on validation at {kept} of {len(draws)}.\n")

    means, per_task = {}, []
    for t, accuracy in reference["val_accuracy"].items():
        values = [float(d["val_accuracy"][t]) for d in [reference, *draws]]
        means[t] = statistics.mean(values)
        per_task.append({"task": f"T{t}", "reference (validation %)": 100 * float(accuracy),
                         f"mean of {len(values)} draws": 100 * means[t], "sd": 100 * statistics.stdev(values),
                         "reference above the mean (points)": 100 * (float(accuracy) - means[t])})
    table(per_task)
    if judged:
        table([{"run": run.name, "method": name, "MFLOPs all tasks": subset_costs(method)["MFLOPs all tasks"],
                "worst below the reference (points)": max(below(reference["val_accuracy"],
                                                                method["val_accuracy"]).values()),
                "worst below the draws' mean (points)": max(below(means, method["val_accuracy"]).values()),
                "within the tolerance of the mean": within(method["val_accuracy"], means, tolerance)}
               for run, results in judged.items() for name, method in results["methods"].items()])


if __name__ == "__main__":
    main()
