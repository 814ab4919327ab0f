"""Minimum memorized mass: LP / integer program against exhaustive subset search, closed-form bounds, the
equalized-odds ratio condition, infeasible problems and concrete memorized sets."""

from __future__ import annotations

import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rote.core.errors import ConfigError
from rote.fairness import (
    closed_form_bounds,
    confusion_counts,
    encode,
    eodds_ratio_condition,
    lowest_reachable_bias,
    memorization_effect,
    memorized_set,
    min_mass_from_counts,
    minimum_memorized_mass,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairness_oracle import best_subset, lowest_bias_subset, metric_loop  # noqa: E402

METRICS = ("sp", "eopp", "eodds")


@st.composite
def small_populations(draw, equal_sizes=False):
    C = draw(st.integers(2, 3))
    if equal_sizes:  # both groups hold the same labels: equal group and group-by-class sizes
        half = draw(st.integers(2, 4))
        ys = draw(st.lists(st.integers(0, C - 1), min_size=half, max_size=half))
        y, g = ys + ys, ["a"] * half + ["b"] * half
    else:
        n = draw(st.integers(3, 8))
        y = draw(st.lists(st.integers(0, C - 1), min_size=n, max_size=n))
        g = draw(st.lists(st.sampled_from("ab"), min_size=n, max_size=n).filter(lambda v: len(set(v)) == 2))
    p = draw(st.lists(st.integers(0, C - 1), min_size=len(y), max_size=len(y)))
    return y, p, g, list(range(C))


def _counts(y, p, g, labels):
    return confusion_counts(encode(y, p, g, labels=labels))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(small_populations(), st.sampled_from(METRICS))
def test_integer_program_equals_exhaustive_best_subset(pop, metric):
    y, p, g, labels = pop
    counts = _counts(y, p, g, labels)
    best = best_subset(y, p, g, labels, metric)
    ip = min_mass_from_counts(counts, metric, integral=True)
    lp = min_mass_from_counts(counts, metric)
    if best is None:
        assert not ip.feasible and ip.reason
    else:
        assert ip.feasible and ip.mass == pytest.approx(best, abs=1e-6)
        assert lp.feasible and lp.mass <= best + 1e-6
    if lp.feasible:  # closed forms bracket the LP minimum (and equal it for EOpp / EOdds)
        assert lp.lower_bound <= lp.mass + 1e-6 <= lp.upper_bound + 2e-6
        if metric != "sp":
            assert lp.mass == pytest.approx(lp.lower_bound, abs=1e-6)
    else:  # a finite upper bound is a feasible construction, so it cannot exist here
        assert lp.upper_bound == np.inf


@settings(max_examples=40, deadline=None, derandomize=True)
@given(small_populations(equal_sizes=True), st.sampled_from(METRICS))
def test_lp_minimum_equals_best_subset_with_equal_group_sizes(pop, metric):
    # two groups of equal class sizes: the constraint matrix is a network matrix, the LP has an integral optimum
    y, p, g, labels = pop
    best = best_subset(y, p, g, labels, metric)
    lp = min_mass_from_counts(_counts(y, p, g, labels), metric)
    assert (best is None) == (not lp.feasible)
    if best is not None:
        assert lp.mass == pytest.approx(best, abs=1e-6)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(small_populations(), st.sampled_from(METRICS))
def test_lowest_reachable_bias_against_exhaustive_search(pop, metric):
    y, p, g, labels = pop
    counts = _counts(y, p, g, labels)
    low, mass = lowest_reachable_bias(counts, metric)
    exact = float(lowest_bias_subset(y, p, g, labels, metric))
    assert low <= exact + 1e-7  # the LP relaxes whole rows to fractions
    before = metric_loop(y, p, g, [1.0] * len(y), labels, metric)
    assert low <= (before or 0.0) + 1e-9
    res = min_mass_from_counts(counts, metric)
    if res.feasible:
        assert low == pytest.approx(0.0, abs=1e-7) and mass == pytest.approx(res.mass, abs=1e-6)
    else:
        assert low > 1e-9 and res.reachable_bias == pytest.approx(low)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(small_populations(equal_sizes=True), st.sampled_from(METRICS))
def test_lowest_reachable_bias_is_exact_with_equal_group_sizes(pop, metric):
    y, p, g, labels = pop
    low, _ = lowest_reachable_bias(_counts(y, p, g, labels), metric)
    assert low == pytest.approx(float(lowest_bias_subset(y, p, g, labels, metric)), abs=1e-7)


def _apply_rows_plan(y, p, g, labels, res):
    """A weighted population after memorizing the plan's (fractional) masses: each (group, label, prediction)
    cell keeps its unmemorized weight and hands the memorized weight to a correctly predicted row."""
    counts = _counts(y, p, g, labels)
    moved = np.zeros_like(counts)
    for a, c, k, m in zip(res.plan["group"], res.plan["class"], res.plan["predicted"], res.plan["memorized"]):
        moved[["a", "b"].index(a), int(c), int(k)] += m
    ys, ps, gs, ws = [], [], [], []
    for ai, c, k in product(range(2), labels, labels):
        for pred, wt in ((k, counts[ai, c, k] - moved[ai, c, k]), (c, moved[ai, c, k])):
            if wt > 1e-12:
                ys.append(c), ps.append(pred), gs.append("ab"[ai]), ws.append(wt)
    return ys, ps, gs, ws


def test_rows_sp_upper_bound_construction_is_feasible_and_tight_for_one_group():
    # group a (10 rows) must move 2 rows of mass from class 0 to class 1; it has 3 rows labelled 1 predicted 0
    counts = np.zeros((2, 2, 2))
    counts[0] = [[5, 0], [3, 2]]  # a: predictions (8, 2) -> P_a = (0.8, 0.2)
    counts[1] = [[10, 2], [4, 4]]  # b: predictions (14, 6) -> P_b = (0.7, 0.3)
    from rote.fairness import sp_upper_bound_rows

    upper, ref = sp_upper_bound_rows(counts)
    assert ref == 1 and upper == pytest.approx(1.0)  # 1/2 * 0.2 * 10: one row of a
    res = min_mass_from_counts(counts, "sp")
    assert res.mass == pytest.approx(1.0) and res.upper_bound == pytest.approx(1.0)
    assert res.lower_bound == pytest.approx(1.0)  # 1/2 * 0.2 * min(10, 20)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.sampled_from(METRICS))
def test_rows_lp_plan_removes_the_bias(seed, metric):
    rng = np.random.default_rng(seed)
    n, C = 60, 3
    y = rng.integers(0, C, n).tolist()
    g = rng.choice(["a", "b"], n).tolist()
    p = [yi if rng.random() < (0.5 if gi == "a" else 0.85) else int(rng.integers(0, C)) for yi, gi in zip(y, g)]
    res = minimum_memorized_mass(y, p, sensitive_features=g, metric=metric, labels=list(range(C)))
    assume(res.feasible)
    ys, ps, gs, ws = _apply_rows_plan(y, p, g, list(range(C)), res)
    assert metric_loop(ys, ps, gs, ws, list(range(C)), metric) == pytest.approx(0.0, abs=1e-7)
    assert res.mass == pytest.approx(res.plan["memorized"].sum())


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.sampled_from(METRICS), st.booleans())
def test_paper_model_lp_matches_closed_forms(seed, metric, proportional):
    rng = np.random.default_rng(seed)
    G, C = int(rng.integers(2, 4)), 3
    n_ay = rng.integers(5, 40, (G, C)).astype(float)
    counts = np.zeros((G, C, C))
    shape = rng.dirichlet(np.ones(C - 1))  # a shared error shape makes the ratio condition hold
    for a, y in product(range(G), range(C)):
        t = rng.uniform(0.3, 0.95)
        err = shape if proportional else rng.dirichlet(np.ones(C - 1))
        counts[a, y] = n_ay[a, y] * np.insert((1 - t) * err, y, t)
    res = min_mass_from_counts(counts, metric, model="paper")
    lo, hi = closed_form_bounds(counts, metric, model="paper")
    if metric == "sp":  # the construction is a feasible point, so infeasible LP <=> no finite upper bound here
        if res.feasible:
            assert lo <= res.mass + 1e-6 <= hi + 2e-6
        else:
            assert hi == np.inf and res.reason
        return
    assert res.feasible and res.mass == pytest.approx(hi, rel=1e-6, abs=1e-6)
    rows = min_mass_from_counts(counts, metric, model="rows")
    assert rows.mass == pytest.approx(lo, rel=1e-6, abs=1e-6)  # for EO the rows model relaxes the paper model
    assert lo <= hi + 1e-9
    if metric == "eodds":
        assert all(res.ratio_condition.values()) == proportional or not proportional
        if proportional:  # with the ratio condition the EOdds minimum is the EOpp one
            eopp = min_mass_from_counts(counts, "eopp", model="paper")
            assert res.mass == pytest.approx(eopp.mass, rel=1e-6)
    # apply the rates rho = m / n and recompute the rates of the paper model by hand: every gap is zero
    rho = np.zeros((G, C))
    for a, c, m in zip(res.plan["group"], res.plan["class"], res.plan["memorized"]):
        rho[int(a), int(c)] = m / n_ay[int(a), int(c)]
    R = counts / n_ay[:, :, None]
    after = rho[:, :, None] * np.eye(C)[None] + (1 - rho[:, :, None]) * R
    if metric == "eopp":
        after = np.diagonal(after, axis1=1, axis2=2)
    np.testing.assert_allclose(after - after[0:1], 0.0, atol=1e-7)


