"""Membership inference on texts: was this text in the model's training data?

Per-text scores from token log-probabilities (all from `rote.core.privacy`; higher = more likely member):

- `loss`: mean token log-likelihood (Yeom et al.; MIMIR `loss`);
- `zlib`: mean log-likelihood over the zlib-compressed length (Carlini et al. 2021);
- `min_k`: mean of the lowest k% token log-probs (Shi et al. 2024, k = 20%);
- `min_k_plus_plus`: the same on log-probs standardized by the model's next-token distribution (Zhang et al. 2024);
- `reference`: target minus reference-model mean log-likelihood (Carlini et al. 2021), only with a reference model
  that shares the target's tokenizer;
- `recall`: ReCaLL (Xie et al. 2024), LL(x | non-member prefix) / LL(x), with `recall_prefix` (the CLI's
  `--recall-shots N` uses the first N non-members as the prefix and leaves them out of every attack's evaluation);
- `neighbourhood`: neighbourhood comparison (Mattern et al. 2023), LL(x) minus the mean LL of `n_neighbours`
  perturbed copies of x. Deviation: MIMIR fills masked word spans with BERT/T5; rote works offline and replaces 15%
  of the words with words drawn from the texts given (seeded), which is a cruder neighbourhood.

What goes before each text's first token is one explicit option, `bos` ("auto": what the model's tokenizer itself
adds, as MIMIR does; "on": the BOS token; "off"), the same as in extraction and recorded in config.json. It
matters: SmolLM2's BOS is the chat marker <|im_start|>, which costs 8-13 nats on the next token.

`membership_inference(target, members, nonmembers)` scores both sets and reports, per attack, ROC AUC with a
DeLong interval, TPR at low FPR (strict `< fpr`, flagged where the non-members are too few to resolve it) and the
attacker advantage (`rote.core.privacy.membership_metrics`), plus `ngram_overlap`: a model-free check of how
different the two sets are (distribution shift).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rote.core import privacy
from rote.core.errors import ConfigError
from rote.core.results import Result, table_field
from rote.llm.backends.base import Backend, start_ids

ATTACKS: tuple[str, ...] = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "recall", "neighbourhood")
"""Attack names, in report order (`reference` only with a reference model, `recall` with a prefix, `neighbourhood`
with neighbours; `min_k_plus_plus` only where the model gives its next-token distributions, not over HTTP)."""

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


def _token_ids(backend: Backend, texts: list[str], bos: str = "auto") -> tuple[list[list[int]], np.ndarray]:
    """Token ids to score: `start_ids(backend, bos)` then the text, cut to the model's context. Returns (ids,
    truncated flags)."""
    start = start_ids(backend, bos)
    ids = [[*start, *x] for x in backend.encode(texts)]
    limit = backend.max_length
    truncated = np.asarray([limit is not None and len(x) > limit for x in ids])
    if limit is not None:
        ids = [x[:limit] for x in ids]
    return ids, truncated


def neighbours(texts: Sequence[str], n_neighbours: int, *, share: float = 0.15, seed: int = 0) -> list[list[str]]:
    """`n_neighbours` perturbed copies of each text: `share` of its words (at least one) replaced by words drawn
    from all the texts given (seeded by `seed`, the text's position and the neighbour's number; never the same word
    at that position). rote's offline stand-in for MIMIR's BERT/T5 mask filling."""
    if n_neighbours < 0:
        raise ConfigError(f"`n_neighbours` must be >= 0, got {n_neighbours}")
    words = [t.split() for t in texts]
    pool = sorted({w for ws in words for w in ws})
    out: list[list[str]] = []
    for i, ws in enumerate(words):
        mine = []
        for j in range(n_neighbours):
            rng = np.random.default_rng([int(seed), i, j])
            new = list(ws)
            if ws and len(pool) > 1:
                m = max(1, int(round(share * len(ws))))
                for pos in rng.choice(len(ws), size=min(m, len(ws)), replace=False):
                    w = new[pos]
                    while w == new[pos]:
                        w = pool[int(rng.integers(len(pool)))]
                    new[pos] = w
            mine.append(" ".join(new))
        out.append(mine)
    return out


def membership_scores(
    backend: Backend,
    texts: Sequence[str],
    *,
    reference: Backend | None = None,
    k: float = 0.2,
    bos: str = "auto",
    recall_prefix: str | None = None,
    n_neighbours: int = 0,
    seed: int = 0,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Score each text with every attack.

    Returns a DataFrame aligned with `texts`: n_tokens (scored tokens), truncated (text cut to the model's
    context), and one float column per attack in ATTACKS that applies (`reference` with a reference model,
    `recall` with `recall_prefix`, `neighbourhood` with `n_neighbours` > 0, `min_k_plus_plus` where the model gives
    next-token distributions); higher = more likely member. Texts with fewer than two tokens raise ConfigError
    naming the text's position.
    """
    if not backend.supports_logprobs:
        raise ConfigError(
            f"model {backend.name}: membership inference needs token log-probabilities of given text, which this "
            "backend does not give; use a local model, or an endpoint with /v1/completions echo + logprobs "
            "(open it with a local `tokenizer` folder)"
        )
    if not 0 < k <= 1:
        raise ConfigError(f"`k` (fraction of lowest-probability tokens) must be in (0, 1], got {k}")
    if batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1, got {batch_size}")
    if reference is not None:
        check_same_tokenizer(backend, reference)
        if not reference.supports_logprobs:
            raise ConfigError(f"reference model {reference.name}: gives no token log-probabilities")
    texts = [str(t) for t in texts]
    ids, truncated = _token_ids(backend, texts, bos)
    n_start = len(start_ids(backend, bos))
    for i, x in enumerate(ids):
        if len(x) < 2:
            raise ConfigError(
                f"text {i} ({texts[i][:40]!r}) has fewer than two tokens; membership scores need at "
                "least one token with context: drop it or give longer texts"
            )
    base = ["loss", "zlib", "min_k", "min_k_plus_plus"]
    rows: dict[str, list[Any]] = {a: [] for a in base}
    rows["n_tokens"] = []
    ref_rows: list[float] = []
    full_stats = True
    own: list[np.ndarray] = []
    for s in range(0, len(ids), batch_size):
        chunk = ids[s : s + batch_size]
        scored = backend.score(chunk, batch_size=batch_size, full_stats=True)
        ref_scored = reference.score(chunk, batch_size=batch_size) if reference is not None else None
        for j, sc in enumerate(scored):
            text = texts[s + j]
            own.append(sc.logprobs)
            rows["n_tokens"].append(len(sc.logprobs))
            rows["loss"].append(privacy.loss_score(sc.logprobs))
            rows["zlib"].append(privacy.zlib_score(sc.logprobs, text))
            rows["min_k"].append(privacy.min_k_score(sc.logprobs, k))
            if sc.mean_logprob is None or sc.std_logprob is None:
                full_stats = False
                rows["min_k_plus_plus"].append(np.nan)
            else:
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
            **{a: np.asarray(rows[a], np.float64) for a in base if a != "min_k_plus_plus" or full_stats},
        }
    )
    if reference is not None:
        frame["reference"] = np.asarray(ref_rows, np.float64)
    if recall_prefix is not None:
        frame["recall"] = _recall(backend, ids, own, n_start, recall_prefix, batch_size)
    if n_neighbours > 0:
        variants = neighbours(texts, n_neighbours, seed=seed)
        flat = [v for vs in variants for v in vs]
        nids, _ = _token_ids(backend, flat, bos)
        nsc = []
        for s in range(0, len(nids), batch_size):
            nsc.extend(sc.logprobs for sc in backend.score(nids[s : s + batch_size], batch_size=batch_size))
        per = [nsc[i * n_neighbours : (i + 1) * n_neighbours] for i in range(len(texts))]
        frame["neighbourhood"] = np.asarray(
            [
                privacy.loss_score(frame_lp) - float(np.mean([privacy.loss_score(x) for x in nb]))
                for frame_lp, nb in zip(own, per)
            ]
        )
    return frame


