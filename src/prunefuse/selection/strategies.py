"""Which pool samples to label next, given a trained model: one interface for every strategy."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UserError
from .kcenter import kcenter_greedy

STRATEGIES = ("least_confidence", "margin", "entropy", "kcenter", "badge", "random")
UNCERTAINTY = ("least_confidence", "margin", "entropy")


def uncertainty(logits: torch.Tensor, strategy: str) -> torch.Tensor:
    """Higher means more informative."""
    p = F.softmax(logits.float(), dim=1)
    if strategy == "least_confidence":
        return 1.0 - p.max(1).values
    if strategy == "margin":
        top2 = p.topk(2, dim=1).values if p.shape[1] > 1 else torch.cat([p, torch.zeros_like(p)], 1)
        return -(top2[:, 0] - top2[:, 1])
    if strategy == "entropy":
        return -(p * torch.log(p.clamp_min(1e-12))).sum(1)
    raise UserError(f"unknown strategy '{strategy}'; choose one of: {', '.join(STRATEGIES)}")


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The k highest scores; ties go to the lowest index, so selection is reproducible."""
    order = torch.sort(-scores.double(), stable=True).indices
    return order[:k]


def badge(logits: torch.Tensor, features: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding on gradient embeddings (p - onehot(argmax)) x features (Ash et al. 2020),
    computed through the factorisation <a_i x f_i, a_j x f_j> = <a_i, a_j><f_i, f_j>, so the
    N x C*D embedding matrix is never built."""
    p = F.softmax(logits.float(), 1)
    a = p - F.one_hot(p.argmax(1), p.shape[1]).float()
    f = features.float()
    sq = a.pow(2).sum(1) * f.pow(2).sum(1)
    first = int(torch.argmax(sq))
    chosen = [first]
    dist = (sq + sq[first] - 2 * (a @ a[first]) * (f @ f[first])).clamp_min_(0)
    dist[first] = 0
    while len(chosen) < k:
        total = dist.sum()
        if total <= 0:  # every remaining point coincides with a centre: fill by lowest index
            rest = [i for i in range(len(dist)) if i not in set(chosen)]
            chosen += rest[:k - len(chosen)]
            break
        i = int(torch.multinomial(dist / total, 1, generator=generator))
        chosen.append(i)
        d = (sq + sq[i] - 2 * (a @ a[i]) * (f @ f[i])).clamp_min_(0)
        dist = torch.minimum(dist, d)
        dist[i] = 0
    return torch.tensor(chosen, dtype=torch.long)


@dataclass
class Selection:
    indices: torch.Tensor  # positions in the pool
    scores: torch.Tensor  # the strategy's score of each chosen sample (higher = chosen earlier)
    flops: int = 0  # arithmetic of the selection step itself (distances), beside the model's


def select(strategy: str, k: int, unlabeled: torch.Tensor, logits: torch.Tensor | None = None,
           features: torch.Tensor | None = None, labeled_features: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> Selection:
    """Choose ``k`` of the ``unlabeled`` pool positions. ``logits``/``features`` are rows for the
    unlabeled samples, in the same order; ``labeled_features`` seed k-centers."""
    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy '{strategy}'; choose one of: {', '.join(STRATEGIES)}")
    if k > len(unlabeled):
        raise UserError(f"budget asks for {k} more samples but only {len(unlabeled)} remain unlabeled; "
                        "lower the budget or enlarge the pool")
    generator = generator or torch.Generator().manual_seed(0)
    if strategy == "random":
        picks = torch.randperm(len(unlabeled), generator=generator)[:k]
        return Selection(unlabeled[picks], torch.zeros(k))
    if strategy in UNCERTAINTY:
        scores = uncertainty(logits, strategy)
        picks = top_k(scores, k)
        return Selection(unlabeled[picks], scores[picks])
    if strategy == "kcenter":
        labeled_features = labeled_features if labeled_features is not None else features[:0]
        all_features = torch.cat([labeled_features, features])
        mask = torch.zeros(len(all_features), dtype=torch.bool)
        mask[:len(labeled_features)] = True
        picks = kcenter_greedy(all_features, mask, k) - len(labeled_features)
        flops = 3 * len(all_features) * all_features.shape[1] * (k + len(labeled_features))
        return Selection(unlabeled[picks], torch.arange(k, 0, -1, dtype=torch.float), flops)
    picks = badge(logits, features, k, generator)
    flops = 4 * len(features) * (features.shape[1] + logits.shape[1]) * k
    return Selection(unlabeled[picks], torch.arange(k, 0, -1, dtype=torch.float), flops)
