"""`rote llm detect-dataset` and `rote llm memhunter-demo` (MemHunter), registered on the llm app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the MemHunter verbs to `app` (the `rote llm` typer app)."""
