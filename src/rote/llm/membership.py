"""Membership inference on texts: was this text in the model's training data?

Per-text scores from token log-probabilities (all from `rote.core.privacy`; higher = more likely member):

- `loss`: mean token log-likelihood (Yeom et al.; MIMIR `loss`);
- `zlib`: mean log-likelihood over the zlib-compressed length (Carlini et al. 2021);
- `min_k`: mean of the lowest k% token log-probs (Shi et al. 2024, k = 20%);
- `min_k_plus_plus`: the same on log-probs standardized by the model's next-token distribution (Zhang et al. 2024);
- `reference`: target minus reference-model mean log-likelihood (Carlini et al. 2021), only with a reference model
  that shares the target's tokenizer.

`membership_inference(target, members, nonmembers)` scores both sets and reports, per attack, ROC AUC, TPR at low
FPR and the attacker advantage with stratified bootstrap intervals (`rote.core.privacy.membership_metrics`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rote.core import privacy
from rote.core.errors import ConfigError
from rote.core.results import Result, table_field
from rote.llm.backends.base import Backend

ATTACKS: tuple[str, ...] = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference")
"""Attack names, in report order (`reference` only with a reference model)."""

DEFAULT_FPRS: tuple[float, ...] = (0.001, 0.01, 0.1)


def check_same_tokenizer(target: Backend, reference: Backend) -> None:
    """ConfigError unless both models map token ids to the same strings (the reference attack compares them)."""
    if target.tokenizer_fingerprint != reference.tokenizer_fingerprint:
        raise ConfigError(
            f"reference model {reference.name} has a different tokenizer than target model {target.name} "
            f"(vocabulary fingerprints {reference.tokenizer_fingerprint} vs {target.tokenizer_fingerprint}); the "
            "reference attack compares per-token log-likelihoods, so pick a reference model with the same tokenizer "
            "(e.g. a smaller model of the same family) or drop `reference_model`"
        )


def _token_ids(backend: Backend, texts: list[str]) -> tuple[list[list[int]], np.ndarray]:
    """Token ids to score: BOS prepended when the model has one (so the first real token is scored too), cut to the
    model's context. Returns (ids, truncated flags)."""
    ids = backend.encode(texts)
    if backend.bos_token_id is not None:
        ids = [[backend.bos_token_id, *x] for x in ids]
    limit = backend.max_length
    truncated = np.asarray([limit is not None and len(x) > limit for x in ids])
    if limit is not None:
        ids = [x[:limit] for x in ids]
    return ids, truncated