def test_paper_sp_bounds_bracket_lp_on_random_tables():
    for seed in range(25):
        rng = np.random.default_rng(seed)
        counts = rng.integers(0, 20, (2, 3, 3)).astype(float)
        counts[:, np.arange(3), np.arange(3)] += 30
        res = min_mass_from_counts(counts, "sp", model="paper")
        if res.feasible:
            assert res.lower_bound <= res.mass + 1e-6 <= res.upper_bound + 2e-6


def test_ratio_condition_hand_example_and_infeasible_reason():
    # class 0: group a errs as (class 1, class 2) = (0.2, 0.2), group b as (0.1, 0.1): proportional
    # class 1: group a errs as (0.3 on 0, 0 on 2), group b as (0, 0.3): not proportional
    counts = np.array(
        [
            [[6, 2, 2], [3, 7, 0], [0, 0, 10]],
            [[8, 1, 1], [0, 7, 3], [0, 0, 10]],
        ],
        dtype=float,
    )
    assert eodds_ratio_condition(counts).tolist() == [True, False, True]
    res = min_mass_from_counts(counts, "eodds", model="paper")
    # class 0: raise a's TPR 0.6 -> 0.8 at rho = 0.2 / 0.4 (mass 5); class 1: memorize all of it in both (20)
    assert res.feasible and res.mass == pytest.approx(25.0)
    capped = min_mass_from_counts(counts, "eodds", model="paper", max_rate=0.9)
    assert not capped.feasible and "ratio condition fails for class 1" in capped.reason
    rows = min_mass_from_counts(counts, "eodds", model="rows")  # choosing which errors to memorize: no condition
    assert rows.feasible and rows.mass == pytest.approx(1 + 1 + 3 + 3)


