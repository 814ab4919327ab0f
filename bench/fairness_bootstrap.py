"""Per-class bootstrap intervals, ratios and pos_label metrics: rote against fairlearn's MetricFrame, same run.

Run:  python bench/fairness_bootstrap.py            (50,000 rows x 5 classes x 4 groups, 100 replicates; 16
                                                     minutes on 2 cores at load 18, nearly all in fairlearn)
      python bench/fairness_bootstrap.py --quick    (10,000 rows, 20 replicates; about 1.5 minutes)

Data: seeded synthetic labels y ~ uniform over C classes, groups with unequal sizes, predictions equal to the label
with probability 0.55 in the first group and 0.8 elsewhere (else uniform), int64 arrays.

What is timed (each measured in this run, best of --repeat for rote):
- `rote`: `fairness_metrics(y, p, sensitive_features=g, metrics=["sp", "eopp"], n_boot=B)`: all per-class gaps,
  ratios, the groups that set them, base rates and percentile intervals on every per-class gap and on both
  aggregates (B row replicates, each one bincount).
- `fairlearn`: what a fairlearn user writes for the same per-class intervals: for each class k one
  `MetricFrame(metrics={selection_rate, true_positive_rate}, y_true=(y == k), y_pred=(p == k), n_boot=B,
  ci_quantiles=[0.025, 0.975])` and its `difference_ci()` (fairlearn resamples with its own generator, so the
  intervals agree only up to bootstrap noise; the point gaps and ratios must agree to 1e-12).
- `rote pos_label`: `parity_ratio` / `statistical_parity(pos_label=k)` against fairlearn's
  `demographic_parity_ratio` / `_difference` on the one-vs-rest problem of each class (checked equal).

Prints a markdown table and writes bench/out/fairness_bootstrap.json.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HERE = Path(__file__).resolve().parent


def make_data(n: int, C: int, G: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    sizes = np.linspace(1, 3, G)
    g = rng.choice(G, n, p=sizes / sizes.sum())
    p = np.where(rng.random(n) < np.where(g == 0, 0.55, 0.8), y, rng.integers(0, C, n))
    return y, p, g


def fairlearn_per_class(y, p, g, C: int, n_boot: int, seed: int):
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

    out = {}
    for k in range(C):
        mf = MetricFrame(
            metrics={
                "sp": functools.partial(selection_rate, pos_label=1),
                "eopp": functools.partial(true_positive_rate, pos_label=1),
            },
            y_true=(y == k).astype(np.int8),
            y_pred=(p == k).astype(np.int8),
            sensitive_features=g,
            n_boot=n_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=seed,
        )
        lo, hi = mf.difference_ci()
        out[k] = {"gap": mf.difference(), "ratio": mf.ratio(), "low": lo, "high": hi}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 rows and 20 replicates")
    ap.add_argument("--repeat", type=int, default=2, help="time rote this many times and report the best")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "fairness_bootstrap.json")
    args = ap.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = "python bench/fairness_bootstrap.py" + "".join(f" {a}" for a in given)
    n, C, G, B = (10_000, 5, 4, 20) if args.quick else (50_000, 5, 4, 100)
    from rote.fairness import fairness_metrics, parity_ratio, statistical_parity

    import fairlearn.metrics as flm

    y, p, g = make_data(n, C, G, args.seed)
    started = datetime.datetime.now().astimezone()
    print(f"  {n:,} rows x {C} classes x {G} groups, {B} replicates ...", file=sys.stderr, flush=True)
    res, t_rote, _ = timed(
        lambda: fairness_metrics(y, p, sensitive_features=g, metrics=["sp", "eopp"], n_boot=B, seed=args.seed),
        args.repeat,
    )
    t0 = time.perf_counter()
    fl = fairlearn_per_class(y, p, g, C, B, args.seed)
    t_fl = time.perf_counter() - t0
    pc = res.per_class.set_index(["metric", "class"])
    gap_diff = max(abs(pc.loc[(m, str(k)), "gap"] - fl[k]["gap"][m]) for k in range(C) for m in ("sp", "eopp"))
    ratio_diff = max(abs(pc.loc[(m, str(k)), "ratio"] - fl[k]["ratio"][m]) for k in range(C) for m in ("sp", "eopp"))
    ci_diff = max(
        max(
            abs(pc.loc[(m, str(k)), "ci_low"] - fl[k]["low"][m]),
            abs(pc.loc[(m, str(k)), "ci_high"] - fl[k]["high"][m]),
        )
        for k in range(C)
        for m in ("sp", "eopp")
    )
    ci_width = float(np.mean(pc["ci_high"] - pc["ci_low"]))

    def rote_pos():
        return [
            (
                statistical_parity(y, p, sensitive_features=g, pos_label=k),
                parity_ratio(y, p, sensitive_features=g, pos_label=k),
            )
            for k in range(C)
        ]

    def fl_pos():
        return [
            (
                flm.demographic_parity_difference(y == k, p == k, sensitive_features=g),
                flm.demographic_parity_ratio(y == k, p == k, sensitive_features=g),
            )
            for k in range(C)
        ]

    rp, t_rpos, _ = timed(rote_pos, args.repeat)
    fp, t_fpos, _ = timed(fl_pos, 1)
    pos_diff = float(np.max(np.abs(np.array(rp) - np.array(fp))))
    ok = gap_diff < 1e-12 and ratio_diff < 1e-12 and pos_diff < 1e-12
    rows = [
        ("per-class bootstrap intervals (SP, EOpp), all classes", t_fl, t_rote),
        ("pos_label difference + ratio, every class", t_fpos, t_rpos),
    ]
    print(f"\ncommand: {command}\ndate: {started.isoformat(timespec='seconds')}")
    info = machine_info(fairlearn=__import__("fairlearn").__version__)
    print(f"machine: {info}\n")
    print("| case | fairlearn (s) | rote (s) | ratio |")
    print("|---|---|---|---|")
    for name, base, ours in rows:
        print(f"| {name} | {fmt_s(base)} | {fmt_s(ours)} | {fmt_ratio(base, ours)} |")
    print(
        f"\nagreement: per-class gaps {gap_diff:.1e}, ratios {ratio_diff:.1e}, pos_label metrics {pos_diff:.1e} "
        f"(must be < 1e-12: {'passed' if ok else 'FAILED'}); interval ends differ by at most {ci_diff:.4f} "
        f"(different resampling generators; mean interval width {ci_width:.4f})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "date": started.isoformat(timespec="seconds"),
                "machine": info,
                "n": n,
                "classes": C,
                "groups": G,
                "n_boot": B,
                "cases": [{"case": r[0], "fairlearn_s": r[1], "rote_s": r[2]} for r in rows],
                "max_abs_diff": {"gaps": gap_diff, "ratios": ratio_diff, "pos_label": pos_diff, "ci_ends": ci_diff},
                "check_passed": ok,
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
