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


@pytest.mark.parametrize("hidden,bias,sizes", [((5, 4), True, [4, 7]), ((), False, [6, 5]), ((3,), True, [0, 4, 7])])
def test_heldin_backward_equals_the_plain_backward(hidden, bias, sizes):
    """`heldin` row counts: each member's first-layer weight gradient from its own rows only; when the loss of member
    i uses only its rows, every gradient equals autograd's plain backward pass (and the forward is unchanged)."""
    k, n = len(sizes), sum(sizes)
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(2))
    owner = torch.repeat_interleave(torch.arange(k), torch.tensor(sizes))  # rows grouped by member
    grads, outs = [], []
    for heldin in (None, sizes):
        m = StackedMLP(6, hidden, 3, k=k, bias=bias, seed=5)
        out = m(x, heldin=heldin)  # (k, n, 3)
        loss = F.cross_entropy(out[owner, torch.arange(n)], y, reduction="none").mul(torch.arange(1.0, n + 1)).sum()
        loss.backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in m.parameters()])
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)
    for plain, split in zip(*grads):
        torch.testing.assert_close(split, plain, rtol=1e-5, atol=1e-7)
    if sizes[0] == 0:  # a member without rows gets a zero first-layer gradient
        assert float(grads[1][0][0].abs().max()) == 0.0
    with pytest.raises(ConfigError, match="`heldin`"):
        StackedMLP(6, hidden, 3, k=k, bias=bias)(x, heldin=[n] + [1] * (k - 1))


def _separate_xrm(train, hidden, epochs, batch_size, lr, seed):
    """XRM written out with two rote.nets.MLPs and two torch Adams: the Trainer's batch order and flip draws
    (its per-epoch generator), the class-balanced loss of each twin on its half, flips from the other twin."""
    from rote.core.training import epoch_seed
    from rote.spurious.mat import flip_probability

    n, k_cls = len(train), train.n_classes
    _, b_idx = halves_indices(n, seed=seed, labels=train.y.numpy())
    assign = torch.zeros(n, dtype=torch.int64)
    assign[torch.as_tensor(b_idx)] = 1
    nets = [MLP(train.in_features, hidden, k_cls, seed=seed + i) for i in range(2)]
    opts = [torch.optim.Adam(net.parameters(), lr=lr) for net in nets]
    y_dyn = train.y.clone()
    for e in range(1, epochs + 1):
        gen = torch.Generator().manual_seed(epoch_seed(seed, e))
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb, ab = train.x[idx], y_dyn[idx], assign[idx]
            outs = []
            for j, (net, opt) in enumerate(zip(nets, opts)):
                out = net(xb)
                yj = yb[ab == j]
                ce = F.cross_entropy(out[ab == j], yj, reduction="none")
                loss = sum(ce[yj == c].mean() for c in torch.unique(yj))
                opt.zero_grad()
                loss.backward()
                opt.step()
                outs.append(out.detach())
            probs = torch.softmax(torch.where((ab == 0).unsqueeze(1), outs[1], outs[0]), 1)
            change = torch.rand(len(idx), generator=gen) < flip_probability(probs)
            y_dyn[idx[change]] = probs.argmax(1)[change]
    with torch.no_grad():
        logits = torch.stack([net(train.x) for net in nets])
    return logits[1 - assign, torch.arange(n)], y_dyn


@pytest.mark.parametrize("grouped", [True, False])
def test_minibatch_twins_with_flips_equal_two_separate_networks(toy, monkeypatch, grouped):
    """Mini-batches, Adam and label flipping: the stacked twins (grouped by twin or not) = two separate networks."""
    import rote.spurious.heldout as heldout

    monkeypatch.setattr(heldout, "_GROUP_MIN_WEIGHTS", 0 if grouped else 1 << 40)
    ho = xrm_twins(toy.train, hidden=(8,), epochs=6, batch_size=16, optimizer="adam", lr=0.02, seed=3)
    want, dyn = _separate_xrm(toy.train, (8,), 6, 16, 0.02, 3)
    torch.testing.assert_close(ho.train_logits, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(ho.dynamic_labels, dyn.numpy())
    assert ho.flip_rate > 0  # the flips ran


def test_fused_adam_moves_stacked_members_as_separate_ones():
    """make_optimizer(fused=True): torch's fused Adam on stacked (2, ...) tensors = the same optimizer on each member
    alone, bit for bit (the update is elementwise), and the multi-tensor Adam to float rounding."""
    from rote.spurious.heldout import make_optimizer

    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(2, 5, 7, generator=gen), torch.randn(2, 1, 5, generator=gen)]
    grads = [[torch.randn(t.shape, generator=gen) for t in init] for _ in range(4)]

    def run(fused, member=None):
        ps = [torch.nn.Parameter(t.clone() if member is None else t[member].clone()) for t in init]
        opt = make_optimizer(ps, "adam", 0.01, weight_decay=0.1, fused=fused)
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = g.clone() if member is None else g[member].clone()
            opt.step()
        return [p.detach() for p in ps]

    stacked = run(True)
    for m in range(2):
        for s, alone in zip(stacked, run(True, m)):
            torch.testing.assert_close(s[m], alone, rtol=0, atol=0)
    for s, multi in zip(stacked, run(False)):
        torch.testing.assert_close(s, multi, rtol=1e-6, atol=1e-7)
    with pytest.raises(ConfigError, match="`lr` must be a finite number > 0"):
        make_optimizer(stacked, "adam", float("inf"), fused=True)
