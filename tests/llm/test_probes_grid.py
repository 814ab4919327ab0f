"""`rote llm probe-grid`: the probe demo once per seed through rote.sweep, summarized over seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rote.core.stats import mean_t_interval
from rote.llm.probes import probe_demo
from rote.llm.probes_grid import GRID_METRICS, point_values, probe_grid
from rote_testing import run

torch.set_num_threads(1)
# a demo small enough for a test: 4 planted canaries x 100 copies among 40 verses, a 1-layer tiny GPT, 80 steps
TINY = dict(steps=80, per_count=4, max_texts=40, n_layer=1, min_run=4, alphas=[0.0, 1.0], n_heldout=20)
CLI_TINY = ["--steps", "80", "--per-count", "4", "--max-texts", "40", "--layers", "1", "--min-run", "4"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The grid of seeds 0 and 1, in this process (the CLI test below runs its seed in a worker process)."""
    out = tmp_path_factory.mktemp("probegrid")
    result, sweep = probe_grid(out, [0, 1], workers=0, quiet=True, **TINY)
    return out, result, sweep


def test_each_seed_is_the_single_demo_with_that_seed(grid, tmp_path):
    _, result, _ = grid
    probe, curve, _, _ = probe_demo(tmp_path / "model", seed=1, **TINY)
    direct = point_values(probe, curve)
    row = result.per_seed.set_index("seed").loc[1]
    for m in GRID_METRICS:  # perplexities to float rounding (a worker may run other BLAS threads), the rest exactly
        tol = 1e-6 if m.startswith("ppl") else 0
        assert row[m] == pytest.approx(direct[m], nan_ok=True, rel=tol, abs=0), m
    assert row["best_layer"] == direct["best_layer"] and row["best_site"] == direct["best_site"]
    mine = result.curve[result.curve["seed"] == 1][["layer", "alpha", "extraction_rate", "heldout_ppl"]]
    np.testing.assert_allclose(
        mine.to_numpy(float), curve.table[["layer", "alpha", "extraction_rate", "heldout_ppl"]], rtol=1e-6, atol=0
    )


def test_means_and_intervals_over_seeds_and_resume(grid):
    out, result, _ = grid
    for m, bounds in GRID_METRICS.items():
        vals = result.per_seed[m].to_numpy(float)
        want = mean_t_interval(vals, bounds=bounds).to_dict()
        got = result.over_seeds[m]
        if np.all(np.isnan(vals)):
            assert np.isnan(got["estimate"])
            continue
        assert got["estimate"] == pytest.approx(np.nanmean(vals))
        # two seeds by hand: mean +- t_{0.975, 1} * s / sqrt(2), s the sample std, clipped to the bounds
        if np.isfinite(vals).all():
            half = 12.706204736174707 * vals.std(ddof=1) / np.sqrt(2)
            lo, hi = vals.mean() - half, vals.mean() + half
            if bounds is not None:
                lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
            assert got["low"] == pytest.approx(lo) and got["high"] == pytest.approx(hi)
        assert got == pytest.approx(want, nan_ok=True)
    assert sorted(result.curve["seed"].unique()) == [0, 1]
    again, sweep = probe_grid(out, [0, 1], workers=0, quiet=True, **TINY)
    assert sweep.n_reused == 2
    assert json.dumps(again.over_seeds, sort_keys=True) == json.dumps(result.over_seeds, sort_keys=True)


def test_cli_writes_the_summary_and_resumes(tmp_path, capsys):
    out = tmp_path / "g"
    args = ["llm", "probe-grid", "--seeds", "0", *CLI_TINY, "--alphas", "0,1", "--out", str(out), "--quiet"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["seeds"] == [0] and set(res["over_seeds"]) == set(GRID_METRICS)
    assert res["over_seeds"]["best_auc"]["low"] is None  # one seed: no interval
    assert 0 <= res["over_seeds"]["best_auc"]["estimate"] <= 1 and (out / "report.html").is_file()
    assert (out / "grid").is_dir()
    code, _, err = run(args + ["--force"], capsys)  # a rerun reuses the finished seed
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["over_seeds"] == res["over_seeds"]


def test_bad_grid_inputs_exit_2(tmp_path, capsys):
    from rote.core.errors import ConfigError

    with pytest.raises(ConfigError, match="`seeds` is empty"):
        probe_grid(tmp_path / "x", [], **TINY)
    for bad, word in ((["--direction", "sideways"], "direction"), (["--steps", "0"], "steps")):
        code, _, err = run(["llm", "probe-grid", "--seeds", "0", "--out", str(tmp_path / "y"), *bad], capsys)
        assert code == 2 and word in err
