"""How memorizing a set of rows changes the additive fairness metrics (Pepin, Igel & Selvan, arXiv 2412.09254).

The memorizing classifier h predicts the true label on the memorized set M and the base classifier g elsewhere:
h(x) = y(x) on M, g(x) on M^c. Each rate of h is a mixture of "memorized => correct" and "unmemorized => g"
(notation of docs/fairness.md; all probabilities are weight-proportional over the rows):

    SP:    P(h=k | A=a)         = mu_a q_a(k)          + (1 - mu_a) r_a(k)
    EOpp:  P(h=y | Y=y, A=a)    = rho_{a,y}            + (1 - rho_{a,y}) t_{a,y}
    EOdds: P(h=k | Y=y, A=a)    = rho_{a,y} [k = y]    + (1 - rho_{a,y}) R_{a,y}(k)

with mu_a = P(M | A=a), q_a(k) = P(Y=k | M, A=a), r_a(k) = P(g=k | M^c, A=a), rho_{a,y} = P(M | Y=y, A=a),
R_{a,y}(k) = P(g=k | Y=y, A=a, M^c), t_{a,y} = R_{a,y}(y). The first term of each line is the memorized set's
share of the rate, the second the unmemorized set's; a factor that is 0 makes its term 0 even when the
conditional probability beside it is undefined (for example r_a when all of group a is memorized).

`memorization_effect` computes the metrics of g (before) and of h (after) twice: from these closed forms and by
building h's predictions and counting directly. The two must agree to rounding; the largest difference is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, table_field
from rote.fairness.metrics import (
    _fmt,
    METRIC_NAMES,
    METRICS,
    Encoded,
    _py,
    check_options,
    _raise_undefined,
    empty_cells,
    aggregate,
    class_gaps_from_counts,
    confusion_counts,
    encode,
)


def as_mask(memorized: Any, n: int, name: str = "memorized") -> np.ndarray:
    """(n,) bool from booleans, 0/1 numbers or the strings true/false/yes/no/1/0 (any case); other values are an
    error naming the first bad row."""
    if isinstance(memorized, pd.Series):
        arr = (
            memorized.to_numpy(dtype=object, na_value=None)
            if not (isinstance(memorized.dtype, np.dtype) and memorized.dtype.kind in "biuf")
            else memorized.to_numpy()
        )
    else:
        arr = np.asarray(memorized)
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"{name}: expected {n} values (one per row), got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.copy()
    if arr.dtype.kind in "biuf":
        bad = ~np.isin(arr, (0, 1))
        out = arr == 1
    else:
        text = np.array([str(v).strip().lower() if v is not None else "" for v in arr], dtype=object)
        yes, no = np.isin(text, ("true", "1", "yes", "1.0")), np.isin(text, ("false", "0", "no", "0.0"))
        bad, out = ~(yes | no), yes
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{name}: value {_fmt(arr[i])} at row {i + 1} is not a boolean ({int(bad.sum())} such rows); "
            "use true/false or 1/0"
        )
    return np.asarray(out, bool)


# ---------------------------------------------------------------------------------------------- closed form


def decomposition(counts_mem: np.ndarray, counts_unmem: np.ndarray, metric: str) -> dict[str, np.ndarray]:
    """The factors of the closed form for one metric, for every group and (last row) the whole population.

    counts_mem, counts_unmem: (G, C, C) weighted counts [group, true, base prediction] on M and M^c.
    Returns arrays with a leading axis of G + 1 (groups, then overall):
    - "share": mu_a (SP, shape (G+1, 1)) or rho_{a,y} (EOpp/EOdds, (G+1, C) / (G+1, C, 1)),
    - "mem_rate": q_a(k) or [k = y], "unmem_rate": r_a(k), t_{a,y} or R_{a,y}(k) (NaN where undefined),
    - "mem_term" = share * mem_rate, "unmem_term" = (1 - share) * unmem_rate (0 where the factor is 0),
    - "rate" = mem_term + unmem_term, "defined": where the rate itself is defined.
    """
    cm = np.concatenate([counts_mem, counts_mem.sum(axis=0, keepdims=True)])  # (G+1, C, C)
    cu = np.concatenate([counts_unmem, counts_unmem.sum(axis=0, keepdims=True)])
    C = cm.shape[1]
    if metric == "sp":
        m_ay = cm.sum(axis=2)  # (G+1, C) memorized mass by true label
        pi_a = (cm.sum(axis=(1, 2)) + cu.sum(axis=(1, 2)))[:, None]
        mem_mass, unmem_by_pred = m_ay.sum(axis=1, keepdims=True), cu.sum(axis=1)  # (G+1,1), (G+1,C)
        share = _div(mem_mass, pi_a)  # mu_a
        mem_rate = _div(m_ay, mem_mass)  # q_a(k): label mix of the memorized rows
        unmem_rate = _div(unmem_by_pred, unmem_by_pred.sum(axis=1, keepdims=True))  # r_a(k)
        defined = np.broadcast_to(pi_a > 0, m_ay.shape)
    else:
        m_ay = cm.sum(axis=2)  # (G+1, C)
        u_ay = cu.sum(axis=2)
        pi_ay = m_ay + u_ay
        share = _div(m_ay, pi_ay)  # rho_{a,y}
        R = _div(cu, u_ay[:, :, None])  # R_{a,y}(k) on M^c
        if metric == "eopp":
            mem_rate = np.ones_like(share)
            unmem_rate = np.diagonal(R, axis1=1, axis2=2).copy()  # t_{a,y}
            defined = pi_ay > 0
        else:
            share = share[:, :, None]
            mem_rate = np.broadcast_to(np.eye(C), R.shape).copy()
            unmem_rate = R
            defined = np.broadcast_to((pi_ay > 0)[:, :, None], R.shape)
    mem_term = np.where(np.nan_to_num(share) > 0, np.nan_to_num(share) * np.nan_to_num(mem_rate), 0.0)
    comp = 1.0 - np.nan_to_num(share)
    unmem_term = np.where(comp > 0, comp * np.nan_to_num(unmem_rate), 0.0)
    rate = np.where(defined, mem_term + unmem_term, np.nan)
    return {
        "share": share,
        "mem_rate": mem_rate,
        "unmem_rate": unmem_rate,
        "mem_term": mem_term,
        "unmem_term": unmem_term,
        "rate": rate,
        "defined": np.asarray(defined),
    }


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    b = np.broadcast_to(b, np.broadcast_shapes(a.shape, b.shape))
    return np.divide(a, b, out=np.full(b.shape, np.nan), where=b > 0)


def closed_form_gaps(
    dec: dict[str, np.ndarray], metric: str, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(C,) per-class gaps after memorization from the closed form, their defined mask, and each gap split into
    the memorized set's part and the unmemorized set's part (the two parts add up to the gap).

    The gap of a rate is the signed difference of one pair: the highest and lowest group (between_groups) or
    the farthest group and the overall rate (to_overall); both terms are differenced over the same pair."""
    rate, defined = dec["rate"][:-1], dec["defined"][:-1]
    overall = dec["rate"][-1]
    mt, ut = dec["mem_term"], dec["unmem_term"]
    ok = defined.sum(axis=0) >= 2
    if method == "between_groups":
        hi = np.argmax(np.where(defined, rate, -np.inf), axis=0)
        lo = np.argmin(np.where(defined, rate, np.inf), axis=0)
        sign = np.ones(hi.shape)
    else:
        hi = np.argmax(np.where(defined, np.abs(rate - overall), -np.inf), axis=0)
        lo = np.full(hi.shape, rate.shape[0])  # index of the overall row
        sign = np.sign(np.take_along_axis(rate, hi[None], 0)[0] - overall)
    take = lambda arr, idx: np.take_along_axis(arr, idx[None], 0)[0]  # noqa: E731
    mem_part = sign * (take(mt, hi) - take(mt, lo))
    unmem_part = sign * (take(ut, hi) - take(ut, lo))
    gaps = mem_part + unmem_part
    if metric == "eodds":
        ok = ok.all(axis=1)
        gaps, mem_part, unmem_part = gaps.sum(axis=1), mem_part.sum(axis=1), unmem_part.sum(axis=1)
    nan = lambda v: np.where(ok, v, np.nan)  # noqa: E731
    return nan(gaps), ok, nan(mem_part), nan(unmem_part)


