"""The distance-ratio memorization audit (`rote.tabular.audit`) on small hand-made tables."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import ConfigError, DataError, SchemaError
from rote.data import TableSchema, infer_schema
from rote.tabular.audit import (
    PAPER_AUC_GRID,
    audit,
    distance_ratio,
    mem_auc_exact,
    mem_auc_grid,
    memorization_ratio,
    memorization_ratio_at,
)

SCHEMA = TableSchema(numeric=("x",), categorical=("c", "y"), target="y")

# Four distinct training rows: one numeric column x and two categorical columns c and y (y is the label).
TRAIN = pd.DataFrame({"x": [0.0, 10.0, 4.0, 6.0], "c": ["a", "a", "b", "b"], "y": ["0", "0", "1", "0"]})
SYN = pd.DataFrame({"x": [1.0, 5.5, 10.0, 2.0], "c": ["a", "b", "a", "a"], "y": ["0", "1", "0", "1"]})
HOLD = pd.DataFrame({"x": [3.0, 12.0, 5.0], "c": ["a", "b", "c"], "y": ["1", "0", "1"]})

# Hand-worked tabcutmix distances, M = 3 columns (x, c, y). e = |x_syn - x_train| over train x = [0, 10, 4, 6];
# mm = (e - min e) / (max e - min e); d = (mm + categorical mismatches) / 3.
#
# s0 = (1, a, 0):   e = [1, 9, 3, 5], min 1, max 9 -> mm = [0, 1, 1/4, 1/2]; mismatches = [0, 0, 2, 1]
#                   d = [0, 1/3, 9/12, 1/2] -> d1 = 0 (row 0), d2 = 1/3 (row 1), ratio 0, memorized
# s1 = (5.5, b, 1): e = [5.5, 4.5, 1.5, 0.5], min 0.5, max 5.5 -> mm = [1, 0.8, 0.2, 0]; mismatches = [2, 2, 0, 1]
#                   d = [1, 2.8/3, 0.2/3, 1/3] -> d1 = 1/15 (row 2), d2 = 1/3 (row 3), ratio 0.2, memorized
# s2 = (10, a, 0):  exact copy of row 1. e = [10, 0, 6, 4] -> mm = [1, 0, 0.6, 0.4]; mismatches = [0, 0, 2, 1]
#                   d = [1/3, 0, 2.6/3, 1.4/3] -> d1 = 0 (row 1), d2 = 1/3 (row 0), ratio 0, memorized
# s3 = (2, a, 1):   e = [2, 8, 2, 4], min 2, max 8 -> mm = [0, 1, 0, 1/3]; mismatches = [1, 1, 1, 2]
#                   d = [1/3, 2/3, 1/3, 7/9] -> d1 = d2 = 1/3 (rows 0 and 2, tied), ratio 1, not memorized
HAND_D1 = [0.0, 1 / 15, 0.0, 1 / 3]
HAND_D2 = [1 / 3, 1 / 3, 1 / 3, 1 / 3]
HAND_RATIO = [0.0, 0.2, 0.0, 1.0]
HAND_MEMORIZED = [True, True, True, False]


def _frames_equal_after(fn, *frames):
    """Run fn(); every frame must be unchanged (values, dtypes, index, attrs)."""
    copies = [(f.copy(deep=True), copy.deepcopy(f.attrs)) for f in frames]
    out = fn()
    for f, (c, attrs) in zip(frames, copies):
        pd.testing.assert_frame_equal(f, c)
        assert f.attrs == attrs
    return out


# ---------------------------------------------------------------------------------------------- hand-worked example


def test_hand_worked_tabcutmix_example():
    res = audit(TRAIN, SYN, schema=SCHEMA)
    rows = res.rows
    np.testing.assert_allclose(rows["d1"], HAND_D1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rows["d2"], HAND_D2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rows["ratio"], HAND_RATIO, rtol=1e-12, atol=1e-15)
    assert rows["d1"].iloc[0] == 0.0 and rows["d1"].iloc[2] == 0.0
    assert rows["memorized"].tolist() == HAND_MEMORIZED
    assert rows["nearest_train_row"].tolist()[:3] == [0, 2, 1]
    assert rows["second_train_row"].tolist()[:3] == [1, 3, 0]
    assert sorted(rows.loc[3, ["nearest_train_row", "second_train_row"]].tolist()) == [0, 2]  # tie
    assert rows["exact_copy_of"].tolist() == [-1, -1, 1, -1]
    assert rows["synthetic_row"].tolist() == [0, 1, 2, 3]
    assert res.memorization_ratio == 0.75
    assert res.exact_copies == 1
    assert res.n_train == 4 and res.n_synthetic == 4
    assert res.n_undefined_ratio == 0
    assert res.distance == "tabcutmix" and res.threshold == pytest.approx(1 / 3) and res.include_target
    # Mem-AUC exact: mean(1 - min(ratio, 1)) = (1 + 0.8 + 1 + 0) / 4
    assert res.mem_auc == pytest.approx(0.7, abs=1e-12)
    # 10-point grid t = i/9: fraction below t is 0 at t=0, 2/4 at t=1/9 (the two zeros), 3/4 from t=2/9 on
    # (0.2 < 2/9; ratio 1 is never < t <= 1). Trapezoid: (0 + .5)/2/9 + (.5 + .75)/2/9 + 7 * .75/9 = 6.125/9
    assert res.mem_auc_grid == pytest.approx(6.125 / 9, abs=1e-12)
    d = res.to_dict()
    assert d["n_memorized"] == 3 and d["n_train_rows_copied"] == 3  # rows 0, 2 and 1 are nearest of memorized
    assert "75.00%" in res.summary()


def test_hand_worked_gower_row():
    """Gower on s1 = (5.5, b, 1): x range 10 from train.
    row 0 (0, a, 0): (0.55 + 1 + 1)/3 = 0.85; row 1 (10, a, 0): (0.45 + 2)/3; row 2 (4, b, 1): 0.15/3 = 0.05;
    row 3 (6, b, 0): (0.05 + 1)/3 = 0.35. d1 = 0.05 (row 2), d2 = 0.35 (row 3), ratio 1/7."""
    rows = audit(TRAIN, SYN, schema=SCHEMA, distance="gower").rows
    assert rows.loc[1, "d1"] == pytest.approx(0.05, rel=1e-12)
    assert rows.loc[1, "d2"] == pytest.approx(0.35, rel=1e-12)
    assert rows.loc[1, "ratio"] == pytest.approx(1 / 7, rel=1e-12)
    assert rows.loc[1, ["nearest_train_row", "second_train_row"]].tolist() == [2, 3]
    assert rows.loc[2, "d1"] == 0.0  # exact copy


def test_include_target_false_drops_label():
    """Without y (M = 2), s1 = (5.5, b, 1): mm = [1, 0.8, 0.2, 0], mismatches (c only) = [1, 1, 0, 0],
    d = [1, 0.9, 0.1, 0] -> d1 = 0 (row 3, which differs from s1 only in the label), d2 = 0.1, ratio 0."""
    with_y = audit(TRAIN, SYN, schema=SCHEMA).rows
    without = audit(TRAIN, SYN, schema=SCHEMA, include_target=False)
    assert not without.include_target
    assert with_y.loc[1, "d1"] == pytest.approx(1 / 15)
    assert without.rows.loc[1, "d1"] == 0.0
    assert without.rows.loc[1, "d2"] == pytest.approx(0.1, rel=1e-12)
    assert without.rows.loc[1, "nearest_train_row"] == 3
    assert without.rows.loc[1, "ratio"] == 0.0


def test_to_frame_is_a_copy_of_the_per_row_table():
    res = audit(TRAIN, SYN, schema=SCHEMA)
    frame = res.to_frame()
    pd.testing.assert_frame_equal(frame, res.rows)
    frame.loc[0, "d1"] = 99.0
    assert res.rows.loc[0, "d1"] == 0.0  # s0 is memorized with d1 = 0 (hand-worked above)


def test_memorization_ratio_function():
    assert memorization_ratio(TRAIN, SYN, schema=SCHEMA) == 0.75
    assert memorization_ratio(TRAIN, SYN, schema=SCHEMA, threshold=0.1) == 0.5


@pytest.mark.parametrize(
    "threshold, expected",
    [
        (0.1, [True, False, True, False]),
        (0.2, [True, False, True, False]),
        (0.25, [True, True, True, False]),
        (1.0, [True, True, True, False]),
    ],
)
def test_threshold_changes_result(threshold, expected):
    res = audit(TRAIN, SYN, schema=SCHEMA, threshold=threshold)
    assert res.rows["memorized"].tolist() == expected  # strict: ratio 0.2 is not < 0.2, ratio 1 not < 1
    assert res.memorization_ratio == sum(expected) / 4
    assert res.threshold == threshold


@pytest.mark.parametrize("t", [0.05, 0.1, 0.2, 0.2000001, 1 / 3, 0.5, 1.0])
def test_at_threshold_equals_recomputed_audit(t):
    res = audit(TRAIN, SYN, schema=SCHEMA)
    assert res.at_threshold(t) == audit(TRAIN, SYN, schema=SCHEMA, threshold=t).memorization_ratio


# ---------------------------------------------------------------------------------------------- 0/0 and copies


def test_duplicated_training_rows_give_undefined_ratio():
    train = pd.concat([TRAIN, TRAIN.iloc[[2]]], ignore_index=True)  # row 4 duplicates row 2 = (4, b, 1)
    # a copy of the duplicated row, a copy of row 0, and a row that copies nothing
    syn = pd.DataFrame({"x": [4.0, 0.0, 7.0], "c": ["b", "a", "a"], "y": ["1", "0", "1"]})
    for name in ("tabcutmix", "gower", "l2"):
        res = audit(train, syn, schema=SCHEMA, distance=name)
        rows = res.rows
        assert rows.loc[0, "d1"] == 0.0 and rows.loc[0, "d2"] == 0.0
        assert np.isnan(rows.loc[0, "ratio"]) and not rows.loc[0, "memorized"]
        assert sorted(rows.loc[0, ["nearest_train_row", "second_train_row"]].tolist()) == [2, 4]
        assert rows.loc[1, "d1"] == 0.0 and rows.loc[1, "d2"] > 0 and rows.loc[1, "ratio"] == 0.0
        assert rows.loc[1, "memorized"]
        assert rows["exact_copy_of"].tolist() == [2, 0, -1]  # the first identical training row
        assert res.exact_copies == 2 and res.n_undefined_ratio == 1
        r2 = rows.loc[2, "ratio"]
        assert 0 < r2 <= 1
        assert res.memorization_ratio == pytest.approx((0 + 1 + (r2 < 1 / 3)) / 3)
        assert res.mem_auc == pytest.approx((0 + 1 + (1 - r2)) / 3)  # NaN counts as ratio 1 (never memorized)
        assert res.ratio_histogram["undefined"] == 1 and sum(res.ratio_histogram["counts"]) == 2
        assert res.train_rows["n_exact_copies"].tolist() == [1, 0, 1, 0, 0]


@pytest.mark.parametrize("distance", ["tabcutmix", "gower", "l2"])
def test_every_synthetic_row_an_exact_copy(distance):
    """Auditing the training table against itself (or any subset): every row is an exact copy of a distinct
    training row, d1 = 0 < d2, so every row is memorized."""
    res = audit(TRAIN, TRAIN, schema=SCHEMA, distance=distance)
    assert res.rows["exact_copy_of"].tolist() == [0, 1, 2, 3]
    assert res.rows["nearest_train_row"].tolist() == [0, 1, 2, 3]
    assert (res.rows["d1"] == 0).all() and (res.rows["d2"] > 0).all()
    assert res.exact_copies == 4 and res.memorization_ratio == 1.0 and res.mem_auc == 1.0
    sub = audit(TRAIN, TRAIN.iloc[[1]], schema=SCHEMA, distance=distance)
    assert sub.rows["exact_copy_of"].tolist() == [1] and sub.exact_copies == 1


@pytest.mark.parametrize("distance", ["tabcutmix", "gower", "l2"])
def test_single_class_table_exact_copies(distance):
    """The label is the only categorical column and has one value (a one-class table): exact copies of distinct
    training rows are still at distance 0 and memorized."""
    rng = np.random.default_rng(0)
    schema = TableSchema(("a", "b"), ("y",), target="y")
    for n in (40, 200, 333):
        train = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "y": ["g"] * n})
        syn = pd.concat([train.iloc[:10], pd.DataFrame({"a": [9.0], "b": [9.0], "y": ["g"]})], ignore_index=True)
        res = audit(train, syn, schema=schema, distance=distance)
        assert res.exact_copies == 10
        assert res.rows["d1"].tolist()[:10] == [0.0] * 10, n
        assert res.rows["nearest_train_row"].tolist()[:10] == list(range(10)), n
        assert res.rows["memorized"].tolist()[:10] == [True] * 10, n


def test_distance_ratio_helpers():
    r = distance_ratio(np.array([0.0, 0.0, 1.0, 0.3]), np.array([0.0, 2.0, 2.0, 0.3]))
    assert np.isnan(r[0]) and r[1] == 0.0 and r[2] == 0.5 and r[3] == 1.0
    assert memorization_ratio_at(r, 1 / 3) == 0.25  # only the 0
    assert memorization_ratio_at(r, 1.0 + 1e-9) == 0.75  # NaN never counts
    assert mem_auc_exact(r) == pytest.approx((0 + 1 + 0.5 + 0) / 4)
    assert np.isnan(memorization_ratio_at(np.array([]), 0.5)) and np.isnan(mem_auc_exact(np.array([])))


# ---------------------------------------------------------------------------------------------- random audits


def _random_tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, TableSchema]:
    rng = np.random.default_rng(seed)
    n = 80
    train = pd.DataFrame(
        {
            "u": rng.normal(50, 10, n).round(2),
            "v": rng.integers(0, 40, n).astype(float),
            "k": rng.choice(["p", "q", "r"], n),
            "y": rng.choice(["no", "yes"], n),
        }
    )
    train = pd.concat([train, train.iloc[[3, 3, 7]]], ignore_index=True)  # duplicates: 0/0 ratios
    copies = train.iloc[rng.integers(0, len(train), 20)].reset_index(drop=True)
    near = train.iloc[rng.integers(0, len(train), 20)].reset_index(drop=True)
    near["u"] = near["u"] + rng.normal(0, 0.5, 20)
    fresh = pd.DataFrame(
        {
            "u": rng.normal(50, 12, 20).round(2),
            "v": rng.integers(0, 45, 20).astype(float),
            "k": rng.choice(["p", "q", "r", "s"], 20),
            "y": rng.choice(["no", "yes"], 20),
        }
    )
    syn = pd.concat([copies, near, fresh, train.iloc[[3]]], ignore_index=True)
    return train, syn, TableSchema(("u", "v"), ("k", "y"), target="y")


@pytest.mark.parametrize("distance", ["tabcutmix", "gower", "l2"])
def test_random_audit_internal_consistency(distance):
    train, syn, schema = _random_tables()
    res = audit(train, syn, schema=schema, distance=distance)
    rows, tr = res.rows, res.train_rows
    n_tr = len(train)

    # ratio and memorized follow d1/d2 and the threshold
    both_zero = (rows["d1"] == 0) & (rows["d2"] == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        expect_ratio = np.where(both_zero, np.nan, rows["d1"] / rows["d2"])
    np.testing.assert_array_equal(rows["ratio"].to_numpy(), expect_ratio)
    assert (rows["d1"] <= rows["d2"]).all()
    memorized = rows["ratio"].fillna(np.inf) < 1 / 3
    assert rows["memorized"].tolist() == memorized.tolist()
    assert res.memorization_ratio == memorized.mean()
    assert res.n_undefined_ratio == int(both_zero.sum()) >= 1  # synthetic copies of the duplicated row 3

    # train_rows against value_counts
    def counts(series: pd.Series) -> list[int]:
        return series.value_counts().reindex(range(n_tr), fill_value=0).tolist()

    assert tr["train_row"].tolist() == list(range(n_tr))
    assert tr["n_nearest"].tolist() == counts(rows["nearest_train_row"])
    assert tr["n_memorized"].tolist() == counts(rows.loc[rows["memorized"], "nearest_train_row"])
    assert tr["n_exact_copies"].tolist() == counts(rows.loc[rows["exact_copy_of"] >= 0, "exact_copy_of"])
    assert res.to_dict()["n_train_rows_copied"] == int((tr["n_memorized"] > 0).sum())

    # exact copies by brute force: first training row equal in every column
    expected_copy = []
    for i in range(len(syn)):
        eq = (train == syn.iloc[i]).all(axis=1).to_numpy()
        expected_copy.append(int(np.argmax(eq)) if eq.any() else -1)
    assert rows["exact_copy_of"].tolist() == expected_copy
    assert res.exact_copies == sum(c >= 0 for c in expected_copy) >= 21
    # every copy of a training row that occurs once is at distance 0 with d2 > 0: memorized
    unique_train = ~train.duplicated(keep=False).to_numpy()
    for i, c in enumerate(expected_copy):
        if c >= 0:
            assert rows.loc[i, "d1"] == 0.0
            assert rows.loc[i, "memorized"] == bool(unique_train[c])

    # Mem-AUC (exact) against dense numerical integration of MemRatio(tau) over [0, 1]
    r = np.sort(rows["ratio"].fillna(np.inf).to_numpy())
    taus = np.linspace(0.0, 1.0, 100_001)
    frac = np.searchsorted(r, taus, side="left") / r.size  # fraction with ratio < tau
    dense = float(np.sum((frac[1:] + frac[:-1]) / 2 * np.diff(taus)))
    assert res.mem_auc == pytest.approx(dense, abs=1e-4)
    # the paper grid: explicit 10-point trapezoid
    grid = [i / 9 for i in range(10)]
    vals = [float(np.mean(rows["ratio"].fillna(np.inf).to_numpy() < t)) for t in grid]
    trap = sum((vals[i] + vals[i + 1]) / 2 * (grid[i + 1] - grid[i]) for i in range(9))
    assert res.mem_auc_grid == pytest.approx(trap, abs=1e-12)
    np.testing.assert_allclose(PAPER_AUC_GRID, grid, rtol=0, atol=1e-15)
    assert mem_auc_grid(rows["ratio"].to_numpy()) == pytest.approx(trap, abs=1e-12)

    # histogram of the defined ratios
    finite = rows["ratio"].dropna()
    assert sum(res.ratio_histogram["counts"]) == len(finite)
    assert res.ratio_histogram["undefined"] == res.n_undefined_ratio


@pytest.mark.parametrize("distance", ["tabcutmix", "gower", "l2"])
def test_audit_is_deterministic(distance):
    train, syn, schema = _random_tables(1)
    a = audit(train, syn, schema=schema, distance=distance, holdout=train.iloc[:30])
    b = audit(train, syn, schema=schema, distance=distance, holdout=train.iloc[:30])
    pd.testing.assert_frame_equal(a.rows, b.rows)
    pd.testing.assert_frame_equal(a.train_rows, b.train_rows)
    assert a.to_dict() == b.to_dict()


# ---------------------------------------------------------------------------------------------- holdout DCR


def _brute_gower(a: pd.DataFrame, b: pd.DataFrame, ranges: dict[str, float], schema: TableSchema) -> np.ndarray:
    """(len(a), len(b)) Gower distances over all schema columns, numeric ranges given."""
    out = np.zeros((len(a), len(b)))
    m = len(schema.columns)
    for i in range(len(a)):
        for j in range(len(b)):
            s = 0.0
            for c in schema.numeric:
                x, y = float(a[c].iloc[i]), float(b[c].iloc[j])
                s += float(x != y) if ranges[c] == 0 else min(abs(x - y) / ranges[c], 1.0)
            for c in schema.categorical:
                s += float(str(a[c].iloc[i]) != str(b[c].iloc[j]))
            out[i, j] = s / m
    return out


@pytest.mark.parametrize("distance", ["tabcutmix", "gower"])
def test_holdout_dcr_against_brute_force(distance):
    res = _frames_equal_after(
        lambda: audit(TRAIN, SYN, schema=SCHEMA, holdout=HOLD, distance=distance), TRAIN, SYN, HOLD
    )
    ranges = {"x": float(TRAIN["x"].max() - TRAIN["x"].min())}  # from train, not train + holdout
    dcr_train = _brute_gower(SYN, TRAIN, ranges, SCHEMA).min(1)
    dcr_hold = _brute_gower(SYN, HOLD, ranges, SCHEMA).min(1)
    # hand check of the holdout side for s0 = (1, a, 0): holdout (3, a, 1) -> (0.2 + 0 + 1)/3 = 0.4;
    # (12, b, 0) -> (1 + 1 + 0)/3 (|1-12|/10 clipped to 1); (5, c, 1) -> (0.4 + 1 + 1)/3
    assert dcr_hold[0] == pytest.approx(0.4)
    np.testing.assert_allclose(res.rows["dcr_train"], dcr_train, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.rows["dcr_holdout"], dcr_hold, rtol=1e-12, atol=1e-15)
    dcr = res.dcr
    assert dcr["distance"] == "gower" and dcr["n_holdout"] == 3
    assert dcr["share_closer_to_train"] == float(np.mean(dcr_train < dcr_hold))
    assert dcr["share_ties"] == float(np.mean(dcr_train == dcr_hold))
    assert dcr["ideal_share"] == pytest.approx(4 / 7)
    assert dcr["median_dcr_train"] == pytest.approx(float(np.median(dcr_train)), rel=1e-12)
    assert dcr["median_dcr_holdout"] == pytest.approx(float(np.median(dcr_hold)), rel=1e-12)
    if distance == "gower":
        np.testing.assert_array_equal(res.rows["dcr_train"], res.rows["d1"])
    assert "DCR share" in res.summary()


def test_no_holdout_no_dcr():
    res = audit(TRAIN, SYN, schema=SCHEMA)
    assert res.dcr is None and "dcr_train" not in res.rows.columns


# ---------------------------------------------------------------------------------------------- inputs and files


def test_inputs_are_not_modified():
    train, syn, schema = _random_tables(2)
    hold = train.iloc[10:40].copy()
    train.attrs["note"] = "mine"
    _frames_equal_after(lambda: audit(train, syn, schema=schema, holdout=hold, distance="l2"), train, syn, hold)
    _frames_equal_after(lambda: audit(train, syn, schema=schema, holdout=hold), train, syn, hold)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_audit_from_files_equals_audit_from_frames(tmp_path, fmt):
    train, syn, schema = _random_tables(3)
    hold = train.iloc[:25]
    paths = []
    for name, frame in (("train", train), ("syn", syn), ("hold", hold)):
        p = tmp_path / f"{name}.{fmt}"
        frame.to_csv(p, index=False) if fmt == "csv" else frame.to_parquet(p, index=False)
        paths.append(p)
    from_files = audit(paths[0], str(paths[1]), holdout=paths[2], schema=schema)
    from_frames = audit(train, syn, holdout=hold, schema=schema)
    pd.testing.assert_frame_equal(from_files.rows, from_frames.rows)
    pd.testing.assert_frame_equal(from_files.train_rows, from_frames.train_rows)
    assert from_files.to_dict() == from_frames.to_dict()


def test_unseen_categories_reported():
    syn = SYN.copy()
    syn.loc[0, "c"] = "zz"
    res = audit(TRAIN, syn, schema=SCHEMA)
    assert res.unseen_categories == {"c": 1}
    assert res.rows.loc[0, "d1"] > 0  # 'zz' matches no training value


# ---------------------------------------------------------------------------------------------- errors


def test_one_row_training_table():
    with pytest.raises(DataError, match="at least 2 training rows"):
        audit(TRAIN.iloc[:1], SYN, schema=SCHEMA)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.0000001, 2.0, float("nan")])
def test_bad_threshold(threshold):
    with pytest.raises(ConfigError, match="threshold"):
        audit(TRAIN, SYN, schema=SCHEMA, threshold=threshold)


def test_unknown_distance():
    with pytest.raises(ConfigError, match="unknown distance 'cosine'"):
        audit(TRAIN, SYN, schema=SCHEMA, distance="cosine")


def test_synthetic_with_extra_column():
    syn = SYN.assign(extra_col=1.0)
    with pytest.raises(SchemaError, match="extra_col"):
        audit(TRAIN, syn, schema=SCHEMA)


def test_synthetic_with_missing_column():
    with pytest.raises(SchemaError, match="'c'"):
        audit(TRAIN, SYN.drop(columns=["c"]), schema=SCHEMA)


def test_holdout_with_missing_column():
    with pytest.raises(SchemaError, match="'x'"):
        audit(TRAIN, SYN, schema=SCHEMA, holdout=HOLD.drop(columns=["x"]))


def test_audit_with_a_value_near_the_float_limit_matches_a_hypot_brute_force():
    """Issue 18's case: 40 Adult rows with one fnlwgt of 1e308. Squares of such values overflow; the audit must
    still give what a brute force with `math.hypot` (no squares) gives, without overflow warnings."""
    import math
    import warnings

    from rote.data import dataset_schema, load_dataset

    schema = dataset_schema("adult")
    full = load_dataset("adult", "train")
    train = full.iloc[:40].reset_index(drop=True).astype({"fnlwgt": "float64"})
    train.loc[5, "fnlwgt"] = 1e308
    synth = pd.concat([train.iloc[:10], full.iloc[50:80].astype({"fnlwgt": "float64"})], ignore_index=True)
    # 10 copies of training rows, one of them the huge row
    num, cat = list(schema.numeric), list(schema.categorical)
    tn, tc = train[num].to_numpy(float), train[cat].astype(str).to_numpy()
    hits = 0
    for i in range(len(synth)):
        x = synth[num].to_numpy(float)[i]
        e = [math.hypot(*(a / 2 - b / 2 for a, b in zip(x, row))) * 2 for row in tn]
        lo, hi = min(e), max(e)
        d = sorted(
            (0.0 if hi == lo else (e[j] - lo) / (hi - lo)) + int((tc[j] != synth[cat].astype(str).to_numpy()[i]).sum())
            for j in range(len(tn))
        )
        hits += (d[0] == 0 and d[1] > 0) or (d[1] > 0 and d[0] / d[1] < 1 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = audit(train, synth, schema=schema)
    assert res.memorization_ratio == pytest.approx(hits / len(synth))
    assert res.rows.loc[5, "nearest_train_row"] == 5 and res.rows.loc[5, "d1"] == 0


def test_audit_warns_when_tabcutmix_flags_rows_with_far_apart_numbers():
    """Raw Euclidean distances are dominated by a large-scale column (fnlwgt-like), so a synthetic row 20 standard
    deviations away in the small column but equal elsewhere is still the nearest row at rescaled distance 0:
    memorized. The audit flags it (count, per-row gap in sd, summary warning, report section with the pair)."""
    from rote.data import TableSchema
    from rote.tabular.report import audit_report

    train = pd.DataFrame(
        {"x": [0.0, 1.0, 2.0, 3.0, 4.0], "y": [1e5, 2e5, 3e5, 4e5, 5e5], "c": ["a", "b", "c", "d", "e"]}
    )
    schema = TableSchema(("x", "y"), ("c",))
    sd = float(np.std(train["x"]))  # sqrt(2)
    synth = pd.DataFrame({"x": [20 * sd, 1.0], "y": [1e5, 2e5], "c": ["a", "b"]})
    res = audit(train, synth, schema=schema)
    assert res.rows["nearest_train_row"].tolist() == [0, 1]
    assert res.rows["memorized"].tolist() == [True, True]  # d1 = 0 (min of the rescaled distances), d2 > 0
    assert res.rows["max_numeric_gap_sd"].to_numpy() == pytest.approx([20.0, 0.0])
    assert res.n_far_numeric == 1 and "1 memorized rows differ" in res.summary()
    html = audit_report(res)
    assert "Warning: memorized rows with far-apart numbers" in html and "gap 20 sd" in html


@pytest.mark.slow  # starts a local Ray instance (10-30 s)
def test_audit_over_ray_blocks_equals_the_local_audit():
    # ray is a test dependency (pyproject [test]): no skip, a missing ray fails here
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=60), "y": rng.integers(0, 5, 60), "c": rng.choice(list("abc"), 60)})
    synth = pd.concat([train.iloc[:10], train.sample(30, random_state=1).assign(x=lambda d: d.x + 0.01)])
    hold = train.sample(20, random_state=2).assign(x=lambda d: d.x + 1.0)
    schema = infer_schema(train)
    for distance in ("tabcutmix", "l2"):
        here = audit(train, synth, holdout=hold, schema=schema, distance=distance)
        there = audit(train, synth, holdout=hold, schema=schema, distance=distance, ray="local", ray_block_rows=7)
        pd.testing.assert_frame_equal(here.rows, there.rows)
        assert here.to_dict() == there.to_dict()
    with pytest.raises(ConfigError, match="ray_block_rows"):
        audit(train, synth, schema=schema, ray="local", ray_block_rows=0)
