"""`rote adversarial ...`: PGD-AT, TRADES, DP-SGD and DeMem training, membership-inference evaluation, demo.
Each command parses its options, calls the library and ends with `RunFolder.finish`."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Adversarial training with de-memorization (DeMem) and membership-inference evaluation.",
    no_args_is_help=True,
)