# ---------------------------------------------------------------------------------------------- result


@dataclass(frozen=True)
class MemorizationEffect(Result):
    """Metrics of the base classifier g (before) and of the memorizing classifier h (after).

    before, after: {metric: aggregate gap} computed directly from predictions; after_closed_form: the same from
    the closed-form decomposition; max_abs_difference: largest |direct - closed form| over aggregates and class
    gaps (rounding only). memorized_mass: weight of the memorized rows; p_memorized: their share of all weight
    (the paper's p_D). mu: {group: P(M | A=group)}. accuracy_before / accuracy_after: weighted accuracy of g / h.
    classes (classes.parquet): metric, class, gap_before, gap_after, memorized_part, unmemorized_part.
    terms (terms.parquet): metric, group ("(overall)" for the population), class, predicted, share (mu or rho),
    memorized_rate, unmemorized_rate, memorized_term, unmemorized_term, rate_after, rate_before.
    """

    before: dict[str, float]
    after: dict[str, float]
    after_closed_form: dict[str, float]
    max_abs_difference: float
    memorized_mass: float
    p_memorized: float
    n_memorized: int
    n_rows: int
    mu: dict[str, float]
    accuracy_before: float
    accuracy_after: float
    method: str
    agg: str
    labels: list[Any]
    groups: list[Any]
    empty_cells: dict[str, list[dict[str, str]]]
    classes: pd.DataFrame = table_field("classes")
    terms: pd.DataFrame = table_field("terms")

    def summary(self) -> str:
        lines = [
            f"memorized {self.n_memorized:,} of {self.n_rows:,} rows (p_D = {self.p_memorized:.4f}); "
            f"accuracy {self.accuracy_before:.4f} -> {self.accuracy_after:.4f}",
            f"{'metric':<20} {'before':>8} {'after':>8}  (closed form agrees to {self.max_abs_difference:.1e})",
        ]
        for m in self.before:
            lines.append(f"{METRIC_NAMES[m]:<20} {self.before[m]:>8.4f} {self.after[m]:>8.4f}")
            cells = self.empty_cells.get(m) or []
            if cells:
                shown = "; ".join(f"{c['group']}/{c['class']}" for c in cells[:6]) + ("; ..." if len(cells) > 6 else "")
                lines.append(f"  {len(cells)} empty group/class cells left out: {shown}")
        return "\n".join(lines)


