"""Active learning on a real pool: ``select`` picks the next samples to label with a pruned selector
trained on the labels so far, and ``fit`` finishes the job as PruneFuse does (fuse the selector
trained on every label into the dense network, then train that). Both keep their state in a
workspace folder, so every round prunes the same untrained network and fusion finds its map."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import models
from ..data.batching import Normalizer
from ..data.dataset import Dataset
from ..data.pool import UnlabeledPool, read_labels, read_pool
from ..errors import UserError
from ..io import checkpoint
from ..io.rundir import RunDirectory, check_output_file, derive_seed, seed_everything
from ..io.storage import csv_text, write_text
from ..pruning import ChannelMap, prune, save_pruned
from ..selection import STRATEGIES, select
from ..train import TrainConfig, fit, predict
from ..validation import check_choice, check_number, check_seed


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


def labels_digest(ids: list[str], names: list[str]) -> str:
    text = "\n".join(sorted(f"{i},{n}" for i, n in zip(ids, names, strict=True)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Workspace:
    """The untrained dense network, its pruned selector and the last trained selector of one pool."""

    def __init__(self, path: str | Path, config: PoolConfig, pool: UnlabeledPool, classes: list[str]):
        self.path, self.config, self.pool, self.classes = Path(path), config, pool, classes
        self.shape = tuple(pool.images.shape[1:])
        self.normalizer = Normalizer(*Dataset(pool.images, torch.zeros(len(pool.ids), dtype=torch.long), ["x"],
                                              "pool", "train").channel_stats())

    def settings(self) -> dict:
        return {**asdict(self.config), "classes": self.classes, "input_shape": list(self.shape)}

    def spec(self) -> dict:
        c, h, _ = self.shape
        return {**checkpoint.model_spec(self.config.arch, len(self.classes), (c, h, h)), "classes": self.classes,
                "normalizer": vars(self.normalizer), "image_size": self.config.image_size}

    def claim(self, overwrite: bool = False) -> RunDirectory:
        settings = self.settings()
        settings.pop("selection")  # the strategy may change between rounds
        return RunDirectory.claim(self.path, "pool", settings, overwrite=overwrite)

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

    def trained_selector(self, labeled: Dataset, quiet: bool) -> tuple[torch.nn.Module, ChannelMap]:
        """The selector trained from its initialisation on ``labeled``; reused if the last round trained
        it on exactly these labels."""
        digest = labels_digest(labeled.ids, [self.classes[i] for i in labeled.labels.tolist()])
        _, selector, cmap = self.initial_networks()
        stem = self.path / "selector"
        if (stem.with_suffix(".json")).is_file():
            model, meta = checkpoint.load_model(stem)
            if meta.get("labels_digest") == digest:
                return model, cmap
        torch.manual_seed(derive_seed(self.config.seed, "selector"))
        fit(selector, labeled, self.config.train_config("selector"), normalizer=self.normalizer, quiet=quiet,
            desc="selector")
        selector = selector.cpu()
        save_pruned(stem, selector, cmap, self.spec(), labels_digest=digest, labeled=len(labeled))
        return selector, cmap


def open_pool(pool_path: str | Path, labels_path: str | Path, config: PoolConfig,
              classes: list[str] | None, workspace: str | Path | None) -> tuple[Workspace, list[int], list[str]]:
    pool = read_pool(pool_path, config.image_size)
    positions, names, classes = read_labels(labels_path, pool, classes)
    if len(set(names)) < 2:
        raise UserError(f"{labels_path}: label samples of at least two classes first (found "
                        f"{len(positions)} labels of {len(set(names))} class)")
    return Workspace(workspace or default_workspace(labels_path), config, pool, classes), positions, names


def select_from_pool(pool_path: str | Path, labels_path: str | Path, budget: int, out: str | Path,
                     config: PoolConfig | None = None, classes: list[str] | None = None,
                     workspace: str | Path | None = None, quiet: bool = False, overwrite: bool = False) -> list[dict]:
    """Write ``out`` (CSV: id, score) with the ``budget`` unlabeled samples to label next.

    The selector is PruneFuse's: the untrained target pruned once (kept in ``workspace``, by default
    ``prunefuse-work`` beside the labels), trained on the labels so far."""
    config = config or PoolConfig()
    out = Path(out)
    check_output_file(out)
    check_number("budget", budget, 1, integer=True)
    space, positions, names = open_pool(pool_path, labels_path, config, classes, workspace)
    unlabeled = torch.tensor(sorted(set(range(len(space.pool.ids))) - set(positions)), dtype=torch.long)
    if budget > len(unlabeled):
        raise UserError(f"--budget {budget} is out of range: the pool has {len(unlabeled)} unlabeled samples")
    with space.claim(overwrite):
        labeled = space.labeled(positions, names)
        selector, _ = space.trained_selector(labeled, quiet)
        needs_features = config.selection in ("kcenter", "badge")
        scored = predict(selector, space.pool.images[unlabeled], space.normalizer, with_features=needs_features)
        logits, feats = scored if needs_features else (scored, None)
        labeled_feats = (predict(selector, labeled.images, space.normalizer, with_features=True)[1]
                         if config.selection == "kcenter" else None)
        chosen = select(config.selection, budget, unlabeled, logits, feats, labeled_feats,
                        torch.Generator().manual_seed(derive_seed(config.seed, f"select{len(positions)}")))
    rows = [{"id": space.pool.ids[i], "score": float(s)} for i, s in zip(chosen.indices.tolist(),
                                                                        chosen.scores.tolist(), strict=True)]
    write_text(out, csv_text(["id", "score"], [[r["id"], f"{r['score']:.6g}"] for r in rows]))
    return rows
