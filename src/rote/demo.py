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
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.runs import RunFolder, make_rng, progress_bar, read_json, seed_everything

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


def _report(res: dict[str, Any], audits: dict, qualities: dict, curve_png: bytes, hist_pngs: dict[str, bytes],
            planted: dict[str, Any], config: dict[str, Any]) -> str:
    from rote.report.html import Report

    none, tcm = res["models"]["none"], res["models"]["tabcutmix"]
    report = Report("rote demo: memorization of a tabular diffusion model, with and without TabCutMix",
                    subtitle=f"UCI Adult, {res['n_train']:,} training rows, TabDDPM ({res['epochs']} epochs)")
    report.add_summary({
        "memorization ratio, TabDDPM": _pct(none["memorization_ratio"]),
        "memorization ratio, TabDDPM + TabCutMix": _pct(tcm["memorization_ratio"]),
        "relative reduction by TabCutMix": _pct(res["relative_reduction"]),
        "exact copies of training rows": f"{none['exact_copies']} / {tcm['exact_copies']}",
        "planted copies found (exact / near)": f"{_pct(planted['exact'])} / {_pct(planted['near'])}",
    })
    report.add_text("A synthetic row counts as memorized when its nearest training row is less than a third as "
                    "far as its second-nearest (Fang et al., ICML 2025, distance of their code). Both models are "
                    "audited against the original training rows; the TabCutMix model was trained on those rows "
                    "plus 30% new rows, each mixing the features of two training rows of the same class.")
    rows = []
    for label, key, fmt in (("memorization ratio (lower is better)", "memorization_ratio", _pct),
                            ("Mem-AUC", "mem_auc", lambda v: f"{v:.4f}"),
                            ("exact copies", "exact_copies", str),
                            ("DCR share closer to train than holdout", "dcr_share_audit", _pct)):
        rows.append({"metric": label, "TabDDPM": fmt(none[key]), "TabDDPM + TabCutMix": fmt(tcm[key])})
    for label, key in (("shape", "shape"), ("trend", "trend"), ("α-precision", "alpha_precision"),
                       ("β-recall", "beta_recall"), ("C2ST (logistic detection)", "c2st"),
                       ("MLE (AUC on Adult test)", "mle_auc")):
        rows.append({"metric": f"{label} (higher is better)", "TabDDPM": _pct(none["quality"][key]),
                     "TabDDPM + TabCutMix": _pct(tcm["quality"][key])})
    rows.append({"metric": "training time (s)", "TabDDPM": f"{none['train_seconds']:.0f}",
                 "TabDDPM + TabCutMix": f"{tcm['train_seconds']:.0f}"})
    report.add_heading("The two models side by side")
    report.add_table(pd.DataFrame(rows), caption="Audit and quality of the synthetic tables")
    report.add_heading("Memorization during training")
    report.add_image(curve_png, alt="memorization vs epoch", caption="Memorization ratio of rows sampled every "
                     f"{res['every']} epochs ({res['hook_samples']:,} rows per check), from the same training runs.")
    report.add_heading("Distance ratios of the final synthetic rows")
    for key, label in MODELS:
        report.add_image(hist_pngs[key], alt=f"ratio histogram {label}", caption=f"{label}: rows left of the "
                         "dashed line count as memorized.")
    report.add_heading("Ground truth: planted copies")
    report.add_text(f"{planted['n_exact']} exact and {planted['n_near']} near copies of training rows (one numeric "
                    "value moved by 1% of its standard deviation) replaced rows of the TabDDPM synthetic table; the "
                    f"audit flags {_pct(planted['exact'])} of the exact and {_pct(planted['near'])} of the near "
                    f"copies (memorization ratio of that table: {_pct(planted['memorization_ratio'])}).")
    report.add_config(config)
    return report.render()


