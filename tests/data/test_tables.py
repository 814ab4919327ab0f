"""load_table, validate_table and unseen_categories."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rote.core.errors import ConfigError, DataError, SchemaError
from rote.data import MISSING_CATEGORY, TableSchema, infer_schema, load_table, unseen_categories, validate_table

CSV_TEXT = "age,city,score\n31,Paris,0.5\n45, Lyon ,\n27,Paris,1.25\n"

# ---------------------------------------------------------------------------------------------- load_table


def _check_small(df: pd.DataFrame) -> None:
    assert list(df.columns) == ["age", "city", "score"]
    assert df.shape == (3, 3)
    assert df["age"].tolist() == [31, 45, 27]
    assert df["city"].tolist() == ["Paris", " Lyon ", "Paris"]  # values are not stripped
    assert np.isnan(df["score"].iloc[1])  # empty cell -> NaN


def test_load_csv_sets_source(tmp_path):
    p = tmp_path / "small.csv"
    p.write_text(CSV_TEXT, encoding="utf-8")
    df = load_table(p)
    _check_small(df)
    assert df.attrs["source"] == str(p)
    assert load_table(str(p), name="mine").attrs["source"] == "mine"


def test_load_tsv_txt_and_explicit_sep(tmp_path):
    tsv = tmp_path / "small.tsv"
    tsv.write_text(CSV_TEXT.replace(",", "\t"), encoding="utf-8")
    _check_small(load_table(tsv))
    txt = tmp_path / "small.txt"
    txt.write_text(CSV_TEXT.replace(",", ";"), encoding="utf-8")
    _check_small(load_table(txt, sep=";"))
    assert load_table(txt).shape[1] == 1  # without sep the whole line is one column


def test_load_gzipped_csv(tmp_path):
    p = tmp_path / "small.CSV.GZ"
    p.write_bytes(gzip.compress(CSV_TEXT.encode("utf-8")))
    _check_small(load_table(p))


def test_load_parquet(tmp_path):
    src = pd.DataFrame({"age": [31, 45, 27], "city": ["Paris", " Lyon ", "Paris"], "score": [0.5, np.nan, 1.25]})
    for suffix in (".parquet", ".pq"):
        p = tmp_path / f"small{suffix}"
        src.to_parquet(p, index=False)
        _check_small(load_table(p, sep=";"))  # sep is ignored for Parquet


def test_load_dataframe_is_a_copy():
    src = pd.DataFrame({"a": [1, 2]})
    src.attrs["keep"] = 1
    df = load_table(src)
    assert df.attrs["source"] == "dataframe" and df.attrs["keep"] == 1
    assert "source" not in src.attrs
    df.loc[0, "a"] = 99
    assert src["a"].tolist() == [1, 2]
    assert load_table(src, name="frame").attrs["source"] == "frame"


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r"is a folder, not a file"):
        load_table(tmp_path)
    xls = tmp_path / "book.xlsx"
    xls.write_bytes(b"PK")
    with pytest.raises(
        DataError,
        match=r"book\.xlsx: unknown file type; rote reads \.csv, \.csv\.gz, \.tsv, \.txt, "
        r"\.parquet, \.pq",
    ):
        load_table(xls)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.csv: file is empty"):
        load_table(empty)
    corrupt = tmp_path / "bad.parquet"
    corrupt.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: cannot read as Parquet") as err:
        load_table(corrupt)
    assert "\n" not in str(err.value)
    badgz = tmp_path / "bad.csv.gz"
    badgz.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"bad\.csv\.gz: cannot read as CSV"):
        load_table(badgz)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n1,2,3,4\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ragged\.csv: cannot read as CSV.*`sep`"):
        load_table(ragged)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name\nJos\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv: not UTF-8 text.*save the file as UTF-8"):
        load_table(latin)
    with pytest.raises(DataError, match=r"no columns"):
        load_table(pd.DataFrame())


# ---------------------------------------------------------------------------------------------- validate_table


def _frame() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "extra_id": [10, 11, 12, 13],
            "n_int": [1, 2, 3, 4],
            "code": [1.0, 2.0, 1.0, 3.0],
            "label": ["yes", "no", "yes", "no"],
            "flag": [True, False, True, True],
            "x": [0.5, 1.5, -2.0, 3.25],
        },
        index=[7, 3, 9, 1],
    )
    df.attrs["source"] = "frame.csv"
    return df


SCHEMA = TableSchema(("x", "n_int"), ("label", "code", "flag"), target="label")


def test_validate_returns_clean_frame_in_schema_order():
    df = _frame()
    before = df.copy(deep=True)
    out = validate_table(df, SCHEMA, allow_extra=True)
    assert list(out.columns) == ["x", "n_int", "label", "code", "flag"]
    assert isinstance(out.index, pd.RangeIndex) and out.index.tolist() == [0, 1, 2, 3]
    assert out["x"].dtype == np.float64 and out["n_int"].dtype == np.float64
    assert out["x"].tolist() == [0.5, 1.5, -2.0, 3.25]
    for col in SCHEMA.categorical:
        assert pd.api.types.is_object_dtype(out[col].dtype)
        assert all(type(v) is str for v in out[col])
    assert out["code"].tolist() == ["1", "2", "1", "3"]
    assert out["flag"].tolist() == ["True", "False", "True", "True"]
    assert out["label"].tolist() == ["yes", "no", "yes", "no"]
    assert out.attrs["source"] == "frame.csv"
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert df.attrs == before.attrs


def test_canonical_strings_make_int_float_and_text_agree():
    schema = TableSchema((), ("c",))
    from_int = validate_table(pd.DataFrame({"c": [1, 2, 30]}), schema)
    from_float = validate_table(pd.DataFrame({"c": [1.0, 2.0, 30.0]}), schema)
    from_text = validate_table(pd.DataFrame({"c": ["1", "2", "30"]}), schema)
    from_obj = validate_table(pd.DataFrame({"c": pd.Series([1, 2.0, "30"], dtype=object)}), schema)
    from_nullable = validate_table(pd.DataFrame({"c": pd.array([1, 2, 30], dtype="Int64")}), schema)
    from_cat = validate_table(pd.DataFrame({"c": pd.Categorical([1.0, 2.0, 30.0])}), schema)
    for other in (from_float, from_text, from_obj, from_nullable, from_cat):
        pd.testing.assert_frame_equal(from_int, other)
    assert from_int["c"].tolist() == ["1", "2", "30"]
    fractional = validate_table(pd.DataFrame({"c": [0.5, 1e-5, 2.0]}), schema)
    assert fractional["c"].tolist() == ["0.5", "1e-05", "2"]
    mixed = validate_table(pd.DataFrame({"c": pd.Series([1, True, "True", 1.0], dtype=object)}), schema)
    assert mixed["c"].tolist() == ["1", "True", "True", "1"]  # 1 and True stay different categories


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=-(2**53), max_value=2**53), min_size=1, max_size=20))
def test_integers_and_their_float_form_are_the_same_category(values):
    schema = TableSchema((), ("c",))
    a = validate_table(pd.DataFrame({"c": values}), schema)
    b = validate_table(pd.DataFrame({"c": [float(v) for v in values]}), schema)
    assert a["c"].tolist() == b["c"].tolist() == [str(v) for v in values]


def test_numeric_columns_accept_numbers_stored_as_text_and_bools():
    schema = TableSchema(("a", "b"), ())
    out = validate_table(pd.DataFrame({"a": ["1.5", "2", "-3e2"], "b": [True, False, True]}), schema)
    assert out["a"].tolist() == [1.5, 2.0, -300.0]
    assert out["b"].tolist() == [1.0, 0.0, 1.0]


def test_empty_table_is_a_data_error():
    df = pd.DataFrame({"x": pd.Series([], dtype=float)})
    with pytest.raises(DataError, match=r"^empty\.csv: table has no rows"):
        validate_table(df, TableSchema(("x",), ()), name="empty.csv")


def test_missing_and_extra_columns():
    df = _frame()
    with pytest.raises(SchemaError, match=r"frame\.csv: columns in the schema but not in the table: 'zz'"):
        validate_table(df, TableSchema(("x", "zz"), ()), allow_extra=True)
    with pytest.raises(
        SchemaError,
        match=r"frame\.csv: columns not in the schema: 'extra_id'; "
        r"drop them or add them to the schema",
    ):
        validate_table(df, SCHEMA)
    assert "extra_id" not in validate_table(df, SCHEMA, allow_extra=True).columns


def test_text_in_numeric_column_names_column_row_value_and_fix():
    df = pd.DataFrame({"income": ["100", "200", "n/a", "300", "unknown"]})
    with pytest.raises(SchemaError) as err:
        validate_table(df, TableSchema(("income",), ()), name="people.csv")
    msg = str(err.value)
    assert msg.startswith("people.csv: numeric column 'income' holds text 'n/a' at row 3")
    assert "(2 non-numeric cells)" in msg
    assert "declare it categorical with `categorical` income or clean the file" in msg
    assert "\n" not in msg


def test_missing_cells_error_policy():
    df = pd.DataFrame({"n": [1.0, 2.0, 3.0], "c": ["a", None, ""]})
    df.attrs["source"] = "m.csv"
    with pytest.raises(DataError) as err:
        validate_table(df, TableSchema(("n",), ("c",)))
    msg = str(err.value)
    assert "m.csv: categorical column 'c' has 2 missing cells (first at row 2)" in msg
    assert "`missing` category" in msg
    df2 = pd.DataFrame({"n": [1.0, np.nan, None, 4.0], "c": ["a", "b", "c", "d"]})
    with pytest.raises(
        DataError,
        match=r"t: numeric column 'n' has 2 missing cells \(first at row 2\); "
        r"impute them or drop those rows, or declare the column categorical "
        r"with `categorical` n",
    ):
        validate_table(df2, TableSchema(("n",), ("c",)), name="t")
    text_numeric = pd.DataFrame({"n": ["1", "", "3"]})
    with pytest.raises(DataError, match=r"'n' has 1 missing cell \(first at row 2\)"):
        validate_table(text_numeric, TableSchema(("n",), ()), name="t")


def test_missing_category_policy():
    df = pd.DataFrame({"n": [1.0, 2.0, 3.0], "c": ["a", None, ""], "k": [1.0, np.nan, 1.0]})
    before = df.copy(deep=True)
    out = validate_table(df, TableSchema(("n",), ("c", "k")), missing="category")
    assert out["c"].tolist() == ["a", MISSING_CATEGORY, MISSING_CATEGORY]
    assert out["k"].tolist() == ["1", MISSING_CATEGORY, "1"]
    pd.testing.assert_frame_equal(df, before)
    bad = pd.DataFrame({"n": [1.0, np.nan], "c": ["a", "b"]})
    with pytest.raises(DataError) as err:
        validate_table(bad, TableSchema(("n",), ("c",)), missing="category", name="t")
    msg = str(err.value)
    assert "numeric column 'n' has 1 missing cell (first at row 2)" in msg
    assert "`missing` category only applies to categorical columns" in msg
    assert "`categorical` n" in msg


def test_unknown_missing_policy_is_a_config_error():
    with pytest.raises(ConfigError, match=r"missing='drop': unknown missing-value policy; use one of error, category"):
        validate_table(_frame(), SCHEMA, missing="drop", allow_extra=True)


def test_infinite_numeric_values_are_rejected():
    df = pd.DataFrame({"x": [1.0, np.inf, -np.inf]})
    with pytest.raises(DataError, match=r"t: numeric column 'x' holds an infinite value at row 2 \(2 infinite cells\)"):
        validate_table(df, TableSchema(("x",), ()), name="t")


def test_row_numbers_are_positions_not_index_labels():
    df = pd.DataFrame({"x": [1.0, 2.0, "oops"]}, index=[100, 5, 42])
    with pytest.raises(SchemaError, match=r"'oops' at row 3 "):
        validate_table(df, TableSchema(("x",), ()), name="t")


def test_load_then_infer_then_validate_a_csv(tmp_path):
    p = tmp_path / "people.csv"
    p.write_text("age,grade,city,y\n30,1,Paris,0\n40,2,,1\n50,1,Rome,1\n", encoding="utf-8")
    df = load_table(p)
    schema = infer_schema(df, target="y")
    assert schema.numeric == () and schema.categorical == ("age", "grade", "city", "y")
    schema = schema.with_overrides(numeric=["age"])
    with pytest.raises(DataError, match=r"people\.csv: categorical column 'city' has 1 missing cell \(first at row 2"):
        validate_table(df, schema)
    out = validate_table(df, schema, missing="category")
    assert out["age"].tolist() == [30.0, 40.0, 50.0]
    assert out["city"].tolist() == ["Paris", MISSING_CATEGORY, "Rome"]


# ---------------------------------------------------------------------------------------------- unseen_categories


def test_unseen_categories_counts_cells_per_column():
    schema = TableSchema(("x",), ("a", "b", "c"))
    ref = validate_table(
        pd.DataFrame({"x": [1.0, 2.0, 3.0], "a": ["p", "q", "p"], "b": [1, 2, 3], "c": ["u", "v", "w"]}), schema
    )
    other = validate_table(
        pd.DataFrame(
            {"x": [9.0, 9.0, 9.0, 9.0], "a": ["p", "r", "r", "s"], "b": [1.0, 2.0, 4.0, 4.0], "c": ["u", "w", "v", "u"]}
        ),
        schema,
    )
    assert unseen_categories(ref, other, schema) == {"a": 3, "b": 2}
    assert unseen_categories(ref, ref, schema) == {}
    assert unseen_categories(other, ref, schema) == {"a": 1, "b": 1}
    with pytest.raises(SchemaError, match=r"categorical columns missing: 'c'"):
        unseen_categories(ref, other.drop(columns=["c"]), schema)
