"""Association matrix and column clustering (TabCutMixPlus), against independent computations."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency

from rote.core.errors import ConfigError
from rote.data import TableSchema
from rote.tabular.association import (
    association_matrix,
    cluster_columns,
    correlation_ratio,
    cramers_v_corrected,
    pearson_abs,
)


def cramers_v_reference(a, b) -> float:
    """Bias-corrected Cramer's V written out from its definition, chi2 from scipy (Yates on 2x2, its default)."""
    table = pd.crosstab(pd.Series(a), pd.Series(b)).to_numpy()
    chi2 = chi2_contingency(table)[0]
    n = table.sum()
    r, k = table.shape
    phi2 = chi2 / n
    phi2c = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    rc = r - (r - 1) ** 2 / (n - 1)
    kc = k - (k - 1) ** 2 / (n - 1)
    return float(np.sqrt(phi2c / min(kc - 1, rc - 1)))


def eta_reference(codes, values) -> float:
    """Correlation ratio by a loop over groups."""
    values = np.asarray(values, float)
    mean = values.mean()
    between = sum(len(values[codes == g]) * (values[codes == g].mean() - mean) ** 2 for g in np.unique(codes))
    total = ((values - mean) ** 2).sum()
    return float(np.sqrt(between / total))


def test_pearson_matches_numpy_and_constant_is_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = -0.7 * x + rng.normal(size=200)
    assert pearson_abs(x, y) == pytest.approx(abs(np.corrcoef(x, y)[0, 1]), abs=1e-12)
    assert pearson_abs(x, np.full(200, 3.0)) == 0.0


@pytest.mark.parametrize("shape", [(2, 2), (3, 4), (5, 2)])
def test_cramers_v_matches_scipy_based_reference(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, shape[0], 500)
    b = (a + (rng.random(500) < 0.4) * rng.integers(0, shape[1], 500)) % shape[1]
    assert cramers_v_corrected(a, b) == pytest.approx(cramers_v_reference(a, b), abs=1e-10)


def test_cramers_v_hand_worked_and_undefined_cases():
    # identical 3-category columns, 30 rows each 10: chi2 = 60, phi2 = 2; corrected: 2 - 4/29, r_c = k_c = 3 - 4/29
    a = np.repeat([0, 1, 2], 10)
    expected = np.sqrt((2 - 4 / 29) / (2 - 4 / 29))
    assert cramers_v_corrected(a, a) == pytest.approx(expected)
    assert cramers_v_corrected(a, np.zeros(30, np.int64)) == 0.0  # a constant column
    assert cramers_v_corrected(np.array([0]), np.array([0])) == 0.0  # one row


def test_correlation_ratio_matches_loop():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 4, 300)
    values = codes * 1.5 + rng.normal(size=300)
    assert correlation_ratio(codes, values) == pytest.approx(eta_reference(codes, values), abs=1e-12)
    assert correlation_ratio(codes, np.ones(300)) == 0.0
    assert correlation_ratio(np.zeros(300, np.int64), values) == 0.0


def mixed_table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = rng.integers(0, 3, n)
    return pd.DataFrame(
        {
            "x": x,
            "x2": 2 * x + 0.01 * rng.normal(size=n),
            "z": rng.normal(size=n),
            "g": g.astype(str),
            "g_copy": np.array(["a", "b", "c"])[g],
            "noise": rng.integers(0, 4, n).astype(str),
            "label": (x > 0).astype(str),
        }
    )


def test_association_matrix_entries_match_pairwise_definitions():
    df = mixed_table()
    schema = TableSchema(("x", "x2", "z"), ("g", "g_copy", "noise", "label"), "label")
    m = association_matrix(df, schema)
    assert list(m.columns) == list(schema.columns)
    assert np.allclose(m.to_numpy(), m.to_numpy().T)
    assert np.allclose(np.diag(m.to_numpy()), 1.0)
    assert m.loc["x", "x2"] == pytest.approx(abs(np.corrcoef(df["x"], df["x2"])[0, 1]))
    codes = {c: pd.factorize(df[c])[0] for c in schema.categorical}
    assert m.loc["g", "noise"] == pytest.approx(cramers_v_reference(codes["g"], codes["noise"]))
    assert m.loc["label", "x"] == pytest.approx(eta_reference(codes["label"], df["x"]))
    assert m.loc["g", "g_copy"] == pytest.approx(1.0)


