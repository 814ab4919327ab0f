"""`rote llm` commands: extraction, membership inference and the tiny-GPT canary study.

Each command parses options, calls one library function in `rote.llm`, writes the run folder (config.json,
results.json, Parquet tables, PNG plots, report.html) and prints a short summary. Secrets never reach the run
folder: an HTTP model's API key is read from the environment variable named by --api-key-env, and only that name
is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from rote.core.errors import ConfigError

app = typer.Typer(
    help="Language models: verbatim extraction, membership inference, tiny GPT with planted canaries.",
    no_args_is_help=True,
)


def _ints(value: str, option: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {value!r}: expected comma-separated integers such as 25,50,100") from None
    if not out or any(v < 1 for v in out):
        raise ConfigError(f"{option} {value!r}: expected positive integers such as 25,50,100")
    return out


def _floats(value: str, option: str) -> list[float]:
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {value!r}: expected comma-separated numbers such as 0.001,0.01") from None
    if not out or any(not 0 < v < 1 for v in out):
        raise ConfigError(f"{option} {value!r}: false positive rates must lie in (0, 1)")
    return out


def _check(name: str, value: float, low: float, *, strict: bool = False) -> None:
    if value < low or (strict and value == low):
        raise ConfigError(f"`{name}` must be {'>' if strict else '>='} {low:g}, got {value:g}")


def _open(
    spec: str,
    device: str,
    cache_dir: Optional[Path],
    base_url: Optional[str],
    api_key_env: Optional[str],
    timeout: Optional[float] = None,
    max_retries: Optional[int] = None,
    *,
    tokenizer: Optional[str] = None,
    concurrency: Optional[int] = None,
    requests_per_second: Optional[float] = None,
    max_tokens_field: Optional[str] = None,
    prompt_logprobs: bool = False,
):
    from rote.llm.backends.open import open_backend

    kw: dict[str, Any] = {}
    http = {
        "--base-url": base_url,
        "--api-key-env": api_key_env,
        "--tokenizer": tokenizer,
        "--concurrency": concurrency,
        "--requests-per-second": requests_per_second,
        "--max-tokens-field": max_tokens_field,
    }
    if spec.startswith("openai:"):
        if base_url:
            kw["base_url"] = base_url
        if api_key_env:
            kw["api_key_env"] = api_key_env
        if timeout is not None:
            kw["timeout"] = timeout
        if max_retries is not None:
            kw["max_retries"] = max_retries
        if concurrency is not None:
            kw["concurrency"] = concurrency
        if requests_per_second is not None:
            kw["requests_per_second"] = requests_per_second
        if max_tokens_field is not None:
            kw["max_tokens_field"] = max_tokens_field
        if prompt_logprobs:
            kw["prompt_logprobs"] = True
        if tokenizer:
            kw["tokenizer"] = open_backend(
                tokenizer, device="cpu", cache_dir=None if cache_dir is None else str(cache_dir)
            )
    else:
        given = [flag for flag, v in http.items() if v]
        if given:
            raise ConfigError(f"{', '.join(given)} apply to 'openai:MODEL' models only")
    return open_backend(spec, device=device, cache_dir=None if cache_dir is None else str(cache_dir), **kw)


def _model_options(spec: str, backend: Any, base_url: Optional[str], api_key_env: Optional[str]) -> dict[str, Any]:
    """What config.json records about a model: its spec and description, the key's variable *name*, never a key."""
    return {"model": spec, "model_info": backend.describe(), "base_url": base_url, "api_key_env": api_key_env}


MODEL_HELP = "Model: a local Hugging Face folder, 'smollm2', 'tiny:FOLDER' (rote llm train-tiny) or 'openai:NAME'."
BOS_HELP = (
    "What goes before each text's first token: auto (what the tokenizer itself adds, as MIMIR), on (the BOS token), "
    "off. Recorded in config.json."
)
TOKENIZER_HELP = (
    "openai: models: a local Hugging Face folder (or 'smollm2') with the served model's tokenizer: prefixes cut in "
    "tokens, plain continuation and scoring through /v1/completions."
)
KEY_HELP = "openai: models: NAME of the environment variable holding the API key ('none' for servers without keys)."


