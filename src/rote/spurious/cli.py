"""`rote spurious ...`: memorization-aware training (MAT) against spurious correlations (Bayat et al., ICLR 2025).

toy    the paper's linear toy (ERM with and without noise dimensions, MAT, GroupDRO) or the 1-D regression toy
demo   the image benchmark with a spurious colour: ERM, MAT and GroupDRO (oracle groups)
train  one method (erm, mat, gb-erm, groupdro) on one dataset, with every option

Each command parses its options, calls `rote.spurious` and ends with `RunFolder.finish`; seeds run as a
`rote.sweep` grid (in this process by default, worker processes with --workers, Ray with --ray ADDRESS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rote.core.errors import ConfigError

app = typer.Typer(
    help="Memorization-aware training against spurious correlations (MAT, Bayat et al. ICLR 2025): toys, an "
    "image benchmark, ERM / MAT / GroupDRO.",
    no_args_is_help=True,
)

_OUT = typer.Option(..., "--out", help="Run folder (config.json, results.json, *.parquet, plots, report.html).")
_FORCE = typer.Option(False, "--force", help="Replace the results of a finished run in --out.")
_QUIET = typer.Option(False, "--quiet", help="No progress bar and no summary.")
_DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
_SEEDS = typer.Option("0", "--seeds", help="Seeds, comma-separated: one run each, means and std over them.")
_WORKERS = typer.Option(0, "--workers", help="Worker processes for the seeds (0: in this process).")
_RAY = typer.Option(None, "--ray", help="Run the seeds as Ray tasks: 'local' or a cluster address.")
_TEMP = typer.Option(0.1, "--temperature", help="MAT temperature tau (> 0; the paper searches 0.001, 0.01, 0.1).")


def _ints(text: str, flag: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be whole numbers separated by commas, got {text!r}") from None
    if not vals:
        raise ConfigError(f"{flag} is empty; give at least one value")
    if any(v < 0 for v in vals) and flag == "--seeds":
        raise ConfigError(f"--seeds must be >= 0, got {text!r}")
    return vals


def _floats(text: Optional[str], flag: str) -> Optional[list[float]]:
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be numbers separated by commas, got {text!r}") from None


def _hidden(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "linear"):
        return []
    vals = _ints(text, "--hidden")
    if any(v < 1 for v in vals):
        raise ConfigError(f"--hidden widths must be >= 1, got {text!r}")
    return vals


def _device(device: str) -> str:
    from rote.core.device import resolve_device

    return str(resolve_device(device))


def _finish_run(run, result, sweep, *, command: str, options: dict, quiet: bool, title: str) -> int:
    from rote.spurious.report import run_outputs

    return run.finish(
        result,
        command=command,
        options=options,
        seed=result.seeds[0],
        quiet=quiet,
        sweeps=sweep,
        **run_outputs(result, title=title),
    )


@app.command("toy")
def spurious_toy(
    out: Path = _OUT,
    kind: str = typer.Option("linear", "--kind", help="linear (the paper's Fig. 1) or regression (Fig. 3)."),
    n: int = typer.Option(1000, "--n", help="Samples per split (linear toy)."),
    d: int = typer.Option(1800, "--d", help="Input dimensions: core, spurious and d - 2 noise dimensions."),
    agreement: float = typer.Option(
        0.9,
        "--agreement",
        help="Share of training samples whose spurious feature agrees with the label (val/test: 0.5).",
    ),
    noise: float = typer.Option(0.5, "--noise", help="Std of the noise dimensions (the memorization capacity)."),
    epochs: int = typer.Option(1000, "--epochs", help="Full-batch epochs of every model (paper: 1000)."),
    lr: float = typer.Option(1e-2, "--lr", help="SGD learning rate (paper: 1e-2; 3e-2 for ERM without noise)."),
    steps: int = typer.Option(20000, "--steps", help="Regression toy: most Adam steps per setting (paper: 1e5)."),
    temperature: float = _TEMP,
    seeds: str = _SEEDS,
    workers: int = _WORKERS,
    ray: Optional[str] = _RAY,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """The paper's synthetic experiments: the linear toy (default) or the good / bad / ugly regression toy."""
    from rote.core.runs import RunFolder

    if kind not in ("linear", "regression"):
        raise ConfigError(f"--kind must be linear or regression, got {kind!r}")
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    seed_list = _ints(seeds, "--seeds")
    run = RunFolder(out, force=force)
    dev = _device(device)
    if kind == "regression":
        from rote.spurious.pipeline import run_regression_toy
        from rote.spurious.report import regression_outputs

        result = run_regression_toy(steps=steps, seed=seed_list[0], device=dev)
        options = {"kind": kind, "steps": steps, "seed": seed_list[0], "device": dev}
        return run.finish(
            result,
            command="rote spurious toy",
            options=options,
            seed=seed_list[0],
            quiet=quiet,
            **regression_outputs(result),
        )
    from rote.spurious.data import linear_toy
    from rote.spurious.experiment import run_seeds
    from rote.spurious.mat import _check_temperature

    _check_temperature(temperature)
    if not lr > 0:
        raise ConfigError(f"--lr must be > 0, got {lr}")
    if epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {epochs}")
    linear_toy(4, d, agreement=agreement, noise=noise, seed=0)  # checks n, d, agreement, noise before any work
    if n < 4:
        raise ConfigError(f"--n must be >= 4, got {n}")
    options = {
        "kind": kind,
        "n": n,
        "d": d,
        "agreement": agreement,
        "noise": noise,
        "epochs": epochs,
        "lr": lr,
        "temperature": temperature,
        "device": dev,
    }
    run.write_config("rote spurious toy", {**options, "seeds": seed_list}, seed=seed_list[0])
    result, sweep = run_seeds("linear-toy", options, seed_list, run.path, workers=workers, ray=ray, quiet=quiet)
    return _finish_run(
        run,
        result,
        sweep,
        command="rote spurious toy",
        options={**options, "seeds": seed_list},
        quiet=quiet,
        title="Linear toy: memorization hurts the minority",
    )


