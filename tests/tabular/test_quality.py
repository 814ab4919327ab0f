"""Quality metrics, each against an independent computation (brute force, a second library, hand-worked)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler
from threadpoolctl import threadpool_limits

from rote.core.errors import ConfigError, DataError
from rote.core.runs import RunFolder
from rote.data import TableSchema
from rote.tabular.audit import audit
from rote.tabular.quality import (
    alpha_precision_beta_recall,
    c2st_score,
    dcr_share,
    marginals,
    mle_score,
    quality_report,
    shape_score,
    trend_score,
)

SCHEMA = TableSchema(("x", "z"), ("g", "y"), "y")


def table(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    g = rng.choice(list("abc"), n, p=[0.5, 0.3, 0.2])
    z = x * 0.8 + rng.normal(0, 0.6, n) + (g == "a")
    y = np.where(x + (g == "b") + rng.normal(0, 0.5, n) > 0.3, "1", "0")
    return pd.DataFrame({"x": x, "z": z, "g": g, "y": y})


def ks_brute(a, b) -> float:
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def test_shape_score_matches_brute_force_ks_and_hand_tvd():
    r, s = table(300, 0), table(200, 1, shift=0.3)
    res = shape_score(r, s, SCHEMA)
    per = res.columns.set_index("column")["score"]
    assert per["x"] == pytest.approx(1 - ks_brute(r["x"].to_numpy(), s["x"].to_numpy()))
    pr = r["g"].value_counts(normalize=True)
    ps = s["g"].value_counts(normalize=True)
    tvd = 0.5 * sum(abs(pr.get(k, 0) - ps.get(k, 0)) for k in set(pr.index) | set(ps.index))
    assert per["g"] == pytest.approx(1 - tvd)
    assert res.score == pytest.approx(per.mean())


def test_shape_score_hand_worked():
    r = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": ["a", "a", "b", "b"]})
    s = pd.DataFrame({"x": [3.0, 4.0, 5.0, 6.0], "g": ["a", "c", "c", "c"]})
    res = shape_score(r, s, TableSchema(("x",), ("g",)))
    # KS: ECDFs differ by 0.5 at x = 2 (0.5 vs 0); TVD = 0.5 (|.5-.25| + |.5-0| + |0-.75|) = 0.75
    assert res.columns["score"].tolist() == pytest.approx([0.5, 0.25])
    assert res.score == pytest.approx(0.375)


def test_trend_score_pairs_match_definitions():
    r, s = table(400, 2), table(300, 3, shift=0.5)
    res = trend_score(r, s, SCHEMA)
    pairs = res.pairs.set_index(["column_1", "column_2"])["score"]
    rho_r, rho_s = np.corrcoef(r["x"], r["z"])[0, 1], np.corrcoef(s["x"], s["z"])[0, 1]
    assert pairs[("x", "z")] == pytest.approx(1 - abs(rho_r - rho_s) / 2)
    jr = pd.crosstab(r["g"], r["y"], normalize=True).stack()
    js = pd.crosstab(s["g"], s["y"], normalize=True).stack()
    keys = jr.index.union(js.index)
    assert pairs[("g", "y")] == pytest.approx(
        1 - 0.5 * np.abs(jr.reindex(keys, fill_value=0) - js.reindex(keys, fill_value=0)).sum()
    )
    # numeric-categorical: each table binned on its own 10 equal-width edges (SDMetrics' report)
    br = np.digitize(r["x"], np.histogram_bin_edges(r["x"]))
    bs = np.digitize(s["x"], np.histogram_bin_edges(s["x"]))
    jr = pd.crosstab(br, r["g"].to_numpy(), normalize=True).stack()
    js = pd.crosstab(bs, s["g"].to_numpy(), normalize=True).stack()
    keys = jr.index.union(js.index)
    want = 1 - 0.5 * np.abs(jr.reindex(keys, fill_value=0) - js.reindex(keys, fill_value=0)).sum()
    assert pairs[("x", "g")] == pytest.approx(want)
    assert res.n_pairs == 6 and res.n_undefined == 0 and res.score == pytest.approx(pairs.mean())
    shared = trend_score(r, s, SCHEMA, binning="shared").pairs.set_index(["column_1", "column_2"])["score"]
    edges = np.histogram_bin_edges(r["x"])
    edges[0], edges[-1] = -np.inf, np.inf
    jr = pd.crosstab(np.digitize(r["x"], edges), r["g"].to_numpy(), normalize=True).stack()
    js = pd.crosstab(np.digitize(s["x"], edges), s["g"].to_numpy(), normalize=True).stack()
    keys = jr.index.union(js.index)
    assert shared[("x", "g")] == pytest.approx(
        1 - 0.5 * np.abs(jr.reindex(keys, fill_value=0) - js.reindex(keys, fill_value=0)).sum()
    )
    with pytest.raises(ConfigError, match="binning"):
        trend_score(r, s, SCHEMA, binning="quantile")


def test_tiny_tables_are_defined_or_refused_clearly():
    from rote.core.errors import DataError

    one = table(1, 21)
    assert shape_score(one, one, SCHEMA).score == pytest.approx(1.0)
    tr = trend_score(one, one, SCHEMA)
    assert tr.n_undefined == 1 and tr.score == pytest.approx(1.0)  # x-z correlation undefined, the rest agree
    with pytest.raises(DataError, match="at least 2 rows"):
        alpha_precision_beta_recall(one, table(5, 22), SCHEMA)
    with pytest.raises(DataError, match="3-fold"):
        c2st_score(table(2, 23), table(50, 24), SCHEMA)


def test_trend_score_constant_column_is_left_out_not_nan():
    r, s = table(100, 4), table(100, 5)
    s = s.assign(z=1.0)
    res = trend_score(r, s, SCHEMA)
    assert res.n_undefined == 1 and "constant" in res.pairs["note"].str.cat()
    assert np.isfinite(res.score)
    assert identical_scores_are_one(r)


def identical_scores_are_one(r):
    return shape_score(r, r, SCHEMA).score == pytest.approx(1.0) and trend_score(r, r, SCHEMA).score == pytest.approx(
        1.0
    )


def alpha_beta_reference(r: pd.DataFrame, s: pd.DataFrame):
    """synthcity's naive AlphaPrecision, restated with scikit-learn: one-hot + MinMax on real, sklearn kNN."""
    enc = OneHotEncoder(handle_unknown="ignore").fit(r[["g", "y"]])
    x = np.hstack([r[["x", "z"]].to_numpy(), enc.transform(r[["g", "y"]]).toarray()])
    y = np.hstack([s[["x", "z"]].to_numpy(), enc.transform(s[["g", "y"]]).toarray()])
    sc = MinMaxScaler().fit(x)
    x, y = sc.transform(x), sc.transform(y)
    alphas = np.linspace(0, 1, 30)
    c = x.mean(0)
    radii = np.quantile(np.sqrt(((x - c) ** 2).sum(1)), alphas)
    s_to_c = np.sqrt(((y - c) ** 2).sum(1))
    rr = NearestNeighbors(n_neighbors=2).fit(x).kneighbors(x)[0][:, 1]
    d, idx = NearestNeighbors(n_neighbors=1).fit(y).kneighbors(x)
    d, idx = d[:, 0], idx[:, 0]
    closest = np.sqrt(((y[idx] - y.mean(0)) ** 2).sum(1))
    cr = np.quantile(closest, alphas)
    prec = [np.mean(s_to_c <= radii[k]) for k in range(30)]
    cov = [np.mean((d <= rr) * (closest <= cr[k])) for k in range(30)]
    return (
        1 - np.abs(alphas - prec).sum() / alphas.sum(),
        1 - np.abs(alphas - cov).sum() / alphas.sum(),
        np.mean(rr[idx] < d),
    )


