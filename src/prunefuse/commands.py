"""Each CLI command: its arguments and the API call behind it."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from . import data, models
from .errors import UserError
from .experiment import DataSpec, train_model
from .flops import count, count_arch
from .io import checkpoint
from .train import TrainConfig


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(f"--input-shape '{text}' must be C,H,W with positive integers, e.g. 3,32,32")
    return shape  # type: ignore[return-value]


def parse_floats(text: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} '{text}' must be comma-separated numbers, e.g. 0.5,0.7") from None


def add_data_arguments(p: argparse.ArgumentParser, default: str = "digits") -> None:
    p.add_argument("--dataset", default=default, help=f"one of: {', '.join(data.names())} (default {default})")
    p.add_argument("--data-dir", help="folder (or .npz file) holding the dataset's files")
    p.add_argument("--download", action="store_true", help="fetch MNIST/Fashion-MNIST from the official host")
    p.add_argument("--subset", type=int, help="use this many training samples, drawn at random")


def data_spec(args) -> DataSpec:
    return DataSpec(args.dataset, args.data_dir, args.download, args.subset, args.seed)


def add_train_arguments(p: argparse.ArgumentParser, epochs: int = 30) -> None:
    d = TrainConfig()
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--schedule", default=d.schedule, help="piecewise (reference, scaled), onecycle, cosine, constant")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--no-flip", action="store_true", help="no horizontal flips")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--amp", default="auto", help="auto (bf16/fp16 on CUDA, off on CPU), off, bf16, fp16")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    p.add_argument("--sync-bn", action="store_true", help="under torchrun on CUDA: SyncBatchNorm")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                       weight_decay=args.weight_decay, nesterov=args.nesterov, schedule=args.schedule,
                       label_smoothing=args.label_smoothing, flip=False if args.no_flip else None,
                       channels_last=not args.no_channels_last, amp=args.amp, compile=args.compile,
                       sync_bn=args.sync_bn,
                       device=args.device, seed=args.seed)


# --- train -----------------------------------------------------------------------------------------
def train_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument("--arch", default="preact20", help=f"one of: {', '.join(models.names())}")
    p.add_argument("--width", type=float, default=1.0, help="channel-width multiplier")
    p.add_argument("--out", required=True, help="run directory")
    add_train_arguments(p)


def train_command(args) -> None:
    models.create(args.arch, 2, 1, 32)  # validate the name before loading data
    r = train_model(data_spec(args), args.arch, train_config(args), args.out, args.width, args.quiet)
    print(f"{r['arch']} on {r['dataset']}: test accuracy {r['test_accuracy']:.4f}, "
          f"{r['macs'] / 1e6:.2f} M MACs ({r['flops'] / 1e6:.2f} M FLOPs), {r['params']:,} params, "
          f"{r['wall_seconds']:.0f} s; results in {args.out}")


# --- flops -----------------------------------------------------------------------------------------
def flops_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True)
    p.add_argument("--input-shape", default="3,32,32", help="C,H,W of one sample")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--prune-ratios", help="also count pruned copies, e.g. 0.5,0.6,0.7,0.8")
    p.add_argument("--json", action="store_true", help="print JSON")


def flops_command(args):
    shape = parse_shape(args.input_shape)
    dense = count_arch(args.arch, shape, args.num_classes, args.width)
    result = {"arch": args.arch, "input_shape": list(shape), "flops": dense["flops"], "macs": dense["macs"],
              "params": dense["params"]}
    if args.prune_ratios:
        from .pruning import pruned_costs

        result["pruned"] = pruned_costs(args.arch, shape, args.num_classes, args.width,
                                        parse_floats(args.prune_ratios, "--prune-ratios"))
    if args.json:
        return result
    print(f"{args.arch} {shape}: {dense['flops'] / 1e6:.2f} M FLOPs = {dense['macs'] / 1e6:.2f} M MACs, "
          f"{dense['params']:,} params")
    for entry in result.get("pruned", []):
        print(f"  p={entry['ratio']:.2f}: {entry['flops'] / 1e6:.2f} M FLOPs, {entry['params']:,} params, "
              f"dense/pruned FLOPs {entry['flops_ratio']:.2f}x")
    return None


# --- prune -----------------------------------------------------------------------------------------
def prune_arguments(p: argparse.ArgumentParser) -> None:
    from .pruning import IMPORTANCES

    p.add_argument("--arch", required=True)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--input-shape", default="3,32,32", help="C,H,W of one sample")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--ratio", type=float, required=True, help="fraction of channels to remove, in (0, 1)")
    p.add_argument("--importance", default="l2", help=f"one of: {', '.join(IMPORTANCES)} (taylor needs data: "
                   "use the Python API)")
    p.add_argument("--steps", type=int, default=1, help="iterative pruning steps")
    p.add_argument("--global-pruning", action="store_true", help="rank channels across layers")
    p.add_argument("--checkpoint", help="prune this trained checkpoint (stem or directory) instead of a fresh init")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)


def prune_command(args):
    from .io.rundir import seed_everything, write_config
    from .pruning import ChannelMap, check_ratio, prune, save_pruned

    check_ratio(args.ratio)
    if args.importance == "taylor":
        raise UserError("taylor importance needs a labelled batch; use prunefuse.pruning.prune(..., batch=...)")
    seed_everything(args.seed)
    base_map = None
    if args.checkpoint:
        model, meta = checkpoint.load_model(args.checkpoint)
        shape, arch, width = tuple(meta["input_shape"]), meta["arch"], meta.get("width", 1.0)
        base_map = ChannelMap.from_dict(meta["channel_map"]) if meta.get("channel_map") else None
        num_classes = meta["num_classes"]
    else:
        shape, arch, width, num_classes = parse_shape(args.input_shape), args.arch, args.width, args.num_classes
        model = models.create(arch, num_classes, shape[0], shape[1], width)
    dense_cost = count(model, shape)
    pruned, cmap = prune(model, args.ratio, torch.zeros(1, *shape), args.importance, args.steps,
                         args.global_pruning, channel_map=base_map, arch=arch)
    cost = count(pruned, shape)
    write_config(args.out, {"command": "prune", **vars(args)})
    save_pruned(Path(args.out) / "pruned", pruned, cmap, checkpoint.model_spec(arch, num_classes, shape, width))
    result = {"arch": arch, "ratio": args.ratio, "dense_flops": dense_cost["flops"], "flops": cost["flops"],
              "params": cost["params"], "flops_ratio": dense_cost["flops"] / max(cost["flops"], 1),
              "out": args.out}
    print(f"{arch} pruned at p={args.ratio}: {cost['flops'] / 1e6:.2f} M FLOPs "
          f"({result['flops_ratio']:.2f}x fewer), {cost['params']:,} params; wrote {args.out}/pruned.safetensors, "
          f"pruned.json and pruned.map.json")


# --- run / compare ---------------------------------------------------------------------------------
def run_arguments(p: argparse.ArgumentParser) -> None:
    from .active_cli import add_active_arguments

    p.add_argument("--method", help="prunefuse, al, svp or random; without it, compare prunefuse, al and random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default runs/demo, or runs/<method>-seed<k>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last completed step")
    add_active_arguments(p)


def run_command(args):
    from .active import compare, resume, run_active
    from .active.report import accuracy_table, rounds_table
    from .active_cli import active_config

    if args.resume:
        result = resume(args.resume, args.quiet)
        print(rounds_table(result))
        return
    if args.method is None:
        out = args.out or "runs/demo"
        _, table = compare(["prunefuse", "al", "random"], [args.seed], active_config(args), out, args.quiet)
        print(table + f"\nresults, report.md and plots in {out}")
        return
    config = active_config(args, args.method, args.seed)
    out = args.out or f"runs/{args.method}-seed{args.seed}"
    result = run_active(config, out, args.quiet)
    print(rounds_table(result) + "\n" + accuracy_table([result]) + f"\nresults, report.md and plots in {out}")
    return


def compare_arguments(p: argparse.ArgumentParser) -> None:
    from .active_cli import add_active_arguments

    p.add_argument("--methods", default="random,al,svp,prunefuse",
                   help="comma-separated: random, al, svp, prunefuse[@RATIO][-nofusion][-nokd]")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--out", required=True)
    add_active_arguments(p)


def compare_command(args):
    from .active import compare
    from .active_cli import active_config

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds '{args.seeds}' must be comma-separated integers, e.g. 0,1,2") from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    _, table = compare(methods, seeds, active_config(args), args.out, args.quiet)
    print(table + f"\nresults, report.md and plots in {args.out}")


# --- select --------------------------------------------------------------------------------------
def select_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, help="image folder or .npz (x, optional ids and classes)")
    p.add_argument("--labels", required=True, help="CSV with columns id,label for the samples labeled so far")
    p.add_argument("--budget", type=int, required=True, help="how many samples to pick")
    p.add_argument("--out", required=True, help="CSV to write: id,score")
    p.add_argument("--arch", default="preact20")
    p.add_argument("--prune-ratio", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=30, help="selector training epochs")
    p.add_argument("--selection", default="least_confidence")
    p.add_argument("--classes", help="comma-separated class names (default: those in the labels file)")
    p.add_argument("--image-size", type=int, help="resize folder images to this size")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")


def select_command(args):
    from .pool_selection import select_from_pool

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    rows = select_from_pool(args.pool, args.labels, args.budget, args.out, args.arch, args.prune_ratio, args.epochs,
                            args.selection, classes, args.seed, args.batch_size, args.image_size, args.quiet)
    print(f"wrote {len(rows)} samples to label to {args.out}")


# --- merge ---------------------------------------------------------------------------------------
def merge_arguments(p: argparse.ArgumentParser) -> None:
    from .merge_cli import add_merge_arguments

    add_merge_arguments(p)


def merge_command(args):
    from .merge import run_merge
    from .merge.report import merge_tables
    from .merge_cli import merge_config

    config = merge_config(args)
    models.create(config.arch, 2, 1, 32)  # validate the name before loading data
    results = run_merge(config, args.out, args.quiet)
    print(merge_tables(results) + f"\nresults.json, report.md and flops_per_subset.png in {args.out}")


# --- datasets --------------------------------------------------------------------------------------
def datasets_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="also look here")
    p.add_argument("--json", action="store_true")


def datasets_command(args):
    rows = []
    for name, info in data.DATASETS.items():
        where = data.locate(name, args.data_dir) if name in ("digits", "fashion-mnist", "mnist") else None
        rows.append({"name": name, "found": where is not None, "where": str(where) if where else None,
                     "description": info.description})
    if args.json:
        return rows
    for r in rows:
        if r["found"]:
            status = r["where"]
        elif r["name"] in ("fashion-mnist", "mnist"):
            status = "not found: " + data.registry.missing_hint(r["name"])
        else:
            status = "read from --data-dir"
        print(f"{r['name']:<14} {r['description']:<48} {status}")
    return None


COMMANDS = {
    "train": (train_arguments, train_command, "train a zoo model on a dataset and evaluate it"),
    "flops": (flops_arguments, flops_command, "count FLOPs, MACs and parameters of an architecture"),
    "prune": (prune_arguments, prune_command, "prune a network and write it with its channel map"),
    "run": (run_arguments, run_command, "active learning with PruneFuse or a baseline (no arguments: the demo)"),
    "compare": (compare_arguments, compare_command, "several methods over several seeds, one table and plots"),
    "select": (select_arguments, select_command, "pick the next samples to label from a real unlabeled pool"),
    "merge": (merge_arguments, merge_command, "PAM: merge single-task networks into a multitask one, with baselines"),
    "datasets": (datasets_arguments, datasets_command, "list datasets and whether each is found locally"),
}
