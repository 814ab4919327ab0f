"""`rote llm` commands (being built for the open issue; the app is registered in rote.cli.main)."""

from __future__ import annotations

import typer

app = typer.Typer(help="llm commands.", no_args_is_help=True)
