"""Batched scoring and KV-cache generation shared by the local torch models (Hugging Face and the tiny GPT).

A subclass supplies one forward step, `_forward(input_ids, attention_mask, position_ids, cache, last_only)`, in the
Hugging Face convention: `attention_mask` (B, S) covers the cached tokens plus the new ones (1 = real, 0 = padding),
`position_ids` (B, T) count real tokens only, so left padding does not shift positions. Everything else — padding,
batching, sorting by length, greedy/top-k/temperature sampling with per-prompt seeds, EOS handling, the
log-probability statistics for min-k%++ — lives here once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, Callable

import numpy as np
import torch

from rote.core.errors import BackendError, ConfigError, DataError
from rote.core.runs import progress_bar
from rote.llm.backends.base import SITES, Backend, TokenScores, check_ids

#: child-module names of a transformer block that hold each sub-layer, tried in order (tiny GPT, Llama/SmolLM2,
#: GPT-2, GPT-NeoX/Pythia, Falcon, ...)
SITE_CHILDREN: dict[str, tuple[str, ...]] = {
    "attn": ("attn", "self_attn", "attention", "self_attention"),
    "mlp": ("mlp", "feed_forward", "ffn"),
}

# logits of one scoring batch are (b, T, V) float32; keep them under this many bytes by shrinking b
_LOGIT_BYTES = 256 * 2**20
FLOAT16_MAX = float(torch.finfo(torch.float16).max)  # 65504


class Float16Overflow(DataError):
    """A float16 activation capture met a value beyond float16's range (it would have been stored as inf)."""


_STATS_ELEMS = 1 << 16
"""Logits per pass of `next_token_stats` on CPU (256 kB of float32 temporaries, inside a core's L2 cache)."""


