"""Turning a table into model tensors and back: quantile normalization of numerics, integer codes of categories.

`TableCodec.fit(table, schema)` learns, from the user's table (any dtypes `validate_table` accepts):
- per numeric column a `QuantileNormalizer` (empirical quantiles -> standard normal, as TabDDPM and TabSyn do);
- per categorical column its sorted categories (codes 0..K-1);
- the original column order and dtypes, so `decode` returns a table that looks like the training table.

`encode(table) -> (x_num (n, n_num) float32, x_cat (n, n_cat) int64)` and `decode(x_num, x_cat) -> DataFrame`.
The codec's whole state is plain values (`state_dict()` / `from_state_dict`), so it goes into a checkpoint that
`torch.load(weights_only=True)` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr, ndtri

from rote.core.errors import DataError
from rote.data import TableSchema, validate_table

_EPS = 1e-7  # scikit-learn's BOUNDS_THRESHOLD: the extremes map to the normal quantiles of about 1e-7 and 1 - 1e-7
_Z_MIN = float(ndtri(_EPS - np.spacing(1)))
_Z_MAX = float(ndtri(1 - (_EPS - np.spacing(1))))


def n_quantiles_for(n_rows: int) -> int:
    """TabDDPM's choice: about one quantile per 30 rows, between 10 and 1000."""
    return int(max(min(n_rows // 30, 1000), 10))


@dataclass
class QuantileNormalizer:
    """Maps one numeric column to N(0, 1) through its empirical CDF, and back (TabDDPM's and TabSyn's
    `QuantileTransformer(output_distribution="normal")`, whose results this reproduces).

    `quantiles`: (q,) the column's values at `np.linspace(0, 1, q)` (linear interpolation). Forward: the CDF
    value is the average of the interpolations through increasing and decreasing quantiles (a value repeated over
    a run of quantiles maps to the middle of the run), values within 1e-7 of the minimum (maximum) map to 0 (1),
    then the standard normal quantile, clipped to about +-5.2. Inverse: normal CDF, then interpolation back, so
    outputs stay within the training range. A constant column maps to 0 and back to its value.
    """

    quantiles: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, n_quantiles: int | None = None) -> QuantileNormalizer:
        x = np.asarray(values, np.float64)
        q = n_quantiles_for(len(x)) if n_quantiles is None else int(n_quantiles)
        q = max(2, min(q, len(x)))
        return cls(np.quantile(x, np.linspace(0.0, 1.0, q)))

    @property
    def constant(self) -> bool:
        return bool(self.quantiles[0] == self.quantiles[-1])

    def transform(self, values: np.ndarray) -> np.ndarray:
        """(n,) float64 values -> (n,) float64 standard-normal scores."""
        x = np.asarray(values, np.float64)
        if self.constant:
            return np.zeros_like(x)
        q = self.quantiles
        ref = np.linspace(0.0, 1.0, len(q))
        up = np.interp(x, q, ref)
        down = -np.interp(-x, -q[::-1], -ref[::-1])
        u = 0.5 * (up + down)
        u[x + _EPS > q[-1]] = 1.0
        u[x - _EPS < q[0]] = 0.0
        return np.clip(ndtri(u), _Z_MIN, _Z_MAX)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """(n,) normal scores -> (n,) values within [min, max] of the training column."""
        z = np.asarray(z, np.float64)
        if self.constant:
            return np.full_like(z, self.quantiles[0])
        ref = np.linspace(0.0, 1.0, len(self.quantiles))
        u = ndtr(z)
        x = np.interp(u, ref, self.quantiles)
        x[u + _EPS > 1.0] = self.quantiles[-1]
        x[u - _EPS < 0.0] = self.quantiles[0]
        return x


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python scalar it holds (checkpoint-safe)."""
    return v.item() if isinstance(v, np.generic) else v


class TableCodec:
    """Encodes a table for a generator and decodes generated tensors into a table like the training one."""

    def __init__(self) -> None:
        self.schema: TableSchema | None = None

    # ------------------------------------------------------------------ fit
    def fit(self, table: pd.DataFrame, schema: TableSchema, *, name: str = "train") -> TableCodec:
        if len(table) < 2:
            raise DataError(
                f"{name}: has {len(table)} row; a generator needs at least 2 training rows "
                "(pass the whole training table)"
            )
        clean = validate_table(table, schema, name=name, allow_extra=False)
        self.schema = schema
        self.columns = [str(c) for c in table.columns]  # the user's order
        self.dtypes = {c: str(table[c].dtype) for c in self.columns}
        self.numeric = list(schema.numeric)
        self.categorical = list(schema.categorical)
        self.normalizers = [QuantileNormalizer.fit(clean[c].to_numpy(np.float64)) for c in self.numeric]
        self.integer = [bool(pd.api.types.is_integer_dtype(table[c].dtype)) for c in self.numeric]
        # categories: sorted canonical strings; `values` keeps one original cell per category so decoding
        # gives back the user's values (ints stay ints, text stays text)
        self.categories: list[list[str]] = []
        self.values: list[list[Any]] = []
        for c in self.categorical:
            pairs = pd.DataFrame({"k": clean[c].to_numpy(object), "v": table[c].to_numpy(object)})
            first = pairs.drop_duplicates("k").set_index("k")["v"]
            cats = sorted(first.index.tolist())
            self.categories.append(cats)
            self.values.append([_plain(first[k]) for k in cats])
        return self

    @property
    def n_classes(self) -> list[int]:
        """Number of categories of each categorical column, in schema order."""
        return [len(c) for c in self.categories]

    # ------------------------------------------------------------------ encode / decode
    def encode(self, table: pd.DataFrame, *, name: str = "table") -> tuple[torch.Tensor, torch.Tensor]:
        """-> x_num (n, n_num) float32 normal scores, x_cat (n, n_cat) int64 codes (schema order)."""
        clean = validate_table(table, self.schema, name=name)
        n = len(clean)
        x_num = np.zeros((n, len(self.numeric)), np.float32)
        for j, (c, qn) in enumerate(zip(self.numeric, self.normalizers)):
            x_num[:, j] = qn.transform(clean[c].to_numpy(np.float64))
        x_cat = np.zeros((n, len(self.categorical)), np.int64)
        for j, (c, cats) in enumerate(zip(self.categorical, self.categories)):
            codes = pd.Index(cats).get_indexer(clean[c].to_numpy(object))
            if (codes < 0).any():
                row = int(np.argmax(codes < 0))
                raise DataError(
                    f"{name}: column '{c}' holds category {clean[c].iloc[row]!r} at row {row + 1} "
                    "that the training table does not have; the generator cannot encode it"
                )
            x_cat[:, j] = codes
        return torch.from_numpy(x_num), torch.from_numpy(x_cat)

    def decode(self, x_num: torch.Tensor | np.ndarray, x_cat: torch.Tensor | np.ndarray) -> pd.DataFrame:
        """(n, n_num) normal scores and (n, n_cat) codes -> a table with the training table's columns, order
        and dtypes. Integer numeric columns are rounded; values stay within the training range."""
        x_num = np.asarray(x_num.detach().cpu() if isinstance(x_num, torch.Tensor) else x_num, np.float64)
        x_cat = np.asarray(x_cat.detach().cpu() if isinstance(x_cat, torch.Tensor) else x_cat, np.int64)
        n = x_num.shape[0] if self.numeric else x_cat.shape[0]
        out: dict[str, pd.Series] = {}
        for j, (c, qn, integer) in enumerate(zip(self.numeric, self.normalizers, self.integer)):
            v = qn.inverse(x_num[:, j])
            out[c] = pd.Series(np.round(v) if integer else v).astype(self.dtypes[c])
        for j, (c, vals) in enumerate(zip(self.categorical, self.values)):
            lookup = np.empty(len(vals), dtype=object)
            lookup[:] = vals
            col = lookup[x_cat[:, j]] if n else lookup[:0]
            out[c] = pd.Series(col, dtype=object).astype(self.dtypes[c])
        return pd.DataFrame({c: out[c] for c in self.columns})

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict[str, Any]:
        """Plain values only (lists, strings, numbers, tensors): safe for `torch.load(weights_only=True)`."""
        return {
            "schema": self.schema.to_dict(),
            "columns": list(self.columns),
            "dtypes": dict(self.dtypes),
            "quantiles": [torch.from_numpy(q.quantiles.copy()) for q in self.normalizers],
            "integer": list(self.integer),
            "categories": [list(c) for c in self.categories],
            "values": [list(v) for v in self.values],
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TableCodec:
        codec = cls()
        codec.schema = TableSchema.from_dict(state["schema"])
        codec.columns = list(state["columns"])
        codec.dtypes = dict(state["dtypes"])
        codec.numeric = list(codec.schema.numeric)
        codec.categorical = list(codec.schema.categorical)
        codec.normalizers = [QuantileNormalizer(q.numpy().astype(np.float64)) for q in state["quantiles"]]
        codec.integer = list(state["integer"])
        codec.categories = [list(c) for c in state["categories"]]
        codec.values = [list(v) for v in state["values"]]
        return codec
