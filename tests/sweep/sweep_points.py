"""Point functions for the sweep tests. A plain module (put on sys.path by the tests) so that spawned worker
processes can import it; every call leaves a marker file, so tests count calls across processes."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd


def _mark(params: dict) -> None:
    calls = Path(params["log_dir"])
    calls.mkdir(parents=True, exist_ok=True)
    (calls / f"x{params['x']}-s{params.get('seed', 0)}-{uuid.uuid4().hex}").touch()


def count_calls(log_dir: Path) -> int:
    return len(list(Path(log_dir).glob("x*"))) if Path(log_dir).is_dir() else 0


def square(params: dict, work_dir: Path) -> dict:
    """x**2 plus seeded noise (from the global numpy RNG the runner seeds and from a local generator),
    a small table, and a nested dict."""
    _mark(params)
    noise = float(np.random.default_rng(params.get("seed", 0)).normal())
    global_draw = float(np.random.random())  # seeded by the runner from the seed axis
    table = pd.DataFrame({"step": np.arange(3), "value": params["x"] * np.arange(3.0)})
    return {
        "y": params["x"] ** 2 + noise,
        "global_draw": global_draw,
        "pid": os.getpid(),
        "nested": {"a": params["x"], "b": "text"},
        "curve": table,
    }


def flaky(params: dict, work_dir: Path) -> dict:
    """Fails on x == 2 while the file `fail` exists in log_dir."""
    _mark(params)
    if params["x"] == 2 and (Path(params["log_dir"]) / "fail").exists():
        raise ValueError("x = 2 is broken today")
    return {"y": params["x"] ** 2}


def interrupt_at_two(params: dict, work_dir: Path) -> dict:
    """Raises KeyboardInterrupt (not an Exception: it escapes the runner like Ctrl-C) at x == 2 while the file
    `interrupt` exists in log_dir."""
    _mark(params)
    if params["x"] == 2 and (Path(params["log_dir"]) / "interrupt").exists():
        raise KeyboardInterrupt
    return {"y": params["x"] ** 2}


def hang_at_two(params: dict, work_dir: Path) -> dict:
    """Blocks at x == 2 while the file `block` exists in log_dir (the test kills the whole grid meanwhile)."""
    _mark(params)
    while params["x"] == 2 and (Path(params["log_dir"]) / "block").exists():
        time.sleep(0.1)
    return {"y": params["x"] ** 2}
