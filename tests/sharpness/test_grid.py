"""`rote sharpness grid`: the toy over seeds through rote.sweep, summarized per statistic over seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

from rote.sharpness.experiment import run_toy
from rote.sharpness.grid import build_grid, run_sharpness_grid
from rote_testing import run

TINY = {"epochs": 2, "n_generations": 60, "n_steps": 5}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    result, sweep = run_sharpness_grid(out, "toy", [0, 1, 2], fixed=TINY, workers=0, quiet=True)
    return out, result, sweep


def test_each_point_is_the_single_run_with_that_seed(grid):
    _, result, _ = grid
    direct, _ = run_toy(seed=1, **TINY)
    per = result.per_seed[result.per_seed.seed == 1].set_index("statistic")
    for name, v in direct.detection.items():
        assert per.loc[name, "auc"] == pytest.approx(v["auc"], nan_ok=True)
        assert per.loc[name, "tpr_at_1pct_fpr"] == pytest.approx(v["tpr_at_1pct_fpr"], nan_ok=True)


def test_mean_and_t_interval_over_seeds_by_hand(grid):
    _, result, _ = grid
    name = "neg_trace_t499"
    v = result.per_seed.loc[result.per_seed.statistic == name, "auc"].dropna().to_numpy(float)
    assert len(v) == 3
    got = result.detection["default"][name]["auc"]
    assert got["estimate"] == pytest.approx(v.mean())
    lo, hi = sst.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=sst.sem(v))
    assert got["low"] == pytest.approx(max(lo, 0.0)) and got["high"] == pytest.approx(min(hi, 1.0))
    assert result.detection["default"][name]["n_seeds"] == 3


def test_rerun_reuses_finished_points(grid):
    out, result, _ = grid
    again, sweep = run_sharpness_grid(out, "toy", [0, 1, 2], fixed=TINY, workers=0, quiet=True)
    assert sweep.n_reused == 3
    assert again.detection == result.detection


def test_second_order_weight_is_an_axis_and_bad_values_are_refused():
    g = build_grid("toy", [0, 1], [0.0, 0.5], {})
    assert len(list(g.points())) == 4
    from rote.core.errors import ConfigError

    with pytest.raises(ConfigError, match="`second_order_weight`"):
        build_grid("toy", [0], [-1.0], {})
    with pytest.raises(ConfigError, match="`setup`"):
        build_grid("faces", [0], None, {})


def test_cli_writes_results_and_report(tmp_path, capsys):
    out = tmp_path / "g"
    args = ["sharpness", "grid", "--setup", "toy", "--seeds", "0", "--epochs", "2", "--generations", "60"]
    code, _, err = run(args + ["--steps", "5", "--workers", "1", "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["seeds"] == [0] and res["paper_statistic"] == "hs_norm2_t1"
    assert set(res["detection"]["default"]) >= {"hs_norm2_t1", "neg_trace_t499"}
    assert (out / "report.html").is_file() and (out / "grid_auc.png").is_file()
    auc = res["detection"]["default"]["neg_trace_t499"]["auc"]
    assert np.isfinite(auc["estimate"]) and auc["low"] is None  # one seed: no interval, not a zero-width one


def test_tabular_setup_is_a_grid_and_refuses_image_options(tmp_path, capsys):
    from rote.sharpness.grid import grid_point
    from rote.sharpness.tabular import run_tabular

    tiny = dict(rows=120, epochs=1, num_timesteps=4, samples=16)
    point = grid_point({"setup": "tabular", "seed": 1, **tiny}, tmp_path)
    single, _ = run_tabular(seed=1, **tiny)
    det = point["detection"].set_index("statistic")
    assert point["paper_statistic"] == single.paper_statistic == "delta_hs_norm2_t3"
    for name, v in single.detection.items():
        assert det.loc[name, "auc"] == v["auc"] or (pd.isna(v["auc"]) and pd.isna(det.loc[name, "auc"]))
    with pytest.raises(Exception, match="`second_order_weight`"):
        build_grid("tabular", [0], [0.5], {})
    code, _, err = run(
        ["sharpness", "grid", "--setup", "tabular", "--steps", "5", "--out", str(tmp_path / "g")], capsys
    )
    assert code == 2 and "--steps" in err


def test_fashion_mnist_grid_point_is_the_single_run(tmp_path, capsys):
    from rote.sharpness.experiment import FASHION_OVERRIDES, run_mnist
    from rote.sharpness.grid import grid_point

    tiny = dict(epochs=1, generations_per_class=3, n_steps=4, duplicates=3, spectra_samples=2, n_generalized=50)
    point = grid_point({"setup": "mnist", "seed": 2, **FASHION_OVERRIDES, **tiny}, tmp_path)
    single, _ = run_mnist(seed=2, **{**FASHION_OVERRIDES, **tiny})
    assert point["n_generations"] == 6 and point["n_memorized"] == single.n_memorized
    got = point["detection"].set_index("statistic")["auc"].to_dict()
    assert got == pytest.approx({k: v["auc"] for k, v in single.detection.items()}, nan_ok=True)
    code, _, err = run(
        ["sharpness", "grid", "--setup", "toy", "--dataset", "fashion-mnist", "--out", str(tmp_path / "g")], capsys
    )
    assert code == 2 and "--dataset" in err and "--setup mnist" in err
    for argv, words in (
        (["--setup", "toy", "--net", "mlp"], ["--net", "--setup mnist"]),
        (["--setup", "mnist", "--net", "rnn"], ["--net", "conv"]),
    ):
        code, _, err = run(["sharpness", "grid", *argv, "--out", str(tmp_path / "n")], capsys)
        assert code == 2 and all(w in err for w in words) and err.count("\n") == 1, err


def test_grid_net_option_reaches_every_point(tmp_path, capsys):
    tiny = ["--epochs", "1", "--generations", "2", "--steps", "2", "--seeds", "0", "--quiet"]
    code, _, err = run(["sharpness", "grid", "--setup", "mnist", "--net", "mlp", *tiny, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "config.json").read_text())["options"]["fixed"]["net"] == "mlp"
    (point,) = [json.loads(p.read_text()) for p in tmp_path.glob("grid/points/*/result.json")]
    assert point["params"]["net"] == "mlp" and point["status"] == "done", point["status"]
