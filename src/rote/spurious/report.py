"""report.html and plots for `rote spurious` runs.

`run_outputs(run)` gives what `RunFolder.finish` writes besides the result's tables and results.json for a
`SpuriousRun` (toy, demo, train); `regression_outputs(result)` for the good / bad / ugly regression toy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from rote.report.html import Report
from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED, figure_to_png, new_figure

__all__ = ["run_outputs", "regression_outputs", "accuracy_plot", "group_plot", "memorization_plot"]

_COLORS = [COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED, "#6a994e", "#7b5ea7"]

_WHAT = (
    "Every method trains the same network on the same training split, where a spurious attribute agrees with the "
    "class for most samples. Accuracy is measured on the test split, where it agrees for half. Worst-group "
    "accuracy is the minimum over the (class, attribute) groups. MAT (Bayat et al., ICLR 2025) trains with "
    "CE(f(x) + s, y), s the log of a calibrated held-out posterior from XRM twins (or k-fold models), and predicts "
    "with f(x); ERM and MAT never see group labels, GroupDRO and group-balanced ERM train with them. Held-in "
    "accuracy is the final model's accuracy on its own training samples of a group, held-out accuracy its accuracy "
    "on test samples of that group: a large gap in a minority group means those training samples were memorized "
    "rather than explained by a rule that generalizes."
)


def _bars(ax: Any, labels: list[str], series: Mapping[str, list[float]], errors: Mapping[str, list[float]] | None):
    x = np.arange(len(labels))
    k = max(1, len(series))
    width = 0.8 / k
    for i, (name, vals) in enumerate(series.items()):
        err = None if errors is None else errors.get(name)
        ax.bar(
            x + (i - (k - 1) / 2) * width,
            np.nan_to_num(np.asarray(vals, float)),
            width,
            label=name,
            color=_COLORS[i % len(_COLORS)],
            yerr=err,
            capsize=3 if err is not None else 0,
        )
    ax.set_xticks(x, labels, rotation=20 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=9)


def accuracy_plot(run: Any) -> bytes:
    """Average and worst-group test accuracy per method (error bars: std over seeds)."""
    fig = new_figure(8.5, 3.6)
    ax = fig.add_subplot()
    ms = list(run.methods)
    multi = len(run.seeds) > 1
    _bars(
        ax,
        ms,
        {
            "average": [run.methods[m]["avg_acc"] for m in ms],
            "worst group": [run.methods[m]["worst_group_acc"] for m in ms],
        },
        {
            "average": [run.intervals[m]["avg_acc"]["std"] for m in ms],
            "worst group": [run.intervals[m]["worst_group_acc"]["std"] for m in ms],
        }
        if multi
        else None,
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy")
    ax.set_title("Average and worst-group accuracy")
    return figure_to_png(fig)


def group_plot(run: Any) -> bytes:
    """Test accuracy of every group, one bar series per method."""
    fig = new_figure(8.5, 3.6)
    ax = fig.add_subplot()
    groups = list(next(iter(run.methods.values()))["per_group_acc"])
    _bars(ax, groups, {m: [r["per_group_acc"].get(g, np.nan) for g in groups] for m, r in run.methods.items()}, None)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy per group (minority: " + ", ".join(run.minority) + ")")
    return figure_to_png(fig)


def memorization_plot(run: Any) -> bytes:
    """Held-in minus held-out accuracy per group and method (first seed)."""
    fig = new_figure(8.5, 3.6)
    ax = fig.add_subplot()
    groups = list(next(iter(run.memorization.values()))["per_group"])
    _bars(ax, groups, {m: [r["per_group"][g]["gap"] for g in groups] for m, r in run.memorization.items()}, None)
    ax.axhline(0, color="#555", lw=0.8)
    ax.set_ylabel("held-in - held-out accuracy")
    ax.set_title("Memorization: train accuracy minus test accuracy per group")
    return figure_to_png(fig)


def weight_plot(weights: Mapping[str, Mapping[str, float]]) -> bytes:
    """Linear toy: |weight| on the core and the spurious feature, and the norm on the noise dimensions."""
    fig = new_figure(8.5, 3.4)
    ax = fig.add_subplot()
    ms = list(weights)
    _bars(
        ax,
        ms,
        {
            "|core|": [abs(weights[m]["core"]) for m in ms],
            "|spurious|": [abs(weights[m]["spurious"]) for m in ms],
            "noise norm": [weights[m]["noise_norm"] for m in ms],
        },
        None,
    )
    ax.set_ylabel("weight of w = W[:,1] - W[:,0]")
    ax.set_title("Where the linear model puts its weight")
    return figure_to_png(fig)


def _method_table(run: Any) -> pd.DataFrame:
    rows = []
    multi = len(run.seeds) > 1
    for m, r in run.methods.items():
        iv = run.intervals[m]
        row = {
            "method": m,
            "avg_acc": r["avg_acc"],
            "worst_group_acc": r["worst_group_acc"],
            "minority_gap": iv["minority_gap"]["mean"],
        }
        if multi:
            row.update({"avg_acc_std": iv["avg_acc"]["std"], "worst_group_acc_std": iv["worst_group_acc"]["std"]})
        row["val_worst_group_acc"] = run.val.get(m, {}).get("worst_group_acc")
        row["epoch_kept"] = run.best_epoch.get(m)
        rows.append(row)
    return pd.DataFrame(rows)


def run_outputs(run: Any, *, title: str) -> dict[str, Any]:
    """plots and the report builder for a SpuriousRun."""
    plots = {"accuracy": accuracy_plot(run), "groups": group_plot(run), "memorization": memorization_plot(run)}
    if run.weights:
        plots["weights"] = weight_plot(run.weights)

    def build(config: dict[str, Any]) -> str:
        rep = Report(title, subtitle=f"{run.data.get('source', run.task)}, seeds {', '.join(map(str, run.seeds))}")
        items: dict[str, Any] = {}
        for m, r in run.methods.items():
            items[f"{m}: avg / worst-group acc"] = f"{r['avg_acc']:.3f} / {r['worst_group_acc']:.3f}"
        if run.heldout:
            items["held-out predictor"] = (
                f"{run.heldout['source']} (flip rate {run.heldout['flip_rate']:.3f}, "
                f"accuracy {run.heldout['heldout_acc']:.3f})"
            )
        items["seconds"] = f"{run.seconds:.1f}"
        rep.add_summary(items)
        rep.add_heading("What is measured")
        rep.add_text(_WHAT)
        rep.add_heading("Accuracy")
        rep.add_image(plots["accuracy"], alt="Average and worst-group accuracy per method")
        rep.add_table(_method_table(run), caption="Test accuracy per method (means over seeds)")
        rep.add_image(plots["groups"], alt="Accuracy per group")
        g = run.groups
        if len(g):
            test = g[g["split"] == "test"].drop(columns=["split"], errors="ignore")
            rep.add_table(test, caption="Test accuracy per group, method and seed", max_rows=200)
        rep.add_heading("Memorization of minority examples")
        rep.add_image(plots["memorization"], alt="Held-in minus held-out accuracy per group")
        mem = [
            {"method": m, "group": gname, **v}
            for m, r in run.memorization.items()
            for gname, v in r["per_group"].items()
        ]
        rep.add_table(pd.DataFrame(mem), caption="Held-in (train) and held-out (test) accuracy per group, first seed")
        if run.weights:
            rep.add_heading("Linear model weights")
            rep.add_image(plots["weights"], alt="Weights on core and spurious features")
            rep.add_table(
                pd.DataFrame([{"method": m, **w} for m, w in run.weights.items()]),
                caption="Decision direction w = W[:,1] - W[:,0], first seed",
            )
        if run.heldout:
            rep.add_heading("Held-out predictions")
            ho = run.heldout
            rep.add_table(
                pd.DataFrame([{"group": k, "heldout_acc": v} for k, v in ho["per_group_heldout_acc"].items()]),
                caption=f"Accuracy of the {ho['source']} held-out predictions per training group",
            )
        rep.add_config(config)
        return rep.render()

    return {"plots": plots, "report": build}


def regression_plot(result: Any) -> bytes:
    fig = new_figure(9.5, 3.2)
    curves = result.curves
    names = list(result.settings)
    for i, name in enumerate(names, start=1):
        ax = fig.add_subplot(1, len(names), i)
        c = curves[curves["setting"] == name]
        ax.plot(c["x"], c["truth"], color="#555", lw=1, label="true f")
        ax.plot(c["x"], c["fit"], color=_COLORS[i - 1], lw=1.5, label="fit")
        ax.set_title(f"{name}: sigma={result.settings[name]['input_noise']:g}", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        if i == 1:
            ax.legend(frameon=False, fontsize=8)
    return figure_to_png(fig)


def regression_outputs(result: Any) -> dict[str, Any]:
    plots = {"fits": regression_plot(result)}

    def build(config: dict[str, Any]) -> str:
        rep = Report("Good, bad and ugly memorization", subtitle="1-D regression toy (Bayat et al. 2025, Fig. 3)")
        rep.add_summary({f"{k}: test MSE": f"{v['test_mse']:.2e}" for k, v in result.settings.items()})
        rep.add_heading("What is measured")
        rep.add_text(
            "An MLP fits 20 noisy samples of tanh(x) + 0.5 tanh(-5x) with 30 extra input dimensions of noise of "
            "standard deviation sigma. Good: tiny sigma lets it memorize the label noise in the extra dimensions "
            "and keep the true function; bad: larger sigma lets it fit through the noise dimensions and miss the "
            "function; ugly: sigma = 0 forces the function itself to interpolate the label noise. Test MSE is "
            "against the noise-free function on a grid with fresh input noise."
        )
        rep.add_image(plots["fits"], alt="Fitted functions per setting")
        rep.add_table(
            pd.DataFrame([{"setting": k, **v} for k, v in result.settings.items()]), caption="Fit per setting"
        )
        rep.add_config(config)
        return rep.render()

    return {"plots": plots, "report": build}
