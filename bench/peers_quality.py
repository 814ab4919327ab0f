"""rote's quality metrics against SDMetrics' on the embedded Adult data: agreement and speed.

Run in an environment that has SDMetrics besides rote (SDMetrics 0.32 pins pandas < 3, so use a separate venv):

    /tmp/peer/bin/python bench/peers_quality.py               # 5,000 real x 5,000 synthetic rows
    /tmp/peer/bin/python bench/peers_quality.py --n 2000      # quicker

Data: a seeded sample of the Adult training split (the "real" table) and three synthetic tables of the same size:
new rows from rote's TabCutMix and TabCutMixPlus fitted on the real sample, and independent-column samples (IJF);
plus the IJF table with age + 8 and hours-per-week x 1.2 ("ijf_shifted"), which a logistic classifier detects.

Compared, per synthetic table:
- Shape: rote `shape_score` per column against SDMetrics QualityReport "Column Shapes" (KSComplement /
  TVComplement) per column; the largest absolute difference and the two overall scores.
- Trend: rote `trend_score` (binning="sdmetrics") per pair against QualityReport "Column Pair Trends" per pair
  (CorrelationSimilarity / ContingencySimilarity), and the overall score: SDMetrics 0.32 averages only pairs whose
  real correlation exceeds 0.5 or real Cramer's V exceeds 0.3, which rote reproduces with
  `trend_score(..., **SDMETRICS_032_THRESHOLDS)`; rote's default (every pair) is the older SDMetrics average the
  paper used, and is recorded in the JSON as `rote_all_pairs`.
- C2ST: rote `c2st_score` against SDMetrics `LogisticDetection.compute`. SDMetrics shuffles its folds without a
  seed, so the two agree only up to fold noise: both are repeated (rote with seeds 0..R-1) and we report the
  means and SDMetrics' spread (max - min).
Times are wall-clock seconds of each library on the same tables in this process, and their ratio.

Writes bench/out/peers_quality.json.

`--alpha-beta` needs no SDMetrics (it runs in rote's own venv): naive and one-class alpha-precision / beta-recall
(one-class on the raw features, as synthcity gets them from the TabCutMix evaluation, and on min-max scaled ones)
and authenticity (Alaa et al.'s definition beside synthcity's index mix-up) on seeded TabCutMix, TabCutMixPlus and
IJF tables, `--seeds` of each; writes bench/out/quality_alpha_beta.json:

    OMP_NUM_THREADS=1 python bench/peers_quality.py --alpha-beta --n 2000 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from benchlib import timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HERE = Path(__file__).resolve().parent


def alpha_beta_main(args: argparse.Namespace, argv: list[str] | None) -> int:
    """`--alpha-beta`: rote alone, no SDMetrics. For each synthetic table and seed: naive and one-class
    alpha-precision / beta-recall, and authenticity by Alaa et al.'s definition and by synthcity's (its index
    mix-up), with the time of each variant. Seeds vary the synthetic tables (the augmenters' seed) and the
    one-class network's initial weights; the real sample is fixed (random_state 0)."""
    import pandas as pd

    from rote.core.stats import mean_t_interval
    from rote.data import dataset_schema, load_dataset
    from rote.tabular.augment import IJFAugmenter, TabCutMix, TabCutMixPlus
    from rote.tabular.quality import alpha_precision_beta_recall

    schema = dataset_schema("adult")
    real = load_dataset("adult", "train").sample(args.n, random_state=0).reset_index(drop=True)
    makers = {
        "tabcutmix": lambda s: TabCutMix(seed=s).fit(real, schema).sample(args.n),
        "tabcutmixplus": lambda s: TabCutMixPlus(seed=s).fit(real, schema).sample(args.n),
        "ijf": lambda s: IJFAugmenter(seed=s).fit(real, schema).sample(args.n),
    }
    raw: list[dict] = []
    for name, make in makers.items():
        for seed in range(args.seeds):
            syn = make(seed + 1)
            row: dict = {"synthetic": name, "seed": seed}
            for variant, kind, oc_input in (
                ("naive", "naive", "raw"),
                ("oc", "oc", "raw"),
                ("oc_minmax", "oc", "minmax"),
            ):
                res, t, _ = timed(
                    lambda: alpha_precision_beta_recall(real, syn, schema, seed=seed, variant=kind, oc_input=oc_input)
                )
                row.update(
                    {
                        f"alpha_precision_{variant}": res.alpha_precision,
                        f"beta_recall_{variant}": res.beta_recall,
                        f"authenticity_{variant}": res.authenticity,
                        f"authenticity_synthcity_{variant}": res.authenticity_other,
                        f"seconds_{variant}": t,
                    }
                )
            raw.append(row)
            print(f"  {name} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k[0] in "ab"))
    frame = pd.DataFrame(raw)
    for v in ("naive", "oc", "oc_minmax"):  # what fixing synthcity's index mix-up changes, paired by seed
        frame[f"authenticity_change_{v}"] = frame[f"authenticity_{v}"] - frame[f"authenticity_synthcity_{v}"]
    keys = [c for c in frame.columns if c not in ("synthetic", "seed")]
    print(
        f"\nalpha/beta variants on Adult ({args.n} real x {args.n} synthetic rows), {args.seeds} seeds: "
        "mean [95% t interval over seeds]\n"
    )
    print("| synthetic | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    summary = {}
    for name, g in frame.groupby("synthetic", sort=False):
        stats = {k: mean_t_interval(g[k].to_numpy(float)) for k in keys}
        summary[name] = {k: iv.to_dict() for k, iv in stats.items()}
        print(
            f"| {name} | "
            + " | ".join(f"{iv.estimate:.4f} [{iv.low:.4f}, {iv.high:.4f}]" for iv in stats.values())
            + " |"
        )
    record = {
        "n": args.n,
        "seeds": args.seeds,
        "summary": summary,
        "runs": raw,
        "command": "python bench/peers_quality.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
    }
    out = args.out if args.out != HERE / "out" / "peers_quality.json" else HERE / "out" / "quality_alpha_beta.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"\nwrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000, help="rows in the real sample and in each synthetic table")
    p.add_argument("--c2st-repeats", type=int, default=3, help="SDMetrics LogisticDetection repeats (unseeded)")
    p.add_argument("--out", type=Path, default=HERE / "out" / "peers_quality.json")
    p.add_argument("--alpha-beta", action="store_true", help="rote's alpha/beta variants only (no SDMetrics)")
    p.add_argument("--seeds", type=int, default=3, help="--alpha-beta: seeds per synthetic table")
    args = p.parse_args(argv)
    if args.alpha_beta:
        import torch

        torch.set_num_threads(1)
        return alpha_beta_main(args, argv)
    try:
        import sdmetrics
        from sdmetrics.reports.single_table import QualityReport
        from sdmetrics.single_table import LogisticDetection
    except ImportError:
        raise SystemExit("SDMetrics is not installed here; see this script's docstring for a separate venv") from None
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from rote.data import dataset_schema, load_dataset
    from rote.tabular.augment import IJFAugmenter, TabCutMix, TabCutMixPlus
    from rote.tabular.quality import SDMETRICS_032_THRESHOLDS, c2st_score, shape_score, trend_score

    warnings.simplefilter("ignore")
    schema = dataset_schema("adult")
    full = load_dataset("adult", "train")
    real = full.sample(args.n, random_state=0).reset_index(drop=True)
    real = real.astype({c: object for c in schema.categorical})  # SDMetrics treats object columns as categorical
    synthetic = {
        "tabcutmix": TabCutMix(seed=1).fit(real, schema).sample(args.n),
        "tabcutmixplus": TabCutMixPlus(seed=1).fit(real, schema).sample(args.n),
        "ijf": IJFAugmenter(seed=1).fit(real, schema).sample(args.n),
    }
    # a table a logistic classifier can tell apart, so that C2ST is compared away from its ceiling of 1
    shifted = synthetic["ijf"].copy()
    shifted["age"] = shifted["age"] + 8
    shifted["hours-per-week"] = (shifted["hours-per-week"] * 1.2).round().astype(shifted["hours-per-week"].dtype)
    synthetic["ijf_shifted"] = shifted
    metadata = {"columns": {c: {"sdtype": "numerical" if c in schema.numeric else "categorical"} for c in real.columns}}
    rows, record = [], {"n": args.n, "sdmetrics": sdmetrics.__version__, "pandas": pd.__version__, "cases": {}}
    for name, syn in synthetic.items():
        syn = syn.astype({c: object for c in schema.categorical})
        rep = QualityReport()
        _, t_sdm, _ = timed(lambda: rep.generate(real, syn, metadata, verbose=False))
        shapes = rep.get_details("Column Shapes").set_index("Column")["Score"]
        trends = rep.get_details("Column Pair Trends")
        sh, t_sh, _ = timed(lambda: shape_score(real, syn, schema))
        tr, t_tr, _ = timed(lambda: trend_score(real, syn, schema))
        tr032 = trend_score(real, syn, schema, **SDMETRICS_032_THRESHOLDS)
        sdm_trend = float(rep.get_properties().set_index("Property").loc["Column Pair Trends", "Score"])
        ours_shape = sh.columns.set_index("column")["score"]
        shape_diff = float(np.max(np.abs(ours_shape.reindex(shapes.index).to_numpy() - shapes.to_numpy())))
        ours_pairs = {
            frozenset((a, b)): v for a, b, v in tr.pairs[["column_1", "column_2", "score"]].itertuples(index=False)
        }
        diffs = [
            abs(ours_pairs[frozenset((a, b))] - v)
            for a, b, v in trends[["Column 1", "Column 2", "Score"]].itertuples(index=False)
            if not np.isnan(v)
        ]
        trend_diff = float(np.max(diffs))
        with threadpool_limits(1):  # the same thread budget as rote's c2st_score
            sdm_c2st = []
            t_c2 = 0.0
            for _ in range(args.c2st_repeats):
                v, t, _ = timed(lambda: LogisticDetection.compute(real, syn))
                sdm_c2st.append(float(v))
                t_c2 += t / args.c2st_repeats
        ours_all, t_oc = [], 0.0
        for seed in range(args.c2st_repeats):  # rote seeds its folds: one score per seed, same count as SDMetrics
            v, t, _ = timed(lambda: c2st_score(real, syn, schema, seed=seed))
            ours_all.append(v)
            t_oc += t / args.c2st_repeats
        ours_c2st = float(np.mean(ours_all))
        case = {
            "shape": {"rote": sh.score, "sdmetrics": float(shapes.mean()), "max_abs_diff_per_column": shape_diff},
            "trend": {
                "rote_all_pairs": tr.score,
                "rote_sdmetrics_032_thresholds": tr032.score,
                "sdmetrics_report": sdm_trend,
                "max_abs_diff_per_pair": trend_diff,
                "n_pairs_scored_by_sdmetrics": len(diffs),
            },
            "c2st": {
                "rote_mean": ours_c2st,
                "rote_min": float(np.min(ours_all)),
                "rote_max": float(np.max(ours_all)),
                "sdmetrics_mean": float(np.mean(sdm_c2st)),
                "sdmetrics_min": float(np.min(sdm_c2st)),
                "sdmetrics_max": float(np.max(sdm_c2st)),
            },
            "seconds": {
                "sdmetrics_quality_report": t_sdm,
                "rote_shape_plus_trend": t_sh + t_tr,
                "sdmetrics_logistic_detection": t_c2,
                "rote_c2st": t_oc,
            },
        }
        record["cases"][name] = case
        rows.append(
            (
                name,
                sh.score,
                shapes.mean(),
                shape_diff,
                tr032.score,
                sdm_trend,
                trend_diff,
                ours_c2st,
                np.mean(sdm_c2st),
                np.ptp(sdm_c2st),
                t_sdm,
                t_sh + t_tr,
                t_c2,
                t_oc,
            )
        )
    print(f"rote vs SDMetrics {sdmetrics.__version__} on Adult ({args.n} real x {args.n} synthetic rows)\n")
    print(
        "| synthetic | shape rote | shape SDM | max col diff | trend rote | trend SDM | max pair diff | "
        "C2ST rote (mean) | C2ST SDM (mean) | SDM spread | SDM report s | rote shape+trend s | speed-up | "
        "SDM C2ST s | rote C2ST s |"
    )
    print("|---" * 15 + "|")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]:.4f} | {r[2]:.4f} | {r[3]:.1e} | {r[4]:.4f} | {r[5]:.4f} | {r[6]:.1e} | "
            f"{r[7]:.4f} | {r[8]:.4f} | {r[9]:.4f} | {r[10]:.2f} | {r[11]:.2f} | {r[10] / r[11]:.0f}x | "
            f"{r[12]:.2f} | {r[13]:.2f} |"
        )
    record["command"] = "python bench/peers_quality.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
