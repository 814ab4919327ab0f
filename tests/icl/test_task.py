"""The ICL task generators against their definitions, checked sequence by sequence with plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rote.core.errors import ConfigError
from rote.icl.task import BinaryTask, ReddyTask


def _class_of(items: torch.Tensor, means: torch.Tensor) -> np.ndarray:
    """Class index of every item (exact copies of the means, eps = 0), by brute-force equality."""
    d = torch.cdist(items.reshape(-1, items.shape[-1]), means)
    assert float(d.min(dim=1).values.max()) < 0.05  # cdist rounding; distinct means are ~1.4 apart
    return d.argmin(dim=1).reshape(items.shape[:-1]).numpy()


def test_binary_sequences_follow_the_authors_construction():
    task = BinaryTask(K=20, N=6)
    means, labels = task.means(), task.labels()
    assert means.shape == (20, 63) and int(labels.sum()) == 10  # balanced: K/2 classes per label
    b = task.sample(300, torch.Generator().manual_seed(0))
    assert b.x.shape == (300, 6, 65)
    cls = _class_of(b.x[..., :63], means)
    for i in range(300):
        assert cls[i, -1] in set(cls[i, :-1])  # the query's class is in the context
        for t in range(5):  # context tokens carry their class's label one-hot
            assert b.x[i, t, 63 + int(labels[cls[i, t]])] == 1 and float(b.x[i, t, 63:].sum()) == 1
        assert float(b.x[i, -1, 63:].abs().sum()) == 0  # the query's label slot is zeroed
        assert b.y[i] == 2 * int(labels[cls[i, -1]]) - 1
    # class draws are uniform over the K classes (chi-square against uniform, context positions)
    counts = np.bincount(cls[:, :-1].ravel(), minlength=20)
    expected = counts.sum() / 20
    assert ((counts - expected) ** 2 / expected).sum() < 45  # chi2(19) 99.9% quantile is 43.8


def test_binary_same_generator_same_batch():
    task = BinaryTask(K=64, N=8)
    a = task.sample(50, torch.Generator().manual_seed(3))
    b = task.sample(50, torch.Generator().manual_seed(3))
    c = task.sample(50, torch.Generator().manual_seed(4))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)


def test_equalized_contexts_hold_n_over_2_of_each_label():
    task = BinaryTask(K=40, N=8, equalize=True)
    b = task.sample(200, torch.Generator().manual_seed(1))
    labels = task.labels()
    cls = _class_of(b.x[..., :63], task.means())
    for i in range(200):
        lab = labels[cls[i]].numpy()
        assert lab.sum() == 4  # N/2 tokens of label 1 among all N (query included)
        assert cls[i, -1] in set(cls[i, :-1])


def test_infinite_k_query_copies_a_context_item():
    task = BinaryTask(K=None, N=5)
    b = task.sample(100, torch.Generator().manual_seed(2))
    for i in range(100):
        d = (b.x[i, :-1, :63] - b.x[i, -1, :63]).abs().sum(dim=1)
        j = int(d.argmin())
        assert float(d[j]) == 0 and b.y[i] == 2 * float(b.x[i, j, 64]) - 1


def test_eval_sets_icl_icl2_iwl():
    task = BinaryTask(K=30, N=6)
    sets = task.eval_sets(200, seed=5)
    means, labels = task.means(), task.labels()
    # IWL: training classes, the query's class never in the context
    cls = _class_of(sets["iwl"].x[..., :63], means)
    assert all(cls[i, -1] not in set(cls[i, :-1]) for i in range(200))
    assert np.array_equal((sets["iwl"].y.numpy() + 1) / 2, labels[cls[:, -1]].numpy())
    # ICL2: training classes, every label swapped; the answer is in the context
    cls = _class_of(sets["icl2"].x[..., :63], means)
    assert np.array_equal((sets["icl2"].y.numpy() + 1) / 2, 1 - labels[cls[:, -1]].numpy())
    assert all(cls[i, -1] in set(cls[i, :-1]) for i in range(200))
    # ICL: novel classes (none equal to a training mean)
    d = torch.cdist(sets["icl"].x[..., :63].reshape(-1, 63), means)
    assert float(d.min()) > 0.1


def test_reddy_bursty_sequences():
    task = ReddyTask(K=64, N=8, L=4, D=16, B=2, p_B=1.0, eps=0.0, n_max=10)
    b = task.sample(40, torch.Generator().manual_seed(0))
    assert b.x.shape == (40, 17, 21 + 16)
    means, lv = task.means(), task.label_vectors()
    for i in range(40):
        pos = b.x[i, :, :21]
        start = int(pos[0].argmax())
        assert all(int(pos[t].argmax()) == start + t and float(pos[t].sum()) == 1 for t in range(17))
        content = b.x[i, :, 21:]
        cls = _class_of(content[0::2], means)  # items and the query
        assert np.all(np.bincount(cls[:-1], minlength=64)[np.unique(cls[:-1])] == 2)  # B = 2 copies each
        assert cls[-1] in set(cls[:-1]) and int(b.y[i]) == cls[-1] % 4
        for t in range(8):  # label tokens are the label vectors of class k mod L
            assert torch.allclose(content[2 * t + 1], lv[cls[t] % 4])


def test_reddy_iid_zipf_frequencies():
    task = ReddyTask(K=8, N=4, L=4, D=8, B=0, p_B=0.0, alpha=1.0, eps=0.0)
    b = task.sample(4000, torch.Generator().manual_seed(0))
    cls = _class_of(b.x[:, 0::2, task.pos_dim :], task.means())
    freq = np.bincount(cls.ravel(), minlength=8) / cls.size
    p = 1 / np.arange(1, 9)
    assert np.allclose(freq, p / p.sum(), atol=0.01)


def test_reddy_icl2_swaps_labels():
    task = ReddyTask(K=32, N=4, L=4, D=8, B=2, eps=0.0)
    s = task.eval_sets(100)["icl2"]
    cls = _class_of(s.x[:, -1:, task.pos_dim :], task.means())[:, 0]
    assert np.array_equal(s.y.numpy(), (cls + 1) % 4)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: BinaryTask(K=25, N=10), "`K`"),
        (lambda: BinaryTask(K=24, N=9, equalize=True), "`N`"),
        (lambda: ReddyTask(K=100, L=32), "`K`"),
        (lambda: ReddyTask(K=64, N=5, B=2), "`N`"),
        (lambda: ReddyTask(K=64, N=2, B=4), "`N`"),
        (lambda: ReddyTask(K=64, p_B=1.5), "`p_B`"),
    ],
)
def test_bad_task_parameters_name_the_argument(make, name):
    with pytest.raises(ConfigError, match=name) as info:
        make()
    assert "\n" not in str(info.value)


def test_class_means_scale():
    m = BinaryTask(K=2000, N=2).means()
    assert math.isclose(float((m**2).sum(1).mean()), 1.0, rel_tol=0.02)  # E |mu|^2 = D * (1/D)


@pytest.mark.parametrize("equalize", [False, True])
def test_sample_indices_many_draws_each_seed_as_alone(equalize):
    """The batched draw for M generators gives each generator's own `sample_indices` stream, step after step (the
    redraws of absent queries interleave with the bulk draws, so a second and third batch check the order)."""
    task = BinaryTask(K=64, N=6, equalize=equalize)
    labels = task.labels()
    gens = [torch.Generator().manual_seed(s) for s in (3, 4, 5)]
    refs = [torch.Generator().manual_seed(s) for s in (3, 4, 5)]
    for _ in range(3):
        many = task.sample_indices_many(40, task.K, gens, labels)
        alone = torch.stack([task.sample_indices(40, task.K, g, labels) for g in refs])
        assert torch.equal(many, alone)
        # the query's class is in its context in every sequence
        assert (many[..., :-1] == many[..., -1:]).any(-1).all()
