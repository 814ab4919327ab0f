"""The membership-inference attacks of rote.core.privacy against hand-worked cases, scikit-learn and per-example
loops (balanced accuracy, loss / confidence / entropy attacks, LiRA online and offline, leave-one-out, RMIA)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn import metrics as skm

from rote.core import privacy
from rote.core.errors import ConfigError


def test_balanced_accuracy_hand_worked_and_sklearn():
    s = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    y = np.array([1, 1, 1, 0, 0, 0])
    # threshold 0.5: members 2/3 caught, non-members 2/3 rejected -> (2/3 + 2/3) / 2
    assert privacy.balanced_accuracy(s, y, threshold=0.5) == pytest.approx(2 / 3)
    assert privacy.balanced_accuracy(s, y, threshold=0.5) == pytest.approx(skm.balanced_accuracy_score(y, s >= 0.5))
    # best threshold 0.8: TPR 2/3, FPR 0 -> 5/6
    assert privacy.balanced_accuracy(s, y) == pytest.approx(5 / 6)
    rng = np.random.default_rng(1)
    s, y = rng.normal(size=200), rng.integers(0, 2, 200)
    best = max(skm.balanced_accuracy_score(y, s >= t) for t in np.unique(s))
    assert privacy.balanced_accuracy(s, y) == pytest.approx(best)


def test_loss_confidence_entropy_hand_worked():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    y = np.array([0, 1])
    assert privacy.loss_attack_score(p, y) == pytest.approx(np.log([0.7, 0.1]))
    assert privacy.confidence_score(p, y) == pytest.approx([0.7, 0.1])
    assert privacy.confidence_score(p) == pytest.approx([0.7, 0.8])
    h0 = -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1))
    assert privacy.entropy_score(p)[0] == pytest.approx(-h0)
    # Song & Mittal's modified entropy of row 1 (true class 1, p_y = 0.1): -(0.9 log 0.1) - 0.1 log 0.9 - 0.8 log 0.2
    m1 = -(0.9 * np.log(0.1)) - 0.1 * np.log(0.9) - 0.8 * np.log(0.2)
    assert privacy.entropy_score(p, y)[1] == pytest.approx(-m1)
    # a confident wrong prediction has low plain entropy but a low (member-unlike) modified-entropy score
    assert privacy.entropy_score(p, y)[1] < privacy.entropy_score(p, y)[0]
    with pytest.raises(ConfigError, match="label spaces"):
        privacy.confidence_score(p, np.array([0, 3]))


def test_lira_statistic_matches_log_odds_of_softmax():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3, size=(4, 7, 5))
    y = rng.integers(0, 5, 7)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    py = p[:, np.arange(7), y]
    assert privacy.lira_statistic(z, y) == pytest.approx(np.log(py / (1 - py)), rel=1e-9)
    assert privacy.lira_statistic(z[0], y) == pytest.approx(privacy.logit_confidence(py[0]), rel=1e-9)
    # stable where float probabilities round to 1
    big = np.array([[200.0, 0.0]])
    assert privacy.lira_statistic(big, [0])[0] == pytest.approx(200.0)
    with pytest.raises(ConfigError, match="label spaces"):
        privacy.lira_statistic(z[0], np.full(7, 5))


def _setup(m=9, n=40, a=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.random((m, n)) < 0.5
    base = rng.normal(size=(n, 1))
    stats = base + 1.5 * mask[:, :, None] + rng.normal(scale=0.7, size=(m, n, a))
    target = base + rng.normal(scale=0.7, size=(n, a))
    return target, stats, mask


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("fix_variance", [False, True])
def test_lira_vectorized_equals_per_example_loop(online, fix_variance):
    target, stats, mask = _setup()
    mask[:, 0] = False  # example 0: no IN model -> excluded online, kept offline
    mask[:, 1] = True  # example 1: no OUT model -> excluded always
    r = privacy.lira_scores(target, stats, mask, online=online, fix_variance=fix_variance, min_models=2)
    kept = [i for i in range(stats.shape[1]) if (~mask[:, i]).sum() >= 2 and (not online or mask[:, i].sum() >= 2)]
    assert r.included.tolist() == [i in kept for i in range(stats.shape[1])]
    assert r.n_excluded == stats.shape[1] - len(kept)
    assert "excluded" in r.message and str(r.n_excluded) in r.message
    sd_in = sd_out = None
    if fix_variance:  # pooled within-example std over the kept examples, per augmentation (hand loop)
        res_out = [stats[~mask[:, i], i] - stats[~mask[:, i], i].mean(0) for i in kept]
        if online:
            res_in = [stats[mask[:, i], i] - stats[mask[:, i], i].mean(0) for i in kept]
            sd_in = np.sqrt((np.concatenate(res_in) ** 2).mean(0))
        sd_out = np.sqrt((np.concatenate(res_out) ** 2).mean(0))
    for i in range(stats.shape[1]):
        if i not in kept:
            assert np.isnan(r.scores[i])
            continue
        want = np.mean(
            [
                privacy.lira_score_one(
                    target[i, j : j + 1],
                    stats[mask[:, i], i, j],
                    stats[~mask[:, i], i, j],
                    online=online,
                    sd_in=None if sd_in is None else sd_in[j],
                    sd_out=None if sd_out is None else sd_out[j],
                )
                for j in range(target.shape[1])
            ]
        )
        assert r.scores[i] == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_lira_score_one_hand_worked():
    # IN stats {2, 4}: N(3, 1); OUT stats {0, 2}: N(1, 1); target 3 -> log N(3;3,1) - log N(3;1,1) = 2
    assert privacy.lira_score_one([3.0], [[2.0], [4.0]], [[0.0], [2.0]]) == pytest.approx(2.0)
    assert privacy.lira_score_one([1.0], None, [[0.0], [2.0]], online=False) == pytest.approx(np.log(0.5))
    # offline equals the existing single-augmentation `lira_offline_score`
    target, stats, mask = _setup(a=1)
    out = np.where(~mask, stats[:, :, 0], np.nan).T
    i = int(np.argmax((~mask).sum(0)))
    col = out[i][~np.isnan(out[i])]
    assert privacy.lira_score_one(target[i], None, col[:, None], online=False) == pytest.approx(
        privacy.lira_offline_score(target[i], col[None, :])[0]
    )


def test_lira_separates_members_and_counts_exclusions():
    target, stats, mask = _setup(m=17, n=300, seed=3)
    scores, labels, bad, msg = privacy.lira_leave_one_out(stats, mask, online=True)
    assert len(scores) == len(labels) == 17 * 300 - bad
    assert privacy.roc_auc(scores, labels) > 0.8
    mask2 = mask.copy()
    mask2[:, :5] = False
    _, _, bad2, msg2 = privacy.lira_leave_one_out(stats, mask2, online=True)
    assert bad2 >= 5 * 17 and "excluded" in msg2
    with pytest.raises(ConfigError, match="min_models"):
        privacy.lira_scores(target, stats, mask, min_models=1)
    with pytest.raises(ConfigError, match="shadow_in"):
        privacy.lira_scores(target, stats, mask.astype(int))


def test_rmia_equals_brute_force_pairs():
    rng = np.random.default_rng(0)
    n, z, r = 30, 50, 6
    px, pz = rng.random(n), rng.random(z)
    rx, rz = rng.random((r, n)), rng.random((r, z))
    for a in (None, 0.3):
        got = privacy.rmia_scores(px, rx, pz, rz, gamma=1.0, offline_a=a)

        def marg(v, a=a):
            return v.mean(0) if a is None else 0.5 * ((1 + a) * v.mean(0) + (1 - a))

        mx, mz = marg(rx), marg(rz)
        want = [np.mean([(px[i] / mx[i]) / (pz[k] / mz[k]) >= 1.0 for k in range(z)]) for i in range(n)]
        assert got == pytest.approx(want)
    with pytest.raises(ConfigError, match="gamma"):
        privacy.rmia_scores(px, rx, pz, rz, gamma=0)


def test_auc_of_attack_scores_matches_sklearn():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(200, 4))
    y = rng.integers(0, 4, 200)
    member = rng.integers(0, 2, 200)
    logits[np.arange(200), y] += 2 * member  # members are fitted better
    p = softmax(logits, axis=1)
    for s in (privacy.loss_attack_score(p, y), privacy.entropy_score(p, y), privacy.lira_statistic(logits, y)):
        assert privacy.roc_auc(s, member) == pytest.approx(skm.roc_auc_score(member, s), abs=1e-12)
        assert privacy.roc_auc(s, member) > 0.7


def test_balanced_leave_one_out_is_unbiased_without_signal():
    # no membership signal at all: every model's statistic is the example's value plus noise
    rng = np.random.default_rng(0)
    m, n = 8, 4000
    order = np.argsort(rng.random((m, n)), axis=0)
    mask = order < m // 2  # each example IN exactly half the models
    stats = rng.normal(size=(1, n, 1)) + rng.normal(size=(m, n, 1))
    s_b, y_b, _, _ = privacy.lira_leave_one_out(stats, mask, fix_variance=True, min_models=1)
    s_u, y_u, _, _ = privacy.lira_leave_one_out(stats, mask, fix_variance=True, min_models=1, balance=False)
    assert abs(privacy.roc_auc(s_b, y_b) - 0.5) < 0.01
    assert privacy.roc_auc(s_u, y_u) < 0.485  # the unequal counts alone bias it low
    # balanced: per (target, example) as many IN as OUT shadows -> equal to lira_scores with that mask by hand
    rest = np.arange(m) != 0
    m_in = mask[rest]
    k = np.minimum(m_in.sum(0), (~m_in).sum(0))
    used = (m_in & (np.cumsum(m_in, 0) <= k)) | (~m_in & (np.cumsum(~m_in, 0) <= k))
    assert ((m_in & used).sum(0) == (~m_in & used).sum(0)).all()
    r = privacy.lira_scores(stats[0], stats[rest], m_in, fix_variance=True, min_models=1, shadow_used=used)
    assert s_b[:n] == pytest.approx(r.scores)
