"""What a fairlearn (or AIF360) user expects: ratios, pos_label, the groups that set each gap, per-group base rates,
per-class bootstrap intervals, small-group warnings, and the metrics inside a MetricFrame on degenerate slices.
Checked against fairlearn 0.15, pandas group-bys and a plain replicate loop."""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import ConfigError
from rote.core.stats import bootstrap_ci
from rote.fairness import (
    FairnessWarning,
    equal_opportunity,
    equalized_odds,
    fairness_metrics,
    parity_ratio,
    statistical_parity,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairness_oracle import metric_loop, rates_loop  # noqa: E402

FUNCS = {"sp": statistical_parity, "eopp": equal_opportunity, "eodds": equalized_odds}


def _data(seed=0, n=900, C=4, groups=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    g = rng.choice(groups, n, p=np.linspace(1, 2, len(groups)) / np.linspace(1, 2, len(groups)).sum())
    p = np.where(rng.random(n) < np.where(g == groups[0], 0.55, 0.8), y, rng.integers(0, C, n))
    w = rng.uniform(0.2, 2.0, n)
    return y, p, g, w


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_pos_label_equals_fairlearn_binary_metrics_one_vs_rest(method):
    import fairlearn.metrics as flm

    y, p, g, w = _data(1)
    for pos in (0, 2):
        yb, pb = (y == pos).astype(int), (p == pos).astype(int)
        kw = dict(sensitive_features=g, sample_weight=w, method=method)
        want = {
            ("sp", "d"): flm.demographic_parity_difference(yb, pb, **kw),
            ("sp", "r"): flm.demographic_parity_ratio(yb, pb, **kw),
            ("eopp", "d"): flm.equal_opportunity_difference(yb, pb, **kw),
            ("eopp", "r"): flm.equal_opportunity_ratio(yb, pb, **kw),
            ("eodds", "d"): flm.equalized_odds_difference(yb, pb, **kw),
            ("eodds", "r"): flm.equalized_odds_ratio(yb, pb, **kw),
        }
        r = fairness_metrics(y, p, pos_label=pos, **kw)
        for m, f in FUNCS.items():
            assert f(y, p, pos_label=pos, **kw) == pytest.approx(want[(m, "d")], abs=1e-12)
            assert parity_ratio(y, p, metric=m, pos_label=pos, **kw) == pytest.approx(want[(m, "r")], abs=1e-12)
            assert r.binary[m]["difference"] == pytest.approx(want[(m, "d")], abs=1e-12)
            assert r.binary[m]["ratio"] == pytest.approx(want[(m, "r")], abs=1e-12)
    with pytest.raises(ConfigError, match="`pos_label` 9 is not a class"):
        statistical_parity(y, p, sensitive_features=g, pos_label=9)


def test_per_class_ratios_and_extreme_groups_equal_metricframe():
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

    y, p, g, w = _data(2)
    r = fairness_metrics(y, p, sensitive_features=g, sample_weight=w)
    pc = r.per_class.set_index(["metric", "class"])
    worst = {"sp": 1.0, "eopp": 1.0}
    for k in range(4):
        mf = MetricFrame(
            metrics={
                "sp": functools.partial(selection_rate, pos_label=1),
                "eopp": functools.partial(true_positive_rate, pos_label=1),
            },
            y_true=(y == k).astype(int),
            y_pred=(p == k).astype(int),
            sensitive_features=g,
            sample_params={"sp": {"sample_weight": w}, "eopp": {"sample_weight": w}},
        )
        ratio, gmax, gmin = mf.ratio(), mf.by_group.idxmax(), mf.by_group.idxmin()
        for m in ("sp", "eopp"):
            row = pc.loc[(m, str(k))]
            assert row["ratio"] == pytest.approx(ratio[m], abs=1e-12)
            assert (row["group_max"], row["group_min"]) == (gmax[m], gmin[m])
            worst[m] = min(worst[m], ratio[m])
    assert r.ratios["sp"] == pytest.approx(worst["sp"]) and r.ratios["eopp"] == pytest.approx(worst["eopp"])
    assert parity_ratio(y, p, sensitive_features=g, sample_weight=w) == pytest.approx(worst["sp"])
    # EOdds: the smallest ratio over every confusion entry, from the brute-force rate loop
    rates = rates_loop(list(y), list(p), list(g), list(w), list(range(4)), "eodds")
    entries = [min(rates[a][key] for a in rates) / max(rates[a][key] for a in rates) for key in rates["a"]]
    assert r.ratios["eodds"] == pytest.approx(min(entries), abs=1e-12)


def test_group_stats_base_rates_counts_and_privileged_differences():
    y, p, g, w = _data(3, C=3)
    r = fairness_metrics(y, p, sensitive_features=g, sample_weight=w, privileged="c")
    df = pd.DataFrame({"y": y, "p": p, "g": g, "w": w})
    gs = r.group_stats.set_index(["group", "class"])
    for (a, k), row in gs.iterrows():
        sub = df[df.g == a]
        assert row["rows"] == len(sub) and row["weight"] == pytest.approx(sub.w.sum())
        assert row["base_rate"] == pytest.approx(sub.w[sub.y == int(k)].sum() / sub.w.sum())
        assert row["selection_rate"] == pytest.approx(sub.w[sub.p == int(k)].sum() / sub.w.sum())
        # AIF360's convention: (un)privileged group's rate minus the privileged group's
        priv = df[df.g == "c"]
        sel_priv = priv.w[priv.p == int(k)].sum() / priv.w.sum()
        assert row["selection_rate_difference"] == pytest.approx(row["selection_rate"] - sel_priv)
        assert row["selection_rate_ratio"] == pytest.approx(row["selection_rate"] / sel_priv)
        cls, cls_priv = sub[sub.y == int(k)], priv[priv.y == int(k)]
        tpr = cls.w[cls.p == int(k)].sum() / cls.w.sum()
        tpr_priv = cls_priv.w[cls_priv.p == int(k)].sum() / cls_priv.w.sum()
        assert row["true_positive_rate_difference"] == pytest.approx(tpr - tpr_priv)
    with pytest.raises(ConfigError, match="`privileged` 'zz' is not a group"):
        fairness_metrics(y, p, sensitive_features=g, privileged="zz")


def test_per_class_bootstrap_intervals_equal_a_replicate_loop_and_core_bootstrap():
    rng = np.random.default_rng(4)
    n = 160
    y = rng.integers(0, 3, n)
    g = rng.choice(["a", "b"], n)
    p = np.where(rng.random(n) < np.where(g == "a", 0.5, 0.8), y, rng.integers(0, 3, n))
    n_boot, seed = 40, 7
    r = fairness_metrics(y, p, sensitive_features=g, n_boot=n_boot, seed=seed, undefined="skip")
    labels = [0, 1, 2]
    # the aggregate intervals are exactly rote.core.stats.bootstrap_ci's (same replicates)
    for m in ("sp", "eopp", "eodds"):
        iv = bootstrap_ci(
            lambda yy, pp, gg, m=m: metric_loop(list(yy), list(pp), list(gg), [1.0] * len(yy), labels, m),
            y,
            p,
            g,
            n_boot=n_boot,
            seed=seed,
        )
        assert (r.intervals[m]["low"], r.intervals[m]["high"]) == pytest.approx((iv.low, iv.high), abs=1e-12)
    # the per-class intervals: the same replicates, one class gap at a time, computed by a plain loop
    draws = np.random.default_rng(seed)
    per = {m: [] for m in ("sp", "eopp")}
    for _ in range(n_boot):
        idx = draws.integers(0, n, n)
        yy, pp, gg = list(y[idx]), list(p[idx]), list(g[idx])
        for m in per:
            rates = rates_loop(yy, pp, gg, [1.0] * n, labels, m)
            per[m].append([abs(rates["a"][k] - rates["b"][k]) for k in labels])
    pc = r.per_class.set_index(["metric", "class"])
    for m, vals in per.items():
        lo, hi = np.quantile(np.array(vals), [0.025, 0.975], axis=0)
        for k in labels:
            assert pc.loc[(m, str(k)), "ci_low"] == pytest.approx(lo[k], abs=1e-12)
            assert pc.loc[(m, str(k)), "ci_high"] == pytest.approx(hi[k], abs=1e-12)
            assert lo[k] <= pc.loc[(m, str(k)), "gap"] + 0.2


def test_small_groups_are_warned_about():
    y, p, g, _ = _data(5, n=400)
    g = g.astype(object)
    g[:7] = "tiny"
    with pytest.warns(FairnessWarning, match="group 'tiny' has 7 rows"):
        r = fairness_metrics(y, p, sensitive_features=g, undefined="skip")
    assert len(r.warnings) == 1 and "tiny" in r.warnings[0] and "tiny" in r.summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fairness_metrics(y, p, sensitive_features=g, undefined="skip", small_group=5)


def test_metricframe_degenerate_slices_give_fairlearns_values():
    """Inside a MetricFrame a slice can hold one group or one label; fairlearn returns a number there, so does
    rote (0 for one group, with a FairnessWarning saying why); labels and options reach the metric through
    functools.partial (sample_params only carries per-row arrays)."""
    import fairlearn.metrics as flm
    from fairlearn.metrics import MetricFrame

    rng = np.random.default_rng(6)
    n = 600
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.7, y, 1 - y)
    sex = rng.choice(["f", "m"], n)
    region = rng.choice(["north", "south", "east", "west"], n)
    sex[region == "north"] = "f"  # one group in this slice
    y[region == "south"] = 1  # one label in this slice
    p[(region == "south") & (sex == "f")] = 1  # ... and one prediction for one group
    with pytest.warns(FairnessWarning, match="one group 'f'"):
        mf = MetricFrame(
            metrics={
                "sp": functools.partial(statistical_parity, pos_label=1),
                "eo": functools.partial(equalized_odds, pos_label=1, undefined="zero", labels=[0, 1]),
                "sp_multi": statistical_parity,
            },
            y_true=y,
            y_pred=p,
            sensitive_features=region,
            sample_params={k: {"sensitive_features": sex} for k in ("sp", "eo", "sp_multi")},
        )
    for r in ("north", "south", "east", "west"):
        keep = region == r
        kw = dict(sensitive_features=sex[keep])
        assert mf.by_group.loc[r, "sp"] == pytest.approx(flm.demographic_parity_difference(y[keep], p[keep], **kw))
        assert mf.by_group.loc[r, "eo"] == pytest.approx(flm.equalized_odds_difference(y[keep], p[keep], **kw))
    assert mf.by_group.loc["north", "sp_multi"] == 0.0
    # a slice with one true label but two predicted classes: the classes are those of y_true and y_pred
    s = region == "south"
    assert mf.by_group.loc["south", "sp_multi"] == pytest.approx(
        2 * flm.demographic_parity_difference(y[s], p[s], sensitive_features=sex[s])
    )
