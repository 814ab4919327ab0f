"""The one-sided Mann-Whitney test, Cliff's delta interval and the Mann-Whitney power analysis (rote.core.stats)
against scipy, brute force, hand-worked numbers and simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from rote.core.errors import ConfigError
from rote.core.stats import (
    MWU_ALTERNATIVES,
    cliffs_delta,
    cliffs_delta_ci,
    mann_whitney_power,
    mann_whitney_sample_size,
    mann_whitney_test,
)


@pytest.mark.parametrize("m,n", [(1, 1), (3, 5), (8, 12), (20, 25)])
@pytest.mark.parametrize("alternative", MWU_ALTERNATIVES)
@pytest.mark.parametrize("method", ["exact", "asymptotic", "auto"])
def test_mann_whitney_matches_scipy(m, n, alternative, method):
    rng = np.random.default_rng(m * 100 + n)
    x, y = rng.normal(0.4, 1, m), rng.normal(0, 1, n)
    u, p = mann_whitney_test(x, y, alternative=alternative, method=method)
    ref = stats.mannwhitneyu(x, y, alternative=alternative, method=method)
    assert u == pytest.approx(float(ref.statistic))
    assert p == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-15)


def test_mann_whitney_with_ties_matches_scipy_asymptotic():
    x = [0.0, 0.25, 0.25, 0.5, 1.0, 1.0, 1.0, 0.5, 0.25, 0.75]
    y = [0.0, 0.0, 0.25, 0.25, 0.5, 0.0, 0.25, 0.0, 0.5, 0.75]
    u, p = mann_whitney_test(x, y)  # ties -> asymptotic, as scipy's auto
    ref = stats.mannwhitneyu(x, y, alternative="greater")
    assert (u, p) == pytest.approx((float(ref.statistic), float(ref.pvalue)), rel=1e-12)


def test_exact_p_value_by_enumerating_every_split():
    """Brute force: the one-sided exact p is the share of all C(7, 3) ways to pick the x ranks with U >= U_obs."""
    x, y = [3.1, 5.2, 7.7], [1.0, 2.2, 4.4, 6.0]
    u, p = mann_whitney_test(x, y, method="exact")
    assert u == 9.0  # hand count: 3.1 beats 2 ys, 5.2 beats 3, 7.7 beats 4
    pooled = x + y
    us = []
    for pick in itertools.combinations(range(7), 3):
        xs = [pooled[i] for i in pick]
        ys = [pooled[i] for i in range(7) if i not in pick]
        us.append(sum(a > b for a in xs for b in ys))
    assert p == pytest.approx(np.mean(np.asarray(us) >= 9))
    assert p == pytest.approx(7 / 35)


def test_mann_whitney_rejects_bad_input():
    with pytest.raises(ConfigError, match="`alternative`"):
        mann_whitney_test([1, 2], [0, 1], alternative="bigger")
    with pytest.raises(ConfigError, match="no NaN"):
        mann_whitney_test([1, float("nan")], [0, 1])
    with pytest.raises(ConfigError, match="both groups"):
        mann_whitney_test([], [0, 1])


def test_cliffs_delta_and_interval_against_brute_force():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 5, 30).astype(float), rng.integers(0, 4, 25).astype(float)
    brute = np.mean([np.sign(a - b) for a in x for b in y])
    iv = cliffs_delta_ci(x, y)
    assert iv.estimate == pytest.approx(brute) == pytest.approx(cliffs_delta(x, y))
    assert -1 <= iv.low < iv.estimate < iv.high <= 1
    # complete separation keeps a non-zero width (Wilson bound); 10 vs 10 -> 2 * 0.7225 - 1
    sep = cliffs_delta_ci(np.arange(10) + 100.0, np.arange(10.0))
    assert sep.estimate == 1.0 and sep.high == pytest.approx(1.0)
    assert sep.low == pytest.approx(2 * stats.binomtest(10, 10).proportion_ci(method="wilson").low - 1)


def test_cliffs_delta_interval_covers_in_simulation():
    """95% interval: coverage of the true delta of N(0.5, 1) vs N(0, 1) (delta = 2 Phi(0.5 / sqrt 2) - 1)."""
    true = 2 * stats.norm.cdf(0.5 / math.sqrt(2)) - 1
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(300):
        iv = cliffs_delta_ci(rng.normal(0.5, 1, 40), rng.normal(0, 1, 40))
        hits += iv.low <= true <= iv.high
    assert 0.90 <= hits / 300 <= 0.99


def test_sample_size_hand_worked():
    # Noether: N = (1.6449 + 0.8416)^2 / (12 * 0.25 * 0.25^2) = 6.1826 / 0.1875 = 32.97 -> 17 per group
    assert mann_whitney_sample_size(0.5, alpha=0.05, power=0.8) == (17, 17)
    assert mann_whitney_power(0.5, 17, 17) >= 0.8 > mann_whitney_power(0.5, 16, 16)
    z = math.sqrt(12 * 17 * 17 / 34) * 0.25 - stats.norm.isf(0.05)
    assert mann_whitney_power(0.5, 17, 17) == pytest.approx(stats.norm.cdf(z))
    n_x, n_y = mann_whitney_sample_size(0.3, ratio=2.0, power=0.9)
    assert n_y == math.ceil(2 * n_x) and mann_whitney_power(0.3, n_x, n_y, alpha=0.05) >= 0.9
    assert mann_whitney_sample_size(0.5, one_sided=False)[0] > 17


def test_power_matches_simulation():
    """Simulated rejection rate of the one-sided test for a shift with Cliff's delta 0.4, 25 per group."""
    shift = math.sqrt(2) * stats.norm.ppf((1 + 0.4) / 2)  # N(shift, 1) vs N(0, 1) has delta 0.4
    rng = np.random.default_rng(1)
    reps = 400
    rejections = sum(mann_whitney_test(rng.normal(shift, 1, 25), rng.normal(0, 1, 25))[1] < 0.05 for _ in range(reps))
    predicted = mann_whitney_power(0.4, 25, 25)
    assert abs(rejections / reps - predicted) < 0.08, (rejections / reps, predicted)


def test_power_rejects_bad_input():
    with pytest.raises(ConfigError, match="`delta`"):
        mann_whitney_power(0.0, 10, 10)
    with pytest.raises(ConfigError, match="`alpha`"):
        mann_whitney_sample_size(0.3, alpha=1.5)
    with pytest.raises(ConfigError, match="`power`"):
        mann_whitney_sample_size(0.3, power=1.0)
