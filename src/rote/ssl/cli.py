"""`rote ssl ...`: train SSL and supervised encoders, localize memorization per layer and unit, prune by UnitMem.
Each command parses its options, calls the library and ends with `RunFolder.finish`."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Memorization in SSL vision encoders (Wang et al., NeurIPS 2024): train, localize, prune, demo.",
    no_args_is_help=True,
)
