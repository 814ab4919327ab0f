"""rote.core.stats and rote.core.privacy against independent computations (sklearn, scipy, brute force)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst
from sklearn import metrics as skm

from rote.core import privacy, stats
from rote.core.errors import ConfigError


def _brute_auc(s, y):
    pos, neg = s[y == 1], s[y == 0]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=40))
def test_auc_equals_brute_force_and_sklearn_with_ties(pairs):
    s = np.array([p[0] for p in pairs], float)
    y = np.array([p[1] for p in pairs], int)
    if y.min() == y.max():
        with pytest.raises(ConfigError, match="both members and non-members"):
            privacy.roc_auc(s, y)
        return
    auc = privacy.roc_auc(s, y)
    assert auc == pytest.approx(_brute_auc(s, y), abs=1e-12)
    assert auc == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert auc == pytest.approx(stats.mann_whitney_u(s[y == 1], s[y == 0])[1], abs=1e-12)


def test_roc_curve_matches_sklearn_and_weighted_auc():
    rng = np.random.default_rng(0)
    s = rng.normal(size=300).round(1)
    y = (rng.random(300) < 0.4).astype(int)
    w = rng.random(300)
    fpr, tpr, thr = privacy.roc_curve(s, y)
    f2, t2, _ = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    assert privacy.roc_auc(s, y, w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=1e-12)


def test_tpr_at_fpr_and_advantage_hand_worked():
    # members 0.9, 0.8, 0.3; non-members 0.7, 0.2, 0.1
    s = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    y = np.array([1, 1, 1, 0, 0, 0])
    assert privacy.tpr_at_fpr(s, y, 0.0) == pytest.approx(2 / 3)  # threshold 0.8: 2 members, no non-member
    assert privacy.tpr_at_fpr(s, y, 1 / 3) == pytest.approx(1.0)  # threshold 0.3
    assert privacy.attacker_advantage(s, y) == pytest.approx(2 / 3)
    assert privacy.roc_auc(s, y) == pytest.approx(8 / 9)


def test_membership_metrics_bootstrap_is_seeded_and_brackets():
    rng = np.random.default_rng(1)
    s = np.r_[rng.normal(1, 1, 200), rng.normal(0, 1, 200)]
    y = np.r_[np.ones(200), np.zeros(200)]
    m1 = privacy.membership_metrics(s, y, n_boot=200, seed=3)
    m2 = privacy.membership_metrics(s, y, n_boot=200, seed=3)
    assert m1 == m2
    assert m1.auc_interval.low < m1.auc < m1.auc_interval.high
    # true AUC of N(1,1) vs N(0,1) is Phi(1/sqrt 2) = 0.760
    assert m1.auc_interval.low < sst.norm.cdf(1 / math.sqrt(2)) < m1.auc_interval.high
    assert set(m1.to_dict()) >= {"auc", "tpr_at_0.001_fpr", "tpr_at_0.01_fpr", "auc_interval"}


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="labels has 2"):
        privacy.roc_auc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ConfigError, match="NaN values .first at index 1"):
        privacy.roc_auc([0.1, float("nan")], [0, 1])
    with pytest.raises(ConfigError, match="0/1"):
        privacy.roc_auc([0.1, 0.2], [0, 2])


def test_text_statistics_by_hand():
    lp = np.log([0.5, 0.1, 0.9, 0.2, 0.6])
    assert privacy.loss_score(lp) == pytest.approx(lp.mean())
    assert privacy.min_k_score(lp, 0.4) == pytest.approx(np.log([0.1, 0.2]).mean())
    assert privacy.min_k_score(lp, 0.01) == pytest.approx(math.log(0.1))  # at least one token
    text = "hello hello hello"
    assert privacy.zlib_score(lp, text) == pytest.approx(lp.mean() / len(zlib.compress(text.encode())))
    mu, sd = np.full(5, -1.0), np.full(5, 2.0)
    z = (lp + 1.0) / 2.0
    assert privacy.min_k_plus_plus_score(lp, mu, sd, 0.4) == pytest.approx(np.sort(z)[:2].mean())
    assert privacy.reference_score(lp, lp - 1) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="at least two tokens"):
        privacy.loss_score([])


def test_lira_offline_is_gaussian_cdf():
    out = np.array([[0.0, 2.0], [1.0, 1.0]])
    sc = privacy.lira_offline_score([1.0, 3.0], out)
    assert sc[0] == pytest.approx(sst.norm.logcdf(1.0, 1.0, 1.0))
    assert privacy.logit_confidence([0.5])[0] == pytest.approx(0.0)


def test_bootstrap_ci_against_known_mean_interval():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, 400)
    iv = stats.bootstrap_ci(np.mean, x, n_boot=2000, seed=0)
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert iv.estimate == pytest.approx(x.mean())
    assert iv.low == pytest.approx(x.mean() - 1.96 * se, abs=0.25 * se)
    assert iv.high == pytest.approx(x.mean() + 1.96 * se, abs=0.25 * se)
    assert stats.bootstrap_ci(np.mean, x, n_boot=100, seed=1) == stats.bootstrap_ci(np.mean, x, n_boot=100, seed=1)


def test_bootstrap_strata_keep_group_sizes():
    y = np.r_[np.ones(3), np.zeros(97)]
    seen = []
    stats.bootstrap_ci(lambda a: seen.append(a.sum()) or 0.0, y, n_boot=50, seed=0, strata=y)
    assert set(seen[1:]) == {3.0}


def test_mean_std_and_format_and_tests():
    assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert stats.mean_std([4.0]) == (4.0, 0.0)
    assert stats.format_mean_std(12.3456, 0.5) == "12.35 ± 0.50"
    assert stats.relative_change(8.0, 10.0) == pytest.approx(-0.2)
    x, y = [1.0, 5.0, 7.0, 9.0], [2.0, 3.0, 4.0]
    u, _ = stats.mann_whitney_u(x, y)
    assert u == sst.mannwhitneyu(x, y).statistic
    assert stats.cliffs_delta(x, y) == pytest.approx(np.mean([np.sign(a - b) for a in x for b in y]))
    t, p = stats.welch_t(x, y)
    assert t == pytest.approx(sst.ttest_ind(x, y, equal_var=False).statistic)
