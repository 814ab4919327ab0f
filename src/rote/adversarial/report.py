"""report.html and plots for `rote adversarial` runs.

`experiment_outputs(run)`: the DeMem comparison (`rote adversarial demo`); `single_outputs(run, title)`: one model
(`rote adversarial train` / `evaluate`). Each returns the `plots` and `report` builder `RunFolder.finish` takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rote.report.html import Report
from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED, figure_to_png, new_figure

__all__ = ["experiment_outputs", "single_outputs", "metrics_plot", "risk_plot"]

_COLORS = [COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED, "#6a994e", "#7b5ea7", "#888888"]

_WHAT = (
    "Each run trains m small CNNs, each on a random half of one pool of training images, so that every image is "
    "a member of exactly half of the models. Natural and PGD accuracy are measured on held-out test images "
    "(means over the m models). Membership inference is LiRA (Carlini et al. 2022), online, with one fixed "
    "variance, queried with several augmentations: every model in turn is the target and the other m - 1 are its "
    "shadow models; the scores of all (model, image) pairs are pooled into one ROC. TPR at 0.1% FPR is the "
    "leakage DeMem (Luo & Li 2025) aims to cut. DeMem here adds a per-sample penalty only to the high-risk "
    "training images (by default those whose clean loss dropped most from its mean so far: fitted late); "
    "DP-SGD clips and noises every sample's gradient."
)


def metrics_plot(run: Any) -> bytes:
    """Natural / PGD accuracy and MIA AUC, TPR at 1% FPR, one group of bars per run."""
    fig = new_figure(9.0, 3.6)
    names = list(run.runs)
    keys = [
        ("natural_acc", "natural acc"),
        ("robust_acc", "PGD acc"),
        ("mia_auc", "MIA AUC"),
        ("tpr_at_1pct_fpr", "TPR @ 1% FPR"),
    ]
    ax = fig.add_subplot()
    x = np.arange(len(names))
    width = 0.8 / len(keys)
    for i, (k, label) in enumerate(keys):
        ax.bar(
            x + (i - (len(keys) - 1) / 2) * width, [run.runs[n][k] for n in names], width, label=label, color=_COLORS[i]
        )
    ax.set_xticks(x, names, rotation=15, ha="right")
    ax.set_ylim(0, 1.05)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8, ncol=4)
    ax.set_title("Accuracy and membership leakage per training method")
    return figure_to_png(fig)


_RISK_TITLES = {
    "train_loss": "risk = mean clean training loss",
    "feldman": "risk = Feldman memorization estimate",
}


def risk_plot(run: Any) -> bytes:
    """Held-out accuracy by risk quartile, one line per run; one panel per risk score."""
    rb = run.risk_bins
    scores = list(dict.fromkeys(rb["risk"])) if "risk" in rb else ["train_loss"]
    fig = new_figure(4.6 * len(scores), 3.4)
    for p, score in enumerate(scores):
        ax = fig.add_subplot(1, len(scores), p + 1)
        part = rb[rb["risk"] == score] if "risk" in rb else rb
        for i, (name, g) in enumerate(part.groupby("run", sort=False)):
            ax.plot(g["bin"], g["heldout_acc"], marker="o", color=_COLORS[i % len(_COLORS)], label=name)
        ax.set_ylabel("held-out accuracy")
        ax.set_xlabel(f"{'quartile' if score == 'train_loss' else 'bin'} under {run.data.get('risk_reference')}")
        ax.set_title(_RISK_TITLES.get(score, score), fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        if p == 0:
            ax.legend(frameon=False, fontsize=7)
    fig.suptitle("Who pays for privacy: accuracy by risk bin")
    return figure_to_png(fig)


_FELDMAN = (
    "Feldman's memorization estimate of a pool image is the accuracy on it of the models that trained on it minus "
    "that of the models that did not (Feldman 2020), here from the same models LiRA uses (half IN, half OUT per "
    "image), so it costs no extra training; with m models it moves in steps of 2/m, so many images tie. The left "
    "panel bins images by the reference run's mean clean training loss, the right one by its Feldman estimate. For "
    "the reference run itself the Feldman bins select on the held-out accuracy they show (biased low in high "
    "bins); the other runs' models are independent of the binning."
)


def experiment_outputs(run: Any) -> dict[str, Any]:
    """plots and the report builder for an AdversarialRun."""
    plots = {"metrics": metrics_plot(run), "risk_bins": risk_plot(run)}

    def build(config: dict[str, Any]) -> str:
        rep = Report(
            "Adversarial training, DeMem and membership inference",
            subtitle=f"{run.data['source']}, {run.data['n_pool']} pool images, {run.n_models} models per run",
        )
        items = {f"{k}: TPR @ 0.1% FPR": f"{v['tpr_at_0.1pct_fpr']:.4f}" for k, v in run.runs.items()}
        items["attack"] = run.mia_attack
        for k, g in getattr(run, "dp", {}).items():
            items[f"{k}: DP epsilon"] = f"{g['epsilon']:.3g} (delta {g['delta']:g})"
        items["seconds"] = f"{run.seconds:.0f}"
        rep.add_summary(items)
        rep.add_heading("What is measured")
        rep.add_text(_WHAT)
        rep.add_image(plots["metrics"], alt="Accuracy and MIA per run")
        rows = []
        for k, v in run.runs.items():
            d = run.details[k]
            m = d["membership"]
            rows.append(
                {
                    "run": k,
                    **v,
                    "natural_acc_std": d["natural_acc_std"],
                    "robust_acc_std": d["robust_acc_std"],
                    "auc_low": m["auc_interval"]["low"],
                    "auc_high": m["auc_interval"]["high"],
                    "balanced_acc": d["balanced_acc"],
                    "pairs": d["n_pairs"],
                    "excluded": d["n_excluded"],
                    "dp_epsilon": d["dp"]["epsilon"] if "dp" in d else None,
                    "feldman_mean": d.get("feldman_mean"),
                }
            )
        rep.add_table(pd.DataFrame(rows), caption="Per run: accuracies (mean and std over models), LiRA")
        for msg in run.messages:
            rep.add_text(msg)
        rep.add_heading("Accuracy by risk bin")
        rep.add_text(_FELDMAN)
        rep.add_image(plots["risk_bins"], alt="Held-out accuracy by risk quartile")
        rep.add_table(
            run.risk_bins, caption="Train / held-out accuracy and Feldman memorization by risk quartile", max_rows=200
        )
        if getattr(run, "dp", None):
            rep.add_heading("Differential privacy of the DP-SGD runs")
            rep.add_text(
                "RDP accountant of the Poisson-subsampled Gaussian mechanism (Mironov et al. 2019) at sampling rate "
                "batch size / training images, converted to (epsilon, delta) with the classic conversion "
                "(Mironov 2017). Training draws shuffled fixed-size batches, not Poisson samples: this is the "
                "customary figure for such training, not a proof. The largest epsilon over the models is shown."
            )
            rep.add_table(pd.DataFrame([{"run": k, **g} for k, g in run.dp.items()]))
        rep.add_table(run.models, caption="Every model", max_rows=200)
        rep.add_config(config)
        return rep.render()

    return {"plots": plots, "report": build}


def single_outputs(run: Any, *, title: str) -> dict[str, Any]:
    """plots and the report builder for a SingleRun (one model)."""
    plots: dict[str, bytes] = {}
    hist = pd.DataFrame(run.history)
    if len(hist) and "loss" in hist:
        fig = new_figure(6.5, 3.0)
        ax = fig.add_subplot()
        ax.plot(hist["epoch"], hist["loss"], marker="o", color=COLOR_KEPT, label="training objective")
        if "clean_ce" in hist:
            ax.plot(hist["epoch"], hist["clean_ce"], marker="o", color=COLOR_MEMORIZED, label="clean loss")
        ax.set_xlabel("epoch")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, fontsize=8)
        plots["history"] = figure_to_png(fig)

    def build(config: dict[str, Any]) -> str:
        rep = Report(title, subtitle=f"{run.run} on {run.data['source']} ({run.data['n_train']} training images)")
        rep.add_summary(
            {
                "natural accuracy": f"{run.natural_acc:.3f}",
                "PGD accuracy": f"{run.robust_acc:.3f}",
                "attack": f"{run.attack['norm']} eps {run.attack['eps']:g}, {run.attack['steps']} steps",
                "checkpoint": run.checkpoint or "-",
                **(
                    {"DP": f"epsilon {run.dp['epsilon']:.3g} at delta {run.dp['delta']:g} (RDP, classic)"}
                    if getattr(run, "dp", None)
                    else {}
                ),
            }
        )
        rep.add_heading("Threshold membership attacks (training vs test images)")
        rep.add_table(
            pd.DataFrame(
                [
                    {"attack": k, **{kk: vv for kk, vv in m.items() if not isinstance(vv, dict)}}
                    for k, m in run.membership.items()
                ]
            )
        )
        if "history" in plots:
            rep.add_heading("Training")
            rep.add_image(plots["history"], alt="Loss per epoch")
            rep.add_table(hist, caption="History per epoch")
        rep.add_config(config)
        return rep.render()

    return {"plots": plots, "report": build}
