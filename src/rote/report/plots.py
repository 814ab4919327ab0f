"""Plots for rote reports, drawn with matplotlib's Agg canvas (never needs a display).

Figures are built as `matplotlib.figure.Figure` objects on an Agg canvas, not through pyplot, so importing this
module neither changes the user's matplotlib backend nor registers figures with pyplot. Each plot function
returns the figure; `figure_to_png` turns it into PNG bytes for a run folder or a `Report`.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from rote.core.errors import DataError

DPI = 110
COLOR_MEMORIZED = "#d1495b"
COLOR_KEPT = "#4a7fb0"
COLOR_MIXED = "#e8a33d"


def new_figure(width: float = 8.5, height: float = 4.0) -> Figure:
    """A figure on an Agg canvas (no pyplot, no display)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_to_png(fig: Any, dpi: int = DPI) -> bytes:
    """PNG bytes of a matplotlib figure, then close it. Deterministic: no metadata that varies between runs."""
    if not isinstance(fig, Figure):
        raise TypeError(f"figure_to_png needs a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # a figure made with pyplot: release it from pyplot's registry too
        pyplot.close(fig)
    return buf.getvalue()


def ratio_histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    threshold: float,
    undefined: int = 0,
    title: str = "Distance ratio d1/d2 of synthetic rows",
) -> Figure:
    """Bar histogram of the distance ratio d1/d2 (nearest / second-nearest training row) in [0, 1].

    edges: (n_bins + 1,) increasing bin edges; counts: (n_bins,) synthetic rows per bin.
    threshold: rows with ratio < threshold are memorized; drawn as a dashed vertical line. Bins entirely left
        of it are coloured as memorized, a bin that contains it in a third colour (its rows are mixed).
    undefined: number of 0/0 ratios (not in any bin); noted in the legend.
    """
    e = np.asarray(edges, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if e.ndim != 1 or c.ndim != 1 or e.size != c.size + 1 or c.size == 0:
        raise DataError(
            f"ratio_histogram: need n_bins + 1 edges for n_bins counts (n_bins >= 1), "
            f"got {e.size} edges and {c.size} counts"
        )
    if np.any(np.diff(e) <= 0):
        raise DataError("ratio_histogram: edges must be strictly increasing")
    left, right = e[:-1], e[1:]
    colors = np.where(right <= threshold, COLOR_MEMORIZED, np.where(left < threshold, COLOR_MIXED, COLOR_KEPT))

    fig = new_figure()
    ax = fig.add_subplot()
    ax.bar(left, c, width=right - left, align="edge", color=list(colors), edgecolor="white", linewidth=0.6)
    ax.axvline(threshold, color="#1f2328", linestyle="--", linewidth=1.3)

    handles = [
        Patch(color=COLOR_MEMORIZED, label=f"memorized (d1/d2 < {threshold:.3g})"),
        Patch(color=COLOR_KEPT, label="not memorized"),
    ]
    if np.any(colors == COLOR_MIXED):
        handles.append(Patch(color=COLOR_MIXED, label="bin contains the threshold"))
    handles.append(Line2D([], [], color="#1f2328", linestyle="--", label=f"threshold {threshold:.3g}"))
    handles.append(Line2D([], [], linestyle="none", label=f"undefined 0/0 ratios: {int(undefined):,} (not shown)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)

    ax.set_xlim(min(0.0, e[0]), max(1.0, e[-1]))
    ax.set_xlabel("d1 / d2: distance to nearest / second-nearest training row")
    ax.set_ylabel("synthetic rows")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(1.0, float(c.max())) * 1.05)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def seeds_bars(ax: Any, over_seeds: Mapping[str, Mapping[str, float]], per_seed: Any, colors: Sequence[str]) -> None:
    """Draw, per metric of a grid over seeds (in `over_seeds` order), the mean as a bar, its interval as an error
    bar (where it exists: none with one seed) and every seed's value as a dot. over_seeds: metric ->
    {"estimate", "low", "high"}; per_seed: a table with one column per metric; colors: one per metric."""
    for i, (m, color) in enumerate(zip(over_seeds, colors)):
        v = over_seeds[m]
        if np.isfinite(v["estimate"]):
            ax.bar(i, v["estimate"], 0.6, color=color, alpha=0.35)
        if v["low"] is not None and np.isfinite(v["low"]):
            ax.errorbar(i, v["estimate"], yerr=[[v["estimate"] - v["low"]], [v["high"] - v["estimate"]]], color="k")
        vals = np.asarray(per_seed[m], dtype=float)
        ax.scatter(np.full(len(vals), i), vals, s=14, color=color, zorder=3)
    ax.set_xticks(range(len(over_seeds)))


def over_seeds_table(over_seeds: Mapping[str, Mapping[str, Any]]) -> Any:
    """One row per metric: the mean over seeds and its interval (the `level` key dropped)."""
    import pandas as pd

    return pd.DataFrame(
        [{"metric": m, **{k: v for k, v in iv.items() if k != "level"}} for m, iv in over_seeds.items()]
    )
