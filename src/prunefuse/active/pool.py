"""Active learning on a real pool: ``select`` picks the next samples to label with a pruned selector
trained on the labels so far, and ``fit`` finishes the job as PruneFuse does (fuse the selector
trained on every label into the dense network, then train that); ``predict`` applies the result.
``select`` and ``fit`` keep their state in a workspace folder, so every round prunes the same
untrained network and fusion finds its map."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import torch

from .. import models
from ..data.batching import Normalizer
from ..data.dataset import Dataset
from ..data.pool import UnlabeledPool, read_labels, read_pool
from ..errors import UserError
from ..io import checkpoint
from ..io.rundir import RunDirectory, check_output_file, derive_seed, seed_everything, stored_config
from ..io.storage import csv_text, read_json, write_json, write_text
from ..pruning import FILLS, SCOPES, ChannelMap, check_prunable, fuse, prune, save_pruned
from ..selection import STRATEGIES, select
from ..train import TrainConfig, evaluate, fit, predict
from ..train.config import KD_SCHEDULES
from ..validation import check_choice, check_number, check_seed
from .config import ActiveConfig

EpochCallback = Callable[[dict], None]


@dataclass
class PoolConfig:
    """How the selector is built and trained; a workspace keeps the settings it was made with."""

    arch: str = "preact20"
    prune_ratio: float = 0.5
    epochs: int = 30
    steps: int = 500  # at least this many optimizer steps per selector fit, as in ActiveConfig
    batch_size: int = 32
    lr: float = 0.1
    selection: str = "least_confidence"
    image_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        models.check_name(self.arch)
        check_number("prune_ratio", self.prune_ratio, 0, 1, closed="neither")
        check_number("epochs", self.epochs, 1, integer=True)
        check_number("steps", self.steps, 0, integer=True)
        check_number("batch_size", self.batch_size, 1, integer=True)
        check_number("lr", self.lr, 0, closed="neither")
        check_choice("selection", self.selection, STRATEGIES)
        if self.image_size is not None:
            check_number("image_size", self.image_size, 8, integer=True)
        check_seed("seed", self.seed)

    def train_config(self, seed_name: str) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, min_steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                           schedule="onecycle", seed=derive_seed(self.seed, seed_name))


def default_workspace(labels: str | Path) -> Path:
    return Path(labels).resolve().parent / "prunefuse-work"


def saved_workspace(path: str | Path) -> tuple[PoolConfig, list[str]] | None:
    """The selector settings and classes a workspace was made with; None where ``select`` made none yet."""
    path = Path(path)
    saved = RunDirectory(path, "pool", {}).saved()
    if saved is None:
        return None
    settings = dict(stored_config(saved) or {})
    if saved["command"] != "pool" or not isinstance(settings.get("classes"), list):
        raise UserError(f"{path} holds a '{saved['command']}' run, not a select workspace; pass the --workspace "
                        "that prunefuse select made")
    classes = settings.pop("classes")
    settings.pop("input_shape", None)
    try:
        return PoolConfig(**settings), classes
    except TypeError as e:
        raise UserError(f"{path / 'config.json'}: not a workspace's settings ({e}); pass the --workspace that "
                        "prunefuse select made") from None


def workspace_config(workspace: str | Path, overwrite: bool = False, **given) -> PoolConfig:
    """The settings the workspace was made with (the defaults for a new one, or one started afresh with
    ``overwrite``) with ``given`` on top, so that a later select repeats none of them."""
    saved = None if overwrite else saved_workspace(workspace)
    return replace(saved[0] if saved else PoolConfig(), **given)


def labels_digest(ids: list[str], names: list[str]) -> str:
    text = "\n".join(sorted(f"{i},{n}" for i, n in zip(ids, names, strict=True)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Workspace:
    """The untrained dense network, its pruned selector and the last trained selector of one pool."""

    def __init__(self, path: str | Path, config: PoolConfig, pool: UnlabeledPool, classes: list[str]):
        self.path, self.config, self.pool, self.classes = Path(path), config, pool, classes
        self.shape = tuple(pool.images.shape[1:])
        c, h, _ = self.shape  # refused here, before select claims the workspace
        check_prunable(models.create(config.arch, len(classes), c, h), config.prune_ratio)

    @cached_property
    def normalizer(self) -> Normalizer:
        """The pool's channel statistics: computed on first use, so that ``check`` reads no pixels."""
        return Normalizer(*Dataset(self.pool.images, torch.zeros(len(self.pool.ids), dtype=torch.long), ["x"],
                                   "pool", "train").channel_stats())

    def settings(self) -> dict:
        return {**asdict(self.config), "classes": self.classes, "input_shape": list(self.shape)}

    def spec(self) -> dict:
        c, h, _ = self.shape
        return {**checkpoint.model_spec(self.config.arch, len(self.classes), (c, h, h)), "classes": self.classes,
                "normalizer": vars(self.normalizer), "image_size": self.config.image_size}

    def kept_settings(self) -> dict:
        """What the workspace's networks depend on: the strategy may change between rounds."""
        settings = self.settings()
        settings.pop("selection")
        return settings

    def claim(self, overwrite: bool = False, hint: str | None = None) -> RunDirectory:
        return RunDirectory.claim(self.path, "pool", self.kept_settings(), overwrite=overwrite, flag="--workspace",
                                  hint=hint)

    def check(self, hint: str) -> None:
        """Refuse, as ``claim`` would, a workspace made for another pool or classes, without claiming it."""
        RunDirectory(self.path, "pool", self.kept_settings(), flag="--workspace", hint=hint).check(overwrite=False)

    def initial_networks(self) -> tuple[torch.nn.Module, torch.nn.Module, ChannelMap]:
        """θ at init and its pruned selector, made once (seeded) and read back in every later round."""
        if (self.path / "init.safetensors").is_file():
            dense, _ = checkpoint.load_model(self.path / "init")
            selector, meta = checkpoint.load_model(self.path / "selector_init")
            return dense, selector, ChannelMap.from_dict(meta["channel_map"])
        c, h, _ = self.shape
        seed_everything(derive_seed(self.config.seed, "init"))
        dense = models.create(self.config.arch, len(self.classes), c, h)
        selector, cmap = prune(dense, self.config.prune_ratio, torch.zeros(1, *self.shape), steps=5,
                               arch=self.config.arch)
        checkpoint.save(self.path / "init", dense, self.spec())
        save_pruned(self.path / "selector_init", selector, cmap, self.spec())
        return dense, selector, cmap

    def labeled(self, positions: list[int], names: list[str]) -> Dataset:
        index = {c: i for i, c in enumerate(self.classes)}
        return Dataset(self.pool.images[positions], torch.tensor([index[n] for n in names], dtype=torch.long),
                       self.classes, "pool", "train", [self.pool.ids[p] for p in positions])

    def train_selector(self, labeled: Dataset, seed_name: str, quiet: bool,
                       on_epoch: EpochCallback | None = None) -> tuple[torch.nn.Module, ChannelMap]:
        """The pruned initialisation trained on ``labeled``; ``on_epoch`` gets fit's record of each epoch."""
        _, selector, cmap = self.initial_networks()
        config = self.config.train_config(seed_name)
        torch.manual_seed(derive_seed(self.config.seed, seed_name))
        fit(selector, labeled, config, normalizer=self.normalizer, quiet=quiet, desc=seed_name,
            on_epoch=on_epoch)
        return selector.cpu(), cmap

    def trained_selector(self, labeled: Dataset, quiet: bool,
                         on_epoch: EpochCallback | None = None) -> tuple[torch.nn.Module, ChannelMap]:
        """The selector trained from its initialisation on ``labeled``; reused if the last round trained
        it on exactly these labels."""
        digest = labels_digest(labeled.ids, [self.classes[i] for i in labeled.labels.tolist()])
        stem = self.path / "selector"
        if (stem.with_suffix(".json")).is_file():
            model, meta = checkpoint.load_model(stem)
            if meta.get("labels_digest") == digest:
                return model, ChannelMap.from_dict(meta["channel_map"])
        selector, cmap = self.train_selector(labeled, "selector", quiet, on_epoch)
        save_pruned(stem, selector, cmap, self.spec(), labels_digest=digest, labeled=len(labeled))
        return selector, cmap


