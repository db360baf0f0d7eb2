"""What every command's arguments share: a parser that answers a mistake in one line with exit code 2,
argument types that check numbers at parse time, and the data and training option groups. A leaf:
it imports no other ``cli`` module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import UserError
from ..validation import MAX_SEED, check_number


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prunefuse CMD: error: ...``) and exit code 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message.splitlines()[0]}", file=sys.stderr)
        sys.exit(2)


def number(low: float | None = None, high: float | None = None, closed: str = "both",
           integer: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in the interval, checked when the command line is read."""
    def parse(text: str):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"'{text}' is not {kind}") from None
        try:
            check_number("the value", value, low, high, closed, integer)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e).replace("the value ", "", 1)) from None
        return value

    parse.__name__ = "integer" if integer else "number"
    return parse


def number_list(low: float | None = None, high: float | None = None, closed: str = "both",
                integer: bool = False) -> Callable[[str], list]:
    """Comma-separated numbers, each checked as ``number`` checks one."""
    one = number(low, high, closed, integer)

    def parse(text: str) -> list:
        values = [one(v.strip()) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"'{text}' holds no numbers; write e.g. 0.1,0.2")
        return values

    parse.__name__ = "list"
    return parse


def shape(text: str) -> tuple[int, int, int]:
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be C,H,W with positive integers, e.g. 3,32,32")
    return dims  # type: ignore[return-value]


def names(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"'{text}' names nothing; write a comma-separated list")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"'{text}' names {', '.join(repeated)} twice; list each once")
    return values


POSITIVE = number(0, closed="neither")
FRACTION = number(0, 1, closed="neither")
UNIT = number(0, 1)
NON_NEGATIVE = number(0)
COUNT = number(1, integer=True)
NON_NEGATIVE_INT = number(0, integer=True)
SEED = number(0, MAX_SEED, integer=True)
WIDTH = number(0, 16, closed="right")
SHUFFLE_TILES_HELP = ("draw each training image of a grid dataset (fashion-mnist-grid) with its items in a new random "
                      "order every time (its labels say which items are present, not where); off by default")


def add_data_arguments(p: argparse.ArgumentParser, default: str | None = "digits", subset: bool = True) -> None:
    from .. import data

    shown = default or "digits"
    p.add_argument("--dataset", default=default, help=f"one of: {', '.join(data.names())} (default {shown})")
    p.add_argument("--data-dir", help="folder (or .npz file) holding the dataset's files; only it is searched")
    p.add_argument("--download", action="store_true", help="fetch MNIST/Fashion-MNIST from the official host")
    if subset:
        p.add_argument("--subset", type=COUNT, help="use this many training samples, drawn at random")


def add_train_arguments(p: argparse.ArgumentParser, defaults: dict | None = None, shown: dict | None = None,
                        batch_note: str = "") -> None:
    """The training options of ``TrainConfig``; with ``defaults`` given, its values are shown and used,
    else every option defaults to None so that a config's own defaults apply, and the help shows
    ``shown``: that config's training defaults (``batch_note`` adds where a preset differs)."""
    from ..train import TrainConfig

    given = defaults is not None
    d = TrainConfig(**(defaults if given else shown or {}))

    def default(name):
        return getattr(d, name) if given else None

    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=COUNT, default=default("batch_size"),
                   help=f"default {d.batch_size}{batch_note}")
    g.add_argument("--lr", type=POSITIVE, default=default("lr"), help=f"peak learning rate (default {d.lr})")
    g.add_argument("--momentum", type=number(0, 1, closed="left"), default=default("momentum"),
                   help=f"default {d.momentum}")
    g.add_argument("--weight-decay", type=NON_NEGATIVE, default=default("weight_decay"),
                   help=f"default {d.weight_decay}")
    g.add_argument("--schedule", default=default("schedule"),
                   help=f"piecewise (the reference, scaled), onecycle, cosine, constant (default {d.schedule})")
    g.add_argument("--label-smoothing", type=number(0, 1, closed="left"), default=default("label_smoothing"))
    g.add_argument("--amp", default=default("amp"), help="auto (bf16/fp16 on CUDA, off on CPU), off, bf16, fp16")
    g.add_argument("--device", default=default("device"), help="auto (default), cpu, cuda, cuda:N")


TRAIN_OPTIONS = ("batch_size", "lr", "momentum", "weight_decay", "schedule", "label_smoothing", "amp", "device")


def given_train_options(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> dict:
    """The training options the user set on the command line, as TrainConfig fields."""
    return {k: getattr(args, k) for k in (*TRAIN_OPTIONS, *extra) if getattr(args, k, None) is not None}
