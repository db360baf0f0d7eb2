"""The active-learning loop behind PruneFuse and its baselines, with per-phase time and FLOPs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from .. import checkpoint, data, distributed, models
from ..data.batching import Normalizer
from ..errors import UserError
from ..flops import count
from ..fusion import fuse
from ..pruning import ChannelMap, prune, save_pruned
from ..rundir import write_config
from ..selection import select
from ..storage import read_json, write_json
from ..train import evaluate, fit, predict
from .config import ActiveConfig, resolve_budgets
from .state import RunState, derive_seed

PHASES = ("selector_training", "pool_scoring", "selection", "target_training")


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
        test = test.subset(torch.arange(min(config.test_size, len(test))))
    return Pool(train, test, Normalizer(*train.channel_stats()))


class ActiveRun:
    """One method on one seed. ``run()`` executes the steps not yet completed in ``out``."""

    def __init__(self, config: ActiveConfig, out: str | Path, quiet: bool = False):
        self.config, self.out, self.quiet = config, Path(out), quiet
        self.ckpt = self.out / "checkpoints"
        self.ckpt.mkdir(parents=True, exist_ok=True)
        self.state = RunState(self.out)
        self.pool = load_pool(config)
        self.shape = self.pool.train.input_shape
        self.num_classes = self.pool.train.num_classes
        self.initial, self.budgets, self.eval_at = resolve_budgets(config, len(self.pool.train))
        models.create(config.arch, self.num_classes, self.shape[0], self.shape[1], config.width)

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

    # --- steps ----------------------------------------------------------------------------------------
    def step(self, name: str, fn) -> dict:
        """Run ``fn`` unless a previous (possibly killed) invocation already completed it."""
        record = self.state.done(name)
        if record is None:
            start = time.perf_counter()
            record = fn() or {}
            record.setdefault("seconds", round(time.perf_counter() - start, 4))
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
            selector, cmap = prune(dense, cfg.prune_ratio, example, cfg.importance, cfg.prune_steps, arch=cfg.arch)
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
        tc = cfg.train_config(self.selector_epochs(), derive_seed(cfg.seed, f"selector{version}"))
        torch.manual_seed(derive_seed(cfg.seed, f"selector{version}"))
        result = fit(model, labeled, tc, normalizer=self.pool.normalizer, quiet=self.quiet,
                     desc=f"selector v{version}")
        self.save_model(self.selector_name(version, template), model.cpu(), cmap, self.selector_arch())
        return {"phase": "selector_training", "flops": 3 * self.selector_flops(model) * result.samples,
                "samples": result.samples}

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
                          tc.channels_last, tc.amp, with_features=needs_features)
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
        tc = cfg.train_config(cfg.selector_epochs, derive_seed(cfg.seed, f"sync{round_}"))
        result = fit(fused, labeled, tc, normalizer=self.pool.normalizer, quiet=self.quiet, desc=f"sync {round_}")
        fused = fused.cpu()
        new_selector, new_map = prune(fused, cfg.prune_ratio, torch.zeros(1, *self.shape), "l2", cfg.prune_steps,
                                      arch=cfg.arch)
        self.save_model(f"selector_sync{round_}", new_selector, new_map)
        return {"phase": "selector_training", "flops": 3 * count(fused, self.shape)["flops"] * result.samples}

    def train_target(self, round_: int, budget: int, template: str) -> dict:
        cfg = self.config
        labeled = self.pool.train.subset(self.labeled_indices(round_))
        dense, _ = self.load_model("init")
        fused = cfg.method == "prunefuse" and cfg.fusion
        selector, cmap = (self.load_model(self.selector_name(round_, template))
                          if cfg.method == "prunefuse" and (cfg.fusion or cfg.kd) else (None, None))
        if fused:
            torch.manual_seed(derive_seed(cfg.seed, f"fuse{round_}"))
            model = fuse(selector, dense, cmap, cfg.fill, cfg.fusion_scope)  # reads the selector, never writes it
        else:
            model = dense
        teacher = selector if cfg.method == "prunefuse" and cfg.kd else None
        tc = cfg.train_config(cfg.target_epochs, derive_seed(cfg.seed, f"target{round_}"))
        torch.manual_seed(derive_seed(cfg.seed, f"target{round_}"))
        curve = budget == self.eval_at[-1]  # the per-epoch test curve is kept for the final budget only
        result = fit(model, labeled, tc, self.pool.test if curve else None, self.pool.normalizer, teacher,
                     metrics_path=self.out / "metrics.jsonl", quiet=self.quiet, desc=f"target b{budget}")
        accuracy = result.test_accuracy if curve else evaluate(model, self.pool.test, self.pool.normalizer, tc)
        self.save_model(f"target_b{budget}", model.cpu())
        flops = 3 * count(model, self.shape)["flops"] * result.samples
        if teacher is not None:
            flops += count(teacher, self.shape)["flops"] * result.samples
        return {"phase": "target_training", "flops": flops, "accuracy": accuracy, "fused": fused,
                "curve": [h["test_accuracy"] for h in result.history] if curve else []}

    # --- the whole run ---------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.config
        write_config(self.out, {"command": "run", "active": cfg.to_dict(), "pool": len(self.pool.train),
                                "initial_count": self.initial, "budget_counts": self.budgets,
                                "eval_at_counts": self.eval_at})
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
                     "selection_step_seconds": sel["selection_seconds"], "selection_step_flops": sel["selection_flops"]}
            entry["selection_seconds"] = round(entry["selector_training_seconds"] + sel["seconds"], 4)
            entry["selection_flops"] = (entry["selector_training_flops"] + sel["pool_scoring_flops"]
                                        + sel["selection_flops"])
            if budget in self.eval_at:
                extra = []
                if cfg.method == "prunefuse" and (cfg.fusion or cfg.kd):
                    fitted = self.fitted_selector(r, template)
                    if r == len(self.budgets):  # otherwise the next round's selection pays for it
                        extra.append(fitted)
                target = self.step(f"r{r}.target", partial(self.train_target, r, budget, template))
                entry.update({"accuracy": target["accuracy"], "target_seconds": target["seconds"]
                              + sum(e["seconds"] for e in extra), "target_flops": target["flops"]
                              + sum(e["flops"] for e in extra), "target_curve": target["curve"]})
            rounds.append(entry)
            previous = budget
        results = self.results(setup, rounds)
        write_json(self.out / "results.json", results)
        from ..report import write_run_report

        write_run_report(self.out, results)
        return results

    def results(self, setup: dict, rounds: list[dict]) -> dict:
        cfg = self.config
        evaluated = [r for r in rounds if "accuracy" in r]
        phases = {
            "selector_training": {"seconds": sum(r["selector_training_seconds"] for r in rounds),
                                  "flops": sum(r["selector_training_flops"] for r in rounds)},
            "pool_scoring": {"seconds": sum(r["pool_scoring_seconds"] for r in rounds),
                             "flops": sum(r["pool_scoring_flops"] for r in rounds)},
            "selection": {"seconds": sum(r["selection_step_seconds"] for r in rounds),
                          "flops": sum(r["selection_step_flops"] for r in rounds)},
            "target_training": {"seconds": sum(r["target_seconds"] for r in evaluated),
                                "flops": sum(r["target_flops"] for r in evaluated)},
        }
        return {"method": cfg.method, "label": method_label(cfg), "seed": cfg.seed, "dataset": cfg.dataset,
                "arch": cfg.arch, "pool": len(self.pool.train), "test": len(self.pool.test),
                "selector_flops_per_sample": setup["selector_flops"], "target_flops_per_sample": setup["target_flops"],
                "rounds": rounds, "phases": phases,
                "selection_seconds": round(sum(r["selection_seconds"] for r in rounds), 4),
                "selection_flops": sum(r["selection_flops"] for r in rounds),
                "target_seconds": round(phases["target_training"]["seconds"], 4),
                "final_accuracy": evaluated[-1]["accuracy"] if evaluated else None}


def method_label(cfg: ActiveConfig) -> str:
    if cfg.method != "prunefuse":
        return cfg.method
    label = f"prunefuse@{cfg.prune_ratio:g}"
    if not cfg.fusion:
        label += "-nofusion"
    if not cfg.kd:
        label += "-nokd"
    return label


def run_active(config: ActiveConfig, out: str | Path, quiet: bool = False) -> dict:
    """Run (or continue) one active-learning run in ``out``."""
    return ActiveRun(config, out, quiet).run()


def resume(out: str | Path, quiet: bool = False) -> dict:
    """Continue the run in ``out`` from its last completed step, with the config it started with."""
    path = Path(out) / "config.json"
    if not path.is_file():
        raise UserError(f"{out}: no config.json, so there is no run to resume here; check the directory")
    saved = read_json(path)
    if "active" not in saved:
        raise UserError(f"{out}: config.json is not from 'prunefuse run'; resume only active-learning runs")
    return run_active(ActiveConfig.from_dict(saved["active"]), out, quiet)
