"""The `rote` CLI end to end: success paths, run folders, and every bad input of the foundation issue (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rote
from rote_testing import run, sha


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Path]:
    """A small mixed table, a synthetic table with 3 exact copies, and a holdout, as CSV files."""
    rng = np.random.default_rng(0)
    n = 60

    def make(m: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.integers(18, 90, m),
                "income": rng.normal(50_000, 15_000, m).round(2),
                "city": rng.choice(["Aarhus", "Bergen", "Cork", "Delft"], m),
                "label": rng.choice(["yes", "no"], m),
            }
        )

    train, synth, hold = make(n), make(n), make(40)
    synth.iloc[[0, 5, 9]] = train.iloc[[3, 3, 7]].to_numpy()
    paths = {}
    for name, frame in (("train", train), ("synthetic", synth), ("holdout", hold)):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def test_version_and_help(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"rote {rote.__version__}"
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "tabular" in out and "datasets" in out and "demo" in out


def test_console_script_exit_codes(tmp_path, tables):
    """The installed entry point (python -m) maps bad input to exit 2 with one line on stderr."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rote.cli.main",
            "tabular",
            "audit",
            "--train",
            str(tmp_path / "nope.csv"),
            "--synthetic",
            str(tables["synthetic"]),
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "nope.csv" in proc.stderr


def test_datasets_list(capsys):
    code, out, _ = run(["datasets", "list"], capsys)
    assert code == 0
    assert "adult" in out and "32,561" in out and "16,281" in out
    for preset in ("default", "shoppers", "magic", "beijing", "news", "cardio", "churn", "wilt"):
        assert preset in out


