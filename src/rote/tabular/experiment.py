"""The paper's experiments as one grid: dataset x generator x augmentation x epochs x seeds (+ size and
feature-dimension sweeps), each point an independent `rote.sweep` task.

Fang et al., "Understanding and Mitigating Memorization in Diffusion Models for Tabular Data" (ICML 2025):
Table 1 (memorization ratio with its relative improvement over no augmentation, MLE, alpha-precision,
beta-recall, shape, trend, C2ST, DCR; mean +- std over seeds), Fig. 2 (memorization versus epochs), Fig. 3
(training-set size) and the feature-dimension study.

One grid point = one training run:
1. the training table: the dataset's training split, capped at `rows` rows and then cut to `train_fraction` of
   them (nested subsets drawn with `data_seed`, the same for every seed and method, so comparisons are paired),
   keeping `feature_fraction` of the feature columns (the label is always kept; nested subsets, `data_seed`);
2. the augmented table (originals first, then round(aug_ratio x n) new rows) unless augmentation = "none", and
   the out-of-distribution rate of its new rows (reference 1.4);
3. the generator trained on it for `epochs` epochs, with a `MemorizationHook` recording the memorization ratio
   against the ORIGINAL training rows every `every` epochs (the memorization-versus-epoch curve);
4. as many synthetic rows as training rows, audited against the original training rows (the paper's reference
   set), and the quality metrics against the training rows and the real test split.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.results import Result, internal_field, table_field
from rote.core.runs import make_rng
from rote.data import TableSchema

from rote.tabular.pipeline import AUGMENTATIONS, GENERATORS

AXES = ("dataset", "generator", "augmentation", "epochs", "train_fraction", "feature_fraction", "seed")
"""Axis names of an experiment grid, in table order; any of them may instead be a fixed parameter."""

DEFAULTS: dict[str, Any] = {
    "dataset": "adult",
    "generator": "tabddpm",
    "augmentation": "none",
    "epochs": 50,
    "train_fraction": 1.0,
    "feature_fraction": 1.0,
    "seed": 0,
    "preset": "small",
    "aug_ratio": 0.3,
    "rows": None,
    "test_rows": None,
    "target": None,
    "test": None,
    "every": 10,
    "hook_samples": None,
    "distance": "tabcutmix",
    "data_seed": 0,
    "device": "cpu",
    "quality": True,
    "ood": True,
    "generator_options": None,
    "mode": None,
}
"""Every point parameter and its default. `rows`/`test_rows` cap the training/test rows (None = all); `target`
and `test` are for a dataset given as a file path; `hook_samples` = synthetic rows per hook evaluation (None =
as many as training rows); `quality`/`ood` switch those metrics off for quick grids; `generator_options`: extra
keyword arguments of the generator (e.g. {"num_timesteps": 100}) on top of its preset; `mode`: the TabCutMix(Plus)
mask, "paper" (Bernoulli, the paper's Alg. 1) or "code" (exactly floor(lambda F) features, the reference code); None
means "code" with preset "paper" (the comparison with the paper's numbers uses its code) and "paper" otherwise."""

METRICS = ("mem_ratio", "mle", "alpha_precision", "beta_recall", "shape", "trend", "c2st", "dcr_share")
"""The paper-table columns (fractions in [0, 1]; the table shows them in %)."""
EXTRA_QUALITY = ("alpha_precision_oc", "beta_recall_oc", "authenticity", "authenticity_oc")
"""Quality columns shown after the paper's: the one-class alpha/beta variants and authenticity (Alaa et al.'s
definition; naive and one-class), where the points computed them."""
EXTRA_LABELS = {
    "alpha_precision_oc": "α-precision OC %",
    "beta_recall_oc": "β-recall OC %",
    "authenticity": "Authenticity %",
    "authenticity_oc": "Authenticity OC %",
}
METRIC_LABELS = {
    "mem_ratio": "Mem. ratio %",
    "mle": "MLE (AUC) %",
    "alpha_precision": "α-precision %",
    "beta_recall": "β-recall %",
    "shape": "Shape %",
    "trend": "Trend %",
    "c2st": "C2ST %",
    "dcr_share": "DCR %",
}


# ---------------------------------------------------------------------------------------------- grid


def experiment_grid(axes: Mapping[str, Any] | None = None, **fixed: Any):
    """A `rote.sweep.Grid` of experiment points, validated: `axes` maps some of `AXES` (or other point
    parameters) to lists of values; everything else comes from `fixed` or `DEFAULTS` (fixed parameters that
    equal their default are left out of the point ids, so adding a default later keeps existing ids)."""
    from rote.sweep import Grid

    axes = dict(axes or {})
    unknown = [k for k in [*axes, *fixed] if k not in DEFAULTS]
    if unknown:
        raise ConfigError(f"unknown experiment parameters {unknown}; known: {', '.join(DEFAULTS)}")
    merged = {k: v for k, v in {**DEFAULTS, **fixed}.items() if k not in axes}
    for name, allowed in (("generator", GENERATORS), ("augmentation", AUGMENTATIONS)):
        values = axes.get(name, [merged.get(name)])
        bad = [v for v in (values if isinstance(values, (list, tuple)) else [values]) if v not in allowed]
        if bad:
            raise ConfigError(f"{name} {bad[0]!r} is unknown; choose among {', '.join(allowed)}")
    modes = axes.get("mode", [merged.get("mode")])
    for v in modes if isinstance(modes, (list, tuple)) else [modes]:
        if v not in (None, "paper", "code"):
            raise ConfigError(f"mode {v!r} is unknown; choose among paper, code (TabCutMix's mask)")
    for name in ("train_fraction", "feature_fraction"):
        values = axes.get(name, [merged.get(name)])
        for v in values if isinstance(values, (list, tuple)) else [values]:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise ConfigError(f"{name} {v!r} must be a fraction in (0, 1], e.g. 0.5")
    for name in ("epochs", "seed"):
        values = axes.get(name, [merged.get(name)])
        for v in values if isinstance(values, (list, tuple)) else [values]:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name} {v!r} must be a whole number >= 0")
    fixed_ids = {k: v for k, v in merged.items() if k in AXES or v != DEFAULTS[k]}
    axes_out = {k: axes[k] for k in AXES if k in axes}
    axes_out.update({k: v for k, v in axes.items() if k not in AXES})
    return Grid(axes_out, fixed=fixed_ids)


def point_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A point's parameters with defaults filled in."""
    return {**DEFAULTS, **params}


# ---------------------------------------------------------------------------------------------- one point


def load_experiment_data(p: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame | None, TableSchema]:
    """(train, test or None, schema) of a point's `dataset`: a shipped dataset name (its train/test splits) or a
    table file (with `target`, optional `test` file), before subsampling."""
    from rote.data import dataset_schema, infer_schema, list_datasets, load_dataset, load_table

    name = p["dataset"]
    shipped = {d.name: d for d in list_datasets()}
    if name in shipped:
        train, schema = load_dataset(name, "train"), dataset_schema(name)
        test = load_dataset(name, "test") if "test" in shipped[name].splits else None
    elif Path(name).is_file():
        train = load_table(name)
        schema = infer_schema(train, target=p.get("target"))
        test = load_table(p["test"]) if p.get("test") else None
    else:
        raise ConfigError(
            f"dataset {name!r}: neither a shipped dataset ({', '.join(shipped)}) nor a table file; "
            "pass a name from `rote datasets list` or the path of a CSV/Parquet file"
        )
    return train, test, schema


def subsample(
    train: pd.DataFrame,
    schema: TableSchema,
    *,
    rows: int | None,
    train_fraction: float,
    feature_fraction: float,
    data_seed: int = 0,
) -> tuple[pd.DataFrame, TableSchema]:
    """The training rows and columns of a point (see the module docstring). Subsets are nested: the rows of
    fraction 0.1 are among those of 0.5, the features kept at 0.3 among those kept at 0.7."""
    rng = make_rng(data_seed)
    order = rng.permutation(len(train))
    n = len(train) if rows is None else min(int(rows), len(train))
    n = int(round(train_fraction * n))
    if n < 2:
        raise ConfigError(
            f"train_fraction {train_fraction} of {len(train)} rows leaves {n} row(s); the "
            "memorization audit needs at least 2 training rows, raise rows or train_fraction"
        )
    features = [c for c in schema.columns if c != schema.target]
    keep_order = rng.permutation(len(features))
    k = max(1, int(round(feature_fraction * len(features))))
    kept = {features[i] for i in keep_order[:k]} | ({schema.target} if schema.target else set())
    sub_schema = TableSchema(
        tuple(c for c in schema.numeric if c in kept), tuple(c for c in schema.categorical if c in kept), schema.target
    )
    cols = [c for c in train.columns if c in kept]
    out = train.iloc[np.sort(order[:n])][cols].reset_index(drop=True)
    out.attrs["source"] = train.attrs.get("source", "train")
    return out, sub_schema


def point_mode(p: Mapping[str, Any]) -> str | None:
    """The TabCutMix(Plus) mask mode of a point (None for other augmentations); see `DEFAULTS`."""
    if p["augmentation"] not in ("tabcutmix", "tabcutmixplus"):
        return None
    if p.get("mode") is not None:
        return str(p["mode"])
    return "code" if p["preset"] == "paper" else "paper"


def make_generator(p: Mapping[str, Any]):
    """The point's generator object (not fitted)."""
    from rote.tabular.pipeline import make_generator as make

    return make(
        p["generator"],
        preset=p["preset"],
        epochs=p["epochs"],
        seed=p["seed"],
        device=p["device"],
        options=p.get("generator_options"),
    )


def _quality_scalars(q: Any) -> dict[str, float]:
    """The paper-table quality metrics of a `QualityResult` (NaN where it computed none, e.g. no test split)."""
    values = {
        "mle": q.mle_auc,
        "alpha_precision": q.alpha_precision,
        "beta_recall": q.beta_recall,
        "shape": q.shape,
        "trend": q.trend,
        "c2st": q.c2st,
        "dcr_share": q.dcr_share,
    }
    return {k: float("nan") if v is None else float(v) for k, v in values.items()}


def experiment_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """One grid point (a `rote.sweep` point function): train, sample, audit, score. Returns scalars plus the
    tables `curve` (epoch, memorization_ratio, n_samples), `history` (per-epoch loss) and `synthetic`."""

    p = point_params(params)
    full_train, test, schema = load_experiment_data(p)
    train, sch = subsample(
        full_train,
        schema,
        rows=p["rows"],
        train_fraction=p["train_fraction"],
        feature_fraction=p["feature_fraction"],
        data_seed=p["data_seed"],
    )
    if test is not None:
        test = test[[c for c in test.columns if c in set(sch.columns)]]
        if p["test_rows"] is not None and len(test) > p["test_rows"]:
            pick = np.sort(make_rng(p["data_seed"]).permutation(len(test))[: int(p["test_rows"])])
            test = test.iloc[pick].reset_index(drop=True)
    out: dict[str, Any] = {"n_train": len(train), "n_features": len(sch.columns) - (1 if sch.target else 0)}

    from rote.tabular.pipeline import augment_table, sample_and_audit, train_generator

    fit_table, aug = augment_table(
        train, sch, p["augmentation"], ratio=p["aug_ratio"], seed=p["seed"], mode=point_mode(p)
    )
    out["mode"] = point_mode(p) or ""
    ood = None
    new_rows = fit_table.iloc[len(train) :]
    if aug is not None and p["ood"]:
        from rote.tabular.augment import ood_rate

        ood = ood_rate(train, new_rows, sch, seed=p["seed"])
    out["n_augmented"] = len(new_rows)
    out["ood_rate"] = ood.ood_rate if ood is not None else float("nan")
    # the detector also flags some real held-out rows: only the excess over that floor is out of distribution
    out["ood_real_rate"] = ood.real_flag_rate if ood is not None else float("nan")
    out["ood_excess"] = ood.ood_rate - ood.real_flag_rate if ood is not None else float("nan")
    if aug is not None:
        from rote.tabular.augment import identical_share

        out["identical_share"] = identical_share(train, new_rows)
    else:
        out["identical_share"] = float("nan")

    trained = train_generator(
        train,
        sch,
        make_generator(p),
        fit_table=fit_table,
        every=p["every"],
        hook_samples=p["hook_samples"],
        distance=p["distance"],
        seed=p["seed"],
        checkpoint_dir=Path(work_dir) / "checkpoints",
        checkpoint_every=p["every"],
        validation=test,  # TabSyn's VAE schedules watch the real test split, as its code does
    )
    out["train_seconds"] = trained.train_seconds

    start = time.perf_counter()
    synthetic, result = sample_and_audit(trained, train, sch, len(train), seed=p["seed"], distance=p["distance"])
    out.update(mem_ratio=result.memorization_ratio, mem_auc=result.mem_auc, exact_copies=result.exact_copies)
    out["quality_notes"] = ""
    out["dcr_ideal"] = float("nan")  # the DCR share's ideal, n_train / (n_train + n_holdout), where it is measured
    if p["quality"] and test is not None and len(test):
        out["dcr_ideal"] = len(train) / (len(train) + len(test))
    if p["quality"]:
        from rote.tabular.quality import quality_report

        q = quality_report(train, synthetic, sch, real_test=test, seed=p["seed"])
        out.update(_quality_scalars(q))
        out.update({k: float("nan") if getattr(q, k) is None else float(getattr(q, k)) for k in EXTRA_QUALITY})
        out["quality_notes"] = "; ".join(q.notes)
    else:
        out.update({k: float("nan") for k in METRICS if k != "mem_ratio"})
    out["eval_seconds"] = time.perf_counter() - start
    return {**out, "curve": trained.curve, "history": trained.history, "synthetic": synthetic}


# ---------------------------------------------------------------------------------------------- aggregate


def paper_table(sweep) -> pd.DataFrame:
    """Table 1 of the paper from a finished sweep: one row per combination of the non-seed axes, with
    `<metric>_mean`/`<metric>_std` (fractions) for `METRICS`, `ood_rate`, the number of seeds, and
    `improvement`: the relative reduction of the mean memorization ratio against augmentation "none" with the
    same other axes, (none - method) / none (NaN when there is no such baseline). Beside it: `improvement_low`/
    `improvement_high`, the 95% paired-seed t interval of mean(none_s - method_s) over the seeds both ran, divided
    by the baseline mean; `n_pairs`; `welch_p`, Welch's two-sided p-value of method vs none (NaN below 2 seeds
    each). Also `dcr_ideal` (n_train / (n_train + n_holdout)), `ood_excess` (OOD rate minus the detector's rate on
    real held-out rows), `identical_share` (new rows equal to a training row) and `quality_notes`."""
    from rote.core.stats import paired_difference_interval, relative_change, welch_t

    extra = [
        c
        for c in ("ood_excess", "ood_real_rate", "identical_share", "dcr_ideal", *EXTRA_QUALITY)
        if c in sweep.table.columns
    ]
    agg = sweep.aggregate([*METRICS, "mem_auc", "ood_rate", *extra])
    for c in ("improvement", "improvement_low", "improvement_high", "welch_p"):
        agg[c] = float("nan")
    agg["n_pairs"] = 0
    keys = [a for a in sweep.grid.axes if a not in (sweep.seed_axis, "augmentation")]
    points = sweep.table
    if "quality_notes" in points.columns and not agg.empty:
        notes = []
        for _, r in agg.iterrows():
            sel = _select(points, {k: r[k] for k in [*keys, "augmentation"] if k in agg.columns})
            found = sorted({n for v in sel["quality_notes"].dropna() for n in str(v).split("; ") if n})
            notes.append("; ".join(found))
        agg["quality_notes"] = notes
    if agg.empty or "augmentation" not in agg.columns:
        return agg
    seed = sweep.seed_axis
    for i, r in agg.iterrows():
        if r["augmentation"] == "none":
            continue
        base = _select(points, {**{k: r[k] for k in keys}, "augmentation": "none"})
        mine = _select(points, {**{k: r[k] for k in keys}, "augmentation": r["augmentation"]})
        if base.empty or mine.empty:
            continue
        b_mean = float(base["mem_ratio"].mean())
        agg.loc[i, "improvement"] = -relative_change(float(mine["mem_ratio"].mean()), b_mean)
        if seed is not None and seed in points.columns:
            both = base[[seed, "mem_ratio"]].merge(mine[[seed, "mem_ratio"]], on=seed, suffixes=("_b", "_m"))
            agg.loc[i, "n_pairs"] = len(both)
            iv = paired_difference_interval(both["mem_ratio_b"].to_numpy(), both["mem_ratio_m"].to_numpy())
            if b_mean > 0:
                agg.loc[i, "improvement_low"], agg.loc[i, "improvement_high"] = iv.low / b_mean, iv.high / b_mean
        if len(base) >= 2 and len(mine) >= 2:
            agg.loc[i, "welch_p"] = welch_t(mine["mem_ratio"].to_numpy(float), base["mem_ratio"].to_numpy(float))[1]
    return agg


def _select(points: pd.DataFrame, values: Mapping[str, Any]) -> pd.DataFrame:
    """Finished points whose columns equal `values` (NaN matches NaN)."""
    mask = pd.Series(True, index=points.index)
    for k, v in values.items():
        if k not in points.columns:
            continue
        col = points[k]
        mask &= col.isna() if (isinstance(v, float) and math.isnan(v)) else (col == v)
    if "mem_ratio" in points.columns:
        mask &= points["mem_ratio"].notna()
    return points[mask]


def _improvement_text(r: Mapping[str, Any]) -> str:
    """'+11.20% [-3.10, +25.50] p=0.21' with the paired interval and Welch p; one seed: no interval."""
    imp = r.get("improvement", float("nan"))
    if imp is None or (isinstance(imp, float) and math.isnan(imp)):
        return "–"
    text = f"{100 * imp:+.2f}%"
    lo, hi = r.get("improvement_low", float("nan")), r.get("improvement_high", float("nan"))
    if not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{100 * lo:+.2f}, {100 * hi:+.2f}]"
    else:
        text += " (no interval: 1 seed)" if int(r.get("n_seeds", 1)) < 2 else " (no interval)"
    p = r.get("welch_p", float("nan"))
    if not math.isnan(p):
        text += f" p={p:.2g}"
    return text


