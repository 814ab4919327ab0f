"""`rote adversarial ...`: PGD-AT, TRADES, DP-SGD and DeMem training, membership-inference evaluation, demo.

demo      the DeMem comparison: six runs x m models on a Fashion-MNIST subset, natural / PGD accuracy, LiRA
train     one model of one run (standard, pgd_at, trades, with _demem / _dpsgd), with checkpoints
evaluate  re-evaluate a `train` run's model under another PGD budget, with the threshold membership attacks

Each command parses its options, calls `rote.adversarial` and ends with `RunFolder.finish`. The demo's models are
a `rote.sweep` grid: worker processes (one thread each) by default, Ray with --ray ADDRESS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rote.core.errors import ConfigError

app = typer.Typer(
    help="Adversarial training with de-memorization (DeMem) and membership-inference evaluation.",
    no_args_is_help=True,
)

_OUT = typer.Option(..., "--out", help="Run folder (config.json, results.json, *.parquet, plots, report.html).")
_FORCE = typer.Option(False, "--force", help="Replace the results of a finished run in --out.")
_QUIET = typer.Option(False, "--quiet", help="No progress bar and no summary.")
_DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
_SEED = typer.Option(0, "--seed", help="Seed of the data subset, the membership design and every model.")
_DATA = typer.Option("fashion-mnist", "--data", help="fashion-mnist, mnist5k, digits, cifar10 or cifar100.")
_ROOT = typer.Option(None, "--root", help="Folder of the CIFAR python batches (cifar10 / cifar100 only).")


def _options(**kw) -> dict:
    from rote.adversarial.experiment import DEMO

    o = dict(DEMO)
    o.update({k: v for k, v in kw.items() if v is not None})
    return o


def _check_common(o: dict) -> None:
    from rote.adversarial.attacks import check_attack
    from rote.adversarial.experiment import DATASETS, method_configs

    if o["data"] not in DATASETS:
        raise ConfigError(f"--data must be one of {', '.join(DATASETS)}, got {o['data']!r}")
    for k in ("n_pool", "n_test"):
        if o[k] < 1:
            raise ConfigError(f"--{k.replace('_', '-')} must be >= 1, got {o[k]}")
    check_attack(o["eps"], o["eval_step_size"], o["eval_steps"])
    _check_delta(o)
    method_configs(o)  # checks every training option before any work


def _check_delta(o: dict) -> None:
    if not 0 < o.get("dp_delta", 1e-5) < 1:
        raise ConfigError(f"--dp-delta must be in (0, 1) (usually below 1 / training images), got {o['dp_delta']}")


@app.command("demo")
def adversarial_demo(
    out: Path = _OUT,
    data: str = _DATA,
    root: Optional[Path] = _ROOT,
    n_pool: int = typer.Option(1000, "--n-pool", help="Pool of training images; each model trains on half."),
    n_test: int = typer.Option(500, "--n-test", help="Test images for natural and PGD accuracy."),
    n_models: int = typer.Option(8, "--n-models", help="Models per run (even; each is target and shadow)."),
    epochs: int = typer.Option(20, "--epochs", help="Epochs of every model."),
    runs: str = typer.Option(
        "standard,pgd_at,pgd_at_demem,trades,trades_demem,pgd_at_dpsgd", "--runs", help="Runs, comma-separated."
    ),
    width: int = typer.Option(8, "--width", help="SmallCNN conv1 channels of every model."),
    hidden: int = typer.Option(64, "--hidden", help="SmallCNN hidden units of every model."),
    eps: float = typer.Option(0.1, "--eps", help="L-inf radius of training and evaluation attacks (pixels in [0, 1])."),
    demem_weight: float = typer.Option(2.0, "--demem-weight", help="DeMem penalty weight lambda."),
    demem_fraction: float = typer.Option(0.1, "--demem-fraction", help="Share of training images that are high-risk."),
    demem_flood: float = typer.Option(0.5, "--demem-flood", help="Flood level b of the flood penalty."),
    dp_noise: float = typer.Option(0.5, "--dp-noise", help="DP-SGD noise multiplier."),
    dp_delta: float = typer.Option(1e-5, "--dp-delta", help="delta of the reported (epsilon, delta) of DP-SGD."),
    workers: int = typer.Option(2, "--workers", help="Worker processes for the models (0: in this process)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Train the models as Ray tasks: 'local' or an address."),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Standard training, PGD-AT, TRADES, each with DeMem, and PGD-AT with DP-SGD: accuracy and LiRA leakage."""
    from rote.adversarial.experiment import run_experiment
    from rote.adversarial.report import experiment_outputs
    from rote.core.device import resolve_device
    from rote.core.runs import RunFolder

    run = RunFolder(out, force=force)
    names = [r.strip() for r in runs.split(",") if r.strip()]
    if not names:
        raise ConfigError("--runs is empty; name at least one run")
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    o = _options(
        data=data,
        n_pool=n_pool,
        n_test=n_test,
        n_models=n_models,
        epochs=epochs,
        width=width,
        hidden=hidden,
        eps=eps,
        demem_weight=demem_weight,
        demem_fraction=demem_fraction,
        demem_flood=demem_flood,
        dp_noise=dp_noise,
        dp_delta=dp_delta,
    )
    o["train_step_size"] = min(o["train_step_size"], 2 * eps) if eps > 0 else o["train_step_size"]
    o["eval_step_size"] = min(o["eval_step_size"], 2 * eps) if eps > 0 else o["eval_step_size"]
    _check_common(o)
    from rote.adversarial.experiment import method_configs
    from rote.adversarial.shadow import membership_design

    method_configs(o, names)
    if n_models < 4:
        raise ConfigError(f"--n-models must be >= 4 (each model is a target with >= 3 shadow models), got {n_models}")
    membership_design(n_pool, n_models)
    dev = str(resolve_device(device))
    options = {**o, "runs": names, "workers": workers, "ray": ray, "device": dev, "root": str(root) if root else None}
    run.write_config("rote adversarial demo", options, seed=seed)
    result = run_experiment(
        o, run.path, runs=names, seed=seed, root=root, workers=workers, ray=ray, device=dev, quiet=quiet
    )
    return run.finish(
        result, command="rote adversarial demo", options=options, seed=seed, quiet=quiet, **experiment_outputs(result)
    )


