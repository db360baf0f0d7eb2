import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunefuse import models
from prunefuse.errors import UserError
from prunefuse.pruning import ChannelMap, fuse, materialize, prune
from prunefuse.pruning.channel_map import dense_shape, mapped_layers

SIZE = 16


def _model(arch, seed=0):
    torch.manual_seed(seed)
    return models.create(arch, 10, 3, SIZE).eval()


def _input(n=2, seed=1):
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _train_a_little(model, steps=3):
    dtype = next(model.parameters()).dtype
    x, y = _input(8, seed=2).to(dtype), torch.arange(8) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("ratio", [0.5, 0.7])
@pytest.mark.parametrize("arch", models.names())
def test_prune_shapes_follow_the_map_and_materialize_is_exact(arch, ratio):
    dense = _model(arch)
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    pruned, cmap = prune(dense, ratio, _input(1), arch=arch)
    x = _input()
    assert pruned(x).shape == (2, 10)
    for name, module in mapped_layers(pruned).items():
        entry = cmap.layers[name]
        expect = [len(entry.out)] if entry.kind == "bn" else [len(entry.out), len(entry.inp)]
        assert dense_shape(module) == expect, name
    assert cmap.layers["classifier"].out == list(range(10))
    assert 0.2 < cmap.kept_fraction() < 0.6
    rebuilt = materialize(dense, ChannelMap.from_json(cmap.to_json()))
    assert torch.equal(pruned(x), rebuilt(x))
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())  # input untouched


def test_residual_channels_are_coupled():
    _, cmap = prune(_model("preact20"), 0.5, _input(1))
    stage = [cmap.layers[n].out for n in ("conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2")]
    assert all(s == stage[0] for s in stage)
    assert cmap.layers["layer2.0.conv2"].out == cmap.layers["layer2.0.shortcut"].out


@pytest.mark.parametrize("arch", models.names())
def test_fusion_with_zero_fill_preserves_function(arch):
    dense = _model(arch).double()
    pruned, cmap = prune(dense, 0.5, _input(1).double())
    pruned = _train_a_little(pruned)
    fused = fuse(pruned, dense, cmap, fill="zero").eval()
    for name, entry in cmap.layers.items():
        if entry.kind == "bn":
            bn = fused.get_submodule(name)
            dropped = sorted(set(range(entry.dense[0])) - set(entry.out))
            assert torch.all(bn.weight[dropped] == 0) and torch.all(bn.bias[dropped] == 0)
    x = _input(4, seed=5).double()
    assert torch.allclose(fused(x), pruned(x), atol=1e-5, rtol=0)


def test_reinit_fill_keeps_every_trained_value_and_refreshes_the_rest():
    dense = _model("preact20")
    pruned, cmap = _train_a_little(prune(dense, 0.5, _input(1))[0]), prune(dense, 0.5, _input(1))[1]
    torch.manual_seed(123)
    fused = fuse(pruned, dense, cmap, fill="reinit")
    for name, entry in cmap.layers.items():
        src, dst, orig = (m.get_submodule(name) for m in (pruned, fused, dense))
        out = torch.tensor(entry.out)
        if entry.kind == "bn":
            for attr in ("weight", "bias", "running_mean", "running_var"):
                assert torch.equal(getattr(dst, attr)[out], getattr(src, attr)), (name, attr)
            continue
        inp = torch.tensor(entry.inp)
        assert torch.equal(dst.weight[out[:, None], inp[None, :]], src.weight), name
        if entry.kind == "conv" and len(entry.out) < entry.dense[0]:
            dropped = torch.tensor(sorted(set(range(entry.dense[0])) - set(entry.out)))
            assert not torch.equal(dst.weight[dropped], orig.weight[dropped]), name  # fresh, not the old init
    init_fused = fuse(pruned, dense, cmap, fill="init")
    dropped = torch.tensor(sorted(set(range(16)) - set(cmap.layers["conv1"].out)))
    assert torch.equal(init_fused.conv1.weight[dropped], dense.conv1.weight[dropped])


