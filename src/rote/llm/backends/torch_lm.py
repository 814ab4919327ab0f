"""Batched scoring and KV-cache generation shared by the local torch models (Hugging Face and the tiny GPT).

A subclass supplies one forward step, `_forward(input_ids, attention_mask, position_ids, cache, last_only)`, in the
Hugging Face convention: `attention_mask` (B, S) covers the cached tokens plus the new ones (1 = real, 0 = padding),
`position_ids` (B, T) count real tokens only, so left padding does not shift positions. Everything else — padding,
batching, sorting by length, greedy/top-k/temperature sampling with per-prompt seeds, EOS handling, the
log-probability statistics for min-k%++ — lives here once.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from rote.core.errors import BackendError
from rote.core.runs import progress_bar
from rote.llm.backends.base import Backend, TokenScores, check_ids

# logits of one scoring batch are (b, T, V) float32; keep them under this many bytes by shrinking b
_LOGIT_BYTES = 256 * 2**20


def prompt_generator(seed: int, index: int, device: torch.device) -> torch.Generator:
    """The torch Generator that samples the continuation of prompt `index` under `seed` (independent of batching)."""
    digest = hashlib.sha256(f"rote-generate:{int(seed)}:{int(index)}".encode()).digest()
    g = torch.Generator(device=device)
    g.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return g


def sample_next(
    logits: torch.Tensor,
    *,
    greedy: bool,
    temperature: float,
    top_k: int | None,
    generators: list[torch.Generator] | None,
) -> torch.Tensor:
    """Next token per row from logits (B, V) -> (B,) int64.

    Sampling draws one uniform number per row from that row's generator and inverts the CDF of
    softmax(logits / temperature) (restricted to the top_k logits), so each row's draw depends only on its own seed.
    """
    if greedy:
        return logits.argmax(dim=-1)
    scaled = logits.double() / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]  # (B, 1)
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)  # (B, V) float64
    cdf = probs.cumsum(dim=-1)
    assert generators is not None
    u = torch.stack([torch.rand((), generator=g, device=g.device, dtype=torch.float64) for g in generators])
    u = u.to(cdf.device) * cdf[:, -1]
    idx = torch.searchsorted(cdf, u.unsqueeze(1)).squeeze(1)  # first index with cdf >= u
    return idx.clamp_(max=logits.shape[-1] - 1)


class TorchLMBackend(Backend):
    """A local causal LM in torch; subclasses set `vocab_size`, `pad_token_id`, `device` and `_forward`."""

    supports_logprobs = True
    supports_token_ids = True
    vocab_size: int
    pad_token_id: int = 0
    device: torch.device

    @abstractmethod
    def _forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any,
        last_only: bool,
    ) -> tuple[torch.Tensor, Any]:
        """One forward step: input_ids (B, T), attention_mask (B, S = cached + T), position_ids (B, T), the cache
        from the previous step (None at the start) -> logits (B, T, V) or (B, 1, V) when last_only, new cache."""

    # ------------------------------------------------------------------------------------------- scoring

    def score(
        self, ids: list[list[int]], *, batch_size: int = 16, full_stats: bool = False, progress: bool = False
    ) -> list[TokenScores]:
        check_ids(ids, "sequence", vocab_size=self.vocab_size)
        self._check_length(max((len(s) for s in ids), default=0), "sequence")
        if batch_size < 1:
            raise BackendError(f"batch_size={batch_size}: must be at least 1")
        seqs = [[int(t) for t in s] for s in ids]
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # similar lengths share a batch
        out: list[TokenScores | None] = [None] * len(seqs)
        with (
            progress_bar(len(seqs), f"scoring with {self.name}", quiet=not progress) as advance,
            torch.inference_mode(),
        ):
            start = 0
            while start < len(order):
                longest = len(seqs[order[start]])
                fit = max(1, _LOGIT_BYTES // max(1, longest * self.vocab_size * 4))
                chunk = order[start : start + min(batch_size, fit)]
                for i, ts in zip(chunk, self._score_batch([seqs[i] for i in chunk], full_stats)):
                    out[i] = ts
                advance(len(chunk))
                start += len(chunk)
        return out  # type: ignore[return-value]

    def _score_batch(self, seqs: list[list[int]], full_stats: bool) -> list[TokenScores]:
        b, t = len(seqs), max(len(s) for s in seqs)
        ids = torch.full((b, t), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((b, t), dtype=torch.long)
        for r, s in enumerate(seqs):  # right padding: real tokens keep positions 0..len-1
            ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, : len(s)] = 1
        pos = torch.arange(t).unsqueeze(0).expand(b, t)
        ids, mask, pos = ids.to(self.device), mask.to(self.device), pos.to(self.device)
        logits, _ = self._forward(ids, mask, pos, None, False)  # (b, t, V)
        results = []
        for r, s in enumerate(seqs):
            n = len(s)
            logp = torch.log_softmax(logits[r, : n - 1].double(), dim=-1)  # (n-1, V): predicts tokens 1..n-1
            target = ids[r, 1:n].unsqueeze(1)
            lp = logp.gather(1, target).squeeze(1).cpu().numpy()
            mean = std = None
            if full_stats:
                p = logp.exp()
                mu = (p * logp).sum(-1)  # E[log p]
                var = (p * logp.square()).sum(-1) - mu.square()
                mean = mu.cpu().numpy()
                std = var.clamp_min(0).sqrt().cpu().numpy()
            results.append(TokenScores(np.asarray(s, dtype=np.int64), lp.astype(np.float64), mean, std))
        return results

    # ------------------------------------------------------------------------------------------- generation

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
        check_ids(prompts, "prompt", vocab_size=self.vocab_size)
        if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
            raise BackendError(f"max_new_tokens={max_new_tokens!r}: must be a whole number >= 0")
        if batch_size < 1:
            raise BackendError(f"batch_size={batch_size}: must be at least 1")
        if not greedy and not temperature > 0:
            raise BackendError(f"temperature={temperature}: must be > 0 for sampling (use greedy=True for argmax)")
        if top_k is not None and top_k < 1:
            raise BackendError(f"top_k={top_k}: must be at least 1 (or None for the full vocabulary)")
        self._check_length(max((len(p) for p in prompts), default=0) + int(max_new_tokens), "prompt + new tokens")
        seqs = [[int(t) for t in p] for p in prompts]
        if max_new_tokens == 0:
            return [[] for _ in seqs]
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        out: list[list[int]] = [[] for _ in seqs]
        with (
            progress_bar(len(seqs), f"generating with {self.name}", quiet=not progress) as advance,
            torch.inference_mode(),
        ):
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                gens = None if greedy else [prompt_generator(seed, i, self.device) for i in chunk]
                new = self._generate_batch(
                    [seqs[i] for i in chunk],
                    int(max_new_tokens),
                    greedy=greedy,
                    temperature=temperature,
                    top_k=top_k,
                    generators=gens,
                )
                for i, toks in zip(chunk, new):
                    out[i] = toks
                advance(len(chunk))
        return out

    def _generate_batch(
        self,
        seqs: list[list[int]],
        max_new: int,
        *,
        greedy: bool,
        temperature: float,
        top_k: int | None,
        generators: list[torch.Generator] | None,
    ) -> list[list[int]]:
        b, t = len(seqs), max(len(s) for s in seqs)
        ids = torch.full((b, t), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((b, t), dtype=torch.long)
        for r, s in enumerate(seqs):  # left padding: every prompt ends at column t-1, so new tokens line up
            ids[r, t - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[r, t - len(s) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(1) - 1).clamp_min(0)  # (b, t): 0.. over real tokens; padding gets 0 (masked anyway)
        next_pos = pos[:, -1] + 1  # (b,)
        logits, cache = self._forward(ids, mask, pos, None, True)  # (b, 1, V)
        new = torch.empty((b, max_new), dtype=torch.long, device=self.device)
        done = torch.zeros(b, dtype=torch.bool, device=self.device)
        steps = 0
        for step in range(max_new):
            tok = sample_next(
                logits[:, -1], greedy=greedy, temperature=temperature, top_k=top_k, generators=generators
            )  # (b,)
            new[:, step] = tok
            steps = step + 1
            if self.eos_token_id is not None:
                done |= tok == self.eos_token_id
                if bool(done.all()):
                    break
            if step == max_new - 1:
                break
            mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=self.device)], dim=1)  # (b, S+1)
            logits, cache = self._forward(tok.unsqueeze(1), mask, next_pos.unsqueeze(1), cache, True)
            next_pos = next_pos + 1
        rows = new[:, :steps].tolist()
        if self.eos_token_id is not None:  # cut each row before its first EOS
            rows = [r[: r.index(self.eos_token_id)] if self.eos_token_id in r else r for r in rows]
        return rows

    def _check_length(self, n: int, what: str) -> None:
        if self.max_length is not None and n > self.max_length:
            raise BackendError(
                f"{what}: {n} tokens exceed {self.name}'s context of {self.max_length} tokens; "
                "shorten the texts (or the prefix/suffix lengths)"
            )
