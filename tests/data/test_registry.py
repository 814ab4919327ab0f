"""The embedded UCI Adult dataset and the dataset registry.

The expected counts were checked against the raw UCI files independently of pandas:
`grep -c ', >50K$' adult.data` -> 7841 (of 32,561 rows) and `grep -c ', >50K\\.$' adult.test` -> 3846 (of 16,281).
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import DataError
from rote.data import (
    DatasetInfo,
    dataset_schema,
    get_preset,
    infer_schema,
    list_datasets,
    load_dataset,
    unseen_categories,
    validate_table,
)
from rote.data.registry import ADULT_COLUMNS

NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def test_adult_shapes_columns_and_dtypes():
    train = load_dataset("adult")
    test = load_dataset("adult", "test")
    assert train.shape == (32561, 15)
    assert test.shape == (16281, 15)
    for df in (train, test):
        assert list(df.columns) == list(ADULT_COLUMNS)
        for col in df.columns:
            if col in NUMERIC:
                assert df[col].dtype == np.int64, col
            else:
                assert pd.api.types.is_string_dtype(df[col].dtype), col
                assert not df[col].isna().any(), col
                assert not df[col].str.startswith(" ").any(), col  # spaces after commas skipped


def test_adult_label_counts_match_the_raw_files():
    train = load_dataset("adult", "train")
    test = load_dataset("adult", "test")
    assert set(train["income"]) == {"<=50K", ">50K"}
    assert set(test["income"]) == {"<=50K", ">50K"}  # trailing '.' stripped
    assert not test["income"].str.endswith(".").any()
    assert int((train["income"] == ">50K").sum()) == 7841
    assert int((test["income"] == ">50K").sum()) == 3846
    assert int((train["income"] == "<=50K").sum()) == 24720
    assert int((test["income"] == "<=50K").sum()) == 12435


def test_adult_first_rows_and_unknown_marker():
    train = load_dataset("adult")
    test = load_dataset("adult", "test")
    assert train.iloc[0].tolist() == [
        39,
        "State-gov",
        77516,
        "Bachelors",
        13,
        "Never-married",
        "Adm-clerical",
        "Not-in-family",
        "White",
        "Male",
        2174,
        0,
        40,
        "United-States",
        "<=50K",
    ]
    assert test.iloc[0]["age"] == 25 and test.iloc[0]["education"] == "11th"  # cross-validator line skipped
    assert (train["workclass"] == "?").sum() == 1836  # '?' kept as a category of its own
    assert (train["occupation"] == "?").sum() == 1843
    assert (train["native-country"] == "?").sum() == 583


def test_embedded_files_are_the_unmodified_uci_files():
    expected = {
        "adult.data.gz": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
        "adult.test.gz": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    }
    folder = resources.files("rote.data").joinpath("embedded")
    for fname, sha in expected.items():
        raw = gzip.decompress(folder.joinpath(fname).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == sha
    text = folder.joinpath("ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "10.24432/C5XW20" in text


def test_each_call_returns_a_fresh_frame():
    a = load_dataset("adult")
    a.loc[0, "age"] = -1
    a["new"] = 1
    b = load_dataset("adult")
    assert b.loc[0, "age"] == 39 and "new" not in b.columns
    assert b.attrs["source"] == "adult:train"
    assert load_dataset("adult", "test").attrs["source"] == "adult:test"


def test_registry_schema_equals_preset_and_inference():
    schema = dataset_schema("adult")
    assert schema == get_preset("adult").schema
    assert schema.target == "income"
    assert infer_schema(load_dataset("adult"), target="income") == schema


def test_adult_validates_cleanly():
    schema = dataset_schema("adult")
    train = validate_table(load_dataset("adult"), schema)
    test = validate_table(load_dataset("adult", "test"), schema)
    assert train.shape == (32561, 15) and test.shape == (16281, 15)
    assert list(train.columns) == list(schema.columns)
    # the only category of one split absent from the other: Holand-Netherlands, once, in train
    assert unseen_categories(train, test, schema) == {}
    assert unseen_categories(test, train, schema) == {"native-country": 1}


def test_list_datasets():
    infos = list_datasets()
    assert [i.name for i in infos] == ["adult"]
    info = infos[0]
    assert isinstance(info, DatasetInfo)
    assert info.splits == {"train": 32561, "test": 16281}
    assert info.license == "CC BY 4.0"
    assert "10.24432/C5XW20" in info.citation
    info.splits["train"] = 0  # a copy: the registry is unaffected
    assert list_datasets()[0].splits["train"] == 32561


def test_unknown_names_are_data_errors():
    with pytest.raises(DataError, match=r"dataset 'iris': unknown dataset; known datasets: adult"):
        load_dataset("iris")
    with pytest.raises(DataError, match=r"adult: unknown split 'valid'; known splits: train, test"):
        load_dataset("adult", "valid")
    with pytest.raises(DataError, match=r"known datasets: adult"):
        dataset_schema("iris")