def _own_logprobs(backend: Backend, ids: list[list[int]], batch_size: int) -> list[np.ndarray]:
    out = []
    for s in range(0, len(ids), batch_size):
        out.extend(sc.logprobs for sc in backend.score(ids[s : s + batch_size], batch_size=batch_size))
    return out


def _recall(
    backend: Backend, ids: list[list[int]], own: list[np.ndarray], n_start: int, prefix: str, batch_size: int
) -> np.ndarray:
    """ReCaLL score of each text: its tokens scored after `prefix` (cut from the left to fit the context) against
    its tokens scored alone."""
    if not prefix.strip():
        raise ConfigError("`recall_prefix` is empty; give non-member text to condition on")
    pre = backend.encode([prefix.rstrip() + "\n\n"])[0]
    cond_ids = []
    for x in ids:
        body = x[n_start:]
        room = None if backend.max_length is None else backend.max_length - len(x)
        p = pre if room is None else pre[max(0, len(pre) - room) :]
        cond_ids.append([*x[:n_start], *p, *body])
    cond = _own_logprobs(backend, cond_ids, batch_size)
    out = []
    for lp, c, x in zip(own, cond, ids):
        m = min(len(lp), len(x) - n_start)  # the same tokens of the text, scored alone and after the prefix
        out.append(privacy.recall_score(lp[-m:], c[-m:]))
    return np.asarray(out, np.float64)


