"""The `rote` command line: mounts each domain's typer app and holds the top-level verbs (`demo`, `datasets`).

A domain's commands live in `rote/<domain>/cli.py`; adding a domain is one `add_typer` line here. Every command
parses options, calls the library and ends with `RunFolder.finish`. The exit contract (0 success, 2 bad input with
one line on stderr, 1 internal error) is kept by `rote.core.cli.run_app`, the only error path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import rote
from rote.core.cli import run_app
from rote.fairness.cli import app as fairness_app
from rote.adversarial.cli import app as adversarial_app
from rote.icl.cli import app as icl_app
from rote.llm.cli import app as llm_app
from rote.sharpness.cli import app as sharpness_app
from rote.spurious.cli import app as spurious_app
from rote.ssl.cli import app as ssl_app
from rote.tabular.cli import app as tabular_app

app = typer.Typer(
    name="rote",
    help="Measure, detect, localize and mitigate memorization in machine-learning models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(
    help="Datasets shipped with rote and column-type presets for the papers' datasets.", no_args_is_help=True
)
app.add_typer(datasets_app, name="datasets")
# One line per domain: its typer app from rote/<domain>/cli.py.
app.add_typer(tabular_app, name="tabular")
app.add_typer(llm_app, name="llm")
app.add_typer(fairness_app, name="fairness")
app.add_typer(sharpness_app, name="sharpness")
app.add_typer(spurious_app, name="spurious")
app.add_typer(icl_app, name="icl")
app.add_typer(ssl_app, name="ssl")
app.add_typer(adversarial_app, name="adversarial")


def _version(value: bool) -> None:
    if value:
        print(f"rote {rote.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """rote: measure, detect, localize and mitigate memorization in machine-learning models."""


# ---------------------------------------------------------------------------------------------- datasets


@datasets_app.command("list")
def datasets_list(
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing (exit 0 when the catalog can be read)."),
) -> None:
    """Every dataset rote knows (tables, images, text) with size, licence and whether it is present here, then the
    column-type presets for the papers' own tables."""
    from rich.console import Console
    from rich.table import Table

    from rote.data import DATASET_PRESETS, catalog

    entries = catalog()
    if quiet:
        return
    console = Console(width=160)
    table = Table(title="Datasets (present: loads offline on this machine)")
    for col in ("name", "kind", "samples", "shape", "license", "present", "load with / install"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(
            e.name,
            e.kind,
            ", ".join(f"{k} {v:,}" for k, v in e.samples.items()),
            e.shape,
            e.license,
            "yes" if e.present else "no",
            e.loader if e.present else e.install,
        )
    console.print(table)
    presets = Table(title="Column-type presets for your own files (--dataset-preset NAME)")
    for col in ("name", "task", "numeric", "categorical", "target", "dropped"):
        presets.add_column(col)
    for p in DATASET_PRESETS.values():
        presets.add_row(
            p.name, p.task, str(len(p.numeric)), str(len(p.categorical)), p.target, ", ".join(p.drop) or "-"
        )
    console.print(presets)


# ---------------------------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder."),
    rows: int = typer.Option(5_000, "--rows", help="Adult training rows used (a seeded random subset of 32,561)."),
    epochs: int = typer.Option(200, "--epochs", help="TabDDPM training epochs (each model)."),
    every: int = typer.Option(50, "--every", help="Epochs between memorization checks during training."),
    hook_samples: int = typer.Option(500, "--hook-samples", help="Rows sampled per memorization check."),
    timesteps: Optional[int] = typer.Option(
        None, "--timesteps", help="Diffusion steps T (default 1000, as in the paper; fewer samples faster)."
    ),
    copies: int = typer.Option(100, "--copies", help="Exact copies of training rows planted (ground-truth section)."),
    near_copies: int = typer.Option(100, "--near-copies", help="Near copies planted (one value moved 1% of its std)."),
    distance: str = typer.Option("tabcutmix", "--distance", help="tabcutmix, gower or l2."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subset, the models, TabCutMix and the planted copies."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    mode: str = typer.Option(
        "paper", "--mode", help="TabCutMix mask: paper (Bernoulli) or code (exactly floor(lambda F) features)."
    ),
) -> int:
    """The main job: train a small TabDDPM on UCI Adult with and without TabCutMix, audit both for memorized
    rows, score their quality, and write one report comparing them. One seed: the difference it shows is a
    single draw (docs/tabular.md has the multi-seed experiment)."""
    from rote.tabular.demo import run_demo

    return run_demo(
        out=out,
        rows=rows,
        epochs=epochs,
        every=every,
        hook_samples=hook_samples,
        timesteps=timesteps,
        copies=copies,
        near_copies=near_copies,
        distance=distance,
        seed=seed,
        device=device,
        force=force,
        quiet=quiet,
        return_status=True,
        mode=mode,
    )


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: runs the command under the exit contract and exits with its status."""
    status = run_app(app, argv)
    if status:
        raise SystemExit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
