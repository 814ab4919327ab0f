"""Throughput of rote's TabCutMix / TabCutMixPlus against a per-row pandas implementation of the same procedure,
and of the association matrix against a straightforward pandas/scipy implementation, on the embedded Adult data.

Run:  python bench/tabular_augment.py            (full: 0.3 x 32,561 = 9,768 new rows; about 1-2 minutes)
      python bench/tabular_augment.py --quick    (smoke run: 200 loop rows)

Cases (all in this process, on the Adult training split, 32,561 rows x 15 columns):
- `tabcutmix code`: `TabCutMix(mode="code").fit(train, schema).sample(9768)` (validation included), against
  `loop_tabcutmix`: a per-row pandas loop written by us from the description of the official `cutmix_tabular`:
  for each new row, `df.sample(1)` for the first row, `df[df[label] == y].sample(1)` for the partner,
  lambda ~ U(0, 1), `np.random.choice` of floor(lambda F) feature names, `.loc` copies, rows collected in a list
  and concatenated once at the end (kinder than the official code's `pd.concat` per row, which is quadratic).
  The loop runs on `--loop-rows` rows and is extrapolated linearly to 9,768 (each row does the same work).
- `tabcutmixplus code`: the same with whole clusters (clusters computed once, outside the timed loop, for both).
- `association matrix`: rote's `association_matrix` against `loop_association`: pandas `.corr()` for numeric
  pairs, `pd.crosstab` + `scipy.stats.chi2_contingency` per categorical pair, `groupby` per numeric-categorical
  pair (the official code's approach). The two matrices must agree to 1e-9.
Check: rote's rows and the loop's rows come from the same distribution: shape and trend similarity of
`--loop-rows` of rote's new rows against the loop's rows are printed beside the same similarity between two rote
samples with different seeds (the sampling-noise floor); the random streams differ, so rows are not bit-equal.

Prints a markdown table and writes bench/out/tabular_augment.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import numpy as np
from benchlib import timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HERE = Path(__file__).resolve().parent
RATIO = 0.3


def loop_tabcutmix(df, label: str, units: list[list[str]], n: int, seed: int):
    """The per-row procedure of the official code (code mode), on pandas objects row by row."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        first = df.sample(1, random_state=rng)
        y = first[label].iloc[0]
        partner = df[df[label] == y].sample(1, random_state=rng)
        lam = rng.random()
        k = int(np.floor(lam * len(units)))
        chosen = rng.choice(len(units), k, replace=False)
        new = first.copy()
        for j in chosen:
            cols = units[j]
            new.loc[:, cols] = partner[cols].to_numpy()
        new[label] = y
        rows.append(new)
    return pd.concat(rows, ignore_index=True)


def loop_association(df, schema):
    """Association matrix the straightforward way: pandas corr, crosstab + chi2_contingency, groupby."""
    import pandas as pd
    from scipy.stats import chi2_contingency

    cols = list(schema.columns)
    out = pd.DataFrame(np.eye(len(cols)), index=cols, columns=cols)
    corr = df[list(schema.numeric)].astype(float).corr().abs()
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            if a in schema.numeric and b in schema.numeric:
                v = corr.loc[a, b]
            elif a in schema.categorical and b in schema.categorical:
                t = pd.crosstab(df[a], df[b])
                chi2 = chi2_contingency(t)[0]
                n = t.to_numpy().sum()
                r, k = t.shape
                phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
                rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
                v = np.sqrt(phi2 / min(kc - 1, rc - 1))
            else:
                c, x = (a, b) if a in schema.categorical else (b, a)
                vals = df[x].astype(float)
                g = vals.groupby(df[c])
                between = (g.count() * (g.mean() - vals.mean()) ** 2).sum()
                v = np.sqrt(between / ((vals - vals.mean()) ** 2).sum())
            out.loc[a, b] = out.loc[b, a] = v
    return out


