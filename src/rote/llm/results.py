"""The ground-truth canary study: extraction and membership of planted canaries, by number of copies.

`evaluate_canaries(backend, canaries)` takes the canary table of a `PlantedCorpus` (id, text, repeats, member) and
measures (1) greedy extraction of each canary's tail from its first tokens, grouped by repeat count, and (2) the
membership AUC of the canaries planted r times against the unseen ones (repeats 0), for every attack. It is what
`rote llm train-tiny` reports after training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from rote.core.errors import ConfigError
from rote.core.results import Result, internal_field, table_field
from rote.llm.backends.base import Backend
from rote.llm.extraction import ExtractionResult, extract
from rote.llm.membership import attack_metrics, membership_scores


@dataclasses.dataclass(frozen=True)
class CanaryStudyResult(Result):
    """Extraction and membership of planted canaries.

    extraction_rate: {repeats: {prefix length: share of canaries extracted exactly}} (repeats 0 = unseen).
    membership_auc: {repeats: {attack: AUC of those canaries against the unseen ones}}.
    extraction (extraction.parquet): per (canary, prefix length) rows of `extract` (group = repeats).
    extraction_groups (extraction_groups.parquet): per (repeats, prefix length) summary with bootstrap intervals.
    membership (membership.parquet): per canary: id, repeats, member and one score column per attack.
    membership_by_repeats (membership_by_repeats.parquet): repeats, attack, auc, auc_low, auc_high, tpr_at_0.01.
    """

    model: str
    n_canaries: int
    prefix_tokens: list[int]
    suffix_tokens: int
    extraction_rate: dict[int, dict[int, float]]
    membership_auc: dict[int, dict[str, float]]
    extraction: pd.DataFrame = table_field("extraction")
    extraction_groups: pd.DataFrame = table_field("extraction_groups")
    membership: pd.DataFrame = table_field("membership")
    membership_by_repeats: pd.DataFrame = table_field("membership_by_repeats")
    extraction_result: ExtractionResult | None = internal_field()

    def summary(self) -> str:
        lines = [f"model {self.model}: {self.n_canaries} canaries"]
        kmax = max(self.prefix_tokens)
        for r, per_k in sorted(self.extraction_rate.items()):
            aucs = self.membership_auc.get(r, {})
            auc = f", membership AUC (loss) {aucs['loss']:.3f}" if "loss" in aucs else ""
            lines.append(f"x{r:<4} canaries: extracted {per_k[kmax]:.1%} with a {kmax}-token prefix{auc}")
        return "\n".join(lines)


def evaluate_canaries(
    backend: Backend,
    canaries: pd.DataFrame,
    *,
    prefix_tokens: Sequence[int] = (10, 25, 50),
    suffix_tokens: int = 50,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> CanaryStudyResult:
    """Extraction by repeat count and prefix length, and membership AUC of each repeat count vs unseen canaries.

    canaries: DataFrame with id, text and repeats (0 = never in the training data), e.g. `PlantedCorpus.canaries`.
    """
    for col in ("id", "text", "repeats"):
        if col not in canaries.columns:
            raise ConfigError(f"the canary table needs an {col!r} column (see rote.llm.corpus.plant_canaries)")
    frame = canaries.reset_index(drop=True)
    if not (frame["repeats"] == 0).any():
        raise ConfigError("no unseen canaries (repeats 0): membership needs non-members of the same form")
    ext = extract(
        backend,
        frame,
        prefix_tokens=prefix_tokens,
        suffix_tokens=suffix_tokens,
        group="repeats",
        n_boot=n_boot,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    scores = membership_scores(backend, frame["text"].astype(str).tolist(), batch_size=batch_size)
    mem = pd.concat([frame[["id", "repeats"]].assign(member=frame["repeats"].to_numpy() > 0), scores], axis=1)
    unseen = mem["repeats"] == 0
    by_rep: list[dict[str, Any]] = []
    auc: dict[int, dict[str, float]] = {}
    for r in sorted(int(x) for x in mem.loc[~unseen, "repeats"].unique()):
        sub = mem[unseen | (mem["repeats"] == r)]
        ms = attack_metrics(sub, sub["member"], fprs=(0.01,), n_boot=n_boot, seed=seed)
        auc[r] = {a: float(m.auc) for a, m in ms.items()}
        for a, m in ms.items():
            iv = m.auc_interval
            by_rep.append(
                {
                    "repeats": r,
                    "attack": a,
                    "auc": m.auc,
                    "auc_low": iv.low if iv else float("nan"),
                    "auc_high": iv.high if iv else float("nan"),
                    "tpr_at_0.01": m.tpr_at[0.01],
                }
            )
    g = ext.groups
    rates = {
        int(r): {int(k): float(v) for k, v in zip(gg["prefix_tokens"], gg["extraction_rate"])}
        for r, gg in g.groupby("group")
    }
    return CanaryStudyResult(
        model=backend.name,
        n_canaries=len(frame),
        prefix_tokens=ext.prefix_tokens,
        suffix_tokens=ext.suffix_tokens,
        extraction_rate=rates,
        membership_auc=auc,
        extraction=ext.rows,
        extraction_groups=g,
        membership=mem,
        membership_by_repeats=pd.DataFrame(by_rep),
        extraction_result=ext,
    )
