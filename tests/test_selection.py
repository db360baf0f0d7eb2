import math

import pytest
import torch

from prunefuse.errors import UserError
from prunefuse.selection import badge, kcenter_greedy, select, top_k, uncertainty
from prunefuse.selection import kcenter as kcenter_module


def test_uncertainty_scores_by_hand():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]]))
    assert torch.allclose(uncertainty(logits, "least_confidence"), torch.tensor([0.3, 0.6]))
    assert torch.allclose(uncertainty(logits, "margin"), torch.tensor([-0.5, -0.05]))
    h = [-sum(p * math.log(p) for p in row) for row in ([0.7, 0.2, 0.1], [0.4, 0.35, 0.25])]
    assert torch.allclose(uncertainty(logits, "entropy"), torch.tensor(h))


def test_top_k_breaks_ties_by_lowest_index():
    assert top_k(torch.tensor([0.5, 0.9, 0.9, 0.1, 0.9]), 2).tolist() == [1, 2]


def test_uncertainty_selection_returns_pool_positions():
    unlabeled = torch.tensor([10, 20, 30])
    logits = torch.tensor([[5.0, 0.0], [0.1, 0.0], [2.0, 0.0]])
    chosen = select("least_confidence", 2, unlabeled, logits)
    assert chosen.indices.tolist() == [20, 30]
    assert chosen.scores[0] > chosen.scores[1]


def brute_force_kcenter(x, labeled, k):
    centers = [i for i in range(len(x)) if labeled[i]]
    chosen = []
    for _ in range(k):
        best, best_d = None, -1.0
        for i in range(len(x)):
            if labeled[i] or i in chosen:
                continue
            d = min((float(((x[i] - x[c]) ** 2).sum()) for c in centers), default=float("inf"))
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)
        centers.append(best)
    return chosen


@pytest.mark.parametrize("n_labeled", [0, 1, 5])
def test_kcenter_matches_brute_force(n_labeled):
    g = torch.Generator().manual_seed(n_labeled)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    labeled = torch.zeros(40, dtype=torch.bool)
    labeled[torch.randperm(40, generator=g)[:n_labeled]] = True
    assert kcenter_greedy(x, labeled, 8).tolist() == brute_force_kcenter(x, labeled, 8)


def test_kcenter_ties_go_to_lowest_index_and_chunks_agree(monkeypatch):
    x = torch.tensor([[0.0], [1.0], [-1.0], [5.0], [-5.0]])
    labeled = torch.tensor([True, False, False, False, False])
    assert kcenter_greedy(x, labeled, 2).tolist() == [3, 4]
    feats = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    centers = feats[:37]
    full = torch.cdist(feats, centers).pow(2).min(1).values
    monkeypatch.setattr(kcenter_module, "ROW_CHUNK", 16)
    monkeypatch.setattr(kcenter_module, "CENTER_CHUNK", 5)
    assert torch.allclose(kcenter_module.min_sq_distances(feats, centers), full, atol=1e-4)


def test_kcenter_rejects_too_large_k():
    with pytest.raises(UserError, match="only 2 unlabeled"):
        kcenter_greedy(torch.randn(3, 2), torch.tensor([True, False, False]), 3)


def test_badge_distinct_and_factorised_distances():
    g = torch.Generator().manual_seed(0)
    logits, feats = torch.randn(50, 4, generator=g), torch.randn(50, 6, generator=g)
    chosen = badge(logits, feats, 12, torch.Generator().manual_seed(1))
    assert len(set(chosen.tolist())) == 12
    p = torch.softmax(logits, 1)
    a = p - torch.nn.functional.one_hot(p.argmax(1), 4)
    emb = (a[:, :, None] * feats[:, None, :]).flatten(1)
    assert chosen[0] == int(emb.norm(dim=1).argmax())  # the largest gradient embedding seeds k-means++


def test_select_more_than_unlabeled_is_an_error():
    with pytest.raises(UserError, match="only 3 remain"):
        select("random", 5, torch.arange(3))