@app.command("extract")
def extract_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    data: Path = typer.Option(
        ...,
        "--data",
        help='Texts: .jsonl ({"text": ...} per line, optional id and other '
        "fields) or .txt (texts separated by blank lines).",
    ),
    out: Path = typer.Option(..., "--out", help="Run folder: config.json, results.json, Parquet, plots, report.html."),
    prefix_tokens: str = typer.Option(
        "50", "--prefix-tokens", help="Prefix length(s) k in tokens, comma-separated (e.g. 25,50,100,200,400)."
    ),
    suffix_tokens: Optional[int] = typer.Option(
        None, "--suffix-tokens", help="Suffix length in tokens (Carlini et al.: 50; default 50). Not with --prompted."
    ),
    prompted: bool = typer.Option(
        False,
        "--prompted",
        help="Copyright-study protocol: prompt templates, answer vs rest of text, refusals and output filtering "
        "counted. Without it: plain greedy continuation (openai: models through /v1/completions, with --tokenizer).",
    ),
    templates: Optional[str] = typer.Option(
        None,
        "--templates",
        help="With --prompted: plain, conversation, roleplay, none (bare prefix); default all three templates.",
    ),
    max_new_tokens: Optional[int] = typer.Option(
        None, "--max-new-tokens", help="With --prompted: answer length in tokens (default 200)."
    ),
    strip_echo: Optional[int] = typer.Option(
        None,
        "--strip-echo",
        help="With --prompted: leave out a restatement of the prefix at the start of an answer (at least this many "
        "characters; default 20, 0 = off). Copying anywhere else always counts.",
    ),
    group: Optional[str] = typer.Option(None, "--group", help="A field of --data to break results down by."),
    compare: Optional[str] = typer.Option(
        None,
        "--compare",
        help="Two values of --group to test against each other, e.g. exhibit,control (default: the two groups when "
        "there are two). Mann-Whitney, Welch, Cliff's delta.",
    ),
    text_field: str = typer.Option("text", "--text-field", help="JSONL field holding the text."),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Longest accepted text in characters."),
    n_samples: Optional[str] = typer.Option(
        None, "--n-samples", help="n for the risk 1-(1-p)^n of probabilistic extraction (default 1,10,100,1000)."
    ),
    n_sampled: Optional[int] = typer.Option(
        None, "--n-sampled", help="Also draw this many sampled continuations per text and prefix, one seed each."
    ),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Temperature of --n-sampled (default 1)."),
    bos: str = typer.Option("auto", "--bos", help=BOS_HELP),
    batch_size: int = typer.Option(32, "--batch-size", help="Texts per generation batch."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates for the copied-span intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the samples and the bootstrap (greedy generation is exact)."),
    top: int = typer.Option(10, "--top", help="Most copied spans shown in report.html."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (local models)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache of converted models and HTTP answers."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai: models: endpoint URL."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help=KEY_HELP),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help=TOKENIZER_HELP),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help="openai: models: requests in flight."),
    requests_per_second: Optional[float] = typer.Option(
        None, "--requests-per-second", help="openai: models: client-side rate limit."
    ),
    max_tokens_field: Optional[str] = typer.Option(
        None, "--max-tokens-field", help="openai: models: max_tokens (default) or max_completion_tokens."
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="openai: models: seconds per request."),
    max_retries: int = typer.Option(
        5,
        "--max-retries",
        help="openai: models: retries per request (answers are cached, so a failed study resumes where it stopped).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
) -> int:
    """Verbatim extraction: greedy k-extractability, Pythia score and probabilistic extraction (or --prompted)."""
    from rote.core.runs import RunFolder, progress_bar
    from rote.data.text import load_texts
    from rote.llm.backends.base import BOS_CHOICES
    from rote.llm.extraction import DEFAULT_N_SAMPLES, extract, prompted_extraction
    from rote.llm.report import extraction_outputs, prompted_outputs

    ks = _ints(prefix_tokens, "--prefix-tokens")
    # never change the protocol silently: options of the other protocol are an error, not ignored
    plain_only = {"--suffix-tokens": suffix_tokens, "--n-samples": n_samples, "--n-sampled": n_sampled}
    plain_only["--temperature"] = temperature
    prompted_only = {"--templates": templates, "--max-new-tokens": max_new_tokens, "--strip-echo": strip_echo}
    wrong = [f for f, v in (plain_only if prompted else prompted_only).items() if v is not None]
    if wrong:
        raise ConfigError(
            f"{', '.join(wrong)} appl{'ies' if len(wrong) == 1 else 'y'} only "
            f"{'without' if prompted else 'with'} --prompted"
        )
    if bos not in BOS_CHOICES:
        raise ConfigError(f"`bos` must be one of {', '.join(BOS_CHOICES)}, got {bos!r}")
    _check("batch_size", batch_size, 1)
    _check("n_boot", n_boot, 0)
    _check("top", top, 0)
    _check("timeout", timeout, 0, strict=True)
    _check("max_retries", max_retries, 0)
    if n_sampled is not None:
        _check("n_sampled", n_sampled, 0)
    if temperature is not None:
        _check("temperature", temperature, 0, strict=True)
    if max_new_tokens is not None:
        _check("max_new_tokens", max_new_tokens, 1)
    if strip_echo is not None:
        _check("strip_echo", strip_echo, 0)
    if suffix_tokens is not None:
        _check("suffix_tokens", suffix_tokens, 1)
    if concurrency is not None:
        _check("concurrency", concurrency, 1)
    ns = _ints(n_samples, "--n-samples") if n_samples is not None else list(DEFAULT_N_SAMPLES)
    pair = [c.strip() for c in compare.split(",") if c.strip()] if compare else None
    if pair is not None and (len(pair) != 2 or group is None):
        raise ConfigError("--compare takes two values of --group, e.g. --group set --compare famous,fresh")
    if model.startswith("openai:") and not prompted and not tokenizer:
        raise ConfigError(
            "--model openai:... without --prompted continues prefixes as plain text through /v1/completions, which "
            "needs the served model's tokenizer to cut prefixes and suffixes in tokens: pass --tokenizer "
            "(a Hugging Face folder, or smollm2), or use --prompted for the prompted protocol"
        )
    run = RunFolder(out, force=force, inputs=[data])
    texts = load_texts(data, field=text_field, max_chars=max_chars)
    if group is not None and group not in texts.columns:
        raise ConfigError(f"--group {group!r}: {data} has no such field (fields: {', '.join(texts.columns)})")
    backend = _open(
        model,
        device,
        cache_dir,
        base_url,
        api_key_env,
        timeout,
        max_retries,
        tokenizer=tokenizer,
        concurrency=concurrency,
        requests_per_second=requests_per_second,
        max_tokens_field=max_tokens_field,
    )
    tpl = [t.strip() for t in (templates or "plain,conversation,roleplay").split(",") if t.strip()]
    options = {
        **_model_options(model, backend, base_url, api_key_env),
        "tokenizer": tokenizer,
        "data": str(data),
        "protocol": "prompted" if prompted else "continuation",
        "prompted": prompted,
        "prefix_tokens": ks,
        "bos": bos,
        "group": group,
        "compare": pair,
        "text_field": text_field,
        "max_chars": max_chars,
        "batch_size": batch_size,
        "n_boot": n_boot,
        "top": top,
        "device": device,
        "timeout": timeout,
        "max_retries": max_retries,
    }
    if prompted:
        options.update(
            templates=tpl,
            max_new_tokens=max_new_tokens or 200,
            strip_echo=20 if strip_echo is None else strip_echo,
            prefix_unit="tokens" if backend.supports_token_ids else "words",
        )
        n_jobs = len(texts) * len(ks) * len(tpl)
        with progress_bar(n_jobs, "prompting", quiet=quiet) as advance:
            result = prompted_extraction(
                backend,
                texts,
                prefix_tokens=ks,
                templates=tpl,
                max_new_tokens=options["max_new_tokens"],
                group=group,
                compare=pair,
                strip_echo=options["strip_echo"],
                n_boot=n_boot,
                seed=seed,
                batch_size=batch_size,
                progress=advance,
            )
        outputs = prompted_outputs(result, top=top)
    else:
        options.update(
            suffix_tokens=suffix_tokens or 50,
            n_samples=ns,
            n_sampled=n_sampled or 0,
            temperature=1.0 if temperature is None else temperature,
        )
        with progress_bar(len(texts) * len(ks), "extracting", quiet=quiet) as advance:
            result = extract(
                backend,
                texts,
                prefix_tokens=ks,
                suffix_tokens=options["suffix_tokens"],
                n_samples=ns,
                n_sampled=options["n_sampled"],
                temperature=options["temperature"],
                bos=bos,
                group=group,
                compare=pair,
                batch_size=batch_size,
                n_boot=n_boot,
                seed=seed,
                progress=advance,
            )
        outputs = extraction_outputs(result, top=top)
    return run.finish(
        result, command="rote llm extract", options=options, inputs={"data": data}, seed=seed, quiet=quiet, **outputs
    )