def test_statistical_parity_infeasible_reason():
    # group a: every row label 0 predicted 0; group b: every row label 1 predicted 1: nothing to memorize
    y, p, g = [0, 0, 1, 1], [0, 0, 1, 1], ["a", "a", "b", "b"]
    res = minimum_memorized_mass(y, p, sensitive_features=g, metric="sp")
    assert not res.feasible and "same prediction distribution" in res.reason
    assert "no memorized set" in res.summary()


def test_concrete_memorized_set_reaches_the_tolerance():
    rng = np.random.default_rng(7)
    n, C = 400, 3
    y = rng.integers(0, C, n)
    g = rng.choice(["a", "b"], n)
    # group a's errors mostly say class 0: its prediction distribution and its error rates differ from b's
    wrong = np.where((g == "a") & (rng.random(n) < 0.8), 0, rng.integers(0, C, n))
    p = np.where(rng.random(n) < np.where(g == "a", 0.55, 0.85), y, wrong)
    for metric in METRICS:
        res, mask = memorized_set(y, p, sensitive_features=g, metric=metric, integral=True, tol=0.01)
        assert res.feasible and mask.sum() == round(res.mass)
        eff = memorization_effect(y, p, sensitive_features=g, memorized=mask, metrics=[metric], agg="max")
        c = eff.classes
        assert eff.before[metric] > 0.05
        if metric == "eodds":  # tol bounds every entry of every confusion row
            from rote.fairness.metrics import group_rates

            h = np.where(mask, y, p)
            rates, *_ = group_rates(confusion_counts(encode(y, h, g)), "eodds")
            assert np.abs(rates[0] - rates[1]).max() <= 0.01 + 1e-9
        else:
            assert c.gap_after.max() <= 0.01 + 1e-9
        assert not (mask & (p == y)).any()  # only misclassified rows are worth memorizing
        lp = minimum_memorized_mass(y, p, sensitive_features=g, metric=metric, tol=0.01)
        assert lp.mass <= res.mass + 1e-6


def test_bad_options():
    with pytest.raises(ConfigError, match="max_rate"):
        minimum_memorized_mass([0, 1], [0, 1], sensitive_features=["a", "b"], max_rate=0)
    with pytest.raises(ConfigError, match="needs `model` rows"):
        minimum_memorized_mass([0, 1], [0, 1], sensitive_features=["a", "b"], model="paper", integral=True)
    with pytest.raises(ConfigError, match="unit weights"):
        minimum_memorized_mass([0, 1], [0, 1], sensitive_features=["a", "b"], sample_weight=[1, 2], integral=True)
