"""Run folders, atomic writes, strict JSON and seeding (`rote.core.runs`)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import ConfigError, DataError
from rote.core.runs import (
    RunFolder,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    file_fingerprint,
    make_rng,
    read_json,
    to_json_text,
)

# ---------------------------------------------------------------------------------------------- atomic writes


def test_atomic_write_round_trips(tmp_path):
    b = atomic_write_bytes(tmp_path / "sub" / "a.bin", b"\x00\x01binary\xff")
    assert b == tmp_path / "sub" / "a.bin" and b.read_bytes() == b"\x00\x01binary\xff"  # parent created
    t = atomic_write_text(tmp_path / "t.txt", "héllo\nwörld")
    assert t.read_bytes() == "héllo\nwörld".encode("utf-8")
    j = atomic_write_json(tmp_path / "r.json", {"x": [1, 2.5, "s"], "y": {"z": None}})
    assert json.loads(j.read_text()) == {"x": [1, 2.5, "s"], "y": {"z": None}}
    assert read_json(j) == {"x": [1, 2.5, "s"], "y": {"z": None}}
    frame = pd.DataFrame({"a": [1.5, 2.0], "b": ["u", "v"]}, index=[7, 9])
    p = atomic_write_parquet(tmp_path / "f.parquet", frame)
    pd.testing.assert_frame_equal(pd.read_parquet(p), frame.reset_index(drop=True))  # index dropped
    # overwrite keeps only the new content
    atomic_write_text(tmp_path / "t.txt", "new")
    assert (tmp_path / "t.txt").read_text() == "new"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.parquet", "r.json", "sub", "t.txt"]  # no temp files
    assert [x.name for x in (tmp_path / "sub").iterdir()] == ["a.bin"]


def test_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    target.write_text("old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new content")
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"a": 1})
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["results.json"]  # temp files removed


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def boom(fd):
        raise OSError("io error")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="io error"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["data.bin"]


def test_unserializable_json_keeps_old_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text('{"ok": true}')
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert [x.name for x in tmp_path.iterdir()] == ["r.json"]


# ---------------------------------------------------------------------------------------------- strict JSON


def test_to_json_text_non_finite_to_null():
    obj = {
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": -np.inf,
        "f32": np.float32("nan"),
        "list": [1.0, np.nan, {"deep": np.float64("-inf")}],
        "tuple": (np.inf, 2),
        "ok": 0.5,
        "np_int": np.int64(3),
        "np_float": np.float64(1.25),
        7: "int key",
    }
    text = to_json_text(obj)
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert back == {
        "nan": None,
        "inf": None,
        "ninf": None,
        "f32": None,
        "list": [1.0, None, {"deep": None}],
        "tuple": [None, 2],
        "ok": 0.5,
        "np_int": 3,
        "np_float": 1.25,
        "7": "int key",
    }
    assert text.endswith("\n")


def test_to_json_text_numpy_array_with_nan():
    """The docstring: numpy arrays converted, NaN and infinities written as null."""
    back = json.loads(to_json_text({"a": np.array([1.0, np.nan, np.inf]), "b": np.arange(3)}))
    assert back == {"a": [1.0, None, None], "b": [0, 1, 2]}


def test_to_json_text_other_types():
    back = json.loads(to_json_text({"p": Path("/x/y"), "s": {3}, "arr": np.array([[1, 2]])}))
    assert back == {"p": "/x/y", "s": [3], "arr": [[1, 2]]}
    with pytest.raises(TypeError):
        to_json_text({"x": object()})


def test_read_json_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_json(bad)


# ---------------------------------------------------------------------------------------------- run folders


def test_run_folder_refuses_finished_run(tmp_path):
    out = tmp_path / "run"
    rf = RunFolder(out)
    assert not out.exists()  # checked, not made: nothing is created before the first write
    rf.write_json("results.json", {"memorization_ratio": 0.1})
    assert out.is_dir()
    with pytest.raises(ConfigError, match="results.json"):
        RunFolder(out)
    again = RunFolder(out, force=True)
    again.write_json("results.json", {"memorization_ratio": 0.2})
    assert read_json(out / "results.json") == {"memorization_ratio": 0.2}
    RunFolder(tmp_path / "other")  # a folder without results.json is fine, even twice
    RunFolder(tmp_path / "other")


def test_run_folder_path_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        RunFolder(f)
    with pytest.raises(ConfigError, match="so no folder can be made under it"):
        RunFolder(f / "sub" / "run")
    (tmp_path / "r" / "config.json").mkdir(parents=True)
    with pytest.raises(ConfigError, match="config.json there is a folder"):
        RunFolder(tmp_path / "r")


def test_finish_writes_every_file_results_last_and_returns_the_status(tmp_path, capsys, monkeypatch):
    import rote.core.runs as runs

    order = []
    real = runs.atomic_write_bytes
    monkeypatch.setattr(runs, "atomic_write_bytes", lambda p, d: order.append(Path(p).name) or real(p, d))
    rf = RunFolder(tmp_path / "run")
    status = rf.finish(
        {"x": 1.5},
        command="rote test",
        options={"a": 1},
        inputs={"none": None},
        seed=3,
        tables={"t": pd.DataFrame({"v": [1, 2]})},
        plots={"p": b"\x89PNG\r\n\x1a\n"},
        files={"n.md": "text\n"},
        report=lambda config: f"<html>{config['command']}</html>",
        extra={"y": 2},
        summary="all good",
        status=2,
        reason="1 of 2 points failed",
    )
    assert status == 2
    out, err = capsys.readouterr()
    assert out == f"all good\nreport: {tmp_path / 'run' / 'report.html'}\n"
    assert err == "error: 1 of 2 points failed\n"
    assert order == ["config.json", "t.parquet", "p.png", "n.md", "report.html", "results.json"]
    assert read_json(tmp_path / "run" / "results.json") == {"x": 1.5, "y": 2}
    assert read_json(tmp_path / "run" / "config.json")["seed"] == 3
    assert (tmp_path / "run" / "report.html").read_text() == "<html>rote test</html>"
    # quiet: nothing on stdout, but the one-line reason of a failing status still reaches stderr
    rf = RunFolder(tmp_path / "run2")
    assert rf.finish({"x": 1}, command="c", options={}, quiet=True) == 0
    assert capsys.readouterr() == ("", "")


class _Sweep:
    """Stands in for a `rote.sweep` result: only `exit_status()` is read by `finish`."""

    def __init__(self, status, reason=None):
        self.status, self.reason, self.calls = status, reason, 0

    def exit_status(self):
        self.calls += 1
        return self.status, self.reason


def test_finish_takes_its_status_from_the_first_failing_sweep(tmp_path, capsys):
    ok, bad, worse = _Sweep(0), _Sweep(2, "1 of 4 grid points failed on bad input"), _Sweep(1, "internal")
    rf = RunFolder(tmp_path / "a")
    assert rf.finish({"x": 1}, command="c", options={}, quiet=True, sweeps=(ok, None, bad, worse)) == 2
    assert capsys.readouterr().err == "error: 1 of 4 grid points failed on bad input\n"
    assert (ok.calls, bad.calls, worse.calls) == (1, 1, 0)  # the first failing sweep decides
    assert read_json(tmp_path / "a" / "results.json") == {"x": 1}  # files are written all the same
    # one sweep, no failure: status 0, nothing on stderr
    assert RunFolder(tmp_path / "b").finish({"x": 1}, command="c", options={}, quiet=True, sweeps=ok) == 0
    assert capsys.readouterr() == ("", "")
    # a status the command set itself wins over the sweeps'
    rf = RunFolder(tmp_path / "c")
    assert rf.finish({}, command="c", options={}, quiet=True, status=1, reason="own", sweeps=bad) == 1
    assert capsys.readouterr().err == "error: own\n"


def test_a_failed_run_leaves_no_half_made_folder(tmp_path):
    # a folder the run created is removed
    with pytest.raises(RuntimeError):
        with RunFolder(tmp_path / "new") as rf:
            rf.write_text("partial.txt", "x")
            raise RuntimeError("boom")
    assert not (tmp_path / "new").exists()
    # a folder with checkpoints to resume from is kept and marked FAILED (never results.json)
    with pytest.raises(RuntimeError):
        with RunFolder(tmp_path / "ckpt") as rf:
            rf.write_bytes("checkpoints/epoch-000001.pt", b"x")
            raise RuntimeError("boom")
    assert (tmp_path / "ckpt" / "FAILED").read_text() == "RuntimeError: boom\n"
    assert not (tmp_path / "ckpt" / "results.json").exists()
    # a --force rerun drops the old results.json at its first write, and a success removes FAILED
    rf = RunFolder(tmp_path / "ckpt")
    assert rf.finish({"ok": True}, command="c", options={}, quiet=True) == 0
    assert not (tmp_path / "ckpt" / "FAILED").exists()
    old = RunFolder(tmp_path / "ckpt", force=True)
    with pytest.raises(RuntimeError):
        with old:
            old.write_text("new.txt", "x")
            raise RuntimeError("again")
    assert not (tmp_path / "ckpt" / "results.json").exists() and (tmp_path / "ckpt" / "FAILED").is_file()
    # a pre-existing folder the run did not make is never removed
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        with RunFolder(tmp_path / "mine") as rf:
            rf.write_text("partial.txt", "x")
            raise RuntimeError("boom")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_run_folder_never_writes_an_input(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    inp = out / "train.csv"
    inp.write_text("a\n1\n")
    # the input named by a relative path through '..' is the same file
    rf = RunFolder(out, inputs=[tmp_path / "run" / ".." / "run" / "train.csv"])
    for write in (
        lambda: rf.write_text("train.csv", "oops"),
        lambda: rf.write_bytes("train.csv", b"oops"),
        lambda: rf.write_json("train.csv", {}),
        lambda: rf.write_parquet("train.csv", pd.DataFrame({"a": [1]})),
    ):
        with pytest.raises(ConfigError, match="inputs"):
            write()
    assert inp.read_text() == "a\n1\n"
    assert rf.write_text("other.txt", "fine").read_text() == "fine"


def test_write_config_records_input_hashes(tmp_path):
    a = tmp_path / "train.csv"
    a.write_bytes(b"x,y\n1,2\n" * 1000)
    b = tmp_path / "syn.csv"
    b.write_bytes(b"x,y\n3,4\n")
    rf = RunFolder(tmp_path / "run", inputs=[a, b])
    p = rf.write_config(
        "audit",
        {"threshold": 1 / 3, "nan_opt": float("nan")},
        inputs={"train": a, "synthetic": str(b), "holdout": None, "folder": tmp_path},
        seed=7,
    )
    cfg = read_json(p)
    assert cfg["command"] == "audit" and cfg["seed"] == 7
    assert cfg["options"] == {"threshold": 1 / 3, "nan_opt": None}
    assert set(cfg["inputs"]) == {"train", "synthetic"}  # None and folders are skipped
    for key, path in (("train", a), ("synthetic", b)):
        rec = cfg["inputs"][key]
        assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert rec["bytes"] == path.stat().st_size
        assert rec["path"] == str(path.resolve())
    assert file_fingerprint(a)["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    env = cfg["environment"]
    assert env["rote"] and env["numpy"] == np.__version__ and env["python"]
    assert cfg["created"].endswith("+00:00")


# ---------------------------------------------------------------------------------------------- seeding


def test_make_rng_requires_a_seed():
    with pytest.raises(ConfigError, match="seed"):
        make_rng(None)


def test_make_rng_is_deterministic():
    a, b, c = make_rng(42), make_rng(42), make_rng(43)
    x, y, z = a.random(8), b.random(8), c.random(8)
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x, z)
    np.testing.assert_array_equal(make_rng(np.int64(42)).random(8), x)
    g = np.random.default_rng(1)
    assert make_rng(g) is g


def test_make_rng_does_not_touch_global_state():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    make_rng(5).random(10)
    np.testing.assert_array_equal(np.random.random(3), expected)
