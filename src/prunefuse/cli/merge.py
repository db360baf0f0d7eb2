"""``prunefuse merge``: PAM and its baselines, with the preset that keeps the digits demo to a minute."""

from __future__ import annotations

import argparse

from .. import models
from ..data import DataSpec
from ..errors import UserError
from ..merge import MergeConfig, PruneConfig, run_merge
from ..merge.report import merge_tables
from ..train import TrainConfig
from ..validation import flag
from .args import (
    COUNT,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    SEED,
    SHUFFLE_TILES_HELP,
    UNIT,
    WIDTH,
    add_data_arguments,
    names,
    number,
    number_list,
)

# 1,500 8x8 training images: small batches and small fine-tuning rounds.
DIGITS_PRESET = {"epochs": 15, "batch_size": 64, "val_size": 300, "finetune_samples": 2000}
DEFAULT_CONFIG = MergeConfig()
DEFAULTS = {"epochs": DEFAULT_CONFIG.single.epochs, "batch_size": DEFAULT_CONFIG.single.batch_size,
            "val_size": DEFAULT_CONFIG.val_size, "finetune_samples": DEFAULT_CONFIG.prune.finetune_samples}


def preset_default(name: str) -> str:
    """Help text for an option whose default differs on digits."""
    return f"{DEFAULTS[name]} ({DIGITS_PRESET[name]} on digits)"


