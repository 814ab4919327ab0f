"""Helpers shared by the test packages (on sys.path through pytest's `pythonpath = ["tests"]`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rote.cli.main import main


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the `rote` CLI in-process; returns (exit code, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def sha(path: Path) -> str:
    """SHA-256 of a file (tests check that rote never changes its inputs)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def kill_when_ready(script: str, ready: Path, args: tuple[str, ...] = (), timeout: float = 120.0) -> int:
    """Run `script` in a fresh interpreter and SIGKILL it once it creates the file `ready` (a kill at a known point
    of a training run or a checkpoint save); returns the child's pid."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not Path(ready).exists():
            if proc.poll() is not None:
                raise AssertionError(f"child exited early: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("the child never reached the kill point")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid
