"""The `rote` command line: a thin skin over the library.

Each command parses options, calls one library function, writes the run folder and prints a short summary.
Exit codes: 0 success, 2 bad input (one line on stderr saying what and how to fix it), 1 internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

import rote
from rote.core.errors import ConfigError, RoteError

app = typer.Typer(
    name="rote",
    help="Measure, detect, localize and mitigate memorization in machine-learning models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Datasets shipped with rote and column-type presets for the papers' datasets.",
                           no_args_is_help=True)
tabular_app = typer.Typer(help="Tabular memorization: audit synthetic tables, train generators, augment, score "
                               "quality, run experiment grids.",
                          no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(tabular_app, name="tabular")

# Domain command groups live in their own modules; main.py only mounts them.
from rote.cli import fairness as _fairness_cli  # noqa: E402
from rote.cli import llm as _llm_cli  # noqa: E402

app.add_typer(_fairness_cli.app, name="fairness")
app.add_typer(_llm_cli.app, name="llm")


def _version(value: bool) -> None:
    if value:
        print(f"rote {rote.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """rote: measure, detect, localize and mitigate memorization in machine-learning models."""


def _split(values: Optional[list[str]]) -> list[str]:
    """Column lists given as repeated options and/or comma-separated values."""
    out: list[str] = []
    for v in values or []:
        out.extend(c.strip() for c in v.split(",") if c.strip())
    return out


# ---------------------------------------------------------------------------------------------- datasets


@datasets_app.command("list")
def datasets_list() -> None:
    """List the datasets shipped with rote and the column-type presets for the papers' datasets."""
    from rich.console import Console
    from rich.table import Table

    from rote.data import DATASET_PRESETS, list_datasets

    console = Console(width=140)
    shipped = Table(title="Shipped datasets (rote.data.load_dataset)")
    for col in ("name", "splits", "numeric", "categorical", "target", "license"):
        shipped.add_column(col)
    for d in list_datasets():
        shipped.add_row(d.name, ", ".join(f"{k} {v:,}" for k, v in d.splits.items()), str(len(d.schema.numeric)),
                        str(len(d.schema.categorical)), str(d.schema.target), d.license)
    console.print(shipped)
    presets = Table(title="Column-type presets for your own files (--dataset-preset NAME)")
    for col in ("name", "task", "numeric", "categorical", "target", "dropped"):
        presets.add_column(col)
    for p in DATASET_PRESETS.values():
        presets.add_row(p.name, p.task, str(len(p.numeric)), str(len(p.categorical)), p.target, ", ".join(p.drop) or "-")
    console.print(presets)


# ---------------------------------------------------------------------------------------------- tabular


def _resolve_schema(train_path: Path, *, schema_path: Optional[Path], preset: Optional[str], target: Optional[str],
                    numeric: list[str], categorical: list[str]):
    """Load the training table and resolve its schema: --schema file, else --dataset-preset, else inferred;
    then --numeric/--categorical/--target on top. Returns (train frame, schema, preset name or None)."""
    from rote.data import TableSchema, apply_preset, get_preset, infer_schema, load_table

    sep = get_preset(preset).sep if preset else None
    train = load_table(train_path, sep=sep)
    if schema_path is not None and preset is not None:
        raise ConfigError("--schema and --dataset-preset both give column types; pass only one")
    if schema_path is not None:
        schema = TableSchema.load(schema_path)
    elif preset is not None:
        train, schema = apply_preset(train, preset)
    else:
        schema = infer_schema(train, target=target, numeric=numeric, categorical=categorical)
        return train, schema
    if numeric or categorical or target:
        schema = schema.with_overrides(numeric=numeric, categorical=categorical, target=target)
    return train, schema


def _load_like_train(path: Optional[Path], preset: Optional[str]):
    from rote.data import apply_preset, get_preset, load_table

    if path is None:
        return None
    frame = load_table(path, sep=get_preset(preset).sep if preset else None)
    return apply_preset(frame, preset)[0] if preset else frame


