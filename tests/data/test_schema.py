"""TableSchema construction, JSON round trip, overrides and inference rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import ConfigError, DataError, SchemaError
from rote.data import TableSchema, infer_schema
from rote.data.schema import INFERENCE_RULES, MAX_CATEGORICAL_INT

# ---------------------------------------------------------------------------------------------- TableSchema


def test_lists_are_coerced_to_tuples_and_columns_are_numeric_then_categorical():
    s = TableSchema(["b", "a"], ["z", "y"], target="y")
    assert s.numeric == ("b", "a") and s.categorical == ("z", "y")
    assert s.columns == ("b", "a", "z", "y")
    assert s.target == "y"
    hash(s)  # frozen and tuple-valued, so usable as a dict key


def test_column_both_numeric_and_categorical_is_rejected():
    with pytest.raises(SchemaError, match=r"both numeric and categorical: 'x'.*one type"):
        TableSchema(("x", "y"), ("x",))


def test_duplicate_columns_are_rejected():
    with pytest.raises(SchemaError, match=r"numeric columns listed more than once: 'a'"):
        TableSchema(("a", "b", "a"), ())
    with pytest.raises(SchemaError, match=r"categorical columns listed more than once: 'c'"):
        TableSchema((), ("c", "c"))


def test_target_must_be_a_schema_column():
    with pytest.raises(SchemaError, match=r"target 'label' is not one of the schema's columns \('a', 'b'\)"):
        TableSchema(("a",), ("b",), target="label")


def test_non_text_column_names_are_rejected():
    with pytest.raises(SchemaError, match=r"non-text column names \[0\]"):
        TableSchema((0,), ())  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match=r"'numeric' must be a list"):
        TableSchema("age", ())  # type: ignore[arg-type]


def test_dict_and_json_round_trip(tmp_path):
    s = TableSchema(("age", "income $"), ("sex", "naïve"), target="sex")
    assert s.to_dict() == {"numeric": ["age", "income $"], "categorical": ["sex", "naïve"], "target": "sex"}
    assert TableSchema.from_dict(s.to_dict()) == s
    path = tmp_path / "sub" / "schema.json"
    s.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["target"] == "sex"
    assert TableSchema.load(path) == s
    no_target = TableSchema(("a",), ())
    no_target.save(tmp_path / "t.json")
    assert TableSchema.load(tmp_path / "t.json") == no_target


def test_from_dict_names_bad_keys_and_types():
    with pytest.raises(SchemaError, match=r"unknown schema keys 'numerc'.*allowed keys are 'numeric', 'categorical'"):
        TableSchema.from_dict({"numerc": ["a"], "categorical": []})
    with pytest.raises(SchemaError, match=r"'categorical' must be a list of column names, got str"):
        TableSchema.from_dict({"numeric": [], "categorical": "a"})
    with pytest.raises(SchemaError, match=r"'target' must be a column name or null, got 3"):
        TableSchema.from_dict({"numeric": ["a"], "categorical": [], "target": 3})
    with pytest.raises(SchemaError, match=r"must be a JSON object"):
        TableSchema.from_dict(["a"])  # type: ignore[arg-type]


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match=r"nope\.json: file not found"):
        TableSchema.load(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.json: not valid JSON"):
        TableSchema.load(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"numeric": ["a"], "categorical": ["a"]}), encoding="utf-8")
    with pytest.raises(SchemaError, match=r"wrong\.json: columns both numeric and categorical: 'a'") as err:
        TableSchema.load(wrong)
    assert "\n" not in str(err.value)
    bad_key = tmp_path / "badkey.json"
    bad_key.write_text(json.dumps({"numeric": [], "categorical": [], "label": "y"}), encoding="utf-8")
    with pytest.raises(SchemaError, match=r"badkey\.json: unknown schema keys 'label'"):
        TableSchema.load(bad_key)
    with pytest.raises(DataError, match=r"is a folder"):
        TableSchema.load(tmp_path)


def test_with_overrides_moves_columns_and_sets_target():
    s = TableSchema(("a", "b", "c"), ("d", "e"), target="e")
    moved = s.with_overrides(numeric=["d"], categorical=["b"], target="a")
    assert moved.numeric == ("a", "c", "d")
    assert moved.categorical == ("e", "b")
    assert moved.target == "a"
    assert s.numeric == ("a", "b", "c")  # original untouched
    assert s.with_overrides(numeric=["a"]) == s  # already numeric: no change, target kept
    with pytest.raises(SchemaError, match=r"columns not in the schema: 'zz'"):
        s.with_overrides(numeric=["zz"])
    with pytest.raises(SchemaError, match=r"both numeric and categorical: 'a'"):
        s.with_overrides(numeric=["a"], categorical=["a"])


# ---------------------------------------------------------------------------------------------- inference


def test_rules_are_published_as_constants():
    assert MAX_CATEGORICAL_INT == 10
    assert any("10 distinct" in r for r in INFERENCE_RULES)


def test_integer_column_threshold_10_categorical_11_numeric():
    df = pd.DataFrame({"ten": np.arange(22) % 10, "eleven": np.arange(22) % 11})
    s = infer_schema(df)
    assert s.categorical == ("ten",)
    assert s.numeric == ("eleven",)
    # the threshold is a parameter
    assert infer_schema(df, max_categorical_int=11).categorical == ("ten", "eleven")
    assert infer_schema(df, max_categorical_int=0).numeric == ("ten", "eleven")


def test_integral_floats_count_as_integers_but_fractional_floats_are_numeric():
    df = pd.DataFrame(
        {
            "codes": [1.0, 2.0, np.nan, 3.0, 1.0],  # integral floats with a gap (NaN makes it float)
            "fractions": [0.5, 1.0, 1.0, 0.5, 1.0],  # 2 distinct values but not integral
            "big_ints": [1.0e6, 2.0e6, 3.0e6, 4.0e6, 5.0e6],
        }
    )
    s = infer_schema(df)
    assert s.categorical == ("codes", "big_ints")  # 5 distinct integral values <= 10
    assert s.numeric == ("fractions",)


def test_bool_string_object_and_category_columns_are_categorical():
    df = pd.DataFrame(
        {
            "flag": [True, False, True],
            "nflag": pd.array([True, None, False], dtype="boolean"),
            "text": ["a", "b", "c"],
            "obj": pd.Series([1, "x", 2.5], dtype=object),
            "cat": pd.Categorical([1.5, 2.5, 1.5]),
            "x": [0.1, 0.2, 0.3],
        }
    )
    s = infer_schema(df)
    assert s.categorical == ("flag", "nflag", "text", "obj", "cat")
    assert s.numeric == ("x",)


def test_column_order_follows_the_table_within_each_type():
    df = pd.DataFrame({"z": [0.5, 1.5], "c": ["a", "b"], "a": [0.1, 0.2], "b": ["x", "y"]})
    s = infer_schema(df)
    assert s.numeric == ("z", "a")
    assert s.categorical == ("c", "b")


def test_overrides_win_and_target_keeps_its_type():
    df = pd.DataFrame({"n": np.arange(30) % 3, "f": np.linspace(0, 1, 30), "y": np.arange(30) % 2})
    s = infer_schema(df, target="y", numeric=["n"], categorical=["f"])
    assert s.numeric == ("n",)
    assert s.categorical == ("f", "y")
    assert s.target == "y"
    reg = infer_schema(df, target="f")
    assert reg.target == "f" and "f" in reg.numeric


def test_override_errors_name_the_columns():
    df = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
    with pytest.raises(SchemaError, match=r"t\.csv: override columns not in the table: 'nope'.*'a', 'b'"):
        infer_schema(df, numeric=["nope"], name="t.csv")
    with pytest.raises(SchemaError, match=r"columns named both numeric and categorical: 'a'"):
        infer_schema(df, numeric=["a"], categorical=["a"], name="t.csv")


def test_unknown_target_lists_the_columns():
    df = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
    df.attrs["source"] = "data.csv"
    with pytest.raises(SchemaError, match=r"data\.csv: target 'label' is not a column.*one of 'a', 'b'"):
        infer_schema(df, target="label")


def test_entirely_missing_column_is_an_error():
    df = pd.DataFrame({"a": [1.5, 2.5], "empty": [np.nan, np.nan]})
    with pytest.raises(SchemaError, match=r"t: column 'empty' is entirely missing.*drop the column or fill it"):
        infer_schema(df, name="t")
    with pytest.raises(SchemaError, match=r"'empty' is entirely missing"):
        infer_schema(df, name="t", categorical=["empty"])


def test_inference_rejects_unusable_tables():
    with pytest.raises(DataError, match=r"t: table has no rows"):
        infer_schema(pd.DataFrame({"a": pd.Series([], dtype=float)}), name="t")
    with pytest.raises(SchemaError, match=r"column names must be text"):
        infer_schema(pd.DataFrame({0: [1.0, 2.0]}), name="t")
    with pytest.raises(SchemaError, match=r"column 'when' has unsupported type"):
        infer_schema(pd.DataFrame({"when": pd.to_datetime(["2020-01-01", "2021-01-01"])}), name="t")
    with pytest.raises(ConfigError, match=r"max_categorical_int=-1"):
        infer_schema(pd.DataFrame({"a": [1, 2]}), max_categorical_int=-1)


def test_infer_schema_does_not_modify_the_frame():
    df = pd.DataFrame({"a": [1, 2, None], "b": ["x", None, "y"]})
    before = df.copy(deep=True)
    infer_schema(df, target="b")
    pd.testing.assert_frame_equal(df, before)