def scaled_design(r: pd.DataFrame, s: pd.DataFrame):
    enc = OneHotEncoder(handle_unknown="ignore").fit(r[["g", "y"]])
    x = np.hstack([r[["x", "z"]].to_numpy(), enc.transform(r[["g", "y"]]).toarray()])
    y = np.hstack([s[["x", "z"]].to_numpy(), enc.transform(s[["g", "y"]]).toarray()])
    sc = MinMaxScaler().fit(x)
    return sc.transform(x), sc.transform(y)


def authenticity_brute(r: pd.DataFrame, s: pd.DataFrame) -> float:
    """Alaa et al.'s authenticity by plain loops: a synthetic row is unauthentic when its distance to its nearest
    real row is smaller than that real row's distance to its own nearest other real row."""
    x, y = scaled_design(r, s)
    own = [min(math.dist(x[i], x[k]) for k in range(len(x)) if k != i) for i in range(len(x))]
    authentic = 0
    for j in range(len(y)):
        d = [math.dist(y[j], x[i]) for i in range(len(x))]
        i = int(np.argmin(d))
        authentic += own[i] < d[i]
    return authentic / len(y)


def test_alpha_precision_beta_recall_matches_sklearn_reference():
    r, s = table(300, 6), table(300, 7, shift=0.4)
    res = alpha_precision_beta_recall(r, s, SCHEMA)
    a, b, auth = alpha_beta_reference(r, s)
    assert res.alpha_precision == pytest.approx(a, abs=1e-12)
    assert res.beta_recall == pytest.approx(b, abs=1e-12)
    # synthcity's authenticity (its index mix-up) on request; Alaa et al.'s by default (brute force below)
    mixed = alpha_precision_beta_recall(r, s, SCHEMA, authenticity="synthcity")
    assert mixed.authenticity == pytest.approx(auth) and mixed.authenticity_definition == "synthcity"
    assert res.authenticity == pytest.approx(authenticity_brute(r, s)) and res.authenticity_definition == "alaa"
    assert mixed.alpha_precision == res.alpha_precision and mixed.beta_recall == res.beta_recall
    assert mixed.authenticity_other == res.authenticity and res.authenticity_other == mixed.authenticity
    assert len(res.curves) == 30 and res.n == 300 and res.variant == "naive"
    # unequal sizes: the larger table is subsampled (seeded) to the smaller one's size
    big = alpha_precision_beta_recall(table(500, 8), s, SCHEMA, seed=1)
    assert big.n == 300
    assert big.alpha_precision == alpha_precision_beta_recall(table(500, 8), s, SCHEMA, seed=1).alpha_precision
    capped = alpha_precision_beta_recall(r, s, SCHEMA, max_rows=100)
    assert capped.n == 100 and len(capped.curves) == 30
    with pytest.raises(ConfigError, match="max_rows"):
        alpha_precision_beta_recall(r, s, SCHEMA, max_rows=1)


