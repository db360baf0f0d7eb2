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


def number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def interval_text(low: float | None, high: float | None, closed: str) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>=' if closed in ('both', 'left') else '>'} {number_text(low)}"
    if low is None:
        return f" {'<=' if closed in ('both', 'right') else '<'} {number_text(high)}"
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    return f" in {left}{number_text(low)}, {number_text(high)}{right}"


def check_seed(name: str, value) -> None:
    check_number(name, value, 0, MAX_SEED, integer=True)


def matches(value, annotation: str) -> bool:
    """Whether ``value`` fits a field annotation written as a string (``int | None``, ``list[float]``);
    types this does not know (nested configs) pass, as they check themselves."""
    real = isinstance(value, Real) and not isinstance(value, bool)
    checks = {
        "None": value is None, "bool": isinstance(value, bool), "str": isinstance(value, str),
        "int": isinstance(value, Integral) and not isinstance(value, bool), "float": real,
        "dict": isinstance(value, dict),
        "list[float]": isinstance(value, list) and all(isinstance(v, Real) and not isinstance(v, bool) for v in value),
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "list[int]": isinstance(value, list) and all(isinstance(v, Integral) and not isinstance(v, bool)
                                                     for v in value),
    }
    options = [a.strip() for a in annotation.split("|")]
    if any(a not in checks for a in options):
        return True
    return any(checks[a] for a in options)


def check_field_types(config) -> None:
    """Each field of a config dataclass holds a value of its declared type: a config read back from
    JSON can hold anything."""
    from dataclasses import fields

    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(f.type, str) and not matches(value, f.type):
            raise UserError(f"{f.name} must be of type {f.type}, got {value!r}")


def flag(name: str) -> str:
    """The command-line option of a config field: ``step_fraction`` -> ``--step-fraction``."""
    return "--" + name.replace("_", "-")


def changed_flags(config, names: Iterable[str]) -> list[str]:
    """The options among ``names`` whose fields differ from their defaults: a config built by the API
    cannot tell a value given from one left alone, so a changed value is taken as given."""
    defaults = type(config).__dataclass_fields__
    return [flag(n) for n in names if getattr(config, n) != defaults[n].default]
