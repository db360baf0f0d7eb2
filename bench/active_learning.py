"""PruneFuse against its baselines on Fashion-MNIST, protocol v2: out of the cold start, paired seeds.

Every method sees, per seed, the same 10,000-image pool drawn from the training split, the same
500 random initial labels and the full 10,000-image test split. Budgets 1,000 / 1,500 / 2,000 / 2,500;
the target is trained and evaluated at each. Selector and target train for 30 epochs or at least 500
SGD steps (batch 64), so the first selector is not a handful of steps. Ablations that differ from
prunefuse@0.5 in the target phase alone reuse its selection on each seed.

    python bench/active_learning.py run --seeds 0,2,4 --out runs/v2     # one process per core, one thread each
    python bench/active_learning.py table --seeds 0,1,2,3,4 --out runs/v2
    python bench/active_learning.py kd-sweep --seeds 0,1,2 --out runs/v2
    python bench/active_learning.py methods --methods prunefuse@0.5-init,prunefuse@0.5-zero --seeds 0 --out runs/v2
    python bench/active_learning.py fill --seeds 0,1,2,3,4 --out runs/v2
    python bench/active_learning.py short-target --seeds 0,1,2,3,4 --out runs/v2

``table`` reads the finished runs (it never trains) and prints the accuracy table (mean ± std),
paired differences against random and dense AL with 95% intervals, phase costs, and the fused
target's epochs to reach the scratch target's accuracy.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from dataclasses import replace
from pathlib import Path

from prunefuse.active import ActiveConfig, compare, run_active
from prunefuse.active.report import write_comparison_report
from prunefuse.active.stats import epochs_to_reach, mean_interval
from prunefuse.io.storage import read_json
from prunefuse.train import TrainConfig, configure_threads

METHODS = ["random", "al", "svp", "prunefuse@0.5", "prunefuse@0.7", "prunefuse@0.5-nofusion", "prunefuse@0.5-nokd",
           "prunefuse@0.7-nokd"]
BUDGETS = [1000, 1500, 2000, 2500]
PROTOCOL = dict(dataset="fashion-mnist", pool_size=10_000, arch="preact20", initial=500, budgets=BUDGETS,
                eval_at=BUDGETS, selector_epochs=30, selector_steps=500, target_epochs=30, target_steps=500,
                curve_every=1, curve_size=2000,
                kd=True,  # the base the recorded runs used: here prunefuse@0.5 distils, -nokd is today's default
                train=TrainConfig(batch_size=64, lr=0.1, schedule="onecycle").to_dict())
KD_ALPHAS = (0.0, 0.1, 0.3, 0.5, 0.9)
KD_TEMPERATURES = (1.0, 2.0, 4.0)
KD_DECAYED = ((0.0, 4.0), (0.5, 4.0), (0.0, 1.0))  # distillation only early: its weight falls to 0


def base_config(**overrides) -> ActiveConfig:
    return ActiveConfig(**{**PROTOCOL, **overrides})


def run_methods(methods: list[str], seeds: list[int], out: Path, **overrides) -> None:
    """Seed by seed, so each finished seed is a complete paired set."""
    for seed in seeds:
        compare(methods, [seed], base_config(**overrides), out, quiet=True)


def target_only(out: Path, study: str, name: str, seed: int, budget: int, **overrides) -> dict:
    """The target phase alone at one budget, on prunefuse@0.5's saved labels and selectors for ``seed``."""
    cfg = replace(base_config(), method="prunefuse", prune_ratio=0.5, eval_at=[budget], curve_every=0, seed=seed,
                  **overrides)
    return run_active(cfg, out / study / name / f"seed{seed}", quiet=True,
                      selection_from=out / "prunefuse@0.5" / f"seed{seed}")


def print_against(title: str, reference: list[float], rows: list[tuple[str, list[float]]]) -> None:
    """Mean accuracy of each row and its paired difference to ``reference``, with 95% intervals."""
    print(f"\n{title}\n\n| setting | accuracy (%) | Δ [95% interval] |\n|---|---|---|")
    print(f"| (reference) | {100 * statistics.mean(reference):.2f} | |")
    for name, accs in rows:
        diff = mean_interval([a - b for a, b in zip(accs, reference, strict=True)])
        print(f"| {name} | {100 * statistics.mean(accs):.2f} | {diff.text()} |")