def open_pool(pool_path: str | Path, labels_path: str | Path, config: PoolConfig,
              classes: list[str] | None, workspace: str | Path | None) -> tuple[Workspace, list[int], list[str]]:
    """The pool, its labels and the workspace; the classes are ``classes``, else those the workspace
    was made with, else the pool's, else the labels seen."""
    workspace = Path(workspace) if workspace else default_workspace(labels_path)
    saved = None if classes else saved_workspace(workspace)
    pool = read_pool(pool_path, config.image_size)
    positions, names, classes = read_labels(labels_path, pool, classes or (saved[1] if saved else None))
    if len(set(names)) < 2:
        raise UserError(f"{labels_path}: label samples of at least two classes first (found "
                        f"{len(positions)} labels of {len(set(names))} class)")
    return Workspace(workspace, config, pool, classes), positions, names


def select_from_pool(pool_path: str | Path, labels_path: str | Path, budget: int, out: str | Path,
                     config: PoolConfig | None = None, classes: list[str] | None = None,
                     workspace: str | Path | None = None, quiet: bool = False, overwrite: bool = False,
                     on_epoch: EpochCallback | None = None) -> list[dict]:
    """Write ``out`` (CSV: id, score) with the ``budget`` unlabeled samples to label next.

    The selector is PruneFuse's: the untrained target pruned once (kept in ``workspace``, by default
    ``prunefuse-work`` beside the labels), trained on the labels so far, with ``config`` or else the
    workspace's settings (see ``workspace_config``). ``on_epoch`` hears of each epoch of its training
    (fit's record)."""
    config = config or workspace_config(workspace or default_workspace(labels_path), overwrite)
    out = Path(out)
    check_output_file(out)
    check_number("budget", budget, 1, integer=True)
    space, positions, names = open_pool(pool_path, labels_path, config, classes, workspace)
    unlabeled = torch.tensor(sorted(set(range(len(space.pool.ids))) - set(positions)), dtype=torch.long)
    if budget > len(unlabeled):
        raise UserError(f"--budget {budget} is out of range: the pool has {len(unlabeled)} unlabeled samples")
    with space.claim(overwrite):
        labeled = space.labeled(positions, names)
        selector, _ = space.trained_selector(labeled, quiet, on_epoch)
        needs_features = config.selection in ("kcenter", "badge")
        scored = predict(selector, space.pool.images[unlabeled], space.normalizer, with_features=needs_features,
                         device="auto")
        logits, feats = scored if needs_features else (scored, None)
        labeled_feats = (predict(selector, labeled.images, space.normalizer, with_features=True)[1]
                         if config.selection == "kcenter" else None)
        chosen = select(config.selection, budget, unlabeled, logits, feats, labeled_feats,
                        torch.Generator().manual_seed(derive_seed(config.seed, f"select{len(positions)}")))
    rows = [{"id": space.pool.ids[i], "score": float(s)} for i, s in zip(chosen.indices.tolist(),
                                                                        chosen.scores.tolist(), strict=True)]
    write_text(out, csv_text(["id", "score"], [[r["id"], f"{r['score']:.6g}"] for r in rows]))
    return rows


