"""report.html and plots for `rote fairness` runs (metrics, memorization, bound, audit).

One builder per result type; each writes the headline numbers, a plain statement of what is measured, a per-class
gap plot, the result's tables and the run configuration. `fairness_outputs(result, ...)` gives what
`RunFolder.finish` writes besides the result's own tables and results.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from rote.report.html import Report
from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, figure_to_png, new_figure

_DEFINITIONS = (
    "Additive multi-class metrics (Pepin, Igel & Selvan, arXiv 2412.09254): statistical parity sums over predicted "
    "classes k the gap between groups of P(h=k | A); equal opportunity sums over true classes y the gap of "
    "P(h=y | Y=y, A); equalized odds sums over every confusion-matrix entry the gap of P(h=k | Y=y, A). A gap is "
    "max - min over groups (between_groups) or the largest distance of a group to the whole population "
    "(to_overall). Definitions and normalisations: docs/fairness.md."
)


def gap_plot(classes: list[str], series: Mapping[str, np.ndarray], title: str, ylabel: str = "gap") -> bytes:
    """Grouped bar chart of per-class gaps: one bar series per entry of `series` ((C,) arrays, NaN = undefined)."""
    fig = new_figure(8.5, 3.6)
    ax = fig.add_subplot()
    x = np.arange(len(classes))
    k = max(1, len(series))
    width = 0.8 / k
    colors = [COLOR_KEPT, COLOR_MEMORIZED, "#e8a33d", "#6a994e"]
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(
            x + (i - (k - 1) / 2) * width,
            np.nan_to_num(np.asarray(vals, float)),
            width,
            label=name,
            color=colors[i % len(colors)],
        )
    ax.set_xticks(x, classes, rotation=45 if len(classes) > 8 else 0, ha="right" if len(classes) > 8 else "center")
    ax.set_xlabel("class")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return figure_to_png(fig)


def _metrics_report(r: Any, report: Report) -> bytes:
    from rote.fairness.metrics import METRIC_NAMES

    items: dict[str, Any] = {
        "rows": r.n_rows,
        "classes": len(r.labels),
        "groups": len(r.groups),
        "accuracy": f"{r.accuracy:.4f}",
    }
    for m, v in r.values.items():
        iv = (r.intervals or {}).get(m)
        items[f"{METRIC_NAMES[m]} ({r.agg})"] = f"{v:.4f}" + (f" [{iv['low']:.4f}, {iv['high']:.4f}]" if iv else "")
    report.add_summary(items)
    report.add_heading("What is measured")
    report.add_text(_DEFINITIONS)
    for m, reasons in r.undefined.items():
        for cls, why in reasons.items():
            report.add_text(f"{METRIC_NAMES[m]}, class {cls}: undefined, left out of the aggregate: {why}.", note=True)
    pc = r.per_class
    classes = [str(c) for c in r.labels]
    png = gap_plot(
        classes,
        {METRIC_NAMES[m]: pc[pc.metric == m]["gap"].to_numpy() for m in r.values},
        "Per-class gaps between groups",
    )
    report.add_heading("Per-class gaps")
    report.add_image(png, alt="Per-class gaps", caption="One bar per class and metric; missing bars are undefined.")
    report.add_table(pc, caption="Per-class gaps", max_rows=300)
    report.add_heading("Rates by group")
    rates = r.rates[r.rates.metric != "eodds"]
    report.add_table(
        rates, caption="Selection rate (sp) and true-positive rate (eopp) per group and class", max_rows=300
    )
    return png


def _memorization_report(r: Any, report: Report) -> bytes:
    from rote.fairness.metrics import METRIC_NAMES

    items: dict[str, Any] = {
        "memorized rows": f"{r.n_memorized:,} of {r.n_rows:,} (p_D = {r.p_memorized:.4f})",
        "accuracy before / after": f"{r.accuracy_before:.4f} / {r.accuracy_after:.4f}",
    }
    for m in r.before:
        items[f"{METRIC_NAMES[m]} before / after"] = f"{r.before[m]:.4f} / {r.after[m]:.4f}"
    items["closed form vs direct (max |diff|)"] = f"{r.max_abs_difference:.2e}"
    report.add_summary(items)
    report.add_heading("What is measured")
    report.add_text(
        "The memorizing classifier predicts the true label on the memorized rows and the base "
        "prediction elsewhere. Each rate is the memorized rows' share times their (correct) rate plus "
        "the unmemorized rows' share times the base classifier's rate on them; the per-class gap splits "
        "into these two parts. " + _DEFINITIONS
    )
    c = r.classes
    first = next(iter(r.before))
    sub = c[c.metric == first]
    png = gap_plot(
        list(sub["class"]),
        {"before": sub["gap_before"].to_numpy(), "after": sub["gap_after"].to_numpy()},
        f"{METRIC_NAMES[first]}: per-class gaps before and after memorization",
    )
    report.add_heading("Per-class gaps")
    report.add_image(png, alt="Per-class gaps before and after memorization")
    report.add_table(c, caption="Per-class gaps; memorized_part + unmemorized_part = gap_after", max_rows=300)
    report.add_heading("Closed-form terms by group")
    report.add_table(r.terms[r.terms.metric != "eodds"], caption="share = mu (sp) or rho (eopp)", max_rows=300)
    return png


def _bound_report(results: list[Any], report: Report) -> bytes:
    from rote.fairness.metrics import METRIC_NAMES

    rows = []
    for r in results:
        lo = None if r.lower_bound is None else r.lower_bound / r.total_weight
        hi = None if r.upper_bound is None or not np.isfinite(r.upper_bound) else r.upper_bound / r.total_weight
        rows.append(
            {
                "metric": METRIC_NAMES[r.metric],
                "model": r.model,
                "bias before": r.bias_before,
                "feasible": r.feasible,
                "min p_D": r.p_memorized,
                "lower bound p_D": lo,
                "upper bound p_D": hi,
                "lowest reachable bias": 0.0 if r.feasible else r.reachable_bias,
                "reason": r.reason or "",
            }
        )
    table = pd.DataFrame(rows)
    report.add_summary(
        {
            f"{row['metric']}: minimum memorized share": (f"{row['min p_D']:.4f}" if row["feasible"] else "infeasible")
            for row in rows
        }
    )
    report.add_heading("What is measured")
    report.add_text(
        "The smallest share of the population that must be memorized (predicted with its true label) "
        "to bring each metric to zero, from a linear program solved with HiGHS, beside the closed-form "
        "bounds. The rows model chooses rows of this dataset (only misclassified rows help); the paper "
        "model memorizes group/class masses with the base classifier's statistics on the unmemorized "
        "part held fixed. Derivations: docs/fairness.md."
    )
    report.add_table(table, caption="Minimum memorized share per metric")
    png = gap_plot(
        [r["metric"] for r in rows],
        {"minimum p_D": table["min p_D"].to_numpy(float)},
        "Minimum memorized share that removes the bias",
        ylabel="p_D",
    )
    report.add_image(png, alt="Minimum memorized share per metric")
    for r in results:
        if r.feasible and len(r.plan):
            report.add_heading(f"{METRIC_NAMES[r.metric]}: memorized cells", level=3)
            report.add_table(r.plan, caption="Mass memorized per (group, class, base prediction)", max_rows=100)
    return png


def _audit_report(r: Any, report: Report) -> bytes:
    from rote.fairness.metrics import METRIC_NAMES

    report.add_summary(
        {
            "memorized rows": f"{r.n_memorized:,} of {r.n_rows:,} (p = {r.p_memorized:.4f})",
            "flagged metrics": ", ".join(METRIC_NAMES[m] for m in r.flagged) or "none",
            "threshold": f"{r.threshold:.0%} of the reduction",
        }
    )
    report.add_heading("What is measured")
    report.add_text(
        "Model B's bias is compared with model A's; then B's predictions on the memorized rows are "
        "replaced by A's. The share of the reduction that disappears is explained by memorization; a "
        "metric is flagged when that share reaches the threshold (fairness by memorization, or metric "
        "gaming)."
    )
    report.add_table(r.metrics, caption="Bias before (A), after (B), and after without the memorized rows' gains")
    names = [METRIC_NAMES[m] for m in r.values]
    png = gap_plot(
        names,
        {
            "A": [v["before"] for v in r.values.values()],
            "B": [v["after"] for v in r.values.values()],
            "B without memorized gains": [v["counterfactual"] for v in r.values.values()],
        },
        "Bias of the two models",
        ylabel="metric",
    )
    report.add_image(png, alt="Bias of the two models")
    return png


def _builder(result: Any):
    from rote.fairness import FairnessMetrics, GamingAudit, MemorizationEffect

    for kind, build in (
        (FairnessMetrics, _metrics_report),
        (MemorizationEffect, _memorization_report),
        (GamingAudit, _audit_report),
    ):
        if isinstance(result, kind):
            return lambda report: build(result, report)
    return lambda report: _bound_report(list(result), report)  # a list of MinimumMass results


def fairness_report(
    result: Any, *, title: str, subtitle: str = "", config: Mapping[str, Any] | None = None
) -> tuple[str, bytes]:
    """(report.html text, gap plot PNG) for a FairnessMetrics, MemorizationEffect, GamingAudit or a list of
    MinimumMass results."""
    report = Report(title, subtitle=subtitle)
    png = _builder(result)(report)
    if config is not None:
        report.add_config(config)
    return report.render(), png


def fairness_outputs(result: Any, *, title: str, subtitle: str = "") -> dict[str, Any]:
    """`plots` (gaps), `report` and, for a list of MinimumMass results, `tables` (plan_<metric>) for
    `RunFolder.finish`; the report body is built once, the run's config added when it is known."""
    report = Report(title, subtitle=subtitle)
    png = _builder(result)(report)

    def render(config: Mapping[str, Any]) -> str:
        report.add_config(config)
        return report.render()

    out: dict[str, Any] = {"plots": {"gaps": png}, "report": render}
    if isinstance(result, list):
        out["tables"] = {f"plan_{r.metric}": r.plan for r in result}
    return out
