"""`rote llm memhunter-grid`: the MemHunter demo once per seed through rote.sweep, summarized over seeds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from rote.llm.memhunter_demo import DEMO_CONFIG, memhunter_demo, memhunter_grid
from rote_testing import run

torch.set_num_threads(1)
TINY = dict(n_texts=6, repeats=2, base_texts=20, steps=10, d_model=16, layers=1, sizes=[3], repetitions=5, budget=2)
TINY_EXTRA = dict(search_budget=6, rounds=1)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("mhgrid")
    result, sweep = memhunter_grid(out, [0, 1], workers=0, quiet=True, **TINY, **TINY_EXTRA)
    return out, result, sweep


def test_each_seed_is_the_single_demo_with_that_seed(grid, tmp_path):
    _, result, _ = grid
    direct = memhunter_demo(
        tmp_path, seed=1, config=dataclasses.replace(DEMO_CONFIG, rounds=1), search_budget=6, **TINY
    )
    row = result.per_seed.set_index("seed").loc[1]
    assert row["tpr"] == direct.tpr and row["fpr"] == direct.fpr
    assert row["extraction_generator"] == direct.extraction["generator"]
    assert row["extraction_prefix"] == direct.extraction["prefix_baseline"]
    assert row["extraction_gain"] == direct.extraction["generator"] - direct.extraction["prefix_baseline"]


def test_means_over_seeds_and_resume(grid):
    out, result, _ = grid
    for m in ("tpr", "fpr", "extraction_generator", "extraction_gain"):
        assert result.over_seeds[m]["estimate"] == pytest.approx(result.per_seed[m].mean())
    assert sorted(result.rates["seed"].unique()) == [0, 1]
    again, sweep = memhunter_grid(out, [0, 1], workers=0, quiet=True, **TINY, **TINY_EXTRA)
    assert sweep.n_reused == 2 and again.over_seeds == result.over_seeds


def test_cli_writes_the_summary(tmp_path, capsys):
    out = tmp_path / "g"
    args = ["llm", "memhunter-grid", "--seeds", "0", "--texts", "6", "--repeats", "2", "--base-texts", "20"]
    args += ["--steps", "10", "--d-model", "16", "--layers", "1", "--sizes", "3", "--repetitions", "5"]
    code, _, err = run(args + ["--budget", "2", "--rounds", "1", "--search-budget", "6", "--out", str(out)], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["seeds"] == [0] and set(res["over_seeds"]) >= {"tpr", "fpr", "extraction_gain"}
    assert res["over_seeds"]["tpr"]["low"] is None  # one seed: no interval
    assert np.isfinite(res["over_seeds"]["tpr"]["estimate"]) and (out / "report.html").is_file()


def test_no_seed_is_refused():
    from rote.core.errors import ConfigError

    with pytest.raises(ConfigError, match="`seeds` is empty"):
        memhunter_grid("unused", [], **TINY)
