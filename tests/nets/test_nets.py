"""Shared image/tabular nets: shapes at 28 and 32 px with 1 and 3 channels, parameter counts by formula, seeding,
layer names (valid, in forward order, with the documented shapes), heads, and unit pruning."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from rote.core.errors import ConfigError
from rote.core.hooks import capture, record
from rote.nets import MLP, ResNet9, ResNet18, SmallCNN, ViT, prune_units, unit_layers

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(kind: str, c: int, s: int, **kw) -> nn.Module:
    """Narrow versions of every net, fast enough for CPU tests."""
    if kind == "mlp":
        return MLP(c * s * s, (32, 16), **kw)
    if kind == "cnn":
        return SmallCNN(c, image_size=s, width=4, hidden=16, **kw)
    if kind == "resnet9":
        return ResNet9(c, width=4, **kw)
    if kind == "resnet18":
        return ResNet18(c, width=4, **kw)
    return ViT(c, image_size=s, dim=16, depth=2, heads=2, **kw)


KINDS = ["mlp", "cnn", "resnet9", "resnet18", "vit"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("s", [28, 32])
def test_shapes_features_and_layers(kind, c, s):
    net = small(kind, c, s).eval()
    x = torch.randn(2, c, s, s)
    with torch.no_grad():
        out, feats = net(x), net.features(x)
    assert out.shape == (2, 10) and feats.shape == (2, net.feature_dim)
    assert torch.isfinite(out).all()
    with torch.no_grad():
        torch.testing.assert_close(net.head(feats), out)
    names = net.layer_names()
    acts = capture(net, names, x)  # every layer name is a valid module name
    for n in names:
        a = acts[n]
        assert a.shape[0] == 2
        if a.dim() == 4:  # conv maps: (B, units, H, W)
            assert a.shape[1] == net.units(n)
    # layers are listed in forward order: the order in which their forward calls finish is the same
    order = []
    with record(net, names, sink=lambda name, t: order.append(name)), torch.no_grad():
        net(x)
    assert order == names


def test_documented_layer_shapes_resnet9_resnet18_vit():
    x = torch.randn(1, 3, 32, 32)
    r9 = ResNet9(3, width=4)
    shapes = {n: tuple(t.shape[1:]) for n, t in capture(r9.eval(), r9.layer_names(), x).items()}
    assert shapes == {
        "conv1": (4, 32, 32),
        "conv2": (8, 16, 16),
        "res1.conv1": (8, 16, 16),
        "res1.conv2": (8, 16, 16),
        "conv3": (16, 8, 8),
        "conv4": (32, 4, 4),
        "res2.conv1": (32, 4, 4),
        "res2.conv2": (32, 4, 4),
    }
    x28 = torch.randn(1, 1, 28, 28)
    assert capture(ResNet9(1, width=4).eval(), ["conv4"], x28)["conv4"].shape == (1, 32, 3, 3)
    r18 = ResNet18(3, width=4)
    assert r18.layer_names() == ["stem"] + [f"layer{i}.{j}" for i in range(1, 5) for j in (0, 1)]
    a = capture(r18.eval(), ["layer2.1", "layer4.1"], x)
    assert a["layer2.1"].shape == (1, 8, 16, 16) and a["layer4.1"].shape == (1, 32, 4, 4)
    vit = ViT(3, image_size=32, dim=16, depth=3, heads=2)
    assert vit.layer_names() == ["blocks.0", "blocks.1", "blocks.2"]
    assert capture(vit.eval(), ["blocks.2"], x)["blocks.2"].shape == (1, 65, 16)  # 64 patches + class token


def _conv(cin, cout, k, bias):
    return cin * cout * k * k + (cout if bias else 0)


def test_parameter_counts_by_formula():
    bn = 2  # a BatchNorm has a scale and a shift per channel
    w = 64
    r9 = (
        _conv(3, w, 3, False)
        + _conv(w, 2 * w, 3, False)
        + 2 * _conv(2 * w, 2 * w, 3, False)
        + _conv(2 * w, 4 * w, 3, False)
        + _conv(4 * w, 8 * w, 3, False)
        + 2 * _conv(8 * w, 8 * w, 3, False)
        + bn * (w + 2 * w + 2 * 2 * w + 4 * w + 8 * w + 2 * 8 * w)
        + 8 * w * 10
        + 10
    )
    assert ResNet9().n_params() == r9 == 6_573_130
    assert ResNet18().n_params() == 11_173_962  # the usual CIFAR ResNet18 figure
    assert MLP(784, (256, 128)).n_params() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    cnn = _conv(1, 32, 3, True) + _conv(32, 64, 3, True) + 64 * 7 * 7 * 256 + 256 + 256 * 10 + 10
    assert SmallCNN().n_params() == cnn
    d, depth, hid, n = 192, 6, 384, 64
    block = 2 * 2 * d + 3 * d * d + 3 * d + d * d + d + d * hid + hid + hid * d + d
    vit = (3 * 16 * d + d) + d + (n + 1) * d + depth * block + 2 * d + d * 10 + 10
    assert ViT().n_params() == vit
    assert 1e6 < vit < 3e6


@pytest.mark.parametrize("kind", KINDS)
def test_seed_fixes_weights_and_leaves_global_rng_alone(kind):
    torch.manual_seed(7)
    before = torch.get_rng_state().clone()
    a, b, c = small(kind, 3, 32, seed=1), small(kind, 3, 32, seed=1), small(kind, 3, 32, seed=2)
    assert torch.equal(torch.get_rng_state(), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize("kind", KINDS)
def test_heads_and_every_parameter_trains(kind):
    x = torch.randn(4, 3, 32, 32)
    enc = small(kind, 3, 32, num_classes=None)
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(x), enc.features(x))  # no head: forward = features
    simclr = small(kind, 3, 32, num_classes=None, projection_dim=8).train()
    z = simclr(x)
    assert z.shape == (4, 8)
    z.pow(2).sum().backward()
    missing = [n for n, p in simclr.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []  # no dead parameters: every one is on the forward path
    with pytest.raises(ConfigError, match="one head"):
        small(kind, 3, 32, num_classes=10, projection_dim=8)


def test_prune_units_zeroes_filters_in_train_and_eval_mode():
    x = torch.randn(3, 3, 32, 32)
    net = ResNet9(3, width=4)
    prune_units(net.conv2, [1, 5])
    assert unit_layers(net, ["conv2", "res2.conv2"]) == {"conv2": 8, "res2.conv2": 32}
    for mode in (net.train, net.eval):
        mode()
        a = capture(net, ["conv2", "conv1"], x)
        assert torch.equal(a["conv2"][:, [1, 5]], torch.zeros(3, 2, 16, 16))
        assert a["conv2"][:, [0, 2, 3]].abs().sum() > 0 and a["conv1"].abs().sum() > 0
    # residual block: the pruned units carry only the skip connection
    r18 = ResNet18(3, width=4).eval()
    prune_units(r18.get_submodule("layer1.1"), [2])
    a = capture(r18, ["layer1.0", "layer1.1"], x)
    torch.testing.assert_close(a["layer1.1"][:, 2], torch.relu(a["layer1.0"][:, 2]))
    cnn, mlp = SmallCNN(3, image_size=32, width=4, hidden=8), MLP(3 * 32 * 32, (6,))
    prune_units(cnn.conv1, [0])
    prune_units(mlp.fc1, torch.tensor([3]))
    assert torch.equal(capture(cnn, ["conv1"], x)["conv1"][:, 0], torch.zeros(3, 16, 16))
    assert torch.equal(capture(mlp, ["fc1"], x)["fc1"][:, 3], torch.zeros(3))
    with pytest.raises(ConfigError, match="has 8 units"):
        prune_units(net.conv2, [8])
    with pytest.raises(ConfigError, match="no Conv or Linear"):
        prune_units(nn.ReLU(), [0])


def test_input_and_config_errors():
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        ViT(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match="expected 32x32"):
        ViT(dim=16, depth=1, heads=2)(torch.randn(1, 3, 28, 28))
    with pytest.raises(ConfigError, match="activation"):
        MLP(10, activation="swish")
    with pytest.raises(ConfigError, match="kernel_size"):
        SmallCNN(kernel_size=4)
    with pytest.raises(ConfigError, match="num_classes=0"):
        ResNet9(num_classes=0)
