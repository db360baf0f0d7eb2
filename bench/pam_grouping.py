"""How PAM's MI grouping splits the neurons, before any pruning: for the chance-level thresholds (the
default) and a few fixed ones (nats per label variable), each with the exclusive quotas asked for,
the group widths per layer and the dense merged network's FLOPs for one task against all tasks, next
to one single-task network.

    python bench/pam_grouping.py --checkpoints runs/X/singles/task0,runs/X/singles/task1 --tasks 0-4,5-9

The checkpoints are the single-task networks of an earlier ``prunefuse merge`` run, with the same
``--dataset``, ``--subset``, ``--tasks`` and ``--seed`` so that the calibration images match that run's."""

from __future__ import annotations

import argparse
import itertools
import tempfile

from common import header, table
from prunefuse.data import DataSpec
from prunefuse.merge import MergeConfig, assemble
from prunefuse.merge.grouped import SHARED
from prunefuse.merge.pam import pam_groups
from prunefuse.merge.pipeline import MergeRun


def alpha(text: str) -> float | None:
    return None if text == "chance" else float(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", required=True)
    p.add_argument("--tasks", default="0-4,5-9")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--subset", type=int)
    p.add_argument("--seed", type=int, default=0, help="the run's --seed (it draws the validation part)")
    p.add_argument("--alphas", default="chance,0.02,0.05,0.1",
                   help="thresholds, the same for conv and linear layers (chance: the chance level)")
    p.add_argument("--exclusive-quota", default="0", help="comma-separated values of --exclusive-quota")
    args = p.parse_args()
    config = MergeConfig(data=DataSpec(args.dataset, subset=args.subset, seed=args.seed), tasks=args.tasks,
                         checkpoints=args.checkpoints.split(","))
    config.single.seed = args.seed
    run = MergeRun(config, tempfile.mkdtemp(), quiet=True)
    run.load_data()
    singles = run.single_networks()
    x, labels = run.calibration()
    n = len(singles)
    single = singles[0].analytic_macs([0])
    header(f"PAM grouping against the MI thresholds: {n} tasks, {config.arch}")
    rows = []
    for a, quota in itertools.product(map(alpha, args.alphas.split(",")), map(float, args.exclusive_quota.split(","))):
        groups = pam_groups(singles, x, labels, {"conv": a, "linear": a}, config.single.seed, quota=quota)
        net = assemble(singles, groups)
        widths = " / ".join(f"{len(g[SHARED])}+" + "+".join(str(len(v)) for k, v in g.items() if k != SHARED)
                            for g in groups)
        one = sum(net.analytic_macs([t]) for t in range(n)) / n
        every = net.analytic_macs(list(range(n)))
        rows.append({"alpha": "chance level" if a is None else a, "exclusive quota": quota,
                     "widths per layer (shared+exclusive)": widths,
                     "one task / single net": f"{one / single:.2f}", "all tasks / single net": f"{every / single:.2f}",
                     "one task / all tasks": f"{one / every:.2f}"})
    table(rows)


if __name__ == "__main__":
    main()