def next_token_stats(
    logits: torch.Tensor, ids: torch.Tensor, rows: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(ids[:, t+1] | ids[:, <= t]), whether ids[:, t+1] is the argmax), both (b, T-1), from logits (b, T, V),
    in float32 (labels, not exact scores). log p = logit - logsumexp(logits), and the argmax comes from the same
    max pass: no (b, T, V) log-softmax is materialized (400 MB for 16 x 128 SmolLM2 tokens over its 49k-token
    vocabulary). On CPU the positions (of every sequence, one after another) go `rows` at a time, so each pass's
    temporaries stay in cache: half the time of whole-tensor logsumexp + argmax for SmolLM2 (bench/llm_probes.py's
    capture). rows=None takes as many as fit in `_STATS_ELEMS` logits, at least 16: 16 for SmolLM2, a whole
    batch in one pass for a 256-token vocabulary, where per-pass Python overhead would dominate. Ties go to the
    first maximal logit, as with argmax."""
    b, t, v = logits.shape
    if logits.device.type != "cpu":
        lg, nxt = logits[:, :-1].float(), ids[:, 1:]
        lp = lg.gather(2, nxt.unsqueeze(2)).squeeze(2) - torch.logsumexp(lg, dim=-1)
        return lp, lg.argmax(-1) == nxt
    step = max(16, _STATS_ELEMS // max(v, 1)) if rows is None else int(rows)
    flat = logits.reshape(b * t, v)
    # every position's next token; a sequence's last position gets a dummy (its own first token), dropped below
    nxt = torch.cat([ids[:, 1:], ids[:, :1]], dim=1).reshape(-1)
    lp = torch.empty(b * t)
    top1 = torch.empty(b * t, dtype=torch.bool)
    for s in range(0, b * t, step):
        part, n = flat[s : s + step].float(), nxt[s : s + step]  # (rows, V), (rows,)
        peak, arg = part.max(dim=-1)
        lse = part.sub(peak.unsqueeze(1)).exp_().sum(-1).log_().add_(peak)
        lp[s : s + step] = part.gather(1, n.unsqueeze(1)).squeeze(1) - lse
        top1[s : s + step] = arg == n
    return lp.view(b, t)[:, :-1], top1.view(b, t)[:, :-1]


@contextlib.contextmanager
def _remove_on(error: type[BaseException], folder: str | os.PathLike) -> Iterator[None]:
    """Remove `folder` when `error` leaves the block: an unfinished capture, which its writer only started because
    the folder was empty (or an activation folder it was told to overwrite)."""
    try:
        yield
    except error:
        shutil.rmtree(folder, ignore_errors=True)
        raise


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

    # ------------------------------------------------------------------------------------------- internals

    supports_internals = True
    model: torch.nn.Module

    def _blocks(self) -> list[str]:
        from rote.core.hooks import block_names

        names = block_names(self.model)
        if not names:
            raise BackendError(f"{self.name}: found no list of transformer blocks in the model; cannot hook layers")
        return names

    @property
    def n_layers(self) -> int:
        return len(self._blocks())

    def site_module(self, layer: int, site: str) -> str:
        """The `named_modules` name of (layer, site): e.g. (1, "attn") -> "blocks.1.attn" (tiny GPT),
        "model.layers.1.self_attn" (Llama). A layer or site that does not exist is a ConfigError listing the valid
        ones."""
        blocks = self._blocks()
        if site not in SITES:
            raise ConfigError(f"`sites`: {site!r} is not an activation site; valid sites: {', '.join(SITES)}")
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < len(blocks):
            raise ConfigError(
                f"`layers`: {layer!r} is not a layer of {self.name}; valid layers: 0..{len(blocks) - 1} "
                f"({len(blocks)} blocks)"
            )
        block = blocks[int(layer)]
        if site == "resid":
            return block
        children = dict(self.model.get_submodule(block).named_children())
        for child in SITE_CHILDREN[site]:
            if child in children:
                return f"{block}.{child}"
        raise ConfigError(
            f"`sites`: {self.name}'s blocks have no {site} sub-layer (children: {', '.join(children)}); "
            f"use another site of {', '.join(SITES)}"
        )

    def site_modules(self, layers: list[int] | None, sites: tuple[str, ...] | list[str]) -> dict[tuple[int, str], str]:
        """{(layer, site): module name} for every pair (all layers when `layers` is None), layers outer."""
        if isinstance(sites, str):
            sites = [sites]
        if not sites:
            raise ConfigError(f"`sites`: give at least one of {', '.join(SITES)}")
        layers = list(range(self.n_layers)) if layers is None else list(layers)
        if not layers:
            raise ConfigError(f"`layers`: give at least one layer (0..{self.n_layers - 1})")
        if len(set(layers)) != len(layers) or len(set(sites)) != len(sites):
            raise ConfigError("`layers` and `sites` must not repeat a value")
        return {(int(la), si): self.site_module(la, si) for la in layers for si in sites}

    def _padded(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ids, mask and positions (b, T) on the device, as in scoring."""
        b, t = len(seqs), max(len(s) for s in seqs)
        ids = torch.full((b, t), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((b, t), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, : len(s)] = 1
        pos = torch.arange(t).unsqueeze(0).expand(b, t)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def capture_hidden_states(
        self,
        ids: list[list[int]],
        out_dir: str | os.PathLike,
        *,
        layers: list[int] | None = None,
        sites: tuple[str, ...] | list[str] = ("resid",),
        batch_size: int = 16,
        chunk_rows: int = 8192,
        dtype: str = "float32",
        overwrite: bool = False,
        meta: Mapping[str, Any] | None = None,
        progress: bool = False,
        background: bool | None = None,
    ) -> Any:
        """Stream the activation of every real token at each (layer, site) to `out_dir`, one forward pass per batch,
        through `rote.core.hooks.capture_to_disk` (memory bounded by one batch plus the writer's queue).
        `background`: True writes the files on a thread of their own while the next batch runs, False inside the
        forward pass (the same bytes); None (the default) takes the thread only when torch's threads leave a core
        free for it (`rote.core.hooks.writer_thread_pays`; bench/llm_probes.py compares the three).

        Rows are tokens in input order (sequence 0's tokens, then sequence 1's, ...), (C,) of `dtype` each
        ("float32", or "float16" to halve the disk traffic and the copies; a value beyond float16's range, 65504,
        raises `Float16Overflow` and removes `out_dir` rather than store inf); module
        `site_modules()[(layer, site)]` of the returned `ActivationStore`. Token metadata, written next to it as
        `tokens.parquet` (one row per token, same order): seq, pos, token, next_token (-1 at the last position),
        next_logprob = log p(next_token | tokens <= pos) (NaN at the last position), next_top1 = whether
        next_token is the model's argmax there. The index's meta records the site map and the model.
        """
        import pandas as pd

        from rote.core.hooks import ActivationStore, capture_to_disk
        from rote.core.runs import atomic_write_parquet

        check_ids(ids, "sequence", vocab_size=self.vocab_size)
        self._check_length(max((len(s) for s in ids), default=0), "sequence")
        if batch_size < 1:
            raise BackendError(f"batch_size={batch_size}: must be at least 1")
        names = self.site_modules(layers, sites)
        if dtype not in ("float32", "float16"):
            raise ConfigError(f"`dtype` {dtype!r}: store activations as float32 or float16")
        seqs = [[int(t) for t in s] for s in ids]
        batches = [seqs[i : i + batch_size] for i in range(0, len(seqs), batch_size)]
        current: dict[str, torch.Tensor] = {}
        stats: list[tuple[np.ndarray, np.ndarray]] = []

        store_dtype = getattr(torch, dtype)

        def real_tokens(t: torch.Tensor) -> torch.Tensor:  # (b, T, C) -> (n_real, C), row-major = input order
            flat = t.reshape(-1, t.shape[-1])
            rows = current["rows"]
            if store_dtype == torch.float16:  # one read of the batch (aminmax: no temporary), < 1% of a capture
                lo, hi = torch.aminmax(flat)
                peak = max(-float(lo), float(hi))
                if peak > FLOAT16_MAX:  # also catches NaN-free inf; a NaN compares False and is stored as NaN
                    raise Float16Overflow(
                        f"`dtype` float16: an activation of magnitude {peak:.4g} in batch {current['batch']} "
                        f"(shape {tuple(t.shape)}) exceeds float16's largest value {FLOAT16_MAX:.0f}; capture with "
                        "`dtype` float32 (`--capture-dtype float32`)"
                    )
            # one copy, cast included: a model may edit its outputs in place later in the pass, and the background
            # writer reads the rows while the next batch runs. A boolean-mask index costs several times a plain
            # copy, so whole batches skip it
            return flat.to(store_dtype, copy=True) if rows is None else flat.index_select(0, rows).to(store_dtype)

        def forward(_: Any, batch: list[list[int]]) -> None:
            current["batch"] = current.get("batch", -1) + 1
            x, mask, pos = self._padded(batch)
            current["rows"] = None if bool(mask.all()) else mask.reshape(-1).nonzero().squeeze(1)
            with torch.inference_mode():  # as the plain forward: no autograd bookkeeping at all
                logits, _ = self._forward(x, mask, pos, None, False)  # (b, T, V)
                lp, top1 = next_token_stats(logits, x)
                lp_np, top1_np = lp.cpu().numpy(), top1.cpu().numpy()
            for r, s in enumerate(batch):
                n = len(s)
                stats.append((np.append(lp_np[r, : n - 1], np.nan), np.append(top1_np[r, : n - 1], False)))

        with (
            progress_bar(len(batches), f"capturing activations of {self.name}", quiet=not progress) as advance,
            _remove_on(Float16Overflow, out_dir),
        ):
            capture_to_disk(
                self.model,
                list(names.values()),
                batches,
                out_dir,
                reduce=real_tokens,
                chunk_rows=chunk_rows,
                forward=forward,
                dtype=getattr(torch, dtype),
                overwrite=overwrite,
                meta={
                    "model": self.name,
                    "weights_fingerprint": self.weights_fingerprint(),
                    "sites": {f"{la}:{si}": n for (la, si), n in names.items()},
                    **dict(meta or {}),
                },
                progress=advance,
                background=background,
            )
        lens = [len(s) for s in seqs]
        tokens = pd.DataFrame(
            {
                "seq": np.repeat(np.arange(len(seqs), dtype=np.int64), lens),
                "pos": np.concatenate([np.arange(n, dtype=np.int64) for n in lens]),
                "token": np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]),
                "next_token": np.concatenate([np.append(np.asarray(s[1:], dtype=np.int64), -1) for s in seqs]),
                "next_logprob": np.concatenate([lp for lp, _ in stats]),
                "next_top1": np.concatenate([t for _, t in stats]).astype(bool),
            }
        )
        atomic_write_parquet(os.path.join(out_dir, "tokens.parquet"), tokens)
        return ActivationStore(out_dir)

    def hidden_states(
        self,
        ids: list[list[int]],
        layers: list[int] | None = None,
        sites: tuple[str, ...] | list[str] = ("resid",),
        *,
        batch_size: int = 16,
    ) -> dict[tuple[int, str], list[np.ndarray]]:
        """{(layer, site): [(T_i, C) float32 activations of sequence i]} in memory, through `rote.core.hooks.record`
        (see `capture_hidden_states` to stream large captures to disk)."""
        from rote.core.hooks import record

        check_ids(ids, "sequence", vocab_size=self.vocab_size)
        self._check_length(max((len(s) for s in ids), default=0), "sequence")
        if batch_size < 1:
            raise BackendError(f"batch_size={batch_size}: must be at least 1")
        names = self.site_modules(layers, sites)
        seqs = [[int(t) for t in s] for s in ids]
        out: dict[tuple[int, str], list[np.ndarray]] = {k: [] for k in names}
        with torch.inference_mode():
            for start in range(0, len(seqs), batch_size):
                batch = seqs[start : start + batch_size]
                x, mask, pos = self._padded(batch)
                with record(self.model, list(names.values()), dtype=torch.float32) as rec:
                    self._forward(x, mask, pos, None, False)
                acts = rec.cat()
                for key, name in names.items():
                    a = acts[name].numpy()  # (b, T, C)
                    out[key].extend(a[r, : len(s)].copy() for r, s in enumerate(batch))
        return out

    @contextlib.contextmanager
    def intervene(self, edits: Mapping[tuple[int, str], Callable[[torch.Tensor], torch.Tensor]]) -> Iterator[None]:
        """Inside the block, every forward pass (`score`, `generate`, captures) replaces the activation at each
        (layer, site) by edit(activation) (`rote.core.hooks.intervene`; e.g. `project_out(w, alpha=1)`). During
        generation the edit applies to the prompt's positions and to every new token's."""
        from rote.core.hooks import intervene

        if not edits:
            raise ConfigError("`edits`: give at least one (layer, site) -> edit")
        plan = {}
        for key, edit in edits.items():
            if not isinstance(key, tuple) or len(key) != 2:
                raise ConfigError(f"`edits`: keys are (layer, site) pairs such as (1, 'resid'), got {key!r}")
            plan[self.site_module(key[0], key[1])] = edit
        with intervene(self.model, plan):
            yield

    def weights_fingerprint(self) -> str:
        """sha256 over every parameter and buffer (name, shape, dtype, bytes), first 16 hex digits; computed once."""
        cached = getattr(self, "_weights_fp", None)
        if cached is not None:
            return cached
        h = hashlib.sha256()
        with torch.no_grad():
            for name, t in sorted(self.model.state_dict().items()):
                h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
                h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        self._weights_fp = h.hexdigest()[:16]
        return self._weights_fp
