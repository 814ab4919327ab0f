"""report.html and plots of a tabular experiment grid (`rote tabular experiment`).

Plots (PNG, also embedded in report.html):
- `mem_vs_epoch.png`: memorization ratio against training epoch, one line per method (mean over seeds, band =
  +- one std), from each point's MemorizationHook history (paper Fig. 2);
- `mem_vs_size.png`: final memorization ratio against the training fraction (paper Fig. 3), when swept;
- `mem_vs_features.png`: final memorization ratio against the kept feature fraction, when swept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.runs import RunFolder
from rote.report.html import Report, format_value
from rote.report.plots import figure_to_png, new_figure


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of `frame` (index not shown); cells as in report tables."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for values in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(format_value(v, 4).replace("|", "\\|") for v in values) + " |")
    return "\n".join(lines) + "\n"


def _label(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{row[k]}" if k in ("generator", "augmentation", "dataset") else f"{k}={row[k]}"
                     for k in keys) or "all"


def _lines_plot(frame: pd.DataFrame, x: str, y: str, err: str, keys: list[str], *, xlabel: str, title: str,
                logx: bool = False):
    fig = new_figure(7.5, 4.0)
    ax = fig.add_subplot()
    groups = frame.groupby(keys, sort=False, dropna=False) if keys else [((), frame)]
    for key, g in groups:
        g = g.sort_values(x)
        key = key if isinstance(key, tuple) else (key,)
        xs, ys = g[x].to_numpy(float), 100 * g[y].to_numpy(float)
        sd = 100 * np.nan_to_num(g[err].to_numpy(float))
        line, = ax.plot(xs, ys, marker="o", ms=3, label=_label(dict(zip(keys, key)), keys))
        ax.fill_between(xs, ys - sd, ys + sd, color=line.get_color(), alpha=0.15, linewidth=0)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("memorization ratio (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(ax.get_lines()) > 1:
        ax.legend(fontsize=8)
    return fig


def experiment_plots(result) -> dict[str, bytes]:
    """PNG bytes by file name; a sweep plot only when its axis has more than one value."""
    out: dict[str, bytes] = {}
    axes = result.axes()
    curves = result.curves
    if not curves.empty:
        keys = [a for a in axes if a in curves.columns and curves[a].nunique() > 1]
        out["mem_vs_epoch.png"] = figure_to_png(_lines_plot(
            curves, "epoch", "mem_mean", "mem_std", keys, xlabel="epoch",
            title="Memorization during training (one run per point)"))
    table = result.paper_table
    for axis, name, xlabel, title in (
            ("train_fraction", "mem_vs_size.png", "fraction of training rows", "Training-set size"),
            ("feature_fraction", "mem_vs_features.png", "fraction of feature columns kept", "Feature dimension")):
        if axis in table.columns and table[axis].nunique() > 1:
            keys = [a for a in axes if a != axis and a in table.columns and table[a].nunique() > 1]
            out[name] = figure_to_png(_lines_plot(table, axis, "mem_ratio_mean", "mem_ratio_std", keys,
                                                  xlabel=xlabel, title=title, logx=axis == "train_fraction"))
    return out


def experiment_report(result, *, plots: Mapping[str, bytes], config: Mapping[str, Any] | None = None,
                      title: str = "Tabular memorization experiment") -> str:
    """report.html of an experiment grid as one self-contained HTML string."""
    report = Report(title, subtitle="Fang et al., ICML 2025: memorization of tabular diffusion models, "
                                    "TabCutMix and TabCutMixPlus")
    fixed = result.grid.get("fixed", {})
    report.add_summary({"grid points": result.n_points, "finished": result.n_done,
                        "reused from an earlier run": result.n_reused, "failed": result.n_failed,
                        **{f"{k}": v for k, v in fixed.items() if k in ("dataset", "generator", "epochs", "rows",
                                                                         "preset", "distance")}})
    report.add_heading("Memorization and quality (mean ± std over seeds)")
    if result.paper_table.empty:
        report.add_text("No grid point finished; see the failures below.")
    else:
        report.add_table(result.formatted_table(), caption="Memorization ratio (d1/d2 < 1/3, lower is better), its "
                         "relative reduction against no augmentation, and quality (higher is better; DCR: ~50% "
                         "is ideal)", max_rows=500)
    report.add_text("Memorization ratio: the share of synthetic rows whose nearest training row is less than a "
                    "third as far as the second nearest, against the original (not augmented) training rows. "
                    "Improv.: (none - method) / none of the mean ratios, same other settings. OOD %: share of the "
                    "augmented rows a real-versus-perturbed classifier flags.", note=True)
    captions = {"mem_vs_epoch.png": "Memorization ratio during training, measured by a hook every few epochs "
                                    "(mean over seeds; band: ± one std).",
                "mem_vs_size.png": "Final memorization ratio against the share of training rows used.",
                "mem_vs_features.png": "Final memorization ratio against the share of feature columns kept."}
    for name, png in plots.items():
        report.add_heading(captions[name].split(",")[0].split(" against")[0].rstrip("."), level=3)
        report.add_image(png, alt=name, caption=captions[name])
    if not result.failures.empty:
        report.add_heading("Failed points")
        report.add_table(result.failures, caption="Run the same command again to retry them (finished points "
                         "are kept).")
    cols = [c for c in result.points.columns if c not in ("error",)]
    report.add_heading("All points")
    report.add_table(result.points[cols], caption="One row per grid point (points.parquet)", max_rows=500, digits=4)
    if config:
        report.add_config(config)
    return report.render()


def save_experiment_report(result, run: RunFolder, *, config: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write the plots and report.html into `run`; returns their paths keyed by file stem."""
    plots = experiment_plots(result)
    paths = {Path(name).stem: run.write_bytes(name, png) for name, png in plots.items()}
    paths["report"] = run.write_text("report.html", experiment_report(result, plots=plots, config=config))
    return paths



def quality_html(result, *, config: Mapping[str, Any] | None = None) -> str:
    """report.html of `rote tabular quality` (a QualityResult)."""
    def pct(v: Any) -> str:
        return "n/a" if v is None or v != v else f"{100 * float(v):.2f}%"

    report = Report("Synthetic table quality", subtitle="shape, trend, α-precision, β-recall, C2ST, MLE, DCR")
    report.add_summary({"shape": pct(result.shape), "trend": pct(result.trend),
                        "α-precision": pct(result.alpha_precision), "β-recall": pct(result.beta_recall),
                        "C2ST (logistic detection)": pct(result.c2st), "MLE (AUC on real test)": pct(result.mle_auc),
                        "DCR share closer to train": pct(result.dcr_share), "real rows": result.n_real,
                        "synthetic rows": result.n_synthetic})
    for note in result.notes:
        report.add_text(note, note=True)
    report.add_heading("Per column: shape")
    report.add_table(result.shape_columns, caption="1 - KS (numeric) or 1 - TVD (categorical)", max_rows=200)
    report.add_heading("Per column pair: trend")
    report.add_table(result.trend_pairs, max_rows=200)
    if config:
        report.add_config(config)
    return report.render()