def _compare_options(
    *,
    data: str,
    root: Optional[Path],
    methods: list[str],
    heldout: str,
    folds: int,
    temperature: float,
    groups: str,
    select: str,
    hidden: str,
    epochs: int,
    heldout_epochs: Optional[int],
    batch_size: int,
    optimizer: str,
    lr: float,
    twin_lr: Optional[str],
    weight_decay: float,
    dro_step_size: float,
    agreement: float,
    n_train: int,
    n_val: int,
    n_test: int,
    image_size: int,
    limit: Optional[int],
    device: str,
) -> dict:
    from rote.spurious.mat import _check_temperature

    _check_temperature(temperature)
    for flag, v, low in (
        ("--epochs", epochs, 1),
        ("--batch-size", batch_size, 1),
        ("--folds", folds, 2),
        ("--n-train", n_train, 2),
        ("--n-val", n_val, 2),
        ("--n-test", n_test, 2),
        ("--image-size", image_size, 4),
    ):
        if v < low:
            raise ConfigError(f"{flag} must be >= {low}, got {v}")
    if heldout_epochs is not None and heldout_epochs < 1:
        raise ConfigError(f"--heldout-epochs must be >= 1, got {heldout_epochs}")
    if not lr > 0:
        raise ConfigError(f"--lr must be > 0, got {lr}")
    if not 0.0 <= agreement <= 1.0:
        raise ConfigError(f"--agreement must lie in [0, 1], got {agreement}")
    if heldout not in ("xrm", "kfold"):
        raise ConfigError(f"--heldout must be xrm or kfold, got {heldout!r}")
    if select not in ("oracle", "inferred", "last"):
        raise ConfigError(f"--select must be oracle, inferred or last, got {select!r}")
    twin_lrs = _floats(twin_lr, "--twin-lr")
    if twin_lrs and any(v <= 0 for v in twin_lrs):
        raise ConfigError(f"--twin-lr must be > 0, got {twin_lr!r}")
    return {
        "data": data,
        "root": None if root is None else str(root),
        "methods": methods,
        "heldout": heldout,
        "folds": folds,
        "temperature": temperature,
        "train_groups": groups,
        "select": select,
        "hidden": _hidden(hidden),
        "epochs": epochs,
        "heldout_epochs": heldout_epochs,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "lr": lr,
        "twin_lrs": twin_lrs,
        "weight_decay": weight_decay,
        "dro_step_size": dro_step_size,
        "agreement": agreement,
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "image_size": image_size,
        "limit": limit,
        "device": device,
    }


