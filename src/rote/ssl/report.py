"""report.html and plots for `rote ssl` runs."""

from __future__ import annotations
