"""`rote icl train | sweep | analyze | memorize` end to end on tiny settings: run folders, the results.json
contract, resuming a sweep with missing points, and bad input (exit 2, one line naming the flag)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rote_testing import run
from rote.core.errors import DataError
from rote.icl.experiment import analyze_sweep, run_sweep, sweep_grids
from rote.icl.task import BinaryTask
from rote.icl.train import train_icl

TINY = ["--steps", "12", "--lr", "0.3", "--hidden", "8", "--eval-every", "6", "--eval-n", "64", "--batch", "16"]


def test_train_writes_a_run_that_matches_the_library(tmp_path, capsys):
    out = tmp_path / "t"
    code, stdout, err = run(
        ["icl", "train", "--K", "8", "--N", "4", "--seeds", "0,1", *TINY, "--out", str(out)], capsys
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["seeds"] == [0, 1] and res["steps"] == 12 and len(res["final"]["icl_acc"]) == 2
    per = pd.read_parquet(out / "per_seed.parquet")
    lib = train_icl(BinaryTask(K=8, N=4), [0, 1], steps=12, lr=0.3, hidden=8, eval_every=6, eval_n=64, batch=16)
    pd.testing.assert_frame_equal(per, lib.per_seed)
    assert (out / "report.html").is_file() and (out / "curves.png").is_file()


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--K", "25", "--N", "4"], "--K"),
        (["--task", "reddy", "--K", "64", "--L", "32", "--N", "5", "--B", "2"], "--N"),
        (["--task", "reddy", "--K", "100", "--L", "32"], "--K"),
        (["--K", "8", "--lr", "-1"], "--lr"),
        (["--K", "8", "--model", "ssm"], "--model"),
    ],
)
def test_train_bad_input_names_the_flag(tmp_path, capsys, argv, flag):
    out = tmp_path / "bad"
    code, _, err = run(["icl", "train", *argv, "--steps", "2", "--out", str(out)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0], err
    assert not out.exists()


def _tiny_grids():
    return sweep_grids(
        ["8", "32"], [4, 6], [0, 1], steps=10, lr=0.3, hidden=8, eval_every=5, eval_n=64, batch=16,
        mlp_K=[8, 16], mlp_steps=10,
    )  # fmt: skip


def test_sweep_resumes_missing_points_and_analyze_fills_the_contract(tmp_path, capsys):
    icl_grid, mlp_grid = _tiny_grids()
    folder = tmp_path / "sweep"
    first, mlp = run_sweep(folder, icl_grid, mlp_grid, workers=0, quiet=True)
    assert first.n_done == 4 and mlp.n_done == 2
    # a partial sweep: one point lost its result; analysis names it
    gone = first.table.iloc[3]
    shutil.rmtree(folder / "grid" / "points" / gone.point_id)
    with pytest.raises(DataError, match=f"K={gone.K}, N={gone.N}"):
        analyze_sweep(folder)
    code, _, err = run(["icl", "analyze", str(folder)], capsys)
    assert code == 2 and f"K={gone.K}, N={gone.N}" in err and len(err.strip().splitlines()) == 1
    partial = analyze_sweep(folder, allow_missing=True, n_boot=20)
    assert partial.missing == [f"K={gone.K}, N={gone.N}"]
    # the same sweep again fills in exactly the missing point
    again, _ = run_sweep(folder, icl_grid, mlp_grid, workers=0, quiet=True)
    assert again.n_reused == 3 and again.n_done == 4
    code, _, err = run(["icl", "analyze", str(folder), "--n-boot", "20", "--max-c1", "1", "--quiet"], capsys)
    assert code == 0, err
    res = json.loads((folder / "results.json").read_text())
    assert set(res["k_star"]) == {"4", "6"}
    for v in res["k_star"].values():
        assert isinstance(v["k_star"], float) and len(v["ci"]) == 2
    assert set(res["exponent"]) >= {"value", "ci"} and len(res["exponent"]["ci"]) == 2
    assert res["nu"]["K"] == [8, 16] and isinstance(res["nu"]["value"], float)
    runs = pd.read_parquet(folder / "runs.parquet")
    assert len(runs) == 8 and set(runs.K) == {"8", "32"}


def test_memorize_fits_nu_from_two_k(tmp_path, capsys):
    out = tmp_path / "m"
    code, _, err = run(
        ["icl", "memorize", "--K", "8,16", "--seeds", "0,1", "--steps", "10", "--hidden", "8", "--log-every", "5",
         "--max-c1", "1", "--out", str(out), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    per = pd.read_parquet(out / "per_seed.parquet")
    means = per.groupby("K").I_K.mean()
    import math

    assert res["nu"]["value"] == pytest.approx(math.log(means[16] / means[8]) / math.log(2), rel=1e-9)


def test_sweep_bad_input(tmp_path, capsys):
    code, _, err = run(["icl", "sweep", "--K", "9", "--N", "4", "--seeds", "0", "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and "--K" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["icl", "analyze", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "not a folder" in err


@pytest.mark.gpu
def test_train_on_cuda_matches_cpu(tmp_path, capsys):
    args = ["icl", "train", "--K", "64", "--N", "8", "--seeds", "0,1,2", *TINY]
    assert run([*args, "--out", str(tmp_path / "cpu"), "--quiet"], capsys)[0] == 0
    code, _, err = run([*args, "--device", "cuda", "--out", str(tmp_path / "gpu"), "--quiet"], capsys)
    assert code == 0, err
    a = pd.read_parquet(tmp_path / "cpu" / "history.parquet")
    b = pd.read_parquet(tmp_path / "gpu" / "history.parquet")
    assert (a.step == b.step).all()
    assert (a.loss - b.loss).abs().max() < 1e-3  # same seeds, same batches (drawn on the CPU), float rounding only


@pytest.mark.slow
def test_cli_sweep_with_worker_processes(tmp_path, capsys):
    out = tmp_path / "s"
    code, _, err = run(
        ["icl", "sweep", "--K", "8,32,inf", "--N", "4,6", "--seeds", "0,1", *TINY, "--workers", "2", "--n-boot", "20",
         "--out", str(out), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert set(res["k_star"]) == {"4", "6"} and res["t_icl"]["runs_from"] == "K = inf"
    assert Path(out / "report.html").is_file()


def test_equalize_axis_is_analyzed_separately(tmp_path):
    icl_grid, _ = sweep_grids(
        ["8", "32"], [4], [0, 1], equalize=[False, True], steps=5, lr=0.3, hidden=8, eval_every=5, eval_n=32, batch=8
    )
    assert icl_grid.axes["equalize"] == [False, True] and len(icl_grid) == 4
    run_sweep(tmp_path / "eq", icl_grid, workers=0, quiet=True)
    res = analyze_sweep(tmp_path / "eq", n_boot=10)
    runs = res.runs
    assert len(runs) == 8 and runs.equalize.sum() == 4
    assert res.k_star["4"]["n_runs"] == 4  # K* from the free runs only
    assert set(res.equalize) == {"free", "equalized"}
    for name, flag in (("free", False), ("equalized", True)):
        sub = runs[runs.equalize == flag]
        for k in ("8", "32"):
            expect = float((sub[sub.K == k].icl_acc > 0.75).mean())
            assert res.equalize[name][f"N=4,K={k}"] == expect
