"""The MAT shift, the XRM losses and GroupDRO against brute-force loops, hand-worked cases and the paper code's
per-batch formula restated."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError, DataError
from rote.spurious.mat import (
    EPS,
    GroupDRO,
    class_balanced_loss,
    flip_probability,
    group_balanced_weights,
    mat_loss,
    mat_shift,
)


def _shift_loops(h: np.ndarray, y: np.ndarray, tau: float, k: int) -> np.ndarray:
    """Algorithm 1, one sample and one class at a time (the oracle)."""
    n = len(y)
    p = np.exp(h / tau - (h / tau).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    joint = np.zeros((k, k))
    for i in range(n):
        for kk in range(k):
            joint[y[i], kk] += p[i, kk] / n
    cond = np.zeros((k, k))
    for kk in range(k):
        for c in range(k):
            cond[c, kk] = joint[c, kk] / sum(joint[cc, kk] for cc in range(k))
    out = np.zeros((n, k))
    for i in range(n):
        for c in range(k):
            out[i, c] = math.log(sum(p[i, kk] * cond[c, kk] for kk in range(k)) + EPS)
    return out


def _paper_batch_shift(h: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """The paper code's per-batch shift (algos.py::MAT.get_shift as described in the reference notes): the joint
    over the batch with columns in the order of the sorted labels present, then the calibrated posterior."""
    p = torch.softmax(h / tau, dim=1)
    labels = torch.unique(y)  # sorted
    joint = torch.stack([p[y == c].sum(0) for c in labels]) / len(y)  # (K, K): rows y, cols yhat
    cond = joint / joint.sum(0, keepdim=True)
    return torch.log(p @ cond.T + 1e-6)


@pytest.mark.parametrize("k,tau", [(2, 0.1), (3, 1.0), (4, 0.01)])
def test_shift_matches_loops(k, tau):
    rng = np.random.default_rng(k)
    n = 40
    h = rng.normal(size=(n, k)) * 0.2
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)
    got = mat_shift(torch.tensor(h, dtype=torch.float32), torch.tensor(y), tau, k).numpy()
    want = _shift_loops(h.astype(np.float32).astype(np.float64), y, tau, k)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_shift_matches_paper_code_on_a_full_batch():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(64, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=g)
    ours = mat_shift(h, y, 0.5).double()
    np.testing.assert_allclose(ours.numpy(), _paper_batch_shift(h, y, 0.5).numpy(), rtol=1e-6, atol=1e-6)


def test_shift_hand_worked():
    # two samples, certain held-out predictions (tau -> sharp): sample 0 predicted 0 with label 0, sample 1
    # predicted 0 with label 1. Column 0 of the joint is (1/2, 1/2), column 1 gets mass exp(-100) only.
    h = torch.tensor([[10.0, 0.0], [10.0, 0.0]])
    y = torch.tensor([0, 1])
    s = mat_shift(h, y, 0.1)
    np.testing.assert_allclose(s.numpy(), np.log(np.full((2, 2), 0.5) + EPS), atol=1e-6)


def test_shift_guards_a_class_without_examples_and_underflow():
    # class 2 has no training example; its row of P(y | yhat) is 0 -> shift log(1e-6); with tau tiny the
    # softmax underflows and column 2 of the joint is 0: the prior replaces 0/0 instead of NaN.
    h = torch.tensor([[5.0, 0.0, -5.0], [0.0, 5.0, -5.0], [5.0, 0.0, -5.0]])
    y = torch.tensor([0, 1, 1])
    s = mat_shift(h, y, 0.001, n_classes=3)
    assert torch.isfinite(s).all()
    np.testing.assert_allclose(s[:, 2].numpy(), np.log(EPS), rtol=1e-6)
    # sample 0: predicted 0 certainly; P(y | yhat=0) = (1/2, 1/2, 0)
    np.testing.assert_allclose(s[0, :2].numpy(), np.log(0.5 + EPS), atol=1e-6)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_out_of_range(tau):
    with pytest.raises(ConfigError, match="`temperature` must be > 0"):
        mat_shift(torch.zeros(2, 2), torch.tensor([0, 1]), tau)


def test_shift_rejects_bad_labels():
    with pytest.raises(DataError, match="`labels` must lie in"):
        mat_shift(torch.zeros(2, 2), torch.tensor([0, 2]), 0.1)


def test_mat_loss_is_ce_of_shifted_logits_and_has_no_shift_gradient():
    logits = torch.tensor([[1.0, -1.0], [0.5, 0.2]], requires_grad=True)
    shift = torch.tensor([[0.0, -2.0], [-1.0, 0.0]], requires_grad=True)
    y = torch.tensor([1, 0])
    loss = mat_loss(logits, shift, y)
    z = np.array([[1.0, -3.0], [-0.5, 0.2]])
    want = np.mean([-(z[i, y[i]] - np.log(np.exp(z[i]).sum())) for i in range(2)])
    assert float(loss.detach()) == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert shift.grad is None


def test_class_balanced_loss_loops():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 3, generator=g)
    y = torch.tensor([0, 0, 0, 0, 1, 1, 0, 1, 0])  # class 2 absent: contributes nothing
    ce = F.cross_entropy(logits, y, reduction="none")
    want = sum(float(ce[y == c].mean()) for c in (0, 1))
    assert float(class_balanced_loss(logits, y, 3)) == pytest.approx(want, rel=1e-6)


def test_flip_probability_hand_values():
    probs = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.75, 0.25]])
    got = flip_probability(probs)
    np.testing.assert_allclose(got.numpy(), [0.0, 1.0, 0.5], atol=1e-7)
    three = torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(flip_probability(three).numpy(), [(0.5 - 1 / 3) * 3 / 2, 0.0], atol=1e-6)


def test_group_balanced_weights():
    g = torch.tensor([0, 0, 0, 1, 3])  # group 2 absent
    w = group_balanced_weights(g, 4)
    # 3 present groups, N = 5: w = 5 / (3 n_g); every present group sums to 5/3
    np.testing.assert_allclose(w.numpy(), [5 / 9] * 3 + [5 / 3, 5 / 3], rtol=1e-6)
    assert float(w.sum()) == pytest.approx(5.0)


def test_groupdro_update_by_hand():
    dro = GroupDRO(3, step_size=0.5)
    per = torch.tensor([1.0, 3.0, 2.0, 2.0])
    groups = torch.tensor([0, 0, 1, 1])  # group 2 absent: loss 0
    loss = dro.loss(per, groups)
    q = np.array([1 / 3 * math.exp(0.5 * 2.0), 1 / 3 * math.exp(0.5 * 2.0), 1 / 3])
    q /= q.sum()
    np.testing.assert_allclose(dro.q.numpy(), q, rtol=1e-6)
    assert float(loss) == pytest.approx(q[0] * 2.0 + q[1] * 2.0, rel=1e-6)
    with pytest.raises(ConfigError, match="`dro_step_size`"):
        GroupDRO(2, step_size=0.0)