def test_c2st_matches_sdmetrics_definition_with_sklearn():
    r, s = table(300, 9), table(300, 10, shift=0.7)
    got = c2st_score(r, s, SCHEMA, seed=3)
    enc = OneHotEncoder(handle_unknown="ignore").fit(r[["g", "y"]])

    def feats(t):
        return np.hstack([t[["x", "z"]].to_numpy(), enc.transform(t[["g", "y"]]).toarray()])

    x = np.vstack([feats(r), feats(s)])
    y = np.r_[np.ones(300), np.zeros(300)]
    scores = []
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=3).split(x, y):
        m = Pipeline([("s", RobustScaler()), ("c", LogisticRegression(solver="lbfgs"))]).fit(x[tr], y[tr])
        scores.append(max(0.5, roc_auc_score(y[te], m.predict_proba(x[te])[:, 1])) * 2 - 1)
    assert got == pytest.approx(1 - np.mean(scores), abs=1e-9)
    assert c2st_score(r, table(300, 11), SCHEMA) > 0.8  # same distribution: hard to tell apart
    assert c2st_score(r, table(300, 12, shift=5), SCHEMA) < 0.05  # far apart: easy


def test_mle_score_auc_and_undefined_cases():
    train, test = table(600, 13), table(400, 14)
    res = mle_score(train, test, SCHEMA, seed=0)
    from sklearn.ensemble import HistGradientBoostingClassifier

    codes = {"a": 0, "b": 1, "c": 2}
    xtr = np.c_[train[["x", "z"]].to_numpy(), train["g"].map(codes).to_numpy()]
    xte = np.c_[test[["x", "z"]].to_numpy(), test["g"].map(codes).to_numpy()]
    m = HistGradientBoostingClassifier(categorical_features=[False, False, True], random_state=0)
    with threadpool_limits(1):  # OpenMP spin-waiting on a busy CI machine is 100x slower
        m.fit(xtr, (train["y"] == "1").astype(int))
        want = roc_auc_score(test["y"] == "1", m.predict_proba(xte)[:, 1])
    assert res.auc == pytest.approx(want)
    assert 0.8 < res.auc <= 1.0
    one = mle_score(train.assign(y="1"), test, SCHEMA)
    assert np.isnan(one.auc) and "one class" in one.note
    with pytest.raises(ConfigError, match="target"):
        mle_score(train, test, SCHEMA, target="x")


