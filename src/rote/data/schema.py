"""Table schemas: which columns are numeric, which are categorical, and which one is the target.

Every model and metric in rote needs to know how to treat each column (numbers are scaled, categories are
one-hot encoded or embedded), so a table is always paired with a `TableSchema`. `infer_schema` proposes one
from a DataFrame with these rules (also exposed as constants below so that the CLI and docs quote them):

1. bool, string/object and pandas `category` columns are categorical (`CATEGORICAL_KINDS`);
2. numeric columns whose non-missing values are all integers (an integer dtype, or floats that are all
   integral) and that hold at most `MAX_CATEGORICAL_INT` (10) distinct values are categorical: codes such as
   `EDUCATION` in 1..6 or a 0/1 label are labels, not quantities;
3. every other numeric column is numeric.

Explicit `numeric=` / `categorical=` overrides win over the rules; the target keeps its inferred (or
overridden) type. A column that is entirely missing cannot be typed and is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError, SchemaError
from rote.core.runs import atomic_write_json, read_json

MAX_CATEGORICAL_INT: int = 10
"""Integer-valued numeric columns with at most this many distinct values are inferred categorical."""

CATEGORICAL_KINDS: tuple[str, ...] = ("bool", "string", "object", "category")
"""Column kinds that are always inferred categorical (pandas dtype families)."""

INFERENCE_RULES: tuple[str, ...] = (
    "bool, string/object and category columns -> categorical",
    f"integer-valued numeric columns with at most {MAX_CATEGORICAL_INT} distinct values -> categorical",
    "every other numeric column -> numeric",
    "explicit numeric/categorical overrides win; an entirely missing column is an error",
)
"""The inference rules in words, in the order `infer_schema` applies them."""

_SCHEMA_KEYS = ("numeric", "categorical", "target")


def _fmt_names(names: Iterable[Any], limit: int = 12) -> str:
    """`'a', 'b', ... (+N more)`: a one-line list of column names for error messages."""
    names = [str(n) for n in names]
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    if len(names) > limit:
        shown += f", ... (+{len(names) - limit} more)"
    return shown


def _as_name_tuple(value: Any, field: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SchemaError(
            f"{where}: '{field}' must be a list of column names, got {type(value).__name__}; "
            f'write it as a list, e.g. ["age", "income"]'
        )
    out = tuple(value)
    bad = [v for v in out if not isinstance(v, str)]
    if bad:
        raise SchemaError(
            f"{where}: '{field}' holds non-text column names {bad[:5]!r}; "
            "column names must be strings (load the table with a header row)"
        )
    return out


@dataclass(frozen=True)
class TableSchema:
    """Column types of a table: `numeric` columns become float64, `categorical` ones canonical strings.

    `target` (optional) names the label column; it is one of the numeric or categorical columns and keeps that
    type (a classification label is categorical, a regression target numeric).
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str | None = None

    def __post_init__(self) -> None:
        numeric = _as_name_tuple(self.numeric, "numeric", "schema")
        categorical = _as_name_tuple(self.categorical, "categorical", "schema")
        object.__setattr__(self, "numeric", numeric)
        object.__setattr__(self, "categorical", categorical)
        for field, cols in (("numeric", numeric), ("categorical", categorical)):
            dups = sorted({c for c in cols if cols.count(c) > 1})
            if dups:
                raise SchemaError(
                    f"schema: {field} columns listed more than once: {_fmt_names(dups)}; list each column once"
                )
        both = [c for c in numeric if c in set(categorical)]
        if both:
            raise SchemaError(
                f"schema: columns both numeric and categorical: {_fmt_names(both)}; "
                "list each column under one type only"
            )
        if self.target is not None:
            if not isinstance(self.target, str):
                raise SchemaError(
                    f"schema: target must be a column name, got {self.target!r}; set it to one of the schema's columns"
                )
            if self.target not in self.columns:
                raise SchemaError(
                    f"schema: target '{self.target}' is not one of the schema's columns "
                    f"({_fmt_names(self.columns)}); add it as numeric or categorical, or fix its name"
                )

    @property
    def columns(self) -> tuple[str, ...]:
        """All columns, numeric first then categorical: the column order of every validated table."""
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, not tuples)."""
        return {"numeric": list(self.numeric), "categorical": list(self.categorical), "target": self.target}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, name: str = "schema") -> TableSchema:
        """Inverse of `to_dict`; `name` (e.g. the file) prefixes error messages. Missing lists mean empty."""
        if not isinstance(d, Mapping):
            raise SchemaError(
                f"{name}: a schema must be a JSON object with keys {_fmt_names(_SCHEMA_KEYS)}, "
                f'got {type(d).__name__}; rewrite it as {{"numeric": [...], "categorical": [...]}}'
            )
        unknown = [k for k in d if k not in _SCHEMA_KEYS]
        if unknown:
            raise SchemaError(
                f"{name}: unknown schema keys {_fmt_names(unknown)}; the allowed keys are {_fmt_names(_SCHEMA_KEYS)}"
            )
        numeric = _as_name_tuple(d.get("numeric", ()), "numeric", name)
        categorical = _as_name_tuple(d.get("categorical", ()), "categorical", name)
        target = d.get("target")
        if target is not None and not isinstance(target, str):
            raise SchemaError(
                f"{name}: 'target' must be a column name or null, got {target!r}; set it to one of the columns"
            )
        try:
            return cls(numeric, categorical, target)
        except SchemaError as exc:
            msg = str(exc)
            raise SchemaError(f"{name}: {msg.removeprefix('schema: ')}") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the schema as JSON, atomically (so `--schema FILE` can reuse an inferred schema)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TableSchema:
        """Read a schema written by `save` (or by hand). DataError: unreadable file; SchemaError: bad content."""
        p = Path(path)
        if p.is_dir():
            raise DataError(f"{p}: is a folder, not a schema file; pass the path of a .json schema file")
        return cls.from_dict(read_json(p), name=str(p))

    def with_overrides(
        self, *, numeric: Sequence[str] = (), categorical: Sequence[str] = (), target: str | None = None
    ) -> TableSchema:
        """A copy with the named columns moved to `numeric` / `categorical` (and `target` set when given).

        Moved columns are appended to their new type; the other columns keep their order.
        """
        numeric = _as_name_tuple(numeric, "numeric", "schema override")
        categorical = _as_name_tuple(categorical, "categorical", "schema override")
        cols = set(self.columns)
        unknown = [c for c in (*numeric, *categorical) if c not in cols]
        if unknown:
            raise SchemaError(
                f"schema override: columns not in the schema: {_fmt_names(unknown)}; "
                f"choose among {_fmt_names(self.columns)}"
            )
        both = [c for c in numeric if c in set(categorical)]
        if both:
            raise SchemaError(
                f"schema override: columns named both numeric and categorical: {_fmt_names(both)}; "
                "give each column one type"
            )
        to_num, to_cat = set(numeric), set(categorical)
        new_num = [c for c in self.numeric if c not in to_cat] + [c for c in numeric if c not in self.numeric]
        new_cat = [c for c in self.categorical if c not in to_num] + [
            c for c in categorical if c not in self.categorical
        ]
        new_num = list(dict.fromkeys(new_num))
        new_cat = list(dict.fromkeys(new_cat))
        return TableSchema(tuple(new_num), tuple(new_cat), self.target if target is None else target)


def _is_missing_column(s: pd.Series) -> bool:
    return bool(s.isna().all())


def _infer_column_type(s: pd.Series, col: str, name: str, max_categorical_int: int) -> str:
    """'numeric' or 'categorical' for one column, by the module's rules."""
    dtype = s.dtype
    if (
        pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    ):
        return "categorical"
    if pd.api.types.is_complex_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        raise SchemaError(
            f"{name}: column '{col}' has unsupported type {dtype}; convert it to numbers or text, or drop it"
        )
    values = s.dropna()
    if pd.api.types.is_integer_dtype(dtype):
        integral = True
    else:
        v = values.to_numpy(dtype="float64")
        integral = bool(np.all(np.isfinite(v)) and np.all(v == np.floor(v)))
    if integral and values.nunique() <= max_categorical_int:
        return "categorical"
    return "numeric"