def test_association_matrix_edge_tables_have_no_nan():
    df = mixed_table(50)
    df["const_num"] = 5.0
    df["const_cat"] = "same"
    schema = TableSchema(("x", "const_num"), ("g", "const_cat"), None)
    m = association_matrix(df[["x", "const_num", "g", "const_cat"]], schema)
    assert not m.isna().any().any()
    assert (m.loc["const_num"].drop("const_num") == 0).all() and (m.loc["const_cat"].drop("const_cat") == 0).all()
    only_num = association_matrix(df[["x", "x2"]], TableSchema(("x", "x2"), ()))
    assert only_num.loc["x", "x2"] > 0.99
    only_cat = association_matrix(df[["g", "g_copy"]], TableSchema((), ("g", "g_copy")))
    assert only_cat.loc["g", "g_copy"] == pytest.approx(1.0)
    one_row = association_matrix(df.iloc[:1][["x", "g"]], TableSchema(("x",), ("g",)))
    assert np.array_equal(one_row.to_numpy(), np.eye(2))


def average_linkage_reference(dist: np.ndarray, cut: float) -> set[frozenset[int]]:
    """Naive agglomerative clustering: merge the two clusters with the smallest mean pairwise distance while
    that mean is <= cut (scipy's fcluster(criterion='distance') keeps merges with height <= t)."""
    clusters = [{i} for i in range(len(dist))]
    while len(clusters) > 1:
        best = min(
            (
                (np.mean([dist[i, j] for i in a for j in b]), ia, ib)
                for (ia, a), (ib, b) in itertools.combinations(enumerate(clusters), 2)
            )
        )
        if best[0] > cut:
            break
        _, ia, ib = best
        clusters[ia] = clusters[ia] | clusters[ib]
        del clusters[ib]
    return {frozenset(c) for c in clusters}


@pytest.mark.parametrize("seed", range(5))
def test_cluster_columns_matches_naive_average_linkage(seed):
    rng = np.random.default_rng(seed)
    n = 8
    a = rng.random((n, n)) ** 0.3  # many strong associations, so clusters of several columns form
    a = (a + a.T) / 2
    np.fill_diagonal(a, 1.0)
    cols = [f"c{i}" for i in range(n)]
    got = cluster_columns(pd.DataFrame(a, index=cols, columns=cols), cut=0.3)
    want = average_linkage_reference(1 - a, 0.3)
    assert {frozenset(int(c[1:]) for c in cl) for cl in got} == want
    assert sorted(c for cl in got for c in cl) == sorted(cols)


def test_cluster_columns_on_a_mixed_table_and_bad_input():
    df = mixed_table()
    schema = TableSchema(("x", "x2", "z"), ("g", "g_copy", "noise", "label"), "label")
    clusters = cluster_columns(association_matrix(df, schema))
    # label = (x > 0) has eta about 0.8 with x, so it joins the x cluster
    assert clusters == [["x", "x2", "label"], ["z"], ["g", "g_copy"], ["noise"]]
    assert cluster_columns(pd.DataFrame([[1.0]], index=["a"], columns=["a"])) == [["a"]]
    with pytest.raises(ConfigError, match="cut"):
        cluster_columns(association_matrix(df, schema), cut=1.5)
    bad = pd.DataFrame([[1.0, np.nan], [np.nan, 1.0]], index=["a", "b"], columns=["a", "b"])
    with pytest.raises(ConfigError, match="NaN"):
        cluster_columns(bad)


@st.composite
def small_tables(draw):
    n = draw(st.integers(1, 12))
    n_num = draw(st.integers(0, 3))
    n_cat = draw(st.integers(0 if n_num else 1, 3))
    data = {}
    for j in range(n_num):  # few distinct values, so constant columns and ties are common
        data[f"n{j}"] = draw(st.lists(st.sampled_from([0.0, 1.0, 2.5, -3.0]), min_size=n, max_size=n))
    for j in range(n_cat):
        data[f"c{j}"] = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    schema = TableSchema(tuple(f"n{j}" for j in range(n_num)), tuple(f"c{j}" for j in range(n_cat)))
    return pd.DataFrame(data), schema


@settings(max_examples=60, deadline=None)
@given(small_tables())
def test_association_is_always_a_defined_similarity(case):
    df, schema = case
    m = association_matrix(df, schema).to_numpy()
    assert not np.isnan(m).any()
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)
    assert (m >= 0).all() and (m <= 1 + 1e-12).all()
    clusters = cluster_columns(association_matrix(df, schema))
    assert sorted(c for cl in clusters for c in cl) == sorted(schema.columns)
