"""report.html and plots for `rote sharpness` runs: the ROC curves of every statistic against the nearest-neighbour
labels, the eigen-spectra of memorized versus generalized generations (as the paper's figures 2 and 3), the
detection table and the per-generation scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from rote.core.privacy import roc_curve
from rote.report.html import Report
from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, figure_to_png, new_figure
from rote.sharpness.experiment import SharpnessResult, statistic_columns
from rote.sharpness.measure import STATISTICS

_WHAT = (
    "Jeon, Kim & No (ICML 2025) read memorization off the curvature of the learned log density: the Hessian "
    "H = ds/dx of the score s = grad log p_t. Memorized generations sit on sharp, isolated peaks: many large "
    "negative eigenvalues. Each statistic below is computed on the sampling trajectory at step t (column suffix "
    "_t<step>; t = T - 1 is the first sampling step, on the initial noise), higher = sharper. Ground truth: a "
    "generation is memorized when its nearest distinct training point is closer than 1/3 of the second nearest."
)


def roc_plot(result: SharpnessResult, top: int = 6) -> bytes:
    """ROC curves of the `top` statistics by AUC (the paper's statistic always included)."""
    fig = new_figure(6.5, 5.0)
    ax = fig.add_subplot()
    det = {k: v for k, v in result.detection.items() if v["auc"] is not None and np.isfinite(v["auc"])}
    names = sorted(det, key=lambda k: -det[k]["auc"])[:top]
    if result.paper_statistic in det and result.paper_statistic not in names:
        names.append(result.paper_statistic)
    y = result.scores["memorized"].to_numpy().astype(bool)
    for name in names:
        f, t, _ = roc_curve(result.scores[name].to_numpy(np.float64), y)
        lw = 2.5 if name == result.paper_statistic else 1.2
        ax.plot(f, t, lw=lw, label=f"{name} (AUC {det[name]['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
    if not names:
        ax.text(0.5, 0.5, "ROC undefined: the labels hold one class only", ha="center")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("Detecting memorized generations")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return figure_to_png(fig)


def spectra_plot(result: SharpnessResult, max_lines: int = 15) -> bytes:
    """Eigenvalues by rank, one line per generation (up to `max_lines` per group), memorized in red, the rest in
    blue; one panel per step (the paper plots them at t = T - 1 and at small t)."""
    sp = result.spectra
    steps = sorted(sp["t"].unique().tolist(), reverse=True) if len(sp) else []
    fig = new_figure(4.2 * max(1, len(steps)), 3.8)
    mem = result.scores.set_index("sample")["memorized"]
    if not steps:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no full spectra in this run (dimension too large: Arnoldi only)", ha="center")
        ax.set_axis_off()
        return figure_to_png(fig)
    for i, t in enumerate(steps):
        ax = fig.add_subplot(1, len(steps), i + 1)
        part = sp[sp["t"] == t]
        for flag, color in ((False, COLOR_KEPT), (True, COLOR_MEMORIZED)):
            ids = [s for s in part["sample"].unique() if bool(mem.get(s, False)) == flag][:max_lines]
            for j, s in enumerate(ids):
                ev = part[part["sample"] == s].sort_values("rank")["eigenvalue"].to_numpy()
                ax.plot(
                    np.arange(len(ev)),
                    ev,
                    color=color,
                    lw=0.7,
                    alpha=0.6,
                    label=("memorized" if flag else "not memorized") if j == 0 else None,
                )
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("eigenvalue rank (ascending)")
        ax.set_ylabel("eigenvalue of H")
        ax.set_title(f"t = {t}")
        ax.legend(frameon=False, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    return figure_to_png(fig)


def detection_table(result: SharpnessResult) -> pd.DataFrame:
    rows = []
    for name, v in result.detection.items():
        base = name.rsplit("_t", 1)[0]
        row = {
            "statistic": name,
            "meaning": STATISTICS.get(base, ""),
            "auc": v["auc"],
            "tpr_at_1pct_fpr": v["tpr_at_1pct_fpr"],
        }
        iv = result.auc_intervals.get(name)
        if iv:
            row["auc_low"], row["auc_high"] = iv.get("low"), iv.get("high")
        if result.detection_groups:
            g = result.detection_groups.get(name, {})
            row[f"auc_n{result.group_size}"] = g.get("auc")
            row[f"tpr_at_1pct_fpr_n{result.group_size}"] = g.get("tpr_at_1pct_fpr")
        if result.detection_by_mode:
            row["auc_vs_mode"] = result.detection_by_mode.get(name, {}).get("auc")
        rows.append(row)
    return pd.DataFrame(rows)


def sharpness_outputs(result: SharpnessResult, *, title: str, subtitle: str = "") -> dict[str, Any]:
    """`plots` (roc, spectra), `tables` (detection) and the `report` builder for `RunFolder.finish`."""
    roc, spec = roc_plot(result), spectra_plot(result)
    table = detection_table(result)
    report = Report(title, subtitle=subtitle)
    paper = result.detection.get(result.paper_statistic, {})
    items: dict[str, Any] = {
        "generations": result.n_generations,
        "memorized (d1/d2 < 1/3)": f"{result.n_memorized} ({result.n_memorized / max(result.n_generations, 1):.1%})",
        "paper statistic": result.paper_statistic,
        "its AUC": paper.get("auc"),
        "its TPR at 1% FPR": paper.get("tpr_at_1pct_fpr"),
    }
    if result.detection_groups:
        g = result.detection_groups.get(result.paper_statistic, {})
        items[f"its AUC, {result.group_size} generations per class prompt"] = g.get("auc")
    report.add_summary(items)
    report.add_heading("What is measured")
    report.add_text(_WHAT)
    report.add_heading("Detection")
    report.add_image(
        roc,
        alt="ROC curves of the sharpness statistics",
        caption="Thick line: the paper's statistic (or its stand-in for an unconditional model).",
    )
    report.add_table(table, caption="AUC and TPR at 1% FPR of each statistic (95% bootstrap interval of the AUC)")
    report.add_heading("Eigen-spectra")
    report.add_image(
        spec,
        alt="Eigen-spectra of memorized and generalized generations",
        caption="Eigenvalues of H by rank; red: memorized generations, blue: the rest.",
    )
    report.add_heading("Per-generation scores")
    cols = ["sample", "class", "ratio", "memorized"] + statistic_columns(result.scores)[:6]
    report.add_table(result.scores[[c for c in cols if c in result.scores]], caption="First rows", max_rows=50)
    if result.timings:
        report.add_summary({k: v for k, v in result.timings.items()}, caption="Seconds")

    def render(config: Mapping[str, Any]) -> str:
        report.add_config(config)
        return report.render()

    return {"plots": {"roc": roc, "spectra": spec}, "tables": {"detection": table}, "report": render}


# ---------------------------------------------------------------------------------------------- grids


def grid_table(result: Any) -> pd.DataFrame:
    """One row per (setting, statistic): mean AUC and TPR at 1% FPR over seeds with their t-intervals."""
    rows = []
    for setting, stats in result.detection.items():
        for name, v in stats.items():
            a, t = v["auc"], v["tpr_at_1pct_fpr"]
            rows.append(
                {
                    "setting": setting,
                    "statistic": name + (" (paper)" if name == result.paper_statistic else ""),
                    "seeds": v["n_seeds"],
                    "auc": a["estimate"],
                    "auc_low": a["low"],
                    "auc_high": a["high"],
                    "tpr_at_1pct_fpr": t["estimate"],
                    "tpr_low": t["low"],
                    "tpr_high": t["high"],
                    **{
                        f"{k}{suffix}": v[k][key]
                        for k in ("auc_grouped", "auc_vs_mode")
                        if k in v
                        for suffix, key in (("", "estimate"), ("_low", "low"), ("_high", "high"))
                    },
                }
            )
    return pd.DataFrame(rows)


def grid_plot(result: Any, top: int = 8) -> bytes:
    """AUC per seed (dots) and mean with t-interval (bar) of the `top` statistics by mean AUC, per setting."""
    table = grid_table(result)
    fig = new_figure(8.5, 4.2)
    ax = fig.add_subplot()
    settings = list(result.detection)
    first = table[table.setting == settings[0]].sort_values("auc", ascending=False)
    names = [s.replace(" (paper)", "") for s in first.statistic.head(top)]
    if result.paper_statistic and result.paper_statistic not in names:
        names[-1:] = [result.paper_statistic]
    width = 0.8 / max(len(settings), 1)
    colors = [COLOR_KEPT, COLOR_MEMORIZED, "#6a994e", "#777777"]
    for j, setting in enumerate(settings):
        per = result.per_seed
        if setting != "default":
            per = per[np.isclose(per.second_order_weight.astype(float), float(setting.split("=", 1)[1]))]
        for i, name in enumerate(names):
            x = i + (j - (len(settings) - 1) / 2) * width
            v = result.detection[setting].get(name)
            if v is None:
                continue
            a = v["auc"]
            lo = a["low"] if a["low"] is not None and np.isfinite(a["low"]) else a["estimate"]
            hi = a["high"] if a["high"] is not None and np.isfinite(a["high"]) else a["estimate"]
            ax.bar(x, a["estimate"], width * 0.9, color=colors[j % len(colors)], alpha=0.35, label=None)
            ax.errorbar(x, a["estimate"], yerr=[[a["estimate"] - lo], [hi - a["estimate"]]], color="black", capsize=3)
            vals = per.loc[per.statistic == name, "auc"].to_numpy(float)
            ax.scatter(np.full(len(vals), x), vals, s=12, color=colors[j % len(colors)], zorder=3)
    ax.axhline(0.5, color="#999999", lw=0.8, ls="--")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n + (" *" if n == result.paper_statistic else "") for n in names], rotation=30, ha="right")
    ax.set_ylabel("AUC (memorized vs not)")
    ax.set_ylim(0, 1.02)
    handles = [Patch(color=colors[j % len(colors)], alpha=0.6, label=s) for j, s in enumerate(settings)]
    ax.legend(handles=handles, frameon=False, fontsize=8)
    ax.set_title("Detection AUC per seed (dots), mean and 95% t-interval over seeds; * the paper's statistic")
    return figure_to_png(fig)


def grid_outputs(result: Any, *, title: str) -> dict[str, Any]:
    """`plots` (auc per seed), `tables` (detection over seeds) and the `report` builder for `RunFolder.finish`."""
    table = grid_table(result)
    plot = grid_plot(result)
    report = Report(title, subtitle=f"{result.setup}: {len(result.seeds)} seed(s)")
    first = next(iter(result.detection.values()), {})
    paper = first.get(result.paper_statistic, {}).get("auc", {})
    report.add_summary(
        {
            "setup": result.setup,
            "seeds": ", ".join(map(str, result.seeds)),
            "settings": ", ".join(result.settings),
            "paper statistic": result.paper_statistic,
            "its mean AUC": paper.get("estimate"),
            "95% t-interval over seeds": (
                f"[{paper['low']:.3f}, {paper['high']:.3f}]"
                if paper.get("low") is not None and np.isfinite(paper["low"])
                else "one seed: no interval"
            ),
            "failed points": result.n_failed,
        }
    )
    report.add_heading("What is measured")
    report.add_text(
        _WHAT + " Each seed retrains the model and regenerates; the interval is over seeds (Student t), so it "
        "includes the variation from training, unlike the per-run bootstrap over generations."
    )
    report.add_heading("Detection over seeds")
    report.add_image(plot, alt="AUC of each statistic per seed with the mean and its interval")
    report.add_table(table, caption="Mean over seeds and 95% Student-t interval (empty with one seed)")
    report.add_heading("Grid points")
    report.add_table(result.points, caption="One row per grid point (status, seconds, counts)", max_rows=100)

    def render(config: Mapping[str, Any]) -> str:
        report.add_config(config)
        return report.render()

    return {"plots": {"grid_auc": plot}, "tables": {"detection": table}, "report": render}