@app.command("membership")
def membership_cmd(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    members: Path = typer.Option(..., "--members", help="Texts believed to be in the training data (.jsonl/.txt)."),
    nonmembers: Path = typer.Option(..., "--nonmembers", help="Texts known not to be (e.g. written after training)."),
    out: Path = typer.Option(..., "--out", help="Run folder."),
    reference_model: Optional[str] = typer.Option(
        None, "--reference-model", help="Reference model with the same tokenizer (reference attack)."
    ),
    k: float = typer.Option(0.2, "--k", help="Fraction of lowest-probability tokens for min-k%% and min-k%%++."),
    bos: str = typer.Option("auto", "--bos", help=BOS_HELP),
    recall_shots: int = typer.Option(
        0,
        "--recall-shots",
        help="ReCaLL: condition on the first N non-members (then left out of every attack's evaluation); 0 = off.",
    ),
    neighbours: int = typer.Option(
        0, "--neighbours", help="Neighbourhood attack: perturbed copies per text (0 = off; seeded by --seed)."
    ),
    fprs: str = typer.Option("0.001,0.01,0.1", "--fprs", help="False positive rates for TPR at low FPR."),
    text_field: str = typer.Option("text", "--text-field", help="JSONL field holding the text."),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Longest accepted text in characters."),
    batch_size: int = typer.Option(16, "--batch-size", help="Texts per scoring batch."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates for the TPR intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and the neighbours."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache of converted models and HTTP answers."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai: models: endpoint URL."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help=KEY_HELP),
    tokenizer: Optional[str] = typer.Option(
        None, "--tokenizer", help="openai: models (required): the served model's tokenizer, to score through echo."
    ),
    prompt_logprobs: bool = typer.Option(
        False, "--prompt-logprobs", help="openai: models: score with vLLM's prompt_logprobs instead of echo."
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="openai: models: seconds per request."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
) -> int:
    """Membership inference on texts: loss, zlib, min-k%, min-k%++, reference, ReCaLL and neighbourhood attacks with
    AUC (DeLong intervals), TPR at low FPR, and a distribution-shift check of the two sets."""
    from rote.core.runs import RunFolder, progress_bar
    from rote.data.text import load_texts
    from rote.llm.backends.base import BOS_CHOICES
    from rote.llm.membership import membership_inference
    from rote.llm.report import membership_outputs

    fpr_list = _floats(fprs, "--fprs")
    if bos not in BOS_CHOICES:
        raise ConfigError(f"`bos` must be one of {', '.join(BOS_CHOICES)}, got {bos!r}")
    _check("batch_size", batch_size, 1)
    _check("n_boot", n_boot, 0)
    _check("recall_shots", recall_shots, 0)
    _check("neighbours", neighbours, 0)
    _check("timeout", timeout, 0, strict=True)
    if not 0 < k <= 1:
        raise ConfigError(f"`k` (fraction of lowest-probability tokens) must be in (0, 1], got {k}")
    if model.startswith("openai:") and not tokenizer:
        raise ConfigError(
            "--model openai:... scores texts through /v1/completions echo + logprobs, which needs the served "
            "model's tokenizer: pass --tokenizer (a Hugging Face folder, or smollm2)"
        )
    run = RunFolder(out, force=force, inputs=[members, nonmembers])
    mem = load_texts(members, field=text_field, max_chars=max_chars)
    non = load_texts(nonmembers, field=text_field, max_chars=max_chars)
    backend = _open(
        model, device, cache_dir, base_url, api_key_env, timeout, tokenizer=tokenizer, prompt_logprobs=prompt_logprobs
    )
    ref = _open(reference_model, device, cache_dir, None, None) if reference_model else None
    if ref is not None:
        from rote.llm.membership import check_same_tokenizer

        check_same_tokenizer(backend, ref)
    options = {
        **_model_options(model, backend, base_url, api_key_env),
        "tokenizer": tokenizer,
        "reference_model": reference_model,
        "reference_info": None if ref is None else ref.describe(),
        "members": str(members),
        "nonmembers": str(nonmembers),
        "k": k,
        "bos": bos,
        "recall_shots": recall_shots,
        "neighbours": neighbours,
        "fprs": fpr_list,
        "text_field": text_field,
        "max_chars": max_chars,
        "batch_size": batch_size,
        "n_boot": n_boot,
        "device": device,
    }
    with progress_bar(len(mem) + len(non) - recall_shots, "scoring texts", quiet=quiet) as advance:
        result = membership_inference(
            backend,
            mem,
            non,
            reference=ref,
            k=k,
            bos=bos,
            recall_shots=recall_shots,
            n_neighbours=neighbours,
            fprs=fpr_list,
            n_boot=n_boot,
            seed=seed,
            batch_size=batch_size,
            progress=advance,
        )
    return run.finish(
        result,
        command="rote llm membership",
        options=options,
        seed=seed,
        quiet=quiet,
        inputs={"members": members, "nonmembers": nonmembers},
        **membership_outputs(result),
    )


@app.command("train-tiny")
def train_tiny_cmd(
    out: Path = typer.Option(..., "--out", help="Run folder: model.pt, checkpoints/, canaries.jsonl, results, report."),
    corpus: str = typer.Option("kjv", "--corpus", help="'kjv' (Debian's bible-kjv package) or a .jsonl/.txt file."),
    canaries: str = typer.Option("1,10,100", "--canaries", help="Repeat counts of the planted canaries."),
    per_count: int = typer.Option(10, "--per-count", help="Canaries per repeat count (and unseen ones)."),
    max_texts: int = typer.Option(2000, "--max-texts", help="Use the first N corpus texts (KJV: verses); 0 = all."),
    steps: int = typer.Option(1000, "--steps", help="Optimizer steps."),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per step."),
    block_size: int = typer.Option(128, "--block-size", help="Context length in bytes."),
    layers: int = typer.Option(2, "--layers", help="Transformer layers."),
    d_model: int = typer.Option(128, "--d-model", help="Width (embedding size)."),
    heads: int = typer.Option(4, "--heads", help="Attention heads."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate."),
    prefix_tokens: str = typer.Option("10,25,50", "--prefix-tokens", help="Prefix lengths (bytes) for extraction."),
    suffix_tokens: int = typer.Option(50, "--suffix-tokens", help="Suffix length (bytes) for extraction."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates for intervals."),
    checkpoint_every: int = typer.Option(
        500, "--checkpoint-every", help="Steps between full training-state checkpoints (resume point)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of canaries, data order, initialization and bootstrap."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the results of a finished run in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
) -> int:
    """Train rote's tiny GPT on a corpus with planted canaries, then measure their extraction and membership."""
    from rote.core.runs import RunFolder, seed_everything
    from rote.data.text import load_kjv, load_texts, write_texts
    from rote.llm.corpus import parse_repeats, plant_canaries
    from rote.llm.results import evaluate_canaries
    from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, load_model, train_tiny_gpt
    from rote.llm.report import canary_outputs

    from rote.core.device import resolve_device

    repeats = parse_repeats(canaries)
    ks = _ints(prefix_tokens, "--prefix-tokens")
    if max_texts < 0:
        raise ConfigError(f"--max-texts must be >= 0, got {max_texts}")
    for name, v in (("steps", steps), ("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
        _check(name, v, 1)
    _check("n_boot", n_boot, 0)
    _check("suffix_tokens", suffix_tokens, 1)
    _check("per_count", per_count, 1)
    resolve_device(device)  # a GPU asked for on a machine without one: one line, before any work
    if max(ks) + suffix_tokens > block_size:
        raise ConfigError(
            f"--prefix-tokens {max(ks)} + --suffix-tokens {suffix_tokens} exceed --block-size {block_size}: the "
            "extraction after training could not run; use shorter prefixes/suffixes or a longer block"
        )
    corpus_path = None if corpus == "kjv" else Path(corpus)
    run = RunFolder(out, force=force, inputs=[corpus_path] if corpus_path else [])
    seed_everything(seed)
    base = load_kjv() if corpus_path is None else load_texts(corpus_path)
    texts = base["text"].astype(str).tolist()
    texts = texts[:max_texts] if max_texts else texts
    planted = plant_canaries(texts, repeats=repeats, per_count=per_count, seed=seed)
    write_texts(
        run.file("canaries.jsonl"),
        planted.canaries["text"].tolist(),
        ids=planted.canaries["id"].tolist(),
        extra={"repeats": planted.canaries["repeats"].tolist(), "member": planted.canaries["member"].tolist()},
    )
    cfg = TinyGPTConfig(block_size=block_size, n_layer=layers, n_head=heads, n_embd=d_model)
    trained = train_tiny_gpt(
        planted.texts,
        cfg,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        out_dir=run.path,
        device=device,
        checkpoint_every=checkpoint_every,
        progress=not quiet,
    )
    backend = TinyGPTBackend(load_model(run.path / "model.pt", device), name=f"tinygpt:{run.path.name}", device=device)
    study = evaluate_canaries(
        backend, planted.canaries, prefix_tokens=ks, suffix_tokens=suffix_tokens, n_boot=n_boot, seed=seed
    )
    train = {
        "n_params": trained.n_params,
        "steps": trained.steps,
        "final_loss": trained.final_loss,
        "n_tokens": trained.n_tokens,
        "seconds": round(trained.seconds, 1),
        "resumed_from": trained.resumed_from,
        "n_corpus_texts": len(texts),
        "repeats": list(repeats),
        "per_count": per_count,
    }
    options = {
        "corpus": corpus,
        "canaries": list(repeats),
        "per_count": per_count,
        "max_texts": max_texts,
        "steps": steps,
        "batch_size": batch_size,
        "block_size": block_size,
        "layers": layers,
        "d_model": d_model,
        "heads": heads,
        "lr": lr,
        "prefix_tokens": ks,
        "suffix_tokens": suffix_tokens,
        "n_boot": n_boot,
        "checkpoint_every": checkpoint_every,
        "device": device,
    }
    summary = (
        f"trained {trained.n_params:,} parameters for {trained.steps:,} steps in {trained.seconds:.0f} s "
        f"(final loss {trained.final_loss:.3f} nats/byte)\n{study.summary()}\nmodel: tiny:{run.path}"
    )
    return run.finish(
        study,
        command="rote llm train-tiny",
        options=options,
        seed=seed,
        quiet=quiet,
        inputs={"corpus": corpus_path} if corpus_path else None,
        summary=summary,
        **canary_outputs(study, train=train),
    )


@app.command("sample-texts")
def sample_texts_cmd(
    out: Path = typer.Option(..., "--out", help="JSONL file to write (id, text, set, kind)."),
    famous: bool = typer.Option(True, "--famous/--no-famous", help="Include the shipped famous public-domain texts."),
    fresh: int = typer.Option(24, "--fresh", help="Number of fresh texts (templates with invented 2026+ facts)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fresh texts."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing."),
) -> None:
    """Write famous public-domain passages (set "famous") and fresh template texts (set "fresh") as JSONL.

    The fresh texts carry invented names, towns and 2026+ dates, so no pretrained model has seen them: non-members
    for `rote llm membership`, or a comparison group for `rote llm extract --group set`.
    """
    from rote.data.text import write_texts
    from rote.llm.corpus import famous_texts, fresh_texts

    if out.exists() and not force:
        raise ConfigError(f"--out {out}: exists; choose another path or pass --force")
    ids, texts, sets, kinds = [], [], [], []
    if famous:
        f = famous_texts()
        ids += f["id"].tolist()
        texts += f["text"].tolist()
        sets += ["famous"] * len(f)
        kinds += f["kind"].tolist()
    new = fresh_texts(fresh, seed=seed)
    ids += [f"fresh-{i:03d}" for i in range(len(new))]
    texts += new
    sets += ["fresh"] * len(new)
    kinds += ["fresh"] * len(new)
    if not texts:
        raise ConfigError("nothing to write: pass --famous or --fresh N with N > 0")
    write_texts(out, texts, ids=ids, extra={"set": sets, "kind": kinds})
    if not quiet:
        print(f"{len(texts)} texts ({sets.count('famous')} famous, {sets.count('fresh')} fresh): {out}")


# The MemHunter and probe verbs live in their own modules; they add their commands to this app.
from rote.llm.memhunter_cli import register as _register_memhunter  # noqa: E402
from rote.llm.probes_cli import register as _register_probes  # noqa: E402

_register_memhunter(app)
_register_probes(app)
