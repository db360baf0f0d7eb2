"""The active-learning loop behind PruneFuse and its baselines, with per-phase time and FLOPs."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from .. import data, distributed, models
from ..data.batching import Normalizer
from ..errors import UserError
from ..flops import count
from ..io import checkpoint
from ..io.rundir import RunDirectory, derive_seed, stored_config
from ..io.storage import read_json, write_json
from ..pruning import ChannelMap, check_prunable, fuse, prune, save_pruned
from ..selection import select
from ..train import evaluate, fit, predict
from .config import ActiveConfig, resolve_budgets
from .state import RunState

# Selection cost is the first three, the same for every method; the rest each have their own line.
PHASES = ("selector_training", "pool_scoring", "selection", "final_selector_fit", "target_training", "evaluation")
SELECTION_PHASES = PHASES[:3]


@dataclass
class Pool:
    train: data.Dataset
    test: data.Dataset
    normalizer: Normalizer


def load_pool(config: ActiveConfig) -> Pool:
    train = data.load(config.dataset, "train", config.data_dir, config.download)
    test = data.load(config.dataset, "test", config.data_dir, config.download)
    if config.pool_size is not None:
        if not 0 < config.pool_size <= len(train):
            raise UserError(f"pool size {config.pool_size} is out of range; the training split holds {len(train)}")
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(derive_seed(config.seed, "pool")))
        train = train.subset(keep[:config.pool_size].sort().values)
    if config.test_size is not None:
        if config.test_size > len(test):
            raise UserError(f"test size {config.test_size} is out of range; the test split holds {len(test)}")
        test = test.subset(torch.arange(config.test_size))
    return Pool(train, test, Normalizer(*train.channel_stats()))


class ActiveRun:
    """One method on one seed. ``run()`` executes the steps not yet completed in ``out``."""

    def __init__(self, config: ActiveConfig, out: str | Path, quiet: bool = False,
                 selection_from: str | Path | None = None, overwrite: bool = False):
        """Everything is checked here, before ``run`` claims ``out`` and writes to it."""
        self.config, self.out, self.quiet, self.overwrite = config, Path(out), quiet, overwrite
        self.ckpt = self.out / "checkpoints"
        models.check_name(config.arch)
        self.pool = load_pool(config)
        self.shape = self.pool.train.input_shape
        self.num_classes = self.pool.train.num_classes
        self.initial, self.budgets, self.eval_at = resolve_budgets(config, len(self.pool.train))
        dense = models.create(config.arch, self.num_classes, self.shape[0], self.shape[1], config.width)
        if config.method == "prunefuse":
            check_prunable(dense, config.prune_ratio, config.round_to)
        self.selection_from = Path(selection_from) if selection_from else None
        self.state: RunState | None = None

    # --- models and their checkpoints ---------------------------------------------------------------
    def spec(self, arch: str | None = None) -> dict:
        return checkpoint.model_spec(arch or self.config.arch, self.num_classes, self.shape, self.config.width
                                     if arch in (None, self.config.arch) else 1.0)

    def new_model(self, arch: str | None = None) -> nn.Module:
        spec = self.spec(arch)
        return models.create(spec["arch"], self.num_classes, self.shape[0], self.shape[1], spec["width"])

    def save_model(self, name: str, model: nn.Module, cmap: ChannelMap | None = None, arch: str | None = None):
        if cmap is not None:
            save_pruned(self.ckpt / name, model, cmap, self.spec(arch))
        else:
            checkpoint.save(self.ckpt / name, model, self.spec(arch))

    def load_model(self, name: str) -> tuple[nn.Module, ChannelMap | None]:
        model, meta = checkpoint.load_model(self.ckpt / name)
        return model, ChannelMap.from_dict(meta["channel_map"]) if meta.get("channel_map") else None

    def evaluate(self, model: nn.Module, images: data.Dataset | None = None) -> dict:
        """Test accuracy of ``model``, with the seconds and FLOPs it took (the evaluation phase)."""
        test = images or self.pool.test
        tc = self.config.train_config(1, 0)
        start = time.perf_counter()
        accuracy = evaluate(model, test, self.pool.normalizer, tc)
        return {"accuracy": accuracy, "seconds": time.perf_counter() - start,
                "flops": count(model, self.shape)["flops"] * len(test)}

    # --- steps ----------------------------------------------------------------------------------------
    def step(self, name: str, fn) -> dict:
        """Run ``fn`` unless a previous (possibly killed) invocation already completed it. The record's
        ``seconds`` is the step's wall-clock without the evaluation it reports as ``eval_seconds``."""
        record = self.state.done(name)
        if record is None:
            start = time.perf_counter()
            record = fn() or {}
            elapsed = time.perf_counter() - start - record.get("eval_seconds", 0.0)
            record["seconds"] = round(elapsed, 4)
            if "eval_seconds" in record:
                record["eval_seconds"] = round(record["eval_seconds"], 4)
            self.state.complete(name, record)
        return record

    def setup(self) -> dict:
        cfg = self.config
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        dense = self.new_model()
        self.save_model("init", dense)
        record = {"target_flops": count(dense, self.shape)["flops"]}
        if cfg.method == "prunefuse":
            example = torch.zeros(1, *self.shape)
            selector, cmap = prune(dense, cfg.prune_ratio, example, cfg.importance, cfg.prune_steps, arch=cfg.arch,
                                   round_to=cfg.round_to)
            self.save_model("selector_init", selector, cmap)
        elif cfg.method == "svp":
            torch.manual_seed(derive_seed(cfg.seed, "svp_init"))
            selector = self.new_model(cfg.proxy_arch)
            self.save_model("selector_init", selector, arch=cfg.proxy_arch)
        else:
            selector = dense
            if cfg.method == "al":
                self.save_model("selector_init", selector)
        record["selector_flops"] = count(selector, self.shape)["flops"] if cfg.method != "random" else 0
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "initial"))
        first = torch.randperm(len(self.pool.train), generator=g)[: self.initial].tolist()
        self.state.add_labeled(first, 0, [0.0] * len(first))
        return record

    def labeled_indices(self, upto_round: int | None = None) -> torch.Tensor:
        rows = [r["index"] for r in self.state.labeled if upto_round is None or r["round"] <= upto_round]
        return torch.tensor(sorted(rows), dtype=torch.long)

    def selector_epochs(self) -> int:
        cfg = self.config
        return cfg.svp_epochs if cfg.method == "svp" and cfg.svp_epochs else cfg.selector_epochs

    @staticmethod
    def selector_name(version: int, template: str) -> str:
        """The selector trained on the labeled set of round ``version`` from ``template``."""
        return f"selector_v{version}" + ("" if template == "selector_init" else f"_from_{template}")

    def fitted_selector(self, version: int, template: str) -> dict:
        """Train it once: fusion at a budget and the next round's selection share the same model."""
        return self.step(f"fit_{self.selector_name(version, template)}",
                         partial(self.fit_selector, version, template))

    def fit_selector(self, version: int, template: str) -> dict:
        cfg = self.config
        source = self.selector_name(version - 1, template) if cfg.warm_start and version > 0 else template
        model, cmap = self.load_model(source)
        labeled = self.pool.train.subset(self.labeled_indices(version))
        seed = derive_seed(cfg.seed, f"selector{version}")
        tc = cfg.train_config(self.selector_epochs(), seed, cfg.selector_steps)
        torch.manual_seed(seed)
        result = fit(model, labeled, tc, normalizer=self.pool.normalizer, quiet=self.quiet,
                     desc=f"selector v{version}")
        self.save_model(self.selector_name(version, template), model.cpu(), cmap, self.selector_arch())
        test = self.evaluate(model)
        return {"phase": "selector_training", "flops": 3 * self.selector_flops(model) * result.samples,
                "samples": result.samples, "epochs": result.epochs, "steps": result.steps,
                "test_accuracy": test["accuracy"], "eval_seconds": test["seconds"], "eval_flops": test["flops"]}

    def selector_arch(self) -> str:
        return self.config.proxy_arch if self.config.method == "svp" else self.config.arch

    def selector_flops(self, model: nn.Module) -> int:
        return count(model, self.shape)["flops"]

    def select_round(self, round_: int, k: int, template: str) -> dict:
        cfg = self.config
        labeled = self.labeled_indices()
        mask = torch.zeros(len(self.pool.train), dtype=torch.bool)
        mask[labeled] = True
        unlabeled = torch.nonzero(~mask).flatten()
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, f"select{round_}"))
        if cfg.method == "random" or cfg.selection == "random":
            start = time.perf_counter()
            chosen = select("random", k, unlabeled, generator=g)
            timing = {"pool_scoring": 0.0, "selection": time.perf_counter() - start}
            scoring_flops = 0
        else:
            model, _ = self.load_model(self.selector_name(round_ - 1, template))
            tc = cfg.train_config(1, 0)
            needs_features = cfg.selection in ("kcenter", "badge")
            start = time.perf_counter()
            out = predict(model, self.pool.train.images[unlabeled], self.pool.normalizer, tc.eval_batch_size,
                          tc.channels_last, tc.amp, with_features=needs_features, device=tc.device)
            logits, feats = out if needs_features else (out, None)
            labeled_feats = None
            if cfg.selection == "kcenter":
                labeled_feats = predict(model, self.pool.train.images[labeled], self.pool.normalizer,
                                        tc.eval_batch_size, tc.channels_last, tc.amp, with_features=True)[1]
            scored = time.perf_counter()
            chosen = distributed.on_main(lambda: select(cfg.selection, k, unlabeled, logits, feats, labeled_feats, g))
            timing = {"pool_scoring": scored - start, "selection": time.perf_counter() - scored}
            scored_count = len(unlabeled) + (len(labeled) if labeled_feats is not None else 0)
            scoring_flops = self.selector_flops(model) * scored_count
        self.state.add_labeled(chosen.indices.tolist(), round_, chosen.scores.tolist())
        return {"phase": "selection", "pool_scoring_seconds": round(timing["pool_scoring"], 4),
                "selection_seconds": round(timing["selection"], 4), "pool_scoring_flops": scoring_flops,
                "selection_flops": chosen.flops, "labeled": len(labeled) + k}

    def sync_selector(self, round_: int, template: str) -> dict:
        """T_sync: fuse the trained selector into the dense network, train it, prune it again."""
        cfg = self.config
        selector, cmap = self.load_model(self.selector_name(round_, template))
        dense, _ = self.load_model("init")
        torch.manual_seed(derive_seed(cfg.seed, f"sync{round_}"))
        fused = fuse(selector, dense, cmap, cfg.fill, cfg.fusion_scope)
        labeled = self.pool.train.subset(self.labeled_indices(round_))
        tc = cfg.train_config(cfg.selector_epochs, derive_seed(cfg.seed, f"sync{round_}"), cfg.selector_steps)
        result = fit(fused, labeled, tc, normalizer=self.pool.normalizer, quiet=self.quiet, desc=f"sync {round_}")
        fused = fused.cpu()
        new_selector, new_map = prune(fused, cfg.prune_ratio, torch.zeros(1, *self.shape), cfg.importance,
                                      cfg.prune_steps, arch=cfg.arch, round_to=cfg.round_to)
        self.save_model(f"selector_sync{round_}", new_selector, new_map)
        return {"phase": "selector_training", "flops": 3 * count(fused, self.shape)["flops"] * result.samples}

    def uses_selector_in_target(self) -> bool:
        return self.config.method == "prunefuse" and (self.config.fusion or self.config.kd)

    def train_target(self, round_: int, budget: int, template: str) -> dict:
        cfg = self.config
        labeled = self.pool.train.subset(self.labeled_indices(round_))
        dense, _ = self.load_model("init")
        fused = cfg.method == "prunefuse" and cfg.fusion
        selector, cmap = self.load_model(self.selector_name(round_, template)) if self.uses_selector_in_target() \
            else (None, None)
        if fused:
            torch.manual_seed(derive_seed(cfg.seed, f"fuse{round_}"))
            model = fuse(selector, dense, cmap, cfg.fill, cfg.fusion_scope)  # reads the selector, never writes it
        else:
            model = dense
        teacher = selector if cfg.method == "prunefuse" and cfg.kd else None
        seed = derive_seed(cfg.seed, f"target{round_}")
        tc = cfg.train_config(cfg.target_epochs, seed, cfg.target_steps)
        torch.manual_seed(seed)
        curve = cfg.curve_every > 0 and budget == self.eval_at[-1]  # the curve is kept for the final budget only
        curve_test = self.pool.test if cfg.curve_size is None else self.pool.test.subset(
            torch.arange(min(cfg.curve_size, len(self.pool.test))))
        result = fit(model, labeled, tc, curve_test if curve else None, self.pool.normalizer, teacher,
                     metrics_path=self.out / "metrics.jsonl", quiet=self.quiet, desc=f"target b{budget}",
                     eval_every=max(cfg.curve_every, 1))
        model = model.cpu()
        self.save_model(f"target_b{budget}", model)
        final = {"accuracy": result.test_accuracy, "seconds": 0.0, "flops": 0}
        if not curve or cfg.curve_size is not None:
            final = self.evaluate(model)
        forward = count(model, self.shape)["flops"]
        flops = 3 * forward * result.samples + (count(teacher, self.shape)["flops"] * result.samples
                                               if teacher is not None else 0)
        elapsed = 0.0
        points = []
        for h in result.history:
            elapsed += h["seconds"]
            if "test_accuracy" in h and curve:
                points.append({"epoch": h["epoch"], "accuracy": h["test_accuracy"], "train_seconds": round(elapsed, 3)})
        return {"phase": "target_training", "flops": flops, "accuracy": final["accuracy"], "fused": fused,
                "kd": teacher is not None, "epochs": result.epochs, "steps": result.steps, "curve": points,
                "eval_seconds": result.eval_seconds + final["seconds"],
                "eval_flops": forward * len(curve_test) * len(points) + final["flops"]}

    # --- reusing another run's selection -------------------------------------------------------------
    def adopt_selection(self, source: Path) -> None:
        """Start from the selection of ``source``, a run whose settings differ from this one's only in
        the target phase, so an ablation of fusion or KD trains its targets on the very same labels."""
        if self.state.data["steps"]:
            return
        theirs = saved_config(source).selection_settings()
        ours = self.config.selection_settings()
        if theirs != ours:
            differing = sorted(k for k in set(ours) | set(theirs) if theirs.get(k) != ours.get(k))
            raise UserError(f"{source}: its selection settings differ from this run's ({', '.join(differing)}); "
                            "reuse the selection only of a run that differs in target settings alone")
        other = RunState(source, len(self.pool.train))
        for name in list((source / "checkpoints").glob("*")):
            if not name.name.startswith("target_"):
                shutil.copy2(name, self.ckpt / name.name)
        self.state.data["labeled"] = list(other.labeled)
        for name, record in other.data["steps"].items():
            if not name.endswith(".target"):
                self.state.data["steps"][name] = record
        self.state.save()

    # --- the whole run ---------------------------------------------------------------------------------
    def run(self) -> dict:
        """Claim ``out`` (same config, or new), then execute every step not yet completed there."""
        extra = {"pool": len(self.pool.train), "initial_count": self.initial, "budget_counts": self.budgets,
                 "eval_at_counts": self.eval_at}
        with RunDirectory.claim(self.out, "run", self.config.to_dict(), overwrite=self.overwrite, extra=extra,
                                upgrade=lambda d: ActiveConfig.from_dict(d).to_dict()):
            self.ckpt.mkdir(parents=True, exist_ok=True)
            self.state = RunState(self.out, len(self.pool.train))
            return self.steps()

    def steps(self) -> dict:
        cfg = self.config
        if self.selection_from is not None:
            self.adopt_selection(self.selection_from)
        setup = self.step("setup", self.setup)
        template = "selector_init"
        previous = self.initial
        rounds = []
        for r, budget in enumerate(self.budgets, start=1):
            fits = [] if cfg.method == "random" else [self.fitted_selector(r - 1, template)]
            sel = self.step(f"r{r}.select", partial(self.select_round, r, budget - previous, template))
            if cfg.method == "prunefuse" and cfg.t_sync and r % cfg.t_sync == 0 and r < len(self.budgets):
                fits.append(self.fitted_selector(r, template))
                fits.append(self.step(f"r{r}.sync", partial(self.sync_selector, r, template)))
                template = f"selector_sync{r}"
            entry = {"round": r, "labeled": budget,
                     "selector_training_seconds": sum(f["seconds"] for f in fits),
                     "selector_training_flops": sum(f["flops"] for f in fits),
                     "pool_scoring_seconds": sel["pool_scoring_seconds"],
                     "pool_scoring_flops": sel["pool_scoring_flops"],
                     "selection_step_seconds": sel["selection_seconds"], "selection_step_flops": sel["selection_flops"],
                     "final_selector_fit_seconds": 0.0, "final_selector_fit_flops": 0,
                     "evaluation_seconds": sum(f.get("eval_seconds", 0.0) for f in fits),
                     "evaluation_flops": sum(f.get("eval_flops", 0) for f in fits)}
            if fits and "test_accuracy" in fits[0]:
                entry["selector_accuracy"] = fits[0]["test_accuracy"]  # the selector that chose this round
            entry["selection_seconds"] = round(entry["selector_training_seconds"] + sel["pool_scoring_seconds"]
                                               + sel["selection_seconds"], 4)
            entry["selection_flops"] = (entry["selector_training_flops"] + sel["pool_scoring_flops"]
                                        + sel["selection_flops"])
            if budget in self.eval_at:
                if self.uses_selector_in_target():
                    fitted = self.fitted_selector(r, template)
                    entry["teacher_accuracy"] = fitted["test_accuracy"]
                    if r == len(self.budgets):  # otherwise the next round's selection pays for it
                        entry["final_selector_fit_seconds"] = fitted["seconds"]
                        entry["final_selector_fit_flops"] = fitted["flops"]
                        entry["evaluation_seconds"] += fitted["eval_seconds"]
                        entry["evaluation_flops"] += fitted["eval_flops"]
                target = self.step(f"r{r}.target", partial(self.train_target, r, budget, template))
                entry.update({"accuracy": target["accuracy"], "target_seconds": target["seconds"],
                              "target_flops": target["flops"], "target_epochs": target["epochs"],
                              "target_steps": target["steps"], "target_curve": target["curve"]})
                entry["evaluation_seconds"] += target["eval_seconds"]
                entry["evaluation_flops"] += target["eval_flops"]
            entry["evaluation_seconds"] = round(entry["evaluation_seconds"], 4)
            rounds.append(entry)
            previous = budget
        results = self.results(setup, rounds)
        write_json(self.out / "results.json", results)
        from .report import write_run_report

        write_run_report(self.out, results)
        return results

    def results(self, setup: dict, rounds: list[dict]) -> dict:
        cfg = self.config
        evaluated = [r for r in rounds if "accuracy" in r]

        def total(key: str) -> float:
            return sum(r.get(key, 0) for r in rounds)

        phases = {
            "selector_training": {"seconds": total("selector_training_seconds"),
                                  "flops": total("selector_training_flops")},
            "pool_scoring": {"seconds": total("pool_scoring_seconds"), "flops": total("pool_scoring_flops")},
            "selection": {"seconds": total("selection_step_seconds"), "flops": total("selection_step_flops")},
            "final_selector_fit": {"seconds": total("final_selector_fit_seconds"),
                                   "flops": total("final_selector_fit_flops")},
            "target_training": {"seconds": total("target_seconds"), "flops": total("target_flops")},
            "evaluation": {"seconds": total("evaluation_seconds"), "flops": total("evaluation_flops")},
        }
        phases = {k: {"seconds": round(v["seconds"], 4), "flops": int(v["flops"])} for k, v in phases.items()}
        return {"method": cfg.method, "label": method_label(cfg), "settings": method_settings(cfg), "seed": cfg.seed,
                "dataset": cfg.dataset, "arch": cfg.arch, "pool": len(self.pool.train), "test": len(self.pool.test),
                "selector_flops_per_sample": setup["selector_flops"], "target_flops_per_sample": setup["target_flops"],
                "selection_reused_from": str(self.selection_from) if self.selection_from else None,
                "rounds": rounds, "phases": phases,
                "selection_seconds": round(sum(phases[p]["seconds"] for p in SELECTION_PHASES), 4),
                "selection_flops": sum(phases[p]["flops"] for p in SELECTION_PHASES),
                "final_selector_fit_seconds": phases["final_selector_fit"]["seconds"],
                "target_seconds": phases["target_training"]["seconds"],
                "evaluation_seconds": phases["evaluation"]["seconds"],
                "total_seconds": round(sum(p["seconds"] for p in phases.values()), 4),
                "total_flops": sum(p["flops"] for p in phases.values()),
                "final_accuracy": evaluated[-1]["accuracy"] if evaluated else None}


