"""The paper's synthetic experiments at paper scale (slow) and the regression toy's mechanics (fast)."""

from __future__ import annotations

import pytest

from rote.spurious.pipeline import run_linear_toy, run_regression_toy


def test_regression_toy_stops_at_the_tolerance_and_scores_every_setting():
    r = run_regression_toy(steps=50, tol=10.0, seed=0)  # the first step's MSE is below 10: stop at once
    assert set(r.settings) == {"good", "bad", "ugly"}
    assert all(v["steps"] == 1 for v in r.settings.values())
    assert [r.settings[k]["input_noise"] for k in ("good", "bad", "ugly")] == [1e-4, 1e-3, 0.0]
    assert len(r.curves) == 3 * 300


@pytest.mark.slow
def test_linear_toy_paper_scale():
    """Fig. 1: ERM with noise dimensions fails the minority, ERM without them does not, MAT recovers the core."""
    r = run_linear_toy(seed=0)
    mino = r.minority
    erm, clean, mat = r.methods["erm"], r.methods["erm_no_noise"], r.methods["mat"]
    assert max(erm["per_group_acc"][g] for g in mino) < 0.3
    assert clean["worst_group_acc"] > 0.95
    assert mat["worst_group_acc"] > 0.8
    ratio = {m: abs(w["spurious"]) / abs(w["core"]) for m, w in r.weights.items()}
    assert ratio["mat"] < 0.5 * ratio["erm"]
    assert r.memorization["erm"]["minority_gap"] > 0.5 > r.memorization["mat"]["minority_gap"]


@pytest.mark.slow
def test_regression_toy_good_bad_ugly():
    """Fig. 3: good memorization keeps the function (lowest test error); bad memorization through the noise
    dimensions does not learn it."""
    r = run_regression_toy(steps=20000, seed=0)
    s = r.settings
    assert s["good"]["test_mse"] < s["bad"]["test_mse"]
    assert s["good"]["train_mse"] < 1e-3 and s["bad"]["train_mse"] < 1e-3


def test_small_linear_toy_mat_beats_erm_on_the_minority():
    """A small version of Fig. 1 (n = 200, d = 300, 100 epochs): the ordering of the paper holds already."""
    r = run_linear_toy(n=200, d=300, epochs=100, lr=0.05, lr_no_noise=0.1, seed=0)
    wga = {m: v["worst_group_acc"] for m, v in r.methods.items()}
    assert wga["mat"] > wga["erm"] + 0.2
    assert wga["erm_no_noise"] > wga["erm"] + 0.2
    assert abs(r.weights["mat"]["spurious"]) < abs(r.weights["erm"]["spurious"])