@app.command("train")
def adversarial_train(
    out: Path = _OUT,
    method: str = typer.Option("pgd_at", "--method", help="standard, pgd_at or trades."),
    demem: bool = typer.Option(False, "--demem/--no-demem", help="Add the DeMem penalty on high-risk samples."),
    dp: bool = typer.Option(False, "--dp/--no-dp", help="Train with DP-SGD (per-sample clipping and noise)."),
    data: str = _DATA,
    root: Optional[Path] = _ROOT,
    n_train: int = typer.Option(1000, "--n-train", help="Training images (a random subset)."),
    n_test: int = typer.Option(500, "--n-test", help="Test images."),
    epochs: int = typer.Option(20, "--epochs", help="Training epochs."),
    batch_size: int = typer.Option(64, "--batch-size", help="Batch size."),
    lr: float = typer.Option(3e-3, "--lr", help="Adam learning rate."),
    width: int = typer.Option(8, "--width", help="SmallCNN conv1 channels."),
    hidden: int = typer.Option(64, "--hidden", help="SmallCNN hidden units."),
    eps: float = typer.Option(0.1, "--eps", help="L-inf radius of the attacks (pixels in [0, 1])."),
    step_size: float = typer.Option(0.04, "--step-size", help="PGD step size in training."),
    steps: int = typer.Option(3, "--steps", help="PGD steps in training."),
    eval_steps: int = typer.Option(10, "--eval-steps", help="PGD steps in evaluation (step size eps / 4)."),
    beta: float = typer.Option(6.0, "--beta", help="TRADES beta."),
    demem_weight: float = typer.Option(2.0, "--demem-weight", help="DeMem penalty weight lambda."),
    demem_fraction: float = typer.Option(0.1, "--demem-fraction", help="Share of training images that are high-risk."),
    demem_risk: str = typer.Option(
        "drop", "--demem-risk", help="drop (mean minus latest clean loss), trajectory (mean) or loss (latest)."
    ),
    demem_penalty: str = typer.Option("flood", "--demem-penalty", help="flood, ascent or entropy."),
    demem_flood: float = typer.Option(0.5, "--demem-flood", help="Flood level b of the flood penalty."),
    demem_warmup: int = typer.Option(1, "--demem-warmup", help="Epochs before the penalty starts."),
    demem_target: str = typer.Option("clean", "--demem-target", help="Loss the flood acts on: clean or objective."),
    dp_clip: float = typer.Option(1.0, "--dp-clip", help="DP-SGD per-sample clipping norm."),
    dp_noise: float = typer.Option(0.5, "--dp-noise", help="DP-SGD noise multiplier."),
    dp_delta: float = typer.Option(1e-5, "--dp-delta", help="delta of the reported (epsilon, delta) of DP-SGD."),
    seed: int = _SEED,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Train one model (checkpoint every epoch; rerunning the command resumes) and evaluate it."""
    from rote.adversarial.experiment import train_one
    from rote.adversarial.report import single_outputs
    from rote.core.device import resolve_device
    from rote.core.runs import RunFolder

    run = RunFolder(out, force=force)
    if method not in ("standard", "pgd_at", "trades"):
        raise ConfigError(f"--method must be standard, pgd_at or trades, got {method!r}")
    name = method + ("_demem" if demem else "") + ("_dpsgd" if dp else "")
    if name not in (
        "standard",
        "pgd_at",
        "pgd_at_demem",
        "trades",
        "trades_demem",
        "pgd_at_dpsgd",
        "standard_demem",
        "standard_dpsgd",
        "trades_dpsgd",
    ):
        raise ConfigError(f"--demem with --dp is not a run of the comparison ({name}); choose one of them")
    o = _options(
        data=data,
        n_pool=n_train,
        n_test=n_test,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        width=width,
        hidden=hidden,
        eps=eps,
        train_step_size=step_size,
        train_steps=steps,
        eval_steps=eval_steps,
        eval_step_size=eps / 4 if eps > 0 else 0.025,
        beta=beta,
        demem_weight=demem_weight,
        demem_fraction=demem_fraction,
        demem_risk=demem_risk,
        demem_penalty=demem_penalty,
        demem_flood=demem_flood,
        demem_warmup=demem_warmup,
        demem_target=demem_target,
        dp_clip=dp_clip,
        dp_noise=dp_noise,
        dp_delta=dp_delta,
    )
    _check_common_single(o, name)
    dev = str(resolve_device(device))
    options = {**o, "run": name, "device": dev, "root": str(root) if root else None}
    run.write_config("rote adversarial train", options, seed=seed)
    result = train_one(
        o, name, seed=seed, root=root, device=dev, checkpoint_dir=run.path / "checkpoints", progress=not quiet
    )
    return run.finish(
        result,
        command="rote adversarial train",
        options=options,
        seed=seed,
        quiet=quiet,
        **single_outputs(result, title="Adversarial training: one model"),
    )


def _check_common_single(o: dict, name: str) -> None:
    from rote.adversarial.attacks import check_attack
    from rote.adversarial.experiment import DATASETS
    from rote.adversarial.train import AttackConfig, DeMemConfig, DPConfig, TrainConfig

    if o["data"] not in DATASETS:
        raise ConfigError(f"--data must be one of {', '.join(DATASETS)}, got {o['data']!r}")
    if o["n_pool"] < 10 or o["n_test"] < 1:
        raise ConfigError(f"--n-train must be >= 10 and --n-test >= 1, got {o['n_pool']} and {o['n_test']}")
    check_attack(o["eps"], o["eval_step_size"], o["eval_steps"])
    _check_delta(o)
    TrainConfig(
        method=name.removesuffix("_demem").removesuffix("_dpsgd"),
        attack=AttackConfig(o["eps"], o["train_step_size"], o["train_steps"]),
        beta=o["beta"],
        demem=DeMemConfig(
            o["demem_weight"],
            o["demem_fraction"],
            o["demem_risk"],
            o["demem_penalty"],
            o["demem_flood"],
            o["demem_warmup"],
            o["demem_target"],
        ),
        dp=DPConfig(o["dp_clip"], o["dp_noise"]),
        epochs=o["epochs"],
        batch_size=o["batch_size"],
        lr=o["lr"],
        width=o["width"],
        hidden=o["hidden"],
    )


@app.command("evaluate")
def adversarial_evaluate(
    out: Path = _OUT,
    run_dir: Path = typer.Option(..., "--run", help="Folder of a `rote adversarial train` run."),
    eps: Optional[float] = typer.Option(None, "--eps", help="L-inf (or L2) radius; default: the run's."),
    step_size: Optional[float] = typer.Option(None, "--step-size", help="PGD step size; default: the run's."),
    steps: Optional[int] = typer.Option(None, "--steps", help="PGD steps; default: the run's."),
    norm: str = typer.Option("linf", "--norm", help="linf or l2."),
    root: Optional[Path] = _ROOT,
    device: str = _DEVICE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Natural and PGD accuracy of a trained model, and loss / confidence / entropy membership attacks."""
    from rote.adversarial.experiment import evaluate_checkpoint
    from rote.adversarial.report import single_outputs
    from rote.core.device import resolve_device
    from rote.core.runs import RunFolder

    run = RunFolder(out, force=force, inputs=[run_dir])
    dev = str(resolve_device(device))
    result = evaluate_checkpoint(run_dir, eps=eps, step_size=step_size, steps=steps, norm=norm, device=dev, root=root)
    options = {"run": str(run_dir), "eps": eps, "step_size": step_size, "steps": steps, "norm": norm, "device": dev}
    return run.finish(
        result,
        command="rote adversarial evaluate",
        options=options,
        quiet=quiet,
        **single_outputs(result, title="Adversarial evaluation"),
    )
