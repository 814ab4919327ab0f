"""`rote sharpness ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="sharpness", no_args_is_help=True)
