"""Additive multi-class metrics against a brute-force loop, fairlearn, and a hand-worked example; bad input."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rote.core.errors import ConfigError, DataError
from rote.fairness import class_gaps, equal_opportunity, equalized_odds, fairness_metrics, statistical_parity
from rote.fairness.metrics import FairnessWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairness_oracle import metric_loop  # noqa: E402

FUNCS = {"sp": statistical_parity, "eopp": equal_opportunity, "eodds": equalized_odds}


@st.composite
def populations(draw, max_n=40):
    n = draw(st.integers(4, max_n))
    C = draw(st.integers(2, 4))
    G = draw(st.integers(2, 3))
    y = draw(st.lists(st.integers(0, C - 1), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, C - 1), min_size=n, max_size=n))
    g = draw(st.lists(st.sampled_from("abc"[:G]), min_size=n, max_size=n))
    w = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]), min_size=n, max_size=n))
    return y, p, g, w


@settings(max_examples=80, deadline=None, derandomize=True)
@given(populations(), st.sampled_from(["between_groups", "to_overall"]), st.sampled_from(["sum", "max", "mean"]))
def test_metrics_equal_brute_force(pop, method, agg):
    y, p, g, w = pop
    labels = sorted(set(y) | set(p))
    gw = {a: sum(wi for wi, gi in zip(w, g) if gi == a) for a in set(g)}
    if min(gw.values()) <= 0:
        with pytest.raises(DataError):
            statistical_parity(y, p, sensitive_features=g, sample_weight=w, labels=labels)
        return
    if len(gw) < 2:  # one group (a MetricFrame slice): fairlearn's 0 with a warning saying why
        with pytest.warns(FairnessWarning, match="one group"):
            assert statistical_parity(y, p, sensitive_features=g, sample_weight=w, labels=labels) == 0.0
        return
    for m, f in FUNCS.items():
        want = metric_loop(y, p, g, w, labels, m, method, agg)
        got = f(y, p, sensitive_features=g, sample_weight=w, labels=labels, method=method, agg=agg, undefined="skip")
        if want is None:
            assert np.isnan(got)
        else:
            assert got == pytest.approx(want, abs=1e-12)


def test_hand_worked_example():
    # group a: labels 0,0,1,2 predicted 0,1,1,2;  group b: labels 0,1,1,2 predicted 0,0,1,0
    y = [0, 0, 1, 2, 0, 1, 1, 2]
    p = [0, 1, 1, 2, 0, 0, 1, 0]
    g = ["a"] * 4 + ["b"] * 4
    # SP: P(h|a) = (1/4, 2/4, 1/4), P(h|b) = (3/4, 1/4, 0): gaps 1/2, 1/4, 1/4 -> sum 1, max 1/2
    assert statistical_parity(y, p, sensitive_features=g) == pytest.approx(1.0)
    assert statistical_parity(y, p, sensitive_features=g, agg="max") == pytest.approx(0.5)
    # EOpp: TPR a = (1/2, 1, 1), b = (1, 1/2, 0): gaps 1/2, 1/2, 1 -> sum 2, mean 2/3
    assert equal_opportunity(y, p, sensitive_features=g) == pytest.approx(2.0)
    assert equal_opportunity(y, p, sensitive_features=g, agg="mean") == pytest.approx(2 / 3)
    # EOdds rows: y=0: a (1/2,1/2,0) b (1,0,0) -> 1; y=1: a (0,1,0) b (1/2,1/2,0) -> 1; y=2: a (0,0,1) b (1,0,0) -> 2
    assert equalized_odds(y, p, sensitive_features=g) == pytest.approx(4.0)
    assert equalized_odds(y, p, sensitive_features=g, agg="max") == pytest.approx(2.0)
    gaps = class_gaps(y, p, sensitive_features=g, metric="eopp")
    assert gaps.tolist() == pytest.approx([0.5, 0.5, 1.0])


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_binary_special_cases_equal_fairlearn(method):
    import fairlearn.metrics as flm

    rng = np.random.default_rng(3)
    n = 3000
    y = rng.integers(0, 2, n)
    g = rng.choice(["f", "m", "x"], n, p=[0.3, 0.5, 0.2])
    p = np.where(rng.random(n) < np.where(g == "f", 0.6, 0.8), y, 1 - y)
    w = rng.random(n) * 2
    kw = dict(sensitive_features=g, method=method, sample_weight=w)
    assert statistical_parity(y, p, agg="max", **kw) == pytest.approx(flm.demographic_parity_difference(y, p, **kw))
    assert statistical_parity(y, p, **kw) == pytest.approx(2 * flm.demographic_parity_difference(y, p, **kw))
    assert equal_opportunity(y, p, agg="max", **kw) == pytest.approx(flm.equalized_odds_difference(y, p, **kw))
    assert equal_opportunity(y, p, agg="mean", **kw) == pytest.approx(
        flm.equalized_odds_difference(y, p, agg="mean", **kw)
    )
    assert class_gaps(y, p, metric="eopp", **kw)[1] == pytest.approx(flm.equal_opportunity_difference(y, p, **kw))
    if method == "between_groups":  # EOdds = 2 (|dTPR| + |dFPR|) with two groups
        two = g != "x"
        kw2 = dict(sensitive_features=g[two], sample_weight=w[two])
        tpr = flm.true_positive_rate_difference(y[two], p[two], **kw2)
        fpr = flm.false_positive_rate_difference(y[two], p[two], **kw2)
        assert equalized_odds(y[two], p[two], **kw2) == pytest.approx(2 * (tpr + fpr))


def test_multiclass_gaps_equal_metricframe_per_class_loop():
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

    rng = np.random.default_rng(4)
    n, C = 2000, 5
    y = rng.integers(0, C, n)
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, C, n))
    g = rng.choice(["a", "b", "c"], n)
    for method in ("between_groups", "to_overall"):
        sp = class_gaps(y, p, sensitive_features=g, metric="sp", method=method)
        eo = class_gaps(y, p, sensitive_features=g, metric="eopp", method=method)
        for k in range(C):  # one-vs-rest: the binary metric per class, as a MetricFrame user would write it
            mf = MetricFrame(
                metrics={
                    "sel": functools.partial(selection_rate, pos_label=1),
                    "tpr": functools.partial(true_positive_rate, pos_label=1),
                },
                y_true=(y == k).astype(int),
                y_pred=(p == k).astype(int),
                sensitive_features=g,
            )
            diff = mf.difference(method=method)
            assert sp[k] == pytest.approx(diff["sel"])
            assert eo[k] == pytest.approx(diff["tpr"])


def test_pandas_string_dtype_and_intersectional_groups():
    df = pd.DataFrame(
        {
            "y": pd.array(["cat", "dog", "cat", "eel", "dog", "cat"], dtype="string"),
            "p": pd.array(["cat", "cat", "cat", "eel", "dog", "dog"], dtype="string"),
            "sex": pd.array(["f", "f", "m", "m", "f", "m"], dtype="string"),
            "race": ["x", "y", "x", "y", "x", "y"],
        }
    )
    v = statistical_parity(df["y"], df["p"], sensitive_features=df["sex"])
    ints = statistical_parity([0, 1, 0, 2, 1, 0], [0, 0, 0, 2, 1, 1], sensitive_features=[0, 0, 1, 1, 0, 1])
    assert v == pytest.approx(ints)
    r = fairness_metrics(df["y"], df["p"], sensitive_features=df[["sex", "race"]], metrics=["sp"])
    assert r.groups == ["f, x", "f, y", "m, x", "m, y"]


def test_undefined_classes_raise_or_are_reported():
    y = [0, 0, 1, 1, 0, 0]
    p = [0, 1, 1, 0, 0, 0]
    g = ["a", "a", "a", "a", "b", "b"]  # group b has no class 1
    with pytest.raises(DataError, match=r"group 'b' has no rows of class 1"):
        equal_opportunity(y, p, sensitive_features=g)
    assert equal_opportunity(y, p, sensitive_features=g, undefined="skip") == pytest.approx(0.5)
    r = fairness_metrics(y, p, sensitive_features=g, undefined="skip")
    assert set(r.undefined["eopp"]) == {"1"} and "no rows" in r.undefined["eopp"]["1"]
    row = r.per_class[(r.per_class.metric == "eopp") & (r.per_class["class"] == "1")].iloc[0]
    assert not row["defined"] and np.isnan(row["gap"])
    assert r.undefined["sp"] == {}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_pred=[0, 1, 7, 0]), r"y_pred: prediction 7 at row 3 is not a class"),
        (dict(sensitive_features=["a"] * 4), r"a single group 'a'"),
        (dict(sample_weight=[1.0, -1.0, 1.0, 1.0]), r"sample_weight: value -1.0 at row 2"),
        (dict(sample_weight=[0.0, 0.0, 0.0, 0.0]), r"all weights are zero"),
        (dict(sample_weight=[0.0, 0.0, 1.0, 1.0]), r"every row of group 'a' has weight 0"),
        (dict(y_true=[0, np.nan, 1, 0]), r"y_true: missing value at row 2"),
        (dict(y_pred=[0, 1, 0]), r"y_pred: has 3 rows, y_true has 4"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(y_true=[0, 1, 1, 0], y_pred=[0, 1, 0, 0], sensitive_features=["a", "a", "b", "b"])
    args.update(kwargs)
    with pytest.raises(DataError, match=match):
        fairness_metrics(args.pop("y_true"), args.pop("y_pred"), **args)


def test_labels_argument_and_bad_options():
    y, p, g = ["a", "b", "a", "b"], ["a", "c", "a", "b"], [0, 0, 1, 1]
    with pytest.raises(DataError, match="pass labels"):  # the detailed result guards against label typos
        fairness_metrics(y, p, sensitive_features=g)
    assert statistical_parity(y, p, sensitive_features=g, labels=["a", "b", "c"]) == pytest.approx(1.0)
    # the scalar metrics take the classes of y_true and y_pred, as scikit-learn and fairlearn do
    assert statistical_parity(y, p, sensitive_features=g) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="agg='median'"):
        statistical_parity(y, y, sensitive_features=g, agg="median")
    with pytest.raises(ConfigError, match="method="):
        statistical_parity(y, y, sensitive_features=g, method="ratio")


def test_bootstrap_intervals_are_seeded_and_cover_the_estimate():
    rng = np.random.default_rng(5)
    n = 600
    y = rng.integers(0, 3, n)
    g = rng.choice(["a", "b"], n)
    p = np.where(rng.random(n) < np.where(g == "a", 0.5, 0.8), y, rng.integers(0, 3, n))
    r1 = fairness_metrics(y, p, sensitive_features=g, n_boot=200, seed=1)
    r2 = fairness_metrics(y, p, sensitive_features=g, n_boot=200, seed=1)
    assert r1.intervals == r2.intervals
    for m, iv in r1.intervals.items():
        assert iv["estimate"] == pytest.approx(r1.values[m])
        assert iv["low"] < iv["estimate"] < iv["high"]
    # the estimator's sampling spread: a 4x larger sample gives a clearly narrower interval
    big = fairness_metrics(np.tile(y, 4), np.tile(p, 4), sensitive_features=np.tile(g, 4), n_boot=200, seed=1)
    for m in r1.intervals:
        w_small = r1.intervals[m]["high"] - r1.intervals[m]["low"]
        w_big = big.intervals[m]["high"] - big.intervals[m]["low"]
        assert w_big < 0.75 * w_small


def test_result_tables_and_accuracy():
    y = [0, 0, 1, 2, 0, 1, 1, 2]
    p = [0, 1, 1, 2, 0, 0, 1, 0]
    g = ["a"] * 4 + ["b"] * 4
    r = fairness_metrics(y, p, sensitive_features=g)
    assert r.accuracy == pytest.approx(5 / 8)
    rates = r.rates[(r.rates.metric == "eodds") & (r.rates.group == "b") & (r.rates["class"] == "2")]
    assert rates["rate"].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert r.to_dict()["values"]["sp"] == pytest.approx(1.0)


def test_label_encodings_agree():
    # small non-negative ints (bincount path), large / negative ints and floats (factorize path), booleans, strings
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    p = np.array([1, 1, 0, 1, 0, 0, 1, 1])
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    want = equalized_odds(y, p, sensitive_features=g)
    # group 0: FPR 1/1, TPR 2/3; group 1: FPR 1/3, TPR 1/1 -> 2 (|dTPR| + |dFPR|) = 2 (1/3 + 2/3)
    assert want == pytest.approx(2.0)
    for yy, pp, gg in (
        (y * 10**9 - 7, p * 10**9 - 7, g),
        (y.astype(bool), p.astype(bool), g.astype(bool)),
        (y.astype(float), p.astype(float), g.astype(str)),
        (y.astype(str), p.astype(str), g),
    ):
        assert equalized_odds(yy, pp, sensitive_features=gg) == pytest.approx(want)


def test_drops_into_metricframe_as_a_metric():
    # the fairlearn signature lets a MetricFrame split by one attribute and pass another per-sample column
    # through sample_params: here the sex gap of each metric within each region
    from fairlearn.metrics import MetricFrame

    rng = np.random.default_rng(6)
    n = 1500
    y = rng.integers(0, 3, n)
    p = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    sex = rng.choice(["f", "m"], n)
    region = rng.choice(["north", "south"], n)
    mf = MetricFrame(
        metrics={"sp": statistical_parity, "eodds": equalized_odds},
        y_true=y,
        y_pred=p,
        sensitive_features=region,
        sample_params={"sp": {"sensitive_features": sex}, "eodds": {"sensitive_features": sex}},
    )
    for r in ("north", "south"):
        keep = region == r
        kw = dict(sensitive_features=sex[keep])
        assert mf.by_group.loc[r, "sp"] == pytest.approx(statistical_parity(y[keep], p[keep], **kw))
        assert mf.by_group.loc[r, "eodds"] == pytest.approx(equalized_odds(y[keep], p[keep], **kw))
