"""`rote llm detect-dataset` and `rote llm memhunter-demo` (MemHunter), registered on the llm app."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rote.core.errors import ConfigError

MODEL_HELP = "Target model: a local Hugging Face folder, 'smollm2' or 'tiny:FOLDER' (needs token ids: no openai:)."


def _demo_options(
    texts: int,
    repeats: int,
    base_texts: int,
    steps: int,
    d_model: int,
    layers: int,
    sizes: str,
    repetitions: int,
    budget: int,
    search_budget: int,
    alpha: float,
    device: str,
) -> dict:
    """The demo's sizing options, checked, as `memhunter_demo` keywords (shared by memhunter-demo and -grid)."""
    from rote.core.device import resolve_device

    try:
        size_list = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--sizes {sizes!r}: expected comma-separated integers such as 5,10,20") from None
    if not 0 < alpha < 1:
        raise ConfigError(f"`alpha` must be in (0, 1), got {alpha}")
    if texts < 2:
        raise ConfigError(f"`texts` must be at least 2, got {texts}")
    resolve_device(device)
    return dict(
        n_texts=texts,
        repeats=repeats,
        base_texts=base_texts,
        steps=steps,
        d_model=d_model,
        layers=layers,
        sizes=size_list,
        repetitions=repetitions,
        budget=budget,
        search_budget=search_budget,
        alpha=alpha,
        device=device,
    )


