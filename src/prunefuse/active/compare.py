"""Several methods over several seeds, with one table and shared plots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import UserError
from ..report import write_comparison_report
from ..storage import read_json, write_json
from .config import METHODS, ActiveConfig
from .loop import run_active


def parse_method(text: str, base: ActiveConfig) -> ActiveConfig:
    """``prunefuse``, ``prunefuse@0.7``, ``prunefuse-nofusion``, ``prunefuse@0.5-nokd``, ``al``, ``svp``..."""
    name, *flags = text.strip().split("-")
    method, _, ratio = name.partition("@")
    if method not in METHODS:
        raise UserError(f"unknown method '{text}'; use {', '.join(METHODS)}, optionally prunefuse@RATIO and "
                        "-nofusion / -nokd")
    cfg = replace(base, method=method)
    if ratio:
        try:
            cfg = replace(cfg, prune_ratio=float(ratio))
        except ValueError:
            raise UserError(f"'{text}': the ratio after @ must be a number, e.g. prunefuse@0.7") from None
    for flag in flags:
        if flag not in ("nofusion", "nokd") or method != "prunefuse":
            raise UserError(f"'{text}': only prunefuse takes the suffixes -nofusion and -nokd")
        cfg = replace(cfg, fusion=cfg.fusion and flag != "nofusion", kd=cfg.kd and flag != "nokd")
    return cfg


def compare(methods: list[str], seeds: list[int], base: ActiveConfig, out: str | Path,
            quiet: bool = False) -> tuple[list[dict], str]:
    """Run every method on every seed under ``out/<method>/seed<k>``; finished runs are reused and
    interrupted ones resumed, so re-running the same command continues where it stopped."""
    out = Path(out)
    if not methods or not seeds:
        raise UserError("give at least one method and one seed")
    configs = [(m, parse_method(m, base)) for m in methods]
    results = []
    for label, cfg in configs:
        for seed in seeds:
            run_dir = out / label / f"seed{seed}"
            done = run_dir / "results.json"
            results.append(read_json(done) if done.is_file() else run_active(replace(cfg, seed=seed), run_dir, quiet))
    write_json(out / "results.json", {"methods": methods, "seeds": seeds, "runs": results})
    return results, write_comparison_report(out, results)
