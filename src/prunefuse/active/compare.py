"""Several methods over several seeds, with one table and shared plots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import UserError
from ..io.rundir import RunDirectory
from ..io.storage import write_json
from ..pruning.fusion import FILLS, SCOPES
from ..validation import check_number, check_seed
from .config import METHODS, ActiveConfig
from .loop import ActiveRun, method_label, run_active
from .report import write_comparison_report

SUFFIXES = ("nofusion", "nokd", "kd", *FILLS, *SCOPES)


def parse_method(text: str, base: ActiveConfig) -> ActiveConfig:
    """``prunefuse``, ``prunefuse@0.7``, ``prunefuse@0.5-nokd``, ``al``, ``svp``... on top of ``base``.

    Suffixes of ``prunefuse``: ``-nofusion`` trains the target from scratch (and without KD unless
    ``-kd`` is added too), ``-kd`` / ``-nokd`` switch distillation, ``-reinit`` / ``-init`` / ``-zero``
    pick the fill and ``-conv`` / ``-all`` the fusion scope."""
    name, *flags = text.strip().split("-")
    method, _, ratio = name.partition("@")
    if method not in METHODS:
        raise UserError(f"unknown method '{text}'; use {', '.join(METHODS)}, optionally prunefuse@RATIO and "
                        f"the suffixes -{', -'.join(SUFFIXES)}")
    cfg = replace(base, method=method)
    if ratio:
        if method != "prunefuse":
            raise UserError(f"'{text}': only prunefuse takes a ratio after @")
        try:
            value = float(ratio)
        except ValueError:
            raise UserError(f"'{text}': the ratio after @ must be a number, e.g. prunefuse@0.7") from None
        check_number(f"the ratio of '{text}'", value, 0, 1, closed="neither")
        cfg = replace(cfg, prune_ratio=value)
    unknown = [f for f in flags if f not in SUFFIXES]
    if unknown or (flags and method != "prunefuse"):
        raise UserError(f"'{text}': only prunefuse takes suffixes, and they are -{', -'.join(SUFFIXES)}")
    if "nofusion" in flags:
        cfg = replace(cfg, fusion=False, kd="kd" in flags)
    elif "kd" in flags or "nokd" in flags:
        cfg = replace(cfg, kd="kd" in flags)
    for flag in flags:
        if flag in FILLS:
            cfg = replace(cfg, fill=flag)
        elif flag in SCOPES:
            cfg = replace(cfg, fusion_scope=flag)
    return cfg


def compare(methods: list[str], seeds: list[int], base: ActiveConfig, out: str | Path,
            quiet: bool = False, overwrite: bool = False) -> tuple[list[dict], str]:
    """Run every method on every seed under ``out/<method>/seed<k>``; finished runs are reused and
    interrupted ones resumed, so re-running the same command continues where it stopped. A method that
    differs from an earlier one only in its target phase (``-nokd``, ``-nofusion``, a fill) reuses that
    method's selection on each seed, so the two differ in nothing else."""
    out = Path(out)
    if not methods or not seeds:
        raise UserError("give at least one method and one seed")
    for what, values in (("method", methods), ("seed", seeds)):
        repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
        if repeated:
            raise UserError(f"{what} {', '.join(map(str, repeated))} is given twice; list each {what} once")
    for seed in seeds:
        check_seed("seed", seed)
    configs = [(m, parse_method(m, base)) for m in methods]
    for i, (label, cfg) in enumerate(configs):  # the report groups runs by their settings' label
        same = next((earlier for earlier, other in configs[:i] if other == cfg), None)
        if same:
            raise UserError(f"'{label}' runs the same settings as '{same}' ({method_label(cfg)}): the method is given "
                            "twice; list it once")
    for label, cfg in configs:  # bad data, budgets or architecture are refused before the folder is claimed
        ActiveRun(replace(cfg, seed=seeds[0]), out / label / f"seed{seeds[0]}", quiet)
    # The folder records the base config (methods and seeds may grow); each run locks its own folder,
    # so processes that run disjoint seeds into one --out can share it.
    RunDirectory.claim(out, "compare", {"base": replace(base, seed=0).to_dict()}, overwrite=overwrite, lock=False,
                       upgrade=lambda d: {"base": ActiveConfig.from_dict(d.get("base")).to_dict()})
    results = []
    for i, (label, cfg) in enumerate(configs):
        for seed in seeds:
            cfg_seed = replace(cfg, seed=seed)
            source = next((out / earlier / f"seed{seed}" for earlier, other in configs[:i]
                           if replace(other, seed=seed).selection_settings() == cfg_seed.selection_settings()
                           and (out / earlier / f"seed{seed}" / "state.json").is_file()), None)
            results.append(run_active(cfg_seed, out / label / f"seed{seed}", quiet, selection_from=source))
    write_json(out / "results.json", {"methods": methods, "seeds": seeds, "runs": results})
    return results, write_comparison_report(out, results)
