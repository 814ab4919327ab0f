"""rote.tabular.experiment: subsets, grids, one real point end to end, aggregation into the paper's table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats
import pandas as pd
import pytest

from rote.core.errors import ConfigError
from rote.data import dataset_schema, load_dataset
from rote.sweep import Grid, SweepResult
from rote.tabular.experiment import (
    DEFAULTS,
    experiment_grid,
    experiment_point,
    format_paper_table,
    paper_table,
    experiment_outputs,
    run_experiment,
    subsample,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def brute_force_mem_ratio(
    train: pd.DataFrame, synth: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> float:
    """The TabCutMix code's criterion written out row by row: raw Euclidean numeric distance, min-max rescaled per
    query over all training rows, plus categorical mismatches; memorized when d1/d2 < 1/3 (0/0 not)."""
    tn, tc = train[numeric].to_numpy(float), train[categorical].astype(str).to_numpy()
    hits = 0
    for i in range(len(synth)):
        e = np.sqrt(((tn - synth[numeric].to_numpy(float)[i]) ** 2).sum(1))
        e = (e - e.min()) / (e.max() - e.min()) if e.max() > e.min() else np.zeros_like(e)
        d = e + (tc != synth[categorical].astype(str).to_numpy()[i]).sum(1)
        d1, d2 = np.sort(d)[:2]
        hits += (d1 == 0 and d2 > 0) or (d2 > 0 and d1 / d2 < 1 / 3)
    return hits / len(synth)


@pytest.fixture(scope="module")
def adult():
    return load_dataset("adult", "train"), dataset_schema("adult")


def test_subsample_nested_rows_and_features(adult):
    train, schema = adult
    big, s_big = subsample(train, schema, rows=400, train_fraction=1.0, feature_fraction=1.0)
    half, s_half = subsample(train, schema, rows=400, train_fraction=0.5, feature_fraction=1.0)
    assert len(big) == 400 and len(half) == 200 and s_big == schema
    key = lambda f: set(map(tuple, f.astype(str).to_numpy()))  # noqa: E731
    assert key(half) <= key(big)  # nested: the smaller set is part of the larger one
    again, _ = subsample(train, schema, rows=400, train_fraction=0.5, feature_fraction=1.0)
    pd.testing.assert_frame_equal(half, again)
    f30, s30 = subsample(train, schema, rows=100, train_fraction=1.0, feature_fraction=0.3)
    f70, s70 = subsample(train, schema, rows=100, train_fraction=1.0, feature_fraction=0.7)
    assert len(s30.columns) - 1 == round(0.3 * 14) and len(s70.columns) - 1 == round(0.7 * 14)
    assert set(s30.columns) <= set(s70.columns) and s30.target == "income" and "income" in f30.columns
    assert list(f30.columns) == [c for c in train.columns if c in set(s30.columns)]
    with pytest.raises(ConfigError, match="leaves 1 row"):
        subsample(train, schema, rows=10, train_fraction=0.1, feature_fraction=1.0)


def test_experiment_grid_validation_and_ids():
    g = experiment_grid({"augmentation": ["none", "tabcutmix"], "seed": [0, 1]}, epochs=3, rows=100)
    assert len(g) == 4 and g.fixed["epochs"] == 3 and g.fixed["rows"] == 100
    assert "every" not in g.fixed  # defaults of non-axis parameters stay out of the ids
    assert all(p["dataset"] == "adult" and p["generator"] == "tabddpm" for p in g.points())
    for bad, match in (
        ({"generator": ["gan"]}, "generator 'gan' is unknown"),
        ({"augmentation": ["cutout"]}, "augmentation 'cutout' is unknown"),
        ({"train_fraction": [0.0]}, "fraction in"),
        ({"seed": [-1]}, "whole number"),
    ):
        with pytest.raises(ConfigError, match=match):
            experiment_grid(bad)
    with pytest.raises(ConfigError, match="unknown experiment parameters"):
        experiment_grid({}, learning_rate=1)


def test_one_point_end_to_end_with_tabddpm(adult, tmp_path):
    """A real (tiny) TabDDPM point: curve from the hook, audit equal to a brute-force computation."""
    params = {
        "dataset": "adult",
        "generator": "tabddpm",
        "augmentation": "tabcutmix",
        "epochs": 2,
        "seed": 0,
        "every": 1,
        "hook_samples": 40,
        "rows": 120,
        "test_rows": 150,
        "generator_options": {"num_timesteps": 20, "d_layers": [32, 32]},
    }  # tiny, so the test is fast
    out = experiment_point(params, tmp_path / "work")
    train, schema = adult
    sub, sch = subsample(train, schema, rows=120, train_fraction=1.0, feature_fraction=1.0)
    assert out["n_train"] == 120 and out["n_augmented"] == round(0.3 * 120) and out["n_features"] == 14
    assert list(out["curve"]["epoch"]) == [1, 2] and (out["curve"]["n_samples"] == 40).all()
    synth = out["synthetic"]
    assert len(synth) == 120 and list(synth.columns) == list(sub.columns)
    expected = brute_force_mem_ratio(sub, synth, list(sch.numeric), list(sch.categorical))
    assert out["mem_ratio"] == pytest.approx(expected, abs=1e-12)
    assert 0 <= out["ood_rate"] <= 1 and 0 <= out["shape"] <= 1 and 0 <= out["c2st"] <= 1
    assert list(out["history"]["epoch"]) == [1, 2] and (tmp_path / "work" / "checkpoints").is_dir()


def _fake_sweep(tmp_path: Path) -> SweepResult:
    """A finished sweep built by hand: 2 augmentations x 2 epochs x 3 seeds with known metric values."""
    grid = Grid({"augmentation": ["none", "tabcutmix"], "epochs": [5, 10], "seed": [0, 1, 2]})
    rows = []
    rng = np.random.default_rng(3)
    for p in grid.points():
        row = {"point_id": p.id, **p.params, "status": "done", "reused": False, "seconds": 1.0, "error": None}
        row.update(
            {
                m: float(rng.uniform(0.1, 0.9))
                for m in (
                    "mem_ratio",
                    "mle",
                    "alpha_precision",
                    "beta_recall",
                    "shape",
                    "trend",
                    "c2st",
                    "dcr_share",
                    "mem_auc",
                )
            }
        )
        row["ood_rate"] = float("nan") if p["augmentation"] == "none" else 0.05
        row["ood_real_rate"] = float("nan") if p["augmentation"] == "none" else 0.03
        row["dcr_ideal"] = 0.6
        row["quality_notes"] = "MLE: one class" if p["seed"] == 1 else ""
        rows.append(row)
    return SweepResult(grid, tmp_path, "seed", pd.DataFrame(rows), {})


def test_paper_table_against_hand_computation(tmp_path):
    sweep = _fake_sweep(tmp_path)
    table = paper_table(sweep)
    assert list(table[["augmentation", "epochs"]].itertuples(index=False, name=None)) == [
        ("none", 5),
        ("none", 10),
        ("tabcutmix", 5),
        ("tabcutmix", 10),
    ]
    t = sweep.table
    for _, row in table.iterrows():
        sel = t[(t["augmentation"] == row["augmentation"]) & (t["epochs"] == row["epochs"])]
        for m in ("mem_ratio", "shape", "dcr_share"):
            v = sel[m].to_list()
            mean = sum(v) / 3
            std = math.sqrt(sum((x - mean) ** 2 for x in v) / 2)
            assert row[f"{m}_mean"] == pytest.approx(mean) and row[f"{m}_std"] == pytest.approx(std)
        assert row["n_seeds"] == 3
        if row["augmentation"] == "none":
            assert math.isnan(row["improvement"])
        else:
            base = t[(t["augmentation"] == "none") & (t["epochs"] == row["epochs"])]["mem_ratio"].mean()
            assert row["improvement"] == pytest.approx((base - row["mem_ratio_mean"]) / base)
        if row["augmentation"] != "none":
            # paired by seed: the t interval of (none_s - method_s), over the baseline mean, by hand
            b = base_rows = t[(t["augmentation"] == "none") & (t["epochs"] == row["epochs"])].sort_values("seed")
            m = sel.sort_values("seed")
            d = b["mem_ratio"].to_numpy() - m["mem_ratio"].to_numpy()
            half = scipy_stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
            base = base_rows["mem_ratio"].mean()
            assert row["improvement_low"] == pytest.approx((d.mean() - half) / base)
            assert row["improvement_high"] == pytest.approx((d.mean() + half) / base)
            assert row["n_pairs"] == 3
            # Welch's p-value from its definition (Welch-Satterthwaite degrees of freedom)
            x, y = m["mem_ratio"].to_numpy(), b["mem_ratio"].to_numpy()
            vx, vy = x.var(ddof=1) / 3, y.var(ddof=1) / 3
            tstat = (x.mean() - y.mean()) / math.sqrt(vx + vy)
            dof = (vx + vy) ** 2 / (vx**2 / 2 + vy**2 / 2)
            assert row["welch_p"] == pytest.approx(2 * scipy_stats.t.sf(abs(tstat), dof))
        assert row["quality_notes"] == "MLE: one class"
    shown = format_paper_table(table, ["augmentation", "epochs"])
    r = table.iloc[2]
    assert shown.loc[2, "Mem. ratio %"] == f"{100 * r['mem_ratio_mean']:.2f} ± {100 * r['mem_ratio_std']:.2f}"
    imp = shown.loc[2, "Improv. [95% CI] p"]
    assert imp == (
        f"{100 * r['improvement']:+.2f}% [{100 * r['improvement_low']:+.2f}, {100 * r['improvement_high']:+.2f}]"
        f" p={r['welch_p']:.2g}"
    )
    assert shown.loc[0, "Improv. [95% CI] p"] == "–"
    assert shown.loc[2, "OOD % (real floor)"] == "5.00 (3.00)" and shown.loc[0, "OOD % (real floor)"] == "–"
    assert shown.loc[2, "DCR %"].endswith("(ideal 60.0)") and shown.loc[2, "notes"] == "MLE: one class"


def test_one_seed_table_shows_no_spread_and_no_interval(tmp_path):
    sweep = _fake_sweep(tmp_path)
    one = SweepResult(sweep.grid, tmp_path, "seed", sweep.table[sweep.table["seed"] == 0].reset_index(drop=True), {})
    table = paper_table(one)
    shown = format_paper_table(table, ["augmentation", "epochs"])
    r = table.iloc[2]
    assert shown.loc[2, "Mem. ratio %"] == f"{100 * r['mem_ratio_mean']:.2f}"  # no "± 0.00"
    assert "±" not in " ".join(shown["Shape %"])
    assert shown.loc[2, "Improv. [95% CI] p"] == f"{100 * r['improvement']:+.2f}% (no interval: 1 seed)"
    assert math.isnan(r["welch_p"]) and r["n_pairs"] == 1


def test_run_experiment_ijf_grid_files_and_resume(tmp_path):
    """A whole grid with the cheap IJF generator (in-process workers=0): files, report, and a resumed re-run."""
    from rote.core.runs import RunFolder

    grid = experiment_grid(
        {"augmentation": ["none", "tabcutmix"], "seed": [0, 1], "train_fraction": [0.5, 1.0]},
        generator="ijf",
        rows=150,
        test_rows=100,
        ood=False,
        quality=False,
    )
    res = run_experiment(grid, tmp_path / "exp", workers=0, quiet=True)
    assert res.n_done == 8 and res.n_failed == 0 and len(res.paper_table) == 4
    pts = res.points
    for _, row in res.paper_table.iterrows():
        sel = pts[(pts["augmentation"] == row["augmentation"]) & (pts["train_fraction"] == row["train_fraction"])]
        assert row["mem_ratio_mean"] == pytest.approx(sel["mem_ratio"].mean())
        assert set(sel["n_train"]) == {round(150 * row["train_fraction"])}
    run = RunFolder(tmp_path / "exp")
    assert run.finish(res, command="test", options={}, quiet=True, **experiment_outputs(res)) == 0
    html = (tmp_path / "exp" / "report.html").read_text()
    assert "Memorization and quality" in html and "mem_vs_size.png" in html
    assert (tmp_path / "exp" / "mem_vs_size.png").is_file() and "| augmentation |" in (
        tmp_path / "exp" / "paper_table.md"
    ).read_text()
    saved = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert saved["n_done"] == 8 and saved["grid"]["fixed"]["generator"] == "ijf"
    again = run_experiment(grid, tmp_path / "exp", workers=0, quiet=True)
    assert again.n_reused == 8
    pd.testing.assert_frame_equal(again.paper_table, res.paper_table)


def test_defaults_cover_every_axis():
    from rote.tabular.experiment import AXES

    assert set(AXES) <= set(DEFAULTS)


def test_one_point_with_tabsyn(adult, tmp_path):
    """TabSyn in the same grid point: the hook's curve covers the diffusion phase only (epochs after the VAE's)."""
    params = {
        "dataset": "adult",
        "generator": "tabsyn",
        "augmentation": "none",
        "epochs": 2,
        "seed": 1,
        "every": 1,
        "hook_samples": 30,
        "rows": 100,
        "test_rows": 100,
        "quality": False,
        "generator_options": {"vae_epochs": 2},
    }
    out = experiment_point(params, tmp_path / "work")
    train, schema = adult
    sub, sch = subsample(train, schema, rows=100, train_fraction=1.0, feature_fraction=1.0)
    assert list(out["curve"]["epoch"]) == [3, 4]  # epochs 1-2 train the VAE, 3-4 the latent diffusion model
    expected = brute_force_mem_ratio(sub, out["synthetic"], list(sch.numeric), list(sch.categorical))
    assert out["mem_ratio"] == pytest.approx(expected, abs=1e-12)
    assert math.isnan(out["shape"])  # quality=False leaves the quality columns undefined, not zero


def test_paired_t_sample_size_against_published_values_and_simulation():
    """Paired two-sided t-test, alpha 0.05, power 0.8: G*Power's sample sizes for d = 0.5, 0.8, 1.0 are 34, 15 and
    10 pairs; and a simulation at the returned n reaches the power while n - 1 falls short."""
    from rote.core.errors import ConfigError
    from rote.core.stats import paired_difference_interval, paired_t_sample_size

    assert [paired_t_sample_size(d, 1.0) for d in (0.5, 0.8, 1.0)] == [34, 15, 10]
    assert paired_t_sample_size(-2.5, 1.9) == paired_t_sample_size(2.5, 1.9)
    rng = np.random.default_rng(0)
    for n, want in ((15, True), (14, False)):
        diffs = rng.normal(0.8, 1.0, (20_000, n))
        p = scipy_stats.ttest_1samp(diffs, 0.0, axis=1).pvalue
        assert (np.mean(p < 0.05) >= 0.8) == want
    with pytest.raises(ConfigError, match="`sd`"):
        paired_t_sample_size(1.0, 0.0)
    with pytest.raises(ConfigError, match="`effect`"):
        paired_t_sample_size(0.0, 1.0)
    iv = paired_difference_interval([3.0, 5.0, 4.0], [1.0, 2.0, 2.0])  # differences 2, 3, 2
    half = scipy_stats.t.ppf(0.975, 2) * np.std([2, 3, 2], ddof=1) / math.sqrt(3)
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((7 / 3, 7 / 3 - half, 7 / 3 + half))
    with pytest.raises(ConfigError, match="equal length"):
        paired_difference_interval([1.0, 2.0], [1.0])