_METHOD_NAMES = {"erm": "erm", "mat": "mat", "groupdro": "groupdro", "gb-erm": "gb_erm", "gb_erm": "gb_erm"}


def _method(name: str) -> str:
    if name not in _METHOD_NAMES:
        raise ConfigError(f"--method must be one of erm, mat, gb-erm, groupdro, got {name!r}")
    return _METHOD_NAMES[name]


@app.command("demo")
def spurious_demo(
    out: Path = _OUT,
    dataset: str = typer.Option(
        "fashion-mnist", "--dataset", help="Images to colour: fashion-mnist, mnist5k or digits."
    ),
    methods: str = typer.Option(
        "erm,mat,groupdro", "--methods", help="Methods, comma-separated (erm, mat, gb-erm, groupdro)."
    ),
    agreement: float = typer.Option(0.95, "--agreement", help="Colour-label agreement in train (val/test: 0.5)."),
    n_train: int = typer.Option(4000, "--n-train", help="Training images."),
    epochs: int = typer.Option(15, "--epochs", help="Epochs of every model (twins and methods)."),
    temperature: float = _TEMP,
    seeds: str = _SEEDS,
    workers: int = _WORKERS,
    ray: Optional[str] = _RAY,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """The image benchmark: a colour spurious feature on real images; ERM, MAT and GroupDRO with oracle groups,
    each selected by validation worst-group accuracy (true groups)."""
    from rote.core.runs import RunFolder
    from rote.spurious.experiment import run_seeds

    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    seed_list = _ints(seeds, "--seeds")
    ms = [_method(m.strip()) for m in methods.split(",") if m.strip()]
    if not ms:
        raise ConfigError("--methods is empty; name at least one of erm, mat, gb-erm, groupdro")
    run = RunFolder(out, force=force)
    n_small = 300 if dataset == "digits" else 1000
    options = _compare_options(
        data=f"colored-{dataset}",
        root=None,
        methods=ms,
        heldout="xrm",
        folds=5,
        temperature=temperature,
        groups="oracle",
        select="oracle",
        hidden="256,256",
        epochs=epochs,
        heldout_epochs=None,
        batch_size=128,
        optimizer="adam",
        lr=1e-3,
        twin_lr=None,
        weight_decay=0.0,
        dro_step_size=0.01,
        agreement=agreement,
        n_train=n_train,
        n_val=n_small,
        n_test=2 * n_small,
        image_size=28,
        limit=None,
        device=_device(device),
    )
    from rote.spurious.data import IMAGE_SOURCES

    if dataset not in IMAGE_SOURCES:
        raise ConfigError(f"--dataset must be one of {', '.join(IMAGE_SOURCES)}, got {dataset!r}")
    run.write_config("rote spurious demo", {**options, "seeds": seed_list}, seed=seed_list[0])
    result, sweep = run_seeds("compare", options, seed_list, run.path, workers=workers, ray=ray, quiet=quiet)
    return _finish_run(
        run,
        result,
        sweep,
        command="rote spurious demo",
        options={**options, "seeds": seed_list},
        quiet=quiet,
        title="MAT against a spurious colour",
    )


@app.command("train")
def spurious_train(
    out: Path = _OUT,
    method: str = typer.Option("mat", "--method", help="erm, mat, gb-erm (group-balanced ERM) or groupdro."),
    data: str = typer.Option(
        "colored-fashion-mnist",
        "--data",
        help="colored-fashion-mnist, colored-mnist5k, colored-digits, linear-toy, waterbirds or celeba (with --root).",
    ),
    root: Optional[Path] = typer.Option(None, "--root", help="Waterbirds / CelebA folder (their metadata files)."),
    heldout: str = typer.Option("xrm", "--heldout", help="Held-out predictions for MAT: xrm (twins) or kfold."),
    folds: int = typer.Option(5, "--folds", help="Folds of --heldout kfold."),
    temperature: float = _TEMP,
    groups: Optional[str] = typer.Option(
        None,
        "--groups",
        help="Training-set groups the method uses: oracle or "
        "inferred (XRM); gb-erm / groupdro only (default oracle for them).",
    ),
    select: str = typer.Option(
        "oracle",
        "--select",
        help="Model selection: validation worst-group accuracy with oracle or inferred groups, or last (final epoch).",
    ),
    hidden: str = typer.Option("256,256", "--hidden", help="MLP hidden widths, comma-separated ('linear': none)."),
    epochs: int = typer.Option(15, "--epochs", help="Epochs of the final model."),
    heldout_epochs: Optional[int] = typer.Option(
        None, "--heldout-epochs", help="Epochs of the twins / folds (default: --epochs)."
    ),
    batch_size: int = typer.Option(128, "--batch-size", help="Batch size."),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam or sgd."),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate."),
    twin_lr: Optional[str] = typer.Option(
        None,
        "--twin-lr",
        help="Twins' learning rates, comma-separated: one XRM run each, the highest flip rate kept (default: --lr).",
    ),
    weight_decay: float = typer.Option(0.0, "--weight-decay", help="Weight decay."),
    dro_step_size: float = typer.Option(0.01, "--dro-step-size", help="GroupDRO step size eta."),
    agreement: float = typer.Option(
        0.9, "--agreement", help="Colour/feature-label agreement in train (synthetic data)."
    ),
    n_train: int = typer.Option(4000, "--n-train", help="Training images (coloured data)."),
    n_val: int = typer.Option(1000, "--n-val", help="Validation images (coloured data)."),
    n_test: int = typer.Option(2000, "--n-test", help="Test images (coloured data)."),
    image_size: int = typer.Option(64, "--image-size", help="Waterbirds / CelebA images are resized to this."),
    limit: Optional[int] = typer.Option(
        None, "--limit", help="Waterbirds / CelebA: at most this many images per split."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of data, halves, weights and batches."),
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Train one method on one dataset; writes test average, worst-group and per-group accuracy and held-in
    versus held-out accuracy per group."""
    from rote.core.runs import RunFolder
    from rote.spurious.experiment import build_splits, result_to_run
    from rote.spurious.pipeline import compare_methods
    from rote.spurious.train import GROUP_METHODS

    m = _method(method)
    if groups is not None and groups not in ("oracle", "inferred"):
        raise ConfigError(f"--groups must be oracle or inferred, got {groups!r}")
    if groups is not None and m not in GROUP_METHODS:
        raise ConfigError(
            f"--groups: method {method} trains without group labels and refuses them; group labels are for gb-erm "
            "and groupdro (for model selection use --select oracle|inferred)"
        )
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    run = RunFolder(out, force=force, inputs=[root] if root is not None else [])
    options = _compare_options(
        data=data,
        root=root,
        methods=[m],
        heldout=heldout,
        folds=folds,
        temperature=temperature,
        groups=groups or "oracle",
        select=select,
        hidden=hidden,
        epochs=epochs,
        heldout_epochs=heldout_epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        twin_lr=twin_lr,
        weight_decay=weight_decay,
        dro_step_size=dro_step_size,
        agreement=agreement,
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        image_size=image_size,
        limit=limit,
        device=_device(device),
    )
    from rote.spurious.experiment import _config

    splits = build_splits(options, seed)
    result = compare_methods(
        splits,
        methods=[m],
        heldout=heldout,
        folds=folds,
        temperature=temperature,
        train_groups=options["train_groups"],
        select=select,
        config=_config(options),
        seed=seed,
        device=options["device"],
        progress=not quiet,
    )
    return _finish_run(
        run,
        result_to_run("compare", result),
        None,
        command="rote spurious train",
        options={**options, "seed": seed},
        quiet=quiet,
        title=f"{method} on {data}",
    )