def method_label(cfg: ActiveConfig) -> str:
    """The method as ``compare`` names it: ``prunefuse@RATIO`` plus a suffix for each setting that
    differs from the defaults (``-nofusion``, ``-kd`` / ``-nokd``, a fill, ``-conv``)."""
    if cfg.method != "prunefuse":
        return cfg.method
    default = ActiveConfig()
    label = f"prunefuse@{cfg.prune_ratio:g}"
    if not cfg.fusion:
        return label + ("-nofusion-kd" if cfg.kd else "-nofusion")
    if cfg.kd != default.kd:
        label += "-kd" if cfg.kd else "-nokd"
    if cfg.fill != default.fill:
        label += f"-{cfg.fill}"
    if cfg.fusion_scope != default.fusion_scope:
        label += f"-{cfg.fusion_scope}"
    return label


def method_settings(cfg: ActiveConfig) -> str:
    """The exact settings behind a label, for the tables."""
    if cfg.method == "random":
        return "random labels"
    selector = {"al": f"dense {cfg.arch}", "svp": f"proxy {cfg.proxy_arch}"}.get(
        cfg.method, f"{cfg.arch} pruned p={cfg.prune_ratio:g}" + (f" round_to={cfg.round_to}" if cfg.round_to else ""))
    parts = [f"selector {selector}"]
    if cfg.method == "prunefuse":
        parts.append(f"fusion {cfg.fill}/{cfg.fusion_scope}" if cfg.fusion else "no fusion")
        decay = ", decayed" if cfg.train["kd_schedule"] == "decay" else ""
        parts.append(f"KD α={cfg.train['kd_alpha']:g} T={cfg.train['kd_temperature']:g}{decay}" if cfg.kd else "no KD")
    return ", ".join(parts)