def format_paper_table(table: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """The paper's presentation: metrics in % as "mean ± std" (the mean alone for one seed: a single run has no
    spread), improvement as a signed percentage with its 95% paired-seed interval and Welch p-value, DCR with its
    ideal share, OOD with the detector's floor on real rows, and the quality notes."""
    from rote.core.stats import format_mean_std

    def cell(mean: float, std: float, n: int) -> str:
        if n < 2 and not (isinstance(mean, float) and math.isnan(mean)):
            return f"{mean:.2f}"
        return format_mean_std(mean, std)

    rows = []
    for _, r in table.iterrows():
        row = {a: r[a] for a in axes if a in table.columns}
        n = int(r["n_seeds"])
        row["seeds"] = n
        row[METRIC_LABELS["mem_ratio"]] = cell(100 * r["mem_ratio_mean"], 100 * r["mem_ratio_std"], n)
        row["Improv. [95% CI] p"] = _improvement_text(r)
        for m in METRICS[1:]:
            row[METRIC_LABELS[m]] = cell(100 * r[f"{m}_mean"], 100 * r[f"{m}_std"], n)
        for m in EXTRA_QUALITY:  # only where some point computed them (older runs and --no-quality have none)
            if f"{m}_mean" in table.columns and table[f"{m}_mean"].notna().any():
                row[EXTRA_LABELS[m]] = cell(100 * r[f"{m}_mean"], 100 * r[f"{m}_std"], n)
        ideal = r.get("dcr_ideal_mean", float("nan"))
        if not (isinstance(ideal, float) and math.isnan(ideal)) and not math.isnan(r["dcr_share_mean"]):
            row[METRIC_LABELS["dcr_share"]] += f" (ideal {100 * ideal:.1f})"
        ood = r.get("ood_rate_mean", float("nan"))
        floor = r.get("ood_real_rate_mean", float("nan"))
        if isinstance(ood, float) and math.isnan(ood):
            row["OOD % (real floor)"] = "–"
        else:
            row["OOD % (real floor)"] = f"{100 * ood:.2f}" + ("" if math.isnan(floor) else f" ({100 * floor:.2f})")
        same = r.get("identical_share_mean", float("nan"))
        row["Copies in aug. %"] = "–" if isinstance(same, float) and math.isnan(same) else f"{100 * same:.2f}"
        notes = r.get("quality_notes", "")
        row["notes"] = notes if isinstance(notes, str) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def curve_table(sweep) -> pd.DataFrame:
    """Memorization-versus-epoch curves averaged over seeds: the non-seed axes, `epoch`, `mem_mean`, `mem_std`,
    `n_seeds` (from each point's MemorizationHook history)."""
    from rote.core.stats import mean_std

    curves = sweep.point_table("curve")
    if curves.empty:
        return pd.DataFrame(columns=["epoch", "mem_mean", "mem_std", "n_seeds"])
    keys = [a for a in sweep.grid.axes if a != sweep.seed_axis] + ["epoch"]
    rows = []
    for key, g in curves.groupby(keys, sort=True, dropna=False):
        m, s = mean_std(g["memorization_ratio"].to_numpy(float))
        rows.append(
            {
                **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                "mem_mean": m,
                "mem_std": s,
                "n_seeds": len(g),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ExperimentResult(Result):
    """Result of `run_experiment`. Scalars: grid (axes and fixed parameters), point counts. Tables:
    `paper_table` (aggregated, fractions), `curves` (memorization vs epoch), `points` (one row per point)."""

    grid: dict[str, Any]
    n_points: int
    n_done: int
    n_failed: int
    n_reused: int
    seed_axis: str | None
    n_bad_input: int
    status: int
    status_reason: str | None
    paper_table: pd.DataFrame = table_field("paper_table")
    curves: pd.DataFrame = table_field("curves")
    points: pd.DataFrame = table_field("points")
    failures: pd.DataFrame = internal_field()

    def axes(self) -> list[str]:
        """The grid axes other than the seed axis (the row keys of `paper_table`)."""
        return [a for a in self.grid["axes"] if a != self.seed_axis]

    def formatted_table(self) -> pd.DataFrame:
        return format_paper_table(self.paper_table, self.axes())

    def summary(self) -> str:
        lines = [
            f"grid points: {self.n_points} ({self.n_done} done, {self.n_reused} reused from an earlier run, "
            f"{self.n_failed} failed)"
        ]
        if not self.paper_table.empty:
            lines.append(self.formatted_table().to_string(index=False))
        for _, f in self.failures.iterrows():
            lines.append(f"failed point {f['point_id']}: {f['error']}")
        return "\n".join(lines)


def run_experiment(
    grid, out: str | os.PathLike, *, workers: int = 1, ray: str | None = None, quiet: bool = False
) -> ExperimentResult:
    """Run (or resume) an experiment grid into `out/grid/points/<id>/` and aggregate it; see the module
    docstring. Finished points of an earlier run into the same `out` are reused, not recomputed."""
    from rote.sweep import run_grid

    sweep = run_grid(
        experiment_point, grid, Path(out) / "grid", workers=workers, ray=ray, seed_axis="seed", quiet=quiet
    )
    status, reason = sweep.exit_status()
    failures = sweep.failures()
    return ExperimentResult(
        grid=grid.to_dict(),
        n_points=len(grid),
        n_done=sweep.n_done,
        n_failed=sweep.n_failed,
        n_reused=sweep.n_reused,
        seed_axis=sweep.seed_axis,
        n_bad_input=int(failures["user_error"].sum()),
        status=status,
        status_reason=reason,
        paper_table=paper_table(sweep),
        curves=curve_table(sweep),
        points=sweep.table,
        failures=failures,
    )


def experiment_outputs(result: ExperimentResult) -> dict[str, Any]:
    """What `RunFolder.finish` writes for an experiment besides its tables: paper_table.md, the plots and the
    report builder (keyword arguments `files`, `plots`, `report`)."""
    from rote.report.html import markdown_table
    from rote.tabular.report import experiment_plots, experiment_report

    text = markdown_table(result.formatted_table()) if not result.paper_table.empty else "no finished points\n"
    plots = experiment_plots(result)
    return {
        "files": {"paper_table.md": text},
        "plots": plots,
        "report": lambda config: experiment_report(result, plots=plots, config=config),
    }
