"""rote.sweep: grids and point ids, local process runs, resume after interruption, failures, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import BackendError, ConfigError
from rote.sweep import Grid, point_id, run_grid
from rote.sweep.grid import axis_values

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # spawned workers inherit sys.path, so they can import sweep_points too
import sweep_points as sp  # noqa: E402


def grid(log_dir: Path, xs=(1, 2, 3), seeds=(0, 1)) -> Grid:
    return Grid({"x": list(xs), "seed": list(seeds)}, fixed={"log_dir": str(log_dir)})


# ---------------------------------------------------------------------------------------------- grids


def test_grid_product_order_and_ids():
    g = Grid({"a": [1, 2], "b": ["u", "v", "w"]}, fixed={"c": 0.5})
    pts = g.points()
    assert len(g) == 6 == len(pts)
    assert [(p["a"], p["b"]) for p in pts] == [(1, "u"), (1, "v"), (1, "w"), (2, "u"), (2, "v"), (2, "w")]
    assert all(p["c"] == 0.5 for p in pts)
    assert len({p.id for p in pts}) == 6
    # the id is a hash of the parameters only: reordering axes or values keeps every id
    g2 = Grid({"b": ["w", "v", "u"], "a": [2, 1]}, fixed={"c": 0.5})
    assert {p.id for p in g2.points()} == {p.id for p in pts}
    # independent computation of one id
    import hashlib

    text = json.dumps({"a": 1, "b": "u", "c": 0.5}, sort_keys=True, separators=(",", ":"))
    assert pts[0].id == hashlib.sha256(text.encode()).hexdigest()[:12] == point_id({"c": 0.5, "b": "u", "a": 1})
    assert point_id({"a": 1}) != point_id({"a": 1.0})


def test_grid_bad_input_and_files(tmp_path):
    with pytest.raises(ConfigError, match="axis 'a' has no values"):
        Grid({"a": []})
    with pytest.raises(ConfigError, match="more than once"):
        Grid({"a": [1, 1]})
    with pytest.raises(ConfigError, match="both an axis and fixed"):
        Grid({"a": [1]}, fixed={"a": 2})
    with pytest.raises(ConfigError, match="not a finite number"):
        Grid({"a": [float("nan")]})
    with pytest.raises(ConfigError, match="not a JSON scalar"):
        Grid({"a": [object()]})
    (tmp_path / "g.yaml").write_text("axes:\n  seed: [0, 1]\n  aug: [none, tabcutmix]\nfixed:\n  epochs: 5\n")
    g = Grid.load(tmp_path / "g.yaml")
    assert g.axes == {"seed": [0, 1], "aug": ["none", "tabcutmix"]} and g.fixed == {"epochs": 5}
    (tmp_path / "g.json").write_text(json.dumps(g.to_dict()))
    assert [p.id for p in Grid.load(tmp_path / "g.json").points()] == [p.id for p in g.points()]
    (tmp_path / "bad.yaml").write_text("axes: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        Grid.load(tmp_path / "bad.yaml")
    (tmp_path / "bad.json").write_text(json.dumps({"axis": {"a": [1]}}))
    with pytest.raises(ConfigError, match="bad.json.*'axes'"):
        Grid.load(tmp_path / "bad.json")
    assert axis_values(["0,1", "2"], int, "seeds") == [0, 1, 2]
    with pytest.raises(ConfigError, match="--seeds: 'x' is not a valid int"):
        axis_values(["0,x"], int, "seeds")


# ---------------------------------------------------------------------------------------------- local runs


def test_run_grid_processes_records_and_aggregate(tmp_path):
    log = tmp_path / "calls"
    res = run_grid(sp.square, grid(log), tmp_path / "out", workers=2, quiet=True)
    assert res.n_done == 6 and res.n_failed == 0 and res.n_reused == 0
    assert sp.count_calls(log) == 6
    t = res.table
    assert list(t["x"]) == [1, 1, 2, 2, 3, 3] and list(t["seed"]) == [0, 1] * 3
    assert (t["pid"] != os.getpid()).all()  # every point ran in a worker process, not here
    # the values are those of a direct call with the same seeding
    for _, row in t.iterrows():
        direct = row["x"] ** 2 + np.random.default_rng(row["seed"]).normal()
        assert row["y"] == pytest.approx(direct, abs=1e-12)
        assert row["global_draw"] == np.random.RandomState(row["seed"]).random_sample()
        assert row["nested.a"] == row["x"] and row["nested.b"] == "text"
    # files: result.json per point, tables as parquet, the summary table
    for pid in t["point_id"]:
        rec = json.loads((tmp_path / "out" / "points" / pid / "result.json").read_text())
        assert rec["status"] == "done" and rec["tables"] == ["curve"]
    curves = res.point_table("curve")
    assert len(curves) == 18 and list(curves.columns[:3]) == ["point_id", "x", "seed"]
    assert np.allclose(curves["value"], curves["x"] * curves["step"])
    assert pd.read_parquet(tmp_path / "out" / "points.parquet")["y"].tolist() == t["y"].tolist()
    # aggregate over the seed axis: mean and sample std (ddof=1), checked by hand
    agg = res.aggregate(["y"])
    assert list(agg["x"]) == [1, 2, 3] and (agg["n_seeds"] == 2).all()
    for _, row in agg.iterrows():
        ys = t.loc[t["x"] == row["x"], "y"].to_numpy()
        assert row["y_mean"] == pytest.approx((ys[0] + ys[1]) / 2)
        assert row["y_std"] == pytest.approx(abs(ys[0] - ys[1]) / np.sqrt(2))
    # a re-run of the finished grid computes nothing and gives the same table
    again = run_grid(sp.square, grid(log), tmp_path / "out", workers=2, quiet=True)
    assert sp.count_calls(log) == 6 and again.n_reused == 6
    assert again.table["y"].tolist() == t["y"].tolist()


def test_failure_is_recorded_and_retried(tmp_path):
    log = tmp_path / "calls"
    log.mkdir()
    (log / "fail").touch()
    res = run_grid(sp.flaky, grid(log), tmp_path / "out", workers=0, quiet=True)
    assert res.n_done == 4 and res.n_failed == 2
    fails = res.failures()
    assert list(fails["x"]) == [2, 2] and fails["error"].str.contains("ValueError: x = 2 is broken today").all()
    err = json.loads((tmp_path / "out" / "points" / fails["point_id"][0] / "error.json").read_text())
    assert "Traceback" in err["traceback"] and "flaky" in err["traceback"]
    # retry_failed=False keeps the failure without calling
    kept = run_grid(sp.flaky, grid(log), tmp_path / "out", workers=0, quiet=True, retry_failed=False)
    assert kept.n_failed == 2 and sp.count_calls(log) == 6
    # fixed: only the two failed points run again; the error record is replaced by a result
    (log / "fail").unlink()
    res2 = run_grid(sp.flaky, grid(log), tmp_path / "out", workers=0, quiet=True)
    assert res2.n_done == 6 and res2.n_reused == 4 and sp.count_calls(log) == 8
    assert not (tmp_path / "out" / "points" / fails["point_id"][0] / "error.json").exists()


def test_interrupted_in_process_grid_resumes_without_recomputing(tmp_path):
    log = tmp_path / "calls"
    log.mkdir()
    (log / "interrupt").touch()
    g = grid(log, xs=(1, 2, 3), seeds=(0,))
    with pytest.raises(KeyboardInterrupt):
        run_grid(sp.interrupt_at_two, g, tmp_path / "out", workers=0, quiet=True)
    assert sp.count_calls(log) == 2  # x=1 finished, x=2 interrupted
    (log / "interrupt").unlink()
    res = run_grid(sp.interrupt_at_two, g, tmp_path / "out", workers=0, quiet=True)
    assert sp.count_calls(log) == 4  # x=2 and x=3 only: x=1 was not recomputed
    assert res.n_done == 3 and res.n_reused == 1 and res.table["y"].tolist() == [1, 4, 9]


def test_killed_grid_resumes_without_recomputing(tmp_path):
    """Kill the whole process group (driver and workers) while x=2 runs, then re-run: only unfinished points run."""
    log = tmp_path / "calls"
    log.mkdir()
    (log / "block").touch()
    out = tmp_path / "out"
    script = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import sweep_points as sp; "
        f"from rote.sweep import Grid, run_grid; "
        f"run_grid(sp.hang_at_two, Grid({{'x': [1, 2, 3, 4]}}, fixed={{'log_dir': {str(log)!r}}}), "
        f"{str(out)!r}, workers=1, quiet=True)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.time() + 60
        while sp.count_calls(log) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert sp.count_calls(log) == 2  # x=1 done, x=2 hanging
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(list((out / "points").glob("*/result.json"))) == 1
    (log / "block").unlink()
    res = run_grid(sp.hang_at_two, Grid({"x": [1, 2, 3, 4]}, fixed={"log_dir": str(log)}), out, workers=1, quiet=True)
    assert res.n_done == 4 and res.n_reused == 1
    assert sp.count_calls(log) == 2 + 3
    assert res.table["y"].tolist() == [1, 4, 9, 16]


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="cannot be sent to worker processes"):
        run_grid(lambda p, w: {}, Grid({"x": [1]}), tmp_path / "o", workers=1, quiet=True)
    with pytest.raises(ConfigError, match="workers must be"):
        run_grid(sp.square, Grid({"x": [1]}), tmp_path / "o", workers=-1, quiet=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        run_grid(sp.square, Grid({"x": [1]}), tmp_path / "file", quiet=True)


def test_ray_missing_gives_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(BackendError, match=r"pip install 'rote\[ray\]'"):
        run_grid(sp.square, grid(tmp_path / "calls", xs=(1,), seeds=(0,)), tmp_path / "o", ray="local", quiet=True)


def test_two_point_grid_on_local_ray_matches_local_run(tmp_path):
    import ray  # rote[ray] is part of the test environment
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sp)  # Ray workers do not share this test's sys.path
    log = tmp_path / "calls"
    g = grid(log, xs=(2, 3), seeds=(7,))
    local = run_grid(sp.square, g, tmp_path / "local", workers=2, quiet=True)
    on_ray = run_grid(sp.square, g, tmp_path / "ray", ray="local", quiet=True)
    cols = ["point_id", "x", "seed", "status", "y", "global_draw", "nested.a", "nested.b"]
    pd.testing.assert_frame_equal(local.table[cols], on_ray.table[cols])
    pd.testing.assert_frame_equal(local.point_table("curve"), on_ray.point_table("curve"))
    assert sp.count_calls(log) == 4
    assert not ray.is_initialized()  # the instance rote started is stopped again
