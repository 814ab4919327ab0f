"""StackedMLP against separate rote.nets.MLPs, XRM twins against two separately trained networks, k-fold
held-out logits against the fold members, and the twins' bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError, DataError
from rote.data import halves_indices
from rote.nets import MLP
from rote.spurious.data import GroupedData, linear_toy
from rote.spurious.heldout import inferred_groups, kfold_heldout, predict, select_by_flip_rate, xrm_twins
from rote.spurious.models import StackedMLP


@pytest.fixture(scope="module")
def toy():
    return linear_toy(60, 12, agreement=0.9, noise=0.5, seed=3)


@pytest.mark.parametrize("hidden,bias,act", [((8, 5), True, "relu"), ((), False, "relu"), ((7,), True, "tanh")])
def test_stacked_forward_equals_member_mlps(hidden, bias, act):
    x = torch.randn(9, 2, 3, generator=torch.Generator().manual_seed(0))
    st = StackedMLP(6, hidden, 3, k=3, bias=bias, activation=act, seed=4)
    out = st(x)
    assert out.shape == (3, 9, 3)
    for i in range(3):
        ref = MLP(6, hidden, 3, activation=act, seed=4 + i)
        if not bias:  # the same weights with zero biases
            with torch.no_grad():
                for m in ref.modules():
                    if isinstance(m, torch.nn.Linear):
                        m.bias.zero_()
        torch.testing.assert_close(out[i], ref(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(st.member(i)(x), out[i], rtol=1e-5, atol=1e-6)


def test_twins_equal_two_separately_trained_networks(toy):
    """One StackedMLP (k=2) trained on the class-balanced held-in losses = two MLPs trained each on its half."""
    tr = toy.train
    epochs, lr = 25, 0.05
    ho = xrm_twins(tr, hidden=(6,), epochs=epochs, batch_size=None, optimizer="sgd", lr=lr, flip=False, seed=2)
    a_idx, b_idx = halves_indices(len(tr), seed=2, labels=tr.y.numpy())
    nets = [MLP(tr.in_features, (6,), 2, seed=2 + i) for i in range(2)]
    opts = [torch.optim.SGD(n.parameters(), lr=lr) for n in nets]
    for _ in range(epochs):
        for net, opt, idx in zip(nets, opts, (a_idx, b_idx)):
            xb, yb = tr.x[idx], tr.y[idx]
            ce = F.cross_entropy(net(xb), yb, reduction="none")
            loss = sum(ce[yb == c].mean() for c in torch.unique(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        logits = torch.stack([n(tr.x) for n in nets])  # (2, N, K)
    member = np.zeros(len(tr), np.int64)
    member[a_idx] = 1  # samples of half A are held out by twin B
    want = logits[torch.as_tensor(member), torch.arange(len(tr))]
    torch.testing.assert_close(ho.train_logits, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(ho.member, member)


def test_twins_flip_labels_and_are_deterministic(toy):
    kw = dict(hidden=(), bias=False, epochs=40, batch_size=None, optimizer="sgd", lr=0.05, seed=1)
    a, b = xrm_twins(toy.train, **kw), xrm_twins(toy.train, **kw)
    torch.testing.assert_close(a.train_logits, b.train_logits, rtol=0, atol=0)
    assert a.flip_rate == b.flip_rate
    dyn = a.dynamic_labels
    assert a.flip_rate == pytest.approx(float(np.mean(dyn != toy.train.y.numpy())))
    assert a.flip_rate > 0  # the minority's labels are flipped to the spurious prediction


def test_class_absent_from_one_half():
    x = torch.randn(7, 3)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2])  # class 2 has one example: one twin's half lacks it
    data = GroupedData(x, y, torch.zeros(7, dtype=torch.int64), torch.arange(7), ("a", "b", "c"), ("u",), "tiny")
    with pytest.raises(DataError, match="class 2 has 1 example.*none in twin"):
        xrm_twins(data, hidden=(), epochs=1)


def test_kfold_heldout_from_the_member_that_did_not_see_the_sample(toy):
    tr = toy.train
    ho = kfold_heldout(tr, k=3, hidden=(4,), epochs=3, batch_size=16, seed=0, val=toy.val)
    # recompute: the member of each sample's fold predicts it
    model = StackedMLP(tr.in_features, (4,), 2, k=3, seed=0)
    assert ho.member.min() == 0 and ho.member.max() == 2
    assert np.bincount(ho.member).tolist() == [20, 20, 20]
    assert ho.val_logits.shape == (len(toy.val), 2)
    assert model.k == 3
    with pytest.raises(ConfigError, match="`folds`"):
        kfold_heldout(tr, k=1, epochs=1)


def test_select_by_flip_rate_and_inferred_groups(toy):
    runs = [
        xrm_twins(toy.train, hidden=(), bias=False, epochs=5, batch_size=None, optimizer="sgd", lr=lr, seed=0)
        for lr in (1e-4, 0.1)
    ]
    best = select_by_flip_rate(runs)
    assert best.flip_rate == max(r.flip_rate for r in runs)
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(inferred_groups(logits, torch.tensor([0, 1, 1])).numpy(), [1, 2, 3])


def test_predict_batches_agree():
    m = StackedMLP(5, (3,), 2, k=2, seed=0)
    x = torch.randn(11, 5)
    torch.testing.assert_close(predict(m, x, batch_size=4), predict(m, x, batch_size=100))
