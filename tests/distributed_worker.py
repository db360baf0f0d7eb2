"""Run under ``torchrun --nproc_per_node=2`` by test_distributed.py (or in one plain process, for the
reference): train a LeNet-5 one epoch, or score a pool and select from it; rank 0 saves the outcome."""

import sys

import torch
from safetensors.torch import load_file, save_file

from prunefuse import data, distributed, models
from prunefuse.data.batching import Normalizer
from prunefuse.selection import select
from prunefuse.train import TrainConfig, fit, predict


def digits():
    train = data.load("digits", "train")
    return train, Normalizer(*train.channel_stats())


def lenet(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("lenet5", 10, 1, 8)


def train_one_epoch(out: str) -> None:
    train, normalizer = digits()
    model = lenet()
    config = TrainConfig(epochs=1, batch_size=50, lr=0.05, schedule="constant", seed=3)
    fit(model, train.subset(torch.arange(330)), config, normalizer=normalizer, quiet=True)  # last batch uneven
    if distributed.is_main():
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)


def score_and_select(weights: str, out: str) -> None:
    train, normalizer = digits()
    model = lenet()
    model.load_state_dict(load_file(weights))
    pool = torch.arange(1000)
    logits, feats = predict(model, train.images[pool], normalizer, batch_size=96, with_features=True)
    g = torch.Generator().manual_seed(0)
    chosen = {name: distributed.on_main(lambda name=name: select(name, 40, pool, logits, feats, feats[:20], g))
              for name in ("least_confidence", "kcenter", "badge")}
    if distributed.is_main():
        save_file({"logits": logits, "features": feats,
                   **{f"indices_{k}": v.indices for k, v in chosen.items()}}, out)


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train_one_epoch(sys.argv[2])
    else:
        score_and_select(sys.argv[2], sys.argv[3])
