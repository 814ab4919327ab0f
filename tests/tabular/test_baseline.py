"""The independent-column baseline generator and planted copies (`rote.tabular.baseline`) on embedded Adult."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import ConfigError
from rote.data import dataset_schema, load_dataset, validate_table
from rote.tabular import IndependentColumnSampler, audit, plant_copies

SCHEMA = dataset_schema("adult")


@functools.lru_cache(maxsize=None)
def _adult() -> pd.DataFrame:
    return load_dataset("adult")


def adult() -> pd.DataFrame:
    return _adult().copy(deep=True)


@functools.lru_cache(maxsize=None)
def _small_train() -> pd.DataFrame:
    """400 distinct Adult rows, validated (no duplicate rows: every exact copy has d1 = 0 < d2)."""
    raw = _adult().drop_duplicates().iloc[:400].reset_index(drop=True)
    return validate_table(raw, SCHEMA)


def small_train() -> pd.DataFrame:
    return _small_train().copy(deep=True)


# ---------------------------------------------------------------------------------------------- sampler


def test_same_seed_same_sample_different_seed_different():
    data = adult()
    a = IndependentColumnSampler(seed=0).fit(data, SCHEMA).sample(2000)
    b = IndependentColumnSampler(seed=0).fit(data, SCHEMA).sample(2000)
    c = IndependentColumnSampler(seed=1).fit(data, SCHEMA).sample(2000)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert all((a[col] != c[col]).mean() > 0.2 for col in ("age", "fnlwgt", "occupation"))
    # a per-call seed overrides the sampler's seed, and repeated calls without one repeat the sample
    s = IndependentColumnSampler(seed=0).fit(data, SCHEMA)
    pd.testing.assert_frame_equal(s.sample(2000), a)
    pd.testing.assert_frame_equal(s.sample(2000, seed=1), c)


def test_marginals_follow_training_frequencies():
    data = adult()
    n = 20_000
    sample = IndependentColumnSampler(seed=3).fit(data, SCHEMA).sample(n)
    assert len(sample) == n
    assert set(sample.columns) == set(data.columns)
    clean = validate_table(data, SCHEMA)
    for col in SCHEMA.categorical:
        train_freq = clean[col].value_counts(normalize=True)
        sample_freq = sample[col].value_counts(normalize=True).reindex(train_freq.index, fill_value=0.0)
        assert set(sample[col].unique()) <= set(train_freq.index), col
        # binomial sd of a frequency is <= 0.5 / sqrt(20000) = 0.0035; 0.015 is over 4 sd
        assert (sample_freq - train_freq).abs().max() < 0.015, col
    for col in SCHEMA.numeric:  # "empirical": values are drawn from the column
        assert set(sample[col].unique()) <= set(clean[col].unique()), col
        assert abs(sample[col].mean() - clean[col].mean()) < 0.05 * clean[col].std(), col


def test_columns_are_independent():
    """education -> education-num is a function in Adult; independent sampling breaks it."""
    data = adult()
    clean = validate_table(data, SCHEMA)
    assert clean.groupby("education")["education-num"].nunique().max() == 1
    mapping = clean.groupby("education")["education-num"].first()
    sample = IndependentColumnSampler(seed=0).fit(data, SCHEMA).sample(5000)
    assert sample.groupby("education")["education-num"].nunique().min() >= 2
    # the pair agrees with the training mapping only by chance: sum over e of p(e) * p(num(e)), about 0.2
    agree = (sample["education-num"] == sample["education"].map(mapping)).mean()
    assert agree < 0.3


def test_gaussian_numeric_mode():
    data = adult()
    clean = validate_table(data, SCHEMA)
    sample = IndependentColumnSampler(numeric="gaussian", seed=0).fit(data, SCHEMA).sample(20_000)
    for col in SCHEMA.numeric:
        mu, sd = clean[col].mean(), clean[col].std(ddof=0)
        assert abs(sample[col].mean() - mu) < 0.05 * sd, col
        assert abs(sample[col].std() - sd) < 0.05 * sd, col
    assert not set(sample["age"].unique()) <= set(clean["age"].unique())  # continuous, not resampled values


def test_sample_has_training_columns_and_dtypes():
    """The docstring: 'a new table with the training table's columns and dtypes'."""
    data = adult()
    sample = IndependentColumnSampler(seed=0).fit(data, SCHEMA).sample(50)
    assert list(sample.columns) == list(data.columns)
    assert sample.dtypes.to_dict() == data.dtypes.to_dict()


def test_sample_passes_validation():
    data = adult()
    sample = IndependentColumnSampler(seed=0).fit(data, SCHEMA).sample(500)
    clean = validate_table(sample, SCHEMA)
    assert clean.shape == (500, len(SCHEMA.columns))


def test_fit_does_not_modify_input():
    data = adult()
    before = data.copy(deep=True)
    IndependentColumnSampler(seed=0).fit(data, SCHEMA).sample(10)
    pd.testing.assert_frame_equal(data, before)


