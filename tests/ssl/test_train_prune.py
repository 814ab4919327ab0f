"""NT-Xent against a loop over anchors, the split protocol, seeded training, encoder files, pruning and the probe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rote.core.errors import ConfigError, DataError
from rote.core.hooks import capture
from rote.ssl.prune import choose_units, linear_probe, pruned_copy
from rote.ssl.train import (
    build_encoder,
    check_splits,
    load_encoder,
    make_splits,
    nt_xent,
    save_encoder,
    train_simclr,
    train_supervised,
)


def test_nt_xent_equals_a_loop_over_anchors():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    tau = 0.5
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(8):
        pos = (i + 4) % 8
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(8) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[pos]) / tau) / den)
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(total / 8, rel=1e-5)
    with pytest.raises(DataError):
        nt_xent(z1[:1], z2[:1])


def test_splits_are_disjoint_seeded_and_checked():
    sp = make_splits(100, 10, 15, n_shared=50, seed=3)
    assert (len(sp.shared), len(sp.candidate), len(sp.independent)) == (50, 10, 15)
    assert not set(sp.candidate) & set(sp.independent) and not set(sp.shared) & set(sp.candidate)
    assert set(sp.train_positions("f")) == set(sp.shared) | set(sp.candidate)
    assert set(sp.train_positions("g")) == set(sp.shared) | set(sp.independent)
    assert make_splits(100, 10, 15, seed=3).candidate.tolist() == sp.candidate.tolist()
    with pytest.raises(DataError, match="`candidate` and `independent` share 1 point"):
        check_splits([0, 1], [2, 3], [3, 4])
    with pytest.raises(DataError, match="cannot hold"):
        make_splits(20, 10, 15)
    with pytest.raises(DataError, match="at least 2"):
        check_splits([0], [1], [2])


def _tiny_images(n=24):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_simclr_and_supervised_training_are_seeded(tmp_path):
    x = _tiny_images()
    runs = []
    for _ in range(2):
        m = build_encoder("resnet9", 1, width=2, image_size=8, seed=0)
        hist = train_simclr(m, x, epochs=2, batch_size=8, seed=1)
        runs.append((m.state_dict(), hist))
    for k, v in runs[0][0].items():
        assert torch.equal(v, runs[1][0][k]), k
    assert len(runs[0][1]) == 2 and np.isfinite(runs[0][1][-1]["loss"])
    sup = build_encoder("resnet9", 1, width=2, image_size=8, num_classes=3)
    hist = train_supervised(sup, x, torch.arange(24) % 3, epochs=1, batch_size=8)
    assert hist[0]["loss"] > 0
    with pytest.raises(ConfigError, match="`epochs`"):
        train_simclr(m, x, epochs=0)


def test_encoder_file_round_trip(tmp_path):
    spec = {"arch": "resnet9", "in_channels": 1, "width": 2, "image_size": 8, "seed": 4}
    m = build_encoder(**spec)
    save_encoder(tmp_path / "encoder.pt", m, spec, {"role": "f", "candidate_ids": [1, 2]})
    e = load_encoder(tmp_path)  # the run folder holding encoder.pt
    assert e.arch == spec and e.info["candidate_ids"] == [1, 2]
    for k, v in m.state_dict().items():
        assert torch.equal(v, e.model.state_dict()[k])
    with pytest.raises(DataError, match="`g` .*no such encoder file"):
        load_encoder(tmp_path / "nothing.pt", name="g")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="`f` .*junk.pt"):
        load_encoder(tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match="`arch`"):
        build_encoder("resnet50", 3)


def test_choose_units_rules():
    v = np.array([0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])
    assert choose_units(v, 0.2, "top").tolist() == [1, 6]
    assert choose_units(v, 0.2, "bottom").tolist() == [0, 9]
    r = choose_units(v, 0.3, "random", seed=1)
    assert len(set(r.tolist())) == 3 and r.tolist() == choose_units(v, 0.3, "random", seed=1).tolist()
    assert choose_units(v, 0.2, "none").size == 0
    with pytest.raises(ConfigError, match="`rule`"):
        choose_units(v, 0.2, "largest")


def test_pruned_units_output_zero_and_the_original_is_untouched():
    m = build_encoder("resnet9", 1, width=2, image_size=8, seed=0).eval()
    x = _tiny_images(4)
    values = {"conv2": np.arange(4.0), "res2.conv2": np.arange(16.0)}
    net, chosen = pruned_copy(m, values, 0.25, "top")
    assert chosen == {"conv2": [3], "res2.conv2": [12, 13, 14, 15]}
    acts = capture(net, ["conv2", "res2.conv2"], x)
    assert torch.all(acts["conv2"][:, 3] == 0) and torch.all(acts["res2.conv2"][:, 12:] == 0)
    assert acts["conv2"][:, :3].abs().sum() > 0
    assert capture(m, "conv2", x)["conv2"][:, 3].abs().sum() > 0  # a copy was pruned


def test_linear_probe_on_separable_features():
    class Ident(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def features(self, x):
            return x.flatten(1)

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    x = np.clip(0.5 + 0.3 * (2 * y - 1)[:, None] + 0.05 * rng.normal(size=(80, 4)), 0, 1)
    xt = torch.tensor(x, dtype=torch.float32).view(80, 1, 2, 2)
    assert linear_probe(Ident(), xt[:40], y[:40], xt[40:], y[40:]) == 1.0
    with pytest.raises(DataError, match="two classes"):
        linear_probe(Ident(), xt[:40], np.zeros(40), xt[40:], y[40:])