_WORD = re.compile(r"\w+", re.UNICODE)


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    w = _WORD.findall(text.lower())
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def ngram_overlap(
    members: Sequence[str], nonmembers: Sequence[str], *, n: int = 13, blind_n: int = 2
) -> dict[str, Any]:
    """A model-free check of how different the member and non-member sets are (distribution shift).

    - `nonmember_in_members` / `member_in_nonmembers`: share of each set's word `n`-grams (lower-cased) that occur
      in the other set (MIMIR filters non-members by 13-gram overlap with the training data);
    - `blind_auc` (with a DeLong interval): AUC of a score that never looks at the model: for each text, the share
      of its word `blind_n`-grams that occur in the *other* member texts minus the share in the *other* non-member
      texts (leave-one-out). Near 0.5 the sets look alike at this level; near 1 they can be told apart without the
      model, so a membership AUC on them measures the shift as well as membership (Duan et al. 2024; Das et al.
      2024's blind baselines).
    """
    if n < 1 or blind_n < 1:
        raise ConfigError(f"`n` must be >= 1, got {min(n, blind_n)}")
    mem, non = [str(t) for t in members], [str(t) for t in nonmembers]
    if not mem or not non:
        raise ConfigError("the n-gram overlap check needs member and non-member texts")
    gm = [_ngrams(t, n) for t in mem]
    gn = [_ngrams(t, n) for t in non]
    um, un = set().union(*gm), set().union(*gn)

    def share(own: list[set], other: set) -> float:
        tot = sum(len(g) for g in own)
        return float(sum(len(g & other) for g in own) / tot) if tot else float("nan")

    bm = [_ngrams(t, blind_n) for t in mem]
    bn = [_ngrams(t, blind_n) for t in non]
    from collections import Counter

    cm, cn = Counter(g for s_ in bm for g in s_), Counter(g for s_ in bn for g in s_)

    def blind(g: set, is_member: bool) -> float:
        if not g:
            return 0.0
        in_m = sum(1 for x in g if cm[x] - (1 if is_member else 0) > 0)
        in_n = sum(1 for x in g if cn[x] - (0 if is_member else 1) > 0)
        return (in_m - in_n) / len(g)

    scores = np.asarray([blind(g, True) for g in bm] + [blind(g, False) for g in bn])
    labels = np.r_[np.ones(len(mem)), np.zeros(len(non))].astype(bool)
    from rote.core.stats import auc_ci

    iv = auc_ci(scores[labels], scores[~labels])
    return {
        "n": int(n),
        "nonmember_in_members": share(gn, um),
        "member_in_nonmembers": share(gm, un),
        "blind_n": int(blind_n),
        "blind_auc": iv.estimate,
        "blind_auc_low": iv.low,
        "blind_auc_high": iv.high,
    }


