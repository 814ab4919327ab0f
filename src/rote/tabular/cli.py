"""`rote tabular ...`: audit synthetic tables, train generators, augment, score quality, run experiment grids.

Each command parses its options, calls the library and ends with `RunFolder.finish` (see `rote.core.cli` for the
exit contract); everything it does is one library call away from Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rote.core.cli import split_list as _split
from rote.core.errors import ConfigError

app = typer.Typer(
    help="Tabular memorization: audit synthetic tables, train generators, augment, score quality, "
    "run experiment grids.",
    no_args_is_help=True,
)

QUIET_HELP = "No progress bar and no summary."


def _resolve_schema(
    train_path: Path,
    *,
    schema_path: Optional[Path],
    preset: Optional[str],
    target: Optional[str],
    numeric: list[str],
    categorical: list[str],
):
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


@app.command("audit")
def tabular_audit(
    train: Path = typer.Option(..., "--train", help="Training table (CSV or Parquet) the generator learned from."),
    synthetic: Path = typer.Option(..., "--synthetic", help="Synthetic table to audit (same columns)."),
    out: Path = typer.Option(
        ..., "--out", help="Run folder for config.json, results.json, rows.parquet, plots, report.html."
    ),
    holdout: Optional[Path] = typer.Option(
        None, "--holdout", help="Real rows not used in training: adds the DCR share."
    ),
    target: Optional[str] = typer.Option(
        None, "--target", help="Label column (counted as a categorical column by tabcutmix)."
    ),
    schema: Optional[Path] = typer.Option(
        None, "--schema", help="Column types from a schema JSON (see `rote tabular schema`)."
    ),
    dataset_preset: Optional[str] = typer.Option(
        None, "--dataset-preset", help="Column types of a paper dataset (rote datasets list)."
    ),
    numeric: Optional[list[str]] = typer.Option(
        None, "--numeric", help="Force columns numeric (comma-separated or repeated)."
    ),
    categorical: Optional[list[str]] = typer.Option(None, "--categorical", help="Force columns categorical."),
    distance: str = typer.Option("tabcutmix", "--distance", help="tabcutmix (the paper code's), gower or l2."),
    threshold: float = typer.Option(1 / 3, "--threshold", help="Memorized when d1/d2 < threshold (paper: 1/3)."),
    exclude_target: bool = typer.Option(False, "--exclude-target", help="Leave the label out of the distance."),
    missing: str = typer.Option(
        "error", "--missing", help="Missing cells: error (default) or category (own category)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    ray: Optional[str] = typer.Option(
        None, "--ray", help="'local' or a Ray cluster address: search blocks of synthetic rows as Ray tasks."
    ),
    ray_block_rows: int = typer.Option(4096, "--ray-block-rows", help="Synthetic rows per Ray task."),
    block_mb: int = typer.Option(
        16, "--block-mb", help="Working memory per query block, MiB (results do not depend on it)."
    ),
    top: int = typer.Option(10, "--top", help="Most-copied training rows shown in report.html."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """Audit a synthetic table for rows that copy the training data (nearest/second-nearest distance ratio)."""
    from rote.core.runs import RunFolder, progress_bar
    from rote.tabular import audit
    from rote.tabular.audit import audit_searches
    from rote.tabular.report import audit_outputs

    if block_mb < 1:
        raise ConfigError(f"--block-mb must be at least 1, got {block_mb}")
    run = RunFolder(out, force=force, inputs=[p for p in (train, synthetic, holdout, schema) if p is not None])
    num, cat = _split(numeric), _split(categorical)
    train_df, sch = _resolve_schema(
        train, schema_path=schema, preset=dataset_preset, target=target, numeric=num, categorical=cat
    )
    synth_df = _load_like_train(synthetic, dataset_preset)
    hold_df = _load_like_train(holdout, dataset_preset)
    options = {
        "train": str(train),
        "synthetic": str(synthetic),
        "holdout": None if holdout is None else str(holdout),
        "target": sch.target,
        "schema": sch.to_dict(),
        "dataset_preset": dataset_preset,
        "distance": distance,
        "threshold": threshold,
        "include_target": not exclude_target,
        "missing": missing,
        "device": device,
        "ray": ray,
        "ray_block_rows": ray_block_rows,
        "block_mb": block_mb,
        "top": top,
    }
    steps = len(synth_df) * audit_searches(hold_df is not None, distance)
    with progress_bar(steps, "auditing synthetic rows", quiet=quiet) as advance:
        result = audit(
            train_df,
            synth_df,
            holdout=hold_df,
            schema=sch,
            distance=distance,
            threshold=threshold,
            include_target=not exclude_target,
            missing=missing,
            device=device,
            block_bytes=block_mb * 2**20,
            progress=advance,
            ray=ray,
            ray_block_rows=ray_block_rows,
        )
    return run.finish(
        result,
        command="rote tabular audit",
        options=options,
        quiet=quiet,
        inputs={"train": train, "synthetic": synthetic, "holdout": holdout, "schema": schema},
        **audit_outputs(result, top=top),
    )


@app.command("schema")
def tabular_schema(
    data: Path = typer.Option(..., "--data", help="Table (CSV or Parquet) to infer column types from."),
    out: Path = typer.Option(..., "--out", help="Schema JSON to write."),
    target: Optional[str] = typer.Option(None, "--target", help="Label column."),
    dataset_preset: Optional[str] = typer.Option(None, "--dataset-preset", help="Start from a paper dataset's types."),
    numeric: Optional[list[str]] = typer.Option(None, "--numeric", help="Force columns numeric."),
    categorical: Optional[list[str]] = typer.Option(None, "--categorical", help="Force columns categorical."),
    force: bool = typer.Option(False, "--force", help="Replace an existing schema file."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing."),
) -> None:
    """Infer a table's column types (numeric, categorical, target) and save them as JSON for --schema."""
    if out.exists() and not force:
        raise ConfigError(f"--out {out}: exists; choose another path or pass --force")
    if out.resolve() == data.resolve():
        raise ConfigError(f"--out {out}: is the input table; rote never overwrites inputs")
    _, sch = _resolve_schema(
        data,
        schema_path=None,
        preset=dataset_preset,
        target=target,
        numeric=_split(numeric),
        categorical=_split(categorical),
    )
    sch.save(out)
    if quiet:
        return
    print(f"numeric ({len(sch.numeric)}): {', '.join(sch.numeric) or '-'}")
    print(f"categorical ({len(sch.categorical)}): {', '.join(sch.categorical) or '-'}")
    print(f"target: {sch.target or '-'}")
    print(f"schema: {out}")


