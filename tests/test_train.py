import os
from pathlib import Path

import pytest
import torch

from prunefuse import data, models
from prunefuse.errors import UserError
from prunefuse.flops import count, count_arch
from prunefuse.io import checkpoint
from prunefuse.io.storage import write_text
from prunefuse.train import TrainConfig, fit, predict
from prunefuse.train.schedule import make_scheduler, piecewise_factor


def _fit_digits(seed, epochs=2):
    torch.manual_seed(seed)
    train = data.load("digits", "train")
    model = models.create("preact8", 10, 1, 8)
    result = fit(model, train, TrainConfig(epochs=epochs, batch_size=64, seed=seed, schedule="onecycle", device="cpu"),
                 data.load("digits", "test"), quiet=True)
    return model, result


def test_training_learns_and_is_deterministic_on_cpu():
    a, ra = _fit_digits(0, epochs=6)
    b, _ = _fit_digits(0, epochs=6)
    assert ra.test_accuracy > 0.85
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    c, _ = _fit_digits(1, epochs=1)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_fashion_mnist_subset_integration(fashion_subset, tmp_path):
    train, test = fashion_subset
    torch.manual_seed(0)
    model = models.create("preact8", 10, 1, 28)
    metrics = tmp_path / "metrics.jsonl"
    r = fit(model, train, TrainConfig(epochs=4, batch_size=64, schedule="onecycle"), test, metrics_path=metrics,
            quiet=True)
    assert r.test_accuracy > 0.55
    lines = metrics.read_text().splitlines()
    assert len(lines) == 4 and '"test_accuracy"' in lines[-1]
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]


def test_shuffle_tiles_reaches_the_batches_of_a_grid_dataset(monkeypatch):
    """``shuffle_tiles`` must reach a grid dataset's training batches, and only when asked for (what the
    batches then hold is tested with ``shuffle_tiles`` itself)."""
    from prunefuse.data.batching import TensorBatches
    from prunefuse.data.dataset import Dataset
    from prunefuse.train import engine

    tiles = []

    class Recording(TensorBatches):
        def __init__(self, *args, **kwargs):
            tiles.append(kwargs.get("tiles", 1))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(engine, "TensorBatches", Recording)
    g = torch.Generator().manual_seed(0)
    grids = Dataset(torch.randint(0, 256, (16, 1, 56, 56), dtype=torch.uint8, generator=g),
                    torch.randint(0, 2, (16, 10), generator=g), [f"has {c}" for c in range(10)],
                    "fashion-mnist-grid", "train")
    for shuffle in (True, False):
        fit(models.create("lenet5", 10, 1, 56), grids, TrainConfig(epochs=1, batch_size=8, shuffle_tiles=shuffle,
                                                                   device="cpu"), quiet=True)
    assert tiles == [2, 1]


def test_piecewise_schedule_matches_reference():
    assert piecewise_factor(0, 181) == 0.1
    assert piecewise_factor(1, 181) == 1.0 and piecewise_factor(90, 181) == 1.0
    assert piecewise_factor(91, 181) == 0.1 and piecewise_factor(135, 181) == 0.1
    assert piecewise_factor(136, 181) == 0.01 and piecewise_factor(3620, 3620) == 0.01
    assert piecewise_factor(19, 3620) == 0.1 and piecewise_factor(20, 3620) == 1.0  # 3620 = 20 x 181
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = make_scheduler("piecewise", opt, 181)
    lrs = []
    for _ in range(181):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01) and lrs[1] == pytest.approx(0.1) and lrs[90] == pytest.approx(0.1)
    assert lrs[91] == pytest.approx(0.01) and lrs[136] == pytest.approx(0.001)


def test_label_smoothing_and_bad_config():
    with pytest.raises(UserError, match="schedule"):
        TrainConfig(schedule="exponential")
    with pytest.raises(UserError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.5)


