"""Plots and a report section for augmenters and synthetic-data quality.

- `association_heatmap`: the (C, C) association matrix TabCutMixPlus clusters, columns grouped by cluster.
- `cluster_dendrogram`: the average-linkage tree on 1 - association with the cut line.
- `quality_bars`: quality metrics (shape, trend, alpha-precision, beta-recall, C2ST, MLE, DCR share) of several
  synthetic tables side by side.
- `augment_report`: one self-contained report.html for a fitted augmenter (plus optional quality results and OOD
  rates of several methods).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rote.core.errors import ConfigError
from rote.report.html import Report
from rote.report.plots import figure_to_png, new_figure

QUALITY_METRICS: tuple[tuple[str, str], ...] = (
    ("shape", "Shape"), ("trend", "Trend"), ("alpha_precision", "α-precision"), ("beta_recall", "β-recall"),
    ("c2st", "C2ST"), ("mle_auc", "MLE AUC"), ("dcr_share", "DCR share"),
)
"""(attribute of QualityResult, label) in the order of the paper's tables."""


def _check_square(association: pd.DataFrame) -> None:
    if association.shape[0] != association.shape[1] or list(association.index) != list(association.columns):
        raise ConfigError("association must be a square frame with the same labels on its index and columns")


def association_heatmap(association: pd.DataFrame, clusters: Sequence[Sequence[str]] | None = None,
                        title: str = "Column association (label included)") -> Figure:
    """Heat map of a (C, C) association frame in [0, 1]; columns ordered cluster by cluster (when `clusters` is
    given) with each multi-column cluster outlined. Cells show values to two decimals when C <= 20."""
    _check_square(association)
    order = [c for cl in clusters for c in cl] if clusters else list(association.columns)
    if sorted(order) != sorted(association.columns):
        raise ConfigError("clusters must list every column of the association exactly once")
    m = association.loc[order, order].to_numpy(np.float64)
    n = len(order)
    size = max(4.5, min(12.0, 0.45 * n + 2.5))
    fig = new_figure(size + 1.2, size)
    ax = fig.add_subplot()
    im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), order, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), order, fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if m[i, j] > 0.6 else "white")
    if clusters:
        start = 0
        for cl in clusters:
            k = len(cl)
            if k > 1:
                ax.add_patch(_rect(start - 0.5, k))
            start += k
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="|Pearson r| · Cramér's V · η")
    return fig