def run_active(config: ActiveConfig, out: str | Path, quiet: bool = False,
               selection_from: str | Path | None = None, overwrite: bool = False) -> dict:
    """Run (or continue) one active-learning run in ``out``.

    ``out`` must be new, empty, or hold a run of this very config, whose completed steps are reused;
    ``overwrite`` clears a different run there instead of refusing. ``selection_from`` names a run whose
    settings differ only in the target phase: its selection is reused instead of recomputed."""
    return ActiveRun(config, out, quiet, selection_from, overwrite).run()


def saved_config(out: str | Path) -> ActiveConfig:
    """The config a run directory was started with."""
    path = Path(out) / "config.json"
    if not path.is_file():
        raise UserError(f"{out}: no config.json, so there is no run to resume here; check the directory")
    try:
        saved = read_json(path)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: damaged ({e}); the run cannot be resumed, start it again in a new directory") \
            from None
    stored = stored_config(saved) if isinstance(saved, dict) else None
    if not isinstance(saved, dict) or saved.get("command") != "run" or stored is None:
        raise UserError(f"{out}: config.json is not from 'prunefuse run'; resume only active-learning runs")
    try:
        return ActiveConfig.from_dict(stored)
    except UserError as e:  # an edited file: its complaint is about the file, not about the command line
        raise UserError(f"{path}: damaged ({e}); the run cannot be resumed, start it again in a new directory") \
            from None


def resume(out: str | Path, quiet: bool = False) -> dict:
    """Continue the run in ``out`` from its last completed step, with the config it started with."""
    return run_active(saved_config(out), out, quiet)