@dataclasses.dataclass(frozen=True)
class MembershipResult(Result):
    """Membership inference of `n_members` member texts against `n_nonmembers` non-member texts.

    metrics: {attack: MembershipMetrics.to_dict()} (auc with its DeLong auc_interval, advantage, tpr_at_{fpr}_fpr
        with bootstrap intervals and tpr_at_{fpr}_fpr_resolved: False where 1/n_nonmembers >= fpr, so the value is
        the TPR at zero false positives).
    best_attack: the attack with the highest AUC.
    bos: what was put before each text ("auto", "on", "off"); start_ids: those token ids.
    overlap: `ngram_overlap` of the two sets (distribution-shift check).
    unavailable: {attack: why it was not run}.
    rows (rows.parquet): id, member (bool), group (when given), n_tokens, truncated, one column per attack.
    """

    model: str
    reference_model: str | None
    n_members: int
    n_nonmembers: int
    k: float
    bos: str
    start_ids: list[int]
    attacks: list[str]
    metrics: dict[str, dict[str, Any]]
    best_attack: str
    overlap: dict[str, Any]
    unavailable: dict[str, str]
    rows: pd.DataFrame = table_field("rows")

    def summary(self) -> str:
        lines = [
            f"model {self.model}: {self.n_members} members vs {self.n_nonmembers} non-members (bos {self.bos}: "
            f"{self.start_ids or 'nothing'} before each text)"
        ]
        for a in self.attacks:
            m = self.metrics[a]
            iv = m.get("auc_interval")
            ci = f" [{iv['low']:.3f}, {iv['high']:.3f}]" if iv and iv["low"] is not None else ""
            tpr = m.get("tpr_at_0.01_fpr", float("nan"))
            what = "TPR at 1% FPR" if m.get("tpr_at_0.01_fpr_resolved", True) else "TPR at 0 false positives"
            lines.append(f"{a:>16}: AUC {m['auc']:.3f}{ci}, {what} {tpr:.3f}")
        o = self.overlap
        lines.append(
            f"distribution-shift check: a model-free word {o['blind_n']}-gram score tells the sets apart with AUC "
            f"{o['blind_auc']:.3f} [{o['blind_auc_low']:.3f}, {o['blind_auc_high']:.3f}] (0.5 = alike)"
        )
        for a, why in self.unavailable.items():
            lines.append(f"{a:>16}: not run ({why})")
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
    if n_boot < 0:
        raise ConfigError(f"`n_boot` must be >= 0, got {n_boot}")
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
    bos: str = "auto",
    recall_shots: int = 0,
    n_neighbours: int = 0,
    fprs: Sequence[float] = DEFAULT_FPRS,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> MembershipResult:
    """Score member and non-member texts with every attack and compare them (AUC with a DeLong interval, TPR at
    `fprs` with `n_boot` stratified bootstrap replicates, advantage), and check the two sets for distribution shift.

    members, nonmembers: lists of texts or DataFrames with "text" (and optional "id", "group") columns.
    bos: "auto", "on" or "off" (see `rote.llm.backends.base.BOS_CHOICES`).
    recall_shots: ReCaLL with the first `recall_shots` non-members as the prefix; those non-members are then left out
        of the evaluation of every attack (0 = no ReCaLL).
    n_neighbours: neighbourhood attack with this many perturbed copies per text (0 = off; seeded by `seed`).
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

    if recall_shots < 0:
        raise ConfigError(f"`recall_shots` must be >= 0, got {recall_shots}")
    mem, non = frame(members, "member"), frame(nonmembers, "nonmember")
    prefix = None
    if recall_shots:
        if recall_shots >= len(non):
            raise ConfigError(
                f"`recall_shots` {recall_shots} leaves no non-member to evaluate ({len(non)} given); use fewer shots"
            )
        prefix = "\n\n".join(non["text"].astype(str).iloc[:recall_shots])
        non = non.iloc[recall_shots:].reset_index(drop=True)
    both = pd.concat([mem.assign(member=True), non.assign(member=False)], ignore_index=True)
    scores = membership_scores(
        backend,
        both["text"].astype(str).tolist(),
        reference=reference,
        k=k,
        bos=bos,
        recall_prefix=prefix,
        n_neighbours=n_neighbours,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    keep = ["id", "member"] + (["group"] if "group" in both.columns else [])
    rows = pd.concat([both[keep].reset_index(drop=True), scores], axis=1)
    rows["id"] = rows["id"].astype("string")
    attacks = [a for a in ATTACKS if a in scores.columns]
    unavailable = {}
    if "min_k_plus_plus" not in scores.columns:
        unavailable["min_k_plus_plus"] = f"{backend.name} gives no next-token distributions (HTTP endpoints)"
    metrics = attack_metrics(scores, rows["member"], attacks=attacks, fprs=fprs, n_boot=n_boot, seed=seed)
    best = max(attacks, key=lambda a: metrics[a].auc)
    return MembershipResult(
        model=backend.name,
        reference_model=None if reference is None else reference.name,
        n_members=len(mem),
        n_nonmembers=len(non),
        k=float(k),
        bos=bos,
        start_ids=start_ids(backend, bos),
        attacks=attacks,
        metrics={a: m.to_dict() for a, m in metrics.items()},
        best_attack=best,
        overlap=ngram_overlap(mem["text"].astype(str), non["text"].astype(str)),
        unavailable=unavailable,
        rows=rows,
    )
