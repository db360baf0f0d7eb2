"""Training and inspection commands: ``train``, ``flops``, ``prune`` and ``datasets``."""

from __future__ import annotations

import argparse

from .. import data, distributed, models
from ..data import DataSpec
from ..errors import UserError
from ..flops import count_arch
from ..pruning import IMPORTANCES, pruned_costs
from ..pruning.export import prune_to_directory
from ..train import TrainConfig
from ..train.experiment import train_model
from ..validation import flag
from .args import (
    COUNT,
    FRACTION,
    NON_NEGATIVE_INT,
    SEED,
    SHUFFLE_TILES_HELP,
    WIDTH,
    add_data_arguments,
    add_train_arguments,
    given_train_options,
    number_list,
    shape,
)


# --- train -----------------------------------------------------------------------------------------
def train_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument("--arch", default="preact20", help=f"one of: {', '.join(models.names())}")
    p.add_argument("--width", type=WIDTH, default=1.0, help="channel-width multiplier")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--overwrite", action="store_true", help="replace a different run already in --out")
    p.add_argument("--epochs", type=COUNT, default=30)
    p.add_argument("--min-steps", type=NON_NEGATIVE_INT, default=0,
                   help="train at least this many optimizer steps (more epochs on small sets)")
    add_train_arguments(p, {})
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--no-flip", action="store_true", help="no horizontal flips")
    p.add_argument("--shuffle-tiles", action="store_true", help=SHUFFLE_TILES_HELP)
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--sync-bn", action="store_true", help="under torchrun on CUDA: SyncBatchNorm")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def train_command(args) -> None:
    models.check_name(args.arch)
    if args.sync_bn and not distributed.launched():
        raise UserError("--sync-bn does nothing in one process (its batch statistics are already the whole "
                        "batch's); launch with torchrun --nproc-per-node N, or drop it")
    config = TrainConfig(epochs=args.epochs, min_steps=args.min_steps, nesterov=args.nesterov,
                         flip=False if args.no_flip else None, shuffle_tiles=args.shuffle_tiles,
                         channels_last=not args.no_channels_last,
                         compile=args.compile, sync_bn=args.sync_bn, seed=args.seed, **given_train_options(args))
    spec = DataSpec(args.dataset, args.data_dir, args.download, args.subset, args.seed)
    r = train_model(spec, args.arch, config, args.out, args.width, args.quiet, args.overwrite)
    print(f"{r['arch']} on {r['dataset']}: test accuracy {r['test_accuracy']:.4f}, "
          f"{r['macs'] / 1e6:.2f} M MACs ({r['flops'] / 1e6:.2f} M FLOPs), {r['params']:,} params, "
          f"{r['wall_seconds']:.0f} s; results in {args.out}")


# --- flops -----------------------------------------------------------------------------------------
def flops_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, help=f"one of: {', '.join(models.names())}")
    p.add_argument("--input-shape", type=shape, default=(3, 32, 32), help="C,H,W of one sample (default 3,32,32)")
    p.add_argument("--num-classes", type=COUNT, default=10)
    p.add_argument("--width", type=WIDTH, default=1.0)
    p.add_argument("--prune-ratios", type=number_list(0, 1, closed="neither"),
                   help="also count pruned copies, e.g. 0.5,0.6,0.7,0.8")
    p.add_argument("--round-to", type=COUNT, help="pruned copies keep a multiple of this many channels per layer")
    p.add_argument("--json", action="store_true", help="print JSON")


def flops_command(args):
    models.check_name(args.arch)
    dense = count_arch(args.arch, args.input_shape, args.num_classes, args.width)
    result = {"arch": args.arch, "input_shape": list(args.input_shape), "flops": dense["flops"],
              "macs": dense["macs"], "params": dense["params"]}
    if args.prune_ratios:
        result["pruned"] = pruned_costs(args.arch, args.input_shape, args.num_classes, args.width,
                                        args.prune_ratios, round_to=args.round_to)
    if args.json:
        return result
    print(f"{args.arch} {args.input_shape}: {dense['flops'] / 1e6:.2f} M FLOPs = {dense['macs'] / 1e6:.2f} M MACs, "
          f"{dense['params']:,} params")
    for entry in result.get("pruned", []):
        print(f"  p={entry['ratio']:.2f}: {entry['flops'] / 1e6:.2f} M FLOPs, {entry['params']:,} params, "
              f"dense/pruned FLOPs {entry['flops_ratio']:.2f}x")
    return None


# --- prune -----------------------------------------------------------------------------------------
def prune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", help=f"one of: {', '.join(models.names())} (not needed with --checkpoint)")
    p.add_argument("--num-classes", type=COUNT, help="default 10 (a checkpoint gives its own)")
    p.add_argument("--input-shape", type=shape, help="C,H,W of one sample (default 3,32,32; a checkpoint gives its "
                   "own)")
    p.add_argument("--width", type=WIDTH, help="channel-width multiplier (default 1; a checkpoint gives its own)")
    p.add_argument("--ratio", type=FRACTION, required=True, help="fraction of channels to remove, in (0, 1)")
    p.add_argument("--importance", default="l2", help=f"one of: {', '.join(IMPORTANCES)} (taylor needs data: "
                   "use the Python API)")
    p.add_argument("--steps", type=COUNT, default=1, help="iterative pruning steps")
    p.add_argument("--round-to", type=COUNT, help="keep a multiple of this many channels in every pruned layer")
    p.add_argument("--global-pruning", action="store_true", help="rank channels across layers")
    p.add_argument("--checkpoint", help="prune this trained checkpoint (stem or directory) instead of a fresh init")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="replace a different run already in --out")


def prune_command(args):
    if not args.checkpoint and not args.arch:
        raise UserError("give --arch (a fresh network to prune) or --checkpoint (a trained one)")
    given = {key: value for key, value in (("num_classes", args.num_classes), ("input_shape", args.input_shape),
                                           ("width", args.width)) if value is not None}  # else the API's defaults
    if args.checkpoint and given:
        flags = [flag(key) for key in given]
        raise UserError(f"{', '.join(flags)}: the checkpoint says what network it holds; drop {' and '.join(flags)}")
    r = prune_to_directory(args.out, args.ratio, arch=args.arch, checkpoint_path=args.checkpoint, **given,
                           importance=args.importance, steps=args.steps, global_pruning=args.global_pruning,
                           round_to=args.round_to, seed=args.seed, overwrite=args.overwrite)
    print(f"{r['arch']} pruned at p={args.ratio}: {r['flops'] / 1e6:.2f} M FLOPs ({r['flops_ratio']:.2f}x fewer), "
          f"{r['params']:,} params; wrote {args.out}/pruned.safetensors, pruned.json and pruned.map.json")


# --- datasets --------------------------------------------------------------------------------------
def datasets_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="look only here")
    p.add_argument("--json", action="store_true")


def datasets_command(args):
    rows = data.availability(args.data_dir)
    if args.json:
        return rows
    for r in rows:
        print(f"{r['name']:<14} {r['description']:<48} {r['status']}")
    return None


COMMANDS = {
    "train": (train_arguments, train_command, "train a zoo model on a dataset and evaluate it"),
    "flops": (flops_arguments, flops_command, "count FLOPs, MACs and parameters of an architecture"),
    "prune": (prune_arguments, prune_command, "prune a network and write it with its channel map"),
    "datasets": (datasets_arguments, datasets_command, "list datasets and whether each is found locally"),
}
