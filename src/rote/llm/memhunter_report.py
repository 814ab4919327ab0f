"""Reports and plots of `rote llm detect-dataset` and `rote llm memhunter-demo`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from rote.report.html import Report
from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, figure_to_png, new_figure, over_seeds_table, seeds_bars


def score_histogram_plot(rows: pd.DataFrame, tau: float | None = None) -> Any:
    """Histogram of per-text scores (LCSS ratio) of the suspect and the reference set."""
    fig = new_figure(7.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    bins = np.linspace(0, 1, 21)
    for name, color in (("suspect", COLOR_MEMORIZED), ("reference", COLOR_KEPT)):
        v = rows.loc[rows["set"] == name, "score"].to_numpy(dtype=float)
        ax.hist(v, bins=bins, alpha=0.6, color=color, label=f"{name} (n={len(v)})")
    if tau is not None:
        ax.axvline(tau, color="black", linestyle="--", linewidth=1, label=f"memorized at {tau:g}")
    ax.set_xlabel("LCSS ratio of the target's continuation with the true suffix")
    ax.set_ylabel("texts")
    ax.set_title("Per-text memorization scores")
    ax.legend(fontsize=8)
    return fig


def detection_report(result: Any, *, config: Mapping[str, Any] | None = None, plots: Mapping[str, bytes]) -> str:
    """report.html of `rote llm detect-dataset` (a `DetectionResult`)."""
    lo, hi = result.effect_ci
    report = Report(
        "MemHunter dataset-level memorization test",
        subtitle=("REJECT: the suspect set looks memorized" if result.reject else "no evidence of memorization")
        + f" (one-sided {result.test}, p = {result.p_value:.3g}, alpha = {result.alpha:g})",
    )
    report.add_summary(
        {
            "p-value (one-sided)": f"{result.p_value:.3g}",
            "reject at alpha": f"{result.reject} ({result.alpha:g})",
            "Cliff's delta [95% CI]": f"{result.effect:+.3f} [{lo:+.3f}, {hi:+.3f}]",
            "texts scored": f"{result.n_suspect} suspect, {result.n_reference} reference",
            f"power for delta {result.min_effect:g}": f"{result.power:.2f}",
            "memorized (LCSS >= tau)": f"suspect {result.memorized_rate['suspect']:.1%}, reference "
            f"{result.memorized_rate['reference']:.1%}",
            "prefix prompting only: p, delta": f"{result.prefix_only['p_value']:.3g}, "
            f"{result.prefix_only['effect']:+.3f}",
        }
    )
    for w in result.warnings:
        report.add_text(f"Warning: {w}", note=True)
    report.add_heading("What is measured")
    report.add_text(
        "Each text is cut into a prefix and a suffix in the target's tokens. The target continues the prefix "
        "greedily (and, with a generator, each of the generator's memory-inducing prompts placed around the "
        "prefix); the score is the longest common substring of continuation and true suffix divided by the "
        f"suffix length ({result.score}). The test asks whether suspect scores are stochastically larger than "
        "those of the reference texts, which must be known non-members from the same distribution."
    )
    report.add_image(plots["scores"], alt="Score histograms", caption="Scores of suspect and reference texts.")
    if result.generator_history:
        report.add_table(pd.DataFrame(result.generator_history), caption="Generator training rounds", digits=4)
    cols = [
        c
        for c in ("id", "set", "score", "lcs_ratio_prefix", "lcs_ratio_generator", "prefix_text", "suffix_text")
        if c in result.rows
    ]
    shown = result.rows.sort_values("score", ascending=False)[cols].head(30)
    report.add_table(shown, caption="Highest-scoring texts (all in rows.parquet)", digits=3)
    if config is not None:
        report.add_config(config)
    return report.render()


def detection_outputs(result: Any, *, tau: float | None = None) -> dict[str, Any]:
    """`plots` and `report` for `RunFolder.finish` of `rote llm detect-dataset`."""
    plots = {"scores": figure_to_png(score_histogram_plot(result.rows, tau))}
    return {"plots": plots, "report": lambda config: detection_report(result, config=config, plots=plots)}


def rates_plot(rates: pd.DataFrame, alpha: float) -> Any:
    """Rejection rate against texts per set: true positives (model with the dataset) and false positives."""
    fig = new_figure(7.5, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    styles = {("with", "memhunter"): (COLOR_MEMORIZED, "-"), ("with", "prefix"): (COLOR_MEMORIZED, ":")}
    for (model, score), g in rates.groupby(["model", "score"]):
        color, ls = styles.get((model, score), (COLOR_KEPT, "-" if score == "memhunter" else ":"))
        g = g.sort_values("n")
        label = f"{'tpr' if model == 'with' else 'fpr'} ({score})"
        ax.plot(g["n"], g["reject_rate"], ls, marker="o", color=color, label=label)
        ax.fill_between(g["n"], g["low"], g["high"], color=color, alpha=0.12)
    ax.axhline(alpha, color="black", linewidth=0.8, linestyle="--", label=f"alpha = {alpha:g}")
    ax.set_xlabel("texts per set")
    ax.set_ylabel("rejection rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Dataset test: true and false positive rates")
    ax.legend(fontsize=8)
    return fig


def demo_report(result: Any, *, config: Mapping[str, Any] | None = None, plots: Mapping[str, bytes]) -> str:
    """report.html of `rote llm memhunter-demo` (a `DemoResult`)."""
    report = Report("MemHunter on tiny GPTs with known ground truth", subtitle=result.summary().splitlines()[0])
    report.add_summary(
        {
            "tpr (with the dataset)": f"{result.tpr:.2f}",
            "fpr (without)": f"{result.fpr:.2f}",
            "texts per set, repetitions": f"{result.n_per_set}, {result.repetitions}",
            f"exact extraction, generator ({result.budget} generations/text)": f"{result.extraction['generator']:.1%}",
            f"exact extraction, prefix ({result.budget} generations/text)": (
                f"{result.extraction['prefix_baseline']:.1%}"
            ),
        }
    )
    report.add_image(plots["rates"], alt="Rejection rates", caption="Rejection rate at alpha with 95% intervals.")
    if result.plugin_search:
        report.add_table(
            pd.DataFrame([result.plugin_search]), caption="Plug-in prompt search (dataset texts)", digits=3
        )
    report.add_table(result.rates, caption="Rejection rates by model, score and texts per set", digits=3)
    for name, hist in result.generator_history.items():
        if hist:
            report.add_table(pd.DataFrame(hist), caption=f"Generator rounds against the '{name}' model", digits=4)
    report.add_table(pd.DataFrame([result.seconds]), caption="Seconds per step", digits=1)
    if config is not None:
        report.add_config(config)
    return report.render()


def demo_outputs(result: Any) -> dict[str, Any]:
    """`plots` and `report` for `RunFolder.finish` of `rote llm memhunter-demo`."""
    plots = {"rates": figure_to_png(rates_plot(result.rates, result.alpha))}
    return {"plots": plots, "report": lambda config: demo_report(result, config=config, plots=plots)}


def grid_plot(result: Any) -> Any:
    """Per-seed values (dots) and the mean with its t-interval (bar) of tpr, fpr and both extraction rates."""
    metrics = ["tpr", "fpr", "extraction_generator", "extraction_prefix"]
    fig = new_figure(7.5, 3.6)
    ax = fig.add_subplot()
    colors = [COLOR_MEMORIZED if m in ("tpr", "extraction_generator") else COLOR_KEPT for m in metrics]
    seeds_bars(ax, {m: result.over_seeds[m] for m in metrics}, result.per_seed, colors)
    ax.axhline(result.alpha, color="#999999", lw=0.8, ls="--")
    ax.set_xticklabels(["tpr (with)", "fpr (without)", "extraction, generator", "extraction, prefix"])
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("rate")
    ax.set_title(f"Over {len(result.seeds)} seeds: per seed (dots), mean and 95% t-interval; dashed: alpha")
    return figure_to_png(fig)


def grid_outputs(result: Any) -> dict[str, Any]:
    """`plots`, `tables` and the `report` builder of `rote llm memhunter-demo --seeds ...` for `RunFolder.finish`."""
    plot = grid_plot(result)
    table = over_seeds_table(result.over_seeds)

    def render(config: Mapping[str, Any]) -> str:
        report = Report("MemHunter over seeds", subtitle=f"{len(result.seeds)} seeds, n = {result.n_per_set} per set")
        report.add_summary(
            {
                "seeds": ", ".join(map(str, result.seeds)),
                "tpr (mean)": result.over_seeds["tpr"]["estimate"],
                "fpr (mean)": result.over_seeds["fpr"]["estimate"],
                "extraction gain, generator - prefix (mean)": result.over_seeds["extraction_gain"]["estimate"],
                "failed seeds": result.n_failed,
            }
        )
        report.add_heading("Over seeds")
        report.add_text(
            "Each seed is a whole demo: its own texts, tiny GPTs trained with and without the dataset, generators. "
            "Intervals are 95% Student-t intervals over seeds (none with one seed); the extraction gain is paired "
            "within each seed."
        )
        report.add_image(plot, alt="tpr, fpr and extraction per seed with their means and intervals")
        report.add_table(table, caption="Mean over seeds and its 95% t-interval")
        report.add_table(result.per_seed, caption="One row per seed")
        report.add_table(
            result.rates, caption="Rejection rates of every seed, by model, score and set size", max_rows=60
        )
        report.add_config(config)
        return report.render()

    return {"plots": {"grid": plot}, "tables": {"over_seeds": table}, "report": render}
