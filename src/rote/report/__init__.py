"""Reports: result objects -> self-contained HTML (`Report`) and PNG plots (matplotlib, Agg canvas)."""

from rote.report.html import Report
from rote.report.plots import figure_to_png, ratio_histogram

__all__ = ["Report", "figure_to_png", "ratio_histogram"]