def test_conv_scope_copies_only_convolutions():
    dense = _model("preact8")
    pruned, cmap = prune(dense, 0.5, _input(1))
    pruned = _train_a_little(pruned)
    fused = fuse(pruned, dense, cmap, fill="init", scope="conv")
    assert torch.equal(fused.classifier.weight, dense.classifier.weight)
    assert torch.equal(fused.bn.weight, dense.bn.weight)
    out = torch.tensor(cmap.layers["conv1"].out)
    assert torch.equal(fused.conv1.weight[out], pruned.conv1.weight)


def test_composed_maps_preserve_function():
    dense = _model("preact14").double()
    once, map1 = prune(dense, 0.4, _input(1).double())
    twice, map2 = prune(_train_a_little(once), 0.3, _input(1).double(), channel_map=map1)
    map2 = ChannelMap.from_json(map2.to_json())
    assert set(map2.layers["conv1"].out) <= set(map1.layers["conv1"].out)
    fused = fuse(twice, dense, map2, fill="zero").eval()
    x = _input(3).double()
    assert torch.allclose(fused(x), twice(x), atol=1e-5, rtol=0)
    assert materialize(dense, map2)(x).shape == twice(x).shape


def test_iterative_steps_and_global_mode_stay_exact():
    dense = _model("preact8")
    for kwargs in ({"steps": 3}, {"global_pruning": True}, {"importance": "l1"}, {"importance": "random"},
                   {"importance": "bn_scale"}):
        pruned, cmap = prune(dense, 0.5, _input(1), **kwargs)
        assert torch.equal(pruned(_input()), materialize(dense, cmap)(_input())), kwargs


def test_taylor_importance_uses_the_batch():
    dense = _model("preact8")
    x, y = _input(8), torch.arange(8) % 10
    pruned, cmap = prune(dense, 0.5, _input(1), importance="taylor", batch=(x, y))
    assert torch.equal(pruned(x), materialize(dense, cmap)(x))
    with pytest.raises(UserError, match="batch"):
        prune(dense, 0.5, _input(1), importance="taylor")


def test_l2_keeps_the_largest_filters_of_an_uncoupled_layer():
    torch.manual_seed(0)
    model = models.create("lenet5", 10, 1, 16).eval()
    with torch.no_grad():
        model.conv1.weight.copy_(torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 1, 5, 5))
        model.conv1.bias.zero_()
        model.conv2.weight.zero_()
    _, cmap = prune(model, 0.5, torch.zeros(1, 1, 16, 16))
    assert cmap.layers["conv1"].out == [3, 4, 5]


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_ratio_out_of_range(ratio):
    with pytest.raises(UserError, match=r"out of range.*\(0, 1\)"):
        prune(_model("preact8"), ratio, _input(1))


def test_map_from_another_architecture_is_refused():
    _, cmap = prune(_model("preact8"), 0.5, _input(1), arch="preact8")
    with pytest.raises(UserError, match="does not fit"):
        materialize(_model("preact14"), cmap)
    with pytest.raises(UserError, match="does not fit"):
        fuse(_model("preact8"), models.create("preact8", 10, 3, SIZE, width=2.0), cmap)


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.classifier = nn.Linear(4, 2)

    def forward(self, batch):
        image, mask = batch  # wants a pair, which the tracer's single example tensor is not
        return self.classifier((self.conv(image) * mask).mean((2, 3)))


def test_untraceable_model_gives_a_clear_error():
    with pytest.raises(UserError, match="dependency graph cannot trace"):
        prune(Untraceable(), 0.5, _input(1))


def test_bn_scale_needs_batch_norm():
    with pytest.raises(UserError, match="BatchNorm"):
        prune(models.create("lenet5", 10, 3, SIZE), 0.5, _input(1), importance="bn_scale")


def test_a_ratio_that_would_empty_a_layer_is_refused_not_left_unpruned():
    from prunefuse.flops import count

    model, x = models.create("preact8", 10, 3, 8), torch.zeros(1, 3, 8, 8)
    with pytest.raises(UserError, match=r"none of the 16 channels of conv1.*at most 0\.9375"):
        prune(model, 0.95, x)
    highest, _ = prune(model, 0.9375, x)
    rounded, _ = prune(model, 0.95, x, round_to=1)  # the nearest multiple of one, at least one
    assert count(rounded, (3, 8, 8))["flops"] <= count(highest, (3, 8, 8))["flops"] < count(model, (3, 8, 8))["flops"]
