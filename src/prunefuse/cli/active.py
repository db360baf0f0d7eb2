"""Active-learning commands: ``run`` (one method, the demo, or ``--resume``) and ``compare``."""

from __future__ import annotations

import argparse

from .. import models
from ..active import ActiveConfig, compare, resume, run_active
from ..active.compare import parse_method
from ..active.report import comparison_text, rounds_table
from ..errors import UserError
from ..validation import MAX_SEED, flag
from .args import (
    COUNT,
    FRACTION,
    NON_NEGATIVE_INT,
    POSITIVE,
    SEED,
    UNIT,
    WIDTH,
    Parser,
    add_data_arguments,
    add_train_arguments,
    given_train_options,
    names,
    number_list,
)

# The embedded demo: 1,347 8x8 digits train in minutes with small batches and epochs alone.
DIGITS_PRESET = {"budgets": [0.1, 0.2, 0.3], "selector_epochs": 20, "target_epochs": 30, "selector_steps": 0,
                 "target_steps": 0, "curve_every": 1, "train": {"batch_size": 32}}
KD_OPTIONS = ("kd_alpha", "kd_temperature", "kd_schedule")
DEMO_METHODS = ("prunefuse", "al", "random")  # what ``run`` compares without --method


def add_active_arguments(p: argparse.ArgumentParser) -> None:
    """Every option defaults to None: ActiveConfig's defaults (or the digits preset) apply unless given."""
    d = ActiveConfig()
    add_data_arguments(p, default=None, subset=False)
    p.add_argument("--pool-size", type=COUNT, help="draw the pool from the training split (default: all of it)")
    p.add_argument("--test-size", type=COUNT, help="evaluate on the first N test samples (default: all)")
    p.add_argument("--arch", help=f"target architecture (default {d.arch})")
    p.add_argument("--width", type=WIDTH)
    g = p.add_argument_group("selection")
    g.add_argument("--prune-ratio", type=FRACTION, help=f"fraction of channels removed (default {d.prune_ratio})")
    g.add_argument("--importance", help="l2 (default), l1, random, bn_scale")
    g.add_argument("--prune-steps", type=COUNT, help=f"iterative pruning steps (default {d.prune_steps})")
    g.add_argument("--round-to", type=COUNT, help="keep a multiple of this many channels in every pruned layer")
    g.add_argument("--selection", help="least_confidence (default), margin, entropy, kcenter, badge, random")
    g.add_argument("--initial", type=POSITIVE, help="initial random set: fraction (<1) or count (default 0.02)")
    g.add_argument("--budgets", type=number_list(0, closed="neither"),
                   help="cumulative budgets, fractions or counts (default 0.1,0.2,0.3,0.4,0.5; 0.1,0.2,0.3 on digits)")
    g.add_argument("--eval-at", type=number_list(0, closed="neither"),
                   help="budgets at which the target is trained (default: the last)")
    g.add_argument("--selector-epochs", type=COUNT, help=f"default {d.selector_epochs}")
    g.add_argument("--selector-steps", type=NON_NEGATIVE_INT, help=f"at least this many optimizer steps per "
                   f"selector fit (default {d.selector_steps}; 0: epochs alone)")
    g.add_argument("--svp-arch", help="SVP proxy architecture (default: a smaller one, e.g. preact8 for "
                   "preact20; README lists them)")
    g.add_argument("--svp-epochs", type=COUNT)
    g.add_argument("--t-sync", type=NON_NEGATIVE_INT, help="refresh the selector every T rounds (default 0: fixed)")
    g.add_argument("--warm-start", action="store_true", help="continue the selector from the last round")
    g = p.add_argument_group("target")
    g.add_argument("--target-epochs", type=COUNT, help=f"default {d.target_epochs}")
    g.add_argument("--target-steps", type=NON_NEGATIVE_INT, help=f"at least this many optimizer steps per target "
                   f"fit (default {d.target_steps})")
    g.add_argument("--kd", action="store_true", help=f"distil the fused target from the selector (default "
                   f"{'on' if d.kd else 'off'}: it lowered accuracy in every measurement, BENCHMARKS.md)")
    g.add_argument("--no-kd", action="store_true", help="train the fused target without distillation")
    g.add_argument("--kd-alpha", type=UNIT, help=f"weight of the cross-entropy in the KD loss, in [0, 1] "
                   f"(default {d.train['kd_alpha']})")
    g.add_argument("--kd-temperature", type=POSITIVE, help=f"KD softmax temperature (default "
                   f"{d.train['kd_temperature']})")
    g.add_argument("--kd-schedule", help="constant (default) or decay: the distillation weight falls linearly to 0")
    g.add_argument("--no-fusion", action="store_true", help="train the target from scratch on the selection")
    g.add_argument("--fill", help="positions fusion does not cover: reinit (default), init, zero")
    g.add_argument("--fusion-scope", help="all (default) or conv (the authors' variant)")
    g.add_argument("--curve-every", type=NON_NEGATIVE_INT, help="evaluate the final target every N epochs for "
                   "its curve (default 0: off)")
    g.add_argument("--curve-size", type=COUNT, help="test images the curve uses (default: all)")
    add_train_arguments(p, shown=d.train, batch_note=f" ({DIGITS_PRESET['train']['batch_size']} on digits)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


FLAGS = ("warm_start", "no_kd", "kd", "no_fusion", "download")


def active_config(args, method: str | None = None, seed: int = 0) -> ActiveConfig:
    """Defaults, then the digits preset where the dataset is digits, then what the user gave."""
    values = ActiveConfig().to_dict()
    if (args.dataset or "digits") == "digits":
        values.update({k: v for k, v in DIGITS_PRESET.items() if k != "train"})
        values["train"].update(DIGITS_PRESET["train"])
    given = {k: v for k, v in vars(args).items()
             if v is not None and k in values and k not in ("train", "seed", *FLAGS)}
    values.update(given)
    values["train"].update(given_train_options(args, KD_OPTIONS))
    if args.kd and args.no_kd:
        raise UserError("--kd and --no-kd contradict each other; give one")
    values.update(method=method or values["method"], seed=seed, warm_start=args.warm_start or values["warm_start"],
                  download=args.download)
    if args.no_fusion:
        values.update(fusion=False, kd=False)
    if args.kd or args.no_kd:
        values["kd"] = args.kd
    return ActiveConfig.from_dict(values)


def given_settings(args) -> dict[str, str]:
    """The config settings the command line sets, each with the flag that set it."""
    flags = {k: flag(k) for k, v in vars(args).items() if v is not None and k not in (*FLAGS, "seed", "method")
             and (k in ActiveConfig.__dataclass_fields__ or k in KD_OPTIONS)}
    flags.update({k: flag(k) for k in ("warm_start", "kd") if getattr(args, k)})
    if args.no_kd:
        flags["kd"] = "--no-kd"
    if args.no_fusion:
        flags["fusion"] = "--no-fusion"
    return flags


def refuse_unread(args, configs: list[ActiveConfig], base: ActiveConfig) -> None:
    """A flag that no run of ``configs`` reads (``--prune-ratio`` for random labeling), or that every
    run reading it overrides (``--kd`` beside ``prunefuse-nokd``), is a mistake: refused, rather than
    recorded in config.json as if it had shaped the run. ``base`` holds the command line's values."""
    def value(config: ActiveConfig, name: str):
        return config.train[name] if name in KD_OPTIONS else getattr(config, name)

    given = given_settings(args)  # the switches first: a suffix that turns KD or fusion off is the cause
    for name in sorted(given, key=lambda n: n not in ("kd", "fusion")):
        flag = given[name]
        reasons = [c.unread_settings().get(name) or (f"{c.method}'s suffix in --methods sets it"
                                                     if value(c, name) != value(base, name) else None)
                   for c in configs]
        if all(reasons):
            methods = ", ".join(dict.fromkeys(c.method for c in configs))
            raise UserError(f"{flag} has no effect on {methods}: {'; '.join(dict.fromkeys(reasons))}; drop it")


def given_options(args, parser_defaults: dict) -> list[str]:
    """The options set on the command line (their values differ from the parser's defaults)."""
    skip = {"resume", "quiet", "command"}
    return [flag(k) for k, v in vars(args).items()
            if k not in skip and v != parser_defaults.get(k)]


# --- run -------------------------------------------------------------------------------------------
def run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help="prunefuse, al, svp or random; without it, compare prunefuse, al and random")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", help="run directory (default runs/demo, or runs/<method>-seed<k>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last completed step, with the "
                   "config it started with")
    p.add_argument("--overwrite", action="store_true", help="replace a different run already in --out")
    add_active_arguments(p)


