import pytest
import torch

from prunefuse import models
from prunefuse.errors import UserError


@pytest.mark.parametrize("arch", models.names())
def test_every_model_splits_features_and_head(arch):
    torch.manual_seed(0)
    size = 16
    model = models.create(arch, 7, 1, size).eval()
    x = torch.randn(3, 1, size, size)
    feats = model.forward_features(x)
    assert feats.dim() == 2 and feats.shape[0] == 3
    assert feats.shape[1] == model.classifier.in_features
    assert torch.allclose(model.forward_head(feats), model(x))
    assert model(x).shape == (3, 7)


@pytest.mark.parametrize("arch,size", [("preact20", 28), ("lenet5", 8), ("vgg11", 8), ("resnet18", 64)])
def test_input_sizes(arch, size):
    assert models.create(arch, 10, 3, size).eval()(torch.randn(1, 3, size, size)).shape == (1, 10)


def test_depths_and_projection_shortcuts():
    def convs(m):
        return [n for n, mod in m.named_modules() if isinstance(mod, torch.nn.Conv2d) and "shortcut" not in n]
    assert len(convs(models.create("preact20", 10))) == 19  # 18 block convs + stem; +classifier = 20 layers
    assert len(convs(models.create("preact56", 10))) == 55
    shortcuts = [n for n, _ in models.create("preact20", 10).named_modules() if n.endswith("shortcut")]
    assert shortcuts == ["layer2.0.shortcut", "layer3.0.shortcut"]


def test_width_multiplier_and_bad_arch():
    assert models.create("preact8", 10, width=2.0).conv1.out_channels == 32
    with pytest.raises(UserError, match="unknown architecture"):
        models.create("resnet9000", 10)
    with pytest.raises(UserError, match="too small"):
        models.create("preact8", 10, image_size=4)
