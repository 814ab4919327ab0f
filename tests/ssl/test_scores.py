"""SSLMem / LayerMem / UnitMem / ClassMem against direct loops over points, views, layers and units."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from rote.core.errors import ConfigError, DataError
from rote.data.augment import simclr_augment
from rote.nets import ResNet9, ResNet18
from rote.ssl.scores import (
    OUTPUT,
    breakdown,
    check_images,
    classmem,
    layer_consistency,
    layermem,
    point_selectivity,
    selectivity,
    sslmem,
    unitmem,
    unitmem_sslmem_ttest,
)

LAYERS = ["conv1", "conv2", "res1.conv1", "res1.conv2", "conv3", "conv4", "res2.conv1", "res2.conv2"]


def _net(seed: int, width: int = 2) -> ResNet9:
    return ResNet9(1, None, width=width, projection_dim=4, seed=seed).eval()


def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


class Recorder:
    """An augmentation that remembers every batch of views it produced, in order."""

    def __init__(self):
        self.views: list[torch.Tensor] = []

    def __call__(self, x, gen):
        v = simclr_augment(x, generator=gen)
        self.views.append(v.clone())
        return v


def _manual_layers(net: ResNet9, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every ResNet9 layer output by calling the blocks one after another on ONE image (no hooks)."""
    with torch.no_grad():
        out = {}
        h = out["conv1"] = net.conv1(x)
        h = out["conv2"] = net.conv2(h)
        a = out["res1.conv1"] = net.res1.conv1(h)
        b = out["res1.conv2"] = net.res1.conv2(a)
        h = out["conv3"] = net.conv3(h + b)
        h = out["conv4"] = net.conv4(h)
        a = out["res2.conv1"] = net.res2.conv1(h)
        b = out["res2.conv2"] = net.res2.conv2(a)
        out[OUTPUT] = net.pool(h + b)
    return out


def _unit(v: torch.Tensor) -> np.ndarray:
    z = v.flatten().double().numpy()
    return z / np.linalg.norm(z)


def test_layermem_equals_a_loop_over_points_views_and_layers():
    f, g, x = _net(0), _net(1), _images(6)
    rec = Recorder()
    res = layermem(f, g, x, [*LAYERS, OUTPUT], n_aug=3, augment=rec, seed=3, batch_size=4)
    # views of batch b, draw j: rec.views[b * 3 + j] (two batches: 4 + 2 points)
    raw = {n: np.zeros(6) for n in [*LAYERS, OUTPUT]}
    for i in range(6):
        b, r = divmod(i, 4)
        for net, sign in ((g, 1.0), (f, -1.0)):
            orig = _manual_layers(net, x[i : i + 1])
            for j in range(3):
                view = _manual_layers(net, rec.views[b * 3 + j][r : r + 1])
                for n in raw:
                    raw[n][i] += sign * np.linalg.norm(_unit(orig[n]) - _unit(view[n])) / 3
    for n in raw:
        np.testing.assert_allclose(res.raw[n].to_numpy(), raw[n], atol=2e-6)
        np.testing.assert_allclose(res.scores[n].to_numpy(), raw[n] / np.ptp(raw[n]), atol=1e-4)
    lm = res.layermem
    assert lm["conv1"] == pytest.approx(res.scores["conv1"].mean())
    assert res.delta["conv2"] == pytest.approx(lm["conv2"] - lm["conv1"])
    assert res.delta["conv1"] == lm["conv1"]


def test_paper_pairs_and_several_models_average_as_a_loop():
    fs, gs, x = [_net(0), _net(2)], [_net(1)], _images(3)
    rec = Recorder()
    res = layermem(fs, gs, x, ["conv2"], n_aug=2, pair="aug_vs_aug", normalize="none", augment=rec, seed=0)
    # pairs: (views 0, 1) and (2, 3) of the single batch
    want = np.zeros(3)
    for i in range(3):
        for nets, sign in ((gs, 1.0), (fs, -1.0)):
            for net in nets:
                for a, b in ((0, 1), (2, 3)):
                    za = _unit(_manual_layers(net, rec.views[a][i : i + 1])["conv2"])
                    zb = _unit(_manual_layers(net, rec.views[b][i : i + 1])["conv2"])
                    want[i] += sign * np.linalg.norm(za - zb) / 2 / len(nets)
    np.testing.assert_allclose(res.scores["conv2"].to_numpy(), want, atol=2e-6)


def test_single_pass_equals_one_pass_per_layer_exactly():
    f, g, x = _net(0, 3), _net(1, 3), _images(10)
    one = layermem(f, g, x, n_aug=2, seed=1, batch_size=4)
    per = layermem(f, g, x, n_aug=2, seed=1, batch_size=4, single_pass=False)
    pd.testing.assert_frame_equal(one.raw, per.raw, check_exact=True)
    pd.testing.assert_frame_equal(one.scores, per.scores, check_exact=True)
    assert one.layers == [*LAYERS, OUTPUT]


