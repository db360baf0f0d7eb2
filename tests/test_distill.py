import math

import pytest
import torch

from prunefuse.errors import UserError
from prunefuse.train import kd_loss


def test_kd_loss_matches_closed_form():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 1.0]])
    y = torch.tensor([0])
    T, alpha = 2.0, 0.3
    ce = -math.log(math.e / (math.e + 1))
    ps = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]
    pt = [ps[1], ps[0]]
    kl = sum(p * math.log(p / q) for p, q in zip(pt, ps))
    expected = alpha * ce + (1 - alpha) * T * T * kl
    assert kd_loss(s, t, y, alpha, T).item() == pytest.approx(expected, rel=1e-6)


def test_kd_loss_limits():
    s, y = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    assert kd_loss(s, s, y, 0.0, 3.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(s, torch.randn(4, 5), y, 1.0).item() == pytest.approx(
        torch.nn.functional.cross_entropy(s, y).item())
    with pytest.raises(UserError):
        kd_loss(s, s, y, alpha=1.5)
