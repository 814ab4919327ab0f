"""Closed-form decomposition of the metrics after memorization against direct computation and hand values."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rote.core.errors import DataError
from rote.fairness import memorization_effect
from rote.fairness.memorization import as_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairness_oracle import metric_loop  # noqa: E402


@st.composite
def memorized_populations(draw):
    n = draw(st.integers(4, 40))
    C = draw(st.integers(2, 4))
    y = draw(st.lists(st.integers(0, C - 1), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, C - 1), min_size=n, max_size=n))
    g = draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n).filter(lambda v: len(set(v)) >= 2))
    w = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=n, max_size=n))
    mode = draw(st.sampled_from(["random", "none", "all", "one_group"]))
    if mode == "random":
        mem = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    elif mode == "one_group":  # a whole group memorized: r_a and R_{a,y} are undefined, their factor is 0
        mem = [gi == g[0] for gi in g]
    else:
        mem = [mode == "all"] * n
    return y, p, g, w, mem


@settings(max_examples=80, deadline=None, derandomize=True)
@given(memorized_populations(), st.sampled_from(["between_groups", "to_overall"]))
def test_closed_form_equals_direct_and_brute_force(pop, method):
    y, p, g, w, mem = pop
    labels = sorted(set(y) | set(p))
    r = memorization_effect(
        y, p, sensitive_features=g, memorized=mem, sample_weight=w, labels=labels, method=method, undefined="skip"
    )
    h = [yi if mi else pi for yi, pi, mi in zip(y, p, mem)]
    for m in ("sp", "eopp", "eodds"):
        want_before = metric_loop(y, p, g, w, labels, m, method)
        want_after = metric_loop(y, h, g, w, labels, m, method)
        for got, want in ((r.before[m], want_before), (r.after[m], want_after), (r.after_closed_form[m], want_after)):
            assert (np.isnan(got) and want is None) or got == pytest.approx(want, abs=1e-12)
    assert r.max_abs_difference < 1e-12
    c = r.classes.dropna(subset=["gap_after"])
    np.testing.assert_allclose(c.memorized_part + c.unmemorized_part, c.gap_after, atol=1e-12)
    assert r.p_memorized == pytest.approx(sum(wi for wi, mi in zip(w, mem) if mi) / sum(w))


def test_hand_worked_decomposition():
    # group a: (y, g) = (0,1) (0,0) (1,1) (1,0), memorize row 0;  group b: (0,0) (1,0) (1,0) (1,1), memorize none
    y = [0, 0, 1, 1, 0, 1, 1, 1]
    p = [1, 0, 1, 0, 0, 0, 0, 1]
    g = ["a"] * 4 + ["b"] * 4
    mem = [True] + [False] * 7
    r = memorization_effect(y, p, sensitive_features=g, memorized=mem)
    t = r.terms
    sp_a = t[(t.metric == "sp") & (t.group == "a")].set_index("class")
    # mu_a = 1/4, q_a = (1, 0); r_a on the 3 unmemorized rows predicts (0, 1, 0) -> (2/3, 1/3)
    assert sp_a["share"].tolist() == pytest.approx([0.25, 0.25])
    assert sp_a["memorized_rate"].tolist() == pytest.approx([1.0, 0.0])
    assert sp_a["unmemorized_rate"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert sp_a["rate_after"].tolist() == pytest.approx([0.75, 0.25])
    # EOpp class 0 in group a: rho = 1/2, t on the unmemorized class-0 row = 1 -> TPR 1
    eo = t[(t.metric == "eopp") & (t.group == "a") & (t["class"] == "0")].iloc[0]
    assert (eo["share"], eo["unmemorized_rate"], eo["rate_after"]) == pytest.approx((0.5, 1.0, 1.0))
    # before: TPR a = (1/2, 1/2), b = (1, 1/3); after: a = (1, 1/2)
    assert r.before["eopp"] == pytest.approx(0.5 + 1 / 6)
    assert r.after["eopp"] == pytest.approx(0.0 + 1 / 6)
    assert r.accuracy_before == pytest.approx(4 / 8) and r.accuracy_after == pytest.approx(5 / 8)


def test_uniform_memorization_scales_equal_opportunity_gaps():
    # memorizing one full copy of a duplicated population memorizes every (group, class) cell at rho = 1/2 and
    # leaves R unchanged, so every EOpp / EOdds class gap shrinks by the factor (1 - rho) = 1/2
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 3, n)
    g = rng.choice(["a", "b"], n)
    p = np.where(rng.random(n) < np.where(g == "a", 0.5, 0.9), y, rng.integers(0, 3, n))
    yy, pp, gg = np.tile(y, 2), np.tile(p, 2), np.tile(g, 2)
    mem = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    r = memorization_effect(yy, pp, sensitive_features=gg, memorized=mem)
    for m in ("eopp", "eodds"):
        c = r.classes[r.classes.metric == m]
        np.testing.assert_allclose(c.gap_after, 0.5 * c.gap_before, atol=1e-12)
        assert r.after[m] == pytest.approx(0.5 * r.before[m])


def test_mask_parsing():
    assert as_mask(["true", "False", "1", "0", "yes", "NO"], 6).tolist() == [True, False, True, False, True, False]
    assert as_mask(np.array([1, 0, 1]), 3).tolist() == [True, False, True]
    with pytest.raises(DataError, match=r"memorized: value 'maybe' at row 2"):
        as_mask(["true", "maybe"], 2)
    with pytest.raises(DataError, match=r"memorized: value 2 at row 1"):
        as_mask([2, 0], 2)
    with pytest.raises(DataError, match="expected 3 values"):
        memorization_effect([0, 1, 1], [0, 1, 0], sensitive_features=["a", "b", "b"], memorized=[True, False])
