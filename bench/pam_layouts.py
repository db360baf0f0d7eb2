"""What a merged layout would save, priced exactly before anyone trains it: for a finished merge run,
each method's FLOPs against no merging (all tasks, the mean over subsets and over single tasks, the
least favourable subset), beside hypothetical layouts of the same plan given as per-layer widths
``shared+exclusive`` (one exclusive width for every task, or one per task: ``6+1/1/3/2/1``). It asks
whether a target is reachable at all with the widths the pruned networks need, not whether training
reaches it.

    python bench/pam_layouts.py --run runs/pam5e48-seeds/seed1 --model runs/pam5e48-seed1/pam/model.json \
        --layout 4+0,6+1,20+6,12+4

The plan and head sizes come from a saved merged network of the same tasks (``--model``; by default
the first one under the run's folder). Pricing needs no data. ``--train-epochs N`` also trains each
layout from scratch on all tasks, as the shared trunk is trained, and reports how far each task (on
validation) and the worst task (on validation and test) fall below their single networks, and the
last epoch's training loss; it takes the run's merge flags after ``--``, ``--checkpoints`` (the run's
single networks) and ``--seed`` (its validation split) included; ``--train-seed`` trains with another
seed on the same split, to tell a layout's shortfall from the luck of one training run:

    python bench/pam_layouts.py --run runs/pam5e48-seeds/seed1 --model runs/pam5e48-seed1/pam/model.json \
        --layout 4+0,4+1,20+4,12+3 --train-epochs 60 -- --dataset fashion-mnist-grid \
        --tasks 0-1,2-3,4-5,6-7,8-9 --epochs 15 --seed 1 --checkpoints runs/pam5-seed1/singles/task0,...task4"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from common import finished_results, header, largest_drop, parsed_merge_config, ratio_columns, subset_costs, table
from prunefuse.io.rundir import seed_everything
from prunefuse.io.storage import read_json
from prunefuse.merge.grouped import SHARED, GroupedNet, Plan, group_name
from prunefuse.merge.pipeline import MergeRun, flops_ratios

VAL_DROP, TEST_DROP = "val: worst task below its single (points)", "test: worst task below its single (points)"
PER_TASK = "val: each task below its single (points)"
TRAIN_LOSS = "train loss, last epoch"


def parse_layout(text: str, layers: int, tasks: int) -> list[dict[str, int]]:
    """``"4+0,6+1,..."``: per layer the shared width, then every task's exclusive width, or each task's
    own as ``6+1/1/3/2/1`` (a task whose single network needed more can have more)."""
    usage = f"layout '{text}': give {layers} layers of SHARED+EXCLUSIVE, e.g. 4+0,6+1,20+6,12+4, shared at least 1; " \
            f"EXCLUSIVE is one width or {tasks} widths joined by /"
    try:
        pairs = [layer.split("+") for layer in text.split(",")]
        widths = [(int(p[0]), [int(e) for e in p[1].split("/")]) for p in pairs if len(p) == 2]
    except ValueError:
        raise SystemExit(usage) from None
    if len(widths) != layers or len(pairs) != layers or any(
            s < 1 or len(e) not in (1, tasks) or min(e) < 0 for s, e in widths):
        raise SystemExit(usage)
    return [{SHARED: s, **{group_name(t): e[t] if len(e) > 1 else e[0] for t in range(tasks)}} for s, e in widths]


def layout_method(net: GroupedNet, subsets: list[list[int]]) -> dict:
    """A layout priced like a method of ``results.json``: FLOPs (2 x MACs) of every subset."""
    return {"subsets": [{"tasks": tasks, "flops": 2 * net.analytic_macs(tasks)} for tasks in subsets]}


def progress(name: str, epochs: int) -> Callable[[dict], None]:
    """A line on stderr about every tenth of the epochs, and after the last: training a layout takes an
    hour and more on one CPU thread, and a log that stays empty that long cannot be told from a hung run."""
    every = max(1, epochs // 10)

    def report(record: dict) -> None:
        if record["epoch"] % every == 0 or record["epoch"] == epochs:
            print(f"{name}: epoch {record['epoch']}/{epochs}, train loss {record['train_loss']:.4f}, train accuracy "
                  f"{record['train_accuracy']:.4f}, {record['seconds']:.1f} s an epoch", file=sys.stderr, flush=True)
    return report


def trained_drops(flags: list[str], nets: dict[str, GroupedNet], epochs: int,
                  train_seed: int | None = None) -> dict[str, dict]:
    """Train each network from scratch on all tasks (the shared trunk's schedule: the single networks'
    learning rate and schedule) and give its worst task's accuracy below its single network, in points,
    and its last epoch's training loss: layouts of equal FLOPs that land within a point of each other on
    validation can differ plainly in how well they fit.
    ``train_seed`` (merge's ``--train-seed``) draws another initialisation and batch order while the
    validation split, which must stay the one the single networks were trained without, keeps following
    ``--seed``: it measures how much of a drop is the luck of one training run."""
    own_seed = [] if train_seed is None else ["--train-seed", str(train_seed)]
    config = parsed_merge_config([*flags, *own_seed])
    if not config.checkpoints:
        raise SystemExit("--train-epochs needs the run's merge flags after --, --checkpoints and --seed included")
    run = MergeRun(config, "unused", quiet=True)
    run.load_data()
    run.singles = run.load_singles(config.checkpoints)
    every = tuple(range(len(run.singles)))
    splits = {VAL_DROP: run.val, TEST_DROP: run.test}
    single = {key: [run.accuracy(s, (t,), data)[t] for t, s in enumerate(run.singles)] for key, data in splits.items()}
    drops = {}
    for name, net in nets.items():
        seed_everything(config.single.seed)
        net = GroupedNet(net.plan, net.widths, net.head_sizes)
        trained = run.joint_finetune(net, epochs, config.single.lr, config.single.schedule,
                                     on_epoch=progress(name, epochs))
        mine = {key: run.accuracy(net, every, data) for key, data in splits.items()}
        drops[name] = {key: 100 * max(single[key][t] - mine[key][t] for t in every) for key in splits}
        drops[name][PER_TASK] = per_task_drops(single[VAL_DROP], mine[VAL_DROP])
        drops[name][TRAIN_LOSS] = round(trained.history[-1]["train_loss"], 4)
    return drops


def per_task_drops(single: dict, accuracy: dict) -> str:
    """Each task's shortfall against its single network in points, ``T0 / T1 / ...``."""
    return " / ".join(f"{100 * (single[t] - a):.2f}" for t, a in accuracy.items())


def run_drops(results: dict, method: dict) -> dict:
    """A run's method as ``trained_drops`` reports a layout; runs made before results.json kept validation
    accuracy give test only."""
    if "val_accuracy" not in method:
        return {VAL_DROP: "(not kept)", TEST_DROP: largest_drop(results, method), PER_TASK: "(not kept)",
                TRAIN_LOSS: "(not kept)"}
    single = results["single_task"]["val_accuracy"]
    return {VAL_DROP: method["worst_val_drop"], TEST_DROP: largest_drop(results, method),
            PER_TASK: per_task_drops(single, method["val_accuracy"]), TRAIN_LOSS: "(not kept)"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="a finished merge run that holds no merging")
    p.add_argument("--model", type=Path, help="a merged network's model.json (default: one under --run)")
    p.add_argument("--layout", action="append", default=[],
                   help="SHARED+EXCLUSIVE per layer, EXCLUSIVE one width or one per task (1/1/3/2/1); repeatable")
    p.add_argument("--train-epochs", type=int, default=0,
                   help="also train each layout from scratch for this many epochs (needs the merge flags after --)")
    p.add_argument("--train-seed", type=int,
                   help="initialise and order batches with this seed instead of --seed's (the split stays --seed's)")
    p.add_argument("merge_flags", nargs="*", help="the run's flags for prunefuse merge, after --")
    args = p.parse_args()
    if args.train_epochs < 0:
        raise SystemExit(f"--train-epochs {args.train_epochs}: give 0 (price only) or more")
    results = finished_results(args.run, "pass the folder of one")
    methods = results["methods"]
    if "nomerge" not in methods:
        raise SystemExit(f"{args.run} has no 'nomerge' method to compare with; run merge with --methods nomerge")
    merged = [read_json(f)["grouped"] for f in ([args.model] if args.model else sorted(args.run.rglob("model.json")))]
    merged = [g for g in merged if len(g["head_sizes"]) == len(results["tasks"])]
    if not merged:
        raise SystemExit(f"no merged network of {len(results['tasks'])} tasks to read the plan from; "
                         "pass one with --model")
    plan, heads = Plan.from_dict(merged[0]["plan"]), merged[0]["head_sizes"]
    subsets = [s["tasks"] for s in methods["nomerge"]["subsets"]]
    candidates = {name: m for name, m in methods.items() if name != "nomerge"}
    layouts = {f"layout {text}": GroupedNet(plan, parse_layout(text, len(plan.layers), len(heads)), heads)
               for text in args.layout}
    candidates.update({name: layout_method(net, subsets) for name, net in layouts.items()})
    drops = trained_drops(args.merge_flags, layouts, args.train_epochs, args.train_seed) if args.train_epochs else {}
    header(f"Methods of {args.run} and hypothetical layouts, priced against no merging (FLOPs ratios)")
    rows = []
    for name, method in candidates.items():
        ratio = flops_ratios({name: method, "nomerge": methods["nomerge"]}, reference=name)[f"nomerge/{name}"]
        rows.append({"method": name, **subset_costs(method), **ratio_columns("nomerge/it", ratio)})
        if drops:
            rows[-1].update(drops.get(name) or run_drops(results, method))
    table(rows)


if __name__ == "__main__":
    main()