@dataclass
class FitConfig:
    """The last step on a real pool. KD and fusion follow ``ActiveConfig``'s defaults, which the
    benchmarks set; the selector's own training follows the workspace's settings."""

    val_fraction: float = 0.2  # held out of the labels to measure the final network
    epochs: int = ActiveConfig.target_epochs
    steps: int = ActiveConfig.target_steps  # at least this many optimizer steps
    kd: bool = ActiveConfig.kd
    fill: str = ActiveConfig.fill
    fusion_scope: str = ActiveConfig.fusion_scope
    kd_alpha: float = field(default_factory=lambda: ActiveConfig().train["kd_alpha"])
    kd_temperature: float = field(default_factory=lambda: ActiveConfig().train["kd_temperature"])
    kd_schedule: str = field(default_factory=lambda: ActiveConfig().train["kd_schedule"])

    def __post_init__(self) -> None:
        check_number("val_fraction", self.val_fraction, 0, 1, closed="left")
        check_number("epochs", self.epochs, 1, integer=True)
        check_number("steps", self.steps, 0, integer=True)
        check_choice("fill", self.fill, FILLS)
        check_choice("fusion_scope", self.fusion_scope, SCOPES)
        check_number("kd_alpha", self.kd_alpha, 0, 1)
        check_number("kd_temperature", self.kd_temperature, 0, closed="neither")
        check_choice("kd_schedule", self.kd_schedule, KD_SCHEDULES)


