"""One interface for every language model rote measures: tokenize, score log-probabilities, generate.

Three kinds of model sit behind it:

- a local Hugging Face causal LM from a folder on disk (`rote.llm.backends.hf`), including the shipped SmolLM2-135M
  (`"smollm2"`, converted once by `rote.llm.smollm2`);
- rote's own tiny GPT (`"tiny:FOLDER"`, `rote.llm.tinygpt`), for ground-truth experiments;
- any OpenAI-compatible HTTP endpoint (`"openai:MODEL"`, `rote.llm.backends.openai`): text in, text out.

Token ids are plain python ints; a sequence is a `list[int]`. Log-probabilities are natural logs.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rote.core.errors import BackendError

Prompt = str | list[dict[str, str]]

#: Phrases that mark a refusal (matched case-insensitively anywhere in a completion); override per backend with
#: `refusal_phrases=`. Curly apostrophes are normalized before matching.
DEFAULT_REFUSAL_PHRASES: tuple[str, ...] = (
    "i can't",
    "i cannot",
    "i can not",
    "i won't",
    "i will not",
    "i'm unable",
    "i am unable",
    "i'm not able",
    "i am not able",
    "i'm sorry",
    "i apologize",
    "cannot provide",
    "can't provide",
    "unable to provide",
    "copyrighted",
    "copyright",
)


@dataclass(frozen=True)
class TokenScores:
    """Per-token log-probabilities of one sequence under a model.

    token_ids: (T,) int64, the scored sequence.
    logprobs: (T-1,) float64, log p(x_t | x_<t) for t = 1..T-1 (the first token has no context, so it is unscored).
    mean_logprob: (T-1,) float64, E_{z~p(.|x_<t)}[log p(z | x_<t)] (minus the entropy), only with `full_stats`.
    std_logprob: (T-1,) float64, std of log p(z | x_<t) for z ~ p(.|x_<t), only with `full_stats`.
    The last two are what min-k%++ (Zhang et al. 2024) normalizes with.
    """

    token_ids: np.ndarray
    logprobs: np.ndarray
    mean_logprob: np.ndarray | None = None
    std_logprob: np.ndarray | None = None


@dataclass(frozen=True)
class Completion:
    """One text-level completion.

    text: the generated text only (not the prompt).
    refused: True when the text contains one of the backend's refusal phrases.
    finish_reason: "length" (hit max_new_tokens), "stop" (end-of-sequence) or what an HTTP endpoint said.
    cached: True when an HTTP backend answered from its on-disk cache without a request.
    logprobs: (n,) float64 log-probabilities of the generated tokens when the model or endpoint gives them.
    filtered: True when the answer was withheld by output filtering: finish_reason "content_filter" or an empty
        (whitespace-only) answer (the copyright study's finding for OpenAI models; counted apart from refusals).
    """

    text: str
    refused: bool
    finish_reason: str
    cached: bool = False
    logprobs: np.ndarray | None = None
    filtered: bool = False


def is_filtered(text: str, finish_reason: str | None) -> bool:
    """Output filtering: the endpoint says "content_filter", or the answer is empty."""
    return finish_reason == "content_filter" or not str(text).strip()


BOS_CHOICES: tuple[str, ...] = ("auto", "on", "off")
"""What goes before a text's first token in every protocol (`bos=`): "auto" = the special tokens the model's own
tokenizer adds (as MIMIR does, e.g. nothing for SmolLM2, whose BOS is the chat marker <|im_start|>); "on" = the
model's BOS token; "off" = nothing (the first token is then not scored)."""


def start_ids(backend: "Backend", bos: str = "auto") -> list[int]:
    """Token ids put before every text for `bos` ("auto", "on", "off"; see BOS_CHOICES)."""
    from rote.core.errors import ConfigError

    if bos not in BOS_CHOICES:
        raise ConfigError(f"`bos` must be one of {', '.join(BOS_CHOICES)}, got {bos!r}")
    if bos == "off":
        return []
    if bos == "on":
        if backend.bos_token_id is None:
            raise ConfigError(f"`bos` on: model {backend.name} has no BOS token; use auto or off")
        return [int(backend.bos_token_id)]
    return [int(t) for t in backend.auto_start_ids]


def detect_refusal(text: str, phrases: tuple[str, ...] | list[str] = DEFAULT_REFUSAL_PHRASES) -> bool:
    """True when `text` contains any of `phrases` (case-insensitive; curly apostrophes count as straight ones)."""
    low = text.lower().replace("\u2019", "'")
    return any(p.lower() in low for p in phrases)


def vocabulary_fingerprint(tokens: list[str] | list[bytes]) -> str:
    """Stable short hash of a vocabulary given as the string (or bytes) of each id in id order."""
    h = hashlib.sha256()
    for t in tokens:
        b = t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(4, "little"))
        h.update(b)
    return h.hexdigest()[:16]


