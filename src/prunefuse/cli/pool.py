"""The real-pool workflow: ``select`` the next samples to label from your own unlabeled images."""

from __future__ import annotations

import argparse

from ..active.pool import PoolConfig, select_from_pool
from .args import COUNT, FRACTION, NON_NEGATIVE_INT, POSITIVE, SEED, names, number


def add_pool_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, help="image folder or .npz (x, optional ids and classes)")
    p.add_argument("--labels", required=True, help="CSV with columns id,label for the samples labeled so far")
    p.add_argument("--classes", type=names, help="comma-separated class names (default: those in the labels file)")
    p.add_argument("--workspace", help="where the selector and the untrained network are kept (default: "
                   "prunefuse-work beside the labels file)")


def add_selector_arguments(p: argparse.ArgumentParser) -> None:
    d = PoolConfig()
    g = p.add_argument_group("selector")
    g.add_argument("--arch", default=d.arch)
    g.add_argument("--prune-ratio", type=FRACTION, default=d.prune_ratio)
    g.add_argument("--epochs", type=COUNT, default=d.epochs, help="selector training epochs")
    g.add_argument("--steps", type=NON_NEGATIVE_INT, default=d.steps, help="at least this many optimizer steps")
    g.add_argument("--batch-size", type=COUNT, default=d.batch_size)
    g.add_argument("--lr", type=POSITIVE, default=d.lr)
    g.add_argument("--image-size", type=number(8, integer=True), help="resize folder images to this size")
    g.add_argument("--seed", type=SEED, default=0)


def pool_config(args, **extra) -> PoolConfig:
    return PoolConfig(arch=args.arch, prune_ratio=args.prune_ratio, epochs=args.epochs, steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, image_size=args.image_size, seed=args.seed, **extra)


def select_arguments(p: argparse.ArgumentParser) -> None:
    add_pool_arguments(p)
    p.add_argument("--budget", type=COUNT, required=True, help="how many samples to pick")
    p.add_argument("--out", required=True, help="CSV to write: id,score")
    p.add_argument("--selection", default="least_confidence",
                   help="least_confidence (default), margin, entropy, kcenter, badge, random")
    add_selector_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="start the workspace afresh (other selector settings)")
    p.add_argument("--quiet", action="store_true")


def select_command(args):
    rows = select_from_pool(args.pool, args.labels, args.budget, args.out, pool_config(args, selection=args.selection),
                            args.classes, args.workspace, args.quiet, args.overwrite)
    print(f"wrote {len(rows)} samples to label to {args.out}")


COMMANDS = {
    "select": (select_arguments, select_command, "pick the next samples to label from a real unlabeled pool"),
}
