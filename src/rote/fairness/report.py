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


def gap_plot(
    classes: list[str], series: Mapping[str, np.ndarray], title: str, ylabel: str = "gap", xlabel: str = "class"
) -> bytes:
    """Grouped bar chart: one bar series per entry of `series` ((C,) arrays, NaN = undefined) over `classes`
    (per-class gaps, or one bar per metric with `xlabel="metric"`)."""
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
    ax.set_xlabel(xlabel)
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
    for m, cells in r.empty_cells.items():
        if cells:
            shown = ", ".join(f"{c['group']}/{c['class']}" for c in cells[:12])
            more = f" and {len(cells) - 12} more" if len(cells) > 12 else ""
            report.add_text(
                f"{METRIC_NAMES[m]}: {len(cells)} empty group/class cells ({cells[0]['treatment']}): {shown}{more}.",
                note=True,
            )
    for w in r.warnings:
        report.add_text(f"Warning: {w}.", note=True)
    report.add_heading("Ranges and ratios")
    report.add_text(
        "Each metric sums max - min across groups over classes, rote's generalisation of the paper's two-group "
        "metric; with G groups and C classes it can reach min(G, C) (SP), C (EOpp) and C min(G, C) (EOdds), not "
        "2 or 2C. The normalised value divides by that maximum. The ratio is the smallest min / max rate over "
        "groups of any class (the 80% rule; 1 is parity)."
    )
    report.add_table(
        pd.DataFrame(
            {
                "metric": [METRIC_NAMES[m] for m in r.values],
                "value": list(r.values.values()),
                "maximum": [r.maximum[m] for m in r.values],
                "normalized": [r.normalized[m] for m in r.values],
                "worst ratio": [r.ratios[m] for m in r.values],
                **(
                    {
                        f"difference (pos_label {r.pos_label})": [r.binary[m]["difference"] for m in r.values],
                        f"ratio (pos_label {r.pos_label})": [r.binary[m]["ratio"] for m in r.values],
                    }
                    if r.binary
                    else {}
                ),
            }
        ),
        caption="Each metric, its largest possible value, normalised value and ratio",
    )
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
    report.add_heading("Groups: counts and base rates")
    report.add_table(
        r.group_stats,
        caption="Rows, weight, base rate P(Y=class | A) and selection rate P(h=class | A) per group"
        + (f"; differences and ratios against the privileged group {r.privileged}" if r.privileged is not None else ""),
        max_rows=300,
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
    for m, cells in r.empty_cells.items():
        if cells:
            shown = ", ".join(f"{c['group']}/{c['class']}" for c in cells[:12])
            report.add_text(
                f"{METRIC_NAMES[m]}: {len(cells)} empty group/class cells left out (each class is compared over "
                f"the groups that have it): {shown}{' and more' if len(cells) > 12 else ''}.",
                note=True,
            )
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


def _share(mass: float | None, total: float) -> str:
    if mass is None or not np.isfinite(mass):
        return "none (the construction fails)"
    return f"{mass / total:.4f}"


def _bound_report(result: Any, report: Report) -> bytes:
    from rote.fairness.metrics import METRIC_NAMES

    results = list(result.results)
    sets = result.concrete_sets
    rows = []
    for r in results:
        s = sets.get(r.metric, {})
        rows.append(
            {
                "metric": METRIC_NAMES[r.metric],
                "model": r.model,
                "bias before": r.bias_before,
                "feasible": r.feasible,
                ("integer minimum p_D" if r.integral else "minimum p_D"): f"{r.p_memorized:.4f}"
                if r.feasible
                else "infeasible",
                "LP relaxation p_D": "infeasible"
                if not r.feasible
                else f"{(r.lp_mass if r.lp_mass is not None else r.mass) / r.total_weight:.4f}",
                ("closed-form lower (LP)" if r.integral else "closed-form lower"): "-"
                if r.lower_bound is None
                else _share(r.lower_bound, r.total_weight),
                ("closed-form upper (LP)" if r.integral else "closed-form upper"): "-"
                if r.lower_bound is None
                else _share(r.upper_bound, r.total_weight),
                "lowest reachable bias": 0.0 if r.feasible else r.reachable_bias,
                "concrete set rows": s.get("n_rows"),
                "bias left by the set": s.get("bias_after"),
                "largest entry gap left": s.get("largest_entry_gap_after"),
                "reason": r.reason or "",
            }
        )
    table = pd.DataFrame(rows)
    items: dict[str, Any] = {}
    for r in results:
        s = sets.get(r.metric, {})
        head = f"{r.p_memorized:.4f}" if r.feasible else f"infeasible (lowest reachable bias {r.reachable_bias:.4f})"
        items[f"{METRIC_NAMES[r.metric]}: minimum memorized share"] = head
        if s:
            items[f"{METRIC_NAMES[r.metric]}: concrete set"] = (
                f"{s['n_rows']:,} rows leave bias {s['bias_after']:.4f} of {s['bias_before']:.4f}"
            )
    report.add_summary(items)
    report.add_heading("What is measured")
    report.add_text(
        "The smallest share of the population that must be memorized (predicted with its true label) "
        "to bring each metric to zero, from a linear program solved with HiGHS, beside the closed-form "
        "bounds. The rows model chooses rows of this dataset (only misclassified rows help); the paper "
        "model memorizes group/class masses with the base classifier's statistics on the unmemorized "
        "part held fixed. A concrete set of whole rows follows each plan (when no set removes the bias, the "
        "plan that reaches the lowest bias); rounding a fractional plan to rows, or following a paper-model "
        "plan with random rows, can leave part of the bias, which the table reports as measured on the "
        "memorizing classifier. With --integral the closed-form bounds are bounds on the LP relaxation, not on "
        "the integer minimum. Derivations: docs/fairness.md."
    )
    for r in results:
        if r.empty_cells:
            shown = ", ".join(f"{c['group']}/{c['class']}" for c in r.empty_cells[:12])
            more = f" and {len(r.empty_cells) - 12} more" if len(r.empty_cells) > 12 else ""
            report.add_text(
                f"{METRIC_NAMES[r.metric]}: {len(r.empty_cells)} empty group/class cells left out (each class is "
                f"compared over the groups that have it): {shown}{more}.",
                note=True,
            )
    report.add_table(table, caption="Minimum memorized share per metric, and what a concrete set of rows leaves")
    png = gap_plot(
        [r["metric"] for r in rows],
        {
            "bias before": table["bias before"].to_numpy(float),
            "bias left by the concrete set": table["bias left by the set"].to_numpy(float),
        },
        "Bias before memorization and after memorizing the concrete set",
        ylabel="metric (agg sum)",
        xlabel="metric",
    )
    report.add_image(png, alt="Bias before and after memorizing the concrete set")
    for r in results:
        if len(r.plan):
            what = "removes the bias" if r.feasible else "reaches the lowest bias"
            report.add_heading(f"{METRIC_NAMES[r.metric]}: memorized cells ({what})", level=3)
            report.add_table(r.plan, caption="Mass memorized per (group, class, base prediction)", max_rows=100)
        rs = result.rows.get(r.metric)
        if rs is not None and len(rs):
            report.add_table(
                rs, caption=f"The concrete set: {len(rs):,} rows (1-based data rows; first 50)", max_rows=50
            )
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
    for m, cells in r.empty_cells.items():
        if cells:
            shown = ", ".join(f"{c['group']}/{c['class']}" for c in cells[:12])
            report.add_text(
                f"{METRIC_NAMES[m]}: {len(cells)} empty group/class cells left out (each class is compared over "
                f"the groups that have it): {shown}{' and more' if len(cells) > 12 else ''}.",
                note=True,
            )
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
        xlabel="metric",
    )
    report.add_image(png, alt="Bias of the two models")
    return png