def messages_to_text(messages: list[dict[str, str]]) -> str:
    """A plain-text rendering of a chat, for models without a chat template: "role: content" lines and a final
    "assistant:" cue."""
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nassistant:"


def check_chat(prompt: Any, where: str = "prompt") -> None:
    """Raise a BackendError unless `prompt` is a list of {"role", "content"} dicts with string values."""
    if not isinstance(prompt, list) or not prompt:
        raise BackendError(f"{where}: a chat must be a non-empty list of {{'role', 'content'}} dicts")
    for i, m in enumerate(prompt):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise BackendError(
                f"{where}, message {i}: each chat message must be a dict with string 'role' and "
                f"'content', got {m!r:.80}"
            )


class Backend(ABC):
    """A language model rote can measure. Subclasses set the four attributes and implement the methods.

    name: short model name for configs and reports (never contains secrets).
    tokenizer_fingerprint: stable hash of the vocabulary; equal iff token ids mean the same strings (check it before
        comparing a target model with a reference model).
    supports_logprobs: whether `score` works (False for HTTP endpoints).
    supports_token_ids: whether `encode`/`decode`/`generate` work on token ids (False for HTTP endpoints).
    """

    name: str
    tokenizer_fingerprint: str
    supports_logprobs: bool
    supports_token_ids: bool
    #: id that ends a generation (not returned by `generate`), or None when the model has none
    eos_token_id: int | None = None
    #: id a caller may prepend so that the first real token is scored too, or None
    bos_token_id: int | None = None
    #: ids the model's own tokenizer puts before a text (what `bos="auto"` prepends)
    auto_start_ids: tuple[int, ...] = ()
    #: longest sequence (prompt + generated) the model accepts, or None when unbounded
    max_length: int | None = None
    refusal_phrases: tuple[str, ...] = DEFAULT_REFUSAL_PHRASES

    @abstractmethod
    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, with no special tokens added."""

    @abstractmethod
    def decode(self, ids: list[list[int]]) -> list[str]:
        """Text of each id sequence (special tokens kept as they are)."""

    @abstractmethod
    def score(
        self, ids: list[list[int]], *, batch_size: int = 16, full_stats: bool = False, progress: bool = False
    ) -> list[TokenScores]:
        """Log-probability of every token given the ones before it, one `TokenScores` per sequence (in order).

        Each sequence needs at least one token; the first token is not scored (prepend `bos_token_id` to score it).
        """

    @abstractmethod
    def generate(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        *,
        greedy: bool = True,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
        batch_size: int = 32,
        progress: bool = False,
    ) -> list[list[int]]:
        """Continue each prompt; returns only the new tokens: exactly `max_new_tokens` of them unless the model
        emits `eos_token_id` (then fewer; the EOS itself is not returned).

        greedy: argmax decoding; otherwise sample from softmax(logits / temperature), restricted to the top_k most
        likely tokens when top_k is given. Sampling is seeded per prompt (from `seed` and the prompt's position), so
        the same seed gives the same output whatever the batch size.
        """

    def complete(
        self, prompts: list[Prompt], max_new_tokens: int, *, greedy: bool = True, seed: int = 0, progress: bool = False
    ) -> list[Completion]:
        """Text-level completion: a `str` prompt is continued as plain text; a list of {"role", "content"} dicts is
        a chat (rendered with the model's chat template when it has one). `max_new_tokens` counts model tokens."""
        texts = [self._prompt_text(p, i) for i, p in enumerate(prompts)]
        ids = self.encode(texts)
        if self.bos_token_id is not None:
            ids = [x if x else [self.bos_token_id] for x in ids]
        for i, x in enumerate(ids):
            if not x:
                raise BackendError(f"prompt {i}: empty text; give at least one character to continue")
        new = self.generate(ids, max_new_tokens, greedy=greedy, seed=seed, progress=progress)
        out = []
        for toks, text in zip(new, self.decode(new)):
            finish = "length" if len(toks) >= max_new_tokens else "stop"
            out.append(
                Completion(
                    text=text,
                    refused=detect_refusal(text, self.refusal_phrases),
                    finish_reason=finish,
                    cached=False,
                    filtered=is_filtered(text, finish),
                )
            )
        return out

    def _prompt_text(self, prompt: Prompt, index: int) -> str:
        if isinstance(prompt, str):
            return prompt
        check_chat(prompt, f"prompt {index}")
        return messages_to_text(prompt)

    def describe(self) -> dict[str, Any]:
        """What a run's config.json records about the model (no secrets)."""
        return {"name": self.name, "tokenizer_fingerprint": self.tokenizer_fingerprint, "max_length": self.max_length}

    # ------------------------------------------------------------------------------------------- internals
    # Local models expose their activations (probes, interventions); the defaults refuse with one clear line.

    #: whether `hidden_states`, `capture_hidden_states`, `intervene` and `weights_fingerprint` work
    supports_internals: bool = False

    def _no_internals(self, what: str) -> BackendError:
        return BackendError(
            f"{self.name}: {what} needs the model's internal activations, which this backend cannot give (an HTTP "
            "endpoint returns text only); use a local model: a Hugging Face folder, 'smollm2' or 'tiny:FOLDER'"
        )

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks (layers are numbered 0..n_layers-1)."""
        raise self._no_internals("counting layers")

    def hidden_states(
        self,
        ids: list[list[int]],
        layers: list[int] | None = None,
        sites: tuple[str, ...] | list[str] = ("resid",),
        *,
        batch_size: int = 16,
    ) -> dict[tuple[int, str], list[np.ndarray]]:
        """Activations of every token: {(layer, site): [(T_i, C) float32 per sequence]} (see SITES)."""
        raise self._no_internals("hidden_states")

    def capture_hidden_states(self, ids: list[list[int]], out_dir: str | os.PathLike, **kw: Any) -> Any:
        """Stream the activations of every token to `out_dir` in chunks (see `TorchLMBackend`)."""
        raise self._no_internals("capture_hidden_states")

    def intervene(self, edits: Any) -> Any:
        """Context manager editing activations during every forward pass inside it (scoring and generation)."""
        raise self._no_internals("intervene")

    def weights_fingerprint(self) -> str:
        """Stable short hash of the model's weights (equal iff the same weights)."""
        raise self._no_internals("weights_fingerprint")


SITES: tuple[str, ...] = ("resid", "attn", "mlp")
"""Activation sites of a transformer layer: "resid" = the residual stream after the block (the block's output),
"attn" = the attention sub-layer's output before it is added to the residual stream, "mlp" = the MLP sub-layer's
output before the residual add. All are (B, T, C) with C the model width."""


def check_ids(ids: Any, what: str = "sequence", *, vocab_size: int | None = None, allow_empty: bool = False) -> None:
    """Validate a batch of token-id sequences once, where it enters a backend."""
    if not isinstance(ids, (list, tuple)):
        raise BackendError(f"{what}s must be a list of lists of token ids, got {type(ids).__name__}")
    for i, seq in enumerate(ids):
        if isinstance(seq, np.ndarray):
            seq = seq.tolist()
        if not isinstance(seq, (list, tuple)):
            raise BackendError(f"{what} {i}: must be a list of token ids, got {type(seq).__name__}")
        if not seq and not allow_empty:
            raise BackendError(f"{what} {i}: is empty; give at least one token")
        for t in seq:
            if not isinstance(t, (int, np.integer)) or t < 0 or (vocab_size is not None and t >= vocab_size):
                raise BackendError(
                    f"{what} {i}: token id {t!r} is not an id of this model's vocabulary "
                    f"(0..{(vocab_size or 0) - 1}); were the ids made by another tokenizer?"
                )


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where rote keeps converted models and HTTP response caches: `cache_dir`, else $ROTE_CACHE_DIR, else
    ~/.cache/rote."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("ROTE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rote"


def _json_key(obj: Any) -> str:
    """Canonical JSON used for cache keys."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
