"""`rote spurious ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="spurious", no_args_is_help=True)
