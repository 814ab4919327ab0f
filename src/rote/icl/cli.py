"""`rote icl ...`: train ICL transformers, sweep K x N over seeds, analyze the IWL -> ICL transition, measure the
stand-alone MLP's memorization, run a small demo. Each command parses its options, calls the library and ends
with `RunFolder.finish` (see `rote.core.cli` for the exit contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rote.core.cli import split_list as _split
from rote.core.errors import ConfigError

app = typer.Typer(
    help="In-context learning vs memorization (Nguyen and Reddy, ICLR 2025): train, sweep, analyze, memorize, demo.",
    no_args_is_help=True,
)

QUIET_HELP = "No progress bar and no summary."
DEMO = {  # `rote icl demo`: the CPU-sized sweep of docs/icl.md
    "K": ["128", "256", "512", "1024", "2048", "4096", "inf"],
    "N": ["8", "16"],
    "seeds": "0,1,2,3,4,5",
    "steps": 2500,
    "lr": 0.1,
    "hidden": 128,
    "eval_every": 50,
    "eval_n": 500,
    "stop_at": 0.99,
    "mlp_K": ["64", "128", "256", "512", "1024"],
    "mlp_steps": 2000,
}


def _ints(values: Optional[list[str]], name: str) -> list[int]:
    from rote.sweep import axis_values

    return axis_values(values, int, name)


def _k_value(text: str):
    from rote.icl.experiment import INF, parse_k

    k = parse_k(text)
    return None if k == INF else k


@app.command("train")
def icl_train(
    out: Path = typer.Option(..., "--out", help="Run folder: per_seed.parquet, history.parquet, curves, report."),
    task: str = typer.Option("binary", "--task", help="binary (Nguyen and Reddy 2025) or reddy (Reddy 2024)."),
    k: str = typer.Option(
        "1024", "--K", help="Training classes (binary: even; reddy: a multiple of L); inf = K -> inf."
    ),
    n: int = typer.Option(20, "--N", help="Context length: tokens incl. the query (binary), item-label pairs (reddy)."),
    labels: int = typer.Option(32, "--L", help="Labels (reddy task)."),
    burstiness: int = typer.Option(2, "--B", help="Burstiness B (reddy task; 0 = i.i.d.)."),
    p_bursty: float = typer.Option(1.0, "--p-B", help="Share of bursty sequences (reddy task)."),
    alpha: float = typer.Option(0.0, "--alpha", help="Zipf exponent of class frequencies (reddy task)."),
    p_novel: float = typer.Option(0.0, "--p-C", help="Share of sequences from novel classes (reddy task)."),
    equalize: bool = typer.Option(False, "--equalize", help="N/2 tokens of each label in every context (binary)."),
    model: str = typer.Option("one_layer", "--model", help="one_layer, two_layer (binary) or reddy."),
    seeds: Optional[list[str]] = typer.Option(None, "--seeds", help="Seeds trained at once, e.g. 0,1,2,3 (default 0)."),
    steps: int = typer.Option(2000, "--steps", help="SGD steps (the paper: 469 per epoch)."),
    batch: int = typer.Option(128, "--batch", help="Sequences per step (paper 128)."),
    lr: float = typer.Option(0.01, "--lr", help="SGD learning rate (paper 0.01)."),
    wd_attention: float = typer.Option(1e-10, "--wd-attention", help="Weight decay of the attention path."),
    wd_mlp: float = typer.Option(1e-10, "--wd-mlp", help="Weight decay of the MLPs."),
    hidden: int = typer.Option(512, "--hidden", help="MLP width (paper 512)."),
    eval_every: int = typer.Option(100, "--eval-every", help="Steps between evaluations."),
    eval_n: int = typer.Option(2000, "--eval-n", help="Sequences per evaluation set (paper 2000)."),
    stop_at: Optional[float] = typer.Option(None, "--stop-at", help="Stop once every seed's ICL accuracy exceeds it."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """Train one ICL transformer per seed (all at once) and record ICL, ICL2 and IWL accuracy over training."""
    from rote.core.runs import RunFolder, progress_bar
    from rote.icl.report import icl_train_outputs
    from rote.icl.task import make_task
    from rote.icl.train import train_icl

    seed_list = _ints(seeds, "seeds") or [0]
    if task == "binary":
        tk = make_task("binary", K=_k_value(k), N=n, equalize=equalize)
    elif task == "reddy":
        kk = _k_value(k)
        if kk is None:
            raise ConfigError("`K` must be finite for the reddy task")
        tk = make_task("reddy", K=kk, N=n, L=labels, B=burstiness, p_B=p_bursty, alpha=alpha, p_C=p_novel)
        if model == "one_layer":
            model = "reddy"
    else:
        raise ConfigError(f"`task` must be 'binary' or 'reddy', got {task!r}")
    run = RunFolder(out, force=force)
    options = {
        "task": {"kind": task, **{key: v for key, v in tk.__dict__.items()}},
        "model": model,
        "seeds": seed_list,
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "wd_attention": wd_attention,
        "wd_mlp": wd_mlp,
        "hidden": hidden,
        "eval_every": eval_every,
        "eval_n": eval_n,
        "stop_at": stop_at,
        "device": device,
    }
    with progress_bar(steps, "training", quiet=quiet) as advance:
        result = train_icl(
            tk,
            seed_list,
            model=model,
            steps=steps,
            batch=batch,
            lr=lr,
            wd_attention=wd_attention,
            wd_mlp=wd_mlp,
            hidden=hidden,
            eval_every=eval_every,
            eval_n=eval_n,
            stop_at=stop_at,
            device=device,
            progress=advance,
        )
    return run.finish(result, command="rote icl train", options=options, quiet=quiet, **icl_train_outputs(result))


def _sweep_and_analyze(
    *,
    command: str,
    out: Path,
    k: list[str],
    n: list[str],
    seeds: str | list[str],
    equalize: list[str],
    mlp_k: list[str],
    mlp_steps: Optional[int],
    fixed: dict,
    workers: int,
    ray: Optional[str],
    n_boot: int,
    force: bool,
    quiet: bool,
) -> int:
    from rote.core.runs import RunFolder
    from rote.icl.experiment import analyze_sweep, run_sweep, sweep_grids
    from rote.icl.report import icl_analysis_outputs

    if workers < 1:
        raise ConfigError(f"`workers` must be at least 1, got {workers}")
    if n_boot < 10:
        raise ConfigError(f"`n_boot` must be at least 10, got {n_boot}")
    eq = [e.lower() in ("1", "true", "yes", "on") for e in _split(equalize)] or [False]
    icl_grid, mlp_grid = sweep_grids(
        _split(k),
        _ints(n, "N"),
        _ints(seeds if isinstance(seeds, list) else [seeds], "seeds"),
        equalize=eq,
        mlp_K=_split(mlp_k),
        mlp_steps=mlp_steps,
        **fixed,
    )
    run = RunFolder(out, force=force)
    options = {
        "grid": icl_grid.to_dict(),
        "mlp_grid": None if mlp_grid is None else mlp_grid.to_dict(),
        "workers": workers,
        "ray": ray,
        "n_boot": n_boot,
    }
    run.write_config(command, options)  # before the grid: an interrupted sweep resumes from its points
    icl, mlp = run_sweep(out, icl_grid, mlp_grid, workers=workers, ray=ray, quiet=quiet)
    result = analyze_sweep(out, allow_missing=True, n_boot=n_boot)
    return run.finish(
        result,
        command=command,
        options=options,
        quiet=quiet,
        sweeps=(icl, mlp),
        **icl_analysis_outputs(result, command),
    )


@app.command("sweep")
def icl_sweep(
    out: Path = typer.Option(..., "--out", help="Sweep folder (points under OUT/grid/points/<id>/, analysis on top)."),
    k: list[str] = typer.Option(..., "--K", help="Training classes, e.g. 64,128,256,inf (an axis)."),
    n: list[str] = typer.Option(..., "--N", help="Context lengths, e.g. 10,20,40 (an axis)."),
    seeds: list[str] = typer.Option(..., "--seeds", help="Seeds, e.g. 0-7 as 0,1,2,...; all train at once per point."),
    equalize: Optional[list[str]] = typer.Option(None, "--equalize", help="false, true or false,true (an axis)."),
    mlp_k: Optional[list[str]] = typer.Option(None, "--mlp-K", help="Also run the stand-alone MLP at these K (nu)."),
    mlp_steps: Optional[int] = typer.Option(None, "--mlp-steps", help="SGD steps of the MLP runs (default --steps)."),
    model: str = typer.Option("one_layer", "--model", help="one_layer or two_layer."),
    steps: int = typer.Option(2000, "--steps", help="SGD steps per run."),
    batch: int = typer.Option(128, "--batch", help="Sequences per step."),
    lr: float = typer.Option(0.01, "--lr", help="SGD learning rate (paper 0.01)."),
    hidden: int = typer.Option(512, "--hidden", help="MLP width (paper 512)."),
    wd_attention: float = typer.Option(1e-10, "--wd-attention", help="Weight decay of the attention path."),
    eval_every: int = typer.Option(100, "--eval-every", help="Steps between evaluations."),
    eval_n: int = typer.Option(2000, "--eval-n", help="Sequences per evaluation set."),
    stop_at: Optional[float] = typer.Option(None, "--stop-at", help="Stop a point once all its seeds pass it."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    workers: int = typer.Option(1, "--workers", help="Grid points run in parallel (local processes)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="'local' or a Ray cluster address: points as Ray tasks."),
    n_boot: int = typer.Option(200, "--n-boot", help="Bootstrap replicates of the K* intervals."),
    force: bool = typer.Option(False, "--force", help="Replace the analysis of a finished sweep (points are reused)."),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """Train every (K, N) point over the seeds, then analyze: K* per N, the exponent of K* vs N, t_ICL, nu.
    Rerunning the same command resumes an interrupted sweep without recomputing finished points."""
    fixed = {
        "model": model,
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "hidden": hidden,
        "wd_attention": wd_attention,
        "eval_every": eval_every,
        "eval_n": eval_n,
        "stop_at": stop_at,
        "device": device,
    }
    return _sweep_and_analyze(
        command="rote icl sweep",
        out=out,
        k=k,
        n=n,
        seeds=seeds,
        equalize=equalize or [],
        mlp_k=mlp_k or [],
        mlp_steps=mlp_steps,
        fixed=fixed,
        workers=workers,
        ray=ray,
        n_boot=n_boot,
        force=force,
        quiet=quiet,
    )


@app.command("analyze")
def icl_analyze(
    folder: Path = typer.Argument(..., help="The --out folder of `rote icl sweep`."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder for the analysis (default: the sweep folder)."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Analyze the finished points, list the rest."),
    n_boot: int = typer.Option(200, "--n-boot", help="Bootstrap replicates of the K* intervals."),
    max_c1: float = typer.Option(0.05, "--max-c1", help="nu uses the MLP runs that ended with c1 <= this."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace a finished analysis in --out (the sweep folder's own analysis is always replaced).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """Analyze a sweep folder: K* per N with intervals, the exponent of K* vs N, nu, t_ICL, bimodality.
    Writes into the sweep folder (replacing its analysis) unless --out names another folder."""
    from rote.core.runs import RunFolder
    from rote.icl.experiment import analyze_sweep
    from rote.icl.report import icl_analysis_outputs

    if n_boot < 10:
        raise ConfigError(f"`n_boot` must be at least 10, got {n_boot}")
    target = folder if out is None else out
    run = RunFolder(target, force=force or out is None)  # checks --out before any work
    result = analyze_sweep(folder, allow_missing=allow_missing, n_boot=n_boot, seed=seed, max_c1=max_c1)
    options = {"folder": str(folder), "allow_missing": allow_missing, "n_boot": n_boot, "seed": seed, "max_c1": max_c1}
    return run.finish(result, command="rote icl analyze", options=options, quiet=quiet, **icl_analysis_outputs(result))


@app.command("memorize")
def icl_memorize(
    out: Path = typer.Option(..., "--out", help="Run folder: curve.parquet (c1, I_K), per_seed.parquet, report."),
    k: list[str] = typer.Option(..., "--K", help="Items to memorize, e.g. 64,128,256 (several: nu is fitted)."),
    seeds: Optional[list[str]] = typer.Option(None, "--seeds", help="Seeds trained at once (default 0,1,2,3)."),
    steps: int = typer.Option(2000, "--steps", help="SGD steps."),
    batch: int = typer.Option(128, "--batch", help="Items per step."),
    lr: float = typer.Option(0.01, "--lr", help="SGD learning rate (paper 0.01)."),
    hidden: int = typer.Option(512, "--hidden", help="MLP width (paper 512)."),
    log_every: int = typer.Option(50, "--log-every", help="Steps between c1 measurements."),
    max_c1: float = typer.Option(0.05, "--max-c1", help="nu uses the K whose runs ended with c1 <= this."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """The stand-alone MLP memorization run: c1(t), I_K(t) per K, and the fit I_K ~ K^nu."""
    from rote.core.runs import RunFolder, progress_bar
    from rote.icl.experiment import memorization_scaling
    from rote.icl.report import memorize_outputs

    ks = [_k_value(v) for v in _split(k)]
    if not ks or None in ks:
        raise ConfigError("`K` must list finite integers (items to memorize)")
    seed_list = _ints(seeds, "seeds") or [0, 1, 2, 3]
    run = RunFolder(out, force=force)
    options = {"K": ks, "seeds": seed_list, "steps": steps, "batch": batch, "lr": lr, "hidden": hidden,
               "log_every": log_every, "device": device, "max_c1": max_c1}  # fmt: skip
    with progress_bar(steps * len(ks), "memorizing", quiet=quiet) as advance:
        result = memorization_scaling(
            ks, seed_list, steps=steps, batch=batch, lr=lr, hidden=hidden, log_every=log_every, device=device,
            max_c1=max_c1, progress=advance,
        )  # fmt: skip
    return run.finish(result, command="rote icl memorize", options=options, quiet=quiet, **memorize_outputs(result))


@app.command("demo")
def icl_demo(
    out: Path = typer.Option(..., "--out", help="Sweep folder for the demo (analysis on top)."),
    workers: int = typer.Option(2, "--workers", help="Grid points run in parallel."),
    steps: int = typer.Option(DEMO["steps"], "--steps", help="SGD steps per run."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the analysis of a finished demo."),
    quiet: bool = typer.Option(False, "--quiet", help=QUIET_HELP),
) -> int:
    """A CPU-sized sweep (N = 8, 16; K = 128 ... 4096 and inf; 6 seeds; the MLP at 5 K) and its analysis: the same
    grid as `rote icl sweep --K 128,256,512,1024,2048,4096,inf --N 8,16 --seeds 0,1,2,3,4,5 --steps 2500 --lr 0.1
    --hidden 128 --eval-every 50 --eval-n 500 --stop-at 0.99 --mlp-K 64,128,256,512,1024 --mlp-steps 2000`."""
    fixed = {
        "model": "one_layer",
        "steps": steps,
        "batch": 128,
        "lr": DEMO["lr"],
        "hidden": DEMO["hidden"],
        "wd_attention": 1e-10,
        "eval_every": DEMO["eval_every"],
        "eval_n": DEMO["eval_n"],
        "stop_at": DEMO["stop_at"],
        "device": device,
    }
    return _sweep_and_analyze(
        command="rote icl demo",
        out=out,
        k=DEMO["K"],
        n=DEMO["N"],
        seeds=DEMO["seeds"],
        equalize=[],
        mlp_k=DEMO["mlp_K"],
        mlp_steps=min(steps, DEMO["mlp_steps"]),
        fixed=fixed,
        workers=workers,
        ray=None,
        n_boot=200,
        force=force,
        quiet=quiet,
    )
