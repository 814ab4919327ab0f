"""`rote llm probe`, `rote llm suppress` and `rote llm probe-demo` (activation probes), registered on the llm app."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from rote.core.errors import ConfigError

MODEL_HELP = "Model: a local Hugging Face folder, 'smollm2' or 'tiny:FOLDER' (rote llm train-tiny)."


def _layers(value: str) -> list[int] | None:
    if value.strip() == "all":
        return None
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(
            f"--layers {value!r}: expected 'all' or comma-separated layer numbers such as 0,3,5"
        ) from None
    if not out:
        raise ConfigError(f"--layers {value!r}: expected 'all' or comma-separated layer numbers such as 0,3,5")
    return out


def _names(value: str, option: str) -> list[str]:
    out = [v.strip() for v in value.split(",") if v.strip()]
    if not out:
        raise ConfigError(f"{option} {value!r}: give at least one value")
    return out


def _alphas(value: str) -> list[float]:
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--alphas {value!r}: expected comma-separated numbers such as 0,0.5,1,2") from None
    if not out:
        raise ConfigError(f"--alphas {value!r}: expected comma-separated numbers such as 0,0.5,1,2")
    return out


def _demo_options(
    steps: int, per_count: int, max_texts: int, layers: int, min_run: int, alphas: str, direction: str, device: str
) -> dict[str, Any]:
    """The probe demo's options, checked once for `probe-demo` and `probe-grid`, as `probe_demo` keywords."""
    from rote.core.device import resolve_device
    from rote.llm.probes import DIRECTIONS

    alpha_list = _alphas(alphas)
    for name, v in (
        ("steps", steps),
        ("per_count", per_count),
        ("max_texts", max_texts),
        ("layers", layers),
        ("min_run", min_run),
    ):
        if v < 1:
            raise ConfigError(f"`{name}` must be at least 1, got {v}")
    if any(not a >= 0 for a in alpha_list):
        raise ConfigError(f"`alphas` {alpha_list}: give finite values >= 0 (0 = the unmodified model)")
    if direction not in DIRECTIONS:
        raise ConfigError(f"`direction` {direction!r}: use one of {', '.join(DIRECTIONS)}")
    resolve_device(device)
    return {
        "steps": steps,
        "per_count": per_count,
        "max_texts": max_texts,
        "n_layer": layers,
        "min_run": min_run,
        "alphas": alpha_list,
        "direction": direction,
        "device": device,
    }


def _texts(path: Optional[Path]) -> list[str] | None:
    from rote.data.text import load_texts

    return None if path is None else load_texts(path)["text"].astype(str).tolist()


def _tiny_canaries(spec: str) -> Any:
    """The canaries.jsonl a `rote llm train-tiny` folder holds (None for other models)."""
    import pandas as pd

    from rote.data.text import load_texts

    if not spec.startswith("tiny:"):
        return None
    folder = Path(spec[len("tiny:") :]).expanduser()
    f = folder / "canaries.jsonl" if folder.is_dir() else folder.parent / "canaries.jsonl"
    if not f.is_file():
        return None
    frame = load_texts(f)
    return pd.DataFrame({"text": frame["text"].astype(str), "repeats": frame["repeats"].astype(int)})


def default_texts(spec: str, task: str, *, seed: int = 0) -> tuple[list[str], list[str], str]:
    """(positives, controls, description) when none are given: for a tiny GPT trained by `rote llm train-tiny`,
    its planted canaries (copies > 0) against its unseen ones; otherwise the shipped famous public-domain texts
    against fresh texts with invented 2026+ facts. The repetition task uses fresh texts written twice in a row."""
    from rote.llm.corpus import famous_texts, fresh_texts

    if task == "repetition":
        fresh = fresh_texts(24, seed=seed)
        return [t + " " + t for t in fresh], [], "fresh texts written twice (24)"
    canaries = _tiny_canaries(spec)
    if canaries is not None:
        pos = canaries[canaries["repeats"] > 0]["text"].tolist()
        neg = canaries[canaries["repeats"] == 0]["text"].tolist()
        return pos, neg, f"planted canaries ({len(pos)}) vs unseen canaries ({len(neg)})"
    famous = famous_texts()["text"].astype(str).tolist()
    fresh = fresh_texts(len(famous), seed=seed)
    return famous, fresh, f"famous public-domain texts ({len(famous)}) vs fresh texts ({len(fresh)})"


