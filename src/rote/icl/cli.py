"""`rote icl ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="icl", no_args_is_help=True)
