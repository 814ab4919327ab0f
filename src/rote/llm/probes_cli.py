"""`rote llm probe`, `rote llm suppress` and `rote llm probe-demo` (activation probes), registered on the llm app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the probe verbs to `app` (the `rote llm` typer app)."""