def test_dcr_share_is_the_audit_holdout_dcr():
    train, hold, synth = table(200, 15), table(200, 16), table(150, 17)
    got = dcr_share(train, synth, hold, SCHEMA)
    want = audit(train, synth, holdout=hold, schema=SCHEMA, distance="gower").dcr
    assert got == want
    copies = dcr_share(train, train.iloc[:100], hold, SCHEMA)
    assert copies["share_closer_to_train"] == 1.0


def test_quality_report_runs_everything_and_saves(tmp_path):
    train, test, synth = table(300, 18), table(200, 19), table(300, 20, shift=0.2)
    q = quality_report(train, synth, SCHEMA, test, seed=0, oc_epochs=20)
    assert q.shape == pytest.approx(shape_score(train, synth, SCHEMA).score)
    assert q.trend == pytest.approx(trend_score(train, synth, SCHEMA).score)
    assert q.c2st == pytest.approx(c2st_score(train, synth, SCHEMA, seed=0))
    assert q.mle_auc == pytest.approx(mle_score(synth, test, SCHEMA, seed=0).auc)
    assert q.dcr_share == pytest.approx(dcr_share(train, synth, test, SCHEMA)["share_closer_to_train"])
    assert "shape" in q.summary()
    run = RunFolder(tmp_path / "run")
    paths = q.save(run)
    saved = json.loads(paths["results"].read_text())
    assert saved["shape"] == pytest.approx(q.shape) and "shape_columns" not in saved
    assert pd.read_parquet(paths["trend_pairs"]).shape[0] == 6
    no_test = quality_report(train, synth, SCHEMA, one_class=False)
    assert no_test.mle_auc is None and no_test.dcr_share is None and no_test.notes


def test_trend_thresholds_follow_sdmetrics_032():
    from scipy.stats.contingency import association

    from rote.tabular.quality import SDMETRICS_032_THRESHOLDS

    r, s = table(400, 25), table(300, 26, shift=0.5)
    res = trend_score(r, s, SCHEMA, **SDMETRICS_032_THRESHOLDS)
    pairs = res.pairs.set_index(["column_1", "column_2"])
    assert pairs.loc[("x", "z"), "meets_threshold"] == (abs(np.corrcoef(r["x"], r["z"])[0, 1]) > 0.5)
    v = association(pd.crosstab(r["g"], r["y"]).to_numpy(), method="cramer")
    assert pairs.loc[("g", "y"), "meets_threshold"] == (v > 0.3)
    bins = np.digitize(r["x"], np.histogram_bin_edges(r["x"]))
    v = association(pd.crosstab(bins, r["y"].to_numpy()).to_numpy(), method="cramer")
    assert pairs.loc[("x", "y"), "meets_threshold"] == (v > 0.3)
    kept = pairs[pairs["meets_threshold"]]
    assert 0 < len(kept) < len(pairs)
    assert res.score == pytest.approx(kept["score"].mean())


def test_quality_report_one_class_fields_curves_and_marginals(tmp_path):
    train, synth = table(120, 30), table(120, 31, shift=0.3)
    q = quality_report(train, synth, SCHEMA, seed=2, oc_epochs=20)
    oc = alpha_precision_beta_recall(train, synth, SCHEMA, seed=2, variant="oc", oc_epochs=20)
    assert (q.alpha_precision_oc, q.beta_recall_oc, q.authenticity_oc) == (
        oc.alpha_precision,
        oc.beta_recall,
        oc.authenticity,
    )
    assert q.alpha_beta_curves["alpha_precision_oc"].tolist() == oc.curves["alpha_precision"].tolist()
    assert q.authenticity_definition == "alaa" and "one-class" in q.summary()
    assert q.marginals.equals(marginals(train, synth, SCHEMA))
    paths = q.save(RunFolder(tmp_path / "run"))
    assert pd.read_parquet(paths["marginals"]).shape == q.marginals.shape
    skipped = quality_report(train, synth, SCHEMA, one_class=False)
    assert skipped.alpha_precision_oc is None and "alpha_precision_oc" not in skipped.alpha_beta_curves


