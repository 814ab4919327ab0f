"""Local Hugging Face causal language models behind the `Backend` interface.

The model is loaded from a folder on disk only (`local_files_only=True`), so nothing is fetched from a hub. Scoring
and generation (left padding, attention mask, position ids, KV cache, greedy or seeded sampling) come from
`TorchLMBackend`; this module only adapts the Hugging Face forward call and tokenizer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rote.core.device import resolve_device
from rote.core.errors import BackendError
from rote.llm.backends.base import Prompt, check_chat, vocabulary_fingerprint
from rote.llm.backends.torch_lm import TorchLMBackend


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-load progress bars (rote draws its own); restores the previous setting."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _added_start_ids(tok: Any) -> tuple[int, ...]:
    """The special ids the tokenizer itself puts before a text (its post-processor, e.g. Llama's BOS; nothing for
    GPT-2 or SmolLM2): what MIMIR scores, since it calls the tokenizer with its defaults."""
    plain = list(tok("a b", add_special_tokens=False)["input_ids"])
    full = list(tok("a b", add_special_tokens=True)["input_ids"])
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return tuple(int(t) for t in full[:i])
    return ()


class HFBackend(TorchLMBackend):
    """A Hugging Face causal LM from a local folder (config.json, weights, tokenizer files).

    dtype: "float32" (default; reproducible on CPU), "bfloat16" or "float16" (GPU).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        device: str = "cpu",
        name: str | None = None,
        dtype: str = "float32",
        refusal_phrases: tuple[str, ...] | None = None,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = Path(path).expanduser()
        self.device = resolve_device(device)
        if dtype not in ("float32", "bfloat16", "float16"):
            raise BackendError(f"dtype={dtype!r}: use 'float32', 'bfloat16' or 'float16'")
        try:
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                self.model = AutoModelForCausalLM.from_pretrained(
                    self.path, local_files_only=True, dtype=getattr(torch, dtype)
                )
        except Exception as exc:  # noqa: BLE001  a user's folder that cannot be read is bad input, whatever the reason
            # (pickled weights refused by weights_only loading, garbage safetensors, a bad config or tokenizer)
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            first = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
            raise BackendError(
                f"{self.path}: cannot load a causal language model and tokenizer from this folder "
                f"({first}); pass a folder saved with save_pretrained"
            ) from None
        self.model.to(self.device).eval()
        self.name = name or self.path.name
        cfg = self.model.config
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self.max_length = getattr(cfg, "max_position_embeddings", None)
        tok = self.tokenizer
        self.eos_token_id = tok.eos_token_id
        self.bos_token_id = tok.bos_token_id
        self.auto_start_ids = _added_start_ids(tok)
        self.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        if refusal_phrases is not None:
            self.refusal_phrases = tuple(refusal_phrases)
        vocab = tok.get_vocab()  # token string -> id, added tokens included
        by_id = [""] * (max(vocab.values()) + 1)
        for t, i in vocab.items():
            by_id[i] = t
        self.tokenizer_fingerprint = vocabulary_fingerprint(by_id)

    def encode(self, texts: list[str]) -> list[list[int]]:
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise BackendError("encode: pass a list of strings")
        if not texts:
            return []
        return [list(x) for x in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def decode(self, ids: list[list[int]]) -> list[str]:
        return [
            self.tokenizer.decode([int(t) for t in s], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            for s in ids
        ]

    def _prompt_text(self, prompt: Prompt, index: int) -> str:
        if isinstance(prompt, str):
            return prompt
        check_chat(prompt, f"prompt {index}")
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        return super()._prompt_text(prompt, index)

    def _forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any,
        last_only: bool,
    ) -> tuple[torch.Tensor, Any]:
        # transformers 5 names the KV cache `cache` (formerly `past_key_values`)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=last_only,
            logits_to_keep=1 if last_only else 0,
        )
        return out.logits.float(), out.cache

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "path": str(self.path),
            "device": str(self.device),
            "n_params": sum(p.numel() for p in self.model.parameters()),
        }
