"""report.html and plots for `rote ssl` runs: LayerMem per layer (with the top/bottom/random breakdown), UnitMem
per unit and layer (with ClassMem and the supervised baseline when measured), and the pruning accuracies.
`ssl_outputs(result)` and `train_outputs(result)` give `plots` and a `report(config)` builder for `RunFolder.finish`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rote.report.html import Report
from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED, figure_to_png, new_figure

_WHAT = (
    "LayerMem of a layer is SSLMem (Wang et al., ICLR 2024) with both encoders cut after that layer: the mean "
    "distance between the normalized representations of an image and its augmented views in g (trained without the "
    "candidates) minus that in f (trained with them), divided by its range over the candidates. delta-LayerMem is "
    "the increase over the previous layer. UnitMem of a unit (Wang et al., NeurIPS 2024) is its selectivity for a "
    "single candidate: (mu_max - mu_other) / (mu_max + mu_other) over the units' mean activations on augmented "
    "views; ClassMem is the same index over class means."
)


def layer_plot(result: Any) -> bytes:
    """LayerMem per layer for all, top-k, bottom-k and random-k candidates, and delta-LayerMem bars."""
    d = pd.DataFrame(result.layer_details)
    lay = pd.DataFrame(result.layers)
    fig = new_figure(9.5, 4.0)
    ax, ax2 = fig.subplots(1, 2)
    xs = np.arange(len(lay))
    ax.plot(xs, lay.layermem, "o-", color="k", label="all candidates")
    ax.plot(xs, d.top_k_layermem, "o-", color=COLOR_MEMORIZED, label="top-k (by SSLMem)")
    ax.plot(xs, d.random_k_layermem, "o-", color=COLOR_MIXED, label="random k")
    ax.plot(xs, d.bottom_k_layermem, "o-", color=COLOR_KEPT, label="bottom-k")
    ax2.bar(xs, lay.delta_layermem, color=np.where(lay.delta_layermem >= 0, COLOR_MEMORIZED, COLOR_KEPT))
    for a, title in ((ax, "LayerMem"), (ax2, "delta-LayerMem")):
        a.set_xticks(xs, lay.name, rotation=45, ha="right", fontsize=8)
        a.set_title(title)
        a.axhline(0, color="#999999", lw=0.8)
        a.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return figure_to_png(fig)


def unit_plot(result: Any) -> bytes:
    """UnitMem of every unit, one strip per layer, and ClassMem / supervised means where measured."""
    u = result.units
    lay = [r["name"] for r in result.layers]
    fig = new_figure(9.5, 4.0)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    for i, name in enumerate(lay):
        v = u.loc[u.layer == name, "unitmem"].to_numpy()
        ax.scatter(i + rng.uniform(-0.25, 0.25, len(v)), v, s=5, alpha=0.5, color=COLOR_MEMORIZED)
    d = pd.DataFrame(result.layer_details)
    xs = np.arange(len(lay))
    ax.plot(xs, d.unitmem_mean, "o-", color="k", label="UnitMem mean (SSL)")
    if "classmem_mean" in d:
        ax.plot(xs, d.classmem_mean, "s--", color=COLOR_KEPT, label="ClassMem mean (SSL)")
    if "supervised_unitmem_mean" in d:
        ax.plot(xs, d.supervised_unitmem_mean, "o:", color=COLOR_MIXED, label="UnitMem mean (supervised)")
        ax.plot(xs, d.supervised_classmem_mean, "s:", color="#6a994e", label="ClassMem mean (supervised)")
    ax.axhline(result.unit_threshold, color="#999999", lw=0.8, ls="--")
    ax.set_xticks(xs, lay, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("selectivity")
    ax.set_ylim(0, 1.02)
    ax.set_title("UnitMem per unit (dots) and per-layer means")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return figure_to_png(fig)


def pruning_plot(pruning: dict[str, float]) -> bytes:
    fig = new_figure(5.5, 3.5)
    ax = fig.add_subplot()
    keys = list(pruning)
    colors = {"top": COLOR_MEMORIZED, "random": COLOR_MIXED, "bottom": COLOR_KEPT, "none": "#777777"}
    ax.bar(keys, [pruning[k] for k in keys], color=[colors.get(k, "k") for k in keys])
    lo = min(pruning.values())
    ax.set_ylim(max(0.0, lo - 0.1), min(1.0, max(pruning.values()) + 0.05))
    ax.set_ylabel("linear-probe accuracy")
    ax.set_title("Pruned units chosen by UnitMem")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return figure_to_png(fig)


def ssl_outputs(result: Any, *, title: str = "rote ssl localize") -> dict[str, Any]:
    """Plots and the report builder of a localize / demo / prune run."""
    plots = {"layermem": layer_plot(result), "unitmem": unit_plot(result)}
    if result.pruning:
        plots["pruning"] = pruning_plot(result.pruning)
    tables = {"layers": pd.DataFrame(result.layer_details), "consistency": pd.DataFrame(result.consistency)}

    def report(config: dict[str, Any]) -> str:
        rep = Report(title, f"{result.n_points} candidate points, {len(result.layers)} layers")
        items: dict[str, Any] = {"SSLMem (output, mean)": result.sslmem}
        last = result.layers[-1]
        items[f"LayerMem {last['name']}"] = last["layermem"]
        items[f"units with UnitMem > {result.unit_threshold} (all layers)"] = sum(
            r["units_highly_memorizing"] for r in result.layers
        )
        if result.ttest:
            items["UnitMem vs SSLMem, one-sided Welch p"] = result.ttest["p_one_sided"]
        for k, v in (result.pruning or {}).items():
            items[f"probe accuracy, pruned {k}"] = v
        for k, v in (getattr(result, "finetune", None) or {}).items():
            items[f"accuracy, fine-tuned {k}"] = v
        rep.add_summary(items)
        rep.add_heading("What is measured")
        rep.add_text(_WHAT)
        rep.add_heading("Per layer")
        rep.add_image(plots["layermem"], alt="LayerMem per layer", caption="Top/bottom/random k ranked by SSLMem.")
        rep.add_table(pd.DataFrame(result.layers), caption="The `layers` key of results.json")
        rep.add_table(pd.DataFrame(result.layer_details), caption="Breakdown, UnitMem and ClassMem per layer")
        rep.add_heading("Per unit")
        rep.add_image(plots["unitmem"], alt="UnitMem per unit", caption="Dashed line: the highly-memorizing threshold.")
        if result.ttest:
            t = result.ttest
            rep.add_text(
                f"Highest unit selectivity of the top-{t['k']} SSLMem points: mean {t['top_mean']:.4f}; of the "
                f"bottom-{t['k']}: {t['bottom_mean']:.4f}; Welch t = {t['t']:.3f}, "
                f"one-sided p = {t['p_one_sided']:.3g}."
            )
        rep.add_heading("Consistency between layers")
        rep.add_table(pd.DataFrame(result.consistency), caption="Top-k overlap and Kendall tau of per-point LayerMem")
        if result.pruning:
            rep.add_heading("Pruning")
            rep.add_image(plots["pruning"], alt="probe accuracy after pruning")
        if getattr(result, "finetune", None):
            k = result.setup.get("finetune_k")
            rep.add_heading("Fine-tuning")
            rep.add_text(
                f"Downstream test accuracy after fine-tuning {k} layer(s) of f with a linear head on the probe's "
                "images: the layers with the highest LayerMem (most), the last ones (last) or random ones (random); "
                "one seed. `rote ssl finetune` repeats it over seeds with intervals."
            )
            rep.add_table(pd.DataFrame([result.finetune]), caption="Accuracy per rule")
        if result.history is not None and len(result.history):
            rep.add_heading("Training")
            rep.add_table(result.history, caption="Per-epoch training loss")
        rep.add_config(config)
        return rep.render()

    return {"plots": plots, "tables": tables, "report": report}


def train_outputs(history: pd.DataFrame, info: dict[str, Any]) -> dict[str, Any]:
    """Loss curve and report of `rote ssl train`."""
    fig = new_figure(6.5, 3.5)
    ax = fig.add_subplot()
    ax.plot(history.epoch, history.loss, "o-", color=COLOR_KEPT)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{info['method']} loss")
    ax.spines[["top", "right"]].set_visible(False)
    png = figure_to_png(fig)

    def report(config: dict[str, Any]) -> str:
        rep = Report(
            "rote ssl train", f"{info['method']} {info['arch']['arch']} on {info['data']}, role {info['role']}"
        )
        rep.add_summary(
            {
                "final loss": float(history.loss.iloc[-1]),
                "epochs": int(history.epoch.iloc[-1]),
                "training images": info["n_train"],
            }
        )
        rep.add_image(png, alt="training loss")
        rep.add_table(history, caption="Per epoch")
        rep.add_config(config)
        return rep.render()

    return {"plots": {"loss": png}, "report": report}


_FT_WHAT = (
    "Each rule chooses k layers of the encoder from the localize result: 'most' the k with the highest LayerMem, "
    "'most-delta' the k with the highest delta-LayerMem, 'last' the last k (standard practice), 'random' k drawn "
    "with the seed, 'none' no layer (linear head only). Those layers and a new linear head are fine-tuned on the "
    "labelled downstream images; every other layer is frozen (no gradient, BatchNorm in eval mode, bit-for-bit "
    "unchanged). The paper (Wang et al., NeurIPS 2024, Tab. 4: SimCLR ResNet9 on CIFAR-10, fine-tuned on STL-10) "
    "found fine-tuning the most-memorizing layers better than fine-tuning the last ones."
)


def finetune_plot(result: Any) -> bytes:
    """Test accuracy per rule (mean, 95% t-interval, one dot per seed) and LayerMem per layer."""
    runs = result.runs
    colors = {"most": COLOR_MEMORIZED, "most-delta": "#b5179e", "last": COLOR_KEPT, "random": COLOR_MIXED}
    fig = new_figure(9.5, 3.8)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    xs = np.arange(len(result.rules))
    for i, r in enumerate(result.rules):
        iv = result.intervals[r]
        c = colors.get(r, "#777777")
        ax.bar(i, iv["estimate"], color=c, alpha=0.6)
        if np.isfinite(iv["low"]):
            ax.errorbar(
                i, iv["estimate"], yerr=[[iv["estimate"] - iv["low"]], [iv["high"] - iv["estimate"]]], color="k"
            )
        v = runs.loc[runs.rule == r, "accuracy"].to_numpy()
        ax.scatter(np.full(len(v), i), v, s=12, color="k", zorder=3)
    acc = runs.accuracy.to_numpy()
    ax.set_ylim(max(0.0, acc.min() - 0.05), min(1.0, acc.max() + 0.03))
    ax.set_xticks(xs, result.rules)
    ax.set_ylabel("downstream test accuracy")
    ax.set_title(f"fine-tuning k={result.k} layers")
    lay = pd.DataFrame(result.layers)
    lx = np.arange(len(lay))
    ax2.plot(lx, lay.layermem, "o-", color="k", label="LayerMem")
    ax2.bar(lx, lay.delta_layermem, color="#cccccc", label="delta-LayerMem")
    for r, marker, size in (("last", "s", 110), ("most-delta", "v", 80), ("most", "^", 50)):  # a layer in two sets
        if r in result.chosen:  # shows both markers, the smaller on top
            sel = lay.name.isin(result.chosen[r]).to_numpy()
            ax2.scatter(lx[sel], lay.layermem[sel], marker=marker, s=size, color=colors[r], zorder=3, label=r)
    ax2.set_xticks(lx, lay.name, rotation=45, ha="right", fontsize=8)
    ax2.axhline(0, color="#999999", lw=0.8)
    ax2.set_title("layers chosen, by LayerMem")
    ax2.legend(frameon=False, fontsize=8)
    for a in (ax, ax2):
        a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return figure_to_png(fig)


def finetune_outputs(result: Any) -> dict[str, Any]:
    """Plot and report of `rote ssl finetune`."""
    png = finetune_plot(result)

    def report(config: dict[str, Any]) -> str:
        s = result.setup
        rep = Report(
            "rote ssl finetune",
            f"k={result.k} layers, {len(result.seeds)} seed(s), {s.get('n_train')} + {s.get('n_test')} "
            f"{s.get('data')} images",
        )
        items: dict[str, Any] = {}
        for r in result.rules:
            iv = result.intervals[r]
            items[f"accuracy, {r}"] = f"{iv['estimate']:.4f} [{iv['low']:.4f}, {iv['high']:.4f}]"
        for name, iv in result.differences.items():
            items[name] = f"{iv['estimate']:+.4f} [{iv['low']:+.4f}, {iv['high']:+.4f}]"
        rep.add_summary(items)
        rep.add_heading("What is measured")
        rep.add_text(_FT_WHAT)
        rep.add_image(
            png, alt="fine-tuning accuracy per rule", caption="Bars: mean; lines: 95% t-interval; dots: seeds."
        )
        rep.add_table(result.runs, caption="One fine-tuning run per rule and seed")
        rep.add_table(pd.DataFrame(result.layers), caption="The localize scores the layers were chosen from")
        rep.add_config(config)
        return rep.render()

    return {"plots": {"finetune": png}, "report": report}