def register(app: typer.Typer) -> None:
    """Add the MemHunter verbs to `app` (the `rote llm` typer app)."""

    @app.command("detect-dataset")
    def detect_dataset_cmd(
        model: str = typer.Option(..., "--model", help=MODEL_HELP),
        suspect: Path = typer.Option(
            ..., "--suspect", help="Texts suspected to be in the training data (.jsonl/.txt)."
        ),
        reference: Path = typer.Option(
            ..., "--reference", help="Known non-members from the same distribution (e.g. written after training)."
        ),
        out: Path = typer.Option(..., "--out", help="Run folder: config.json, results.json, rows.parquet, report."),
        generator: Optional[str] = typer.Option(
            None, "--generator", help="Prompt generator: a local model ('tiny:FOLDER', a Hugging Face folder)."
        ),
        generator_train: Optional[Path] = typer.Option(
            None,
            "--generator-train",
            help="Known members (disjoint from both sets) to train the generator on first; without it the generator "
            "is used as it is.",
        ),
        rounds: int = typer.Option(3, "--rounds", help="Generator training rounds (rejection sampling + fine-tuning)."),
        candidates: int = typer.Option(8, "--candidates", help="Prompts sampled per text and round (K)."),
        prompts: int = typer.Option(4, "--prompts", help="Generator prompts per scored text (greedy + sampled)."),
        prefix_tokens: int = typer.Option(32, "--prefix-tokens", help="Prefix length in target tokens."),
        suffix_tokens: int = typer.Option(32, "--suffix-tokens", help="Suffix length in target tokens."),
        prompt_tokens: int = typer.Option(16, "--prompt-tokens", help="Generated prompt length (generator tokens)."),
        placement: str = typer.Option("before", "--placement", help="Prompt before the prefix, or after it."),
        lam: float = typer.Option(0.1, "--lam", help="Weight of the generator's NLL of a prompt (readability)."),
        lr: float = typer.Option(3e-4, "--lr", help="Generator fine-tuning learning rate."),
        tau: float = typer.Option(0.5, "--tau", help="LCSS ratio at which a text counts as memorized."),
        alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the one-sided test."),
        test: str = typer.Option("mann-whitney", "--test", help="mann-whitney (default) or welch."),
        min_effect: float = typer.Option(0.3, "--min-effect", help="Cliff's delta the power analysis is for."),
        power: float = typer.Option(0.8, "--power", help="Power wanted; fewer texts than needed is warned."),
        text_field: str = typer.Option("text", "--text-field", help="JSONL field holding the text."),
        max_chars: int = typer.Option(100_000, "--max-chars", help="Longest accepted text in characters."),
        batch_size: int = typer.Option(64, "--batch-size", help="(text, prompt) pairs per forward pass."),
        seed: int = typer.Option(0, "--seed", help="Seed of prompt sampling and generator fine-tuning."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache of converted models."),
        force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    ) -> int:
        """Dataset-level memorization test (MemHunter): do the target's continuations of suspect texts match their
        true suffixes more than those of known non-members? One-sided Mann-Whitney U, Cliff's delta, power."""
        from rote.core.runs import RunFolder, progress_bar
        from rote.data.text import load_texts
        from rote.llm.backends.open import open_backend
        from rote.llm.memhunter import MemHunterConfig, detect_dataset
        from rote.llm.memhunter_report import detection_outputs

        if model.startswith("openai:") or (generator or "").startswith("openai:"):
            raise ConfigError(
                "--model/--generator openai:...: MemHunter needs token ids, greedy continuation and (for the "
                "generator) gradients; use a local model ('tiny:FOLDER', 'smollm2' or a Hugging Face folder)"
            )
        if generator_train is not None and generator is None:
            raise ConfigError("--generator-train needs --generator (the model to train)")
        for name, v, low in (("min_effect", min_effect, 0.0), ("power", power, 0.0)):
            if not low < v < 1:
                raise ConfigError(f"`{name}` must be in (0, 1), got {v}")
        if not 0 < alpha < 1:
            raise ConfigError(f"`alpha` must be in (0, 1), got {alpha}")
        cfg = MemHunterConfig(
            prefix_tokens=prefix_tokens,
            suffix_tokens=suffix_tokens,
            prompt_tokens=prompt_tokens,
            placement=placement,
            n_candidates=candidates,
            rounds=rounds,
            lam=lam,
            lr=lr,
            tau=tau,
            score_batch_size=batch_size,
        )
        if prompts < 1:
            raise ConfigError(f"`prompts` must be at least 1, got {prompts}")
        run = RunFolder(out, force=force, inputs=[suspect, reference, generator_train])
        sus = load_texts(suspect, field=text_field, max_chars=max_chars)
        ref = load_texts(reference, field=text_field, max_chars=max_chars)
        train = (
            None
            if generator_train is None
            else load_texts(generator_train, field=text_field, max_chars=max_chars)["text"].astype(str).tolist()
        )
        cache = None if cache_dir is None else str(cache_dir)
        target = open_backend(model, device=device, cache_dir=cache)
        gen = None if generator is None else open_backend(generator, device=device, cache_dir=cache)
        options = {
            "model": model,
            "model_info": target.describe(),
            "generator": generator,
            "generator_info": None if gen is None else gen.describe(),
            "suspect": str(suspect),
            "reference": str(reference),
            "generator_train": None if generator_train is None else str(generator_train),
            "memhunter": cfg.to_dict(),
            "prompts": prompts,
            "alpha": alpha,
            "test": test,
            "min_effect": min_effect,
            "power": power,
            "text_field": text_field,
            "max_chars": max_chars,
            "device": device,
        }
        n_rounds = rounds if (gen is not None and train is not None) else 0
        with progress_bar(n_rounds, "training the prompt generator", quiet=quiet or n_rounds == 0) as advance:
            result = detect_dataset(
                target,
                sus,
                ref,
                generator=gen,
                train_texts=train,
                config=cfg,
                n_prompts=prompts,
                alpha=alpha,
                test=test,
                min_effect=min_effect,
                target_power=power,
                seed=seed,
                checkpoint_dir=None if n_rounds == 0 else run.file("checkpoints"),
                progress=advance,
            )
        return run.finish(
            result,
            command="rote llm detect-dataset",
            options=options,
            inputs={"suspect": suspect, "reference": reference, "generator_train": generator_train},
            seed=seed,
            quiet=quiet,
            **detection_outputs(result, tau=tau),
        )

    @app.command("memhunter-demo")
    def memhunter_demo_cmd(
        out: Path = typer.Option(..., "--out", help="Run folder: the two tiny GPTs, generators, results, report."),
        texts: int = typer.Option(40, "--texts", help="Texts per pool (known, dataset, fresh)."),
        repeats: int = typer.Option(10, "--repeats", help="Copies of each dataset text in the 'with' model's data."),
        base_texts: int = typer.Option(300, "--base-texts", help="KJV verses both models train on."),
        steps: int = typer.Option(800, "--steps", help="Training steps per tiny GPT."),
        d_model: int = typer.Option(96, "--d-model", help="Tiny GPT width."),
        layers: int = typer.Option(2, "--layers", help="Tiny GPT layers."),
        sizes: str = typer.Option("5,10,20", "--sizes", help="Texts per set at which fpr/tpr are measured."),
        repetitions: int = typer.Option(200, "--repetitions", help="Tests per model and size (resampled sets)."),
        budget: int = typer.Option(4, "--budget", help="Target generations per text for the extraction comparison."),
        search_budget: int = typer.Option(
            16, "--search-budget", help="Prompts per text in the plug-in search comparison (> 4 warm starts)."
        ),
        rounds: int = typer.Option(2, "--rounds", help="Generator training rounds."),
        alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
        seed: int = typer.Option(0, "--seed", help="Seed of texts, training, prompts and resampling."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    ) -> int:
        """MemHunter with ground truth: tiny GPTs trained with and without a dataset; fpr and tpr of the test at
        alpha, and exact extraction by generator prompts against plain prefix prompting at the same budget."""
        import dataclasses

        from rote.core.runs import RunFolder
        from rote.llm.memhunter_demo import DEMO_CONFIG, memhunter_demo
        from rote.llm.memhunter_report import demo_outputs

        kw = _demo_options(
            texts, repeats, base_texts, steps, d_model, layers, sizes, repetitions, budget, search_budget, alpha, device
        )
        size_list = kw["sizes"]
        cfg = dataclasses.replace(DEMO_CONFIG, rounds=rounds)
        run = RunFolder(out, force=force)
        options = {
            "texts": texts,
            "repeats": repeats,
            "base_texts": base_texts,
            "steps": steps,
            "d_model": d_model,
            "layers": layers,
            "sizes": size_list,
            "repetitions": repetitions,
            "budget": budget,
            "search_budget": search_budget,
            "alpha": alpha,
            "memhunter": cfg.to_dict(),
            "device": device,
        }
        run.write_config("rote llm memhunter-demo", options, seed=seed)
        result = memhunter_demo(
            run.path,
            **kw,
            config=cfg,
            seed=seed,
            progress=not quiet,
        )
        return run.finish(
            result, command="rote llm memhunter-demo", options=options, seed=seed, quiet=quiet, **demo_outputs(result)
        )

    @app.command("memhunter-grid")
    def memhunter_grid_cmd(
        out: Path = typer.Option(
            ..., "--out", help="Run folder: one demo per seed under OUT/grid, the summary on top."
        ),
        seeds: list[str] = typer.Option(["0,1,2"], "--seeds", help="Seeds (one whole demo each), e.g. 0,1,2,3."),
        texts: int = typer.Option(40, "--texts", help="Texts per pool (known, dataset, fresh)."),
        repeats: int = typer.Option(10, "--repeats", help="Copies of each dataset text in the 'with' model's data."),
        base_texts: int = typer.Option(300, "--base-texts", help="KJV verses both models train on."),
        steps: int = typer.Option(800, "--steps", help="Training steps per tiny GPT."),
        d_model: int = typer.Option(96, "--d-model", help="Tiny GPT width."),
        layers: int = typer.Option(2, "--layers", help="Tiny GPT layers."),
        sizes: str = typer.Option("5,10,20", "--sizes", help="Texts per set at which fpr/tpr are measured."),
        repetitions: int = typer.Option(200, "--repetitions", help="Tests per model and size (resampled sets)."),
        budget: int = typer.Option(4, "--budget", help="Target generations per text for the extraction comparison."),
        search_budget: int = typer.Option(16, "--search-budget", help="Prompts per text in the plug-in search."),
        rounds: int = typer.Option(2, "--rounds", help="Generator training rounds."),
        alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        workers: int = typer.Option(1, "--workers", help="Seeds run in parallel (local processes)."),
        ray: Optional[str] = typer.Option(None, "--ray", help="'local' or a Ray cluster address: seeds as Ray tasks."),
        force: bool = typer.Option(False, "--force", help="Replace the summary of a finished grid (seeds are reused)."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
    ) -> int:
        """`memhunter-demo` once per seed through rote.sweep (processes or Ray), then tpr, fpr and extraction by
        generator and by prefix prompting as means over seeds with t-intervals. Rerunning resumes."""
        from rote.core.runs import RunFolder
        from rote.llm.memhunter_demo import memhunter_grid
        from rote.llm.memhunter_report import grid_outputs
        from rote.sweep import axis_values

        seed_list = axis_values(seeds, int, "seeds")
        if workers < 1:
            raise ConfigError(f"`workers` must be at least 1, got {workers}")
        demo_kw = _demo_options(
            texts, repeats, base_texts, steps, d_model, layers, sizes, repetitions, budget, search_budget, alpha, device
        )
        demo_kw["rounds"] = rounds
        run = RunFolder(out, force=force)
        options = {"seeds": seed_list, **demo_kw, "workers": workers, "ray": ray}
        run.write_config("rote llm memhunter-grid", options)  # before the grid: an interrupted one resumes
        result, sweep = memhunter_grid(run.path, seed_list, workers=workers, ray=ray, quiet=quiet, **demo_kw)
        return run.finish(
            result,
            command="rote llm memhunter-grid",
            options=options,
            quiet=quiet,
            sweeps=sweep,
            **grid_outputs(result),
        )