def merge_arguments(p: argparse.ArgumentParser) -> None:
    d, dp = DEFAULT_CONFIG, DEFAULT_CONFIG.prune
    add_data_arguments(p)
    p.add_argument("--tasks", default=d.tasks, help="class sets, e.g. 0-4,5-9 or 0-1,2-3,4-5,6-7,8-9 (1+3+7 lists "
                   "single classes): task t classifies its classes plus 'other'; on an attribute dataset "
                   "(fashion-mnist-grid) attribute sets, which may overlap: task t predicts each of its attributes")
    p.add_argument("--arch", default=d.arch, help="lenet5 (default), vgg11, vgg16")
    p.add_argument("--width", type=WIDTH, default=1.0)
    p.add_argument("--methods", type=names, default=list(d.methods), help="comma-separated: pam, nomerge, shared, mtz")
    p.add_argument("--checkpoints", type=names, help="comma-separated single-task networks (singles/taskN of an "
                   "earlier run) to merge instead of training them")
    p.add_argument("--joint", type=names, help="comma-separated merged networks after joint training (<method>/joint "
                   "of an earlier run with the same singles and merge flags) to prune instead of merging and "
                   "training again, e.g. under another pruner")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--overwrite", action="store_true", help="replace a different run already in --out")
    g = p.add_argument_group("single-task training")
    g.add_argument("--epochs", type=COUNT, help=preset_default("epochs"))
    g.add_argument("--batch-size", type=COUNT, help=preset_default("batch_size"))
    g.add_argument("--lr", type=POSITIVE, default=0.05)
    g.add_argument("--schedule", default="cosine")
    g.add_argument("--device", default="auto")
    g.add_argument("--seed", type=SEED, default=0)
    g.add_argument("--shuffle-tiles", action="store_true",
                   help="in every training of the run (single networks, joint training, fine-tunes, retraining), "
                   + SHUFFLE_TILES_HELP)
    g.add_argument("--train-seed", type=SEED,
                   help="draw everything but the held-out split with this seed instead of --seed's (initialisation, "
                   "batch order, pruning's samples, PAM's MI jitter): a replicate of a run on its --checkpoints")
    g = p.add_argument_group("merging")
    g.add_argument("--merge-lr", type=POSITIVE, default=d.merge_lr, help="peak rate of the joint training")
    g.add_argument("--merge-epochs", type=NON_NEGATIVE_INT, default=d.merge_epochs,
                   help="joint fine-tuning after merging")
    g.add_argument("--calibration", type=number(8, integer=True), default=d.calibration,
                   help="images for MI and Hessians")
    g.add_argument("--alpha-conv", type=NON_NEGATIVE, default=d.alpha_conv,
                   help="PAM MI threshold for conv layers, nats per label variable (default: the chance level)")
    g.add_argument("--alpha-fc", type=NON_NEGATIVE, default=d.alpha_fc,
                   help="PAM MI threshold for linear layers, nats per label variable (default: the chance level)")
    g.add_argument("--conv-cells", type=COUNT, default=d.conv_cells,
                   help="PAM: a conv channel enters the MI as its maximum over each cell of this grid (1: global max)")
    g.add_argument("--exclusive-quota", type=UNIT, default=d.exclusive_quota,
                   help="PAM: keep up to this fraction of each network's neurons that tell more about its own task "
                   "than about any other exclusive to its task, even where another task finds them relevant "
                   "(default 0: the authors' rule)")
    g.add_argument("--distill", action="store_true",
                   help="joint training and every pruning fine-tune also learn each task from its single-task "
                   "network (Hinton KD per head; nomerge's networks from their unpruned selves)")
    g.add_argument("--kd-alpha", type=UNIT, help=f"with --distill: weight of the label loss (default "
                   f"{MergeConfig.kd_alpha})")
    g.add_argument("--kd-temperature", type=POSITIVE, help=f"with --distill: temperature (default "
                   f"{MergeConfig.kd_temperature})")
    g.add_argument("--shared-width", type=WIDTH, default=d.shared_width,
                   help="the all-shared baseline's trunk width, relative to one single-task network (default 1)")
    g.add_argument("--shared-epochs", type=COUNT, help="the all-shared baseline's training (default: twice --epochs)")
    g.add_argument("--mtz-share", type=number(0, 1, closed="right"), default=d.mtz_share,
                   help="fraction of neurons MTZ zips per layer")
    g = p.add_argument_group("pruning (the same for every method)")
    g.add_argument("--importance", default=dp.importance, help="taylor (default), magnitude or vib")
    g.add_argument("--vib-strength", type=POSITIVE, default=dp.vib_strength,
                   help="the first VIB penalty tried: doubled after a success, halved after a miss until one of each, "
                   "then bisected geometrically")
    g.add_argument("--vib-epochs", type=COUNT, default=dp.vib_epochs, help="gate training per VIB attempt")
    g.add_argument("--empty-groups", action="store_true",
                   help="taylor/magnitude: a task's group may be pruned away whole, where the shared group keeps "
                   "one neuron per layer (default: every group keeps its best neuron)")
    g.add_argument("--allocation", default=dp.allocation,
                   help="how a step picks neurons: uniform (the same share of every group; default), cost (the "
                   "least important per MAC across groups, MACs averaged over the task subsets) or cost-all "
                   "(the same, MACs with all tasks running)")
    g.add_argument("--step-fraction", type=FRACTION, default=dp.step_fraction,
                   help="share of each group (uniform) or of the priced MACs (cost, cost-all) pruned per step")
    g.add_argument("--tolerance", type=number(0, 1, closed="left"), default=dp.tolerance,
                   help="allowed accuracy drop per task (0.01 = 1 point)")
    g.add_argument("--min-step-fraction", type=FRACTION, default=dp.min_step_fraction,
                   help="a step that breaks the tolerance is retried at half the fraction; stop below this")
    g.add_argument("--max-steps", type=NON_NEGATIVE_INT, default=dp.max_steps,
                   help="pruning attempts, failed ones included")
    g.add_argument("--finetune-samples", type=COUNT,
                   help=f"images per fine-tuning round after a step: {preset_default('finetune_samples')}")
    g.add_argument("--recovery-rounds", type=NON_NEGATIVE_INT, default=dp.recovery_rounds,
                   help="extra fine-tuning rounds a step gets while a task is below the tolerance, before it is "
                   f"undone (default {dp.recovery_rounds})")
    g.add_argument("--probe-rounds", type=NON_NEGATIVE_INT, default=dp.probe_rounds,
                   help="extra fine-tuning rounds a one-neuron step gets while a task is below the tolerance; "
                   f"if it still fails, its group is pruned no further (default {dp.probe_rounds})")
    g.add_argument("--prune-budget", type=FRACTION, default=dp.budget,
                   help="prune to this fraction of each network's FLOPs with all its tasks, one fine-tuning round "
                   "a step and no tolerance check on the way (the check comes after --retrain-epochs), instead of "
                   "pruning to the tolerance")
    g.add_argument("--retrain-epochs", type=NON_NEGATIVE_INT, default=dp.retrain_epochs,
                   help="train each pruned network this many more epochs at --lr and --schedule before the "
                   "tolerance check (default 0)")
    g.add_argument("--val-size", type=COUNT, help="held-out training images for the tolerance check: "
                   f"{preset_default('val_size')}")
    g = p.add_argument_group("measurement")
    g.add_argument("--latency-batches", type=number_list(1, integer=True), default=d.latency_batches,
                   help="batch sizes whose forward latency is measured for every subset (default 1,64)")
    g.add_argument("--latency-repeats", type=COUNT, default=d.latency_repeats)
    p.add_argument("--quiet", action="store_true")


