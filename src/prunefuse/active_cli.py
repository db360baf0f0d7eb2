"""Arguments of ``run`` and ``compare``, and the preset that keeps the digits demo to a few minutes."""

from __future__ import annotations

import argparse

from .active import ActiveConfig
from .train import TrainConfig

# Small labeled sets need small batches to get enough SGD steps; digits is the embedded demo.
DIGITS_PRESET = {"budgets": [0.1, 0.2, 0.3], "selector_epochs": 20, "target_epochs": 30, "batch_size": 32}
TRAIN_FIELDS = ("batch_size", "lr", "momentum", "weight_decay", "schedule", "label_smoothing", "amp", "device",
                "kd_alpha", "kd_temperature")


def floats(text: str) -> list[float]:
    from .commands import parse_floats

    return parse_floats(text, "budget list")


def add_active_arguments(p: argparse.ArgumentParser) -> None:
    d = ActiveConfig()
    p.add_argument("--dataset", help="default digits (the embedded set)")
    p.add_argument("--data-dir")
    p.add_argument("--download", action="store_true")
    p.add_argument("--pool-size", type=int, help="draw the pool from the training split (default: all of it)")
    p.add_argument("--test-size", type=int, help="evaluate on the first N test samples (default: all)")
    p.add_argument("--arch", help=f"target architecture (default {d.arch})")
    p.add_argument("--width", type=float)
    p.add_argument("--prune-ratio", type=float, help=f"fraction of channels removed (default {d.prune_ratio})")
    p.add_argument("--importance", help="l2 (default), l1, random, bn_scale")
    p.add_argument("--prune-steps", type=int, help=f"iterative pruning steps (default {d.prune_steps})")
    p.add_argument("--round-to", type=int, help="keep a multiple of this many channels in every pruned layer")
    p.add_argument("--selection", help="least_confidence (default), margin, entropy, kcenter, badge, random")
    p.add_argument("--initial", type=float, help="initial random set: fraction (<1) or count (default 0.02)")
    p.add_argument("--budgets", type=floats, help="cumulative budgets, fractions or counts (default "
                   "0.1,0.2,0.3,0.4,0.5; 0.1,0.2,0.3 on digits)")
    p.add_argument("--eval-at", type=floats, help="budgets at which the target is trained (default: the last)")
    p.add_argument("--selector-epochs", type=int, help=f"default {d.selector_epochs}")
    p.add_argument("--selector-steps", type=int, help=f"at least this many optimizer steps per selector fit "
                   f"(default {d.selector_steps}; 0: epochs alone)")
    p.add_argument("--target-epochs", type=int, help=f"default {d.target_epochs}")
    p.add_argument("--target-steps", type=int, help=f"at least this many optimizer steps per target fit "
                   f"(default {d.target_steps})")
    p.add_argument("--svp-arch", help="SVP proxy architecture (default: a shallower one of the same family)")
    p.add_argument("--svp-epochs", type=int)
    p.add_argument("--t-sync", type=int, help="refresh the selector every T rounds (default 0: fixed)")
    p.add_argument("--no-kd", action="store_true", help="train the fused target without distillation")
    p.add_argument("--no-fusion", action="store_true", help="train the target from scratch on the selection")
    p.add_argument("--fill", help="positions fusion does not cover: reinit (default), init, zero")
    p.add_argument("--fusion-scope", help="all (default) or conv (the authors' variant)")
    p.add_argument("--kd-alpha", type=float, help="weight of the cross-entropy in the KD loss, in [0, 1]")
    p.add_argument("--kd-temperature", type=float, help="KD softmax temperature, > 0")
    p.add_argument("--warm-start", action="store_true", help="continue the selector from the last round")
    p.add_argument("--curve-every", type=int, help="evaluate the final target every N epochs (default 0: off)")
    p.add_argument("--curve-size", type=int, help="test images the per-epoch curve uses (default: all)")
    t = TrainConfig()
    p.add_argument("--batch-size", type=int, help=f"default {t.batch_size} (32 on digits)")
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", help="onecycle (default), piecewise (reference), cosine, constant")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--amp")
    p.add_argument("--device")
    p.add_argument("--quiet", action="store_true")


def active_config(args, method: str | None = None, seed: int = 0) -> ActiveConfig:
    """Defaults, then the digits preset where the dataset is digits, then what the user gave."""
    values = ActiveConfig().to_dict()
    train = values["train"]
    if (args.dataset or "digits") == "digits":
        for k, v in DIGITS_PRESET.items():
            (train if k in TRAIN_FIELDS else values)[k] = v
    given = {k: v for k, v in vars(args).items() if v is not None and k in values}
    values.update(given)
    train.update({k: getattr(args, k) for k in TRAIN_FIELDS if getattr(args, k, None) is not None})
    values.update(method=method or values["method"], seed=seed, train=train,
                  fusion=not args.no_fusion, kd=not args.no_kd, warm_start=args.warm_start,
                  download=args.download)
    return ActiveConfig.from_dict(values)