def infer_schema(
    df: pd.DataFrame,
    *,
    target: str | None = None,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    max_categorical_int: int = MAX_CATEGORICAL_INT,
    name: str | None = None,
) -> TableSchema:
    """Propose a schema for `df` by the module's rules; `numeric`/`categorical` force column types.

    `name` (default: `df.attrs["source"]`, else "table") prefixes error messages. Column order within each type
    follows the table.
    """
    name = name if name is not None else str(df.attrs.get("source", "table"))
    if (
        isinstance(max_categorical_int, bool)
        or not isinstance(max_categorical_int, (int, np.integer))
        or max_categorical_int < 0
    ):
        raise ConfigError(f"max_categorical_int={max_categorical_int!r}: must be a whole number >= 0, e.g. 10")
    numeric = _as_name_tuple(numeric, "numeric", f"{name}: override")
    categorical = _as_name_tuple(categorical, "categorical", f"{name}: override")
    cols = list(df.columns)
    bad_names = [c for c in cols if not isinstance(c, str)]
    if bad_names:
        raise SchemaError(
            f"{name}: column names must be text, got {bad_names[:5]!r}; "
            "load the table with a header row or rename the columns"
        )
    dups = sorted({c for c in cols if cols.count(c) > 1})
    if dups:
        raise SchemaError(f"{name}: duplicate column names {_fmt_names(dups)}; rename them so each is unique")
    if not cols:
        raise SchemaError(f"{name}: table has no columns; check the file and its separator")
    if len(df) == 0:
        raise DataError(f"{name}: table has no rows; column types cannot be inferred from an empty table")
    present = set(cols)
    unknown = [c for c in (*numeric, *categorical) if c not in present]
    if unknown:
        raise SchemaError(
            f"{name}: override columns not in the table: {_fmt_names(unknown)}; "
            f"fix their names (the table has {_fmt_names(cols)})"
        )
    both = [c for c in numeric if c in set(categorical)]
    if both:
        raise SchemaError(
            f"{name}: columns named both numeric and categorical: {_fmt_names(both)}; give each column one type"
        )
    if target is not None and target not in present:
        raise SchemaError(
            f"{name}: target '{target}' is not a column of the table; choose one of {_fmt_names(cols, limit=30)}"
        )
    force_num, force_cat = set(numeric), set(categorical)
    num_cols: list[str] = []
    cat_cols: list[str] = []
    for col in cols:
        s = df[col]
        if _is_missing_column(s):
            raise SchemaError(
                f"{name}: column '{col}' is entirely missing (no values in {len(s)} rows); drop the column or fill it"
            )
        if col in force_num:
            kind = "numeric"
        elif col in force_cat:
            kind = "categorical"
        else:
            kind = _infer_column_type(s, col, name, int(max_categorical_int))
        (num_cols if kind == "numeric" else cat_cols).append(col)
    return TableSchema(tuple(num_cols), tuple(cat_cols), target)