def test_sslmem_normalizations_and_ids():
    f, g, x = _net(0), _net(1), _images(8)
    raw = layermem(f, g, x, [OUTPUT], normalize="none", seed=0).scores[OUTPUT].to_numpy()
    s = sslmem(f, g, x, seed=0)
    np.testing.assert_allclose(s, raw / (raw.max() - raw.min()))
    assert np.ptp(s) == pytest.approx(1.0)
    m = sslmem(f, g, x, seed=0, normalize="minmax01")
    assert m.min() == pytest.approx(0) and m.max() == pytest.approx(1)
    res = layermem(f, g, x, ["conv1"], ids=np.arange(100, 108), seed=0)
    assert res.scores.index.tolist() == list(range(100, 108))
    assert sslmem(f, g, x, seed=5).tolist() == sslmem(f, g, x, seed=5).tolist()  # seeded


def test_selectivity_hand_worked():
    mu = np.array([[3.0, 1.0, 0.0, 4.0], [1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    val, arg = selectivity(mu, "mean")
    # unit 0: (3 - 1) / (3 + 1); unit 1: all equal -> 0; unit 2: silent (0/0) -> 0; unit 3: (4 - 1) / (4 + 1)
    np.testing.assert_allclose(val, [0.5, 0.0, 0.0, 0.6])
    assert arg.tolist() == [0, 0, 0, 0]
    val, _ = selectivity(mu, "median")
    # unit 3: others 2, 1, 0 -> median 1 -> 0.6; unit 0: others 1, 1, 1 -> 0.5
    np.testing.assert_allclose(val, [0.5, 0.0, 0.0, 0.6])
    val, _ = selectivity(np.array([[5.0], [4.0], [0.0]]), "median")  # others 4, 0 -> median 2
    np.testing.assert_allclose(val, [3 / 7])
    val, _ = selectivity(np.array([[0.0, 2.0], [1.0, 0.0]]))  # one point alone: other = 0 -> 1
    np.testing.assert_allclose(val, [1.0, 1.0])


def test_selectivity_against_a_per_unit_loop():
    rng = np.random.default_rng(0)
    mu = rng.gamma(1.0, size=(9, 7))
    for others in ("mean", "median"):
        val, arg = selectivity(mu, others)
        for u in range(7):
            col = list(mu[:, u])
            top = max(col)
            k = col.index(top)
            rest = col[:k] + col[k + 1 :]
            other = sum(rest) / len(rest) if others == "mean" else float(np.median(rest))
            assert val[u] == pytest.approx((top - other) / (top + other))
            assert arg[u] == k
    ps = point_selectivity(mu)
    for k, u in itertools.product(range(9), range(7)):
        other = (mu[:, u].sum() - mu[k, u]) / 8
        assert ps[k, u] == pytest.approx((mu[k, u] - other) / (mu[k, u] + other))
    np.testing.assert_allclose(ps.max(0), selectivity(mu)[0])


def test_unitmem_equals_a_loop_over_points_views_and_channels():
    net, x = _net(0, 3), _images(5)
    rec = Recorder()
    res = unitmem(net, x, ["conv2", "res2.conv2"], n_aug=2, augment=rec, seed=0, batch_size=8, ids=[7, 8, 9, 10, 11])
    for layer in ("conv2", "res2.conv2"):
        units = res.values[layer].shape[0]
        mu = np.zeros((5, units))
        for i in range(5):
            for j in range(2):
                act = _manual_layers(net, rec.views[j][i : i + 1])[layer][0]  # (C, H, W)
                for u in range(units):
                    mu[i, u] += float(act[u].double().mean()) / 2
        np.testing.assert_allclose(res.mu[layer], mu, rtol=1e-5, atol=1e-7)
        for u in range(units):
            k = int(np.argmax(mu[:, u]))
            other = np.delete(mu[:, u], k).mean()
            want = 0.0 if mu[k, u] + other == 0 else (mu[k, u] - other) / (mu[k, u] + other)
            assert res.values[layer][u] == pytest.approx(want, abs=1e-5)
            assert res.argmax[layer][u] == [7, 8, 9, 10, 11][k]
    assert res.table().units.tolist() == [6, 24]


def test_classmem_is_selectivity_over_class_means():
    net, x = _net(0), _images(6)
    y = np.array([0, 0, 1, 1, 2, 2])
    res = classmem(net, x, y, ["conv1"])
    act = np.stack([_manual_layers(net, x[i : i + 1])["conv1"][0].double().mean((1, 2)).numpy() for i in range(6)])
    means = np.stack([act[y == c].mean(0) for c in range(3)])
    np.testing.assert_allclose(res.mu["conv1"], means, rtol=1e-5)
    np.testing.assert_allclose(res.values["conv1"], selectivity(means)[0], rtol=1e-5)


def test_breakdown_and_consistency_by_hand():
    scores = pd.DataFrame({"a": [0.1, 0.4, 0.2, 0.9, 0.5, 0.0], "b": [0.0, 0.3, 0.1, 0.8, 0.7, 0.2]})
    bd = breakdown(scores, k=2, by="b", seed=0).set_index("layer")
    # by b: top = rows 3, 4 (0.8, 0.7); bottom = rows 0, 2 (0.0, 0.1)
    assert bd.loc["a", "top"] == pytest.approx((0.9 + 0.5) / 2)
    assert bd.loc["a", "bottom"] == pytest.approx((0.1 + 0.2) / 2)
    assert bd.loc["b", "bottom"] == pytest.approx((0.0 + 0.1) / 2)
    cons = layer_consistency(scores, k=2).iloc[0]
    assert cons.topk_overlap == 1.0  # top-2 of a: rows 3, 4 (0.9, 0.5); of b: rows 3, 4 (0.8, 0.7)
    assert layer_consistency(scores.assign(b=[0.0, 0.3, 0.6, 0.8, 0.7, 0.2]), k=3).iloc[0].topk_overlap == 2 / 3
    a, b = scores.a.to_numpy(), scores.b.to_numpy()
    conc = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i in range(6) for j in range(i + 1, 6))
    assert cons.kendall_tau == pytest.approx(conc / 15)  # no ties: tau = (C - D) / (n choose 2)


def test_ttest_is_welch_one_sided_on_the_best_unit_per_point():
    rng = np.random.default_rng(1)
    mu = rng.gamma(2.0, size=(12, 5))
    s = rng.normal(size=12)
    t = unitmem_sslmem_ttest(mu, s, k=4)
    per = point_selectivity(mu).max(1)
    order = np.argsort(-s)
    top, bot = per[order[:4]], per[order[-4:]]
    se = np.sqrt(top.var(ddof=1) / 4 + bot.var(ddof=1) / 4)
    tt = (top.mean() - bot.mean()) / se
    df = se**4 / ((top.var(ddof=1) / 4) ** 2 / 3 + (bot.var(ddof=1) / 4) ** 2 / 3)
    assert t["t"] == pytest.approx(tt)
    assert t["p_one_sided"] == pytest.approx(scipy.stats.t.sf(tt, df))
    # Student's pooled-variance test of the reference Ttest.py, by hand: df = 2k - 2
    st = unitmem_sslmem_ttest(mu, s, k=4, equal_var=True)
    pooled = (3 * top.var(ddof=1) + 3 * bot.var(ddof=1)) / 6
    ts = (top.mean() - bot.mean()) / np.sqrt(pooled * (1 / 4 + 1 / 4))
    assert st["t"] == pytest.approx(ts)
    assert st["p_one_sided"] == pytest.approx(scipy.stats.t.sf(ts, 6))


def test_bad_inputs_are_rote_errors_naming_the_argument():
    f, g, x = _net(0), _net(1), _images(4)
    with pytest.raises(ConfigError, match=r"`layers`.*'layer9'.*valid layers: conv1, conv2"):
        layermem(f, g, x, ["conv1", "layer9"])
    with pytest.raises(ConfigError, match="`f` and `g` are both ResNet9 but differ"):
        layermem(f, _net(1, width=3), x)
    with pytest.raises(ConfigError, match="`f` is a ResNet9 and `g` a ResNet18"):
        layermem(f, ResNet18(1, None, width=2, projection_dim=4), x)
    with pytest.raises(DataError, match=r"`images` must be a \(N, C, H, W\)"):
        layermem(f, g, x[0])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        layermem(f, g, x * 255)
    with pytest.raises(DataError, match="at least 2 points"):
        layermem(f, g, x[:1])
    with pytest.raises(DataError, match="same raw score"):
        layermem(f, f, x, ["conv1"])  # f against itself: every raw score is 0
    with pytest.raises(ConfigError, match="`pair`"):
        layermem(f, g, x, pair="both")
    with pytest.raises(DataError, match="`absolute`"):
        selectivity(np.array([[1.0], [-1.0]]))
    with pytest.raises(DataError, match="`k`=3"):
        breakdown(pd.DataFrame({"a": np.arange(5.0)}), k=3)
    assert check_images(torch.full((2, 1, 2, 2), 255, dtype=torch.uint8)).max() == 1.0


def test_token_models_score_per_feature_with_absolute_activations():
    from rote.nets import ViT

    vit = ViT(1, None, image_size=16, patch_size=4, dim=8, depth=2, heads=2, seed=0).eval()
    x = _images(4)
    with pytest.raises(DataError, match="`absolute`"):
        unitmem(vit, x, ["blocks.1"], n_aug=1)  # the residual stream is signed
    res = unitmem(vit, x, ["blocks.1"], n_aug=0, absolute=True)
    with torch.no_grad():
        acts = []
        hook = vit.blocks[1].register_forward_hook(lambda m, i, o: acts.append(o))
        vit.features(x)
        hook.remove()
    mu = acts[0].double().mean(1).abs().numpy()  # (B, T, C) -> per-feature token mean, then |.|
    np.testing.assert_allclose(res.mu["blocks.1"], mu, rtol=1e-6)
    assert res.values["blocks.1"].shape == (8,)
    assert layermem(vit, ViT(1, None, image_size=16, patch_size=4, dim=8, depth=2, heads=2, seed=1), x).layers == [
        "blocks.0",
        "blocks.1",
        OUTPUT,
    ]