@tabular_app.command("audit")
def tabular_audit(
    train: Path = typer.Option(..., "--train", help="Training table (CSV or Parquet) the generator learned from."),
    synthetic: Path = typer.Option(..., "--synthetic", help="Synthetic table to audit (same columns)."),
    out: Path = typer.Option(..., "--out", help="Run folder for config.json, results.json, rows.parquet, plots, report.html."),
    holdout: Optional[Path] = typer.Option(None, "--holdout", help="Real rows not used in training: adds the DCR share."),
    target: Optional[str] = typer.Option(None, "--target", help="Label column (counted as a categorical column by tabcutmix)."),
    schema: Optional[Path] = typer.Option(None, "--schema", help="Column types from a schema JSON (see `rote tabular schema`)."),
    dataset_preset: Optional[str] = typer.Option(None, "--dataset-preset", help="Column types of a paper dataset (rote datasets list)."),
    numeric: Optional[list[str]] = typer.Option(None, "--numeric", help="Force columns numeric (comma-separated or repeated)."),
    categorical: Optional[list[str]] = typer.Option(None, "--categorical", help="Force columns categorical."),
    distance: str = typer.Option("tabcutmix", "--distance", help="tabcutmix (the paper code's), gower or l2."),
    threshold: float = typer.Option(1 / 3, "--threshold", help="Memorized when d1/d2 < threshold (paper: 1/3)."),
    exclude_target: bool = typer.Option(False, "--exclude-target", help="Leave the label out of the distance."),
    missing: str = typer.Option("error", "--missing", help="Missing cells: error (default) or category (own category)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    block_mb: int = typer.Option(16, "--block-mb", help="Working memory per query block, MiB (results do not depend on it)."),
    top: int = typer.Option(10, "--top", help="Most-copied training rows shown in report.html."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Audit a synthetic table for rows that copy the training data (nearest/second-nearest distance ratio)."""
    from rote.core.runs import RunFolder, progress_bar
    from rote.tabular import audit
    from rote.tabular.audit import audit_searches
    from rote.report.tabular import save_audit

    if block_mb < 1:
        raise ConfigError(f"--block-mb must be at least 1, got {block_mb}")
    run = RunFolder(out, force=force, inputs=[p for p in (train, synthetic, holdout, schema) if p is not None])
    num, cat = _split(numeric), _split(categorical)
    train_df, sch = _resolve_schema(train, schema_path=schema, preset=dataset_preset, target=target,
                                    numeric=num, categorical=cat)
    synth_df = _load_like_train(synthetic, dataset_preset)
    hold_df = _load_like_train(holdout, dataset_preset)
    options = {"train": str(train), "synthetic": str(synthetic), "holdout": None if holdout is None else str(holdout),
               "target": sch.target, "schema": sch.to_dict(), "dataset_preset": dataset_preset, "distance": distance,
               "threshold": threshold, "include_target": not exclude_target, "missing": missing, "device": device,
               "block_mb": block_mb, "top": top}
    steps = len(synth_df) * audit_searches(hold_df is not None, distance)
    with progress_bar(steps, "auditing synthetic rows", quiet=quiet) as advance:
        result = audit(train_df, synth_df, holdout=hold_df, schema=sch, distance=distance, threshold=threshold,
                       include_target=not exclude_target, missing=missing, device=device,
                       block_bytes=block_mb * 2**20, progress=advance)
    config = run.write_config("rote tabular audit", options,
                              inputs={"train": train, "synthetic": synthetic, "holdout": holdout, "schema": schema})
    paths = save_audit(result, run, config=_read(config), top=top)
    print(result.summary())
    print(f"report: {paths['report']}")


def _read(path: Path) -> dict:
    from rote.core.runs import read_json

    return read_json(path)


@tabular_app.command("schema")
def tabular_schema(
    data: Path = typer.Option(..., "--data", help="Table (CSV or Parquet) to infer column types from."),
    out: Path = typer.Option(..., "--out", help="Schema JSON to write."),
    target: Optional[str] = typer.Option(None, "--target", help="Label column."),
    dataset_preset: Optional[str] = typer.Option(None, "--dataset-preset", help="Start from a paper dataset's types."),
    numeric: Optional[list[str]] = typer.Option(None, "--numeric", help="Force columns numeric."),
    categorical: Optional[list[str]] = typer.Option(None, "--categorical", help="Force columns categorical."),
    force: bool = typer.Option(False, "--force", help="Replace an existing schema file."),
) -> None:
    """Infer a table's column types (numeric, categorical, target) and save them as JSON for --schema."""
    if out.exists() and not force:
        raise ConfigError(f"--out {out}: exists; choose another path or pass --force")
    if out.resolve() == data.resolve():
        raise ConfigError(f"--out {out}: is the input table; rote never overwrites inputs")
    _, sch = _resolve_schema(data, schema_path=None, preset=dataset_preset, target=target,
                             numeric=_split(numeric), categorical=_split(categorical))
    sch.save(out)
    print(f"numeric ({len(sch.numeric)}): {', '.join(sch.numeric) or '-'}")
    print(f"categorical ({len(sch.categorical)}): {', '.join(sch.categorical) or '-'}")
    print(f"target: {sch.target or '-'}")
    print(f"schema: {out}")


def _training_table(train: Optional[Path], dataset: Optional[str], *, schema_path: Optional[Path],
                    preset: Optional[str], target: Optional[str], numeric: list[str], categorical: list[str]):
    """(table, schema, label for config) from --train FILE (with its schema options) or --dataset NAME."""
    from rote.data import dataset_schema, load_dataset

    if (train is None) == (dataset is None):
        raise ConfigError("give the training table with exactly one of --train FILE or --dataset NAME "
                          "(shipped datasets: `rote datasets list`)")
    if dataset is not None:
        return load_dataset(dataset, "train"), dataset_schema(dataset), f"{dataset}:train"
    frame, sch = _resolve_schema(train, schema_path=schema_path, preset=preset, target=target, numeric=numeric,
                                 categorical=categorical)
    return frame, sch, str(train)


_SCHEMA_HELP = {
    "target": "Label column.", "schema": "Column types from a schema JSON (see `rote tabular schema`).",
    "preset": "Column types of a paper dataset (rote datasets list).",
    "numeric": "Force columns numeric (comma-separated or repeated).", "categorical": "Force columns categorical.",
}


@tabular_app.command("train")
def tabular_train(
    out: Path = typer.Option(..., "--out", help="Run folder: model.pt, synthetic.parquet, history, audit, report."),
    train: Optional[Path] = typer.Option(None, "--train", help="Training table (CSV or Parquet)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Or a shipped dataset (e.g. adult)."),
    generator: str = typer.Option("tabddpm", "--generator", help="tabddpm, tabsyn or ijf."),
    preset: str = typer.Option("small", "--preset", help="small (CPU) or paper."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default: the preset's)."),
    timesteps: Optional[int] = typer.Option(None, "--timesteps", help="Diffusion steps T (default: the preset's, "
                                            "1000 as in the paper; fewer samples faster)."),
    augmentation: str = typer.Option("none", "--augmentation", help="Train on an augmented table: none, tabcutmix, "
                                     "tabcutmixplus, mixup, smote, ijf."),
    aug_ratio: float = typer.Option(0.3, "--aug-ratio", help="New rows per training row."),
    every: int = typer.Option(0, "--every", help="Check memorization every N epochs (0: only the final audit)."),
    hook_samples: Optional[int] = typer.Option(None, "--hook-samples", help="Rows sampled per check (n_train)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Checkpoint every N epochs."),
    n_synthetic: Optional[int] = typer.Option(None, "--n-synthetic", help="Synthetic rows (default: n_train)."),
    distance: str = typer.Option("tabcutmix", "--distance", help="Audit distance: tabcutmix, gower or l2."),
    target: Optional[str] = typer.Option(None, "--target", help=_SCHEMA_HELP["target"]),
    schema: Optional[Path] = typer.Option(None, "--schema", help=_SCHEMA_HELP["schema"]),
    dataset_preset: Optional[str] = typer.Option(None, "--dataset-preset", help=_SCHEMA_HELP["preset"]),
    numeric: Optional[list[str]] = typer.Option(None, "--numeric", help=_SCHEMA_HELP["numeric"]),
    categorical: Optional[list[str]] = typer.Option(None, "--categorical", help=_SCHEMA_HELP["categorical"]),
    seed: int = typer.Option(0, "--seed", help="Seed of training, augmentation and sampling."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a tabular generator (optionally on an augmented table), sample it and audit the samples.
    Checkpoints go to OUT/checkpoints/; re-running an interrupted command resumes from the newest one."""
    from rote.core.runs import RunFolder, seed_everything
    from rote.report.tabular import save_audit
    from rote.tabular import audit
    from rote.tabular.experiment import AUGMENTATIONS, GENERATORS, make_generator

    if generator not in GENERATORS:
        raise ConfigError(f"--generator {generator!r} is unknown; choose among {', '.join(GENERATORS)}")
    if augmentation not in AUGMENTATIONS:
        raise ConfigError(f"--augmentation {augmentation!r} is unknown; choose among {', '.join(AUGMENTATIONS)}")
    if every < 0:
        raise ConfigError(f"--every must be 0 (no checks) or more, got {every}")
    seed_everything(seed)
    run = RunFolder(out, force=force, inputs=[p for p in (train, schema) if p is not None])
    table, sch, source = _training_table(train, dataset, schema_path=schema, preset=dataset_preset, target=target,
                                         numeric=_split(numeric), categorical=_split(categorical))
    fit_table = table
    if augmentation != "none":
        from rote.tabular.augment import AUGMENTERS

        fit_table = AUGMENTERS[augmentation](ratio=aug_ratio, seed=seed).fit(table, sch).augment(table)
    gen = make_generator({"generator": generator, "preset": preset, "epochs": epochs, "seed": seed, "device": device,
                          "generator_options": {"num_timesteps": timesteps} if timesteps is not None else None})
    if generator == "ijf":
        gen.fit(fit_table, sch)
    else:
        from rote.tabular.models import MemorizationHook

        hooks = [MemorizationHook(table, sch, every=every, n_samples=hook_samples, distance=distance, seed=seed)] \
            if every else []
        gen.fit(fit_table, sch, callbacks=hooks, checkpoint_dir=run.path / "checkpoints",
                checkpoint_every=checkpoint_every, progress=not quiet)
        gen.save(run.file("model.pt"))
        import pandas as pd

        run.write_parquet("history.parquet", pd.DataFrame(gen.history_))
    n = len(table) if n_synthetic is None else n_synthetic
    synthetic = gen.sample(n, seed=seed)
    run.write_parquet("synthetic.parquet", synthetic)
    result = audit(table, synthetic, schema=sch, distance=distance, device=device)
    options = {"train": source, "generator": generator, "preset": preset, "epochs": epochs, "timesteps": timesteps,
               "augmentation": augmentation, "aug_ratio": aug_ratio, "every": every, "hook_samples": hook_samples,
               "checkpoint_every": checkpoint_every, "n_synthetic": n, "distance": distance, "schema": sch.to_dict(),
               "device": device}
    config = run.write_config("rote tabular train", options, inputs={"train": train, "schema": schema}, seed=seed)
    history = getattr(gen, "history_", [])
    curve = [{"epoch": h["epoch"], "memorization_ratio": h["memorization_ratio"]} for h in history
             if h.get("memorization_ratio") is not None]
    extra = {"generator": generator, "n_training_rows": len(fit_table), "epochs_trained": len(history),
             "final_loss": history[-1].get("loss") if history else None, "memorization_curve": curve}
    paths = save_audit(result, run, config=_read(config), extra=extra)
    print(f"trained {generator} on {len(fit_table):,} rows ({augmentation}); {n:,} synthetic rows")
    print(result.summary())
    print(f"report: {paths['report']}")


@tabular_app.command("augment")
def tabular_augment(
    out: Path = typer.Option(..., "--out", help="Run folder: augmented.parquet, augmented.csv, results.json, report."),
    train: Optional[Path] = typer.Option(None, "--train", help="Table to augment (CSV or Parquet)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Or a shipped dataset (e.g. adult)."),
    method: str = typer.Option("tabcutmix", "--method", help="tabcutmix, tabcutmixplus, mixup, smote or ijf."),
    ratio: float = typer.Option(0.3, "--ratio", help="New rows per original row (paper: 0.3)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="TabCutMix(Plus) mask: paper (Bernoulli) or code (exactly "
                                       "floor(lambda F) features)."),
    cut: Optional[float] = typer.Option(None, "--cut", help="TabCutMixPlus clustering cut on 1 - association."),
    ood: bool = typer.Option(True, "--ood/--no-ood", help="Score the new rows' out-of-distribution rate."),
    target: Optional[str] = typer.Option(None, "--target", help=_SCHEMA_HELP["target"]),
    schema: Optional[Path] = typer.Option(None, "--schema", help=_SCHEMA_HELP["schema"]),
    dataset_preset: Optional[str] = typer.Option(None, "--dataset-preset", help=_SCHEMA_HELP["preset"]),
    numeric: Optional[list[str]] = typer.Option(None, "--numeric", help=_SCHEMA_HELP["numeric"]),
    categorical: Optional[list[str]] = typer.Option(None, "--categorical", help=_SCHEMA_HELP["categorical"]),
    seed: int = typer.Option(0, "--seed", help="Seed of the augmenter and the OOD detector."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
) -> None:
    """Augment a training table (originals first, then the new rows) and measure how out-of-distribution the new
    rows are; TabCutMixPlus also writes its column association matrix and clusters."""
    from rote.core.runs import RunFolder
    from rote.report.augment import augment_report
    from rote.tabular.augment import AUGMENTERS, ood_rate

    if method not in AUGMENTERS:
        raise ConfigError(f"--method {method!r} is unknown; choose among {', '.join(AUGMENTERS)}")
    kwargs: dict = {"ratio": ratio, "seed": seed}
    if mode is not None:
        if method not in ("tabcutmix", "tabcutmixplus"):
            raise ConfigError("--mode applies to --method tabcutmix and tabcutmixplus only")
        kwargs["mode"] = mode
    if cut is not None:
        if method != "tabcutmixplus":
            raise ConfigError("--cut applies to --method tabcutmixplus only")
        kwargs["cut"] = cut
    run = RunFolder(out, force=force, inputs=[p for p in (train, schema) if p is not None])
    table, sch, source = _training_table(train, dataset, schema_path=schema, preset=dataset_preset, target=target,
                                         numeric=_split(numeric), categorical=_split(categorical))
    aug = AUGMENTERS[method](**kwargs).fit(table, sch)
    both = aug.augment(table)
    new = both.iloc[len(table):]
    results: dict = {"method": method, "params": kwargs, "n_original": len(table), "n_new": len(new)}
    o = None
    if ood and len(new):
        o = ood_rate(table, new, sch, seed=seed)
        results.update(ood_rate=o.ood_rate, ood_detector_accuracy=o.detector_accuracy)
    if hasattr(aug, "clusters_"):
        results["clusters"] = aug.clusters_
        run.write_parquet("association.parquet", aug.association_.reset_index(names="column"))
    run.write_parquet("augmented.parquet", both)
    run.write_text("augmented.csv", both.to_csv(index=False))
    config = run.write_config("rote tabular augment", {"train": source, "schema": sch.to_dict(), **results},
                              inputs={"train": train, "schema": schema}, seed=seed)
    run.write_text("report.html", augment_report(aug, ood={method: o} if o is not None else None,
                                                 config=_read(config), title=f"Augmentation: {method}"))
    run.write_json("results.json", results)
    print(f"{method}: {len(table):,} original rows + {len(new):,} new rows")
    if "ood_rate" in results:
        print(f"OOD rate of the new rows: {results['ood_rate']:.2%} (detector accuracy "
              f"{results['ood_detector_accuracy']:.2%})")
    if "clusters" in results:
        print("clusters: " + "; ".join(", ".join(c) for c in results["clusters"]))
    print(f"augmented table: {run.path / 'augmented.csv'}")


@tabular_app.command("quality")
def tabular_quality(
    synthetic: Path = typer.Option(..., "--synthetic", help="Synthetic table (same columns as the training table)."),
    out: Path = typer.Option(..., "--out", help="Run folder: results.json, per-column tables, report.html."),
    train: Optional[Path] = typer.Option(None, "--train", help="Real training table (CSV or Parquet)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Or a shipped dataset (its train and test splits)."),
    test: Optional[Path] = typer.Option(None, "--test", help="Real test table: adds MLE and the DCR share."),
    target: Optional[str] = typer.Option(None, "--target", help=_SCHEMA_HELP["target"]),
    schema: Optional[Path] = typer.Option(None, "--schema", help=_SCHEMA_HELP["schema"]),
    dataset_preset: Optional[str] = typer.Option(None, "--dataset-preset", help=_SCHEMA_HELP["preset"]),
    numeric: Optional[list[str]] = typer.Option(None, "--numeric", help=_SCHEMA_HELP["numeric"]),
    categorical: Optional[list[str]] = typer.Option(None, "--categorical", help=_SCHEMA_HELP["categorical"]),
    seed: int = typer.Option(0, "--seed", help="Seed of the metrics' classifiers and subsamples."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
) -> None:
    """Quality of a synthetic table: shape, trend, alpha-precision, beta-recall, C2ST, MLE and DCR share."""
    from rote.core.runs import RunFolder
    from rote.data import load_dataset
    from rote.report.experiment import quality_html
    from rote.tabular.quality import quality_report

    run = RunFolder(out, force=force, inputs=[p for p in (train, synthetic, test, schema) if p is not None])
    table, sch, source = _training_table(train, dataset, schema_path=schema, preset=dataset_preset, target=target,
                                         numeric=_split(numeric), categorical=_split(categorical))
    synth = _load_like_train(synthetic, dataset_preset)
    if test is not None:
        real_test = _load_like_train(test, dataset_preset)
    elif dataset is not None:
        real_test = load_dataset(dataset, "test")
    else:
        real_test = None
    result = quality_report(table, synth, sch, real_test=real_test, seed=seed)
    config = run.write_config("rote tabular quality", {"train": source, "synthetic": str(synthetic),
                                                       "test": None if test is None else str(test),
                                                       "schema": sch.to_dict()},
                              inputs={"train": train, "synthetic": synthetic, "test": test, "schema": schema},
                              seed=seed)
    run.write_text("report.html", quality_html(result, config=_read(config)))
    result.save(run)
    print(result.summary())
    print(f"report: {run.path / 'report.html'}")


@tabular_app.command("experiment")
def tabular_experiment(
    out: Path = typer.Option(..., "--out", help="Run folder (grid points under OUT/grid/points/<id>/)."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Grid file (.yaml/.json): {axes: {...}, fixed: {...}}; "
                                        "options given on the command line are added on top."),
    dataset: Optional[list[str]] = typer.Option(None, "--dataset", help="Shipped dataset name(s) or table file(s)."),
    generator: Optional[list[str]] = typer.Option(None, "--generator", help="tabddpm, tabsyn, ijf (several: an axis)."),
    augmentation: Optional[list[str]] = typer.Option(None, "--augmentation",
                                                     help="none, tabcutmix, tabcutmixplus, mixup, smote, ijf."),
    epochs: Optional[list[str]] = typer.Option(None, "--epochs", help="Training epochs (several: an axis)."),
    seeds: Optional[list[str]] = typer.Option(None, "--seeds", help="Seeds, e.g. 0,1,2 (mean ± std over them)."),
    train_fraction: Optional[list[str]] = typer.Option(None, "--train-fraction",
                                                       help="Share of training rows, e.g. 0.1,0.5,1 (size sweep)."),
    feature_fraction: Optional[list[str]] = typer.Option(None, "--feature-fraction",
                                                         help="Share of feature columns kept, e.g. 0.3,0.7,1."),
    rows: Optional[int] = typer.Option(None, "--rows", help="Cap on training rows (a fixed random subset)."),
    test_rows: Optional[int] = typer.Option(None, "--test-rows", help="Cap on test rows used by MLE and DCR."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Generator preset: small (default) or paper."),
    aug_ratio: Optional[float] = typer.Option(None, "--aug-ratio", help="New rows per training row (paper: 0.3)."),
    every: Optional[int] = typer.Option(None, "--every", help="Epochs between memorization checks (the curve)."),
    hook_samples: Optional[int] = typer.Option(None, "--hook-samples", help="Rows sampled per check (n_train)."),
    distance: Optional[str] = typer.Option(None, "--distance", help="Audit distance: tabcutmix (default), gower, l2."),
    target: Optional[str] = typer.Option(None, "--target", help="Label column of a dataset given as a file."),
    test: Optional[str] = typer.Option(None, "--test", help="Real test table of a dataset given as a file."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
    no_quality: bool = typer.Option(False, "--no-quality", help="Skip the quality metrics (faster)."),
    no_ood: bool = typer.Option(False, "--no-ood", help="Skip the OOD rate of augmented rows."),
    workers: int = typer.Option(1, "--workers", help="Grid points run in parallel (local processes)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="'local' (start Ray here) or a cluster address: points "
                                      "run as Ray tasks (needs rote[ray])."),
    force: bool = typer.Option(False, "--force", help="Replace the aggregated results of a finished run "
                               "(finished points are reused either way)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Run the paper's grid: dataset x generator x augmentation x epochs x seeds (+ size and feature sweeps);
    write the paper-style table, memorization-vs-epoch curves, plots and report.html. Re-running the same
    command resumes an interrupted grid without recomputing finished points."""
    from rote.core.runs import RunFolder
    from rote.sweep import Grid, axis_values
    from rote.tabular.experiment import experiment_grid, run_experiment, save_experiment

    base_axes: dict = {}
    base_fixed: dict = {}
    if grid is not None:
        g = Grid.load(grid)
        base_axes, base_fixed = dict(g.axes), dict(g.fixed)
    cli_axes = {"dataset": _split(dataset), "generator": _split(generator), "augmentation": _split(augmentation),
                "epochs": axis_values(epochs, int, "epochs"), "seed": axis_values(seeds, int, "seeds"),
                "train_fraction": axis_values(train_fraction, float, "train-fraction"),
                "feature_fraction": axis_values(feature_fraction, float, "feature-fraction")}
    for name, values in cli_axes.items():
        if values:
            base_fixed.pop(name, None)
            if len(values) == 1:
                base_axes.pop(name, None)
                base_fixed[name] = values[0]
            else:
                base_axes[name] = values
    cli_fixed = {"rows": rows, "test_rows": test_rows, "preset": preset, "aug_ratio": aug_ratio, "every": every,
                 "hook_samples": hook_samples, "distance": distance, "target": target, "test": test, "device": device}
    for name, value in cli_fixed.items():
        if value is not None:
            base_axes.pop(name, None)
            base_fixed[name] = value
    if no_quality:
        base_fixed["quality"] = False
    if no_ood:
        base_fixed["ood"] = False
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    exp_grid = experiment_grid(base_axes, **base_fixed)
    run = RunFolder(out, force=force, inputs=[p for p in (grid,) if p is not None])
    config = run.write_config("rote tabular experiment", {"grid": exp_grid.to_dict(), "workers": workers,
                                                          "ray": ray}, inputs={"grid": grid})
    result = run_experiment(exp_grid, out, workers=workers, ray=ray, quiet=quiet)
    paths = save_experiment(result, run, config=_read(config))
    print(result.summary())
    print(f"report: {paths['report']}")


# ---------------------------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder."),
    rows: int = typer.Option(5_000, "--rows", help="Adult training rows used (a seeded random subset of 32,561)."),
    epochs: int = typer.Option(200, "--epochs", help="TabDDPM training epochs (each model)."),
    every: int = typer.Option(50, "--every", help="Epochs between memorization checks during training."),
    hook_samples: int = typer.Option(500, "--hook-samples", help="Rows sampled per memorization check."),
    timesteps: Optional[int] = typer.Option(None, "--timesteps", help="Diffusion steps T (default 1000, as in the "
                                            "paper; fewer samples faster)."),
    copies: int = typer.Option(100, "--copies", help="Exact copies of training rows planted (ground-truth section)."),
    near_copies: int = typer.Option(100, "--near-copies", help="Near copies planted (one value moved 1% of its std)."),
    distance: str = typer.Option("tabcutmix", "--distance", help="tabcutmix, gower or l2."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subset, the models, TabCutMix and the planted copies."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """The main job: train a small TabDDPM on UCI Adult with and without TabCutMix, audit both for memorized
    rows, score their quality, and write one report comparing them."""
    from rote.demo import run_demo

    run_demo(out=out, rows=rows, epochs=epochs, every=every, hook_samples=hook_samples, timesteps=timesteps,
             copies=copies,
             near_copies=near_copies, distance=distance, seed=seed, device=device, force=force, quiet=quiet)


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: RoteError -> one line on stderr and exit code 2."""
    try:
        app(args=argv, prog_name="rote")
    except RoteError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":  # pragma: no cover
    main()