def test_sample_before_fit():
    with pytest.raises(ConfigError, match="fit"):
        IndependentColumnSampler(seed=0).sample(10)


def test_unknown_numeric_mode():
    with pytest.raises(ConfigError, match="numeric"):
        IndependentColumnSampler(numeric="uniform").fit(adult(), SCHEMA)


# ---------------------------------------------------------------------------------------------- planted copies


def _planted(n_exact: int = 10, n_near: int = 6, seed: int = 4):
    train = small_train()
    syn = IndependentColumnSampler(seed=2).fit(train, SCHEMA).sample(300)
    train_before, syn_before = train.copy(deep=True), syn.copy(deep=True)
    out, info = plant_copies(syn, train, n_exact, n_near, schema=SCHEMA, seed=seed)
    pd.testing.assert_frame_equal(train, train_before)  # inputs not modified
    pd.testing.assert_frame_equal(syn, syn_before)
    return train, syn, out, info


def test_plant_copies_rows():
    train, syn, out, info = _planted()
    assert info.columns.tolist() == ["synthetic_row", "train_row", "kind"]
    assert info["kind"].tolist() == ["exact"] * 10 + ["near"] * 6
    assert info["synthetic_row"].is_unique and info["synthetic_row"].between(0, len(syn) - 1).all()
    assert info["train_row"].between(0, len(train) - 1).all()
    assert len(out) == len(syn) and list(out.columns) == list(syn.columns)
    clean = validate_table(out, SCHEMA)
    untouched = np.setdiff1d(np.arange(len(syn)), info["synthetic_row"])
    pd.testing.assert_frame_equal(clean.iloc[untouched], validate_table(syn, SCHEMA).iloc[untouched])
    stds = train[list(SCHEMA.numeric)].std()
    for slot, src, kind in info.itertuples(index=False):
        got, want = clean.iloc[slot], train.iloc[src]
        differ = [c for c in SCHEMA.columns if got[c] != want[c]]
        if kind == "exact":
            assert differ == [], (slot, src, differ)
        else:  # exactly one numeric column moved by 0.01 of its standard deviation
            assert len(differ) == 1 and differ[0] in SCHEMA.numeric, (slot, src, differ)
            c = differ[0]
            assert abs(got[c] - want[c]) == pytest.approx(0.01 * stds[c], rel=1e-9)


def test_plant_near_copies_into_raw_integer_columns():
    """Raw Adult has int64 numeric columns: a moved value turns that column float64, nothing else changes."""
    train = adult()
    syn = IndependentColumnSampler(seed=0).fit(train, SCHEMA).sample(500)
    assert syn["age"].dtype == np.int64
    out, info = plant_copies(syn, train, 5, 40, schema=SCHEMA, seed=1)
    near = info[info["kind"] == "near"]
    moved = [c for c in SCHEMA.numeric if out[c].dtype == np.float64 and syn[c].dtype == np.int64]
    assert moved and all(out[c].dtype == syn[c].dtype for c in syn.columns if c not in moved)
    for slot, src in zip(near["synthetic_row"], near["train_row"]):
        diffs = [c for c in SCHEMA.columns if out.at[slot, c] != train.at[src, c]]
        assert len(diffs) == 1 and diffs[0] in moved
    res = audit(train, out, schema=SCHEMA, distance="gower")
    assert res.rows.loc[near["synthetic_row"], "memorized"].mean() > 0.9


def test_plant_copies_is_seeded():
    _, _, a, ia = _planted(seed=5)
    _, _, b, ib = _planted(seed=5)
    _, _, c, ic = _planted(seed=6)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ia, ib)
    assert not ia.equals(ic)


@pytest.mark.parametrize("distance", ["tabcutmix", "gower", "l2"])
def test_audit_flags_planted_exact_copies(distance):
    train, _, out, info = _planted()
    res = audit(train, out, schema=SCHEMA, distance=distance)
    exact = info[info["kind"] == "exact"]
    rows = res.rows.set_index("synthetic_row").loc[exact["synthetic_row"]]
    assert rows["memorized"].all()
    assert (rows["d1"] == 0).all() and (rows["d2"] > 0).all()
    assert rows["exact_copy_of"].tolist() == exact["train_row"].tolist()  # train rows are distinct
    assert rows["nearest_train_row"].tolist() == exact["train_row"].tolist()
    assert res.exact_copies == len(exact)  # independent sampling copies no 15-column Adult row by chance
    assert res.train_rows["n_exact_copies"].sum() == len(exact)
    near = info[info["kind"] == "near"]["synthetic_row"]
    assert (res.rows.loc[near, "exact_copy_of"] == -1).all()


def test_plant_too_many():
    train = small_train()
    syn = train.iloc[:5].copy()
    with pytest.raises(ConfigError, match="cannot plant"):
        plant_copies(syn, train, 4, 2, schema=SCHEMA)
