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
tabular_app = typer.Typer(help="Tabular memorization: audit synthetic tables for copied training rows.",
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


# ---------------------------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder."),
    n_synthetic: Optional[int] = typer.Option(None, "--n-synthetic", help="Synthetic rows (default: as many as training rows)."),
    copies: int = typer.Option(300, "--copies", help="Exact copies of training rows planted in the synthetic table."),
    near_copies: int = typer.Option(300, "--near-copies", help="Near copies planted (one numeric value moved by 1% of its std)."),
    distance: str = typer.Option("tabcutmix", "--distance", help="tabcutmix, gower or l2."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generator and of the planted copies."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """The main job: audit a synthetic copy of the embedded UCI Adult data with planted copies (ground truth)."""
    from rote.demo import run_demo

    run_demo(out=out, n_synthetic=n_synthetic, copies=copies, near_copies=near_copies, distance=distance, seed=seed,
             device=device, force=force, quiet=quiet)


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: RoteError -> one line on stderr and exit code 2."""
    try:
        app(args=argv, prog_name="rote")
    except RoteError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":  # pragma: no cover
    main()
