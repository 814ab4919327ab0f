"""report.html and plots for `rote adversarial` runs."""

from __future__ import annotations