def measure_ood(train, schema, n_new: int, seeds: int) -> tuple[dict, str]:
    """OOD rate (Fang et al. 2025, App. D.4.6) of each augmenter's new rows on Adult, one detector per seed shared
    by all methods; held-out real rows (the Adult test split) as a control."""
    from rote.core.stats import format_mean_std, mean_std
    from rote.data import load_dataset
    from rote.tabular.augment import (
        IJFAugmenter,
        Mixup,
        OODDetector,
        SMOTEAugmenter,
        TabCutMix,
        TabCutMixPlus,
    )

    test = load_dataset("adult", "test")
    methods = {
        "TabCutMix (paper mode)": lambda s: TabCutMix(mode="paper", seed=s),
        "TabCutMix (code mode)": lambda s: TabCutMix(mode="code", seed=s),
        "TabCutMixPlus (paper mode)": lambda s: TabCutMixPlus(mode="paper", seed=s),
        "TabCutMixPlus (code mode)": lambda s: TabCutMixPlus(mode="code", seed=s),
        "Mixup": lambda s: Mixup(seed=s),
        "SMOTE": lambda s: SMOTEAugmenter(seed=s),
        "IJF": lambda s: IJFAugmenter(seed=s),
    }
    protocols = {
        "paper text (x100, other category)": dict(factor=100.0, categorical="other"),
        "code helper (x10, 'unknown')": dict(factor=10.0, categorical="unknown"),
    }
    rows = ["held-out real rows (control)", *methods]
    rates = {pr: {m: [] for m in rows} for pr in protocols}
    acc: dict[str, list[float]] = {pr: [] for pr in protocols}
    for seed in range(seeds):
        new_rows = {name: make(seed).fit(train, schema).sample(n_new) for name, make in methods.items()}
        new_rows["held-out real rows (control)"] = test.sample(n_new, random_state=seed)
        for pr, kw in protocols.items():
            det = OODDetector(seed=seed, **kw).fit(train, schema)
            acc[pr].append(det.detector_accuracy_)
            for name in rows:
                rates[pr][name].append(det.rate(new_rows[name]).ood_rate)

    def fmt(v: list[float]) -> str:
        return format_mean_std(*mean_std([100 * x for x in v]))

    lines = [
        f"OOD rate of {n_new:,} new rows per method (%, mean ± std over {seeds} seeds), two detector protocols",
        "",
        "| rows | " + " | ".join(protocols) + " |",
        "|---" * (len(protocols) + 1) + "|",
    ]
    lines.append(
        "| detector accuracy (held-out real vs perturbed) | " + " | ".join(fmt(acc[pr]) for pr in protocols) + " |"
    )
    for name in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(rates[pr][name]) for pr in protocols) + " |")
    return {"rates": rates, "detector_accuracy": acc, "protocols": protocols}, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 200 loop rows")
    p.add_argument("--loop-rows", type=int, default=None, help="rows the per-row loop makes (default 1000)")
    p.add_argument("--repeat", type=int, default=3, help="rote timings: best of this many calls")
    p.add_argument("--ood-seeds", type=int, default=3, help="seeds of the OOD-rate measurement (0 skips it)")
    p.add_argument("--out", type=Path, default=HERE / "out" / "tabular_augment.json")
    args = p.parse_args(argv)
    loop_rows = args.loop_rows or (200 if args.quick else 1000)

    import pandas as pd
    import torch

    from rote.data import dataset_schema, load_dataset
    from rote.tabular.association import association_matrix, cluster_columns
    from rote.tabular.augment import TabCutMix, TabCutMixPlus
    from rote.tabular.quality import shape_score, trend_score

    torch.set_num_threads(1)
    schema = dataset_schema("adult")
    train = load_dataset("adult", "train")
    n_new = int(round(RATIO * len(train)))
    label = schema.target
    features = [c for c in train.columns if c != label]

    assoc, t_assoc, _ = timed(lambda: association_matrix(train, schema), args.repeat)
    loop_assoc, t_loop_assoc, _ = timed(lambda: loop_association(train, schema))
    assoc_diff = float(np.max(np.abs(assoc.to_numpy() - loop_assoc.loc[assoc.index, assoc.columns].to_numpy())))
    clusters = cluster_columns(assoc)

    results, rows = {}, []
    for name, make, units in (
        ("tabcutmix", lambda: TabCutMix(mode="code", seed=0), [[c] for c in features]),
        ("tabcutmixplus", lambda: TabCutMixPlus(mode="code", seed=0), clusters),
    ):

        def run(make=make):
            return make().fit(train, schema).sample(n_new)

        ours, t_ours, _ = timed(run, args.repeat)
        if name == "tabcutmixplus":  # sampling alone, association matrix excluded (fitted once)
            fitted = make().fit(train, schema)
            _, t_sample, _ = timed(lambda: fitted.sample(n_new), args.repeat)
        else:
            t_sample = None
        theirs, t_loop, _ = timed(lambda: loop_tabcutmix(train, label, units, loop_rows, 0))
        t_loop_full = t_loop * n_new / loop_rows
        # same-size samples: the loop's rows vs rote's, and rote's vs rote's with another seed (the noise floor)
        head = ours.iloc[:loop_rows]
        sh = shape_score(theirs, head, schema).score
        tr = trend_score(theirs, head, schema).score
        again = make()
        again.seed = 1
        again = again.fit(train, schema).sample(loop_rows)
        sh0 = shape_score(again, head, schema).score
        tr0 = trend_score(again, head, schema).score
        results[name] = {
            "rote_s": t_ours,
            "rote_sample_only_s": t_sample,
            "loop_rows": loop_rows,
            "loop_s": t_loop,
            "loop_extrapolated_s": t_loop_full,
            "ratio": t_loop_full / t_ours,
            "rows_per_s_rote": n_new / t_ours,
            "rows_per_s_loop": loop_rows / t_loop,
            "shape_vs_loop": sh,
            "trend_vs_loop": tr,
            "shape_rote_vs_rote": sh0,
            "trend_rote_vs_rote": tr0,
        }
        rows.append(
            (
                f"{name} (code mode), {n_new:,} new rows, fit + sample",
                t_loop_full,
                t_ours,
                f"loop: {loop_rows:,} rows in {t_loop:.1f} s, extrapolated; shape/trend of {loop_rows:,} rows vs "
                f"loop {sh:.3f}/{tr:.3f}, vs rote seed 1 {sh0:.3f}/{tr0:.3f}",
            )
        )
        if t_sample is not None:
            rows.append((f"{name} sample only (association fitted once)", t_loop_full, t_sample, ""))
    results["association"] = {
        "rote_s": t_assoc,
        "loop_s": t_loop_assoc,
        "ratio": t_loop_assoc / t_assoc,
        "max_abs_diff": assoc_diff,
        "clusters": clusters,
    }
    rows.append(
        (
            f"association matrix, {len(schema.columns)} columns x {len(train):,} rows",
            t_loop_assoc,
            t_assoc,
            f"max |diff| {assoc_diff:.1e}",
        )
    )

    if args.ood_seeds:
        results["ood"], ood_table = measure_ood(train, schema, n_new, args.ood_seeds)
    else:
        ood_table = ""

    lines = ["| case | per-row / pandas baseline | rote | ratio | note |", "|---|---|---|---|---|"]
    for case, base, ours, note in rows:
        lines.append(f"| {case} | {base:.2f} s | {ours:.3f} s | {base / ours:.0f}x | {note} |")
    table = "\n".join(lines)
    print(table)
    print(f"\nclusters found on Adult (cut 0.3): {[c for c in clusters if len(c) > 1]} (+ singletons)")
    if ood_table:
        print("\n" + ood_table)
    record = {
        "command": "python bench/tabular_augment.py"
        + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "n_train": len(train),
        "n_new": n_new,
        "results": results,
        "table": table,
        "ood_table": ood_table,
    }
    if assoc_diff > 1e-9:
        print(f"WARNING: association matrices differ by {assoc_diff:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