def test_predict_features_match_model():
    torch.manual_seed(0)
    model = models.create("preact8", 10, 1, 8).eval()
    images = torch.randint(0, 255, (5, 1, 8, 8), dtype=torch.uint8)
    norm = data.Normalizer([0.5], [0.25])
    logits, feats = predict(model, images, norm, batch_size=2, with_features=True)
    x = norm(images).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(logits, model(x), atol=1e-5)
        assert torch.allclose(feats, model.forward_features(x), atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal a CPU-only machine gives")
def test_predict_runs_where_it_is_told():
    model = models.create("preact8", 10, 1, 8)
    images = torch.randint(0, 255, (3, 1, 8, 8), dtype=torch.uint8)
    norm = data.Normalizer([0.5], [0.25])
    assert predict(model, images, norm, device="auto").device.type == "cpu"  # the answer always comes back to the CPU
    with pytest.raises(UserError, match="CUDA is not available"):  # a named device is honoured, not ignored
        predict(model, images, norm, device="cuda")


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(0)
    model = models.create("preact8", 10, 1, 8)
    spec = checkpoint.model_spec("preact8", 10, (1, 8, 8))
    checkpoint.save(tmp_path / "model", model, {**spec, "dataset": "digits"})
    loaded, meta = checkpoint.load_model(tmp_path)
    assert meta["dataset"] == "digits"
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    other = models.create("preact14", 10, 1, 8)
    state, _ = checkpoint.read(tmp_path / "model")
    with pytest.raises(UserError, match="does not fit this model"):
        checkpoint.load_into(other, state)
    wider = models.create("preact8", 10, 1, 8, width=2.0)
    with pytest.raises(UserError, match=r"shape conv1.weight: checkpoint \(16, 1, 3, 3\) vs model \(32, 1, 3, 3\)"):
        checkpoint.load_into(wider, state)


def test_corrupt_checkpoint_is_reported(tmp_path):
    model = models.create("lenet5", 10, 1, 8)
    checkpoint.save(tmp_path / "model", model, checkpoint.model_spec("lenet5", 10, (1, 8, 8)))
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(UserError, match="not a readable safetensors"):
        checkpoint.load_model(tmp_path / "model")


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o277, 0o400)])
def test_an_atomically_written_file_gets_the_mode_the_users_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_text(tmp_path / "results.json", "{}")
        checkpoint.save(tmp_path / "model", models.create("lenet5", 2, 1, 8), {})  # safetensors writes 0600
    finally:
        os.umask(old)
    for name in ("results.json", "model.safetensors", "model.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_a_file_that_cannot_be_written_is_a_one_line_error(tmp_path):
    (tmp_path / "a_file").write_text("x")
    for path in (tmp_path / "a_file" / "results.json", Path("/proc/prunefuse.csv")):  # /proc refuses even root
        with pytest.raises(UserError, match=f"{path}: cannot write it"):
            write_text(path, "{}")


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "state.json"
    write_text(target, "old")

    class Boom(Exception):
        pass

    from prunefuse.io.storage import atomic_write

    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(target, failing)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_flops_hand_count():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1, bias=False), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 5 * 5, 3))
    c = count(net, (1, 5, 5))
    assert c["macs"] == 2 * 9 * 25 + 50 * 3 and c["flops"] == 2 * c["macs"]
    assert c["params"] == 18 + 150 + 3


def test_flops_preact56_on_meta_matches_analytic_count():
    c = count_arch("preact56", (3, 32, 32), 10)
    # 3x3 convs: stem + 18 per stage at 32/16/8 px; 1x1 projections; classifier.
    stem = 3 * 16 * 9 * 32 * 32
    stage1 = 18 * 16 * 16 * 9 * 32 * 32
    stage2 = (16 * 32 * 9 + 17 * 32 * 32 * 9) * 16 * 16
    stage3 = (32 * 64 * 9 + 17 * 64 * 64 * 9) * 8 * 8
    projections = 16 * 32 * 16 * 16 + 32 * 64 * 8 * 8
    assert c["macs"] == stem + stage1 + stage2 + stage3 + projections + 64 * 10


def test_narrow_strided_shortcuts_train_in_nchw_on_the_cpu():
    """torch 2.13's channels_last CPU backward of a 1x1 stride-2 convolution with 2-7 input channels has
    aborted the process (BENCHMARKS.md, issue 8): a pruned network with such a shortcut trains in NCHW,
    the dense one in channels_last."""
    from prunefuse.pruning import prune
    from prunefuse.train.runtime import channels_last_hazard

    torch.manual_seed(0)
    dense = models.create("preact8", 10, 1, 8)
    pruned, _ = prune(models.create("preact8", 10, 1, 8), 0.7, torch.zeros(1, 1, 8, 8))
    assert channels_last_hazard(pruned) == "layer2.0.shortcut" and channels_last_hazard(dense) is None
    train = data.load("digits", "train").subset(torch.arange(128))
    config = TrainConfig(epochs=1, batch_size=64, device="cpu")
    fit(pruned, train, config, quiet=True)
    fit(dense, train, config, quiet=True)
    assert pruned.layer1[0].conv1.weight.is_contiguous()
    assert not dense.layer1[0].conv1.weight.is_contiguous()  # channels_last
