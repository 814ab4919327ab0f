"""`rote demo`: the main job on embedded data, end to end.

Trains a small TabDDPM on the UCI Adult training rows twice, once as they are and once augmented with TabCutMix
(30% new same-class rows, Fang et al., ICML 2025), with a memorization check every few epochs; samples as many
synthetic rows as training rows from each; audits both against the original training rows (holdout: Adult's
test split); scores their quality; and writes one report comparing them. A second section plants known copies
of training rows into the unaugmented model's synthetic table and checks that the audit finds them (ground truth).

Defaults fit `make demo` on a 2-core CPU (a 5,000-row subset of Adult, 200 epochs); `--rows`/`--epochs` shrink
or grow it. Training checkpoints go to OUT/checkpoints/<model>/, so an interrupted demo resumes where it stopped.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.runs import RunFolder, make_rng, progress_bar, seed_everything

MODELS = (("none", "TabDDPM"), ("tabcutmix", "TabDDPM + TabCutMix"))


def _plot_curves(curves: pd.DataFrame) -> bytes:
    from rote.report.plots import figure_to_png, new_figure

    fig = new_figure(7.5, 3.8)
    ax = fig.add_subplot()
    for key, label in MODELS:
        c = curves[curves["model"] == key]
        ax.plot(c["epoch"], 100 * c["memorization_ratio"], marker="o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("memorization ratio (%)")
    ax.set_title("Memorization during training")
    ax.grid(alpha=0.3)
    ax.legend()
    return figure_to_png(fig)


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * float(v):.2f}%"


def _report(
    res: dict[str, Any],
    audits: dict,
    qualities: dict,
    curve_png: bytes,
    hist_pngs: dict[str, bytes],
    planted: dict[str, Any],
    config: dict[str, Any],
) -> str:
    from rote.report.html import Report

    none, tcm = res["models"]["none"], res["models"]["tabcutmix"]
    report = Report(
        "rote demo: memorization of a tabular diffusion model, with and without TabCutMix",
        subtitle=f"UCI Adult, {res['n_train']:,} training rows, TabDDPM ({res['epochs']} epochs)",
    )
    report.add_summary(
        {
            "memorization ratio, TabDDPM": _pct(none["memorization_ratio"]),
            "memorization ratio, TabDDPM + TabCutMix": _pct(tcm["memorization_ratio"]),
            "relative reduction by TabCutMix (one seed; no interval)": _pct(res["relative_reduction"]),
            "exact copies of training rows": f"{none['exact_copies']} / {tcm['exact_copies']}",
            "planted copies found (exact / near)": f"{_pct(planted['exact'])} / {_pct(planted['near'])}",
        }
    )
    report.add_text(
        "A synthetic row counts as memorized when its nearest training row is less than a third as "
        "far as its second-nearest (Fang et al., ICML 2025, distance of their code). Both models are "
        "audited against the original training rows; the TabCutMix model was trained on those rows "
        "plus 30% new rows, each mixing the features of two training rows of the same class."
    )
    rows = []
    for label, key, fmt in (
        ("memorization ratio (lower is better)", "memorization_ratio", _pct),
        ("Mem-AUC", "mem_auc", lambda v: f"{v:.4f}"),
        ("exact copies", "exact_copies", str),
        ("DCR share closer to train than holdout", "dcr_share_audit", _pct),
    ):
        rows.append({"metric": label, "TabDDPM": fmt(none[key]), "TabDDPM + TabCutMix": fmt(tcm[key])})
    for label, key in (
        ("shape", "shape"),
        ("trend", "trend"),
        ("α-precision", "alpha_precision"),
        ("β-recall", "beta_recall"),
        ("C2ST (logistic detection)", "c2st"),
        ("MLE (AUC on Adult test)", "mle_auc"),
    ):
        rows.append(
            {
                "metric": f"{label} (higher is better)",
                "TabDDPM": _pct(none["quality"][key]),
                "TabDDPM + TabCutMix": _pct(tcm["quality"][key]),
            }
        )
    rows.append(
        {
            "metric": "training time (s)",
            "TabDDPM": f"{none['train_seconds']:.0f}",
            "TabDDPM + TabCutMix": f"{tcm['train_seconds']:.0f}",
        }
    )
    report.add_heading("The two models side by side")
    report.add_table(pd.DataFrame(rows), caption="Audit and quality of the synthetic tables")
    report.add_heading("Memorization during training")
    report.add_image(
        curve_png,
        alt="memorization vs epoch",
        caption="Memorization ratio of rows sampled every "
        f"{res['every']} epochs ({res['hook_samples']:,} rows per check), from the same training runs.",
    )
    report.add_heading("Distance ratios of the final synthetic rows")
    for key, label in MODELS:
        report.add_image(
            hist_pngs[key],
            alt=f"ratio histogram {label}",
            caption=f"{label}: rows left of the dashed line count as memorized.",
        )
    report.add_heading("Ground truth: planted copies")
    report.add_text(
        f"{planted['n_exact']} exact and {planted['n_near']} near copies of training rows (one numeric "
        "value moved by 1% of its standard deviation) replaced rows of the TabDDPM synthetic table; the "
        f"audit flags {_pct(planted['exact'])} of the exact and {_pct(planted['near'])} of the near "
        f"copies (memorization ratio of that table: {_pct(planted['memorization_ratio'])})."
    )
    report.add_config(config)
    return report.render()


def run_demo(
    *,
    out: str | os.PathLike = "runs/demo",
    rows: int | None = 5_000,
    epochs: int = 200,
    every: int = 50,
    hook_samples: int = 500,
    timesteps: int | None = None,
    copies: int = 100,
    near_copies: int = 100,
    distance: str = "tabcutmix",
    seed: int = 0,
    device: str = "cpu",
    force: bool = False,
    quiet: bool = False,
    return_status: bool = False,
    mode: str = "paper",
) -> dict[str, Any] | int:
    """Run the demo into `out`; returns the results dict (what results.json holds), or with `return_status` the
    exit status of the finished run (what `rote demo` exits with).

    rows: training rows (a seeded random subset of Adult's 32,561; None = all); epochs: TabDDPM epochs;
    every / hook_samples: memorization check interval (epochs) and rows sampled per check.
    timesteps: diffusion steps T of TabDDPM (None: the preset's 1000).
    mode: TabCutMix's mask, "paper" (Bernoulli, the paper's Alg. 1) or "code" (the reference code's exact count).
    The comparison is ONE seed: its headline is a single draw, not an effect (see docs/tabular.md for the
    multi-seed experiment and its interval).
    """
    from rote.data import dataset_schema, load_dataset
    from rote.report.plots import figure_to_png, ratio_histogram
    from rote.tabular import audit, plant_copies
    from rote.tabular.pipeline import augment_table, make_generator, sample_and_audit, train_generator
    from rote.tabular.quality import quality_report

    for name, value, low in (
        ("epochs", epochs, 1),
        ("every", every, 1),
        ("copies", copies, 0),
        ("near_copies", near_copies, 0),
    ):
        if value < low:
            raise ConfigError(f"`{name}` must be at least {low}, got {value}")
    seed_everything(seed)
    run = RunFolder(out, force=force)
    full = load_dataset("adult", "train")
    holdout = load_dataset("adult", "test")
    schema = dataset_schema("adult")
    if rows is not None:
        if rows < 10:
            raise ConfigError(f"`rows` must be at least 10 (TabCutMix needs two rows per class), got {rows}")
        pick = np.sort(make_rng(seed).permutation(len(full))[: min(int(rows), len(full))])
        train = full.iloc[pick].reset_index(drop=True)
    else:
        train = full
    train.attrs["source"] = "adult:train"
    n = len(train)
    hold = holdout.iloc[np.sort(make_rng(seed + 1).permutation(len(holdout))[: min(n, len(holdout))])]
    hold = hold.reset_index(drop=True)
    tables = {
        key: augment_table(train, schema, key, ratio=0.3, seed=seed, mode=mode if key != "none" else None)[0]
        for key, _ in MODELS
    }
    n_checks = max(1, min(hook_samples, n))

    models: dict[str, Any] = {}
    curves = []
    for i, (key, label) in enumerate(MODELS, 1):
        with progress_bar(epochs, f"{i}/3 training {label} ({len(tables[key]):,} rows)", quiet=quiet) as adv:
            gen = make_generator(
                "tabddpm", preset="small", epochs=epochs, seed=seed, device=device, options={"num_timesteps": timesteps}
            )
            trained = train_generator(
                train,
                schema,
                gen,
                fit_table=tables[key],
                every=every,
                hook_samples=n_checks,
                distance=distance,
                seed=seed,
                checkpoint_dir=run.path / "checkpoints" / key,
                checkpoint_every=every,
                progress=adv,
            )
        models[key] = trained
        curves.append(
            trained.curve[["epoch", "memorization_ratio"]].assign(model=key)[["model", "epoch", "memorization_ratio"]]
        )
    curves_df = pd.concat(curves, ignore_index=True)

    results: dict[str, Any] = {
        "n_train": n,
        "epochs": epochs,
        "every": every,
        "hook_samples": n_checks,
        "distance": distance,
        "models": {},
    }
    audits, qualities, hists = {}, {}, {}
    with progress_bar(7, "3/3 sampling, auditing and scoring both models", quiet=quiet) as advance:
        synthetics: dict[str, pd.DataFrame] = {}
        for key, _ in MODELS:
            seconds = models[key].train_seconds
            synthetic, a = sample_and_audit(
                models[key], train, schema, n, seed=seed, distance=distance, holdout=hold, device=device
            )
            synthetics[key] = synthetic
            advance(1)
            audits[key] = a
            h = a.ratio_histogram
            hists[key] = figure_to_png(
                ratio_histogram(
                    h["edges"],
                    h["counts"],
                    a.threshold,
                    undefined=h.get("undefined", 0),
                    title=f"Distance ratio d1/d2: {dict(MODELS)[key]}",
                )
            )
            advance(1)
            q = quality_report(train, synthetic, schema, real_test=hold, seed=seed)
            qualities[key] = q
            advance(1)
            results["models"][key] = {
                "memorization_ratio": a.memorization_ratio,
                "mem_auc": a.mem_auc,
                "exact_copies": a.exact_copies,
                "dcr_share_audit": (a.dcr or {}).get("share_closer_to_train"),
                "train_seconds": seconds,
                "n_training_rows": len(tables[key]),
                "quality": {
                    k: getattr(q, k)
                    for k in ("shape", "trend", "alpha_precision", "beta_recall", "c2st", "mle_auc", "dcr_share")
                },
            }
        # ground truth: planted copies in the unaugmented model's synthetic table
        base = synthetics["none"]
        planted_table, planted = plant_copies(
            base, train, min(copies, n // 4), min(near_copies, n // 4), schema=schema, seed=seed + 1
        )
        p_audit = audit(train, planted_table, schema=schema, distance=distance, device=device)
        flagged = p_audit.rows["memorized"].to_numpy()[planted["synthetic_row"].to_numpy()]
        recall = {
            kind: float(flagged[(planted["kind"] == kind).to_numpy()].mean())
            if (planted["kind"] == kind).any()
            else None
            for kind in ("exact", "near")
        }
        advance(1)
    none_m = results["models"]["none"]["memorization_ratio"]
    tcm_m = results["models"]["tabcutmix"]["memorization_ratio"]
    results["relative_reduction"] = (none_m - tcm_m) / none_m if none_m > 0 else None
    results["n_seeds"] = 1  # one training run per arm: no interval; see docs/tabular.md for the multi-seed result
    results["planted"] = {
        **recall,
        "n_exact": int((planted["kind"] == "exact").sum()),
        "n_near": int((planted["kind"] == "near").sum()),
        "memorization_ratio": p_audit.memorization_ratio,
    }

    options = {
        "rows": rows,
        "epochs": epochs,
        "timesteps": timesteps,
        "every": every,
        "hook_samples": n_checks,
        "copies": copies,
        "near_copies": near_copies,
        "distance": distance,
        "device": device,
        "train": "adult:train",
        "holdout": "adult:test",
        "generator": "TabDDPM(preset='small')",
        "augmentation": f"TabCutMix(0.3, mode={mode!r})",
        "mode": mode,
        "n_seeds": 1,
    }
    curve_png = _plot_curves(curves_df)
    lines = [
        f"rote demo: TabDDPM on {n:,} UCI Adult training rows, {epochs} epochs, with and without TabCutMix",
        f"memorization ratio: {_pct(none_m)} without, {_pct(tcm_m)} with TabCutMix "
        f"(relative reduction {_pct(results['relative_reduction'])} from ONE seed: a single draw, not an effect; "
        "see docs/tabular.md for multi-seed results)",
    ]
    for key, label in MODELS:
        q = results["models"][key]["quality"]
        lines.append(
            f"{label:<22} shape {_pct(q['shape'])}  trend {_pct(q['trend'])}  C2ST {_pct(q['c2st'])}  "
            f"MLE {_pct(q['mle_auc'])}"
        )
    lines.append(f"planted copies found: {_pct(recall['exact'])} of exact, {_pct(recall['near'])} of near")
    tables_out = {
        **{f"synthetic_{key}": synthetics[key] for key, _ in MODELS},
        **{f"rows_{key}": audits[key].rows for key, _ in MODELS},
        "curves": curves_df,
    }
    status = run.finish(
        results,
        command="rote demo",
        options=options,
        seed=seed,
        tables=tables_out,
        plots={"mem_vs_epoch": curve_png, **{f"ratio_hist_{k}": png for k, png in hists.items()}},
        report=lambda config: _report(results, audits, qualities, curve_png, hists, results["planted"], config),
        summary="\n".join(lines),
        quiet=quiet,
    )
    return status if return_status else results