def register(app: typer.Typer) -> None:
    """Add the probe verbs to `app` (the `rote llm` typer app)."""

    @app.command("probe")
    def probe_cmd(
        model: str = typer.Option(..., "--model", help=MODEL_HELP),
        out: Path = typer.Option(..., "--out", help="Run folder: results.json, probe.json + probes.npz, report."),
        positives: Optional[Path] = typer.Option(
            None,
            "--positives",
            help="Texts the model may have memorized (.jsonl/.txt). Default: a tiny GPT's planted canaries, else "
            "the shipped famous texts.",
        ),
        controls: Optional[Path] = typer.Option(
            None,
            "--controls",
            help="Texts the model has not seen. Default: a tiny GPT's unseen canaries, else fresh texts.",
        ),
        task: str = typer.Option("memorization", "--task", help="memorization or repetition."),
        layers: str = typer.Option("all", "--layers", help="'all' or layer numbers such as 0,3,5."),
        sites: str = typer.Option("resid,attn,mlp", "--sites", help="Activation sites: resid, attn, mlp."),
        probe: str = typer.Option("logistic", "--probe", help="logistic (L2) or mlp."),
        c: float = typer.Option(1.0, "--c", help="Inverse L2 strength of the logistic probe (scikit-learn's C)."),
        folds: int = typer.Option(5, "--folds", help="Cross-validation folds (split by text)."),
        min_run: int = typer.Option(32, "--min-run", help="Memorized: inside a run of >= this many greedy hits."),
        ngram: int = typer.Option(8, "--ngram", help="Repetition: the n-gram ending at the token occurred before."),
        loss_bins: int = typer.Option(10, "--loss-bins", help="Quantile bins of the loss for matching controls."),
        match_loss: bool = typer.Option(True, "--match-loss/--no-match-loss", help="Match controls on loss."),
        batch_size: int = typer.Option(16, "--batch-size", help="Texts per forward pass."),
        capture_dtype: str = typer.Option(
            "float16",  # rote.llm.probes.CAPTURE_DTYPE (not imported here: the CLI starts without torch)
            "--capture-dtype",
            help="Stored activations: float16 (half the disk traffic; values beyond its range fall back to float32) "
            "or float32.",
        ),
        keep_activations: bool = typer.Option(
            False, "--keep-activations", help="Keep the captured activations in OUT/activations."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the folds, the loss matching and the MLP probe."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    ) -> int:
        """Train probes on activations that tell memorized (or repeated) tokens from control tokens, per layer and
        site, cross-validated, against the loss and min-k% baselines on the same tokens."""
        from rote.core.device import resolve_device
        from rote.core.runs import RunFolder, seed_everything
        from rote.llm.backends.open import open_backend
        from rote.llm.probes import probe_study
        from rote.llm.probes_report import probe_outputs

        layer_list = _layers(layers)
        site_list = _names(sites, "--sites")
        if capture_dtype not in ("float16", "float32"):
            raise ConfigError(f"--capture-dtype {capture_dtype!r}: use float16 or float32")
        resolve_device(device)
        run = RunFolder(out, force=force, inputs=[p for p in (positives, controls) if p is not None])
        seed_everything(seed)
        pos, ctrl = _texts(positives), _texts(controls)
        source = "given files"
        if pos is None or (ctrl is None and task == "memorization"):
            d_pos, d_ctrl, source = default_texts(model, task, seed=seed)
            pos = d_pos if pos is None else pos
            ctrl = d_ctrl if ctrl is None else ctrl
        backend = open_backend(model, device=device)
        result, probes = probe_study(
            backend,
            pos,
            ctrl or [],
            task=task,
            layers=layer_list,
            sites=site_list,
            probe=probe,
            C=c,
            folds=folds,
            min_run=min_run,
            ngram=ngram,
            loss_bins=loss_bins,
            match_loss=match_loss,
            batch_size=batch_size,
            activations_dir=run.file("activations") if keep_activations else None,
            capture_dtype=capture_dtype,
            seed=seed,
            progress=not quiet,
        )
        probes.save(run.file("."))
        options = {
            "model": model,
            "task": task,
            "texts": source,
            "layers": layers,
            "sites": site_list,
            "probe": probe,
            "c": c,
            "folds": folds,
            "min_run": min_run,
            "ngram": ngram,
            "loss_bins": loss_bins,
            "match_loss": match_loss,
            "batch_size": batch_size,
            "capture_dtype": capture_dtype,
            "device": device,
        }
        return run.finish(
            result,
            command="rote llm probe",
            options=options,
            seed=seed,
            quiet=quiet,
            inputs={"positives": positives, "controls": controls},
            **probe_outputs(result),
        )

    @app.command("suppress")
    def suppress_cmd(
        model: str = typer.Option(..., "--model", help=MODEL_HELP),
        probe: Path = typer.Option(..., "--probe", help="The --out folder of `rote llm probe` on this same model."),
        out: Path = typer.Option(..., "--out", help="Run folder: results.json (curve), curve.parquet, report."),
        memorized: Optional[Path] = typer.Option(
            None, "--memorized", help="Texts to extract (.jsonl/.txt). Default: as `rote llm probe`'s positives."
        ),
        heldout: Optional[Path] = typer.Option(
            None, "--heldout", help="Held-out texts for perplexity. Default: 40 fresh texts."
        ),
        layers: str = typer.Option("all", "--layers", help="'all' (every probed layer) or numbers such as 0,3."),
        site: Optional[str] = typer.Option(None, "--site", help="resid, attn or mlp (default: the best probe's)."),
        alphas: str = typer.Option("0,0.5,1,2,4", "--alphas", help="Strengths: h <- h - alpha (h.w) w."),
        direction: str = typer.Option("probe", "--direction", help="probe (its weights) or mean_diff."),
        windows: bool = typer.Option(
            False,
            "--windows",
            help="Extract every prefix + suffix window of the memorized texts whose suffix the unmodified model "
            "reproduces, instead of each text's first tokens.",
        ),
        prefix: int = typer.Option(32, "--prefix", help="Prefix tokens given to the model."),
        suffix: int = typer.Option(32, "--suffix", help="Suffix tokens it must reproduce exactly."),
        ppl_budget: float = typer.Option(0.1, "--ppl-budget", help="Allowed relative perplexity rise (summary)."),
        batch_size: int = typer.Option(16, "--batch-size", help="Texts per forward pass."),
        seed: int = typer.Option(0, "--seed", help="Seed of the default fresh texts."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    ) -> int:
        """Remove or damp the probe direction at one layer during generation; sweep layers and alphas, measuring
        verbatim extraction of memorized texts and held-out perplexity (alpha 0 = the unmodified model)."""
        from rote.core.device import resolve_device
        from rote.core.runs import RunFolder, seed_everything
        from rote.llm.backends.open import open_backend
        from rote.llm.corpus import fresh_texts
        from rote.llm.probes import ProbeSet, suppress
        from rote.llm.probes_report import suppress_outputs

        layer_list = _layers(layers)
        alpha_list = _alphas(alphas)
        if ppl_budget < 0:
            raise ConfigError(f"`ppl_budget` must be >= 0, got {ppl_budget:g}")
        resolve_device(device)
        run = RunFolder(out, force=force, inputs=[p for p in (memorized, heldout) if p is not None])
        probes = ProbeSet.load(probe)
        seed_everything(seed)
        mem = _texts(memorized)
        if mem is None:
            canaries = _tiny_canaries(model)
            if canaries is not None:
                mem = canaries[canaries["repeats"] > 0]["text"].tolist()
            else:
                mem = default_texts(model, "memorization", seed=seed)[0]
        held = _texts(heldout) or fresh_texts(40, seed=seed + 1)
        backend = open_backend(model, device=device)
        result = suppress(
            backend,
            probes,
            mem,
            held,
            layers=layer_list,
            site=site,
            alphas=alpha_list,
            prefix=prefix,
            suffix=suffix,
            ppl_budget=ppl_budget,
            direction=direction,
            windows=windows,
            batch_size=batch_size,
            progress=not quiet,
        )
        options = {
            "model": model,
            "probe": str(probe),
            "layers": layers,
            "site": result.site,
            "alphas": alpha_list,
            "direction": direction,
            "windows": windows,
            "prefix": prefix,
            "suffix": suffix,
            "ppl_budget": ppl_budget,
            "batch_size": batch_size,
            "device": device,
        }
        return run.finish(
            result,
            command="rote llm suppress",
            options=options,
            seed=seed,
            quiet=quiet,
            inputs={"memorized": memorized, "heldout": heldout, "probe": Path(probe) / "probes.npz"},
            **suppress_outputs(result),
        )

    @app.command("probe-demo")
    def probe_demo_cmd(
        out: Path = typer.Option(..., "--out", help="Run folder: model/, probe files, results.json, report."),
        steps: int = typer.Option(800, "--steps", help="Training steps of the tiny GPT."),
        per_count: int = typer.Option(30, "--per-count", help="Planted canaries (100 copies each) and unseen ones."),
        max_texts: int = typer.Option(1500, "--max-texts", help="KJV verses to train on."),
        layers: int = typer.Option(2, "--layers", help="Transformer layers of the tiny GPT."),
        min_run: int = typer.Option(16, "--min-run", help="Memorized: inside a run of >= this many greedy hits."),
        alphas: str = typer.Option("0,0.25,0.5,1,2", "--alphas", help="Suppression strengths."),
        direction: str = typer.Option("mean_diff", "--direction", help="probe or mean_diff."),
        seed: int = typer.Option(0, "--seed", help="Seed of the canaries, training, folds and matching."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    ) -> int:
        """Plant canaries in KJV verses, train a tiny GPT, probe its activations and suppress extraction, in one run
        (a few minutes on a laptop CPU)."""
        from rote.core.runs import RunFolder, seed_everything
        from rote.llm.probes import probe_demo
        from rote.llm.probes_report import demo_outputs

        demo_kw = _demo_options(steps, per_count, max_texts, layers, min_run, alphas, direction, device)
        alpha_list = demo_kw["alphas"]
        run = RunFolder(out, force=force)
        seed_everything(seed)
        probe, curve, train, probes = probe_demo(run.file("model"), **demo_kw, seed=seed, progress=not quiet)
        probes.save(run.file("."))
        options = {
            "steps": steps,
            "per_count": per_count,
            "max_texts": max_texts,
            "layers": layers,
            "min_run": min_run,
            "alphas": alpha_list,
            "direction": direction,
            "device": device,
        }
        outputs = demo_outputs(probe, curve, train)
        results = {
            "layers": probe.layers,
            "baselines": probe.baselines,
            "baseline_intervals": probe.baseline_intervals,
            "best": probe.best,
            "n_positive": probe.n_positive,
            "n_negative": probe.n_negative,
            "curve": curve.curve,
            "site": curve.site,
            "unmodified": curve.baseline,
            "best_tradeoff": curve.best_tradeoff,
            "train": train,
        }
        return run.finish(
            results,
            command="rote llm probe-demo",
            options=options,
            seed=seed,
            quiet=quiet,
            summary=f"{probe.summary()}\n{curve.summary()}",
            **outputs,
        )

    @app.command("probe-grid")
    def probe_grid_cmd(
        out: Path = typer.Option(
            ..., "--out", help="Run folder: one probe demo per seed under OUT/grid, summary on top."
        ),
        seeds: list[str] = typer.Option(["0,1,2"], "--seeds", help="Seeds (one whole demo each), e.g. 0,1,2."),
        steps: int = typer.Option(800, "--steps", help="Training steps of each tiny GPT."),
        per_count: int = typer.Option(30, "--per-count", help="Planted canaries (100 copies each) and unseen ones."),
        max_texts: int = typer.Option(1500, "--max-texts", help="KJV verses to train on."),
        layers: int = typer.Option(2, "--layers", help="Transformer layers of the tiny GPT."),
        min_run: int = typer.Option(16, "--min-run", help="Memorized: inside a run of >= this many greedy hits."),
        alphas: str = typer.Option("0,0.25,0.5,1,2", "--alphas", help="Suppression strengths."),
        direction: str = typer.Option("mean_diff", "--direction", help="probe or mean_diff."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        workers: int = typer.Option(1, "--workers", help="Seeds run in parallel (local processes)."),
        ray: Optional[str] = typer.Option(None, "--ray", help="'local' or a Ray cluster address: seeds as Ray tasks."),
        force: bool = typer.Option(False, "--force", help="Replace the summary of a finished grid (seeds are reused)."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    ) -> int:
        """`probe-demo` once per seed through rote.sweep (processes or Ray): best-layer probe AUC, loss and min-k%
        AUCs, extraction before and after suppression, as means over seeds with t-intervals. Rerunning resumes."""
        from rote.core.runs import RunFolder
        from rote.llm.probes_grid import probe_grid
        from rote.llm.probes_report import grid_outputs
        from rote.sweep import axis_values

        seed_list = axis_values(seeds, int, "seeds")
        demo_kw = _demo_options(steps, per_count, max_texts, layers, min_run, alphas, direction, device)
        if workers < 1:
            raise ConfigError(f"`workers` must be at least 1, got {workers}")
        run = RunFolder(out, force=force)
        options = {"seeds": seed_list, **demo_kw, "workers": workers, "ray": ray}
        run.write_config("rote llm probe-grid", options)  # before the grid: an interrupted one resumes
        result, sweep = probe_grid(run.path, seed_list, workers=workers, ray=ray, quiet=quiet, **demo_kw)
        return run.finish(
            result,
            command="rote llm probe-grid",
            options=options,
            quiet=quiet,
            sweeps=sweep,
            **grid_outputs(result),
        )
