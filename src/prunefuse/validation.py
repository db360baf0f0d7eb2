"""Checks for configuration values, with one wording for every config and command: the field, the
allowed range or choices, and the value that was given."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

from .errors import UserError

MAX_SEED = 2**32 - 1  # numpy's legacy seeding, used beside torch's, takes seeds below 2**32


def check_choice(name: str, value, options: Iterable) -> None:
    options = list(options)
    if value not in options:
        raise UserError(f"unknown {name} '{value}'; choose one of: {', '.join(map(str, options))}")


def check_number(name: str, value, low: float | None = None, high: float | None = None,
                 closed: str = "both", integer: bool = False) -> None:
    """``value`` is a finite number (an integer if ``integer``) in the interval from ``low`` to ``high``;
    ``closed`` is ``both``, ``left``, ``right`` or ``neither``."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, Integral) if integer else isinstance(value, Real)
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)):
        raise UserError(f"{name} must be {kind}{interval_text(low, high, closed)}, got {value!r}")
    lo_ok = low is None or (value >= low if closed in ("both", "left") else value > low)
    hi_ok = high is None or (value <= high if closed in ("both", "right") else value < high)
    if not (lo_ok and hi_ok):
        raise UserError(f"{name} {value} is out of range; use {kind}{interval_text(low, high, closed)}")


def interval_text(low: float | None, high: float | None, closed: str) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>=' if closed in ('both', 'left') else '>'} {low:g}"
    if low is None:
        return f" {'<=' if closed in ('both', 'right') else '<'} {high:g}"
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    return f" in {left}{low:g}, {high:g}{right}"


def check_seed(name: str, value) -> None:
    check_number(name, value, 0, MAX_SEED, integer=True)
