"""Issue 20's bugs: `rote fairness bound` on real groups (Adult by race, where groups lack classes), a weight column
that is not numeric, closed-form bounds beside an integer minimum, and one `undefined` semantics everywhere."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rote_testing import run
from rote.core.errors import DataError
from rote.fairness import (
    class_gaps,
    fairness_metrics,
    memorization_effect,
    memorized_set,
    minimum_memorized_mass,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairness_oracle import metric_loop  # noqa: E402


@pytest.fixture(scope="module")
def adult_race(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """400 seeded rows of Adult's training split: 4-class education by race, a biased predictor (right 60% of the
    time, else "HS-grad"). Five race/education cells are empty (Amer-Indian-Eskimo, Asian-Pac-Islander, Other)."""
    from rote.data import load_dataset
    from rote.fairness.examples import EDUCATION_BUCKETS

    train = load_dataset("adult", "train")
    rng = np.random.default_rng(0)
    s = train.iloc[np.sort(rng.choice(len(train), 400, replace=False))].reset_index(drop=True)
    y = s["education"].map(EDUCATION_BUCKETS).astype(str).to_numpy()
    p = np.where(np.random.default_rng(1).random(len(y)) < 0.6, y, "HS-grad")
    df = pd.DataFrame({"label": y, "prediction": p, "race": s["race"].astype(str).to_numpy()})
    path = tmp_path_factory.mktemp("adult") / "race.csv"
    df.to_csv(path, index=False)
    return path, df


def test_bound_by_race_on_adult_takes_undefined_skip(adult_race, tmp_path, capsys):
    path, df = adult_race
    empty = pd.crosstab(df["race"], df["label"])
    empty = {(a, c) for a in empty.index for c in empty.columns if empty.loc[a, c] == 0}
    assert len(empty) == 5  # the precondition of this test: groups without some class
    args = ["fairness", "bound", "--data", str(path), "--group", "race"]
    code, _, err = run([*args, "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "--undefined skip" in err and not (tmp_path / "r").exists()

    out = tmp_path / "s"
    code, stdout, err = run([*args, "--undefined", "skip", "--out", str(out)], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    bounds = {b["metric"]: b for b in res["bounds"]}
    y, p, g = list(df["label"]), list(df["prediction"]), list(df["race"])
    labels = sorted(set(y))
    for m in ("sp", "eopp", "eodds"):
        cells = {(c["group"], c["class"]) for c in bounds[m]["empty_cells"]}
        assert cells == (set() if m == "sp" else empty)
        s = res["concrete_sets"][m]
        assert s["bias_before"] == pytest.approx(metric_loop(y, p, g, [1.0] * len(y), labels, m), abs=1e-12)
        rows = pd.read_parquet(out / f"rows_{m}.parquet")
        assert len(rows) == s["n_rows"]
        h = list(np.where(np.isin(np.arange(1, len(y) + 1), rows["row"]), y, p))
        assert s["bias_after"] == pytest.approx(metric_loop(y, h, g, [1.0] * len(y), labels, m), abs=1e-12)
        assert f"{m}: concrete set of {s['n_rows']:,} rows" in stdout
    # EOpp's minimum (rows model) by hand: raise each group's TPR to the best group's, over the groups with the class
    want = 0.0
    for c in labels:
        sub = df[df.label == c]
        tpr = sub.groupby("race").apply(lambda t: (t.prediction == t.label).mean(), include_groups=False)
        n = sub.groupby("race").size()
        if len(n) >= 2:
            want += float((n * (tpr.max() - tpr)).sum())
    assert bounds["eopp"]["mass"] == pytest.approx(want, abs=1e-6)
    html = (out / "report.html").read_text()
    assert "empty group/class cells left out" in html and "bias left by the set" in html
    assert ">NA<" not in html and ">inf<" not in html


def test_weight_column_that_is_not_a_number_exits_2_naming_column_and_row(adult_race, tmp_path, capsys):
    path, df = adult_race
    bad = tmp_path / "w.csv"
    df.assign(w=["1.5"] * 6 + ["heavy"] + ["2"] * (len(df) - 7)).to_csv(bad, index=False)
    for verb in ("metrics", "bound"):
        code, _, err = run(
            ["fairness", verb, "--data", str(bad), "--group", "race", "--weight", "w", "--out", str(tmp_path / verb)],
            capsys,
        )
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert re.search(r"column 'w' \(--weight\): value 'heavy' at row 7 is not a number", err), err


def test_bound_options_name_their_flags(adult_race, tmp_path, capsys):
    path, _ = adult_race
    for flag, value, needle in (
        ("--tol", "-1", "--tol must be >= 0, got -1.0"),
        ("--max-rate", "0", "--max-rate must"),
    ):
        code, _, err = run(
            ["fairness", "bound", "--data", str(path), "--group", "race", flag, value, "--out", str(tmp_path / "o")],
            capsys,
        )
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_integral_minimum_is_shown_beside_bounds_on_the_lp_relaxation():
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(8):
        n = 60
        y = rng.integers(0, 3, n)
        g = rng.choice(["a", "b", "c"], n)
        p = np.where(rng.random(n) < 0.6, y, rng.integers(0, 3, n))
        for m in ("eopp", "eodds"):
            ip = minimum_memorized_mass(y, p, sensitive_features=g, metric=m, integral=True, undefined="skip")
            lp = minimum_memorized_mass(y, p, sensitive_features=g, metric=m, undefined="skip")
            if not ip.feasible:
                continue
            assert ip.lp_mass == pytest.approx(lp.mass, abs=1e-6)
            assert ip.lower_bound <= ip.lp_mass + 1e-6 <= ip.mass + 2e-6
            assert "closed-form bounds on the LP relaxation" in ip.summary() and "LP relaxation minimum" in ip.summary()
            found += ip.mass > ip.upper_bound + 1e-6  # the integer minimum lies outside the LP's bounds
    assert found > 0


def test_undefined_has_one_meaning_everywhere():
    # class 1: groups a and b have TPR 1/2, group c has no rows of class 1
    y = [0, 0, 1, 1, 0, 0, 1, 1, 0, 0]
    p = [0, 1, 1, 0, 0, 0, 0, 1, 0, 1]
    g = ["a"] * 4 + ["b"] * 4 + ["c"] * 2
    with pytest.raises(DataError, match=r"group 'c' has no rows of class 1.*`undefined` skip"):
        class_gaps(y, p, sensitive_features=g, metric="eopp")
    with pytest.raises(DataError, match="group 'c' has no rows of class 1"):
        minimum_memorized_mass(y, p, sensitive_features=g, metric="eopp")  # before solving, not after
    skip = class_gaps(y, p, sensitive_features=g, metric="eopp", undefined="skip")
    zero = class_gaps(y, p, sensitive_features=g, metric="eopp", undefined="zero")
    assert skip[1] == pytest.approx(0.0) and zero[1] == pytest.approx(0.5)  # fairlearn's 0.5 (below)
    from fairlearn.metrics import MetricFrame, true_positive_rate

    mf = MetricFrame(metrics=true_positive_rate, y_true=np.array(y) == 1, y_pred=np.array(p) == 1, sensitive_features=g)
    assert zero[1] == pytest.approx(mf.difference())
    want = [
        {
            "group": "c",
            "class": "1",
            "treatment": "group left out of this class's gap (taken over the groups that have the class)",
        }
    ]
    assert fairness_metrics(y, p, sensitive_features=g, undefined="skip").empty_cells["eopp"] == want
    assert (
        memorization_effect(y, p, sensitive_features=g, memorized=[0] * 10, undefined="skip").empty_cells["eopp"]
        == want
    )
    res, _ = memorized_set(y, p, sensitive_features=g, metric="eopp", undefined="skip")
    assert res.empty_cells == want and res.feasible
    zr = fairness_metrics(y, p, sensitive_features=g, undefined="zero")
    assert zr.empty_cells["eopp"][0]["treatment"].startswith("rates counted as 0") and zr.undefined["eopp"] == {}