def _example_report(r: Any, report: Report) -> bytes:
    from rote.fairness.metrics import METRIC_NAMES

    s = r.info
    if r.predictions_only:
        report.add_summary(
            {"task": r.task, "test rows": f"{len(r.predictions):,}", "test accuracy": f"{s['test_accuracy']:.4f}"}
        )
        report.add_text(
            "A scikit-learn HistGradientBoostingClassifier trained on Adult's training split; predictions.parquet "
            "holds its predictions on the test split (label, prediction, sex, race) for `rote fairness metrics`, "
            "`bound` and `memorization`."
        )
        counts = r.predictions.groupby(["label", "prediction"]).size().rename("rows").reset_index()
        report.add_table(counts, caption="Test-split confusion counts")
        png = gap_plot(
            sorted(r.predictions["label"].unique()),
            {"rows": r.predictions["label"].value_counts().sort_index().to_numpy(float)},
            "Test rows per class",
            ylabel="rows",
        )
        report.add_image(png, alt="Test rows per class")
        return png
    report.add_summary(
        {
            "task / group": f"{r.task} / {r.group}",
            "train / test rows": f"{s['n_train']:,} / {s['n_test']:,}",
            "accuracy train / test": f"{s['train_accuracy']:.4f} / {s['test_accuracy']:.4f}",
            "groups": ", ".join(map(str, s["groups"])),
        }
    )
    report.add_heading("What is measured")
    report.add_text(
        "For each metric: the rows-model LP minimum memorized share of the training split (min_p) with its "
        "closed-form bounds, a concrete set S of whole training rows (integer program, every class entry's gap "
        f"at most {s['tol']}), the bias of the paper's memorizing classifier h on the training split, and on the "
        "test split of an exact-match lookup of S and of the classifier retrained with S upweighted "
        f"{s['weight']}x. Details: docs/fairness.md."
    )
    t = r.table
    report.add_table(t, caption="One row per metric")
    names = [METRIC_NAMES[m] for m in t["metric"]]
    series = {c: t[c].to_numpy(float) for c in ("train_before", "train_lookup", "test_before", "test_lookup") if c in t}
    png = gap_plot(
        names, series, "Bias before and after memorizing S, training and test split", ylabel="metric", xlabel="metric"
    )
    report.add_image(png, alt="Bias before and after memorizing S")
    return png


def _builder(result: Any):
    from rote.fairness import FairnessMetrics, GamingAudit, MemorizationEffect
    from rote.fairness.examples import WorkedExample

    for kind, build in (
        (FairnessMetrics, _metrics_report),
        (MemorizationEffect, _memorization_report),
        (GamingAudit, _audit_report),
        (WorkedExample, _example_report),
    ):
        if isinstance(result, kind):
            return lambda report: build(result, report)
    if isinstance(result, list):  # MinimumMass results without concrete sets
        from rote.fairness.bounds import MemorizationBounds

        result = MemorizationBounds([r.to_dict() for r in result], {}, list(result), {})
    return lambda report: _bound_report(result, report)  # a MemorizationBounds


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
    if hasattr(result, "concrete_sets"):
        out["tables"] = {
            **{f"plan_{r.metric}": r.plan for r in result.results},
            **{f"rows_{m}": frame for m, frame in result.rows.items()},
        }
    return out
