"""`rote sharpness ...` commands: memorization in diffusion models from the curvature of the learned log density
(Jeon, Kim & No, ICML 2025).

    rote sharpness toy --out DIR        the paper's 2-D 5:95 Gaussian mixture: train, generate, detect
    rote sharpness mnist --out DIR      digit 3 generalized, one 9 duplicated 100 times: train, generate, detect
                                        (--dataset fashion-mnist: 3,000 trousers, one ankle boot x 100, the
                                        paper's counts)
    rote sharpness tabular --out DIR    a (class-conditional) TabDDPM on Adult: train, generate, audit, detect
    rote sharpness score --model CKPT --samples N --out DIR     measure a trained model's generations
    rote sharpness eval --scores DIR --out DIR                  detection from a scores table

Each writes config.json, scores.parquet (one row per generation), spectra.parquet, detection.parquet, roc.png,
spectra.png, report.html and results.json (`detection`: statistic -> {auc, tpr_at_1pct_fpr}; `paper_statistic`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from rote.core.errors import ConfigError

app = typer.Typer(
    help="Memorization in diffusion models from the sharpness of the learned log density (Jeon, Kim & No, ICML 2025).",
    no_args_is_help=True,
)

_OUT = typer.Option(..., "--out", help="Run folder (scores.parquet, roc.png, spectra.png, report.html, ...).")
_SEED = typer.Option(0, "--seed", help="Seed of the data, weights, training and sampling.")
_DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
_FORCE = typer.Option(False, "--force", help="Replace the results of a finished run in --out.")
_QUIET = typer.Option(False, "--quiet", help="No progress output.")


def _finish(
    run: Any, result: Any, command: str, options: dict, inputs: dict, title: str, quiet: bool, seed: int | None = None
) -> int:
    from rote.sharpness.report import sharpness_outputs

    return run.finish(
        result,
        command=command,
        options=options,
        inputs=inputs,
        seed=seed,
        quiet=quiet,
        **sharpness_outputs(result, title=title, subtitle=result.setup),
    )


def _threads(device: str, most: int = 4) -> None:
    """Check the device; cap torch's CPU threads (the toy's tiny matrices run fastest on one thread)."""
    import torch

    from rote.core.device import resolve_device

    resolve_device(device)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), most)))


@app.command("toy")
def toy_cmd(
    out: Path = _OUT,
    epochs: int = typer.Option(150, "--epochs", help="Training epochs (3,000 points, batch 256)."),
    generations: int = typer.Option(2000, "--generations", help="Samples generated and scored."),
    second_order_weight: float = typer.Option(
        0.5, "--second-order-weight", help="Weight of the second-order DSM loss (paper: 0.5; 0 = plain DSM)."
    ),
    steps: int = typer.Option(100, "--steps", help="DDIM sampling steps."),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """The paper's 2-D toy: a 5:95 Gaussian mixture whose small mode is memorized; trains a DDPM (seeded, a few
    minutes on 2 CPU cores), generates, labels by the nearest-neighbour ratio and scores every statistic."""
    from rote.core.runs import RunFolder
    from rote.sharpness.experiment import run_toy

    if epochs < 1:
        raise ConfigError(f"`epochs` must be >= 1, got {epochs}")
    if generations < 2:
        raise ConfigError(f"`generations` must be >= 2, got {generations}")
    run = RunFolder(out, force=force)
    _threads(device, most=1)
    result, _ = run_toy(
        seed=seed,
        device=device,
        checkpoint=str(run.file("model.pt")),
        progress=not quiet,
        epochs=epochs,
        n_generations=generations,
        second_order_weight=second_order_weight,
        n_steps=steps,
    )
    options = dict(
        epochs=epochs,
        generations=generations,
        second_order_weight=second_order_weight,
        steps=steps,
        seed=seed,
        device=device,
    )
    return _finish(run, result, "rote sharpness toy", options, {}, "Sharpness: 2-D Gaussian-mixture toy", quiet, seed)


@app.command("mnist")
def mnist_cmd(
    out: Path = _OUT,
    dataset: str = typer.Option(
        "mnist",
        "--dataset",
        help="mnist (every 3 of MNIST-5k, one 9) or fashion-mnist (the paper's counts: 3,000 trousers, one ankle "
        "boot; Debian's dataset-fashion-mnist).",
    ),
    epochs: Optional[int] = typer.Option(
        None,
        "--epochs",
        help="Training epochs, batch 64 (default: 1500 for mnist, ~600 images; 600 for fashion-mnist).",
    ),
    net: str = typer.Option(
        "conv", "--net", help="Denoiser: conv (default; dilated conv net, the paper has a U-Net) or mlp (4x faster)."
    ),
    generations_per_class: int = typer.Option(200, "--generations-per-class", help="Samples per class (3 and 9)."),
    guidance: float = typer.Option(5.0, "--guidance", help="Classifier-free guidance scale (paper: 5)."),
    duplicates: int = typer.Option(100, "--duplicates", help="Copies of the one training 9 (paper: 100)."),
    side: int = typer.Option(14, "--side", help="Image side: 28 (paper), 14 (default, CPU) or 7."),
    steps: int = typer.Option(50, "--steps", help="DDIM sampling steps."),
    second_order_weight: float = typer.Option(
        0.0,
        "--second-order-weight",
        help="Weight of the second-order DSM loss, one Gaussian probe per sample (paper: 0.5; 0 = plain DSM).",
    ),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """The MNIST setup: every "3" of MNIST-5k (generalized) and one "9" duplicated (memorized), or with --dataset
    fashion-mnist 3,000 trousers and one ankle boot; a class-conditional DDPM (conv denoiser, or --net mlp) with
    classifier-free guidance; detection with one and with four generations per class."""
    from rote.core.runs import RunFolder
    from rote.sharpness.experiment import FASHION_OVERRIDES, MNIST_PRESET, run_mnist

    if dataset not in ("mnist", "fashion-mnist"):
        raise ConfigError(f"`dataset` must be mnist or fashion-mnist, got {dataset!r}")
    preset = {**MNIST_PRESET, **(FASHION_OVERRIDES if dataset == "fashion-mnist" else {})}
    epochs = preset["epochs"] if epochs is None else epochs
    if epochs < 1:
        raise ConfigError(f"`epochs` must be >= 1, got {epochs}")
    if generations_per_class < 1:
        raise ConfigError(f"`generations_per_class` must be >= 1, got {generations_per_class}")
    if guidance < 0:
        raise ConfigError(f"`guidance` must be >= 0, got {guidance}")
    if net not in ("mlp", "conv"):
        raise ConfigError(f"`net` must be mlp or conv, got {net!r}")
    if second_order_weight < 0:
        raise ConfigError(f"`second_order_weight` must be >= 0, got {second_order_weight}")
    run = RunFolder(out, force=force)
    _threads(device, most=1)
    result, _ = run_mnist(
        seed=seed,
        device=device,
        checkpoint=str(run.file("model.pt")),
        progress=not quiet,
        **{
            **(FASHION_OVERRIDES if dataset == "fashion-mnist" else {}),
            "epochs": epochs,
            "generations_per_class": generations_per_class,
            "guidance": guidance,
            "duplicates": duplicates,
            "side": side,
            "n_steps": steps,
            "net": net,
            "second_order_weight": second_order_weight,
        },
    )
    options = dict(
        dataset=dataset,
        net=net,
        epochs=epochs,
        generations_per_class=generations_per_class,
        guidance=guidance,
        duplicates=duplicates,
        side=side,
        steps=steps,
        second_order_weight=second_order_weight,
        seed=seed,
        device=device,
    )
    title = (
        "Sharpness: MNIST (one duplicated 9)"
        if dataset == "mnist"
        else "Sharpness: Fashion-MNIST (one duplicated boot)"
    )
    return _finish(run, result, "rote sharpness mnist", options, {}, title, quiet, seed)


@app.command("tabular")
def tabular_cmd(
    out: Path = _OUT,
    dataset: str = typer.Option("adult", "--dataset", help="A shipped table (rote data list)."),
    rows: int = typer.Option(3000, "--rows", help="Training rows drawn (with the seed) from its training split."),
    epochs: int = typer.Option(200, "--epochs", help="TabDDPM training epochs (batch 256)."),
    timesteps: int = typer.Option(100, "--timesteps", help="Diffusion steps T."),
    samples: int = typer.Option(1000, "--samples", help="Synthetic rows generated and scored."),
    cond_column: str = typer.Option(
        "target",
        "--cond-column",
        help="Condition on this categorical column ('target': the dataset's; 'none': unconditional TabDDPM).",
    ),
    cond_dropout: float = typer.Option(0.1, "--cond-dropout", help="Label dropout in training (CFG style)."),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """A TabDDPM (class-conditional by default) on a shipped table: train, generate, label each synthetic row with
    the tabular audit (distance ratio < 1/3) and score every sharpness statistic, the paper's ||H_delta s_delta||^2
    at t = T - 1 included."""
    from rote.core.runs import RunFolder
    from rote.sharpness.tabular import run_tabular

    for name, value, low in (("rows", rows, 2), ("epochs", epochs, 1), ("timesteps", timesteps, 1)):
        if value < low:
            raise ConfigError(f"`{name}` must be >= {low}, got {value}")
    if samples < 2:
        raise ConfigError(f"`samples` must be >= 2, got {samples}")
    if not 0.0 <= cond_dropout < 1.0:
        raise ConfigError(f"`cond_dropout` must be in [0, 1), got {cond_dropout}")
    run = RunFolder(out, force=force)
    _threads(device, most=1)
    result, _ = run_tabular(
        seed=seed,
        device=device,
        cond_column=None if cond_column == "none" else cond_column,
        checkpoint=str(run.file("model.pt")),
        progress=not quiet,
        dataset=dataset,
        rows=rows,
        epochs=epochs,
        num_timesteps=timesteps,
        samples=samples,
        cond_dropout=cond_dropout,
    )
    options = dict(
        dataset=dataset,
        rows=rows,
        epochs=epochs,
        timesteps=timesteps,
        samples=samples,
        cond_column=cond_column,
        cond_dropout=cond_dropout,
        seed=seed,
        device=device,
    )
    title = f"Sharpness: TabDDPM on {dataset}"
    return _finish(run, result, "rote sharpness tabular", options, {}, title, quiet, seed)


def load_model(path: Path, device: str = "cpu") -> tuple[str, Any, dict]:
    """("ddpm", DDPM, extra) or ("tabddpm", TabDDPM, {}) from a checkpoint; ConfigError for any other kind."""
    from rote.sharpness.diffusion import KIND, DDPM

    try:
        model, extra = DDPM.load(path, device=device)
        return "ddpm", model, extra
    except ConfigError as exc:
        if "'rote.tabular.TabDDPM'" not in str(exc):
            if "is a '" in str(exc):
                kind = str(exc).split("is a '", 1)[1].split("'", 1)[0]
                raise ConfigError(
                    f"`model` {path}: is a '{kind}' checkpoint; pass a '{KIND}' checkpoint (written by rote "
                    "sharpness toy/mnist) or a rote TabDDPM model file (rote tabular train)"
                ) from None
            raise ConfigError(f"`model` {exc}") from None
    from rote.tabular.models import TabDDPM

    return "tabddpm", TabDDPM.load(path, device=device), {}


@app.command("score")
def score_cmd(
    model: Path = typer.Option(
        ...,
        "--model",
        help="Checkpoint: model.pt of `rote sharpness toy/mnist`, or a TabDDPM model file of `rote tabular train`.",
    ),
    samples: int = typer.Option(..., "--samples", help="Generations to make and measure."),
    out: Path = _OUT,
    train: Optional[Path] = typer.Option(
        None,
        "--train",
        help="Training table (CSV/Parquet) of a TabDDPM, for "
        "the audit's labels (DDPM checkpoints carry their training data).",
    ),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="CFG scale (default: the checkpoint's)."),
    steps: int = typer.Option(50, "--steps", help="DDIM sampling steps (DDPM checkpoints)."),
    spectrum: str = typer.Option("auto", "--spectrum", help="auto, full, arnoldi or none."),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Generate --samples from a trained model, measure every sharpness statistic at t = T - 1 and t = 1, label
    each generation by the nearest-neighbour ratio, and score detection."""
    import numpy as np

    from rote.core.runs import RunFolder
    from rote.sharpness.experiment import score_generations

    if samples < 2:
        raise ConfigError(f"`samples` must be >= 2, got {samples}")
    if spectrum not in ("auto", "full", "arnoldi", "none"):
        raise ConfigError(f"`spectrum` must be auto, full, arnoldi or none, got {spectrum!r}")
    run = RunFolder(out, force=force, inputs=[model] + ([train] if train else []))
    _threads(device)
    kind, m, extra = load_model(model, device)
    if kind == "ddpm":
        if "train" not in extra:
            raise ConfigError(f"`model` {model}: the checkpoint carries no training data for the labels")
        g = float(extra.get("guidance", 1.0)) if guidance is None else guidance
        # images are sampled with x0 clipped to their range, as `rote sharpness mnist` did (older MNIST
        # checkpoints do not record it)
        clip = extra.get("clip", 1.0 if extra.get("setup") == "mnist" else None)
        result = score_generations(
            m,
            np.asarray(extra["train"]),
            n=samples,
            guidance=g,
            n_steps=steps,
            spectrum_method=spectrum,
            seed=seed,
            setup=str(extra.get("setup", "ddpm")),
            clip=None if clip is None else float(clip),
        )
    else:
        from rote.data import load_table
        from rote.sharpness.tabular import score_tabddpm

        if train is None:
            raise ConfigError("`train` is needed for a TabDDPM checkpoint (the audit labels come from it)")
        result, synthetic = score_tabddpm(m, load_table(train), n=samples, seed=seed)
    options = dict(
        model=str(model),
        samples=samples,
        train=str(train) if train else None,
        guidance=guidance,
        steps=steps,
        spectrum=spectrum,
        seed=seed,
        device=device,
    )
    return _finish(
        run,
        result,
        "rote sharpness score",
        options,
        {"model": model, "train": train},
        "Sharpness scores of a model's generations",
        quiet,
        seed,
    )