def memorization_effect(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    memorized: Any,
    sample_weight: Any = None,
    metrics: Sequence[str] = METRICS,
    method: str = "between_groups",
    agg: str = "sum",
    labels: Sequence[Any] | None = None,
    undefined: str = "raise",
) -> MemorizationEffect:
    """Fairness of the base predictions `y_pred` before and after memorizing the rows where `memorized` is true.

    y_true, y_pred, sensitive_features, sample_weight: as in `rote.fairness.metrics` ((n,) arrays).
    memorized: (n,) bool mask of M (h predicts y_true there and y_pred elsewhere).
    Returns the direct and closed-form metrics (they agree), with per-class gaps split into the memorized and
    unmemorized sets' parts and the per-group factors (mu, q, r, rho, t, R) of the closed form.
    """
    check_options(metrics, method, agg, undefined)
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    mask = as_mask(memorized, len(enc.y))
    return effect_from_encoded(enc, mask, metrics=metrics, method=method, agg=agg, undefined=undefined)


def _split_counts(enc: Encoded, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    G, C = enc.n_groups, enc.n_classes
    flat = (enc.g * C + enc.y) * C + enc.yhat
    w = enc.w if enc.w is not None else np.ones(len(flat))
    cm = np.bincount(flat[mask], weights=w[mask], minlength=G * C * C).reshape(G, C, C)
    cu = np.bincount(flat[~mask], weights=w[~mask], minlength=G * C * C).reshape(G, C, C)
    return cm, cu


def effect_from_encoded(
    enc: Encoded,
    mask: np.ndarray,
    *,
    metrics: Sequence[str] = METRICS,
    method: str = "between_groups",
    agg: str = "sum",
    undefined: str = "raise",
) -> MemorizationEffect:
    """`memorization_effect` on already validated inputs."""
    if undefined == "zero":
        raise ConfigError(
            "`undefined` zero applies to the metrics only; the closed forms of memorization compare rates that "
            "exist, so pass raise or skip"
        )
    before_counts = confusion_counts(enc)
    h = Encoded(enc.y, np.where(mask, enc.y, enc.yhat), enc.g, enc.w, enc.labels, enc.groups)
    after_counts = confusion_counts(h)
    cm, cu = _split_counts(enc, mask)
    before, after, closed, class_rows, term_rows = {}, {}, {}, [], []
    max_diff = 0.0
    G = enc.n_groups
    group_names = [str(g) for g in enc.groups] + ["(overall)"]
    for m in metrics:
        if undefined == "raise":
            _raise_undefined(before_counts, m, enc)
        gb, okb = class_gaps_from_counts(before_counts, m, method)
        ga, oka = class_gaps_from_counts(after_counts, m, method)
        dec = decomposition(cm, cu, m)
        gc, okc, mem_part, unmem_part = closed_form_gaps(dec, m, method)
        before[m], after[m], closed[m] = aggregate(gb, okb, agg), aggregate(ga, oka, agg), aggregate(gc, okc, agg)
        if not np.array_equal(oka, okc):
            raise AssertionError("closed form and direct computation disagree on which class gaps are defined")
        diffs = [abs(after[m] - closed[m]) if np.isfinite(after[m]) else 0.0]
        if oka.any():
            diffs.append(float(np.max(np.abs(ga[oka] - gc[oka]))))
        max_diff = max(max_diff, *diffs)
        class_rows.append(
            pd.DataFrame(
                {
                    "metric": m,
                    "class": [str(v) for v in enc.labels],
                    "gap_before": gb,
                    "gap_after": ga,
                    "memorized_part": mem_part,
                    "unmemorized_part": unmem_part,
                }
            )
        )
        # per-group terms, flattened to one row per (group, class[, predicted])
        rate_before = _rates_with_overall(before_counts, m)
        shape = dec["rate"].shape
        idx = np.indices(shape).reshape(len(shape), -1)
        grp = [group_names[i] for i in idx[0]]
        cls = [str(enc.labels[i]) for i in idx[1]]
        pred = [str(enc.labels[i]) for i in (idx[2] if m == "eodds" else idx[1])]
        share = np.broadcast_to(dec["share"], shape).ravel()
        term_rows.append(
            pd.DataFrame(
                {
                    "metric": m,
                    "group": grp,
                    "class": cls,
                    "predicted": pred,
                    "share": share,
                    "memorized_rate": np.broadcast_to(dec["mem_rate"], shape).ravel(),
                    "unmemorized_rate": np.broadcast_to(dec["unmem_rate"], shape).ravel(),
                    "memorized_term": dec["mem_term"].ravel(),
                    "unmemorized_term": dec["unmem_term"].ravel(),
                    "rate_after": dec["rate"].ravel(),
                    "rate_before": rate_before.ravel(),
                }
            )
        )
    total = before_counts.sum()
    mass_g = cm.sum(axis=(1, 2))
    return MemorizationEffect(
        before=before,
        after=after,
        after_closed_form=closed,
        max_abs_difference=float(max_diff),
        memorized_mass=float(cm.sum()),
        p_memorized=float(cm.sum() / total),
        n_memorized=int(mask.sum()),
        n_rows=len(mask),
        mu={str(enc.groups[a]): float(mass_g[a] / before_counts[a].sum()) for a in range(G)},
        accuracy_before=float(np.trace(before_counts.sum(0)) / total),
        accuracy_after=float(np.trace(after_counts.sum(0)) / total),
        method=method,
        agg=agg,
        labels=[_py(v) for v in enc.labels],
        groups=[_py(v) for v in enc.groups],
        empty_cells={m: empty_cells(before_counts, m, enc.labels, enc.groups, "skip") for m in metrics},
        classes=pd.concat(class_rows, ignore_index=True),
        terms=pd.concat(term_rows, ignore_index=True),
    )


def _rates_with_overall(counts: np.ndarray, metric: str) -> np.ndarray:
    from rote.fairness.metrics import group_rates

    rates, _, overall, _ = group_rates(counts, metric)
    return np.concatenate([rates, overall[None]])
