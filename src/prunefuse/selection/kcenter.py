"""Greedy k-centers (the coreset selection of Sener & Savarese), with memory bounded by the pool size."""

from __future__ import annotations

import torch

from ..errors import UserError

ROW_CHUNK = 16384
CENTER_CHUNK = 1024


def min_sq_distances(features: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Each row's squared distance to its nearest centre, in blocks so memory stays small."""
    out = torch.full((len(features),), float("inf"), dtype=features.dtype)
    norms = features.pow(2).sum(1)
    for c in range(0, len(centers), CENTER_CHUNK):
        block = centers[c:c + CENTER_CHUNK]
        block_norms = block.pow(2).sum(1)
        for r in range(0, len(features), ROW_CHUNK):
            rows = slice(r, r + ROW_CHUNK)
            d = (norms[rows, None] + block_norms[None, :] - 2 * features[rows] @ block.T).clamp_min_(0)
            out[rows] = torch.minimum(out[rows], d.min(1).values)
    return out


def kcenter_greedy(features: torch.Tensor, labeled_mask: torch.Tensor, k: int) -> torch.Tensor:
    """Pick ``k`` unlabeled rows, each the one farthest from all centres chosen so far (the labeled
    rows are the first centres; ties go to the lowest index)."""
    features = features.detach().float().cpu()
    labeled_mask = labeled_mask.bool().cpu()
    available = int((~labeled_mask).sum())
    if k > available:
        raise UserError(f"cannot select {k} samples: only {available} unlabeled samples remain")
    if labeled_mask.any():
        dist = min_sq_distances(features, features[labeled_mask])
    else:
        dist = torch.full((len(features),), float("inf"))
    dist[labeled_mask] = -1.0
    chosen = []
    norms = features.pow(2).sum(1)
    for _ in range(k):
        i = int(torch.argmax(dist))  # first maximum: the lowest index among ties
        chosen.append(i)
        d = (norms + norms[i] - 2 * features @ features[i]).clamp_min_(0)
        dist = torch.minimum(dist, d)
        dist[i] = -1.0
    return torch.tensor(chosen, dtype=torch.long)