def kd_sweep(seeds: list[int], out: Path, budget: int, alphas=KD_ALPHAS, temperatures=KD_TEMPERATURES) -> None:
    """α and T (and a decaying KD weight) of the fused target's distillation, against no KD."""
    base_train = base_config().train
    settings = [(a, t, "constant") for a, t in itertools.product(alphas, temperatures)]
    settings += [(a, t, "decay") for a, t in KD_DECAYED]
    rows = []
    for alpha, temperature, schedule in settings:
        name = f"a{alpha:g}-T{temperature:g}" + ("-decay" if schedule == "decay" else "")
        train = {**base_train, "kd_alpha": alpha, "kd_temperature": temperature, "kd_schedule": schedule}
        rows.append((f"α={alpha:g} T={temperature:g} {schedule}",
                     [target_only(out, "kd-sweep", name, s, budget, kd=True, train=train)["final_accuracy"]
                      for s in seeds]))
    no_kd = [target_only(out, "kd-sweep", "nokd", s, budget, kd=False)["final_accuracy"] for s in seeds]
    print_against(f"KD sweep at {budget} labels, seeds {seeds}: fused target's accuracy; Δ against no KD", no_kd,
                  rows)


def fill_study(seeds: list[int], out: Path, budget: int) -> None:
    """The fill of the positions fusion does not cover (no KD), against reinit, the default."""
    rows = {fill: [target_only(out, "fill", fill, s, budget, kd=False, fill=fill)["final_accuracy"] for s in seeds]
            for fill in ("reinit", "init", "zero")}
    print_against(f"Fill at {budget} labels, seeds {seeds} (no KD); Δ against reinit", rows["reinit"],
                  [(f"fill {f}", a) for f, a in rows.items() if f != "reinit"])


SHORT = (0.25, 0.5, 1.0)  # fractions of the target's epochs and steps


def short_targets(seeds: list[int], out: Path, budget: int) -> None:
    """The fused target (no KD) and the target from scratch trained with a quarter, half and all of the
    schedule, on the same labels. A one-cycle schedule reaches its best only as the rate decays, so how
    soon a warm start gets there is measured by shortening the whole schedule, not by reading a curve."""
    base = base_config()
    rows = []
    scratch_full = None
    for name, fusion in (("fused", True), ("scratch", False)):
        for fraction in SHORT:
            runs = [target_only(out, "short-target", f"{name}-{fraction:g}", s, budget, kd=False, fusion=fusion,
                                target_epochs=round(base.target_epochs * fraction),
                                target_steps=round(base.target_steps * fraction)) for s in seeds]
            accs = [r["final_accuracy"] for r in runs]
            seconds = statistics.mean(r["target_seconds"] for r in runs)
            rows.append((f"{name}, x{fraction:g} schedule ({seconds:.0f} s)", accs))
            if name == "scratch" and fraction == 1.0:
                scratch_full = accs
    print_against(f"Target schedule shortened, at {budget} labels, seeds {seeds} (no KD); Δ against scratch, "
                  "full schedule", scratch_full, rows)


def fig4(results: list[dict], fused: str, scratch: str) -> None:
    """Epochs and seconds the fused target needs to reach the scratch target's final accuracy at the
    final budget, on the same labels and the same curve images (paper, Fig. 4)."""
    by = {(r["label"], r["seed"]): r for r in results}
    rows = []
    for (label, seed), r in sorted(by.items()):
        if label != fused or (scratch, seed) not in by:
            continue
        mine, theirs = final_round(r)["target_curve"], final_round(by[(scratch, seed)])["target_curve"]
        goal = theirs[-1]["accuracy"]
        hit = epochs_to_reach(mine, goal)
        rows.append((seed, goal, theirs[-1]["epoch"], theirs[-1]["train_seconds"], hit))
    if not rows:
        return
    print(f"\n{fused} against {scratch} at the final budget: first epoch at or above the scratch target's final "
          "curve accuracy\n")
    print("| seed | scratch final (%) | scratch epochs | scratch s | fused epochs | fused s |\n"
          "|---|---|---|---|---|---|")
    for seed, goal, epochs, seconds, hit in rows:
        print(f"| {seed} | {100 * goal:.2f} | {epochs} | {seconds:.0f} | {hit['epoch'] if hit else 'never'} | "
              f"{hit['train_seconds'] if hit else float('nan'):.0f} |")
    reached = [h for *_, h in rows if h]
    if reached:
        print(f"\nmean fused / scratch epochs: {statistics.mean(h['epoch'] for h in reached):.1f} / "
              f"{statistics.mean(r[2] for r in rows):.1f} ({len(reached)} of {len(rows)} seeds reached it)")


