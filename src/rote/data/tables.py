"""Reading tables from disk and checking them against a `TableSchema`.

`load_table` reads CSV/TSV (optionally gzipped) and Parquet files as they are: values are not stripped or
recoded, and empty cells become NaN (pandas' default). `validate_table` turns a loaded table into the one form
the rest of rote works with: exactly the schema's columns in schema order, a fresh RangeIndex, numeric columns
as float64 and categorical columns as canonical Python strings (object dtype), so that `1`, `1.0` and `"1"`
are the same category. Problems are reported with the table name, the column and the 1-based data row
("row 1" is the first data row, i.e. the line after a CSV header).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError, SchemaError
from rote.data.schema import TableSchema, _fmt_names

MISSING_CATEGORY = "<missing>"
"""The category that missing categorical cells become under `missing="category"`."""

MISSING_POLICIES: tuple[str, ...] = ("error", "category")
"""Accepted values of `validate_table(missing=...)`."""

CSV_EXTENSIONS: tuple[str, ...] = (".csv", ".csv.gz", ".tsv", ".txt")
PARQUET_EXTENSIONS: tuple[str, ...] = (".parquet", ".pq")
TABLE_EXTENSIONS: tuple[str, ...] = CSV_EXTENSIONS + PARQUET_EXTENSIONS
"""File name endings `load_table` accepts (case-insensitive)."""

_MAX_INT_FLOAT = 2.0**63


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _table_format(path: Path) -> str | None:
    lower = path.name.lower()
    for ext in sorted(TABLE_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return "parquet" if ext in PARQUET_EXTENSIONS else ext
    return None


def load_table(
    source: str | os.PathLike | pd.DataFrame, *, name: str | None = None, sep: str | None = None
) -> pd.DataFrame:
    """Read a table file (or copy a DataFrame) without altering its values.

    CSV-like files: `.csv`, `.csv.gz`, `.tsv`, `.txt`; the separator is `sep` when given, else a tab for
    `.tsv` and a comma otherwise. Parquet: `.parquet`, `.pq` (`sep` is ignored). `df.attrs["source"]` is set
    to `name`, else the path (or "dataframe"), and names the table in later error messages.
    """
    if isinstance(source, pd.DataFrame):
        label = name or "dataframe"
        df = source.copy(deep=True)
        if df.shape[1] == 0:
            raise DataError(f"{label}: table has no columns; pass a DataFrame with at least one column")
        df.attrs = {**df.attrs, "source": label}
        return df
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(
            f"{name or source!r}: cannot read a table from a {type(source).__name__}; "
            "pass a file path or a pandas DataFrame"
        )
    path = Path(source)
    label = name or str(path)
    if not path.exists():
        raise DataError(f"{label}: file not found; check the path")
    if path.is_dir():
        raise DataError(f"{label}: is a folder, not a file; pass a table file ({', '.join(TABLE_EXTENSIONS)})")
    fmt = _table_format(path)
    if fmt is None:
        raise DataError(
            f"{label}: unknown file type; rote reads {', '.join(TABLE_EXTENSIONS)} files "
            "(rename the file or convert it)"
        )
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            use_sep = sep if sep is not None else ("\t" if fmt == ".tsv" else ",")
            df = pd.read_csv(path, sep=use_sep, low_memory=False, compression="gzip" if fmt == ".csv.gz" else None)
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: file is empty (no columns); check that it is the right file") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{label}: not UTF-8 text (byte {exc.start}: {_one_line(exc)}); save the file as UTF-8 and retry"
        ) from None
    except Exception as exc:  # any parser/IO/decompression failure is the file's problem, not rote's
        kind = "Parquet" if fmt == "parquet" else "CSV"
        raise DataError(
            f"{label}: cannot read as {kind} ({_one_line(exc)}); check that the file is a valid, "
            f"complete {kind} file" + ("" if fmt == "parquet" else " and that `sep` is right")
        ) from None
    if df.shape[1] == 0:
        raise DataError(f"{label}: table has no columns; check that the file is not empty and --sep is right")
    df.attrs["source"] = label
    return df


# ---------------------------------------------------------------------------------------------- validation


def _canonical(value: Any) -> str:
    """The canonical category string: 3 and 3.0 -> "3", 0.5 -> "0.5", True -> "True", text unchanged."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f) and f.is_integer() and abs(f) < _MAX_INT_FLOAT:
            return str(int(f))
        return repr(f) if isinstance(value, float) else str(value)
    return str(value)


def _missing_mask(values: np.ndarray) -> np.ndarray:
    """NaN/None/NA cells and empty strings."""
    mask = np.asarray(pd.isna(values), dtype=bool)
    if values.dtype == np.dtype(object):
        mask |= np.fromiter((isinstance(v, str) and v == "" for v in values), dtype=bool, count=len(values))
    return mask


def _missing_error(name: str, col: str, mask: np.ndarray, *, numeric: bool, policy: str) -> DataError:
    count = int(mask.sum())
    row = int(np.argmax(mask)) + 1
    where = (
        f"{name}: {'numeric' if numeric else 'categorical'} column '{col}' has {count} missing cell"
        f"{'s' if count != 1 else ''} (first at row {row})"
    )
    if not numeric:
        return DataError(
            f"{where}; fill them, drop those rows, or pass `missing` category to keep them as the "
            f"category '{MISSING_CATEGORY}'"
        )
    extra = " (`missing` category only applies to categorical columns)" if policy == "category" else ""
    return DataError(
        f"{where}; impute them or drop those rows{extra}, or declare the column categorical with `categorical` {col}"
    )


