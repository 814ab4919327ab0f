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
    assert privacy.tpr_at_fpr(s, y, 0.1) == pytest.approx(2 / 3)  # threshold 0.8: 2 members, no non-member
    # strict < (MIMIR, LiRA): FPR 1/3 is not below 1/3, so the threshold 0.3 (FPR 1/3) does not count
    assert privacy.tpr_at_fpr(s, y, 1 / 3) == pytest.approx(2 / 3)
    assert privacy.tpr_at_fpr(s, y, 0.34) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="`fpr` must be in"):
        privacy.tpr_at_fpr(s, y, 0.0)
    assert not privacy.fpr_resolvable(24, 0.01) and not privacy.fpr_resolvable(100, 0.01)
    assert privacy.fpr_resolvable(101, 0.01)
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


def _mimir_tpr(y, s, target):
    """MIMIR / LiRA: sklearn's ROC, then tpr[np.where(fpr < target)[0][-1]] (all thresholds kept: with sklearn's
    default drop_intermediate=True a collinear corner can be dropped and the value comes out lower)."""
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    return tpr[np.where(fpr < target)[0][-1]]


def test_tpr_at_fpr_is_mimirs_strict_rule_on_1500_random_cases():
    rng = np.random.default_rng(7)
    differ_from_le = 0
    for _ in range(1500):
        n = int(rng.integers(4, 60))
        s = rng.integers(0, 12, n).astype(float)  # many ties, thresholds landing exactly on the target
        y = rng.random(n) < 0.5
        if y.all() or not y.any():
            continue
        target = float(rng.choice([0.01, 0.1, 0.2, 0.25, 1 / max(1, (~y).sum())]))
        got = privacy.tpr_at_fpr(s, y, target)
        assert got == pytest.approx(_mimir_tpr(y, s, target), abs=1e-12)
        f, t, _ = privacy.roc_curve(s, y)
        differ_from_le += got != t[f <= target + 1e-12].max()
    assert differ_from_le > 0  # the old `<=` rule differs on some cases


def test_binomial_ci_matches_scipy_exact_and_wilson():
    for k, n in [(0, 24), (24, 24), (3, 24), (1, 1), (7, 100), (0, 1), (50, 100)]:
        for method, sp in (("clopper-pearson", "exact"), ("wilson", "wilson")):
            iv = stats.binomial_ci(k, n, method=method)
            ref = sst.binomtest(k, n).proportion_ci(confidence_level=0.95, method=sp)
            assert iv.estimate == pytest.approx(k / n)
            assert iv.low == pytest.approx(ref.low, abs=1e-9) and iv.high == pytest.approx(ref.high, abs=1e-9)
    # 0/24 is not [0, 0]: the exact upper bound is 1 - 0.025^(1/24)
    assert stats.binomial_ci(0, 24).high == pytest.approx(1 - 0.025 ** (1 / 24))
    assert math.isnan(stats.binomial_ci(0, 0).estimate)
    with pytest.raises(ConfigError, match="`successes` must lie in 0..n"):
        stats.binomial_ci(5, 3)


def _delong_brute(x, y):
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(1), psi.mean(0)
    return psi.mean(), v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(y)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 8), min_size=2, max_size=30), st.lists(st.integers(0, 8), min_size=2, max_size=30))
def test_delong_variance_equals_the_pairwise_definition(xs, ys):
    x, y = np.array(xs, float), np.array(ys, float)
    auc, var = stats.delong_auc_variance(x, y)
    a2, v2 = _delong_brute(x, y)
    assert auc == pytest.approx(a2, abs=1e-12) and var == pytest.approx(v2, abs=1e-12)
    assert auc == pytest.approx(skm.roc_auc_score(np.r_[np.ones(len(x)), np.zeros(len(y))], np.r_[x, y]), abs=1e-12)


def test_auc_ci_covers_and_does_not_collapse_at_one():
    # coverage of the DeLong interval on N(1,1) vs N(0,1), true AUC Phi(1/sqrt 2)
    rng = np.random.default_rng(0)
    true = sst.norm.cdf(1 / math.sqrt(2))
    hits = sum(
        (iv := stats.auc_ci(rng.normal(1, 1, 40), rng.normal(0, 1, 40))).low <= true <= iv.high for _ in range(400)
    )
    assert 0.91 <= hits / 400 <= 0.98
    perfect = stats.auc_ci(np.arange(24) + 100.0, np.arange(24))
    assert perfect.estimate == 1.0 and perfect.high == 1.0
    assert perfect.low == pytest.approx(24 / (24 + 1.959964**2), abs=1e-6)  # Wilson at n_eff = 24: 0.862
    m = privacy.membership_metrics(np.r_[np.arange(24) + 100.0, np.arange(24)], np.r_[np.ones(24), np.zeros(24)])
    assert m.auc_interval.low < 0.87 and m.tpr_resolved == {0.001: False, 0.01: False, 0.1: True}
    assert m.to_dict()["tpr_at_0.01_fpr_resolved"] is False


def test_compare_groups_against_scipy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(1, 1, 30), rng.normal(0, 2, 25)
    c = stats.compare_groups(x, y, name_x="exhibits", name_y="controls")
    assert c.mann_whitney_p == pytest.approx(sst.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    assert c.welch_p == pytest.approx(sst.ttest_ind(x, y, equal_var=False).pvalue)
    brute = np.mean([np.sign(a - b) for a in x for b in y])
    assert c.cliffs_delta == pytest.approx(brute) and c.cliffs_delta_low < brute < c.cliffs_delta_high
    assert c.mean_difference == pytest.approx(x.mean() - y.mean()) and "exhibits" in str(c)
    with pytest.raises(ConfigError, match="at least two values"):
        stats.compare_groups([1.0], [2.0, 3.0])


def test_recall_and_neighbourhood_scores_by_hand():
    lp, cond = np.log([0.5, 0.25]), np.log([0.25, 0.125])
    assert privacy.recall_score(lp, cond) == pytest.approx(np.mean(cond) / np.mean(lp))
    assert privacy.neighbourhood_score(lp, [cond, lp]) == pytest.approx(lp.mean() - (cond.mean() + lp.mean()) / 2)
    with pytest.raises(ConfigError, match="at least one neighbour"):
        privacy.neighbourhood_score(lp, [])
