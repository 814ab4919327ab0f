"""MemHunter: dataset-level memorization detection with a trained memory-inducing prompt generator.

After Wu, Lou, Zheng & Chen, "MemHunter: Automated and Verifiable Memorization Detection at Dataset-scale in LLMs"
(arXiv:2412.07261). The paper's exact settings are not public; this module builds the design of
`shared/reference/llm.md` section 1.3, with every setting in `MemHunterConfig`:

1. **Per-sample score** (`score_prompts`): a text is cut into a prefix of `prefix_tokens` and the next
   `suffix_tokens` target tokens; the target greedily continues a prompt built from the prefix, and the score is
   the longest-common-substring ratio |LCSS(generation, true suffix)| / |true suffix| in target tokens
   (`rote.core.text.longest_common_substring`), plus exact extraction (the whole suffix reproduced).
2. **Prompt generator** (`PromptGenerator`): a small local causal LM (rote's tiny GPT or any local Hugging Face
   model) reads "<prefix><marker>" and samples a prompt q of `prompt_tokens` tokens. The target sees q before the
   prefix (`placement="before"`, our default: a context that puts the target "back into" its training data) or
   after it (`"after"`, the note's literal "x followed by q"). Training runs in rounds: sample K candidates per text,
   score each by the target's per-token NLL of the true suffix plus `lam` x the generator's per-token NLL of q (a
   readability term) and by greedy extraction, keep the best, fine-tune the generator on the kept (prefix, q) pairs
   (`rote.llm.backends.grad`), checkpoint, repeat. Resumable after any round.
3. **Dataset-level test** (`dataset_test`, `detect_dataset`): per-sample scores on the suspect set against known
   non-members from the same distribution; one-sided Mann-Whitney U (or Welch t), p-value, Cliff's delta with an
   interval and a power analysis (`rote.core.stats`). The generator must not be trained on the suspect or reference
   texts (that would favour one side and break the null); `detect_dataset` refuses overlaps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rote.core.checkpoints import checkpoint_name, latest_checkpoint, load_checkpoint, save_checkpoint
from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, table_field
from rote.core.stats import (
    cliffs_delta,
    cliffs_delta_ci,
    mann_whitney_power,
    mann_whitney_sample_size,
    mann_whitney_test,
    welch_t,
)
from rote.core.text import longest_common_substring
from rote.llm.backends.base import Backend

CKPT_KIND = "memhunter-generator"
CKPT_PREFIX = "round-"
PLACEMENTS = ("before", "after")
SELECTIONS = ("lcs", "nll")
TESTS = ("mann-whitney", "welch")


# ---------------------------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class MemHunterConfig:
    """Every setting of the detector (the paper's own values are unknown; these are our defaults).

    prefix_tokens, suffix_tokens: target tokens given as the prefix, and tokens to reproduce after it.
    prompt_tokens: generator tokens per proposed prompt q.
    placement: "before" (q + prefix) or "after" (prefix + q) in the target's input.
    marker: text after the prefix in the generator's input ("<prefix><marker>" -> q).
    n_candidates: K prompts sampled per text and round; rounds: R rounds of rejection sampling + fine-tuning.
    lam: weight of the generator's per-token NLL of q (readability) in the candidate objective.
    select: "lcs" (rank candidates by greedy LCSS ratio, ties by the objective) or "nll" (objective only).
    keep: "better" keeps a text's best candidate only when it beats the plain prefix on the same key; "best" always.
    temperature, top_k: the generator's sampling.
    epochs, lr, batch_size: fine-tuning of the generator on the kept pairs each round (AdamW).
    tau: LCSS ratio at or above which a text counts as memorized (partial match).
    score_batch_size: (text, candidate) pairs per forward pass when scoring (the batched path of bench/).
    """

    prefix_tokens: int = 32
    suffix_tokens: int = 32
    prompt_tokens: int = 16
    placement: str = "before"
    marker: str = "\n"
    n_candidates: int = 8
    rounds: int = 3
    lam: float = 0.1
    select: str = "lcs"
    keep: str = "better"
    temperature: float = 1.0
    top_k: int | None = 50
    epochs: int = 2
    lr: float = 3e-4
    batch_size: int = 16
    tau: float = 0.5
    score_batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("prefix_tokens", "suffix_tokens", "prompt_tokens", "n_candidates", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"`{name}` must be at least 1, got {getattr(self, name)}")
        if int(self.rounds) < 0:
            raise ConfigError(f"`rounds` must be >= 0, got {self.rounds}")
        if int(self.score_batch_size) < 1:
            raise ConfigError(f"`score_batch_size` must be at least 1, got {self.score_batch_size}")
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"`placement` must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"`select` must be one of {', '.join(SELECTIONS)}, got {self.select!r}")
        if self.keep not in ("better", "best"):
            raise ConfigError(f"`keep` must be better or best, got {self.keep!r}")
        if not self.temperature > 0:
            raise ConfigError(f"`temperature` must be > 0, got {self.temperature}")
        if self.top_k is not None and int(self.top_k) < 1:
            raise ConfigError(f"`top_k` must be at least 1 (or None), got {self.top_k}")
        if not self.lam >= 0:
            raise ConfigError(f"`lam` must be >= 0, got {self.lam}")
        if not self.lr > 0:
            raise ConfigError(f"`lr` must be > 0, got {self.lr}")
        if not 0 < self.tau <= 1:
            raise ConfigError(f"`tau` must be in (0, 1], got {self.tau}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _seed(*parts: Any) -> int:
    """A 63-bit seed derived from `parts` (so each round and use gets its own stream, independent of the others)."""
    digest = hashlib.sha256(":".join(str(p) for p in ("memhunter", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**62 - 1)


# ---------------------------------------------------------------------------------------------- samples


@dataclasses.dataclass(frozen=True)
class Samples:
    """Texts cut in target tokens: prefix (prefix_tokens ids) and suffix (the next suffix_tokens ids).

    index: (n,) positions of the kept texts in the input; skipped: positions of texts too short to cut.
    """

    index: np.ndarray
    prefixes: list[list[int]]
    suffixes: list[list[int]]
    prefix_texts: list[str]
    suffix_texts: list[str]
    skipped: np.ndarray

    def __len__(self) -> int:
        return len(self.prefixes)


def cut_texts(target: Backend, texts: Sequence[str], config: MemHunterConfig) -> Samples:
    """Cut every text into a prefix and a suffix in the target's tokens; texts shorter than prefix_tokens +
    suffix_tokens tokens are skipped (their positions are in `skipped`)."""
    if not target.supports_token_ids:
        raise ConfigError(
            f"model {target.name}: MemHunter needs token ids and greedy continuation; use a local model "
            "('tiny:FOLDER', 'smollm2' or a Hugging Face folder)"
        )
    ids = target.encode([str(t) for t in texts])
    p, s = config.prefix_tokens, config.suffix_tokens
    keep = [i for i, x in enumerate(ids) if len(x) >= p + s]
    prefixes = [ids[i][:p] for i in keep]
    suffixes = [ids[i][p : p + s] for i in keep]
    return Samples(
        index=np.asarray(keep, dtype=np.int64),
        prefixes=prefixes,
        suffixes=suffixes,
        prefix_texts=target.decode(prefixes),
        suffix_texts=target.decode(suffixes),
        skipped=np.asarray([i for i in range(len(ids)) if len(ids[i]) < p + s], dtype=np.int64),
    )


# ---------------------------------------------------------------------------------------------- scoring


def build_prompt(prefix: Sequence[int], q: Sequence[int], placement: str, room: int | None) -> list[int]:
    """The target's input: q + prefix ("before") or prefix + q ("after"); q is cut (its start for "before", its
    end for "after") so that the input fits in `room` tokens (None = no limit)."""
    q = list(q)
    if room is not None:
        q = (
            q[max(0, len(q) - max(0, room - len(prefix))) :]
            if placement == "before"
            else q[: max(0, room - len(prefix))]
        )
    return q + list(prefix) if placement == "before" else list(prefix) + q


@dataclasses.dataclass(frozen=True)
class PromptScores:
    """Scores of n (text, prompt) pairs. nll: (n,) per-token NLL (nats) of the true suffix given the prompt;
    lcs_ratio: (n,) LCSS of the greedy continuation and the true suffix / suffix length (tokens); exact: (n,) bool;
    generated: the n greedy continuations (target ids); None where `extract=False`."""

    nll: np.ndarray
    lcs_ratio: np.ndarray | None
    exact: np.ndarray | None
    generated: list[list[int]] | None


def score_prompts(
    target: Backend,
    prompts: Sequence[Sequence[int]],
    suffixes: Sequence[Sequence[int]],
    *,
    batch_size: int = 64,
    extract: bool = True,
    nll: bool = True,
) -> PromptScores:
    """Score target inputs `prompts[i]` (already built, target ids) against their true `suffixes[i]`.

    Batched across every (text, candidate) pair: one `score` call and one greedy `generate` call over all pairs,
    `batch_size` sequences per forward pass (bench/llm_memhunter.py compares it with batch_size=1).
    """
    if len(prompts) != len(suffixes):
        raise DataError(f"score_prompts: {len(prompts)} prompts but {len(suffixes)} suffixes; pass one per prompt")
    n = len(prompts)
    nlls = np.full(n, np.nan)
    if nll and n:
        scored = target.score([list(p) + list(s) for p, s in zip(prompts, suffixes)], batch_size=batch_size)
        for i, (ts, s) in enumerate(zip(scored, suffixes)):
            nlls[i] = -float(ts.logprobs[-len(s) :].sum()) / len(s)
    if not extract:
        return PromptScores(nlls, None, None, None)
    s_len = max((len(s) for s in suffixes), default=0)
    gen = target.generate([list(p) for p in prompts], s_len, greedy=True, batch_size=batch_size) if n else []
    ratio = np.empty(n)
    exact = np.zeros(n, dtype=bool)
    for i, (g, s) in enumerate(zip(gen, suffixes)):
        g = list(g[: len(s)])
        ratio[i] = longest_common_substring(g, list(s)).length / len(s)
        exact[i] = g == list(s)
    return PromptScores(nlls, ratio, exact, [list(g) for g in gen])


def prefix_baseline(
    target: Backend, samples: Samples, config: MemHunterConfig, *, budget: int = 1, seed: int = 0
) -> pd.DataFrame:
    """Plain prefix prompting: greedy continuation of the prefix, plus `budget - 1` sampled continuations
    (temperature `config.temperature`, top_k `config.top_k`, one seed per sample) so that it spends the same number
    of target generations as `budget` generator prompts. Per text: lcs_ratio (greedy), exact (greedy), and
    best_lcs_ratio / any_exact over all `budget` generations."""
    s_len = config.suffix_tokens
    base = score_prompts(target, samples.prefixes, samples.suffixes, batch_size=config.score_batch_size, nll=False)
    best = base.lcs_ratio.copy()
    anyx = base.exact.copy()
    for b in range(1, int(budget)):
        gen = target.generate(
            samples.prefixes,
            s_len,
            greedy=False,
            temperature=config.temperature,
            top_k=config.top_k,
            seed=_seed(seed, "baseline", b),
            batch_size=config.score_batch_size,
        )
        for i, (g, s) in enumerate(zip(gen, samples.suffixes)):
            best[i] = max(best[i], longest_common_substring(list(g[:s_len]), s).length / len(s))
            anyx[i] |= list(g[:s_len]) == s
    return pd.DataFrame(
        {"lcs_ratio": base.lcs_ratio, "exact": base.exact, "best_lcs_ratio": best, "any_exact": anyx},
    )


# ---------------------------------------------------------------------------------------------- generator


class PromptGenerator:
    """The memory-inducing prompt generator: a local causal LM behind a `Backend`, fine-tuned by rejection sampling.

    generator: a local backend (`open_backend("tiny:FOLDER")`, "smollm2", a Hugging Face folder); `fit`
        fine-tunes its weights in place. config: `MemHunterConfig`. seed: seeds every round's sampling and shuffle.

    After `fit`: `history_` (one dict per round: mean best objective, mean best LCSS ratio, extraction rate of the
    best candidates, pairs kept, seconds) and `rounds_done_`.
    """

    def __init__(self, generator: Backend, config: MemHunterConfig | None = None, *, seed: int = 0):
        self.generator = generator
        self.config = config or MemHunterConfig()
        self.seed = seed

    # ------------------------------------------------------------------ proposing

    def _contexts(self, samples: Samples) -> list[list[int]]:
        ctx = self.generator.encode([t + self.config.marker for t in samples.prefix_texts])
        for i, c in enumerate(ctx):
            if not c:
                raise DataError(f"text {int(samples.index[i])}: its prefix is empty in the generator's tokens")
        room = self.generator.max_length
        if room is not None:  # keep the end of a long prefix: the prompt continues it
            ctx = [c[max(0, len(c) - (room - self.config.prompt_tokens)) :] for c in ctx]
        return ctx

    def _to_target(self, target: Backend, q_ids: list[list[int]]) -> list[list[int]]:
        """Generator ids -> target ids: the same ids when both share a tokenizer, else through the text."""
        if target.tokenizer_fingerprint == self.generator.tokenizer_fingerprint:
            return [list(q) for q in q_ids]
        return target.encode(self.generator.decode(q_ids))

    def propose(
        self, target: Backend, samples: Samples, n: int, *, seed: int = 0, greedy_first: bool = True
    ) -> tuple[list[list[list[int]]], list[list[list[int]]]]:
        """`n` prompts per text: the greedy prompt first (with `greedy_first`), then sampled ones.
        Returns (generator ids, target ids), each a list per text of n prompts."""
        cfg = self.config
        ctx = self._contexts(samples)
        per_text: list[list[list[int]]] = [[] for _ in ctx]
        n_sampled = n
        if greedy_first and n >= 1:
            greedy = self.generator.generate(ctx, cfg.prompt_tokens, greedy=True, batch_size=cfg.score_batch_size)
            for i, q in enumerate(greedy):
                per_text[i].append(list(q))
            n_sampled = n - 1
        if n_sampled > 0:
            flat = [c for c in ctx for _ in range(n_sampled)]
            sampled = self.generator.generate(
                flat,
                cfg.prompt_tokens,
                greedy=False,
                temperature=cfg.temperature,
                top_k=cfg.top_k,
                seed=seed,
                batch_size=cfg.score_batch_size,
            )
            for j, q in enumerate(sampled):
                per_text[j // n_sampled].append(list(q))
        tgt = [self._to_target(target, qs) for qs in per_text]
        return per_text, tgt

    def _readability(self, ctx: list[list[int]], qs: list[list[int]]) -> np.ndarray:
        """(n,) the generator's per-token NLL of each prompt given its context (nats; inf for an empty prompt)."""
        out = np.full(len(qs), np.inf)
        live = [i for i, q in enumerate(qs) if q]
        if live:
            scored = self.generator.score([ctx[i] + qs[i] for i in live], batch_size=self.config.score_batch_size)
            for i, ts in zip(live, scored):
                out[i] = -float(ts.logprobs[-len(qs[i]) :].mean())
        return out

    # ------------------------------------------------------------------ training

    def fit(
        self,
        target: Backend,
        texts: Sequence[str],
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> "PromptGenerator":
        """Train the generator for `config.rounds` rounds on `texts` (known members of the target's training data,
        disjoint from the texts a test will score). With `checkpoint_dir`, each finished round is saved there
        (generator weights, optimizer, history) and, with `resume`, training continues after the newest one."""
        from rote.llm.backends.grad import sequence_nll, torch_module

        cfg = self.config
        module = torch_module(self.generator)
        samples = cut_texts(target, texts, cfg)
        if len(samples) == 0:
            raise DataError(
                f"generator training texts: none has {cfg.prefix_tokens} + {cfg.suffix_tokens} target tokens; "
                "give longer texts or shorter --prefix-tokens/--suffix-tokens"
            )
        opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.history_: list[dict[str, Any]] = []
        start = 0
        ckdir = None if checkpoint_dir is None else Path(checkpoint_dir)
        if ckdir is not None and resume:
            last = latest_checkpoint(ckdir, prefix=CKPT_PREFIX)
            if last is not None:
                state = load_checkpoint(last, CKPT_KIND, map_location=str(getattr(self.generator, "device", "cpu")))
                if state.get("config") != cfg.to_dict() or state.get("seed") != int(self.seed):
                    raise ConfigError(
                        f"{last}: was written with other settings or seed; pass resume=False or another checkpoint_dir"
                    )
                module.load_state_dict(state["module"])
                opt.load_state_dict(state["optimizer"])
                self.history_ = list(state["history"])
                start = int(state["round"])
        ctx = self._contexts(samples)
        room = None if target.max_length is None else target.max_length - cfg.suffix_tokens
        base = score_prompts(
            target,
            [build_prompt(p, [], cfg.placement, room) for p in samples.prefixes],
            samples.suffixes,
            batch_size=cfg.score_batch_size,
            extract=cfg.select == "lcs",
        )
        for r in range(start, cfg.rounds):
            t0 = time.perf_counter()
            module.eval()
            q_gen, q_tgt = self.propose(target, samples, cfg.n_candidates, seed=_seed(self.seed, "round", r))
            k = cfg.n_candidates
            flat_prompts = [
                build_prompt(samples.prefixes[i], q_tgt[i][j], cfg.placement, room)
                for i in range(len(samples))
                for j in range(k)
            ]
            flat_suffix = [samples.suffixes[i] for i in range(len(samples)) for _ in range(k)]
            sc = score_prompts(
                target, flat_prompts, flat_suffix, batch_size=cfg.score_batch_size, extract=cfg.select == "lcs"
            )
            read = self._readability([ctx[i] for i in range(len(samples)) for _ in range(k)], sum(q_gen, []))
            obj = (sc.nll + cfg.lam * read).reshape(len(samples), k)
            lcs = sc.lcs_ratio.reshape(len(samples), k) if sc.lcs_ratio is not None else np.zeros_like(obj)
            best = np.lexsort((obj, -lcs), axis=1)[:, 0] if cfg.select == "lcs" else obj.argmin(axis=1)
            kept_ctx, kept_q, best_lcs, best_obj, best_exact = [], [], [], [], []
            for i, j in enumerate(best):
                b_lcs = float(lcs[i, j])
                b_obj = float(obj[i, j])
                best_lcs.append(b_lcs)
                best_obj.append(b_obj)
                best_exact.append(bool(sc.exact.reshape(len(samples), k)[i, j]) if sc.exact is not None else False)
                base_lcs = float(base.lcs_ratio[i]) if base.lcs_ratio is not None else 0.0
                if cfg.select == "lcs":
                    better = (b_lcs, -b_obj) > (base_lcs, -float(base.nll[i]))
                else:
                    better = b_obj < float(base.nll[i])
                if (cfg.keep == "best" or better) and q_gen[i][j]:
                    kept_ctx.append(ctx[i])
                    kept_q.append(q_gen[i][j])
            loss = self._finetune(module, opt, kept_ctx, kept_q, sequence_nll, seed=_seed(self.seed, "shuffle", r))
            self.history_.append(
                {
                    "round": r + 1,
                    "mean_objective": float(np.mean(best_obj)),
                    "mean_lcs_ratio": float(np.mean(best_lcs)),
                    "extraction_rate": float(np.mean(best_exact)),
                    "kept": len(kept_q),
                    "finetune_loss": loss,
                    "seconds": time.perf_counter() - t0,
                }
            )
            if ckdir is not None:
                save_checkpoint(
                    ckdir / checkpoint_name(r + 1, CKPT_PREFIX),
                    {
                        "module": module.state_dict(),
                        "optimizer": opt.state_dict(),
                        "round": r + 1,
                        "history": self.history_,
                        "config": cfg.to_dict(),
                        "seed": int(self.seed),
                    },
                    CKPT_KIND,
                )
            if progress is not None:
                progress(1)
        module.eval()
        self.rounds_done_ = cfg.rounds
        return self

    def _finetune(self, module, opt, ctx, qs, nll_fn, *, seed: int) -> float:
        """`epochs` passes of AdamW on the mean per-token NLL of the kept prompts given their contexts."""
        cfg = self.config
        if not qs:
            return math.nan
        module.train()
        g = torch.Generator().manual_seed(seed)
        losses = []
        for _ in range(cfg.epochs):
            order = torch.randperm(len(qs), generator=g).tolist()
            for s in range(0, len(order), cfg.batch_size):
                idx = order[s : s + cfg.batch_size]
                loss = nll_fn(self.generator, [ctx[i] for i in idx], [qs[i] for i in idx], per_token=True).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
                opt.step()
                losses.append(float(loss.detach()))
        module.eval()
        return float(np.mean(losses))


# ---------------------------------------------------------------------------------------------- per-sample scores


def memorization_scores(
    target: Backend,
    texts: Sequence[str],
    *,
    generator: PromptGenerator | None = None,
    config: MemHunterConfig | None = None,
    n_prompts: int = 4,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-text memorization scores with plain prefix prompting and (given a trained `generator`) with generator
    prompts. One row per text long enough to cut (column `position` = its index in `texts`):
    lcs_ratio_prefix, exact_prefix (greedy from the prefix); with a generator, lcs_ratio_generator and
    exact_generator (best of `n_prompts` generator prompts: the greedy one and n_prompts - 1 sampled ones, each
    continued greedily) and best_prompt (its text); score = the largest LCSS ratio over all these prompts (the
    generator as a plug-in next to plain prompting), memorized = score >= tau.
    """
    cfg = config or (generator.config if generator is not None else MemHunterConfig())
    samples = cut_texts(target, texts, cfg)
    room = None if target.max_length is None else target.max_length - cfg.suffix_tokens
    base = score_prompts(target, samples.prefixes, samples.suffixes, batch_size=cfg.score_batch_size, nll=False)
    rows = pd.DataFrame(
        {
            "position": samples.index,
            "prefix_text": samples.prefix_texts,
            "suffix_text": samples.suffix_texts,
            "lcs_ratio_prefix": base.lcs_ratio,
            "exact_prefix": base.exact,
            "generated_prefix": target.decode(base.generated) if len(samples) else [],
        }
    )
    score = base.lcs_ratio.copy()
    if generator is not None and len(samples):
        if n_prompts < 1:
            raise ConfigError(f"`n_prompts` must be at least 1, got {n_prompts}")
        q_gen, q_tgt = generator.propose(target, samples, n_prompts, seed=_seed(seed, "score"))
        flat = [
            build_prompt(samples.prefixes[i], q, cfg.placement, room) for i in range(len(samples)) for q in q_tgt[i]
        ]
        sfx = [samples.suffixes[i] for i in range(len(samples)) for _ in range(n_prompts)]
        sc = score_prompts(target, flat, sfx, batch_size=cfg.score_batch_size, nll=False)
        lcs = sc.lcs_ratio.reshape(len(samples), n_prompts)
        ex = sc.exact.reshape(len(samples), n_prompts)
        j = lcs.argmax(axis=1)
        rows["lcs_ratio_generator"] = lcs.max(axis=1)
        rows["exact_generator"] = ex.any(axis=1)
        rows["best_prompt"] = generator.generator.decode([q_gen[i][jj] for i, jj in enumerate(j)])
        score = np.maximum(score, lcs.max(axis=1))
    rows["score"] = score
    rows["memorized"] = score >= cfg.tau
    rows.attrs["skipped"] = samples.skipped.tolist()
    return rows


# ---------------------------------------------------------------------------------------------- the test


@dataclasses.dataclass(frozen=True)
class DatasetTest:
    """The dataset-level test of suspect scores against reference (known non-member) scores.

    p_value: one-sided, H1: suspect scores are stochastically larger (Mann-Whitney) or larger in mean (Welch).
    reject: p_value < alpha. effect: Cliff's delta P(S > R) - P(S < R); effect_ci its interval (DeLong, `level`).
    power: the Mann-Whitney test's approximate power (Noether) at these sizes for a delta of `min_effect`;
    n_needed: per-group sizes that reach `target_power` for `min_effect`.
    """

    test: str
    statistic: float
    p_value: float
    alpha: float
    reject: bool
    effect: float
    effect_ci: list[float]
    n_suspect: int
    n_reference: int
    mean_suspect: float
    mean_reference: float
    min_effect: float
    power: float
    target_power: float
    n_needed: list[int]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def dataset_test(
    suspect: Sequence[float],
    reference: Sequence[float],
    *,
    alpha: float = 0.05,
    test: str = "mann-whitney",
    level: float = 0.95,
    min_effect: float = 0.3,
    target_power: float = 0.8,
) -> DatasetTest:
    """One-sided test that per-sample memorization scores of `suspect` exceed those of `reference`.

    suspect, reference: (n_s,), (n_r,) float scores (higher = more memorized). test: "mann-whitney" (exact
    without ties for small samples, else normal with tie correction; `rote.core.stats.mann_whitney_test`) or
    "welch" (one-sided Welch t). Cliff's delta with a `level` interval and a power analysis come with either.
    """
    if test not in TESTS:
        raise ConfigError(f"`test` must be one of {', '.join(TESTS)}, got {test!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"`alpha` must be in (0, 1), got {alpha}")
    s, r = np.asarray(suspect, dtype=float), np.asarray(reference, dtype=float)
    if len(s) < 2 or len(r) < 2:
        raise DataError(
            f"the dataset test needs at least 2 scored texts per set, got {len(s)} suspect and {len(r)} reference; "
            "give more (or longer) texts"
        )
    if test == "mann-whitney":
        stat, p = mann_whitney_test(s, r, alternative="greater")
    elif np.ptp(np.r_[s, r]) == 0 or (s.std() == 0 and r.std() == 0):
        stat, p = math.nan, 1.0  # identical constant scores: no evidence either way
    else:
        stat, p = welch_t(s, r, alternative="greater")
    ci = cliffs_delta_ci(s, r, level=level)
    return DatasetTest(
        test=test,
        statistic=float(stat),
        p_value=float(p),
        alpha=float(alpha),
        reject=bool(p < alpha),
        effect=float(cliffs_delta(s, r)),
        effect_ci=[float(ci.low), float(ci.high)],
        n_suspect=len(s),
        n_reference=len(r),
        mean_suspect=float(s.mean()),
        mean_reference=float(r.mean()),
        min_effect=float(min_effect),
        power=mann_whitney_power(min_effect, len(s), len(r), alpha=alpha),
        target_power=float(target_power),
        n_needed=list(mann_whitney_sample_size(min_effect, alpha=alpha, power=target_power, ratio=len(r) / len(s))),
    )


# ---------------------------------------------------------------------------------------------- input checks


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ")[0] if name else "OTHER"


def dominant_script(text: str) -> str:
    """The Unicode script word (LATIN, CYRILLIC, CJK, GREEK, ARABIC, ...) of most letters of `text`, "NONE" without
    letters."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            sc = _script(ch)
            counts[sc] = counts.get(sc, 0) + 1
    return max(counts, key=counts.get) if counts else "NONE"


def comparability_warnings(
    suspect: Sequence[str],
    reference: Sequence[str],
    suspect_tokens: Sequence[int],
    reference_tokens: Sequence[int],
    *,
    max_length_delta: float = 0.33,
    max_script_shift: float = 0.2,
) -> list[str]:
    """Reasons to doubt that suspect and reference come from one distribution (the test assumes they do):
    lengths in target tokens with |Cliff's delta| > max_length_delta (0.33: a "medium" difference, Romano et al.
    2006), or shares of texts by dominant script that differ by more than max_script_shift in total variation."""
    out = []
    d = cliffs_delta(np.asarray(suspect_tokens, float), np.asarray(reference_tokens, float))
    if abs(d) > max_length_delta:
        out.append(
            f"suspect and reference texts differ in length (median {np.median(suspect_tokens):.0f} vs "
            f"{np.median(reference_tokens):.0f} tokens, Cliff's delta {d:+.2f}); the test assumes one distribution, "
            "so pick reference texts of similar length"
        )
    ss = pd.Series([dominant_script(t) for t in suspect]).value_counts(normalize=True)
    rs = pd.Series([dominant_script(t) for t in reference]).value_counts(normalize=True)
    tv = 0.5 * float(ss.sub(rs, fill_value=0).abs().sum())
    if tv > max_script_shift:
        out.append(
            f"suspect and reference texts are in different scripts/languages (mostly {ss.idxmax()} vs "
            f"{rs.idxmax()}, total variation {tv:.2f}); the test assumes one distribution, so pick reference texts "
            "in the same language"
        )
    return out


# ---------------------------------------------------------------------------------------------- detection


@dataclasses.dataclass(frozen=True)
class DetectionResult(Result):
    """Outcome of `detect_dataset`: the test's fields (see `DatasetTest`) flattened for results.json, the score
    used, the generator's training history, warnings, and the per-text rows (rows.parquet; column `set`)."""

    p_value: float
    reject: bool
    alpha: float
    effect: float
    effect_ci: list[float]
    n_suspect: int
    n_reference: int
    test: str
    statistic: float
    mean_suspect: float
    mean_reference: float
    power: float
    min_effect: float
    target_power: float
    n_needed: list[int]
    score: str
    prefix_only: dict[str, Any]
    memorized_rate: dict[str, float]
    skipped: dict[str, int]
    generator_history: list[dict[str, Any]]
    warnings: list[str]
    rows: pd.DataFrame = table_field("rows")

    def summary(self) -> str:
        verdict = "REJECT: the suspect set looks memorized" if self.reject else "no evidence of memorization"
        lo, hi = self.effect_ci
        lines = [
            f"{verdict} ({self.test}, one-sided p = {self.p_value:.3g}, alpha = {self.alpha:g})",
            f"Cliff's delta {self.effect:+.3f} [{lo:+.3f}, {hi:+.3f}] on {self.score}; "
            f"n = {self.n_suspect} suspect, {self.n_reference} reference",
            f"power for delta {self.min_effect:g}: {self.power:.2f} (n per set for {self.target_power:g}: "
            f"{self.n_needed[0]}, {self.n_needed[1]})",
        ]
        return "\n".join(lines)  # warnings go to stderr (one line each) and to results.json


def _texts(x: Sequence[str] | pd.DataFrame, name: str) -> tuple[list[str], list[str]]:
    if isinstance(x, pd.DataFrame):
        if "text" not in x.columns:
            raise DataError(f"{name}: the table has no 'text' column")
        texts = x["text"].astype(str).tolist()
        ids = x["id"].astype(str).tolist() if "id" in x.columns else [f"{name}-{i}" for i in range(len(x))]
        return texts, ids
    texts = [str(t) for t in x]
    return texts, [f"{name}-{i}" for i in range(len(texts))]


def detect_dataset(
    target: Backend,
    suspect: Sequence[str] | pd.DataFrame,
    reference: Sequence[str] | pd.DataFrame,
    *,
    generator: Backend | None = None,
    train_texts: Sequence[str] | None = None,
    config: MemHunterConfig | None = None,
    n_prompts: int = 4,
    alpha: float = 0.05,
    test: str = "mann-whitney",
    min_effect: float = 0.3,
    target_power: float = 0.8,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Callable[[int], None] | None = None,
) -> DetectionResult:
    """Did `target` memorize the `suspect` dataset? Scores every suspect and reference text (see
    `memorization_scores`) and runs `dataset_test` on the scores.

    generator: optional local backend for memory-inducing prompts; with `train_texts` (known members, disjoint from
        both sets) it is first trained for `config.rounds` rounds (`PromptGenerator.fit`, checkpoints in
        `checkpoint_dir`). Without a generator the score is plain prefix prompting.
    Warns (and records in `warnings`) when the sets differ in length or script, when the test has less than
    `target_power` power for a Cliff's delta of `min_effect`, and when generator and target tokenizers differ.
    """
    cfg = config or MemHunterConfig()
    s_texts, s_ids = _texts(suspect, "suspect")
    r_texts, r_ids = _texts(reference, "reference")
    if not s_texts or not r_texts:
        raise DataError(f"`suspect` has {len(s_texts)} texts and `reference` {len(r_texts)}; give texts in both")
    overlap = set(s_texts) & set(r_texts)
    if overlap:
        raise DataError(
            f"{len(overlap)} texts are in both `suspect` and `reference` (e.g. {next(iter(overlap))[:60]!r}); "
            "reference texts must be known non-members, so remove them from one of the sets"
        )
    notes: list[str] = []
    history: list[dict[str, Any]] = []
    pg = None
    if generator is not None:
        if generator.tokenizer_fingerprint != target.tokenizer_fingerprint:
            notes.append(
                f"generator {generator.name} and target {target.name} have different tokenizers; prompts are passed "
                "as text (decoded and re-encoded), so their token counts differ from prompt_tokens"
            )
        pg = PromptGenerator(generator, cfg, seed=seed)
        if train_texts is not None and cfg.rounds > 0:
            leaked = set(train_texts) & (set(s_texts) | set(r_texts))
            if leaked:
                raise DataError(
                    f"{len(leaked)} generator training texts are also suspect or reference texts (e.g. "
                    f"{next(iter(leaked))[:60]!r}); training on them biases the test, so use disjoint texts"
                )
            pg.fit(target, list(train_texts), checkpoint_dir=checkpoint_dir, progress=progress)
            history = pg.history_
    rows_s = memorization_scores(target, s_texts, generator=pg, config=cfg, n_prompts=n_prompts, seed=seed)
    rows_r = memorization_scores(target, r_texts, generator=pg, config=cfg, n_prompts=n_prompts, seed=seed + 1)
    skipped = {"suspect": len(rows_s.attrs["skipped"]), "reference": len(rows_r.attrs["skipped"])}
    for name, n_skip, n_all in (
        ("suspect", skipped["suspect"], len(s_texts)),
        ("reference", skipped["reference"], len(r_texts)),
    ):
        if n_skip:
            notes.append(
                f"{n_skip} of {n_all} {name} texts have fewer than {cfg.prefix_tokens + cfg.suffix_tokens} target "
                "tokens and were not scored"
            )
    len_s = [len(x) for x in target.encode(s_texts)]
    len_r = [len(x) for x in target.encode(r_texts)]
    notes += comparability_warnings(s_texts, r_texts, len_s, len_r)
    res = dataset_test(
        rows_s["score"], rows_r["score"], alpha=alpha, test=test, min_effect=min_effect, target_power=target_power
    )
    if res.power < target_power:
        notes.append(
            f"{res.n_suspect} suspect and {res.n_reference} reference texts give the test power {res.power:.2f} for a "
            f"Cliff's delta of {min_effect:g}; {res.n_needed[0]} and {res.n_needed[1]} are needed for "
            f"{target_power:g}, so a non-rejection says little"
        )
    base = dataset_test(rows_s["lcs_ratio_prefix"], rows_r["lcs_ratio_prefix"], alpha=alpha, test=test)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    rows_s.insert(0, "set", "suspect")
    rows_r.insert(0, "set", "reference")
    rows_s.insert(0, "id", [s_ids[i] for i in rows_s["position"]])
    rows_r.insert(0, "id", [r_ids[i] for i in rows_r["position"]])
    rows = pd.concat([rows_s, rows_r], ignore_index=True)
    return DetectionResult(
        p_value=res.p_value,
        reject=res.reject,
        alpha=res.alpha,
        effect=res.effect,
        effect_ci=res.effect_ci,
        n_suspect=res.n_suspect,
        n_reference=res.n_reference,
        test=res.test,
        statistic=res.statistic,
        mean_suspect=res.mean_suspect,
        mean_reference=res.mean_reference,
        power=res.power,
        min_effect=res.min_effect,
        target_power=res.target_power,
        n_needed=res.n_needed,
        score="max LCSS ratio over prefix and generator prompts" if pg is not None else "LCSS ratio, prefix prompting",
        prefix_only={"p_value": base.p_value, "reject": base.reject, "effect": base.effect},
        memorized_rate={
            "suspect": float(rows_s["memorized"].mean()),
            "reference": float(rows_r["memorized"].mean()),
        },
        skipped=skipped,
        generator_history=history,
        warnings=notes,
        rows=rows,
    )


# ---------------------------------------------------------------------------------------------- plug-in search time


def queries_to_find(found_at: np.ndarray, n_found: int) -> int | None:
    """Target generations a round-robin search spends until `n_found` texts are extracted.

    found_at: (n,) int, the 1-based position of the first candidate that extracts each text (0 = never within
    the budget). Step t tries candidate t of every text not yet extracted, so after step t the search has spent
    sum_i min(t, found_at_i) generations (t for the texts still unextracted). Returns the spend at the end of the
    first step with at least `n_found` texts extracted, or None when the budget never reaches it.
    """
    f = np.asarray(found_at, dtype=np.int64)
    if n_found < 1:
        return 0
    hit = np.where(f > 0, f, np.iinfo(np.int64).max)
    for t in range(1, int(f.max(initial=0)) + 1):
        if int((hit <= t).sum()) >= n_found:
            return int(np.minimum(hit, t).sum())
    return None


def first_extraction(
    target: Backend, samples: Samples, candidates: Sequence[Sequence[Sequence[int]]], config: MemHunterConfig
) -> np.ndarray:
    """(n,) 1-based index of the first candidate prompt (target ids, each text's list in search order) whose greedy
    continuation reproduces the text's suffix exactly; 0 when none does. All candidates are scored in one batched
    call (the search order only matters for `queries_to_find`)."""
    room = None if target.max_length is None else target.max_length - config.suffix_tokens
    flat, sfx, owner = [], [], []
    for i, cands in enumerate(candidates):
        for q in cands:
            flat.append(build_prompt(samples.prefixes[i], q, config.placement, room))
            sfx.append(samples.suffixes[i])
            owner.append(i)
    sc = score_prompts(target, flat, sfx, batch_size=config.score_batch_size, nll=False)
    found = np.zeros(len(samples), dtype=np.int64)
    pos = np.zeros(len(samples), dtype=np.int64)
    for i, ok in zip(owner, sc.exact):
        pos[i] += 1
        if ok and found[i] == 0:
            found[i] = pos[i]
    return found