def run_demo(*, out: str | os.PathLike = "runs/demo", rows: int | None = 5_000, epochs: int = 200,
             every: int = 50, hook_samples: int = 500, timesteps: int | None = None, copies: int = 100,
             near_copies: int = 100,
             distance: str = "tabcutmix", seed: int = 0, device: str = "cpu", force: bool = False,
             quiet: bool = False) -> dict[str, Any]:
    """Run the demo into `out`; returns the results dict (what results.json holds).

    rows: training rows (a seeded random subset of Adult's 32,561; None = all); epochs: TabDDPM epochs;
    every / hook_samples: memorization check interval (epochs) and rows sampled per check.
    timesteps: diffusion steps T of TabDDPM (None: the preset's 1000).
    """
    from rote.data import dataset_schema, load_dataset
    from rote.report.plots import figure_to_png, ratio_histogram
    from rote.tabular import audit, plant_copies
    from rote.tabular.augment import TabCutMix
    from rote.tabular.models import MemorizationHook, TabDDPM
    from rote.tabular.quality import quality_report

    for name, value, low in (("--epochs", epochs, 1), ("--every", every, 1), ("--copies", copies, 0),
                             ("--near-copies", near_copies, 0)):
        if value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}")
    seed_everything(seed)
    run = RunFolder(out, force=force)
    full = load_dataset("adult", "train")
    holdout = load_dataset("adult", "test")
    schema = dataset_schema("adult")
    if rows is not None:
        if rows < 10:
            raise ConfigError(f"--rows must be at least 10 (TabCutMix needs two rows per class), got {rows}")
        pick = np.sort(make_rng(seed).permutation(len(full))[: min(int(rows), len(full))])
        train = full.iloc[pick].reset_index(drop=True)
    else:
        train = full
    train.attrs["source"] = "adult:train"
    n = len(train)
    hold = holdout.iloc[np.sort(make_rng(seed + 1).permutation(len(holdout))[: min(n, len(holdout))])]
    hold = hold.reset_index(drop=True)
    tables = {"none": train, "tabcutmix": TabCutMix(ratio=0.3, seed=seed).fit(train, schema).augment(train)}
    n_checks = max(1, min(hook_samples, n))

    models: dict[str, Any] = {}
    curves = []
    for i, (key, label) in enumerate(MODELS, 1):
        hook = MemorizationHook(train, schema, every=every, n_samples=n_checks, distance=distance, seed=seed)
        start = time.perf_counter()
        with progress_bar(epochs, f"{i}/3 training {label} ({len(tables[key]):,} rows)", quiet=quiet) as adv:
            model = TabDDPM(preset="small", epochs=epochs, num_timesteps=timesteps, seed=seed, device=device).fit(
                tables[key], schema, callbacks=[hook], checkpoint_dir=run.path / "checkpoints" / key,
                checkpoint_every=every, progress=adv)
        models[key] = (model, time.perf_counter() - start)
        marks = [h for h in model.history_ if h.get("memorization_ratio") is not None]
        curves.append(pd.DataFrame({"model": key, "epoch": [h["epoch"] for h in marks],
                                    "memorization_ratio": [h["memorization_ratio"] for h in marks]}))
    curves_df = pd.concat(curves, ignore_index=True)

    results: dict[str, Any] = {"n_train": n, "epochs": epochs, "every": every, "hook_samples": n_checks,
                               "distance": distance, "models": {}}
    audits, qualities, hists = {}, {}, {}
    with progress_bar(7, "3/3 sampling, auditing and scoring both models", quiet=quiet) as advance:
        for key, _ in MODELS:
            model, seconds = models[key]
            synthetic = model.sample(n, seed=seed)
            run.write_parquet(f"synthetic_{key}.parquet", synthetic)
            advance(1)
            a = audit(train, synthetic, holdout=hold, schema=schema, distance=distance, device=device)
            audits[key] = a
            run.write_parquet(f"rows_{key}.parquet", a.rows)
            h = a.ratio_histogram
            hists[key] = figure_to_png(ratio_histogram(h["edges"], h["counts"], a.threshold,
                                                       undefined=h.get("undefined", 0),
                                                       title=f"Distance ratio d1/d2: {dict(MODELS)[key]}"))
            advance(1)
            q = quality_report(train, synthetic, schema, real_test=hold, seed=seed)
            qualities[key] = q
            advance(1)
            results["models"][key] = {
                "memorization_ratio": a.memorization_ratio, "mem_auc": a.mem_auc, "exact_copies": a.exact_copies,
                "dcr_share_audit": (a.dcr or {}).get("share_closer_to_train"), "train_seconds": seconds,
                "n_training_rows": len(tables[key]),
                "quality": {k: getattr(q, k) for k in ("shape", "trend", "alpha_precision", "beta_recall", "c2st",
                                                        "mle_auc", "dcr_share")},
            }
        # ground truth: planted copies in the unaugmented model's synthetic table
        base = pd.read_parquet(run.path / "synthetic_none.parquet")
        planted_table, planted = plant_copies(base, train, min(copies, n // 4), min(near_copies, n // 4),
                                              schema=schema, seed=seed + 1)
        p_audit = audit(train, planted_table, schema=schema, distance=distance, device=device)
        flagged = p_audit.rows["memorized"].to_numpy()[planted["synthetic_row"].to_numpy()]
        recall = {kind: float(flagged[(planted["kind"] == kind).to_numpy()].mean())
                  if (planted["kind"] == kind).any() else None for kind in ("exact", "near")}
        advance(1)
    none_m = results["models"]["none"]["memorization_ratio"]
    tcm_m = results["models"]["tabcutmix"]["memorization_ratio"]
    results["relative_reduction"] = (none_m - tcm_m) / none_m if none_m > 0 else None
    results["planted"] = {**recall, "n_exact": int((planted["kind"] == "exact").sum()),
                          "n_near": int((planted["kind"] == "near").sum()),
                          "memorization_ratio": p_audit.memorization_ratio}

    options = {"rows": rows, "epochs": epochs, "timesteps": timesteps, "every": every, "hook_samples": n_checks,
               "copies": copies, "near_copies": near_copies, "distance": distance, "device": device,
               "train": "adult:train", "holdout": "adult:test", "generator": "TabDDPM(preset='small')", "augmentation": "TabCutMix(0.3)"}
    config = read_json(run.write_config("rote demo", options, seed=seed))
    curve_png = _plot_curves(curves_df)
    run.write_bytes("mem_vs_epoch.png", curve_png)
    for key, png in hists.items():
        run.write_bytes(f"ratio_hist_{key}.png", png)
    run.write_parquet("curves.parquet", curves_df)
    run.write_text("report.html", _report(results, audits, qualities, curve_png, hists, results["planted"], config))
    run.write_json("results.json", results)  # last: marks the run finished

    print(f"rote demo: TabDDPM on {n:,} UCI Adult training rows, {epochs} epochs, with and without TabCutMix")
    print(f"memorization ratio: {_pct(none_m)} without, {_pct(tcm_m)} with TabCutMix "
          f"(relative reduction {_pct(results['relative_reduction'])})")
    for key, label in MODELS:
        q = results["models"][key]["quality"]
        print(f"{label:<22} shape {_pct(q['shape'])}  trend {_pct(q['trend'])}  C2ST {_pct(q['c2st'])}  "
              f"MLE {_pct(q['mle_auc'])}")
    print(f"planted copies found: {_pct(recall['exact'])} of exact, {_pct(recall['near'])} of near")
    print(f"report: {Path(run.path / 'report.html').resolve()}")
    return results
