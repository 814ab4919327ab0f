"""report.html and plots for `rote icl` runs: training curves (train), the sweep analysis (sweep, analyze, demo)
and the stand-alone MLP (memorize). Each `*_outputs(result)` gives `plots` and a `report(config)` builder for
`RunFolder.finish`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rote.report.html import Report
from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED, figure_to_png, new_figure

_SET_COLORS = {"icl": COLOR_KEPT, "icl2": "#6a994e", "iwl": COLOR_MEMORIZED, "train": "#777777"}
_WHAT = (
    "ICL accuracy is measured on novel classes (only the context can give the answer), ICL2 on trained classes with "
    "swapped labels (the context contradicts memory), IWL on trained classes whose query is absent from the context "
    "(only memorization can give the answer). t_ICL is the first step with ICL accuracy > 0.95; a run is transient "
    "when ICL accuracy later falls below 0.9 (Nguyen and Reddy, ICLR 2025)."
)


def curves_plot(history: pd.DataFrame, title: str) -> bytes:
    """Accuracy over training per evaluation set, one thin line per seed."""
    fig = new_figure(8.5, 3.8)
    ax = fig.add_subplot()
    for name, g in history[history.set != "train"].groupby("set", sort=False):
        for i, (_, gs) in enumerate(g.groupby("seed")):
            ax.plot(
                gs.step, gs.accuracy, color=_SET_COLORS.get(name, "k"), lw=1, alpha=0.7, label=name if i == 0 else None
            )
    ax.set_xlabel("SGD step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return figure_to_png(fig)


def icl_train_outputs(result: Any) -> dict[str, Any]:
    png = curves_plot(result.history, "ICL, ICL2 and IWL accuracy over training")

    def report(config: dict[str, Any]) -> str:
        p = result.per_seed
        rep = Report("rote icl train", f"{result.model}, {len(result.seeds)} seeds, {result.steps} steps")
        items = {"task": ", ".join(f"{k}={v}" for k, v in result.task.items() if k != "means_seed")}
        for col in ("icl_acc", "icl2_acc", "iwl_acc"):
            if col in p:
                items[f"final {col.replace('_acc', '').upper()} accuracy (mean)"] = f"{p[col].mean():.3f}"
        items["seeds with ICL (t_ICL found)"] = f"{int(p.t_icl.notna().sum())} / {len(p)}"
        items["transient seeds"] = int(p.transient.sum())
        rep.add_summary(items)
        rep.add_heading("What is measured")
        rep.add_text(_WHAT)
        rep.add_heading("Curves")
        rep.add_image(png, alt="accuracy over training", caption="One line per seed and evaluation set.")
        rep.add_table(p, caption="Per seed")
        rep.add_config(config)
        return rep.render()

    return {"plots": {"curves": png}, "report": report}


def sweep_plots(result: Any) -> dict[str, bytes]:
    from rote.icl.analysis import sigmoid4

    plots: dict[str, bytes] = {}
    runs = result.runs
    fin = runs[runs.K != "inf"].assign(K=lambda f: f.K.astype(float))
    if not fin.empty:
        fig = new_figure(8.5, 3.8)
        ax = fig.add_subplot()
        colors = [COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED, "#6a994e", "#7b4fa0", "#333333"]
        base = fin[~fin.get("equalize", pd.Series(False, index=fin.index)).astype(bool)]
        for i, (n_ctx, g) in enumerate(base.groupby("N")):
            c = colors[i % len(colors)]
            ax.scatter(g.K, g.icl_acc, s=12, color=c, alpha=0.6, label=f"N={n_ctx}")
            ks = result.k_star.get(str(int(n_ctx)))
            if ks:
                grid = np.linspace(np.log10(g.K.min()), np.log10(g.K.max()), 200)
                ax.plot(10**grid, sigmoid4(grid, *ks["sigmoid"]), color=c, lw=1.5)
                ax.axvline(ks["k_star"], color=c, lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("K (training classes)")
        ax.set_ylabel("final ICL accuracy")
        ax.set_title("IWL -> ICL transition: sigmoid fits in log10 K, K* dotted")
        ax.legend(frameon=False, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        plots["transition"] = figure_to_png(fig)
    ks = result.k_star
    if len(ks) >= 2:
        fig = new_figure(5.5, 4.0)
        ax = fig.add_subplot()
        ns = np.array(sorted(int(n) for n in ks))
        kv = np.array([ks[str(n)]["k_star"] for n in ns])
        lo = np.array([ks[str(n)]["ci"][0] or np.nan for n in ns])
        hi = np.array([ks[str(n)]["ci"][1] or np.nan for n in ns])
        ax.errorbar(ns, kv, yerr=[kv - lo, hi - kv], fmt="o", color=COLOR_KEPT, capsize=3, label="K* (95% CI)")
        e = result.exponent
        if e.get("value") is not None:
            ref = kv[0] * (ns / ns[0]) ** e["predicted"]
            ax.plot(ns, ref, ":", color="k", label=f"slope 1/nu = {e['predicted']:.2f} (paper)")
            fit = np.exp(np.polyfit(np.log(ns), np.log(kv), 1)[1]) * ns ** e["value"]
            ax.plot(ns, fit, color=COLOR_KEPT, lw=1, label=f"fit slope {e['value']:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (context length)")
        ax.set_ylabel("K*")
        ax.legend(frameon=False, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        plots["k_star"] = figure_to_png(fig)
    src = runs[runs.K == "inf"] if (runs.K == "inf").any() else None
    if src is not None and src.t_icl.notna().any():
        fig = new_figure(6.5, 3.6)
        ax = fig.add_subplot()
        for n_ctx, g in src.groupby("N"):
            t = np.sort(g.t_icl.dropna().to_numpy())
            ax.step(t, 1 - np.arange(len(t)) / len(t), where="post", label=f"N={n_ctx}")
        ax.set_xlabel("t_ICL (steps)")
        ax.set_ylabel("share of seeds with t_ICL >= t")
        ax.set_title("t_ICL across seeds at K = inf")
        ax.legend(frameon=False, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        plots["t_icl"] = figure_to_png(fig)
    if not result.mlp_runs.empty and result.nu and result.nu.get("value") is not None:
        fig = new_figure(5.5, 4.0)
        ax = fig.add_subplot()
        m = result.mlp_runs
        ax.scatter(m.K, m.I_K, s=12, color=COLOR_MEMORIZED, alpha=0.6, label="I_K per seed")
        ks_ = np.array(result.nu["K"], float)
        ik = np.array(result.nu["I_K"], float)
        ax.plot(
            ks_,
            ik[0] * (ks_ / ks_[0]) ** result.nu["value"],
            color=COLOR_MEMORIZED,
            label=f"nu = {result.nu['value']:.2f}",
        )
        ax.plot(ks_, ik[0] * (ks_ / ks_[0]) ** 0.7, ":", color="k", label="nu = 0.7 (paper)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("K")
        ax.set_ylabel("I_K = integral of c1 dt")
        ax.legend(frameon=False, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        plots["nu"] = figure_to_png(fig)
    return plots


def _ci(v: dict | None, digits: str = ".4g") -> str:
    if not v or v.get("value", v.get("k_star")) is None:
        return "n/a"
    val = v.get("value", v.get("k_star"))
    ci = v.get("ci") or [None, None]
    return f"{val:{digits}}" + (f" [{ci[0]:{digits}}, {ci[1]:{digits}}]" if ci[0] is not None else "")


def icl_analysis_outputs(result: Any, command: str = "rote icl analyze") -> dict[str, Any]:
    plots = sweep_plots(result)

    def report(config: dict[str, Any]) -> str:
        rep = Report(command, "transition from memorization (IWL) to in-context learning (ICL)")
        items: dict[str, Any] = {"runs": result.n_runs}
        for n, v in result.k_star.items():
            items[f"K* at N={n}"] = _ci(v)
        e = result.exponent
        items["exponent of K* vs N"] = _ci(e, ".3g") + f" (paper 1/nu = {e['predicted']:.3g})"
        if result.nu:
            items["nu (stand-alone MLP)"] = _ci(result.nu, ".3g") + " (paper 0.7)"
        if result.t_icl.get("median_slope_per_N") is not None:
            items["median t_ICL slope per unit N"] = f"{result.t_icl['median_slope_per_N']:.4g} steps"
        if result.missing:
            items["missing points"] = len(result.missing)
        rep.add_summary(items)
        rep.add_heading("What is measured")
        rep.add_text(
            "K* per N is 10^b of a sigmoid d / (1 + exp(-a (log10 K - b))) + c fitted to the final ICL accuracy of "
            "every run; its interval is a bootstrap over seeds. The exponent is the slope of log K* against log N. "
            + _WHAT
        )
        for name, caption in (
            ("transition", "Final ICL accuracy per run against K, with the sigmoid fits."),
            ("k_star", "K* against N on log axes, with the paper's slope 1/nu."),
            ("t_icl", "Survival curve of t_ICL across seeds at K = inf (a long tail is a slow fall)."),
            ("nu", "The stand-alone MLP's integrated loss residual I_K against K."),
        ):
            if name in plots:
                rep.add_image(plots[name], alt=name, caption=caption)
        rep.add_heading("t_ICL")
        rep.add_table(pd.DataFrame(result.t_icl["per_N"]).T.reset_index(names="N"), caption=result.t_icl["runs_from"])
        if result.bimodality:
            rep.add_heading("Outcomes near K*")
            rep.add_table(pd.DataFrame(result.bimodality).T.reset_index(names="N"), caption="At the K nearest K*")
        if not result.acquired.empty:
            rep.add_heading("Share of runs acquiring ICL")
            rep.add_table(result.acquired, caption="final ICL accuracy > 0.75", max_rows=200)
        if result.missing:
            rep.add_text("Missing points: " + "; ".join(result.missing), note=True)
        rep.add_table(result.runs, caption="Every run", max_rows=400)
        rep.add_config(config)
        return rep.render()

    return {"plots": plots, "report": report}


def memorize_outputs(result: Any) -> dict[str, Any]:
    fig = new_figure(8.5, 3.6)
    ax = fig.add_subplot()
    cmap = [COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED, "#6a994e", "#7b4fa0", "#333333"]
    for i, (k, gk) in enumerate(result.curve.groupby("K")):
        for j, (_, g) in enumerate(gk.groupby("seed")):
            label = f"K={k}" if j == 0 else None
            ax.plot(g.step, g.c1, color=cmap[i % len(cmap)], lw=1, alpha=0.7, label=label)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("c1 = mean sigmoid(-y z)")
    ax.set_yscale("log")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    png = figure_to_png(fig)

    def report(config: dict[str, Any]) -> str:
        rep = Report("rote icl memorize", f"stand-alone MLP memorizing K = {', '.join(map(str, result.K))} items")
        p = result.per_seed
        rep.add_summary(
            {
                **{f"I_K at K={k}": f"{g.I_K.mean():.4g} (final c1 {g.c1.mean():.3g})" for k, g in p.groupby("K")},
                "nu (I_K ~ K^nu)": _ci(result.nu, ".3g") + " (paper 0.7)",
            }
        )
        rep.add_text(
            "c1(t) is the mean over the K training items of sigmoid(-y z), the loss residual the MLP leaves; I_K(t) is "
            "its integral over SGD steps. Nguyen and Reddy find I_K(inf) ~ K^0.7."
        )
        rep.add_image(png, alt="c1 over training")
        rep.add_table(p, caption="Per seed")
        rep.add_config(config)
        return rep.render()

    return {"plots": {"c1": png}, "report": report}