@app.command("eval")
def eval_cmd(
    scores: Path = typer.Option(..., "--scores", help="scores.parquet (or the run folder holding it)."),
    out: Path = _OUT,
    paper_statistic: Optional[str] = typer.Option(None, "--paper-statistic", help="Column to headline."),
    group_size: int = typer.Option(4, "--group-size", help="Generations averaged per class prompt (n)."),
    label: str = typer.Option("memorized", "--label", help="Boolean ground-truth column."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap intervals."),
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Detection (AUC, TPR at 1% FPR, ROC and spectra plots) from a scores table of `score`, `toy` or `mnist`."""
    import pandas as pd

    from rote.core.runs import RunFolder
    from rote.data import load_table
    from rote.sharpness.experiment import evaluate

    if group_size < 1:
        raise ConfigError(f"`group_size` must be >= 1, got {group_size}")
    path = scores / "scores.parquet" if scores.is_dir() else scores
    if not path.is_file():
        raise ConfigError(f"`scores` {scores}: no such file (or folder with scores.parquet)")
    run = RunFolder(out, force=force, inputs=[path])
    frame = load_table(path)
    spectra_path = path.parent / "spectra.parquet"
    spectra = pd.read_parquet(spectra_path) if spectra_path.is_file() else None
    result = evaluate(frame, spectra, paper_statistic=paper_statistic, group_size=group_size, label=label, seed=seed)
    options = dict(scores=str(scores), paper_statistic=paper_statistic, group_size=group_size, label=label, seed=seed)
    return _finish(run, result, "rote sharpness eval", options, {"scores": path}, "Sharpness detection", quiet)


@app.command("grid")
def grid_cmd(
    out: Path = _OUT,
    setup: str = typer.Option("toy", "--setup", help="toy, mnist or tabular (class-conditional TabDDPM on Adult)."),
    seeds: list[str] = typer.Option(["0,1,2"], "--seeds", help="Seeds (an axis), e.g. 0,1,2,3,4."),
    second_order_weight: Optional[list[str]] = typer.Option(
        None, "--second-order-weight", help="Second-order DSM weights (an axis), e.g. 0,0.5; default the preset's."
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default: the setup's preset)."),
    generations: Optional[int] = typer.Option(
        None, "--generations", help="Toy, tabular: samples; MNIST: samples per class (default: the preset's)."
    ),
    steps: Optional[int] = typer.Option(None, "--steps", help="DDIM sampling steps (default: the preset's)."),
    dataset: str = typer.Option(
        "mnist", "--dataset", help="MNIST setup: mnist or fashion-mnist (the paper's counts, as `mnist --dataset`)."
    ),
    net: Optional[str] = typer.Option(None, "--net", help="MNIST setup: conv (the preset's denoiser) or mlp."),
    device: str = _DEVICE,
    workers: int = typer.Option(1, "--workers", help="Grid points run in parallel (local processes)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="'local' or a Ray cluster address: points as Ray tasks."),
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """The toy, MNIST or tabular setup over seeds (and second-order DSM weights) through rote.sweep: each point trains,
    generates and scores; the summary gives each statistic's mean AUC with a t-interval over seeds. Rerunning the
    same command resumes an interrupted grid without recomputing finished points."""
    from rote.core.runs import RunFolder
    from rote.sharpness.grid import run_sharpness_grid
    from rote.sharpness.report import grid_outputs
    from rote.sweep import axis_values

    if setup not in ("toy", "mnist", "tabular"):
        raise ConfigError(f"`setup` must be toy, mnist or tabular, got {setup!r}")
    if setup == "tabular" and steps is not None:
        raise ConfigError("`steps` (DDIM sampling steps) is not an option of the tabular setup (TabDDPM samples all T)")
    if workers < 1:
        raise ConfigError(f"`workers` must be at least 1, got {workers}")
    seed_list = axis_values(seeds, int, "seeds")
    weights = axis_values(second_order_weight, float, "second_order_weight") or None
    if dataset not in ("mnist", "fashion-mnist"):
        raise ConfigError(f"`dataset` must be mnist or fashion-mnist, got {dataset!r}")
    if dataset != "mnist" and setup != "mnist":
        raise ConfigError(f"`dataset` is an option of the mnist setup, not of {setup}; drop it or pass --setup mnist")
    if net is not None and net not in ("mlp", "conv"):
        raise ConfigError(f"`net` must be mlp or conv, got {net!r}")
    if net is not None and setup != "mnist":
        raise ConfigError(f"`net` is an option of the mnist setup, not of {setup}; drop it or pass --setup mnist")
    fixed: dict[str, Any] = {"device": device}
    if dataset == "fashion-mnist":
        from rote.sharpness.experiment import FASHION_OVERRIDES

        fixed.update(FASHION_OVERRIDES)
    for name, value, low in (("epochs", epochs, 1), ("steps", steps, 1), ("generations", generations, 1)):
        if value is not None and value < low:
            raise ConfigError(f"`{name}` must be >= {low}, got {value}")
    if epochs is not None:
        fixed["epochs"] = epochs
    if net is not None:
        fixed["net"] = net
    if steps is not None:
        fixed["n_steps"] = steps
    if generations is not None:
        fixed[{"toy": "n_generations", "mnist": "generations_per_class", "tabular": "samples"}[setup]] = generations
    from rote.core.device import resolve_device

    resolve_device(device)
    run = RunFolder(out, force=force)
    options = dict(
        setup=setup,
        dataset=dataset,
        net=net,
        seeds=seed_list,
        second_order_weight=weights,
        fixed=fixed,
        workers=workers,
        ray=ray,
    )
    run.write_config("rote sharpness grid", options)  # before the grid: an interrupted grid records how it started
    result, sweep = run_sharpness_grid(
        out, setup, seed_list, second_order_weights=weights, fixed=fixed, workers=workers, ray=ray, quiet=quiet
    )
    return run.finish(
        result,
        command="rote sharpness grid",
        options=options,
        quiet=quiet,
        sweeps=sweep,
        **grid_outputs(result, title=f"Sharpness over seeds: {setup}"),
    )