def merge_config(args) -> MergeConfig:
    preset = DIGITS_PRESET if args.dataset == "digits" else DEFAULTS

    def pick(name):
        value = getattr(args, name)
        return preset[name] if value is None else value

    kd = {k: getattr(args, k) for k in ("kd_alpha", "kd_temperature") if getattr(args, k) is not None}
    if kd and not args.distill:
        raise UserError(f"{flag(next(iter(kd)))} has no effect without --distill; add --distill")
    single = TrainConfig(epochs=pick("epochs"), batch_size=pick("batch_size"), lr=args.lr, schedule=args.schedule,
                         shuffle_tiles=args.shuffle_tiles, device=args.device,
                         seed=args.seed if args.train_seed is None else args.train_seed)
    prune = PruneConfig(importance=args.importance, allocation=args.allocation, empty_groups=args.empty_groups,
                        step_fraction=args.step_fraction, tolerance=args.tolerance,
                        min_step_fraction=args.min_step_fraction, max_steps=args.max_steps,
                        recovery_rounds=args.recovery_rounds, probe_rounds=args.probe_rounds,
                        finetune_samples=pick("finetune_samples"),
                        vib_strength=args.vib_strength, vib_epochs=args.vib_epochs, budget=args.prune_budget,
                        retrain_epochs=args.retrain_epochs)
    return MergeConfig(data=DataSpec(args.dataset, args.data_dir, args.download, args.subset, args.seed),
                       tasks=args.tasks, arch=args.arch, width=args.width, methods=args.methods, single=single,
                       merge_epochs=args.merge_epochs, merge_lr=args.merge_lr, calibration=args.calibration,
                       alpha_conv=args.alpha_conv, alpha_fc=args.alpha_fc, conv_cells=args.conv_cells,
                       exclusive_quota=args.exclusive_quota,
                       mtz_share=args.mtz_share, shared_width=args.shared_width,
                       shared_epochs=args.shared_epochs, distill=args.distill, **kd,
                       prune=prune, val_size=pick("val_size"), split_seed=args.seed,
                       latency_batches=args.latency_batches, latency_repeats=args.latency_repeats,
                       checkpoints=args.checkpoints, joint=args.joint)


def merge_command(args):
    config = merge_config(args)
    models.check_name(config.arch)
    results = run_merge(config, args.out, args.quiet, overwrite=args.overwrite)
    print(merge_tables(results) + f"\nresults.json, report.md and flops_per_subset.png in {args.out}")


COMMANDS = {
    "merge": (merge_arguments, merge_command, "PAM: merge single-task networks into a multitask one, with baselines"),
}
