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
