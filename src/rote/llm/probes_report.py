"""Plots and report.html of `rote llm probe`, `rote llm suppress` and `rote llm probe-demo`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from rote.report import Report
from rote.report.plots import figure_to_png, new_figure, over_seeds_table, seeds_bars

_SITE_STYLE = {"resid": ("#4a7fb0", "o"), "attn": ("#d1495b", "s"), "mlp": ("#e8a33d", "^")}


def per_layer_plot(result: Any) -> bytes:
    """Cross-validated probe AUC per layer, one line per site (DeLong 95% bands), beside the loss and min-k% AUCs
    on the same tokens (horizontal lines)."""
    fig = new_figure(8.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    frame = result.per_layer
    for site, part in frame.groupby("site", sort=False):
        color, marker = _SITE_STYLE.get(str(site), ("#555555", "o"))
        part = part.sort_values("layer")
        ax.plot(part["layer"], part["auc"], marker=marker, color=color, label=f"probe: {site}")
        ax.fill_between(part["layer"], part["auc_low"], part["auc_high"], color=color, alpha=0.15)
    ax.axhline(result.baselines["loss"], color="#222222", ls="--", lw=1, label="loss (same tokens)")
    ax.axhline(result.baselines["min_k"], color="#777777", ls=":", lw=1.2, label="min-k% (same tokens)")
    ax.axhline(0.5, color="#bbbbbb", lw=0.8)
    ax.set_xlabel("layer")
    ax.set_xticks(sorted(frame["layer"].unique()))
    ax.set_ylabel("ROC-AUC (cross-validated by text)")
    ax.set_ylim(0.0, 1.02)
    ax.set_title(f"{result.task} probe per layer and site")
    ax.legend(fontsize=8, loc="lower right")
    return figure_to_png(fig)


def curve_plot(result: Any) -> bytes:
    """Extraction rate against held-out perplexity, one line per layer (points = alphas, alpha 0 = unmodified)."""
    fig = new_figure(8.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    table = result.table
    for layer, part in table.groupby("layer"):
        part = part.sort_values("alpha")
        ax.plot(part["heldout_ppl"], part["extraction_rate"], marker="o", label=f"layer {layer}")
        for _, r in part.iterrows():
            ax.annotate(f"{r['alpha']:g}", (r["heldout_ppl"], r["extraction_rate"]), fontsize=7)
    ax.set_xscale("log")  # perplexity explodes at large alpha
    ax.set_xlabel("held-out perplexity (log scale)")
    ax.set_ylabel("extraction rate (greedy, exact suffix)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"suppression at site {result.site}: h <- h - alpha (h.w) w (labels: alpha)")
    ax.legend(fontsize=8)
    return figure_to_png(fig)


def _probe_section(report: Report, result: Any, plots: Mapping[str, bytes]) -> None:
    b = result.best
    report.add_summary(
        {
            "best layer / site": f"{b['layer']} / {b['site']}",
            "best probe AUC": f"{b['auc']:.3f} [{b['auc_low']:.3f}, {b['auc_high']:.3f}]",
            "best probe accuracy / F1": f"{b['acc']:.3f} / {b['f1']:.3f}",
            "loss AUC (same tokens)": f"{result.baselines['loss']:.3f}",
            "min-k% AUC (same tokens)": f"{result.baselines['min_k']:.3f}",
            "tokens (positive / control)": f"{result.n_positive} / {result.n_negative}",
            "texts": result.n_texts,
        },
        caption=f"{result.task} probe ({result.probe})",
    )
    report.add_heading("What is measured")
    report.add_text(
        "Each row is the activation at the position that predicts a token. Positive tokens are memorized "
        "(inside a run of correct greedy predictions of at least min_run tokens, i.e. reproduced verbatim from "
        "the prefix before the run) or, for the repetition task, repeat an earlier n-gram of the same text; "
        "control tokens come from texts the model has not seen"
        + (", matched on loss bin by bin." if result.settings.get("match_loss") else ".")
        + " Probes are cross-validated by text (no text on both sides); the AUC is averaged over the test folds."
        " Probe intervals: 95% t-interval of the mean AUC over folds; baseline intervals: DeLong 95% (tokens of one "
        "text are correlated, so those are too narrow)."
    )
    report.add_image(plots["per_layer"], alt="Probe AUC per layer", caption="Probe AUC per layer and site.")
    report.add_table(result.per_layer, caption="Per layer and site (cross-validated)", digits=4)


def _curve_section(report: Report, result: Any, plots: Mapping[str, bytes]) -> None:
    base = result.baseline
    items = {
        "unmodified extraction rate": f"{base['extraction_rate']:.3f} of {result.n_memorized_texts} texts",
        "unmodified held-out perplexity": f"{base['heldout_ppl']:.3f}",
    }
    if result.best_tradeoff:
        bt = result.best_tradeoff
        items["best within the perplexity budget"] = (
            f"layer {bt['layer']}, alpha {bt['alpha']:g}: extraction {bt['extraction_rate']:.3f}, "
            f"perplexity {bt['heldout_ppl']:.3f}"
        )
    report.add_summary(items, caption=f"suppression at site {result.site}")
    report.add_image(plots["curve"], alt="Extraction against perplexity", caption="Trade-off curve per layer.")
    report.add_table(result.table, caption="Sweep over layers and alphas (alpha 0 = unmodified)", digits=4)


def probe_outputs(result: Any) -> dict[str, Any]:
    """`plots` and `report` for `RunFolder.finish` of `rote llm probe`."""
    plots = {"per_layer": per_layer_plot(result)}

    def report(config: Mapping[str, Any]) -> str:
        r = Report("Memorization probes", subtitle=f"model {result.model['name']}")
        _probe_section(r, result, plots)
        r.add_config(config)
        return r.render()

    return {"plots": plots, "report": report}


def suppress_outputs(result: Any) -> dict[str, Any]:
    """`plots` and `report` for `RunFolder.finish` of `rote llm suppress`."""
    plots = {"curve": curve_plot(result)}

    def report(config: Mapping[str, Any]) -> str:
        r = Report("Suppressing memorization along the probe direction", subtitle=f"model {result.model['name']}")
        _curve_section(r, result, plots)
        r.add_config(config)
        return r.render()

    return {"plots": plots, "report": report}


def demo_outputs(probe: Any, curve: Any, train: Mapping[str, Any]) -> dict[str, Any]:
    """`plots`, `report`, `tables` for `RunFolder.finish` of `rote llm probe-demo`."""
    plots = {"per_layer": per_layer_plot(probe), "curve": curve_plot(curve)}

    def report(config: Mapping[str, Any]) -> str:
        r = Report(
            "Probe demo: tiny GPT with planted canaries",
            subtitle=f"{int(train['n_params']):,} parameters, {int(train['steps']):,} steps, "
            f"{train['seconds']:.0f} s of training",
        )
        _probe_section(r, probe, plots)
        r.add_heading("Suppression")
        _curve_section(r, curve, plots)
        r.add_config(config)
        return r.render()

    tables = {"per_layer": probe.per_layer, "tokens": probe.tokens, "curve": curve.table}
    return {"plots": plots, "report": report, "tables": tables}


def as_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


_GRID_LABELS = {
    "best_auc": "best probe AUC",
    "loss_auc": "loss AUC",
    "min_k_auc": "min-k% AUC",
    "extraction_unmodified": "extraction, unmodified",
    "extraction_suppressed": "extraction, suppressed (ppl +10% at most)",
}


def grid_plot(result: Any) -> bytes:
    """Per-seed values (dots) and the mean with its 95% t-interval (bar) of the AUCs and extraction rates."""
    metrics = list(_GRID_LABELS)
    fig = new_figure(8.5, 3.8)
    ax = fig.add_subplot()
    colors = ["#4a7fb0" if "auc" in m else "#d1495b" for m in metrics]
    seeds_bars(ax, {m: result.over_seeds[m] for m in metrics}, result.per_seed, colors)
    ax.axhline(0.5, color="#bbbbbb", lw=0.8)
    ax.set_xticklabels([_GRID_LABELS[m] for m in metrics], fontsize=7, rotation=12)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Over {len(result.seeds)} seeds: per seed (dots), mean and 95% t-interval")
    return figure_to_png(fig)


def grid_outputs(result: Any) -> dict[str, Any]:
    """`plots`, `tables` and the `report` builder of `rote llm probe-grid` for `RunFolder.finish`."""
    plot = grid_plot(result)
    table = over_seeds_table(result.over_seeds)

    def render(config: Mapping[str, Any]) -> str:
        report = Report("Memorization probes over seeds", subtitle=f"{len(result.seeds)} seeds of rote llm probe-demo")
        report.add_summary(
            {
                "seeds": ", ".join(map(str, result.seeds)),
                "best probe AUC (mean)": result.over_seeds["best_auc"]["estimate"],
                "loss AUC (mean)": result.over_seeds["loss_auc"]["estimate"],
                "min-k% AUC (mean)": result.over_seeds["min_k_auc"]["estimate"],
                "extraction, unmodified (mean)": result.over_seeds["extraction_unmodified"]["estimate"],
                "extraction, suppressed (mean)": result.over_seeds["extraction_suppressed"]["estimate"],
                "failed seeds": result.n_failed,
            }
        )
        report.add_heading("Over seeds")
        report.add_text(
            "Each seed is a whole probe demo: its own planted canaries, tiny GPT, folds, loss matching and "
            "suppression sweep. The suppressed extraction is the lowest extraction rate whose held-out perplexity "
            "stays within +10% of the unmodified model's (ppl_rise: its relative rise; NaN when no point keeps the "
            "budget). Intervals are 95% Student-t intervals over seeds (none with one seed)."
        )
        report.add_image(plot, alt="AUCs and extraction rates per seed with their means and intervals")
        report.add_table(table, caption="Mean over seeds and its 95% t-interval")
        report.add_table(result.per_seed, caption="One row per seed")
        report.add_table(result.curve, caption="Every seed's suppression curve", max_rows=80)
        report.add_config(config)
        return report.render()

    return {"plots": {"grid": plot}, "tables": {"over_seeds": table}, "report": render}
