"""Engine throughput against a bare loop and a plain per-sample DataLoader loop, same model and batch.

    python bench/throughput.py [--arch preact20] [--images 2560] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F

from common import header, interleaved_rates, table
from prunefuse import data, models
from prunefuse.data.batching import Normalizer
from prunefuse.errors import UserError
from prunefuse.train import TrainConfig, configure_threads, fit, predict


class PerSampleDataset(torch.utils.data.Dataset):
    """The usual torchvision-style pipeline: one sample at a time, transformed in Python."""

    def __init__(self, images, labels, mean, std):
        self.images, self.labels, self.mean, self.std = images, labels, mean, std

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float().div(255)
        x = F.pad(x, (4, 4, 4, 4))
        oy, ox = torch.randint(0, 9, (2,)).tolist()
        x = x[:, oy:oy + 28, ox:ox + 28]
        if torch.rand(()) < 0.5:
            x = x.flip(2)
        return (x - self.mean) / self.std, self.labels[i]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="preact20")
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    configure_threads()
    header(f"Training and scoring throughput, {args.arch}, Fashion-MNIST 28x28, batch {args.batch_size}")
    try:
        pool = data.load("fashion-mnist", "train")
    except UserError:  # no Fashion-MNIST here: random images of the same shape
        pool = data.Dataset(torch.randint(0, 256, (args.images, 1, 28, 28), dtype=torch.uint8),
                            torch.randint(0, 10, (args.images,)), [str(i) for i in range(10)], "random", "train")
    pool = pool.subset(torch.arange(args.images))
    norm = Normalizer(*pool.channel_stats())
    torch.manual_seed(0)
    model = models.create(args.arch, 10, 1, 28)
    x_all = norm(pool.images).contiguous(memory_format=torch.channels_last)
    y_all = pool.labels
    n, bs = len(pool), args.batch_size

    def bare(memory_format):
        m = copy.deepcopy(model).to(memory_format=memory_format).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        xs = x_all.contiguous(memory_format=memory_format)

        def run():
            for b in range(n // bs):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(m(xs[b * bs:(b + 1) * bs]), y_all[b * bs:(b + 1) * bs]).backward()
                opt.step()
        return run

    def engine(augment: bool):
        cfg = TrainConfig(epochs=1, batch_size=bs, lr=0.01, schedule="constant",
                          crop_padding=None if augment else 0, flip=None if augment else False)
        m = copy.deepcopy(model)
        return lambda: fit(m, pool, cfg, normalizer=norm, quiet=True)

    def plain_loader():
        ds = PerSampleDataset(pool.images, pool.labels, torch.tensor(norm.mean).view(-1, 1, 1),
                              torch.tensor(norm.std).view(-1, 1, 1))
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, drop_last=True)
        m = copy.deepcopy(model).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def run():
            for xb, yb in loader:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(m(xb), yb).backward()
                opt.step()
        return run

    steps = (n // bs) * bs
    rates = interleaved_rates({
        "bare loop, channels_last": bare(torch.channels_last),
        "bare loop, default format": bare(torch.contiguous_format),
        "engine, crop+flip": engine(True),
        "engine, no augmentation": engine(False),
        "plain per-sample DataLoader": plain_loader(),
    }, steps)
    limit = rates["bare loop, channels_last"]
    table([{"training loop": k, "images/s": v, "÷ bare loop": v / limit,
            "engine ÷ this": rates["engine, crop+flip"] / v} for k, v in rates.items()])

    model.eval().to(memory_format=torch.channels_last)

    def bare_forward():
        with torch.no_grad():
            for b in range(0, n, 1024):
                model(x_all[b:b + 1024])

    scoring = interleaved_rates({"bare forward (no_grad, batch 1024)": bare_forward,
                                 "engine predict (inference_mode, batch 1024)":
                                     lambda: predict(model, pool.images, norm, 1024)}, n)
    base = scoring["bare forward (no_grad, batch 1024)"]
    table([{"scoring": k, "images/s": v, "÷ bare forward": v / base} for k, v in scoring.items()])


if __name__ == "__main__":
    main()
