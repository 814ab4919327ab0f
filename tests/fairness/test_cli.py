"""`rote fairness metrics | memorization | bound | audit` end to end: run folders, values, and bad input (exit 2)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rote_testing import run
from rote.fairness import fairness_metrics, memorization_effect, minimum_memorized_mass


@pytest.fixture
def table(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.choice(["cat", "dog", "eel"], n)
    g = rng.choice(["f", "m"], n)
    wrong = np.where(g == "f", "cat", rng.choice(["cat", "dog", "eel"], n))
    p = np.where(rng.random(n) < np.where(g == "f", 0.6, 0.85), y, wrong)
    mem = rng.random(n) < 0.15
    df = pd.DataFrame(
        {"label": y, "prediction": p, "sex": g, "mem": mem, "after": np.where(mem, y, p), "w": rng.uniform(0.5, 2.0, n)}
    )
    path = tmp_path / "preds.csv"
    df.to_csv(path, index=False)
    return path, df


def test_metrics_command_writes_run_and_matches_library(table, tmp_path, capsys):
    path, df = table
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = tmp_path / "m"
    code, stdout, err = run(
        [
            "fairness",
            "metrics",
            "--data",
            str(path),
            "--group",
            "sex",
            "--weight",
            "w",
            "--n-boot",
            "20",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    lib = fairness_metrics(df["label"], df["prediction"], sensitive_features=df["sex"], sample_weight=df["w"])
    for m in ("sp", "eopp", "eodds"):
        assert res["values"][m] == pytest.approx(lib.values[m])
        assert res["intervals"][m]["estimate"] == pytest.approx(lib.values[m])
    for f in ("config.json", "per_class.parquet", "rates.parquet", "gaps.png", "report.html"):
        assert (out / f).is_file()
    assert "equal opportunity" in stdout
    html = (out / "report.html").read_text()
    assert "Per-class gaps" in html and "<script" not in html
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # input untouched
    code, _, err = run(["fairness", "metrics", "--data", str(path), "--group", "sex", "--out", str(out)], capsys)
    assert code == 2 and "already holds a finished run" in err


def test_memorization_bound_and_audit_commands(table, tmp_path, capsys):
    path, df = table
    code, stdout, err = run(
        [
            "fairness",
            "memorization",
            "--data",
            str(path),
            "--group",
            "sex",
            "--memorized",
            "mem",
            "--out",
            str(tmp_path / "mem"),
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((tmp_path / "mem" / "results.json").read_text())
    lib = memorization_effect(df["label"], df["prediction"], sensitive_features=df["sex"], memorized=df["mem"])
    assert res["after"] == pytest.approx(lib.after) and res["after_closed_form"] == pytest.approx(lib.after)
    assert pd.read_parquet(tmp_path / "mem" / "classes.parquet").shape[0] == 9

    code, stdout, err = run(
        [
            "fairness",
            "bound",
            "--data",
            str(path),
            "--group",
            "sex",
            "--out",
            str(tmp_path / "b"),
            "--integral",
            "--tol",
            "0.01",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    lib = minimum_memorized_mass(
        df["label"], df["prediction"], sensitive_features=df["sex"], metric="eopp", integral=True, tol=0.01
    )
    got = {r["metric"]: r for r in res["bounds"]}
    assert got["eopp"]["mass"] == pytest.approx(lib.mass)
    rows = pd.read_parquet(tmp_path / "b" / "rows_eopp.parquet")
    assert len(rows) == round(lib.mass) == res["concrete_sets"]["eopp"]["n_rows"]
    picked = df.iloc[rows["row"].to_numpy() - 1]  # 1-based data rows
    assert (picked["label"] != picked["prediction"]).all()
    assert (picked["sex"].to_numpy() == rows["group"].to_numpy()).all()

    code, stdout, err = run(
        [
            "fairness",
            "audit",
            "--data",
            str(path),
            "--group",
            "sex",
            "--before",
            "prediction",
            "--after",
            "after",
            "--memorized",
            "mem",
            "--out",
            str(tmp_path / "a"),
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert set(res["flagged"]) <= {"sp", "eopp", "eodds"} and "eopp" in res["flagged"]


def test_paper_model_infeasible_is_reported_not_crashed(table, tmp_path, capsys):
    path, _ = table
    code, stdout, err = run(
        [
            "fairness",
            "bound",
            "--data",
            str(path),
            "--group",
            "sex",
            "--metric",
            "eodds",
            "--model",
            "paper",
            "--max-rate",
            "0.9",
            "--out",
            str(tmp_path / "p"),
        ],
        capsys,
    )
    assert code == 0, err
    assert "ratio condition fails" in stdout
    res = json.loads((tmp_path / "p" / "results.json").read_text())
    assert res["bounds"][0]["feasible"] is False and "ratio condition" in res["bounds"][0]["reason"]


@pytest.mark.parametrize(
    "edit, args, match",
    [
        (None, ["--group", "race"], r"no column 'race' \(given by --group\)"),
        (
            lambda d: d.assign(prediction=d["prediction"].where(d.index != 6, "yak")),
            ["--group", "sex"],
            r"column 'prediction' \(--prediction\): prediction 'yak' at row 7",
        ),
        (lambda d: d.assign(sex="f"), ["--group", "sex"], r"column 'sex' \(--group\): a single group 'f'"),
        (
            lambda d: d.assign(w=d["w"].where(d.index != 3, -1.0)),
            ["--group", "sex", "--weight", "w"],
            r"column 'w' \(--weight\): value -1.0 at row 4 is negative",
        ),
        (lambda d: d.assign(w=0.0), ["--group", "sex", "--weight", "w"], r"all weights are zero"),
        (
            lambda d: d.assign(label=d["label"].where(d.index != 2, None)),
            ["--group", "sex"],
            r"column 'label' \(--label\): missing value at row 3",
        ),
        (
            lambda d: d.assign(label=np.where(d.sex == "m", d.label, "cat")),
            ["--group", "sex"],
            r"group 'f' has no rows of class 'dog'.*--undefined skip",
        ),
        (None, ["--group", "sex", "--agg", "median"], r"agg='median': unknown"),
    ],
)
def test_bad_input_exits_2_naming_column_and_row(table, tmp_path, capsys, edit, args, match):
    path, df = table
    if edit is not None:
        df = edit(df.copy())
        path = tmp_path / "bad.csv"
        df.to_csv(path, index=False)
    code, _, err = run(["fairness", "metrics", "--data", str(path), "--out", str(tmp_path / "o"), *args], capsys)
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    import re

    assert re.search(match, err), err


def test_memorized_column_errors(table, tmp_path, capsys):
    path, df = table
    df = df.assign(mem=df["mem"].astype(str).where(df.index != 4, "maybe"))
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    code, _, err = run(
        [
            "fairness",
            "memorization",
            "--data",
            str(bad),
            "--group",
            "sex",
            "--memorized",
            "mem",
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 2 and "column 'mem' (--memorized): value 'maybe' at row 5" in err
