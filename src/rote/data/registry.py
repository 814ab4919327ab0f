"""Datasets shipped inside rote, so that demos and tests run offline on real data.

Only UCI Adult is registered (Becker & Kohavi 1996, CC BY 4.0; see `embedded/ATTRIBUTION.md`): the raw UCI
files, gzipped and otherwise unmodified. Parsing keeps the files' values, with three documented exceptions:
the spaces after each comma are skipped, the test file's first line ("|1x3 Cross validator") is skipped, and
the trailing "." of test labels (">50K.") is removed so both splits share the labels "<=50K" and ">50K".
Unknown values are written "?" in the files and stay the literal category "?" (they are not missing cells:
the census coded "unknown" as a value of its own, and keeping it makes the table complete).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

import numpy as np
import pandas as pd

from rote.core.errors import DataError
from rote.data.presets import get_preset
from rote.data.schema import TableSchema

ADULT_COLUMNS: tuple[str, ...] = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)
"""Column names of the Adult files (they have no header), in file order."""

_ADULT_FILES = {"train": "adult.data.gz", "test": "adult.test.gz"}


@dataclass(frozen=True)
class DatasetInfo:
    """What a shipped dataset is: `splits` maps split name -> number of rows; `schema` gives its column types."""

    name: str
    description: str
    splits: dict[str, int]
    schema: TableSchema
    source: str
    license: str
    citation: str


@functools.lru_cache(maxsize=None)
def _parse_adult(split: str) -> pd.DataFrame:
    """Parse one embedded Adult file (cached: callers must copy before handing it out)."""
    numeric = set(get_preset("adult").numeric)
    dtypes = {c: (np.int64 if c in numeric else str) for c in ADULT_COLUMNS}
    ref = resources.files("rote.data").joinpath("embedded", _ADULT_FILES[split])
    with ref.open("rb") as fh:
        df = pd.read_csv(
            fh,
            compression="gzip",
            header=None,
            names=list(ADULT_COLUMNS),
            dtype=dtypes,
            skipinitialspace=True,
            skiprows=1 if split == "test" else 0,
            na_filter=False,
        )
    if split == "test":
        df["income"] = df["income"].str.removesuffix(".")
    return df


def _load_adult(split: str) -> pd.DataFrame:
    return _parse_adult(split).copy(deep=True)


class _Entry(NamedTuple):
    info: DatasetInfo
    loader: Callable[[str], pd.DataFrame]


_REGISTRY: dict[str, _Entry] = {
    "adult": _Entry(
        DatasetInfo(
            name="adult",
            description="UCI Adult census income: predict whether income exceeds $50K/yr (binary) from 14 "
            "demographic columns; '?' marks unknown values",
            splits={"train": 32_561, "test": 16_281},
            schema=get_preset("adult").schema,
            source="https://archive.ics.uci.edu/dataset/2/adult",
            license="CC BY 4.0",
            citation="Becker, B. & Kohavi, R. (1996). Adult [Dataset]. UCI Machine Learning Repository. "
            "https://doi.org/10.24432/C5XW20",
        ),
        _load_adult,
    ),
}


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise DataError(f"dataset {name!r}: unknown dataset; known datasets: {', '.join(_REGISTRY)}") from None


def list_datasets() -> list[DatasetInfo]:
    """Every shipped dataset, by name (copies: editing them does not change the registry)."""
    return [dataclasses.replace(e.info, splits=dict(e.info.splits)) for e in _REGISTRY.values()]


def load_dataset(name: str, split: str = "train") -> pd.DataFrame:
    """A fresh copy of one split of a shipped dataset; `df.attrs["source"]` is "name:split"."""
    entry = _entry(name)
    if split not in entry.info.splits:
        raise DataError(f"{name}: unknown split {split!r}; known splits: {', '.join(entry.info.splits)}")
    df = entry.loader(split)
    df.attrs["source"] = f"{name}:{split}"
    return df


def dataset_schema(name: str) -> TableSchema:
    """The column types of a shipped dataset (the same as its preset's)."""
    return _entry(name).info.schema