def test_audit_end_to_end(tmp_path, tables, capsys):
    before = {k: sha(p) for k, p in tables.items()}
    out_dir = tmp_path / "run"
    code, out, err = run(
        [
            "tabular",
            "audit",
            "--train",
            str(tables["train"]),
            "--synthetic",
            str(tables["synthetic"]),
            "--holdout",
            str(tables["holdout"]),
            "--target",
            "label",
            "--out",
            str(out_dir),
        ],
        capsys,
    )
    assert code == 0, err
    assert {k: sha(p) for k, p in tables.items()} == before  # inputs never modified
    for name in ("config.json", "results.json", "rows.parquet", "train_rows.parquet", "ratio_hist.png", "report.html"):
        assert (out_dir / name).is_file(), name
    res = json.loads((out_dir / "results.json").read_text())
    assert res["n_train"] == 60 and res["n_synthetic"] == 60 and res["distance"] == "tabcutmix"
    assert res["exact_copies"] == 3
    assert abs(res["threshold"] - 1 / 3) < 1e-12
    rows = pd.read_parquet(out_dir / "rows.parquet")
    assert len(rows) == 60
    assert res["memorization_ratio"] == pytest.approx(rows["memorized"].mean())
    assert rows.loc[[0, 5, 9], "exact_copy_of"].tolist() == [3, 3, 7]
    assert res["dcr"]["n_holdout"] == 40
    cfg = json.loads((out_dir / "config.json").read_text())
    assert cfg["inputs"]["train"]["sha256"] == before["train"]
    assert cfg["options"]["target"] == "label"
    assert "memorization ratio" in out and "report:" in out

    # a second run into the same folder is refused without --force, and allowed with it
    code, _, err = run(
        [
            "tabular",
            "audit",
            "--train",
            str(tables["train"]),
            "--synthetic",
            str(tables["synthetic"]),
            "--out",
            str(out_dir),
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "--force" in err
    code, _, err = run(
        [
            "tabular",
            "audit",
            "--train",
            str(tables["train"]),
            "--synthetic",
            str(tables["synthetic"]),
            "--out",
            str(out_dir),
            "--quiet",
            "--force",
            "--distance",
            "gower",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads((out_dir / "results.json").read_text())["distance"] == "gower"


def test_audit_parquet_and_schema_file(tmp_path, tables, capsys):
    train = pd.read_csv(tables["train"])
    synth = pd.read_csv(tables["synthetic"])
    train.to_parquet(tmp_path / "train.parquet")
    synth.to_parquet(tmp_path / "synthetic.parquet")
    code, out, err = run(
        [
            "tabular",
            "schema",
            "--data",
            str(tmp_path / "train.parquet"),
            "--target",
            "label",
            "--categorical",
            "age",
            "--out",
            str(tmp_path / "schema.json"),
        ],
        capsys,
    )
    assert code == 0, err
    schema = json.loads((tmp_path / "schema.json").read_text())
    assert "age" in schema["categorical"] and schema["target"] == "label"
    code, _, err = run(
        [
            "tabular",
            "audit",
            "--train",
            str(tmp_path / "train.parquet"),
            "--synthetic",
            str(tmp_path / "synthetic.parquet"),
            "--schema",
            str(tmp_path / "schema.json"),
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "age" in res["schema"]["categorical"] and res["exact_copies"] == 3


def _audit(tmp_path, capsys, train: Path, synth: Path, *extra: str) -> tuple[int, str, str]:
    return run(
        [
            "tabular",
            "audit",
            "--train",
            str(train),
            "--synthetic",
            str(synth),
            "--out",
            str(tmp_path / "bad"),
            "--quiet",
            *extra,
        ],
        capsys,
    )


def _write(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    p = tmp_path / name
    frame.to_csv(p, index=False)
    return p


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_bad_synthetic_columns(tmp_path, tables, capsys):
    synth = pd.read_csv(tables["synthetic"])
    code, _, err = _audit(tmp_path, capsys, tables["train"], _write(tmp_path, "s1.csv", synth.drop(columns=["city"])))
    assert code == 2 and "s1.csv" in one_line(err) and "city" in err
    code, _, err = _audit(tmp_path, capsys, tables["train"], _write(tmp_path, "s2.csv", synth.assign(extra=1)))
    assert code == 2 and "s2.csv" in one_line(err) and "extra" in err


def test_text_in_numeric_column(tmp_path, tables, capsys):
    synth = pd.read_csv(tables["synthetic"]).astype({"income": object})
    synth.loc[4, "income"] = "n/a-ish"
    code, _, err = _audit(tmp_path, capsys, tables["train"], _write(tmp_path, "s.csv", synth))
    line = one_line(err)
    assert code == 2 and "s.csv" in line and "income" in line and "row 5" in line


def test_missing_cells_policy(tmp_path, tables, capsys):
    synth = pd.read_csv(tables["synthetic"])
    synth.loc[7, "city"] = None
    path = _write(tmp_path, "s.csv", synth)
    code, _, err = _audit(tmp_path, capsys, tables["train"], path)
    line = one_line(err)
    assert code == 2 and "city" in line and "row 8" in line and "--missing category" in line
    code, _, err = _audit(tmp_path, capsys, tables["train"], path, "--missing", "category")
    assert code == 0, err
    res = json.loads((tmp_path / "bad" / "results.json").read_text())
    assert res["unseen_categories"] == {"city": 1}  # the missing category never occurs in training


def test_unseen_categories_counted(tmp_path, tables, capsys):
    synth = pd.read_csv(tables["synthetic"])
    synth.loc[[1, 2], "city"] = "Zagreb"
    code, _, err = _audit(tmp_path, capsys, tables["train"], _write(tmp_path, "s.csv", synth))
    assert code == 0, err
    assert json.loads((tmp_path / "bad" / "results.json").read_text())["unseen_categories"] == {"city": 2}


def test_empty_and_unreadable_tables(tmp_path, tables, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("age,income,city,label\n")
    code, _, err = _audit(tmp_path, capsys, tables["train"], empty)
    assert code == 2 and "empty.csv" in one_line(err)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not a parquet file")
    code, _, err = _audit(tmp_path, capsys, tables["train"], garbage)
    assert code == 2 and "garbage.parquet" in one_line(err)
    code, _, err = _audit(tmp_path, capsys, tmp_path / "missing.csv", tables["synthetic"])
    assert code == 2 and "missing.csv" in one_line(err)


def test_bad_target_and_options(tmp_path, tables, capsys):
    code, _, err = _audit(tmp_path, capsys, tables["train"], tables["synthetic"], "--target", "salary")
    assert code == 2 and "salary" in one_line(err)
    code, _, err = _audit(tmp_path, capsys, tables["train"], tables["synthetic"], "--distance", "cosine")
    assert code == 2 and "cosine" in one_line(err)
    code, _, err = _audit(tmp_path, capsys, tables["train"], tables["synthetic"], "--threshold", "0")
    assert code == 2 and "--threshold" in one_line(err)
    code, _, err = _audit(tmp_path, capsys, tables["train"], tables["synthetic"], "--dataset-preset", "adult")
    assert code == 2 and "adult" in one_line(err)  # the file lacks the preset's columns


def test_out_never_overwrites_input(tmp_path, tables, capsys):
    """An --out folder that holds an input named like an output file is refused, and the input survives."""
    folder = tmp_path / "shared"
    folder.mkdir()
    train = folder / "rows.parquet"
    pd.read_csv(tables["train"]).to_parquet(train)
    before = sha(train)
    code, _, err = run(
        [
            "tabular",
            "audit",
            "--train",
            str(train),
            "--synthetic",
            str(tables["synthetic"]),
            "--out",
            str(folder),
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "never overwrites" in one_line(err)
    assert sha(train) == before


def test_demo_small(tmp_path, capsys):
    """The demo's whole pipeline on a tiny budget: two TabDDPM models (with and without TabCutMix), audits,
    quality, planted copies, one report."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster on a shared machine
    try:
        out_dir = tmp_path / "demo"
        code, out, err = run(
            [
                "demo",
                "--out",
                str(out_dir),
                "--rows",
                "160",
                "--epochs",
                "2",
                "--every",
                "1",
                "--hook-samples",
                "40",
                "--timesteps",
                "50",
                "--copies",
                "10",
                "--near-copies",
                "10",
            ],
            capsys,
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    res = json.loads((out_dir / "results.json").read_text())
    assert res["n_train"] == 160 and res["epochs"] == 2
    none, tcm = res["models"]["none"], res["models"]["tabcutmix"]
    assert none["n_training_rows"] == 160 and tcm["n_training_rows"] == 160 + 48  # TabCutMix adds 30%
    for key in ("none", "tabcutmix"):
        rows = pd.read_parquet(out_dir / f"rows_{key}.parquet")
        assert len(rows) == 160
        assert res["models"][key]["memorization_ratio"] == pytest.approx(rows["memorized"].mean())
    if none["memorization_ratio"] > 0:
        expected = (none["memorization_ratio"] - tcm["memorization_ratio"]) / none["memorization_ratio"]
        assert res["relative_reduction"] == pytest.approx(expected)
    else:
        assert res["relative_reduction"] is None
    curves = pd.read_parquet(out_dir / "curves.parquet")
    assert curves.groupby("model")["epoch"].apply(list).to_dict() == {"none": [1, 2], "tabcutmix": [1, 2]}
    assert res["planted"]["exact"] == 1.0 and res["planted"]["n_exact"] == 10
    html = (out_dir / "report.html").read_text()
    assert "TabDDPM + TabCutMix" in html and "planted" in html.lower()
    assert "report:" in out and "relative reduction" in out
    code, _, err = run(["demo", "--out", str(out_dir), "--epochs", "0", "--quiet"], capsys)
    assert code == 2 and "--epochs must be at least 1" in err


@pytest.mark.slow
def test_demo_full(tmp_path, capsys):
    """`make demo`'s job at its default size (5,000 Adult rows, 200 epochs, T = 1000)."""
    code, _, err = run(["demo", "--out", str(tmp_path / "demo"), "--quiet"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert res["n_train"] == 5_000 and res["planted"]["exact"] == 1.0
    assert 0 <= res["models"]["none"]["memorization_ratio"] <= 1