def run_command(args):
    if args.resume:
        blank = Parser(prog="prunefuse run")
        run_arguments(blank)
        extra = given_options(args, vars(blank.parse_args([])))
        if extra:
            raise UserError(f"--resume continues {args.resume} with the config it started with; drop "
                            f"{', '.join(extra)} (or start a new run with --out)")
        result = resume(args.resume, args.quiet)
        print(rounds_table(result))
        return
    if args.method is None:
        out = args.out or "runs/demo"
        base = active_config(args)
        refuse_unread(args, [parse_method(m, base) for m in DEMO_METHODS], base)
        _, text = compare(list(DEMO_METHODS), [args.seed], base, out, args.quiet, overwrite=args.overwrite)
        print(text + f"\nresults, report.md and plots in {out}")
        return
    config = active_config(args, args.method, args.seed)
    models.check_name(config.arch)
    refuse_unread(args, [config], config)
    out = args.out or f"runs/{args.method}-seed{args.seed}"
    result = run_active(config, out, args.quiet, overwrite=args.overwrite)
    print(rounds_table(result) + "\n" + comparison_text([result]) + f"\nresults, report.md and plots in {out}")


# --- compare ---------------------------------------------------------------------------------------
def compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--methods", type=names, default=["random", "al", "svp", "prunefuse"],
                   help="comma-separated: random, al, svp, prunefuse[@RATIO][-nofusion][-kd|-nokd][-FILL][-conv]")
    p.add_argument("--seeds", type=number_list(0, MAX_SEED, integer=True), default=[0],
                   help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="replace a different comparison already in --out")
    add_active_arguments(p)


def compare_command(args):
    base = active_config(args)
    refuse_unread(args, [parse_method(m, base) for m in args.methods], base)
    _, text = compare(args.methods, args.seeds, base, args.out, args.quiet, overwrite=args.overwrite)
    print(text + f"\nresults, report.md and plots in {args.out}")


COMMANDS = {
    "run": (run_arguments, run_command, "active learning with PruneFuse or a baseline (no arguments: the demo)"),
    "compare": (compare_arguments, compare_command, "several methods over several seeds, one table and plots"),
}
