"""The audit at the paper's scale: the full Adult training set (32,561 rows) against a 32,561-row synthetic table,
checked row by row against a direct computation of the TabCutMix code's distance on a random subset."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from rote.data import dataset_schema, load_dataset
from rote.tabular import IndependentColumnSampler, audit, plant_copies

SCHEMA = dataset_schema("adult")


@functools.lru_cache(maxsize=None)
def _tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    train = load_dataset("adult")
    synthetic = IndependentColumnSampler(seed=0).fit(train, SCHEMA).sample(len(train))
    synthetic, planted = plant_copies(synthetic, train, 300, 300, schema=SCHEMA, seed=1)
    return train, synthetic, planted


def direct_tabcutmix(train: pd.DataFrame, row: pd.Series) -> np.ndarray:
    """(n_train,) the TabCutMix code's distance of one synthetic row to every training row, computed directly."""
    num, cat = list(SCHEMA.numeric), list(SCHEMA.categorical)
    e = np.sqrt(((train[num].to_numpy(np.float64) - row[num].to_numpy(np.float64)) ** 2).sum(1))
    mm = (e - e.min()) / (e.max() - e.min()) if e.max() > e.min() else np.zeros_like(e)
    mismatches = (train[cat].to_numpy(object) != row[cat].to_numpy(object)).sum(1)
    return (mm + mismatches) / (len(num) + len(cat))


def test_full_adult_tabcutmix_audit_matches_direct_computation():
    train, synthetic, planted = _tables()
    res = audit(train, synthetic, schema=SCHEMA, distance="tabcutmix")
    rows = res.rows
    check = np.random.default_rng(7).choice(len(synthetic), 150, replace=False)
    check = np.union1d(check, planted["synthetic_row"].to_numpy()[::30])  # some planted rows too
    for i in check:
        d = direct_tabcutmix(train, synthetic.iloc[i])
        order = np.argsort(d, kind="stable")
        d1, d2 = d[order[0]], d[order[1]]
        got = rows.iloc[i]
        assert got["d1"] == pytest.approx(d1, rel=1e-12, abs=1e-15), i
        assert got["d2"] == pytest.approx(d2, rel=1e-12, abs=1e-15), i
        assert d[int(got["nearest_train_row"])] == pytest.approx(d1, rel=1e-12, abs=1e-15), i  # ties: any index
        assert bool(got["memorized"]) == (d2 > 0 and d1 / d2 < 1 / 3), i
    exact = planted[planted["kind"] == "exact"]["synthetic_row"]
    assert rows.loc[exact, "memorized"].all() and res.exact_copies == 300
    # the figures docs/tabular.md quotes for `rote demo` come from the same tables (the demo adds a holdout)
    assert res.memorization_ratio == pytest.approx(3742 / 32561, abs=0.5 / 32561)
