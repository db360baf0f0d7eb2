"""``fashion-mnist-grid``: each image a 2x2 grid of four Fashion-MNIST items (56x56), labelled with 10
binary attributes, "an item of class c is in the image". Tasks that are groups of attributes of one
image are the kind PAM was built for; the grids are composed on the fly from the official IDX files
(train grids from the training split, test grids from the test split), seeded, so nothing is
downloaded and every run sees the same images."""

from __future__ import annotations

import torch

from .dataset import Dataset

GRID_SEED = 0
GRID_SIDE = 2  # items per side of an image


def compose_grids(items: torch.Tensor, labels: torch.Tensor, num_classes: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """GRID_SIDE² items per image in reading order, each item used once: N/GRID_SIDE² images of
    GRID_SIDE x GRID_SIDE items, and their classes-present 0/1 labels."""
    k = GRID_SIDE * GRID_SIDE
    n = len(items) // k
    order = torch.randperm(len(items), generator=generator)[: k * n].view(n, k)
    tiles = items[order]  # n x k x C x H x W, in reading order
    rows = [torch.cat([tiles[:, r * GRID_SIDE + c] for c in range(GRID_SIDE)], dim=-1) for r in range(GRID_SIDE)]
    present = torch.zeros(n, num_classes, dtype=torch.long)
    present.scatter_(1, labels[order], 1)
    return torch.cat(rows, dim=-2).contiguous(), present


def fashion_grid(items: Dataset) -> Dataset:
    """The grid split built from a Fashion-MNIST split (its items are consumed four at a time)."""
    generator = torch.Generator().manual_seed(GRID_SEED + (0 if items.split == "train" else 1))
    images, labels = compose_grids(items.images, items.labels, items.num_classes, generator)
    return Dataset(images, labels, [f"has {c}" for c in items.classes], "fashion-mnist-grid", items.split)
