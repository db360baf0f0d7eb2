"""The real-pool workflow: ``select`` the next samples to label from your own unlabeled images,
``label`` them in a browser, ``fit`` the final network and ``predict`` with it."""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..active.pool import (
    FitConfig,
    PoolConfig,
    default_workspace,
    fit_from_pool,
    predict_images,
    select_from_pool,
    workspace_config,
)
from ..errors import UserError
from .args import COUNT, FRACTION, NON_NEGATIVE_INT, POSITIVE, SEED, names, number


def add_pool_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, help="image folder or .npz (x, optional ids and classes)")
    p.add_argument("--labels", required=True, help="CSV with columns id,label for the samples labeled so far")
    p.add_argument("--classes", type=names, help="comma-separated class names, in the order of the keys on the "
                   "labeling page (default: those the workspace was made with, else the pool's, else those in the "
                   "labels file)")
    p.add_argument("--workspace", help="where the selector and the untrained network are kept (default: "
                   "prunefuse-work beside the labels file)")


SELECTOR_FIELDS = [f.name for f in fields(PoolConfig) if f.name != "selection"]  # select's --selection is not kept


def add_selector_arguments(p: argparse.ArgumentParser) -> None:
    d = PoolConfig()
    g = p.add_argument_group("selector", "each defaults to the setting the workspace was made with, and for a new "
                             "workspace to the value shown")
    g.add_argument("--arch", help=f"default {d.arch}")
    g.add_argument("--prune-ratio", type=FRACTION, help=f"default {d.prune_ratio}")
    g.add_argument("--epochs", type=COUNT, help=f"selector training epochs (default {d.epochs})")
    g.add_argument("--steps", type=NON_NEGATIVE_INT, help=f"at least this many optimizer steps (default {d.steps})")
    g.add_argument("--batch-size", type=COUNT, help=f"default {d.batch_size}")
    g.add_argument("--lr", type=POSITIVE, help=f"default {d.lr}")
    g.add_argument("--image-size", type=number(8, integer=True), help="resize folder images to this size")
    g.add_argument("--seed", type=SEED, help=f"default {d.seed}")


def pool_config(args, **extra) -> PoolConfig:
    given = {name: getattr(args, name) for name in SELECTOR_FIELDS if getattr(args, name) is not None}
    return workspace_config(args.workspace or default_workspace(args.labels), args.overwrite, **given, **extra)


def select_arguments(p: argparse.ArgumentParser) -> None:
    add_pool_arguments(p)
    p.add_argument("--budget", type=COUNT, required=True, help="how many samples to pick")
    p.add_argument("--out", required=True, help="CSV to write: id,score")
    p.add_argument("--selection", default="least_confidence",
                   help="least_confidence (default), margin, entropy, kcenter, badge, random")
    add_selector_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="start the workspace afresh, with the selector flags "
                   "given and the defaults for the rest")
    p.add_argument("--quiet", action="store_true")


def select_command(args):
    rows = select_from_pool(args.pool, args.labels, args.budget, args.out, pool_config(args, selection=args.selection),
                            args.classes, args.workspace, args.quiet, args.overwrite)
    print(f"wrote {len(rows)} samples to label to {args.out}")


def label_arguments(p: argparse.ArgumentParser) -> None:
    add_pool_arguments(p)
    p.add_argument("--queue", required=True, help="the CSV select wrote (id,score); \"Pick the next N\" on the page "
                   "refills it")
    p.add_argument("--selection", help="strategy for \"Pick the next N\" (default least_confidence)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; the default answers this machine only")
    p.add_argument("--port", type=number(0, 65535, integer=True), default=8765, help="0 picks a free port")


def label_command(args):
    from ..active.label_server import serve
    from ..active.labeling import LabelingSession

    session = LabelingSession(args.pool, args.labels, args.queue, args.classes, args.workspace, args.selection)
    serve(session, args.host, args.port)


def fit_arguments(p: argparse.ArgumentParser) -> None:
    d = FitConfig()
    add_pool_arguments(p)
    p.add_argument("--out", required=True, help="directory to write: model.safetensors, model.json, results.json")
    p.add_argument("--val-fraction", type=number(0, 1, closed="left"), default=d.val_fraction,
                   help="share of the labels held out to measure the final network (0: train on all)")
    p.add_argument("--epochs", type=COUNT, default=d.epochs, help="epochs of the fused network's training (the "
                   "final selector fit follows the workspace's settings)")
    p.add_argument("--steps", type=NON_NEGATIVE_INT, default=d.steps, help="at least this many optimizer steps")
    p.add_argument("--kd", action=argparse.BooleanOptionalAction,
                   help=f"distil from the trained selector (default {'on' if d.kd else 'off'}, as in ActiveConfig)")
    p.add_argument("--kd-schedule", help=f"constant or decay: the distillation weight falls to 0 (default "
                   f"{d.kd_schedule})")
    p.add_argument("--fill", help=f"positions fusion does not cover: reinit, init, zero (default {d.fill})")
    p.add_argument("--fusion-scope", help=f"all or conv (default {d.fusion_scope})")
    p.add_argument("--overwrite", action="store_true", help="start --out afresh (other labels or settings)")
    p.add_argument("--quiet", action="store_true")


def fit_command(args):
    given = {k: getattr(args, k) for k in ("kd", "kd_schedule", "fill", "fusion_scope") if getattr(args, k) is not None}
    settings = FitConfig(val_fraction=args.val_fraction, epochs=args.epochs, steps=args.steps, **given)
    if args.kd_schedule is not None and not settings.kd:
        raise UserError("--kd-schedule has no effect on fit: distillation is off (--kd turns it on); drop it")
    results = fit_from_pool(args.pool, args.labels, args.out, settings, args.workspace, args.classes, args.quiet,
                            args.overwrite)
    accuracy = results["validation_accuracy"]
    measured = (f"validation accuracy {accuracy:.4f} on {results['validation']} held-out labels"
                if accuracy is not None else "no labels held out")
    print(f"wrote {args.out}: trained on {results['train']} labels, {measured}")


def predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the --out directory of prunefuse fit")
    p.add_argument("--images", required=True, help="image folder or .npz (x, optional ids), read as select reads "
                   "--pool")
    p.add_argument("--out", required=True, help="CSV to write: id,label,confidence")


def predict_command(args):
    rows = predict_images(args.model, args.images, args.out)
    print(f"wrote {len(rows)} predictions to {args.out}")


COMMANDS = {
    "select": (select_arguments, select_command, "pick the next samples to label from a real unlabeled pool"),
    "label": (label_arguments, label_command, "label the queued samples in a browser page served on this machine"),
    "fit": (fit_arguments, fit_command, "fuse the selector into the dense network and train it on the labels"),
    "predict": (predict_arguments, predict_command, "predict a class for every image with the network fit wrote"),
}