def _training_table(
    train: Optional[Path],
    dataset: Optional[str],
    *,
    schema_path: Optional[Path],
    preset: Optional[str],
    target: Optional[str],
    numeric: list[str],
    categorical: list[str],
):
    """(table, schema, label for config) from --train FILE (with its schema options) or --dataset NAME."""
    from rote.data import dataset_schema, load_dataset

    if (train is None) == (dataset is None):
        raise ConfigError(
            "give the training table with exactly one of --train FILE or --dataset NAME "
            "(shipped datasets: `rote datasets list`)"
        )
    if dataset is not None:
        return load_dataset(dataset, "train"), dataset_schema(dataset), f"{dataset}:train"
    frame, sch = _resolve_schema(
        train, schema_path=schema_path, preset=preset, target=target, numeric=numeric, categorical=categorical
    )
    return frame, sch, str(train)


_SCHEMA_HELP = {
    "target": "Label column.",
    "schema": "Column types from a schema JSON (see `rote tabular schema`).",
    "preset": "Column types of a paper dataset (rote datasets list).",
    "numeric": "Force columns numeric (comma-separated or repeated).",
    "categorical": "Force columns categorical.",
}


@app.command("train")
def tabular_train(
    out: Path = typer.Option(..., "--out", help="Run folder: model.pt, synthetic.parquet, history, audit, report."),
    train: Optional[Path] = typer.Option(None, "--train", help="Training table (CSV or Parquet)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Or a shipped dataset (e.g. adult)."),
    generator: str = typer.Option("tabddpm", "--generator", help="tabddpm, tabsyn or ijf."),
    preset: str = typer.Option("small", "--preset", help="small (CPU) or paper."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default: the preset's)."),
    timesteps: Optional[int] = typer.Option(
        None,
        "--timesteps",
        help="Diffusion steps T (default: the preset's, 1000 as in the paper; fewer samples faster).",
    ),
    augmentation: str = typer.Option(
        "none", "--augmentation", help="Train on an augmented table: none, tabcutmix, tabcutmixplus, mixup, smote, ijf."
    ),
    aug_ratio: float = typer.Option(0.3, "--aug-ratio", help="New rows per training row."),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="TabCutMix(Plus) mask: paper (Bernoulli; default) or code (exactly floor(lambda F))."
    ),
    num_nan_policy: str = typer.Option(
        "error", "--num-nan-policy", help="Missing numeric cells: error, or mean (TabDDPM's num_nan_policy)."
    ),
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
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """Train a tabular generator (optionally on an augmented table), sample it and audit the samples.
    Checkpoints go to OUT/checkpoints/; re-running an interrupted command resumes from the newest one."""
    from rote.core.runs import RunFolder, seed_everything
    from rote.tabular.pipeline import (
        AUGMENTATIONS,
        GENERATORS,
        augment_table,
        check_choice,
        impute_numeric,
        make_generator,
        sample_and_audit,
        train_generator,
    )
    from rote.tabular.report import audit_outputs

    check_choice("generator", generator, GENERATORS)
    check_choice("augmentation", augmentation, AUGMENTATIONS)
    if every < 0:
        raise ConfigError(f"--every must be 0 (no checks) or more, got {every}")
    if seed < 0:
        raise ConfigError(f"`--seed` must be a whole number >= 0, got {seed}")
    seed_everything(seed)
    run = RunFolder(out, force=force, inputs=[p for p in (train, schema) if p is not None])
    table, sch, source = _training_table(
        train,
        dataset,
        schema_path=schema,
        preset=dataset_preset,
        target=target,
        numeric=_split(numeric),
        categorical=_split(categorical),
    )
    table, imputed = impute_numeric(table, sch, num_nan_policy)
    fit_table, _ = augment_table(table, sch, augmentation, ratio=aug_ratio, seed=seed, mode=mode)
    gen = make_generator(
        generator,
        preset=preset,
        epochs=epochs,
        seed=seed,
        device=device,
        options={"num_timesteps": timesteps} if timesteps is not None else None,
    )
    trained = train_generator(
        table,
        sch,
        gen,
        fit_table=fit_table,
        every=every,
        hook_samples=hook_samples,
        distance=distance,
        seed=seed,
        checkpoint_dir=run.path / "checkpoints",
        checkpoint_every=checkpoint_every,
        progress=not quiet,
    )
    n = len(table) if n_synthetic is None else n_synthetic
    synthetic, result = sample_and_audit(trained, table, sch, n, seed=seed, distance=distance, device=device)
    if generator != "ijf":
        gen.save(run.file("model.pt"))
    options = {
        "train": source,
        "generator": generator,
        "preset": preset,
        "epochs": epochs,
        "timesteps": timesteps,
        "augmentation": augmentation,
        "aug_ratio": aug_ratio,
        "mode": mode,
        "num_nan_policy": num_nan_policy,
        "every": every,
        "hook_samples": hook_samples,
        "checkpoint_every": checkpoint_every,
        "n_synthetic": n,
        "distance": distance,
        "schema": sch.to_dict(),
        "device": device,
    }
    history = trained.history
    curve = [
        {"epoch": int(e), "memorization_ratio": float(m)}
        for e, m in zip(trained.curve["epoch"], trained.curve["memorization_ratio"])
    ]
    extra = {
        "generator": generator,
        "n_training_rows": len(fit_table),
        "epochs_trained": len(history),
        "final_loss": float(history["loss"].iloc[-1]) if len(history) and "loss" in history else None,
        "memorization_curve": curve,
        "imputed_numeric": imputed,
    }
    if augmentation != "none":
        from rote.tabular.augment import identical_share

        extra["identical_share"] = identical_share(table, fit_table.iloc[len(table) :])
    tables = {"synthetic": synthetic}
    if generator != "ijf":
        tables["history"] = history
    summary = f"trained {generator} on {len(fit_table):,} rows ({augmentation}); {n:,} synthetic rows\n"
    if "identical_share" in extra:
        summary += f"augmented rows identical to a training row: {extra['identical_share']:.2%}\n"
    summary += result.summary()
    return run.finish(
        result,
        command="rote tabular train",
        options=options,
        seed=seed,
        tables=tables,
        inputs={"train": train, "schema": schema},
        extra=extra,
        summary=summary,
        quiet=quiet,
        **audit_outputs(result, history=history if generator != "ijf" else None, curve=trained.curve),
    )


@app.command("augment")
def tabular_augment(
    out: Path = typer.Option(..., "--out", help="Run folder: augmented.parquet, augmented.csv, results.json, report."),
    train: Optional[Path] = typer.Option(None, "--train", help="Table to augment (CSV or Parquet)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Or a shipped dataset (e.g. adult)."),
    method: str = typer.Option("tabcutmix", "--method", help="tabcutmix, tabcutmixplus, mixup, smote or ijf."),
    ratio: float = typer.Option(0.3, "--ratio", help="New rows per original row (paper: 0.3)."),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="TabCutMix(Plus) mask: paper (Bernoulli) or code (exactly floor(lambda F) features)."
    ),
    cut: Optional[float] = typer.Option(None, "--cut", help="TabCutMixPlus clustering cut on 1 - association."),
    ood: bool = typer.Option(True, "--ood/--no-ood", help="Score the new rows' out-of-distribution rate."),
    target: Optional[str] = typer.Option(None, "--target", help=_SCHEMA_HELP["target"]),
    schema: Optional[Path] = typer.Option(None, "--schema", help=_SCHEMA_HELP["schema"]),
    dataset_preset: Optional[str] = typer.Option(None, "--dataset-preset", help=_SCHEMA_HELP["preset"]),
    numeric: Optional[list[str]] = typer.Option(None, "--numeric", help=_SCHEMA_HELP["numeric"]),
    categorical: Optional[list[str]] = typer.Option(None, "--categorical", help=_SCHEMA_HELP["categorical"]),
    seed: int = typer.Option(0, "--seed", help="Seed of the augmenter and the OOD detector."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """Augment a training table (originals first, then the new rows) and measure how out-of-distribution the new
    rows are; TabCutMixPlus also writes its column association matrix and clusters."""
    from rote.core.runs import RunFolder
    from rote.tabular.augment import AUGMENTERS, identical_share, ood_rate
    from rote.tabular.report import augment_plots, augment_report

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
    table, sch, source = _training_table(
        train,
        dataset,
        schema_path=schema,
        preset=dataset_preset,
        target=target,
        numeric=_split(numeric),
        categorical=_split(categorical),
    )
    aug = AUGMENTERS[method](**kwargs).fit(table, sch)
    both = aug.augment(table)
    new = both.iloc[len(table) :]
    results: dict = {"method": method, "params": kwargs, "n_original": len(table), "n_new": len(new)}
    o = None
    results["identical_share"] = identical_share(table, new)
    if ood and len(new):
        o = ood_rate(table, new, sch, seed=seed)
        results.update(
            ood_rate=o.ood_rate,
            ood_detector_accuracy=o.detector_accuracy,
            ood_real_rate=o.real_flag_rate,
            ood_excess=o.ood_rate - o.real_flag_rate,
        )
    tables = {"augmented": both}
    if hasattr(aug, "clusters_"):
        results["clusters"] = aug.clusters_
        tables["association"] = aug.association_.reset_index(names="column")
    plots = augment_plots(aug)  # TabCutMixPlus: association heat map and dendrogram (PNG files and in the report)
    lines = [f"{method}: {len(table):,} original rows + {len(new):,} new rows"]
    if len(new):
        lines.append(f"new rows identical to a training row: {results['identical_share']:.2%}")
    if "ood_rate" in results:
        lines.append(
            f"OOD rate of the new rows: {results['ood_rate']:.2%}; the detector flags {results['ood_real_rate']:.2%} "
            f"of real held-out rows, so the excess is {results['ood_excess']:+.2%} (detector accuracy "
            f"{results['ood_detector_accuracy']:.2%})"
        )
    if "clusters" in results:
        lines.append("clusters: " + "; ".join(", ".join(c) for c in results["clusters"]))
    lines.append(f"augmented table: {run.path / 'augmented.csv'}")
    return run.finish(
        results,
        command="rote tabular augment",
        options={"train": source, "schema": sch.to_dict(), **results},
        inputs={"train": train, "schema": schema},
        seed=seed,
        tables=tables,
        files={"augmented.csv": both.to_csv(index=False)},
        plots=plots,
        summary="\n".join(lines),
        quiet=quiet,
        report=lambda config: augment_report(
            aug, plots=plots, ood={method: o} if o is not None else None, config=config, title=f"Augmentation: {method}"
        ),
    )


@app.command("quality")
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
    one_class: bool = typer.Option(
        True, "--one-class/--no-one-class", help="Also the one-class (embedded) alpha-precision / beta-recall."
    ),
    oc_epochs: int = typer.Option(1000, "--oc-epochs", help="Training steps of the one-class embedding network."),
    authenticity: str = typer.Option(
        "alaa", "--authenticity", help="alaa (Alaa et al.'s definition) or synthcity (its index mix-up, for parity)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """Quality of a synthetic table: shape, trend, alpha-precision, beta-recall (naive and one-class), C2ST, MLE
    and DCR share; per-column marginals and trend heat maps in the report."""
    from rote.core.runs import RunFolder
    from rote.data import load_dataset
    from rote.tabular.report import quality_html, quality_plots
    from rote.tabular.quality import quality_report

    if oc_epochs < 1:
        raise ConfigError(f"`--oc-epochs` must be at least 1 (got {oc_epochs}); or pass --no-one-class")
    if authenticity not in ("alaa", "synthcity"):
        raise ConfigError(f"`--authenticity` must be alaa or synthcity (got {authenticity!r})")
    run = RunFolder(out, force=force, inputs=[p for p in (train, synthetic, test, schema) if p is not None])
    table, sch, source = _training_table(
        train,
        dataset,
        schema_path=schema,
        preset=dataset_preset,
        target=target,
        numeric=_split(numeric),
        categorical=_split(categorical),
    )
    synth = _load_like_train(synthetic, dataset_preset)
    if test is not None:
        real_test = _load_like_train(test, dataset_preset)
    elif dataset is not None:
        real_test = load_dataset(dataset, "test")
    else:
        real_test = None
    result = quality_report(
        table,
        synth,
        sch,
        real_test=real_test,
        seed=seed,
        one_class=one_class,
        oc_epochs=oc_epochs,
        authenticity=authenticity,
    )
    plots = quality_plots(result, detail=True)
    return run.finish(
        result,
        command="rote tabular quality",
        seed=seed,
        quiet=quiet,
        options={
            "train": source,
            "synthetic": str(synthetic),
            "test": None if test is None else str(test),
            "schema": sch.to_dict(),
        },
        inputs={"train": train, "synthetic": synthetic, "test": test, "schema": schema},
        plots=plots,
        report=lambda config: quality_html(result, config=config, plots=plots),
    )


@app.command("experiment")
def tabular_experiment(
    out: Path = typer.Option(..., "--out", help="Run folder (grid points under OUT/grid/points/<id>/)."),
    grid: Optional[Path] = typer.Option(
        None,
        "--grid",
        help="Grid file (.yaml/.json): {axes: {...}, fixed: {...}}; "
        "options given on the command line are added on top.",
    ),
    dataset: Optional[list[str]] = typer.Option(None, "--dataset", help="Shipped dataset name(s) or table file(s)."),
    generator: Optional[list[str]] = typer.Option(None, "--generator", help="tabddpm, tabsyn, ijf (several: an axis)."),
    augmentation: Optional[list[str]] = typer.Option(
        None, "--augmentation", help="none, tabcutmix, tabcutmixplus, mixup, smote, ijf."
    ),
    epochs: Optional[list[str]] = typer.Option(None, "--epochs", help="Training epochs (several: an axis)."),
    seeds: Optional[list[str]] = typer.Option(None, "--seeds", help="Seeds, e.g. 0,1,2 (mean ± std over them)."),
    train_fraction: Optional[list[str]] = typer.Option(
        None, "--train-fraction", help="Share of training rows, e.g. 0.1,0.5,1 (size sweep)."
    ),
    feature_fraction: Optional[list[str]] = typer.Option(
        None, "--feature-fraction", help="Share of feature columns kept, e.g. 0.3,0.7,1."
    ),
    rows: Optional[int] = typer.Option(None, "--rows", help="Cap on training rows (a fixed random subset)."),
    test_rows: Optional[int] = typer.Option(None, "--test-rows", help="Cap on test rows used by MLE and DCR."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Generator preset: small (default) or paper."),
    aug_ratio: Optional[float] = typer.Option(None, "--aug-ratio", help="New rows per training row (paper: 0.3)."),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="TabCutMix(Plus) mask: paper or code (default: code with --preset paper, else paper)."
    ),
    every: Optional[int] = typer.Option(None, "--every", help="Epochs between memorization checks (the curve)."),
    hook_samples: Optional[int] = typer.Option(None, "--hook-samples", help="Rows sampled per check (n_train)."),
    distance: Optional[str] = typer.Option(None, "--distance", help="Audit distance: tabcutmix (default), gower, l2."),
    target: Optional[str] = typer.Option(None, "--target", help="Label column of a dataset given as a file."),
    test: Optional[str] = typer.Option(None, "--test", help="Real test table of a dataset given as a file."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
    no_quality: bool = typer.Option(False, "--no-quality", help="Skip the quality metrics (faster)."),
    no_ood: bool = typer.Option(False, "--no-ood", help="Skip the OOD rate of augmented rows."),
    workers: int = typer.Option(1, "--workers", help="Grid points run in parallel (local processes)."),
    ray: Optional[str] = typer.Option(
        None, "--ray", help="'local' (start Ray here) or a cluster address: points run as Ray tasks (needs rote[ray])."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace the aggregated results of a finished run (finished points are reused either way).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """Run the paper's grid: dataset x generator x augmentation x epochs x seeds (+ size and feature sweeps);
    write the paper-style table, memorization-vs-epoch curves, plots and report.html. Re-running the same
    command resumes an interrupted grid without recomputing finished points."""
    from rote.core.runs import RunFolder
    from rote.sweep import Grid, axis_values
    from rote.tabular.experiment import experiment_grid, experiment_outputs, run_experiment

    base_axes: dict = {}
    base_fixed: dict = {}
    if grid is not None:
        g = Grid.load(grid)
        base_axes, base_fixed = dict(g.axes), dict(g.fixed)
    cli_axes = {
        "dataset": _split(dataset),
        "generator": _split(generator),
        "augmentation": _split(augmentation),
        "epochs": axis_values(epochs, int, "epochs"),
        "seed": axis_values(seeds, int, "seeds"),
        "train_fraction": axis_values(train_fraction, float, "train-fraction"),
        "feature_fraction": axis_values(feature_fraction, float, "feature-fraction"),
    }
    for name, values in cli_axes.items():
        if values:
            base_fixed.pop(name, None)
            if len(values) == 1:
                base_axes.pop(name, None)
                base_fixed[name] = values[0]
            else:
                base_axes[name] = values
    cli_fixed = {
        "rows": rows,
        "test_rows": test_rows,
        "preset": preset,
        "aug_ratio": aug_ratio,
        "mode": mode,
        "every": every,
        "hook_samples": hook_samples,
        "distance": distance,
        "target": target,
        "test": test,
        "device": device,
    }
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
    options = {"grid": exp_grid.to_dict(), "workers": workers, "ray": ray}
    run.write_config("rote tabular experiment", options, inputs={"grid": grid})  # before the grid: a rerun resumes
    result = run_experiment(exp_grid, out, workers=workers, ray=ray, quiet=quiet)
    return run.finish(
        result,
        command="rote tabular experiment",
        options=options,
        inputs={"grid": grid},
        quiet=quiet,
        status=result.status,
        reason=result.status_reason,
        **experiment_outputs(result),
    )