def _rect(at: float, k: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((at, at), k, k, fill=False, edgecolor="#d1495b", linewidth=2.0)


def cluster_dendrogram(association: pd.DataFrame, cut: float = 0.3,
                       title: str = "Average-linkage clustering on 1 − association") -> Figure:
    """Dendrogram of the columns (average linkage on 1 - association) with the cut as a dashed line: columns
    joined below the line form one TabCutMixPlus cluster."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    _check_square(association)
    cols = [str(c) for c in association.columns]
    fig = new_figure(max(6.0, 0.4 * len(cols) + 2), 4.0)
    ax = fig.add_subplot()
    if len(cols) < 2:
        ax.text(0.5, 0.5, "one column: nothing to cluster", ha="center", va="center", transform=ax.transAxes)
        return fig
    a = association.to_numpy(np.float64)
    dist = 1.0 - np.clip(np.abs((a + a.T) / 2), 0.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="average")
    dendrogram(z, labels=cols, ax=ax, color_threshold=cut, above_threshold_color="#8a8f98", leaf_rotation=60)
    ax.axhline(cut, color="#d1495b", linestyle="--", linewidth=1.2, label=f"cut {cut:g}")
    ax.set_ylabel("1 − association")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper right")
    ax.set_title(title)
    for label in ax.get_xticklabels():
        label.set_fontsize(8)
        label.set_ha("right")
    return fig


def quality_bars(results: Mapping[str, Any], title: str = "Quality of synthetic tables") -> Figure:
    """Grouped bars: one group per metric of `QUALITY_METRICS`, one bar per entry of `results`
    (name -> QualityResult or a dict with those keys; values are fractions in [0, 1]; missing ones are skipped)."""
    if not results:
        raise ConfigError("quality_bars needs at least one result")
    names = list(results)

    def get(r: Any, key: str) -> float:
        v = r.get(key) if isinstance(r, Mapping) else getattr(r, key, None)
        return np.nan if v is None else float(v)

    metrics = [(k, lab) for k, lab in QUALITY_METRICS if any(np.isfinite(get(results[n], k)) for n in names)]
    fig = new_figure(max(7.0, 1.2 * len(metrics) + 2), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(metrics))
    for i, n in enumerate(names):
        vals = np.array([get(results[n], k) for k, _ in metrics])
        ax.bar(x + (i - (len(names) - 1) / 2) * width, np.nan_to_num(vals), width, label=n)
    ax.set_xticks(x, [lab for _, lab in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (higher = closer to real; DCR ideal ≈ train share)")
    ax.legend(fontsize=8, ncols=min(4, len(names)))
    ax.set_title(title)
    return fig


def quality_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """One row per result, the metrics of `QUALITY_METRICS` as percentages (2 decimals), like the paper."""
    rows = []
    for name, r in results.items():
        row: dict[str, Any] = {"method": name}
        for key, label in QUALITY_METRICS:
            v = r.get(key) if isinstance(r, Mapping) else getattr(r, key, None)
            row[label] = None if v is None or not np.isfinite(v) else round(100 * float(v), 2)
        rows.append(row)
    return pd.DataFrame(rows)


def augment_report(augmenter: Any, *, quality: Mapping[str, Any] | None = None,
                   ood: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None,
                   title: str = "Training-set augmentation") -> str:
    """report.html (one self-contained string) for a fitted augmenter.

    augmenter: fitted; for TabCutMixPlus its association heat map, dendrogram and clusters are shown.
    quality: name -> QualityResult (or dict), shown as a table and grouped bars.
    ood: name -> OODResult (or a float rate), shown as a table.
    """
    if not hasattr(augmenter, "table_"):
        raise ConfigError("augment_report needs a fitted augmenter (call fit(table, schema) first)")
    name = type(augmenter).__name__
    report = Report(title, subtitle=f"{name} fitted on {len(augmenter.table_):,} rows x {len(augmenter.columns_)} "
                                    "columns")
    summary: dict[str, Any] = {"augmenter": name, "ratio": getattr(augmenter, "ratio", None),
                               "mode": getattr(augmenter, "mode", None), "seed": getattr(augmenter, "seed", None)}
    clusters = getattr(augmenter, "clusters_", None)
    if clusters is not None:
        summary["clusters"] = len(clusters)
        summary["multi-column clusters"] = sum(len(c) > 1 for c in clusters)
    report.add_summary({k: v for k, v in summary.items() if v is not None})
    if clusters is not None:
        report.add_heading("Column association and clusters")
        report.add_text("TabCutMixPlus swaps whole clusters of associated columns between two rows of the same "
                        "class, so values that go together (e.g. education and education-num) stay together. "
                        "Association: |Pearson r| for two numeric columns, bias-corrected Cramér's V for two "
                        "categorical ones, correlation ratio η for a mixed pair; clusters: average linkage on "
                        f"1 − association cut at {augmenter.cut:g}.")
        report.add_figure(association_heatmap(augmenter.association_, clusters),
                          alt="association heat map", caption="Columns ordered by cluster; red squares outline "
                                                              "clusters of more than one column.")
        report.add_figure(cluster_dendrogram(augmenter.association_, augmenter.cut), alt="dendrogram",
                          caption="Columns joined below the dashed line form one cluster.")
        report.add_table(pd.DataFrame({"cluster": range(1, len(clusters) + 1),
                                       "columns": [", ".join(c) for c in clusters]}), caption="Clusters")
    if ood:
        report.add_heading("Out-of-distribution rate of new rows")
        rows = []
        for k, v in ood.items():
            rate = v if isinstance(v, (int, float)) else v.ood_rate
            acc = None if isinstance(v, (int, float)) else v.detector_accuracy
            rows.append({"method": k, "OOD rate %": round(100 * rate, 2),
                         "detector accuracy %": None if acc is None else round(100 * acc, 2)})
        report.add_table(pd.DataFrame(rows), caption="Share of new rows a real-vs-perturbed classifier flags as "
                                                     "perturbed (Fang et al. 2025, App. D.4.6)")
    if quality:
        report.add_heading("Quality")
        report.add_table(quality_table(quality), caption="Percent; higher is closer to the real data")
        report.add_figure(quality_bars(quality), alt="quality bars")
    if config is not None:
        report.add_config(config)
    return report.render()


def save_figure(fig: Figure) -> bytes:
    """PNG bytes of a figure from this module (for a run folder)."""
    return figure_to_png(fig)
