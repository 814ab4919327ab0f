"""A cheap baseline generator: independent per-column sampling (the paper's IJF baseline), and planted copies.

Sampling each column independently breaks every dependence between columns, so such a table copies training
rows only by chance; planting known copies then gives an audit with ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.runs import make_rng
from rote.data import TableSchema, validate_table


class IndependentColumnSampler:
    """Samples each column independently of the others.

    numeric: "empirical" draws numeric values from the training column's values; "gaussian" draws from
        N(mean, std) of the column (the TabCutMix paper's IJF). Categorical columns always follow the empirical
        category frequencies.
    """

    def __init__(self, numeric: str = "empirical", seed: int = 0) -> None:
        self.numeric, self.seed = numeric, seed

    def fit(
        self,
        table: pd.DataFrame,
        schema: TableSchema,
        *,
        callbacks: Sequence[Any] = (),
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume: bool = True,
        progress: Any = True,
    ) -> "IndependentColumnSampler":
        """Learn the per-column distributions. The keyword options exist so that this baseline drops in wherever
        a `rote.tabular.models.TabularGenerator` is used; it has no training epochs, so callbacks are never called
        and nothing is checkpointed (`history_` stays empty)."""
        if self.numeric not in ("empirical", "gaussian"):
            raise ConfigError(f"numeric must be 'empirical' or 'gaussian', got {self.numeric!r}")
        validate_table(table, schema, name=table.attrs.get("source", "train"))  # rejects what the audit would
        self.schema_ = schema
        self.columns_ = [c for c in table.columns if c in set(schema.columns)]  # the table's own order
        self.table_ = table[self.columns_].reset_index(drop=True).copy()
        self.history_: list[dict] = []
        self.n_epochs_trained_ = 0
        return self

    def sample(self, n: int, seed: int | None = None) -> pd.DataFrame:
        """(n rows) a new table with the training table's columns, in its order and with its dtypes
        (gaussian draws for integer columns are rounded)."""
        if not hasattr(self, "table_"):
            raise ConfigError("IndependentColumnSampler: call fit(table, schema) before sample(n)")
        rng = make_rng(self.seed if seed is None else seed)
        out = {}
        for c in self.columns_:
            col = self.table_[c]
            if c in self.schema_.numeric and self.numeric == "gaussian":
                x = col.to_numpy(np.float64)
                draw = rng.normal(x.mean(), x.std(), n)
                out[c] = pd.Series(np.round(draw) if pd.api.types.is_integer_dtype(col.dtype) else draw).astype(
                    col.dtype
                )
            else:
                out[c] = col.iloc[rng.integers(0, len(col), n)].reset_index(drop=True)
        return pd.DataFrame(out)


def plant_copies(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    n_exact: int,
    n_near: int = 0,
    *,
    schema: TableSchema,
    seed: int = 0,
    near_scale: float = 0.01,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Overwrite random synthetic rows with copies of random training rows (ground truth for an audit).

    n_exact rows become exact copies; n_near rows become copies with one numeric column moved by
    `near_scale` times that column's standard deviation (still far closer to their source than to any other row).
    A numeric column that receives a moved value is returned as float64 (the value is no longer an integer).
    Returns the new synthetic table (the input is not modified) and a frame of planted rows:
    synthetic_row, train_row, kind ("exact" or "near").
    """
    if n_exact + n_near > len(synthetic):
        raise ConfigError(f"cannot plant {n_exact + n_near} copies into {len(synthetic)} synthetic rows")
    rng = make_rng(seed)
    out = synthetic.copy()
    slots = rng.choice(len(out), n_exact + n_near, replace=False)
    sources = rng.integers(0, len(train), n_exact + n_near)
    out.iloc[slots] = train.iloc[sources][out.columns].to_numpy()
    kinds = np.array(["exact"] * n_exact + ["near"] * n_near)
    if n_near and schema.numeric:
        stds = train[list(schema.numeric)].astype(float).std().to_numpy()
        cols = rng.integers(0, len(schema.numeric), n_near)
        signs = np.where(rng.random(n_near) < 0.5, 1.0, -1.0)
        near_slots = slots[n_exact:]
        for j in np.unique(cols):
            c, hit = schema.numeric[j], cols == j
            moved = out[c].to_numpy(np.float64, copy=True)  # float64: an integer column cannot hold the moved value
            moved[near_slots[hit]] += near_scale * stds[j] * signs[hit]
            out[c] = moved
    return out, pd.DataFrame({"synthetic_row": slots, "train_row": sources, "kind": kinds})