def membership_scores(
    backend: Backend,
    texts: Sequence[str],
    *,
    reference: Backend | None = None,
    k: float = 0.2,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Score each text with every attack.

    Returns a DataFrame aligned with `texts`: n_tokens (scored tokens), truncated (text cut to the model's
    context), and one float column per attack in ATTACKS (`reference` only with a reference model); higher = more
    likely member. Texts with fewer than two tokens raise ConfigError naming the text's position.
    """
    if not backend.supports_logprobs:
        raise ConfigError(
            f"model {backend.name}: membership inference needs token log-probabilities, which this "
            "backend does not give (text-only HTTP endpoints); use a local model"
        )
    if not 0 < k <= 1:
        raise ConfigError(f"k (fraction of lowest-probability tokens) must be in (0, 1], got {k}")
    if reference is not None:
        check_same_tokenizer(backend, reference)
        if not reference.supports_logprobs:
            raise ConfigError(f"reference model {reference.name}: gives no token log-probabilities")
    texts = [str(t) for t in texts]
    ids, truncated = _token_ids(backend, texts)
    for i, x in enumerate(ids):
        if len(x) < 2:
            raise ConfigError(
                f"text {i} ({texts[i][:40]!r}) has fewer than two tokens; membership scores need at "
                "least one token with context: drop it or give longer texts"
            )
    rows: dict[str, list[Any]] = {a: [] for a in ATTACKS[:4]}
    rows["n_tokens"] = []
    ref_rows: list[float] = []
    for s in range(0, len(ids), batch_size):
        chunk = ids[s : s + batch_size]
        scored = backend.score(chunk, batch_size=batch_size, full_stats=True)
        ref_scored = reference.score(chunk, batch_size=batch_size) if reference is not None else None
        for j, sc in enumerate(scored):
            text = texts[s + j]
            rows["n_tokens"].append(len(sc.logprobs))
            rows["loss"].append(privacy.loss_score(sc.logprobs))
            rows["zlib"].append(privacy.zlib_score(sc.logprobs, text))
            rows["min_k"].append(privacy.min_k_score(sc.logprobs, k))
            rows["min_k_plus_plus"].append(
                privacy.min_k_plus_plus_score(sc.logprobs, sc.mean_logprob, sc.std_logprob, k)
            )
            if ref_scored is not None:
                ref_rows.append(privacy.reference_score(sc.logprobs, ref_scored[j].logprobs))
        if progress is not None:
            progress(len(chunk))
    frame = pd.DataFrame(
        {
            "n_tokens": np.asarray(rows["n_tokens"], np.int64),
            "truncated": truncated,
            **{a: np.asarray(rows[a], np.float64) for a in ATTACKS[:4]},
        }
    )
    if reference is not None:
        frame["reference"] = np.asarray(ref_rows, np.float64)
    return frame


@dataclasses.dataclass(frozen=True)
class MembershipResult(Result):
    """Membership inference of `n_members` member texts against `n_nonmembers` non-member texts.

    metrics: {attack: MembershipMetrics.to_dict()} (auc, advantage, tpr_at_{fpr}_fpr and bootstrap intervals).
    best_attack: the attack with the highest AUC.
    rows (rows.parquet): id, member (bool), group (when given), n_tokens, truncated, one column per attack.
    """

    model: str
    reference_model: str | None
    n_members: int
    n_nonmembers: int
    k: float
    attacks: list[str]
    metrics: dict[str, dict[str, Any]]
    best_attack: str
    rows: pd.DataFrame = table_field("rows")

    def summary(self) -> str:
        lines = [f"model {self.model}: {self.n_members} members vs {self.n_nonmembers} non-members"]
        for a in self.attacks:
            m = self.metrics[a]
            iv = m.get("auc_interval")
            ci = f" [{iv['low']:.3f}, {iv['high']:.3f}]" if iv and iv["low"] is not None else ""
            lines.append(f"{a:>16}: AUC {m['auc']:.3f}{ci}, TPR at 1% FPR {m.get('tpr_at_0.01_fpr', float('nan')):.3f}")
        return "\n".join(lines)


def attack_metrics(
    scores: pd.DataFrame,
    member: Any,
    *,
    attacks: Sequence[str] | None = None,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """{attack: MembershipMetrics} for each attack column of `scores` against the boolean `member` labels."""
    y = np.asarray(member, dtype=bool)
    if y.all() or not y.any():
        raise ConfigError("membership metrics need both members and non-members")
    attacks = [a for a in ATTACKS if a in scores.columns] if attacks is None else list(attacks)
    return {
        a: privacy.membership_metrics(scores[a].to_numpy(np.float64), y, fprs=fprs, n_boot=n_boot, seed=seed)
        for a in attacks
    }


def membership_inference(
    backend: Backend,
    members: Sequence[str] | pd.DataFrame,
    nonmembers: Sequence[str] | pd.DataFrame,
    *,
    reference: Backend | None = None,
    k: float = 0.2,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> MembershipResult:
    """Score member and non-member texts with every attack and compare them (AUC, TPR at `fprs`, advantage, with
    `n_boot` stratified bootstrap replicates for intervals).

    members, nonmembers: lists of texts or DataFrames with "text" (and optional "id", "group") columns.
    """

    def frame(x: Sequence[str] | pd.DataFrame, tag: str) -> pd.DataFrame:
        f = x.reset_index(drop=True).copy() if isinstance(x, pd.DataFrame) else pd.DataFrame({"text": list(x)})
        if "text" not in f.columns:
            raise ConfigError(f"the {tag} table needs a 'text' column")
        if len(f) == 0:
            raise ConfigError(f"no {tag} texts given; membership inference needs members and non-members")
        if "id" not in f.columns:
            f["id"] = [f"{tag}-{i}" for i in range(len(f))]
        return f

    mem, non = frame(members, "member"), frame(nonmembers, "nonmember")
    both = pd.concat([mem.assign(member=True), non.assign(member=False)], ignore_index=True)
    scores = membership_scores(
        backend, both["text"].astype(str).tolist(), reference=reference, k=k, batch_size=batch_size, progress=progress
    )
    keep = ["id", "member"] + (["group"] if "group" in both.columns else [])
    rows = pd.concat([both[keep].reset_index(drop=True), scores], axis=1)
    rows["id"] = rows["id"].astype("string")
    attacks = [a for a in ATTACKS if a in scores.columns]
    metrics = attack_metrics(scores, rows["member"], attacks=attacks, fprs=fprs, n_boot=n_boot, seed=seed)
    best = max(attacks, key=lambda a: metrics[a].auc)
    return MembershipResult(
        model=backend.name,
        reference_model=None if reference is None else reference.name,
        n_members=len(mem),
        n_nonmembers=len(non),
        k=float(k),
        attacks=attacks,
        metrics={a: m.to_dict() for a, m in metrics.items()},
        best_attack=best,
        rows=rows,
    )
