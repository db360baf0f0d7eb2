"""Arguments of ``prunefuse merge``, and the preset that keeps the digits demo to a minute."""

from __future__ import annotations

import argparse

from .errors import UserError
from .experiment import DataSpec
from .merge import MergeConfig, PruneConfig
from .train import TrainConfig

# 1,500 8x8 training images: small batches and small fine-tuning rounds.
DIGITS_PRESET = {"epochs": 15, "batch_size": 64, "val_size": 300, "finetune_samples": 2000}
DEFAULTS = {"epochs": 8, "batch_size": 128, "val_size": 5000, "finetune_samples": 12_800}


def add_merge_arguments(p: argparse.ArgumentParser) -> None:
    d, dp = MergeConfig(), PruneConfig()
    p.add_argument("--dataset", default="digits", help="default digits (the embedded set)")
    p.add_argument("--data-dir")
    p.add_argument("--download", action="store_true")
    p.add_argument("--subset", type=int, help="use this many training samples, drawn at random")
    p.add_argument("--tasks", default=d.tasks, help="class sets, e.g. 0-4,5-9 or 0-1,2-3,4-5,6-7,8-9 (1+3+7 lists "
                   "single classes); task t is classification over its classes plus 'other'")
    p.add_argument("--arch", default=d.arch, help="lenet5 (default), vgg11, vgg16")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--methods", default=",".join(d.methods), help="comma-separated: pam, nomerge, shared, mtz")
    p.add_argument("--checkpoints", help="comma-separated single-task networks (singles/taskN of an earlier run) "
                   "to merge instead of training them")
    p.add_argument("--out", required=True, help="run directory")
    g = p.add_argument_group("single-task training")
    g.add_argument("--epochs", type=int, help="8 (15 on digits)")
    g.add_argument("--batch-size", type=int, help="128 (64 on digits)")
    g.add_argument("--lr", type=float, default=0.05)
    g.add_argument("--schedule", default="cosine")
    g.add_argument("--device", default="auto")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("merging")
    g.add_argument("--merge-epochs", type=int, default=d.merge_epochs, help="joint fine-tuning after merging")
    g.add_argument("--calibration", type=int, default=d.calibration, help="images for MI and Hessians")
    g.add_argument("--alpha-conv", type=float, default=d.alpha_conv, help="PAM MI threshold for conv layers (nats)")
    g.add_argument("--alpha-fc", type=float, default=d.alpha_fc, help="PAM MI threshold for linear layers (nats)")
    g.add_argument("--mtz-share", type=float, default=d.mtz_share, help="fraction of neurons MTZ zips per layer")
    g = p.add_argument_group("pruning (the same for every method)")
    g.add_argument("--importance", default=dp.importance, help="taylor (default) or magnitude")
    g.add_argument("--step-fraction", type=float, default=dp.step_fraction, help="share of a group pruned per step")
    g.add_argument("--tolerance", type=float, default=dp.tolerance,
                   help="allowed accuracy drop per task (0.01 = 1 point)")
    g.add_argument("--min-step-fraction", type=float, default=dp.min_step_fraction,
                   help="a step that breaks the tolerance is retried at half the fraction; stop below this")
    g.add_argument("--max-steps", type=int, default=dp.max_steps, help="pruning attempts, failed ones included")
    g.add_argument("--finetune-samples", type=int, help="images of fine-tuning per step: 12800 (2000 on digits)")
    g.add_argument("--val-size", type=int,
                   help="held-out training images for the tolerance check: 5000 (300 on digits)")
    g = p.add_argument_group("measurement")
    g.add_argument("--latency-batch", type=int, default=d.latency_batch)
    g.add_argument("--latency-repeats", type=int, default=d.latency_repeats)
    p.add_argument("--quiet", action="store_true")


def merge_config(args) -> MergeConfig:
    preset = DIGITS_PRESET if args.dataset == "digits" else DEFAULTS

    def pick(name):
        value = getattr(args, name)
        return preset[name] if value is None else value

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    checkpoints = [c.strip() for c in args.checkpoints.split(",") if c.strip()] if args.checkpoints else None
    if args.max_steps < 0:
        raise UserError("--max-steps must be 0 or more")
    single = TrainConfig(epochs=pick("epochs"), batch_size=pick("batch_size"), lr=args.lr, schedule=args.schedule,
                         device=args.device, seed=args.seed)
    prune = PruneConfig(importance=args.importance, step_fraction=args.step_fraction, tolerance=args.tolerance,
                        min_step_fraction=args.min_step_fraction, max_steps=args.max_steps,
                        finetune_samples=pick("finetune_samples"))
    return MergeConfig(data=DataSpec(args.dataset, args.data_dir, args.download, args.subset, args.seed),
                       tasks=args.tasks, arch=args.arch, width=args.width, methods=methods, single=single,
                       merge_epochs=args.merge_epochs, calibration=args.calibration, alpha_conv=args.alpha_conv,
                       alpha_fc=args.alpha_fc, mtz_share=args.mtz_share, prune=prune, val_size=pick("val_size"),
                       latency_batch=args.latency_batch, latency_repeats=args.latency_repeats, checkpoints=checkpoints)