def _numeric_column(s: pd.Series, col: str, name: str, policy: str) -> np.ndarray:
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
    ):
        out = s.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(out)
    else:
        raw = s.to_numpy(dtype=object)
        missing = _missing_mask(raw)
        conv = pd.to_numeric(pd.Series(np.where(missing, None, raw), dtype=object), errors="coerce")
        out = conv.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~missing & np.isnan(out)
        if bad.any():
            i = int(np.argmax(bad))
            raise SchemaError(
                f"{name}: numeric column '{col}' holds text {_short(raw[i])} at row {i + 1} "
                f"({int(bad.sum())} non-numeric cell{'s' if bad.sum() != 1 else ''}); "
                f"declare it categorical with `categorical` {col} or clean the file"
            )
    if missing.any():
        raise _missing_error(name, col, missing, numeric=True, policy=policy)
    inf = np.isinf(out)
    if inf.any():
        i = int(np.argmax(inf))
        raise DataError(
            f"{name}: numeric column '{col}' holds an infinite value at row {i + 1} "
            f"({int(inf.sum())} infinite cell{'s' if inf.sum() != 1 else ''}); "
            "replace them with finite numbers or drop those rows"
        )
    return out


def _categorical_column(s: pd.Series, col: str, name: str, policy: str) -> np.ndarray:
    dtype = s.dtype
    out = np.empty(len(s), dtype=object)
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        raw = s.to_numpy(dtype=object, na_value=None)
        missing = _missing_mask(raw)
        out[~missing] = raw[~missing]
    elif isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        raw = s.to_numpy()
        missing = np.asarray(pd.isna(raw), dtype=bool)
        if (~missing).any():
            uniques, inverse = np.unique(raw[~missing], return_inverse=True)
            labels = np.array([_canonical(u) for u in uniques], dtype=object)
            out[~missing] = labels[inverse]
    else:  # object, category, nullable and other extension dtypes: cell by cell (1 and True must stay apart)
        raw = s.to_numpy(dtype=object, na_value=None)
        missing = _missing_mask(raw)
        out[~missing] = [_canonical(v) for v in raw[~missing]]
    if missing.any():
        if policy != "category":
            raise _missing_error(name, col, missing, numeric=False, policy=policy)
        out[missing] = MISSING_CATEGORY
    return out


def validate_table(
    df: pd.DataFrame, schema: TableSchema, *, name: str | None = None, missing: str = "error", allow_extra: bool = False
) -> pd.DataFrame:
    """A new, clean frame: `schema.columns` in order, RangeIndex, float64 numeric, canonical-string categorical.

    `missing="error"` rejects missing cells; `missing="category"` maps missing categorical cells to
    `MISSING_CATEGORY` (missing numeric cells are always an error). `allow_extra=True` drops columns the schema
    does not name instead of rejecting them. `df` is never modified.
    """
    if missing not in MISSING_POLICIES:
        raise ConfigError(
            f"missing={missing!r}: unknown missing-value policy; use one of {', '.join(MISSING_POLICIES)}"
        )
    if not isinstance(schema, TableSchema):
        raise ConfigError(f"schema must be a TableSchema, got {type(schema).__name__}; build one with infer_schema")
    name = name if name is not None else str(df.attrs.get("source", "table"))
    if len(df) == 0:
        raise DataError(f"{name}: table has no rows; check that the file holds data below its header")
    cols = list(df.columns)
    dups = sorted({str(c) for c in cols if cols.count(c) > 1})
    if dups:
        raise SchemaError(f"{name}: duplicate column names {_fmt_names(dups)}; rename them so each is unique")
    present = set(cols)
    absent = [c for c in schema.columns if c not in present]
    if absent:
        raise SchemaError(
            f"{name}: columns in the schema but not in the table: {_fmt_names(absent)}; "
            "check the file, or remove them from the schema"
        )
    wanted = set(schema.columns)
    extra = [c for c in cols if c not in wanted]
    if extra and not allow_extra:
        raise SchemaError(
            f"{name}: columns not in the schema: {_fmt_names(extra)}; drop them or add them to the schema"
        )
    data: dict[str, Any] = {}
    for col in schema.numeric:
        data[col] = pd.Series(_numeric_column(df[col], col, name, missing), dtype="float64")
    for col in schema.categorical:
        data[col] = pd.Series(_categorical_column(df[col], col, name, missing), dtype=object)
    out = pd.DataFrame(data, columns=list(schema.columns), index=pd.RangeIndex(len(df)))
    out.attrs["source"] = name
    return out


def unseen_categories(reference: pd.DataFrame, other: pd.DataFrame, schema: TableSchema) -> dict[str, int]:
    """Per categorical column, how many cells of `other` hold a value never seen in `reference`.

    Both frames should come from `validate_table` (canonical strings). Only columns with a count > 0 appear;
    an empty dict means every category of `other` is known, so encoders fitted on `reference` cover it.
    """
    counts: dict[str, int] = {}
    for frame in (reference, other):
        absent = [c for c in schema.categorical if c not in frame.columns]
        if absent:
            label = frame.attrs.get("source", "table")
            raise SchemaError(
                f"{label}: categorical columns missing: {_fmt_names(absent)}; "
                "pass tables validated with validate_table against this schema"
            )
    for col in schema.categorical:
        known = pd.unique(reference[col].to_numpy(dtype=object))
        n = int((~other[col].isin(known)).sum())
        if n > 0:
            counts[col] = n
    return counts
