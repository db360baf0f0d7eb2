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


def agreement_and_kl(student, teacher, data, normalizer):
    from prunefuse.train import predict

    zs = predict(student, data.images, normalizer)
    zt = predict(teacher, data.images, normalizer)
    kl = torch.nn.functional.kl_div(zs.log_softmax(1), zt.log_softmax(1), reduction="batchmean", log_target=True)
    return float((zs.argmax(1) == zt.argmax(1)).float().mean()), float(kl)


def test_fit_with_a_teacher_leaves_it_unchanged_and_moves_the_student_toward_it():
    """KD through the engine: the teacher's weights and statistics are untouched, and a student trained on
    the teacher's soft labels alone ends closer to it than the same student trained on the labels."""
    from prunefuse import data, models
    from prunefuse.data import Normalizer
    from prunefuse.train import TrainConfig, fit

    train = data.load("digits", "train")
    normalizer = Normalizer(*train.channel_stats())
    torch.manual_seed(0)
    teacher = models.create("preact8", 10, 1, 8)
    fit(teacher, train, TrainConfig(epochs=1, batch_size=64, schedule="onecycle", seed=1), normalizer=normalizer,
        quiet=True)  # a weak teacher, so that imitating it differs from fitting the labels
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    torch.manual_seed(2)
    init = models.create("preact8", 10, 1, 8).state_dict()
    students = {}
    for name, alpha in (("kd", 0.0), ("labels", 1.0)):
        student = models.create("preact8", 10, 1, 8)
        student.load_state_dict(init)
        config = TrainConfig(epochs=4, batch_size=64, schedule="onecycle", seed=3, kd_alpha=alpha, kd_temperature=2.0)
        fit(student, train, config, normalizer=normalizer, teacher=teacher, quiet=True)
        students[name] = agreement_and_kl(student, teacher, train, normalizer)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert students["kd"][1] < students["labels"][1]
    assert students["kd"][0] > students["labels"][0]


def test_decayed_kd_weight_rises_to_the_labels():
    from prunefuse.train import TrainConfig
    from prunefuse.train.engine import kd_alpha

    config = TrainConfig(kd_alpha=0.2, kd_schedule="decay")
    assert kd_alpha(config, 0, 100) == pytest.approx(0.2) and kd_alpha(config, 50, 100) == pytest.approx(0.6)
    assert kd_alpha(config, 100, 100) == pytest.approx(1.0)
    assert kd_alpha(TrainConfig(kd_alpha=0.2), 50, 100) == pytest.approx(0.2)


def test_binary_kd_loss_matches_closed_form():
    from prunefuse.train.distill import binary_kd_loss

    s, t, y = torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 0.0]]), torch.tensor([[1, 0]])
    T, alpha = 2.0, 0.3

    def sig(v):
        return 1 / (1 + math.exp(-v))

    bce = (-math.log(sig(1.0)) - math.log(1 - sig(-2.0))) / 2
    kl = sum(p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
             for p, q in ((sig(3.0 / T), sig(1.0 / T)), (sig(0.0), sig(-2.0 / T)))) / 2
    assert binary_kd_loss(s, t, y, alpha, T).item() == pytest.approx(alpha * bce + (1 - alpha) * T * T * kl, rel=1e-5)


def test_binary_kd_loss_limits():
    from prunefuse.train.distill import binary_kd_loss

    s, y = torch.randn(4, 3), torch.randint(0, 2, (4, 3))
    assert binary_kd_loss(s, s, y, 0.0, 3.0).item() == pytest.approx(0.0, abs=1e-6)
    assert binary_kd_loss(s, torch.randn(4, 3), y, 1.0).item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(s, y.float()).item())
    assert binary_kd_loss(s, s + 1, y, 0.0).item() > 0
