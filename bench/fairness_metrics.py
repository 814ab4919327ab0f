"""Speed of rote's additive multi-class fairness metrics against fairlearn's MetricFrame with a per-class loop.

Run:  python bench/fairness_metrics.py --loop-classes 1   (10,000,000 rows x 100 classes x 10 groups; about 10
                                                         minutes on 2 busy cores, nearly all in the fairlearn loop)
      python bench/fairness_metrics.py --quick            (smoke run, about a minute: the 100,000-row check only)

Data: seeded synthetic labels y ~ uniform over C classes, groups uniform over G, predictions equal to the label
with probability 0.7 (else uniform), int64 arrays.

What is timed:
- `rote`: `rote.fairness.fairness_metrics(y, p, sensitive_features=g)`, i.e. validation and encoding, one
  bincount into the (G, C, C) confusion tensor, all three metrics (statistical parity, equal opportunity,
  equalized odds) with per-class gap vectors, per-group rate tables and aggregates.
- `rote sp` alone: `statistical_parity(...)` (what one scalar metric costs).
- `fairlearn`: what a fairlearn user writes for the same quantities (fairlearn has no multi-class parity
  metrics): for each class k, one `MetricFrame` over all rows with `selection_rate` on (p == k) and
  `true_positive_rate` on (y == k, p == k), `.difference()` -> the SP and EOpp gaps of class k; and for each true
  class y, one `MetricFrame` over the rows with Y = y holding C `selection_rate` metrics (one per predicted class)
  -> the EOdds row of class y. On the full case the per-class loops run on `--loop-classes` classes and are
  extrapolated linearly to all C (every SP/EOpp iteration is a full pass over the rows; every EOdds iteration a
  pass over about n/C rows with C metrics); the smaller `check` case runs the whole loop and compares every
  per-class gap with rote's (they must agree to 1e-9).

Prints a markdown table (case, baseline s, rote s, ratio, command) and writes bench/out/fairness_metrics.json.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from benchlib import timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HERE = Path(__file__).resolve().parent


def make_data(n: int, C: int, G: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    g = rng.integers(0, G, n)
    p = np.where(rng.random(n) < 0.7, y, rng.integers(0, C, n))
    return y, p, g


def fairlearn_sp_eopp(y, p, g, classes) -> tuple[dict, dict]:
    """Per-class SP and EOpp gaps (between groups) from one MetricFrame per class."""
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

    sp, eo = {}, {}
    for k in classes:
        mf = MetricFrame(
            metrics={
                "sel": functools.partial(selection_rate, pos_label=1),
                "tpr": functools.partial(true_positive_rate, pos_label=1),
            },
            y_true=(y == k).astype(np.int8),
            y_pred=(p == k).astype(np.int8),
            sensitive_features=g,
        )
        d = mf.difference(method="between_groups")
        sp[k], eo[k] = float(d["sel"]), float(d["tpr"])
    return sp, eo


def fairlearn_eodds(y, p, g, classes, C: int) -> dict:
    """Per-true-class EOdds row gaps (sum over predicted classes of the between-group gap)."""
    from fairlearn.metrics import MetricFrame, selection_rate

    metrics = {f"k{k}": functools.partial(selection_rate, pos_label=k) for k in range(C)}
    out = {}
    for c in classes:
        rows = y == c
        mf = MetricFrame(metrics=metrics, y_true=y[rows], y_pred=p[rows], sensitive_features=g[rows])
        out[c] = float(mf.difference(method="between_groups").sum())
    return out


def run_case(name: str, n: int, C: int, G: int, loop_classes: int | None, repeat: int) -> dict:
    from rote.fairness import fairness_metrics, statistical_parity

    print(f"  {name}: {n:,} rows x {C} classes x {G} groups ...", file=sys.stderr, flush=True)
    y, p, g = make_data(n, C, G)
    res, t_rote, _ = timed(lambda: fairness_metrics(y, p, sensitive_features=g), repeat)
    _, t_sp, _ = timed(lambda: statistical_parity(y, p, sensitive_features=g), repeat)
    k = C if loop_classes is None else min(loop_classes, C)
    classes = list(range(k))
    t0 = time.perf_counter()
    sp, eo = fairlearn_sp_eopp(y, p, g, classes)
    t_sp_eo = time.perf_counter() - t0
    t0 = time.perf_counter()
    eodds = fairlearn_eodds(y, p, g, classes, C)
    t_eodds = time.perf_counter() - t0
    scale = C / k
    pc = res.per_class
    gap = {m: pc[pc.metric == m]["gap"].to_numpy() for m in ("sp", "eopp", "eodds")}
    diff = max(
        max(abs(sp[c] - gap["sp"][c]), abs(eo[c] - gap["eopp"][c]), abs(eodds[c] - gap["eodds"][c])) for c in classes
    )
    return {
        "case": name,
        "n": n,
        "classes": C,
        "groups": G,
        "rote_s": t_rote,
        "rote_sp_s": t_sp,
        "fairlearn_classes_timed": k,
        "fairlearn_sp_eopp_s": t_sp_eo * scale,
        "fairlearn_eodds_s": t_eodds * scale,
        "fairlearn_s": (t_sp_eo + t_eodds) * scale,
        "extrapolated": k < C,
        "max_abs_diff_timed_classes": diff,
        "values": res.values,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: the 100,000 x 10 x 5 check case only")
    ap.add_argument(
        "--loop-classes",
        type=int,
        default=3,
        help="classes the fairlearn loop runs on in the full case (extrapolated linearly to all classes)",
    )
    ap.add_argument("--repeat", type=int, default=2, help="time rote this many times and report the best")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "fairness_metrics.json")
    args = ap.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = "python bench/fairness_metrics.py" + "".join(f" {a}" for a in given)
    started = datetime.datetime.now().astimezone()
    results = [run_case("check (full loop)", 100_000, 10, 5, None, args.repeat)]
    if not args.quick:
        results.append(run_case("10M x 100 x 10", 10_000_000, 100, 10, args.loop_classes, args.repeat))

    import fairlearn
    import pandas

    print(f"\ncommand: {command}")
    print(f"date: {started.isoformat(timespec='seconds')}")
    print(
        f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), numpy {np.__version__}, "
        f"pandas {pandas.__version__}, fairlearn {fairlearn.__version__}, Python {platform.python_version()}\n"
    )
    print(
        "| case | fairlearn MetricFrame loop (s) | rote, all 3 metrics (s) | ratio | rote, SP only (s) | max abs diff |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        tag = f" (extrapolated from {r['fairlearn_classes_timed']} classes)" if r["extrapolated"] else ""
        ratio = r["fairlearn_s"] / r["rote_s"]
        print(
            f"| {r['case']} | {r['fairlearn_s']:.2f}{tag} | {r['rote_s']:.3f} | {ratio:.0f}x "
            f"| {r['rote_sp_s']:.3f} | {r['max_abs_diff_timed_classes']:.1e} |"
        )
    full = results[-1]
    targets = {}
    if not args.quick:
        targets = {"10M_rows_in_seconds (< 10 s)": full["rote_s"] < 10.0}
        print("targets: " + ", ".join(f"{k}={'met' if v else 'NOT met'}" for k, v in targets.items()))
    ok = all(r["max_abs_diff_timed_classes"] < 1e-9 for r in results)
    print(f"check: per-class gaps equal fairlearn's on the timed classes: {'passed' if ok else 'FAILED'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "date": started.isoformat(timespec="seconds"),
                "cases": results,
                "targets": targets,
                "check_passed": ok,
            },
            indent=2,
            default=float,
        )
    )
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