def final_round(run: dict) -> dict:
    return next(r for r in reversed(run["rounds"]) if r.get("target_curve"))


def finished(methods: list[str], seeds: list[int], out: Path) -> list[dict]:
    """The runs that have finished: ``table`` reports while other processes still train, and never trains."""
    found = [out / m / f"seed{s}" / "results.json" for m in methods for s in seeds]
    return [read_json(p) for p in found if p.is_file()]


def time_to_accuracy(results: list[dict], method: str, reference: str = "al") -> None:
    """The whole pipeline's seconds until the target reaches dense AL's final accuracy: selection, the
    final selector fit, and the target trained only as long as it needs (issue 8's measure). Dense AL
    pays its selection and its final target training; accuracies are read on the curve images."""
    by = {(r["label"], r["seed"]): r for r in results}
    rows = []
    for (label, seed), run in sorted(by.items()):
        if label != method or (reference, seed) not in by:
            continue
        ref = by[(reference, seed)]
        ref_round, mine = final_round(ref), final_round(run)
        goal = ref_round["target_curve"][-1]["accuracy"]
        ref_total = ref["selection_seconds"] + ref_round["target_seconds"]
        hit = epochs_to_reach(mine["target_curve"], goal)
        if hit is None:
            rows.append((seed, goal, ref_total, None, None))
            continue
        total = run["selection_seconds"] + run["final_selector_fit_seconds"] + hit["train_seconds"]
        rows.append((seed, goal, ref_total, total, hit["epoch"]))
    if not rows:
        return
    print(f"\nTime to {reference}'s final accuracy: selection + final selector fit + target until it gets there\n")
    print(f"| seed | {reference} final (%) | {reference} s | {method} s | epochs | ratio |\n|---|---|---|---|---|---|")
    for seed, goal, ref_total, total, epoch in rows:
        ratio = f"{total / ref_total:.2f}" if total else "never reached"
        mine = f"{total:.0f}" if total else "-"
        print(f"| {seed} | {100 * goal:.2f} | {ref_total:.0f} | {mine} | {epoch or '-'} | {ratio} |")
    reached = [t / r for _, _, r, t, _ in rows if t]
    if reached:
        print(f"\nmean ratio {statistics.mean(reached):.2f} over the {len(reached)} of {len(rows)} seeds that "
              "reached it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "table", "methods", "kd-sweep", "fill", "short-target"))
    parser.add_argument("--out", default="runs/v2", type=Path)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--budget", type=int, default=BUDGETS[-1], help="target-only studies: the budget")
    parser.add_argument("--round-to", type=int, help="pruned selectors keep multiples of this many channels")
    parser.add_argument("--kd-alphas", default=",".join(map(str, KD_ALPHAS)), help="kd-sweep: the α grid")
    parser.add_argument("--kd-temperatures", default=",".join(map(str, KD_TEMPERATURES)), help="kd-sweep: the T grid")
    args = parser.parse_args()
    configure_threads()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    print(f"protocol v2: {PROTOCOL}\nseeds: {seeds}\n", flush=True)
    overrides = {"round_to": args.round_to} if args.round_to else {}
    if args.action in ("run", "methods"):
        run_methods(methods, seeds, args.out, **overrides)
    elif args.action == "kd-sweep":
        kd_sweep(seeds, args.out, args.budget, [float(a) for a in args.kd_alphas.split(",")],
                 [float(t) for t in args.kd_temperatures.split(",")])
    elif args.action == "fill":
        fill_study(seeds, args.out, args.budget)
    elif args.action == "short-target":
        short_targets(seeds, args.out, args.budget)
    else:
        results = finished(methods, seeds, args.out)
        print(write_comparison_report(args.out, results))
        for fused in ("prunefuse@0.5", "prunefuse@0.5-nokd"):
            fig4(results, fused, "prunefuse@0.5-nofusion")
            time_to_accuracy(results, fused)


if __name__ == "__main__":
    main()
