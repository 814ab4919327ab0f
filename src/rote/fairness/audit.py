"""Fairness by memorization: flag a bias reduction between two models that memorized points explain.

A new model B can look fairer than a base model A because it memorized (fits exactly) a set of points whose
labels and groups happen to close the gaps: the paper's "metric gaming" (Pepin, Igel & Selvan, arXiv 2412.09254).
The audit asks how much of the reduction survives when B's predictions on its memorized rows are replaced by A's:

    reduction         = bias(A) - bias(B)
    counterfactual    = bias(B with A's predictions on the memorized rows)
    explained         = (counterfactual - bias(B)) / reduction          (share of the reduction due to M)

A metric is flagged when B reduces the bias by more than `min_reduction` and `explained >= threshold` (default
one half). With held-out predictions of both models, the held-out reduction is reported beside it: a reduction
that memorization explains on the evaluation rows and that vanishes on held-out rows is metric gaming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, table_field
from rote.fairness.bounds import min_mass_from_counts
from rote.fairness.memorization import as_mask
from rote.fairness.metrics import (
    AGGS,
    METHODS,
    METRIC_NAMES,
    METRICS,
    Encoded,
    _check_choice,
    aggregate,
    class_gaps_from_counts,
    confusion_counts,
    empty_cells,
    encode,
    raise_undefined,
)


@dataclass(frozen=True)
class GamingAudit(Result):
    """Result of `memorization_gaming_audit`.

    flagged: metrics whose reduction is explained by memorized rows (share >= threshold).
    p_memorized: weight share of the memorized rows. metrics (metrics.parquet): per metric: before, after,
    counterfactual, reduction, explained, after_unmemorized (B's bias on the unmemorized rows only),
    min_mass_p (the rows-model minimum memorized share that would zero A's bias), flagged, and with held-out data
    holdout_before, holdout_after, holdout_reduction. empty_cells: {metric: [{group, class, treatment}]}: every
    (group, class) cell without rows in the audited data and what was done with it (with `undefined="skip"`).
    """

    flagged: list[str]
    p_memorized: float
    n_memorized: int
    n_rows: int
    threshold: float
    min_reduction: float
    method: str
    agg: str
    values: dict[str, dict[str, float]]
    undefined: str
    empty_cells: dict[str, list[dict[str, str]]]
    metrics: pd.DataFrame = table_field("metrics")

    def summary(self) -> str:
        lines = [
            f"memorized {self.n_memorized:,} of {self.n_rows:,} rows (p = {self.p_memorized:.4f}); "
            f"flag when >= {self.threshold:.0%} of a reduction is explained by them"
        ]
        for m, v in self.values.items():
            expl = "n/a" if not np.isfinite(v["explained"]) else f"{v['explained']:.0%}"
            hold = ""
            if np.isfinite(v.get("holdout_reduction", np.nan)):
                hold = f"; held-out reduction {v['holdout_reduction']:+.4f}"
            tag = "  FLAGGED" if m in self.flagged else ""
            lines.append(
                f"{METRIC_NAMES[m]:<20} {v['before']:.4f} -> {v['after']:.4f} "
                f"(without memorized rows' gains {v['counterfactual']:.4f}; explained {expl}{hold}){tag}"
            )
            for cell in self.empty_cells.get(m) or []:
                lines.append(f"  empty cell: group {cell['group']}, class {cell['class']}: {cell['treatment']}")
        return "\n".join(lines)


def _agg(enc: Encoded, yhat: np.ndarray, metric: str, method: str, agg: str, keep: np.ndarray | None = None) -> float:
    G, C = enc.n_groups, enc.n_classes
    sel = slice(None) if keep is None else keep
    flat = (enc.g[sel] * C + enc.y[sel]) * C + yhat[sel]
    w = None if enc.w is None else enc.w[sel]
    counts = np.bincount(flat, weights=w, minlength=G * C * C).astype(float).reshape(G, C, C)
    return aggregate(*class_gaps_from_counts(counts, metric, method), agg)


def _encode_pair(
    y_true: Any, before: Any, after: Any, groups: Any, weight: Any, labels: Sequence[Any] | None, role: str
) -> tuple[Encoded, np.ndarray]:
    enc = encode(y_true, before, groups, weight, labels)
    try:
        enc_b = encode(y_true, after, groups, weight, enc.labels)
    except DataError as exc:  # name the second prediction column as such
        raise DataError(str(exc).replace("y_pred:", "pred_after:", 1)) from None
    if not np.array_equal(enc.g, enc_b.g):
        raise DataError(f"{role}: group codes differ between the two encodings")  # pragma: no cover
    return enc, enc_b.yhat


def memorization_gaming_audit(
    y_true: Any,
    pred_before: Any,
    pred_after: Any,
    *,
    sensitive_features: Any,
    memorized: Any,
    sample_weight: Any = None,
    metrics: Sequence[str] = METRICS,
    method: str = "between_groups",
    agg: str = "sum",
    labels: Sequence[Any] | None = None,
    threshold: float = 0.5,
    min_reduction: float = 0.0,
    holdout: dict[str, Any] | None = None,
    undefined: str = "raise",
) -> GamingAudit:
    """Flag bias reductions from model A (`pred_before`) to model B (`pred_after`) explained by memorized rows.

    y_true, pred_before, pred_after, sensitive_features, sample_weight: (n,) arrays on the same rows.
    memorized: (n,) bool, the rows B memorized (e.g. its training rows it fits exactly, or rows a memorization
        score flags).
    threshold: flag when at least this share of the reduction disappears without the memorized rows' gains.
    min_reduction: reductions at or below this are never flagged.
    holdout: optional {"y_true", "pred_before", "pred_after", "sensitive_features"[, "sample_weight"]} of rows
        neither model trained on; adds the held-out reduction per metric.
    undefined: "raise" (default, as every rote fairness entry point): a group without rows of some class is an
        error naming it; "skip": that group is left out of the class's gap (and a class fewer than two groups have
        is left out of the aggregate), and `empty_cells` lists exactly what was left out. ("zero" applies to the
        metrics only: the audit compares rates that exist.)
    """
    for m in metrics:
        _check_choice("metric", m, METRICS)
    _check_choice("method", method, METHODS)
    _check_choice("agg", agg, AGGS)
    if undefined not in ("raise", "skip"):
        raise ConfigError(
            f"`undefined` {undefined!r}: the audit takes raise or skip (zero applies to the metrics only)"
        )
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    enc, after = _encode_pair(y_true, pred_before, pred_after, sensitive_features, sample_weight, labels, "audit")
    mask = as_mask(memorized, len(enc.y))
    cf = np.where(mask, enc.yhat, after)
    hold = None
    if holdout is not None:
        missing = {"y_true", "pred_before", "pred_after", "sensitive_features"} - set(holdout)
        if missing:
            raise ConfigError(f"holdout: missing {', '.join(sorted(missing))}")
        hold = _encode_pair(
            holdout["y_true"],
            holdout["pred_before"],
            holdout["pred_after"],
            holdout["sensitive_features"],
            holdout.get("sample_weight"),
            list(enc.labels),
            "holdout",
        )
    w = enc.w if enc.w is not None else np.ones(len(enc.y))
    base_counts = confusion_counts(enc)
    rows, values, flagged, cells = [], {}, [], {}
    for m in metrics:
        if undefined == "raise":
            raise_undefined(base_counts, m, enc.labels, enc.groups)
        cells[m] = empty_cells(base_counts, m, enc.labels, enc.groups, "skip")
        b = _agg(enc, enc.yhat, m, method, agg)
        a = _agg(enc, after, m, method, agg)
        c = _agg(enc, cf, m, method, agg)
        red = b - a
        explained = (c - a) / red if red > 0 else float("nan")
        unmem = _agg(enc, after, m, method, agg, keep=~mask) if (~mask).any() else float("nan")
        mm = min_mass_from_counts(base_counts, m, model="rows")
        v = {
            "before": b,
            "after": a,
            "counterfactual": c,
            "reduction": red,
            "explained": explained,
            "after_unmemorized": unmem,
            "min_mass_p": mm.p_memorized,
        }
        if hold is not None:
            he, ha = hold
            hb, haf = _agg(he, he.yhat, m, method, agg), _agg(he, ha, m, method, agg)
            v.update(holdout_before=hb, holdout_after=haf, holdout_reduction=hb - haf)
        is_flag = bool(red > min_reduction and np.isfinite(explained) and explained >= threshold)
        v["flagged"] = is_flag
        if is_flag:
            flagged.append(m)
        values[m] = v
        rows.append({"metric": m, **v})
    return GamingAudit(
        flagged=flagged,
        p_memorized=float(w[mask].sum() / w.sum()),
        n_memorized=int(mask.sum()),
        n_rows=len(mask),
        threshold=float(threshold),
        min_reduction=float(min_reduction),
        method=method,
        agg=agg,
        values=values,
        undefined=undefined,
        empty_cells=cells,
        metrics=pd.DataFrame(rows),
    )