def test_one_class_copy_is_on_the_diagonal_and_disjoint_support_is_zero():
    r = table(150, 32)
    alphas = np.linspace(0, 1, 30)
    for variant, oc_input in (("naive", "raw"), ("oc", "raw"), ("oc", "minmax")):
        same = alpha_precision_beta_recall(r, r.copy(), SCHEMA, variant=variant, oc_epochs=60, oc_input=oc_input)
        # a copy: both curves follow the diagonal up to the quantiles' step of 1/n (+ ties at the top)
        assert np.abs(same.curves["alpha_precision"] - alphas).max() <= 2 / 150
        assert np.abs(same.curves["beta_coverage"] - alphas).max() <= 2 / 150
        assert same.alpha_precision > 0.99 and same.beta_recall > 0.99
        assert same.authenticity == 0.0  # every synthetic row sits on a real row
        far = r.assign(x=r["x"] + 50, z=r["z"] + 50)
        far = alpha_precision_beta_recall(r, far, SCHEMA, variant=variant, oc_epochs=60, oc_input=oc_input)
        assert far.alpha_precision == pytest.approx(0.0, abs=0.02) and far.beta_recall == pytest.approx(0, abs=0.02)
        assert far.authenticity == 1.0 and far.variant == variant
    with pytest.raises(ConfigError, match="`variant`"):
        alpha_precision_beta_recall(r, r, SCHEMA, variant="deep")
    with pytest.raises(ConfigError, match="`authenticity`"):
        alpha_precision_beta_recall(r, r, SCHEMA, authenticity="mixed")
    with pytest.raises(ConfigError, match="`oc_input`"):
        alpha_precision_beta_recall(r, r, SCHEMA, variant="oc", oc_input="zscore")


def synthcity_one_class(x: np.ndarray, epochs: int, seed: int) -> np.ndarray:
    """synthcity's OneClassLayer as `_get_oneclass_model` builds it (input_dim = rep_dim = p, centre ones * 10,
    4 layers of 32 ReLU units without bias, AdamW lr 2e-3 / weight decay 2e-3, nu 1e-2, full batch), restated
    from its code with its loss written as there: (1 / nu) * mean(max(0, dist))."""
    import torch

    p = x.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        modules = [torch.nn.Linear(p, 32, bias=False), torch.nn.ReLU()]
        for _ in range(3):
            modules += [torch.nn.Linear(32, 32, bias=False), torch.nn.ReLU()]
        modules.append(torch.nn.Linear(32, p, bias=False))
        model = torch.nn.Sequential(*modules)
    c, nu = torch.ones(p) * 10, 1e-2
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=2e-3)
    inputs = torch.from_numpy(x).float()
    for _ in range(epochs):
        model.zero_grad()
        opt.zero_grad()
        dist = torch.sum((model(inputs) - c) ** 2, dim=1)
        loss = (1 / nu) * torch.mean(torch.max(torch.zeros_like(dist), dist))
        loss.backward()
        opt.step()
    with torch.no_grad():
        return model(inputs).numpy()


def test_one_class_embedding_matches_restated_synthcity_and_is_seeded():
    from rote.tabular.quality import OneClassEmbedding

    x = np.random.default_rng(0).normal(size=(64, 5)) * [1, 10, 100, 1, 1]
    emb = OneClassEmbedding(epochs=30, seed=3).fit(x)
    np.testing.assert_allclose(emb.transform(x), synthcity_one_class(x, 30, 3), rtol=1e-5, atol=1e-5)
    assert emb.centre_.tolist() == [10.0] * 5 and emb.losses_[-1] < emb.losses_[0]
    again = OneClassEmbedding(epochs=30, seed=3).fit(x).transform(x)
    assert np.array_equal(again, emb.transform(x))
    assert not np.allclose(OneClassEmbedding(epochs=30, seed=4).fit(x).transform(x), again)
    with pytest.raises(ConfigError, match="`epochs`"):
        OneClassEmbedding(epochs=0).fit(x)
    with pytest.raises(ConfigError, match="not fitted"):
        OneClassEmbedding().transform(x)


