"""Whole-batch tensor pipeline: the split lives on the training device as uint8, and crop, flip
and normalisation run on whole batches, so no per-sample Python sits on the hot path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Normalizer:
    mean: list[float]
    std: list[float]

    def __call__(self, images_uint8: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=images_uint8.device, dtype=dtype).view(1, -1, 1, 1)
        scale = 1.0 / (255.0 * torch.tensor(self.std, device=images_uint8.device, dtype=dtype).view(1, -1, 1, 1))
        return (images_uint8.to(dtype) - 255.0 * mean) * scale


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None) -> torch.Tensor:
    """Zero-pad by ``padding`` and cut a random H x W window per sample, in one gather."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device="cpu").to(x.device)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device="cpu").to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def shuffle_tiles(x: torch.Tensor, side: int, generator: torch.Generator | None) -> torch.Tensor:
    """Put each image's ``side`` x ``side`` tiles in a random order of its own, in one gather: where an
    image is a grid of independent items labelled by which are present, not where, the order is noise."""
    n, c, h, w = x.shape
    th, tw, k = h // side, w // side, side * side
    tiles = x.view(n, c, side, th, side, tw).permute(0, 2, 4, 1, 3, 5).reshape(n, k, c, th, tw)
    order = torch.argsort(torch.rand(n, k, generator=generator, device="cpu"), dim=1).to(x.device)
    tiles = tiles[torch.arange(n, device=x.device)[:, None], order]
    return tiles.view(n, side, side, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


def random_flip(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    mask = torch.rand(x.shape[0], generator=generator, device="cpu").lt(0.5).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(3), x)


@dataclass
class TensorBatches:
    """Iterates over (normalised float images, labels) batches of an in-memory split."""

    images: torch.Tensor  # uint8 N x C x H x W, already on the device
    labels: torch.Tensor
    normalizer: Normalizer
    batch_size: int
    shuffle: bool = False
    crop_padding: int = 0
    flip: bool = False
    tiles: int = 1  # > 1: shuffle each image's tiles, this many per side (shuffled batches only)
    drop_last: bool = False
    channels_last: bool = False
    generator: torch.Generator | None = None
    rank: int = 0  # data parallelism: yield only this rank's slice of each (global) batch
    world_size: int = 1
    global_batch: int = 0  # size of the global batch whose slice was yielded last

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last and n >= self.batch_size else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator).to(self.images.device) if self.shuffle else None
        for b in range(len(self)):
            sl = slice(b * self.batch_size, min(n, (b + 1) * self.batch_size))
            idx = order[sl] if order is not None else None
            x = self.images[idx] if idx is not None else self.images[sl]
            y = self.labels[idx] if idx is not None else self.labels[sl]
            if self.tiles > 1 and self.shuffle:
                x = shuffle_tiles(x, self.tiles, self.generator)
            if self.crop_padding:
                x = random_crop(x, self.crop_padding, self.generator)
            if self.flip:
                x = random_flip(x, self.generator)
            self.global_batch = len(y)
            if self.world_size > 1:  # augment the whole batch first, so every rank draws the same numbers
                part = slice(len(y) * self.rank // self.world_size, len(y) * (self.rank + 1) // self.world_size)
                x, y = x[part], y[part]
            x = self.normalizer(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y
