"""Dataset presets for the TabCutMix benchmark tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import ConfigError, SchemaError
from rote.data import DATASET_PRESETS, DatasetPreset, TableSchema, apply_preset, get_preset, validate_table

EXPECTED = {"adult", "default", "shoppers", "magic", "beijing", "news", "cardio", "churn", "wilt"}


def _synthetic(preset: DatasetPreset, n: int = 6) -> pd.DataFrame:
    """A frame with the preset's columns (shuffled) plus its drop columns."""
    rng = np.random.default_rng(0)
    cols = list(preset.drop) + list(preset.numeric) + list(preset.categorical)
    order = rng.permutation(len(cols))
    data = {}
    for i in order:
        c = cols[i]
        if c in preset.numeric:
            data[c] = rng.normal(size=n)
        elif c in preset.categorical:
            data[c] = rng.integers(0, 3, size=n)
        else:
            data[c] = [f"id{k}" for k in range(n)]
    df = pd.DataFrame(data)
    df.attrs["source"] = f"{preset.name}.csv"
    return df


def test_presets_cover_the_paper_datasets():
    assert isinstance(DATASET_PRESETS, dict)
    assert set(DATASET_PRESETS) == EXPECTED
    for name, preset in DATASET_PRESETS.items():
        assert preset.name == name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_is_consistent(name):
    p = get_preset(name)
    assert p.target in p.categorical or p.target in p.numeric
    assert not set(p.numeric) & set(p.categorical)
    assert not set(p.drop) & (set(p.numeric) | set(p.categorical))
    assert len(set(p.numeric)) == len(p.numeric) and len(set(p.categorical)) == len(p.categorical)
    assert isinstance(p.schema, TableSchema)
    assert p.schema.columns == p.numeric + p.categorical
    assert p.task in ("binary", "multiclass", "regression")
    assert (p.target in p.numeric) == (p.task == "regression")
    assert p.source and p.description


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_apply_preset_on_synthetic_frame(name):
    p = get_preset(name)
    df = _synthetic(p)
    before = df.copy(deep=True)
    out, schema = apply_preset(df, name)
    assert schema == p.schema
    assert set(out.columns) == set(schema.columns)
    assert not set(p.drop) & set(out.columns)
    assert out.attrs["source"] == f"{name}.csv"
    pd.testing.assert_frame_equal(df, before)  # input untouched
    clean = validate_table(out, schema)
    assert list(clean.columns) == list(schema.columns)
    assert clean.shape == (len(df), len(schema.columns))


def test_apply_preset_without_drop_columns_present():
    p = get_preset("churn")
    df = _synthetic(p).drop(columns=list(p.drop))
    out, _ = apply_preset(df, "churn")
    assert set(out.columns) == set(p.schema.columns)


def test_apply_preset_names_missing_columns_and_source():
    p = get_preset("cardio")
    df = _synthetic(p).drop(columns=["ap_hi", "gluc"])
    with pytest.raises(SchemaError) as err:
        apply_preset(df, "cardio")
    msg = str(err.value)
    assert msg.startswith("cardio.csv: columns required by preset 'cardio' are missing: 'ap_hi', 'gluc'")
    assert "`numeric`/`categorical`" in msg and "\n" not in msg


def test_apply_preset_strips_spaces_around_column_names():
    p = get_preset("news")
    df = _synthetic(p)
    df.columns = [c if c == "url" else f" {c}" for c in df.columns]  # as in OnlineNewsPopularity.csv
    out, schema = apply_preset(df, "news")
    assert set(out.columns) == set(schema.columns)


def test_specific_preset_contents():
    assert get_preset("default").target == "default payment next month"
    assert get_preset("default").drop == ("ID",)
    assert get_preset("cardio").sep == ";"
    assert get_preset("beijing").task == "regression" and get_preset("beijing").target == "pm2.5"
    news = get_preset("news")
    assert len(news.numeric) == 45 and news.numeric[-1] == "shares"
    assert len(news.categorical) == 14 and news.drop == ("url", "timedelta")
    assert len(news.numeric) + len(news.categorical) + len(news.drop) == 61  # all UCI columns
    assert get_preset("adult").schema.categorical[-1] == "income"


def test_unknown_preset_lists_known_names():
    with pytest.raises(
        ConfigError, match=r"`dataset_preset` iris: unknown dataset preset; known presets: adult, default"
    ):
        get_preset("iris")


def test_invalid_preset_definitions_are_rejected():
    with pytest.raises(ConfigError, match=r"task 'ranking' is unknown"):
        DatasetPreset("x", ("a",), ("b",), "b", task="ranking")
    with pytest.raises(SchemaError, match=r"target 'c' is not one of the schema's columns"):
        DatasetPreset("x", ("a",), ("b",), "c")
    with pytest.raises(ConfigError, match=r"both kept and dropped: 'a'"):
        DatasetPreset("x", ("a",), ("b",), "b", drop=("a",))