def test_marginals_hand_worked_truncation_and_float_limits():
    sch = TableSchema(("x",), ("g",))
    r = pd.DataFrame({"x": [0.0, 1.0, 2.0, 4.0], "g": ["a", "a", "b", "c"]})
    s = pd.DataFrame({"x": [4.0, 4.0, 3.0, 0.5], "g": ["a", "d", "d", "d"]})
    m = marginals(r, s, sch, bins=4, top=2)
    num = m[m["column"] == "x"]
    assert num["left"].tolist() == [0.0, 1.0, 2.0, 3.0] and num["right"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert num["real_share"].tolist() == [0.25, 0.25, 0.25, 0.25]  # 4.0 falls in the closed last bin
    assert num["synthetic_share"].tolist() == [0.25, 0.0, 0.0, 0.75]
    cat = m[m["column"] == "g"].set_index("label")
    # top 2 by real share: a (0.5), then b and c tie at 0.25 -> b by name; c and d pooled as "other"
    assert cat.index.tolist() == ["a", "b", "other"]
    assert cat["real_share"].tolist() == [0.5, 0.25, 0.25] and cat["synthetic_share"].tolist() == [0.25, 0.0, 0.75]
    huge = marginals(r.assign(x=[-1e308, 0.0, 1.0, 1e308]), s, sch)
    hx = huge[huge["column"] == "x"]
    assert np.isfinite(hx[["left", "right"]].to_numpy()).all() and len(hx) == 20
    assert hx["real_share"].tolist() == [0.25] + [0.0] * 9 + [0.5] + [0.0] * 8 + [0.25]
    assert huge.groupby("column")["real_share"].sum().tolist() == pytest.approx([1.0, 1.0])
    const = marginals(r.assign(x=1.0), s.assign(x=1.0), sch)
    assert const[const["column"] == "x"]["real_share"].tolist() == [1.0]
    with pytest.raises(ConfigError, match="`bins`"):
        marginals(r, s, sch, bins=0)


def test_trend_pairs_carry_real_and_synthetic_association():
    from scipy.stats.contingency import association

    r, s = table(300, 33), table(200, 34, shift=0.5)
    pairs = trend_score(r, s, SCHEMA).pairs.set_index(["column_1", "column_2"])
    assert pairs.loc[("x", "z"), "real"] == pytest.approx(np.corrcoef(r["x"], r["z"])[0, 1])
    assert pairs.loc[("x", "z"), "synthetic"] == pytest.approx(np.corrcoef(s["x"], s["z"])[0, 1])
    assert pairs.loc[("g", "y"), "real"] == pytest.approx(association(pd.crosstab(r["g"], r["y"]).to_numpy()))
    assert pairs.loc[("g", "y"), "synthetic"] == pytest.approx(association(pd.crosstab(s["g"], s["y"]).to_numpy()))
    bins = np.digitize(s["x"], np.histogram_bin_edges(s["x"]))
    v = association(pd.crosstab(bins, s["y"].to_numpy()).to_numpy())
    assert pairs.loc[("x", "y"), "synthetic"] == pytest.approx(v)
    assert set(pairs["association"]) == {"pearson", "cramers_v"}


def test_one_class_on_values_beyond_float32_is_a_note_not_a_crash():
    r = table(40, 35)
    huge = r.assign(x=r["x"] * 1e300)
    q = quality_report(huge, huge.copy(), SCHEMA, oc_epochs=5)
    assert q.alpha_precision_oc is None and any("float32" in n for n in q.notes)
    assert np.isfinite(q.alpha_precision)
    with pytest.raises(DataError, match="`oc_input`='minmax'"):
        alpha_precision_beta_recall(huge, huge, SCHEMA, variant="oc", oc_epochs=5)
    scaled = alpha_precision_beta_recall(huge, huge, SCHEMA, variant="oc", oc_epochs=5, oc_input="minmax")
    assert scaled.alpha_precision > 0.9


def test_collapsed_one_class_embedding_is_flagged(monkeypatch):
    from rote.tabular.quality import OneClassEmbedding

    r = table(60, 36)
    ok = alpha_precision_beta_recall(r, table(60, 37), SCHEMA, variant="oc", oc_epochs=5)
    assert alpha_precision_beta_recall(r, r, SCHEMA).distinct_share == 1.0 and ok.distinct_share > 0.9
    # every row mapped onto one point (what dead ReLU units do): distinct share 1/60, and the report says so
    monkeypatch.setattr(OneClassEmbedding, "transform", lambda self, x: np.zeros_like(np.asarray(x, float)))
    flat = alpha_precision_beta_recall(r, table(60, 37), SCHEMA, variant="oc", oc_epochs=5)
    assert flat.distinct_share == pytest.approx(1 / 60)
    q = quality_report(r, table(60, 37), SCHEMA, oc_epochs=5)
    assert any("say little" in n for n in q.notes)
