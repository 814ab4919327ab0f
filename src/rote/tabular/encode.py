"""Encode validated tables into the `MixedMatrix` form the neighbour kernel searches."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rote.core.neighbors import MixedMatrix
from rote.data import TableSchema


def encode_tables(
    tables: list[pd.DataFrame], schema: TableSchema, *, include_target: bool = True
) -> tuple[list[MixedMatrix], dict[str, list[str]]]:
    """Encode validated tables (as from `rote.data.validate_table`) with one shared category coding.

    Categories are the sorted union over all `tables`, so equal values get equal codes in every table and a
    value seen in only one table still matches itself. With `include_target=False` the target column is left
    out of the distance (the TabCutMix code includes it, as a categorical column).
    Returns one `MixedMatrix` per table (numeric float64 (n, p), codes int64 (n, q)) and the categories per
    categorical column.
    """
    drop = set() if include_target or schema.target is None else {schema.target}
    num_cols = [c for c in schema.numeric if c not in drop]
    cat_cols = [c for c in schema.categorical if c not in drop]
    categories = {c: sorted(set().union(*(set(t[c].unique()) for t in tables))) for c in cat_cols}
    sizes = tuple(len(categories[c]) for c in cat_cols)
    out = []
    for t in tables:
        num = t[num_cols].to_numpy(dtype=np.float64) if num_cols else np.zeros((len(t), 0))
        codes = [pd.Categorical(t[c], categories=categories[c]).codes.astype(np.int64) for c in cat_cols]
        cat = np.column_stack(codes) if codes else np.zeros((len(t), 0), np.int64)
        out.append(MixedMatrix(num, cat, sizes))
    return out, categories


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """(n,) uint64 hash of each row's values (for exact-copy detection on validated tables)."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()
