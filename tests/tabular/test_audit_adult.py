"""The audit at the paper's scale: Adult training rows against a synthetic table of the same size, checked row by
row against a direct computation of the TabCutMix code's distance on a random subset. The fast test runs on a
seeded 4,000-row subset of Adult (the same value ranges, column types and planted copies); the full 32,561-row
audit, which also pins the figure docs/tabular.md quotes, is marked slow."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from rote.data import dataset_schema, load_dataset
from rote.tabular import IndependentColumnSampler, audit, plant_copies

SCHEMA = dataset_schema("adult")
NUM, CAT = list(SCHEMA.numeric), list(SCHEMA.categorical)


@functools.lru_cache(maxsize=None)
def _tables(n: int | None, n_copies: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    train = load_dataset("adult")
    if n is not None:  # a seeded subset of Adult's rows
        rows = np.sort(np.random.default_rng(0).choice(len(train), n, replace=False))
        train = train.iloc[rows].reset_index(drop=True)
    synthetic = IndependentColumnSampler(seed=0).fit(train, SCHEMA).sample(len(train))
    synthetic, planted = plant_copies(synthetic, train, n_copies, n_copies, schema=SCHEMA, seed=1)
    return train, synthetic, planted


def direct_tabcutmix(train_num: np.ndarray, train_cat: np.ndarray, row: pd.Series) -> np.ndarray:
    """(n_train,) the TabCutMix code's distance of one synthetic row to every training row, computed directly
    (train_num, train_cat: the training table's numeric and categorical columns as float and object arrays)."""
    e = np.sqrt(((train_num - row[NUM].to_numpy(np.float64)) ** 2).sum(1))
    mm = (e - e.min()) / (e.max() - e.min()) if e.max() > e.min() else np.zeros_like(e)
    mismatches = (train_cat != row[CAT].to_numpy(object)).sum(1)
    return (mm + mismatches) / (len(NUM) + len(CAT))


def _check_against_direct(n: int | None, n_copies: int, n_random: int, planted_step: int):
    """Audit the tables and compare d1, d2, the nearest row and the memorized flag with the direct computation
    on `n_random` random synthetic rows and every `planted_step`-th planted copy; returns (result, planted)."""
    train, synthetic, planted = _tables(n, n_copies)
    res = audit(train, synthetic, schema=SCHEMA, distance="tabcutmix")
    rows = res.rows
    check = np.random.default_rng(7).choice(len(synthetic), n_random, replace=False)
    check = np.union1d(check, planted["synthetic_row"].to_numpy()[::planted_step])  # some planted rows too
    train_num, train_cat = train[NUM].to_numpy(np.float64), train[CAT].to_numpy(object)
    for i in check:
        d = direct_tabcutmix(train_num, train_cat, synthetic.iloc[i])
        order = np.argsort(d, kind="stable")
        d1, d2 = d[order[0]], d[order[1]]
        got = rows.iloc[i]
        assert got["d1"] == pytest.approx(d1, rel=1e-12, abs=1e-15), i
        assert got["d2"] == pytest.approx(d2, rel=1e-12, abs=1e-15), i
        assert d[int(got["nearest_train_row"])] == pytest.approx(d1, rel=1e-12, abs=1e-15), i  # ties: any index
        assert bool(got["memorized"]) == (d2 > 0 and d1 / d2 < 1 / 3), i
    exact = planted[planted["kind"] == "exact"]["synthetic_row"]
    assert rows.loc[exact, "memorized"].all() and res.exact_copies == n_copies
    return res


def test_adult_subset_tabcutmix_audit_matches_direct_computation():
    _check_against_direct(4_000, 40, 60, 5)


@pytest.mark.slow  # the full 32,561 x 32,561 audit; the test above checks the same on a 4,000-row subset
def test_full_adult_tabcutmix_audit_matches_direct_computation():
    res = _check_against_direct(None, 300, 150, 30)
    # the figures docs/tabular.md quotes for `rote demo` come from the same tables (the demo adds a holdout)
    assert res.memorization_ratio == pytest.approx(3742 / 32561, abs=0.5 / 32561)
