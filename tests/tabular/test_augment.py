"""Augmenters (TabCutMix, TabCutMixPlus, Mixup, SMOTE, IJF) and the OOD rate.

Most tests use a "traceable" table: every cell encodes the row it came from (numeric value = 100 * row + j,
category "r{row}c{j}"), so each new row can be decoded into the training rows its values were copied from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from rote.core.errors import ConfigError
from rote.data import TableSchema
from rote.tabular.augment import (
    AUGMENTERS,
    IJFAugmenter,
    Mixup,
    OODDetector,
    SMOTEAugmenter,
    TabCutMix,
    TabCutMixPlus,
    identical_share,
    ood_rate,
)

N_NUM, N_CAT = 3, 3  # F = 6 features besides the label


def traceable(n=200, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    data = {f"n{j}": (100 * np.arange(n) + j).astype(np.int64) for j in range(N_NUM)}
    data.update({f"c{j}": [f"r{i}c{j}" for i in range(n)] for j in range(N_CAT)})
    data["y"] = rng.integers(0, n_classes, n).astype(str)
    df = pd.DataFrame(data)
    df["y"] = df["y"].astype("string")  # pandas 3 string dtype must survive augmentation
    schema = TableSchema(tuple(f"n{j}" for j in range(N_NUM)), tuple(f"c{j}" for j in range(N_CAT)) + ("y",), "y")
    return df, schema


def sources(new: pd.DataFrame) -> np.ndarray:
    """(n, F) training row each feature value of each new row was copied from."""
    cols = [new[f"n{j}"].to_numpy() // 100 for j in range(N_NUM)]
    cols += [new[f"c{j}"].str.slice(1).str.split("c").str[0].astype(int).to_numpy() for j in range(N_CAT)]
    return np.column_stack(cols)


@pytest.mark.parametrize("mode", ["paper", "code"])
def test_tabcutmix_copies_values_from_two_same_class_rows(mode):
    df, schema = traceable()
    new = TabCutMix(mode=mode, seed=1).fit(df, schema).sample(500)
    src = sources(new)
    labels = df["y"].to_numpy()
    for row, s in zip(new.itertuples(index=False), src):
        rows = np.unique(s)
        assert len(rows) <= 2
        assert (labels[rows] == row.y).all()  # both sources share the new row's class


def test_code_mode_swaps_exactly_floor_lambda_f_features():
    df, schema = traceable(400)
    src = sources(TabCutMix(mode="code", lam=1 / 3, seed=2).fit(df, schema).sample(300))
    for s in src:
        counts = sorted(np.unique(s, return_counts=True)[1])
        assert counts in ([6], [2, 4])  # floor(6/3) = 2 from the partner, or the partner is the row itself


def test_paper_mode_masks_are_bernoulli_lambda_per_feature():
    df, schema = traceable(2000, n_classes=1)
    src = sources(TabCutMix(mode="paper", lam=0.5, seed=3).fit(df, schema).sample(4000))
    minority = np.array(
        [
            min(np.unique(s, return_counts=True)[1].min(), 6 - np.unique(s, return_counts=True)[1].max())
            if len(np.unique(s)) == 2
            else 0
            for s in src
        ]
    )
    # k ~ Bin(6, 1/2) features from the first row; the smaller side has min(k, 6 - k) features
    pmf = binom.pmf(np.arange(7), 6, 0.5)
    want = np.array([pmf[0] + pmf[6], pmf[1] + pmf[5], pmf[2] + pmf[4], pmf[3]])
    got = np.bincount(minority, minlength=4) / len(minority)
    assert np.allclose(got, want, atol=0.03)


def test_lambda_uniform_by_default_code_mode_counts():
    df, schema = traceable(2000, n_classes=1)
    src = sources(TabCutMix(mode="code", seed=4).fit(df, schema).sample(6000))
    # k = floor(U * 6) is uniform on 0..5 features from the partner
    swapped = np.array([6 - np.unique(s, return_counts=True)[1].max() if len(np.unique(s)) == 2 else 0 for s in src])
    folded = np.bincount(np.minimum(swapped, 6 - swapped), minlength=4) / len(swapped)
    want = np.array([1, 2, 2, 1]) / 6  # k in {0}, {1, 5}, {2, 4}, {3}: the smaller side
    assert np.allclose(folded, want, atol=0.03)


def test_augment_keeps_originals_dtypes_and_seed():
    df, schema = traceable()
    before = df.copy()
    out = TabCutMix(ratio=0.3, seed=0).augment(df, schema=schema)
    assert len(out) == len(df) + round(0.3 * len(df))
    pd.testing.assert_frame_equal(out.iloc[: len(df)], df)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert (out.dtypes == df.dtypes).all()
    again = TabCutMix(ratio=0.3, seed=0).augment(df, schema=schema)
    pd.testing.assert_frame_equal(out, again)
    other = TabCutMix(ratio=0.3, seed=1).augment(df, schema=schema)
    assert not out.equals(other)
    assert len(TabCutMix().fit(df, schema).sample(0)) == 0
    aug = TabCutMix(seed=0).fit(df.iloc[:10], schema)
    assert len(aug.augment(df)) == len(out)  # augment refits on a different table
    pd.testing.assert_frame_equal(aug.augment(df), out)


def test_singleton_class_pairs_with_itself_and_one_class_works():
    df, schema = traceable(50)
    df["y"] = "big"
    df.loc[7, "y"] = "solo"
    new = TabCutMix(mode="code", seed=0).fit(df, schema).sample(3000)
    solo = new[new["y"] == "solo"]
    assert len(solo) > 0
    assert (sources(solo) == 7).all()  # its only partner is itself: an exact copy
    one = df.assign(y="only")
    assert len(TabCutMix(seed=0).fit(one, schema).sample(20)) == 20
    no_target = TableSchema(schema.numeric, schema.categorical[:-1] + ("y",), None)
    assert len(TabCutMixPlus(seed=0).fit(df, no_target).sample(20)) == 20


def test_single_row_and_single_type_tables():
    df, schema = traceable(1)
    for cls in AUGMENTERS.values():  # one row: mixing can only copy it (IJF: its only values)
        new = cls(seed=0).fit(df, schema).sample(5)
        assert (sources(new) == 0).all() and (new["y"] == df.loc[0, "y"]).all()
    num_only = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) ** 2, "const": 1.0})
    s_num = TableSchema(("a", "b", "const"), ())
    for cls in AUGMENTERS.values():
        out = cls(seed=0).fit(num_only, s_num).sample(10)
        assert list(out.columns) == ["a", "b", "const"] and (out["const"] == 1.0).all()
    cat_only = pd.DataFrame({"u": list("abcab" * 6), "v": list("xxyyz" * 6), "k": "same"})
    s_cat = TableSchema((), ("u", "v", "k"))
    for cls in AUGMENTERS.values():
        out = cls(seed=0).fit(cat_only, s_cat).sample(10)
        assert set(out["u"]) <= set("abc") and (out["k"] == "same").all()


def test_tabcutmixplus_moves_clusters_as_units():
    rng = np.random.default_rng(0)
    n = 400
    ids = np.arange(n)
    perm = rng.permutation(n)
    df = pd.DataFrame(
        {
            "a": ids * 10.0,
            "a2": ids * 10.0 + 1,  # perfectly correlated: one cluster
            "b": perm * 10.0 + 2,  # unrelated to a
            "c": rng.choice(list("pqrs"), n),
            "y": rng.integers(0, 2, n).astype(str),
        }
    )
    schema = TableSchema(("a", "a2", "b"), ("c", "y"), "y")
    aug = TabCutMixPlus(seed=0).fit(df, schema)
    assert ["a", "a2"] in aug.clusters_
    assert list(aug.association_.columns) == list(df.columns)
    for mode in ("paper", "code"):
        new = TabCutMixPlus(mode=mode, seed=1).fit(df, schema).sample(500)
        assert (new["a"].to_numpy() // 10 == (new["a2"].to_numpy() - 1) // 10).all()  # a and a2 from one row
    # without clusters (TabCutMix) a and a2 get split
    new = TabCutMix(seed=1).fit(df, schema).sample(500)
    assert (new["a"].to_numpy() // 10 != (new["a2"].to_numpy() - 1) // 10).any()


def test_mixup_interpolates_within_class_and_keeps_integer_dtype():
    df = pd.DataFrame(
        {
            "x": np.array([0, 10, 1000, 1010] * 25, np.int64),
            "f": [1.0, 3.0, 5.0, 7.0] * 25,
            "g": ["a", "b", "c", "d"] * 25,
            "y": ["lo", "lo", "hi", "hi"] * 25,
        }
    )
    schema = TableSchema(("x", "f"), ("g", "y"), "y")
    new = Mixup(alpha=1.0, seed=0).fit(df, schema).sample(400)
    assert (new.dtypes == df.dtypes).all()
    lo, hi = new[new["y"] == "lo"], new[new["y"] == "hi"]
    assert lo["x"].between(0, 10).all() and hi["x"].between(1000, 1010).all()  # same-class pairs only
    assert lo["f"].between(1, 3).all() and hi["f"].between(5, 7).all()
    # interpolated, not copied, whenever the partner holds the other value (probability 1/2 here)
    assert 0.4 < ((lo["f"] > 1) & (lo["f"] < 3)).mean() < 0.6
    assert set(lo["g"]) <= {"a", "b"} and set(hi["g"]) <= {"c", "d"}  # categoricals copied from a pair member


def test_smote_stays_on_minority_segments():
    df = pd.DataFrame({"x": [0.0, 1.0, 10.0, 11.0] + list(np.linspace(0, 11, 40)), "y": ["min"] * 4 + ["maj"] * 40})
    schema = TableSchema(("x",), ("y",), "y")
    aug = SMOTEAugmenter(k=1, seed=0).fit(df, schema)
    assert aug.minority_ == "min"
    new = aug.sample(400)
    assert (new["y"] == "min").all()
    x = new["x"].to_numpy()
    assert (((0 <= x) & (x <= 1)) | ((10 <= x) & (x <= 11))).all()  # each new value lies between neighbours
    assert ((x > 0) & (x < 1)).any() and ((x > 10) & (x < 11)).any()


def test_ijf_draws_columns_independently():
    df, schema = traceable(300)
    new = IJFAugmenter(numeric="empirical", seed=0).fit(df, schema).sample(2000)
    src = sources(new)
    assert np.mean(src[:, 0] == src[:, 1]) < 0.05  # values of one new row come from different rows


def test_bad_input_is_refused_with_a_clear_error():
    df, schema = traceable(20)
    with pytest.raises(ConfigError, match="call fit"):
        TabCutMix().sample(3)
    with pytest.raises(ConfigError, match="mode"):
        TabCutMix(mode="bernoulli").fit(df, schema)
    with pytest.raises(ConfigError, match="ratio"):
        TabCutMix(ratio=-1).fit(df, schema)
    with pytest.raises(ConfigError, match="lam"):
        TabCutMix(lam=2.0).fit(df, schema)
    numeric_target = TableSchema(("n0", "n1", "n2"), ("c0", "c1", "c2", "y"), "n0")
    with pytest.raises(ConfigError, match="numeric"):
        TabCutMix().fit(df, numeric_target)
    with pytest.raises(ConfigError, match="n="):
        TabCutMix().fit(df, schema).sample(-1)
    with pytest.raises(ConfigError, match=r"`ratio`.*above 100"):  # 1e9 used to try to allocate 447 GiB
        TabCutMix().fit(df, schema).augment(df, 1e9)


@pytest.mark.parametrize("mode", ["paper", "code"])
def test_identical_share_counts_new_rows_equal_to_a_training_row(mode):
    """On the traceable table a new row equals a training row exactly when all its features came from one row
    (same-class pairs share the label), so the share follows from the decoded sources."""
    df, schema = traceable(60)
    new = TabCutMix(ratio=2.0, mode=mode, seed=4).fit(df, schema).augment(df).iloc[len(df) :]
    src = sources(new)
    expected = float(np.mean((src == src[:, :1]).all(1)))
    assert 0 < expected < 1
    assert identical_share(df, new) == pytest.approx(expected)
    # hand-worked: 2 of 3 rows copy a training row (an int/float 1 == 1.0 counts as equal)
    a = pd.DataFrame({"x": [1, 2], "c": ["u", "v"]})
    b = pd.DataFrame({"x": [1.0, 2.0, 1.0], "c": ["u", "v", "v"]})
    assert identical_share(a, b) == pytest.approx(2 / 3)
    assert np.isnan(identical_share(a, b.iloc[:0]))


def test_ood_rate_flags_perturbed_rows_not_real_ones():
    rng = np.random.default_rng(0)
    n = 1500
    real = pd.DataFrame(
        {
            "x": rng.normal(50, 5, n),
            "z": rng.normal(10, 2, n),
            "g": rng.choice(list("abc"), n),
            "y": rng.choice(["0", "1"], n),
        }
    )
    schema = TableSchema(("x", "z"), ("g", "y"), "y")
    fresh = real.assign(x=rng.normal(50, 5, n), z=rng.normal(10, 2, n))  # more in-distribution rows
    res = ood_rate(real, fresh, schema, seed=0)
    assert res.ood_rate < 0.1
    # a categorical swap in an independent column (g) is a valid row, so it cannot be detected: the rows
    # perturbed in g (about 1/3) are called real, and accuracy is about 1 - 1/6
    assert 0.75 < res.detector_accuracy < 0.95
    assert res.real_flag_rate < 0.05
    far = fresh.assign(x=fresh["x"] * 100)
    assert ood_rate(real, far, schema, seed=0).ood_rate > 0.9
    assert len(res.rows) == n and res.rows["ood"].mean() == pytest.approx(res.ood_rate)
    # the code helper's protocol: categorical cells become "unknown", numerics x10
    det = OODDetector(factor=10, categorical="unknown", seed=0).fit(real, schema)
    assert det.rate(fresh).ood_rate < 0.1
    assert det.rate(fresh.assign(g="unknown")).ood_rate > 0.9
    with pytest.raises(ConfigError, match="categorical"):
        OODDetector(categorical="new").fit(real, schema)


def test_augment_report_shows_association_clusters_quality_and_ood():
    from rote.tabular.report import association_heatmap, augment_report, quality_bars, quality_table
    from rote.tabular.quality import quality_report

    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "x2": 2 * x + 0.01 * rng.normal(size=n),
            "z": rng.normal(size=n),
            "g": rng.choice(list("abc"), n),
            "y": (x > 0).astype(str),
        }
    )
    schema = TableSchema(("x", "x2", "z"), ("g", "y"), "y")
    aug = TabCutMixPlus(seed=0).fit(df, schema)
    new = aug.sample(150)
    q = {"TabCutMixPlus": quality_report(df, new, schema, seed=0, dcr=False)}
    html = augment_report(aug, quality=q, ood={"TabCutMixPlus": 0.01}, config={"seed": 0})
    assert "Clusters" in html and "x, x2, y" in html and html.count("data:image/png;base64,") == 3
    assert "1.0" in html  # the OOD rate, in percent
    table = quality_table(q)
    assert table.loc[0, "Shape"] == pytest.approx(round(100 * q["TabCutMixPlus"].shape, 2))
    assert table.loc[0, "MLE AUC"] is None  # no test table: not computed, not NaN
    quality_bars(q)
    with pytest.raises(ConfigError, match="every column"):
        association_heatmap(aug.association_, [["x"]])
    with pytest.raises(ConfigError, match="fitted"):
        augment_report(TabCutMixPlus())


@pytest.mark.slow
def test_adult_clusters_and_augmentation_at_full_scale():
    from rote.data import dataset_schema, load_dataset
    from rote.tabular.quality import shape_score

    train, schema = load_dataset("adult"), dataset_schema("adult")
    aug = TabCutMixPlus(seed=0).fit(train, schema)
    # education and education-num are one variable in two codings (eta = 1); nothing else reaches 0.7
    assert [c for c in aug.clusters_ if len(c) > 1] == [["education", "education-num"]]
    assert aug.association_.loc["education", "education-num"] == pytest.approx(1.0)
    for cls in (TabCutMix, TabCutMixPlus):
        out = cls(seed=0).augment(train, schema=schema)
        assert len(out) == len(train) + 9768 and (out.dtypes == train.dtypes).all()
        new = out.iloc[len(train) :]
        assert shape_score(train, new, schema).score > 0.97  # values are copied, so marginals barely move
        edu = dict(zip(train["education"], train["education-num"]))
        consistent = (new["education-num"] == new["education"].map(edu)).mean()
        if cls is TabCutMixPlus:
            assert consistent == 1.0  # the cluster moves as a unit
        else:  # split with probability 2 E[lam (1 - lam)] = 1/3, unless the partner has the same education
            assert 0.6 < consistent < 0.8


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    n_classes=st.integers(1, 4),
    mode=st.sampled_from(["paper", "code"]),
    plus=st.booleans(),
    seed=st.integers(0, 10),
)
def test_cutmix_invariants_on_random_tables(n, n_classes, mode, plus, seed):
    df, schema = traceable(n, n_classes=n_classes, seed=seed)
    cls = TabCutMixPlus if plus else TabCutMix
    new = cls(mode=mode, seed=seed).fit(df, schema).sample(25)
    src = sources(new)
    labels = df["y"].to_numpy()
    assert (new.dtypes == df.dtypes).all() and len(new) == 25
    for row_label, s in zip(new["y"].to_numpy(), src):
        assert len(np.unique(s)) <= 2 and (labels[np.unique(s)] == row_label).all()