def split_labels(names: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of a training part and a held-out part of about ``fraction`` of the labels: drawn per
    class (each keeps one sample for training) where every class has two, else from all at once."""
    if fraction == 0:
        return list(range(len(names))), []
    by_class: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_class.setdefault(name, []).append(i)
    stratified = min(len(members) for members in by_class.values()) >= 2
    groups = [by_class[c] for c in sorted(by_class)] if stratified else [list(range(len(names)))]
    generator = torch.Generator().manual_seed(seed)
    held_out = []
    for members in groups:
        order = torch.randperm(len(members), generator=generator).tolist()
        take = min(len(members) - 1, max(1, round(fraction * len(members))))
        held_out += [members[o] for o in order[:take]]
    return sorted(set(range(len(names))) - set(held_out)), sorted(held_out)


def fit_from_pool(pool_path: str | Path, labels_path: str | Path, out: str | Path, settings: FitConfig | None = None,
                  workspace: str | Path | None = None, classes: list[str] | None = None, quiet: bool = False,
                  overwrite: bool = False) -> dict:
    """PruneFuse's last step on a real pool; writes ``out`` (``model.safetensors``, ``model.json``,
    ``results.json``) and returns the results.

    The labels are split into a training part and a held-out validation part; the workspace's pruned
    selector is trained on the training part from its initialisation (the final selector fit), fused
    into the untrained dense network and that is trained on the same part (distilling from the
    selector where ``settings.kd``). A finished ``out`` with the same settings and labels is reused."""
    settings = settings or FitConfig()
    workspace = Path(workspace) if workspace else default_workspace(labels_path)
    saved = saved_workspace(workspace)
    if saved is None:
        raise UserError(f"{workspace}: no workspace there; run prunefuse select first (it makes the pruned "
                        "selector that fit fuses), or pass its --workspace")
    space, positions, names = open_pool(pool_path, labels_path, saved[0], classes, workspace)
    config = space.config
    train_part, held_out = split_labels(names, settings.val_fraction, derive_seed(config.seed, "validation"))
    train = space.labeled([positions[i] for i in train_part], [names[i] for i in train_part])
    validation = space.labeled([positions[i] for i in held_out], [names[i] for i in held_out])
    run_config = {"fit": asdict(settings), "workspace": space.settings(),
                  "labels": labels_digest([space.pool.ids[p] for p in positions], names)}
    out = Path(out)
    if out.resolve() == space.path.resolve():
        raise UserError(f"--out {out} is the selector workspace; write the fused network to a folder of its own")
    RunDirectory(out, "fit", run_config).check(overwrite)  # --out and the workspace checked before either is written
    with space.claim(hint="pass the --pool and --classes that prunefuse select used with it"), \
            RunDirectory.claim(out, "fit", run_config, overwrite=overwrite):
        if (out / "results.json").is_file():
            return read_json(out / "results.json")
        start = time.perf_counter()
        selector, cmap = space.train_selector(train, "final_selector", quiet)
        selector_seconds = time.perf_counter() - start
        dense, _, _ = space.initial_networks()
        torch.manual_seed(derive_seed(config.seed, "fuse"))
        model = fuse(selector, dense, cmap, settings.fill, settings.fusion_scope)
        target = TrainConfig(epochs=settings.epochs, min_steps=settings.steps, batch_size=config.batch_size,
                             lr=config.lr, schedule="onecycle", seed=derive_seed(config.seed, "target"),
                             kd_alpha=settings.kd_alpha, kd_temperature=settings.kd_temperature,
                             kd_schedule=settings.kd_schedule)
        torch.manual_seed(target.seed)
        trained = fit(model, train, target, normalizer=space.normalizer, teacher=selector if settings.kd else None,
                      quiet=quiet, desc="target")
        model = model.cpu()
        checkpoint.save(out / "model", model, space.spec())
        results = {"validation_accuracy": evaluate(model, validation, space.normalizer, target) if held_out else None,
                   "selector_validation_accuracy": evaluate(selector, validation, space.normalizer, target)
                   if held_out else None,
                   "labeled": len(positions), "train": len(train_part), "validation": len(held_out),
                   "classes": space.classes, "kd": settings.kd, "fill": settings.fill,
                   "target_epochs": trained.epochs, "target_steps": trained.steps,
                   "selector_seconds": round(selector_seconds, 3),
                   "target_seconds": round(trained.seconds, 3), "seconds": round(time.perf_counter() - start, 3)}
        write_json(out / "results.json", results)
    return results


def predict_images(model_dir: str | Path, images: str | Path, out: str | Path) -> list[dict]:
    """Write ``out`` (CSV: id, label, confidence) with the class that the model ``fit`` wrote predicts
    for every image of ``images`` (a folder, resized to the model's input, or an ``.npz``)."""
    out = Path(out)
    check_output_file(out)
    model, meta = checkpoint.load_model(model_dir)
    if not isinstance(meta.get("classes"), list) or not isinstance(meta.get("normalizer"), dict):
        raise UserError(f"{model_dir}: the model has no class names or normalizer; pass the --out folder of "
                        "prunefuse fit")
    channels, height, width = meta["input_shape"]
    pool = read_pool(images, height)
    found = tuple(pool.images.shape[1:])
    if found[0] != channels:
        kind = {1: "greyscale", 3: "RGB"}.get(channels, f"{channels}-channel")
        raise UserError(f"{images}: the images have {found[0]} channel(s) but the model takes {channels}; convert "
                        f"them to {kind} first")
    if found[1:] != (height, width):
        raise UserError(f"{images}: the images are {found[1]}x{found[2]} but the model takes {height}x{width}; "
                        f"resize them to {height}x{width} (a folder of images is resized by itself)")
    logits = predict(model, pool.images, Normalizer(**meta["normalizer"]), device="auto")
    confidence, index = torch.softmax(logits, dim=1).max(dim=1)
    rows = [{"id": i, "label": meta["classes"][k], "confidence": float(c)}
            for i, k, c in zip(pool.ids, index.tolist(), confidence.tolist(), strict=True)]
    write_text(out, csv_text(["id", "label", "confidence"], [[r["id"], r["label"], f"{r['confidence']:.6g}"]
                                                             for r in rows]))
    return rows
