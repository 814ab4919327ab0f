"""Training: DP-SGD's per-sample gradients and clipping against a per-example loop, the DeMem penalty against a
hand computation, determinism, NaN stops with the last good checkpoint, mismatched label spaces are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rote.adversarial.train import (
    AttackConfig,
    DeMemConfig,
    DPConfig,
    TrainConfig,
    clip_and_sum,
    per_sample_grads,
    per_sample_objective,
    train_classifier,
)
from rote.core.errors import ConfigError, DataError, RoteError
from rote.nets import SmallCNN


@pytest.fixture(scope="module")
def tiny():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (40,), generator=g)
    return x, y


def test_per_sample_gradients_and_clipping_equal_a_per_example_loop():
    from torch.func import functional_call

    model = SmallCNN(1, 3, image_size=8, width=2, hidden=8, seed=1)
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 1, 0])

    def loss_one(params, xi, yi):
        return F.cross_entropy(functional_call(model, params, (xi[None],)), yi[None])

    grads = per_sample_grads(model, loss_one, x, y)
    clip = 0.05
    summed, norms = clip_and_sum(grads, clip)
    want = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(y)):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        g = {n: p.grad.clone() for n, p in model.named_parameters()}
        for n in g:
            assert torch.allclose(grads[n][i], g[n], atol=1e-6)
        norm = torch.sqrt(sum((v**2).sum() for v in g.values()))
        assert norms[i] == pytest.approx(float(norm), rel=1e-5)
        for n in g:
            want[n] += g[n] * min(1.0, clip / float(norm))
    for n in want:
        assert torch.allclose(summed[n], want[n], atol=1e-6)
    # every clipped gradient has norm <= clip, so the sum has norm <= B * clip
    total = torch.sqrt(sum((v**2).sum() for v in summed.values()))
    assert float(total) <= len(y) * clip + 1e-6


def test_demem_flood_penalty_hand_worked():
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.0], [3.0, 0.0]])
    y = torch.tensor([0, 0, 0])
    ce = F.cross_entropy(logits, y, reduction="none")  # 0.018, 0.693, 0.049
    cfg = TrainConfig(method="standard", demem=DeMemConfig(weight=2.0, flood=0.5, penalty="flood"))
    high = torch.tensor([True, True, False])
    loss, clean = per_sample_objective(lambda z: z, logits, None, y, high, cfg)
    # sample 0: high risk, loss below b -> ce + 2 (b - ce) = 2b - ce; sample 1: above b -> unchanged; 2: not high
    assert loss.tolist() == pytest.approx([1.0 - float(ce[0]), float(ce[1]), float(ce[2])], rel=1e-6)
    assert torch.allclose(clean, ce)
    asc = TrainConfig(method="standard", demem=DeMemConfig(weight=0.5, penalty="ascent"))
    loss, _ = per_sample_objective(lambda z: z, logits, None, y, high, asc)
    assert loss.tolist() == pytest.approx([0.5 * float(ce[0]), 0.5 * float(ce[1]), float(ce[2])], rel=1e-6)


def test_trades_objective_hand_worked():
    clean = torch.tensor([[1.0, 0.0]])
    adv = torch.tensor([[0.0, 1.0]])
    cfg = TrainConfig(method="trades", beta=2.0)
    fn = {0: clean, 1: adv}
    calls = iter([0, 1])
    loss, _ = per_sample_objective(lambda z: fn[next(calls)], clean, adv, torch.tensor([0]), None, cfg)
    p, q = F.softmax(clean, 1)[0], F.softmax(adv, 1)[0]
    kl = float((p * (p.log() - q.log())).sum())
    assert float(loss[0]) == pytest.approx(float(F.cross_entropy(clean, torch.tensor([0]))) + 2 * kl, rel=1e-6)


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(method="pgd_at", attack=AttackConfig(0.1, 0.05, 2), epochs=2, batch_size=16, width=2, hidden=8),
        TrainConfig(
            method="trades",
            attack=AttackConfig(0.1, 0.05, 2),
            epochs=2,
            batch_size=16,
            width=2,
            hidden=8,
            demem=DeMemConfig(fraction=0.2, warmup=1),
        ),
        TrainConfig(
            method="pgd_at",
            attack=AttackConfig(0.1, 0.05, 1),
            epochs=2,
            batch_size=16,
            width=2,
            hidden=8,
            dp=DPConfig(1.0, 0.5),
        ),
    ],
    ids=lambda c: c.name,
)
def test_training_is_deterministic_and_records_risk(tiny, cfg):
    x, y = tiny
    a = train_classifier(x, y, cfg, num_classes=3, seed=3)
    b = train_classifier(x, y, cfg, num_classes=3, seed=3)
    for (n, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert torch.equal(p, q), n
    assert a.clean_loss.shape == (2, 40) and np.isfinite(a.clean_loss).all()
    # risk: mean clean loss over the epochs ("trajectory", without DeMem), minus the latest one for "drop"
    want = a.clean_loss.mean(0) - (a.clean_loss[-1] if cfg.demem else 0)
    assert a.risk == pytest.approx(want, rel=1e-5, abs=1e-6)
    if cfg.demem:
        assert [h["n_high_risk"] for h in a.history] == [0, 8]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    x, y = tiny

    def poison(state, logs):
        if state.epoch == 1:
            with torch.no_grad():
                next(state.modules["model"].parameters()).fill_(float("nan"))
        return False

    cfg = TrainConfig(method="standard", epochs=3, batch_size=16, width=2, hidden=8)
    with pytest.raises(RoteError, match="diverged.*epoch-000001.pt") as err:
        train_classifier(x, y, cfg, num_classes=3, seed=0, checkpoint_dir=tmp_path, callbacks=[poison])
    assert "lower `lr`" in str(err.value)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["epoch-000001.pt"]


def test_mismatched_labels_and_bad_options_are_refused(tiny):
    x, y = tiny
    with pytest.raises(DataError, match="label spaces do not match"):
        train_classifier(x, y + 5, TrainConfig(epochs=1), num_classes=3)
    with pytest.raises(DataError, match="rows"):
        train_classifier(x, y[:5], TrainConfig(epochs=1), num_classes=3)
    with pytest.raises(ConfigError, match="`eps`"):
        AttackConfig(eps=2.0)
    with pytest.raises(ConfigError, match="`demem_fraction`"):
        DeMemConfig(fraction=0)
    with pytest.raises(ConfigError, match="`demem_penalty`"):
        DeMemConfig(penalty="x")
    with pytest.raises(ConfigError, match="`dp_clip`"):
        DPConfig(clip=0)
    with pytest.raises(ConfigError, match="`method`"):
        TrainConfig(method="mart")
