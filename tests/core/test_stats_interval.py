"""`rote.core.stats.mean_t_interval` against a hand-worked Student-t interval and scipy's own."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst

from rote.core.errors import ConfigError
from rote.core.stats import mean_t_interval


def test_mean_t_interval_by_hand():
    # values 1, 2, 3: mean 2, s = 1, t_{2, 0.975} = 4.302653, half-width 4.302653 / sqrt(3) = 2.484138
    iv = mean_t_interval([1.0, 2.0, 3.0])
    assert iv.estimate == 2.0
    assert iv.low == pytest.approx(2 - 2.484138, abs=1e-6) and iv.high == pytest.approx(2 + 2.484138, abs=1e-6)


def test_mean_t_interval_matches_scipy_and_drops_nan():
    rng = np.random.default_rng(0)
    v = rng.normal(0.8, 0.05, size=7)
    lo, hi = sst.t.interval(0.9, len(v) - 1, loc=v.mean(), scale=sst.sem(v))
    iv = mean_t_interval(list(v) + [float("nan")], level=0.9)
    assert (iv.low, iv.high) == pytest.approx((lo, hi), rel=1e-12)


def test_one_value_has_no_interval_and_bad_level_is_refused():
    iv = mean_t_interval([0.7])
    assert iv.estimate == 0.7 and math.isnan(iv.low) and math.isnan(iv.high)
    assert math.isnan(mean_t_interval([]).estimate)
    with pytest.raises(ConfigError, match="`level`"):
        mean_t_interval([1.0, 2.0], level=1.5)


def test_bounds_clip_the_interval_not_the_mean():
    iv = mean_t_interval([0.9, 1.0, 1.0], bounds=(0.0, 1.0))
    free = mean_t_interval([0.9, 1.0, 1.0])
    assert free.high > 1 and iv.high == 1.0 and iv.low == free.low and iv.estimate == free.estimate


def test_welch_t_one_sided_halves_the_two_sided_p():
    from rote.core.stats import welch_t

    x, y = [2.0, 2.5, 3.1, 2.8], [1.0, 1.4, 0.9, 1.6, 1.2]
    t2, p2 = welch_t(x, y)
    tg, pg = welch_t(x, y, alternative="greater")
    tl, pl = welch_t(x, y, alternative="less")
    assert t2 == tg == tl and t2 > 0
    assert pg == pytest.approx(p2 / 2) and pl == pytest.approx(1 - p2 / 2)
    with pytest.raises(ConfigError, match="`alternative`"):
        welch_t(x, y, alternative="bigger")
