"""Additive multi-class fairness metrics: statistical parity, equal opportunity, equalized odds.

Pepin, Igel & Selvan, "When Can Memorization Improve Fairness?" (arXiv 2412.09254) measure fairness in multi-class
classification with *additive* metrics: a sum over classes of per-class gaps between groups. With groups a, b:

    SP    = sum_k  | P(h=k | A=a)        - P(h=k | A=b) |          (k: predicted class)
    EOpp  = sum_y  | P(h=y | Y=y, A=a)   - P(h=y | Y=y, A=b) |     (per-class true-positive rates)
    EOdds = sum_y sum_k | P(h=k | Y=y, A=a) - P(h=k | Y=y, A=b) |  (every confusion-matrix row)

Everything is computed from one weighted confusion tensor `counts[group, true, predicted]` built by a single
`np.bincount` (no Python loop over rows), so 10 million rows take well under a second per pass.

Gaps with two or more groups follow fairlearn: `method="between_groups"` is max - min over groups of each rate,
`method="to_overall"` the largest |group rate - overall rate|. The per-class gap vector is aggregated with
`agg="sum"` (the paper's additive metric), `"max"` or `"mean"`. For EOdds the per-class gap of true class y is the
L1 gap of its confusion-matrix row (sum over predicted classes k).

Binary special cases (labels {0, 1}): SP with agg="max" (or sum / 2) is fairlearn's demographic_parity_difference;
EOpp's per-class gaps are |dTPR| (class 1) and |dTNR| = |dFPR| (class 0), so EOpp agg="max" is fairlearn's
equalized_odds_difference (worst case), agg="mean" is its agg="mean" and AIF360's average_abs_odds_difference,
and the class-1 gap alone is fairlearn's equal_opportunity_difference. EOdds agg="sum" is 2 (|dTPR| + |dFPR|).

Undefined values are never NaN silently: a rate P(. | Y=y, A=a) is undefined when group a has no weight on class
y; a class gap is undefined when fewer than two groups define it. `undefined="raise"` (default) raises a
`DataError` naming the group and class; `undefined="skip"` aggregates over the defined classes and the detailed
results list the undefined ones with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, table_field

METRICS: tuple[str, ...] = ("sp", "eopp", "eodds")
METRIC_NAMES = {"sp": "statistical parity", "eopp": "equal opportunity", "eodds": "equalized odds"}
METHODS: tuple[str, ...] = ("between_groups", "to_overall")
AGGS: tuple[str, ...] = ("sum", "max", "mean")
UNDEFINED: tuple[str, ...] = ("raise", "skip")


# ---------------------------------------------------------------------------------------------- input


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: unknown; choose one of {', '.join(choices)}")


def check_options(metrics: Sequence[str], method: str, agg: str, undefined: str) -> None:
    """Validate the options every metric entry point shares (one ConfigError naming the bad one)."""
    for m in metrics:
        _check_choice("metric", m, METRICS)
    _check_choice("method", method, METHODS)
    _check_choice("agg", agg, AGGS)
    _check_choice("undefined", undefined, UNDEFINED)


def _as_1d(values: Any, name: str) -> np.ndarray:
    """A 1-D numpy array of a column-like input (list, array, Series); pandas' string dtype becomes object."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise DataError(f"{name}: expected one column, got {values.shape[1]}")
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series):
        s = values
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf":
            return s.to_numpy()
        return s.to_numpy(dtype=object, na_value=None)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array of length n_samples, got shape {arr.shape}")
    return arr


def _missing(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind in "biu":
        return np.zeros(len(arr), bool)
    return np.asarray(pd.isna(arr), bool)


def _codes(arr: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(codes (n,) int64, sorted unique values). Small non-negative integers take an O(n) bincount path."""
    miss = _missing(arr)
    if miss.any():
        i = int(np.argmax(miss))
        raise DataError(f"{name}: missing value at row {i + 1} ({int(miss.sum())} missing); drop or fill those rows")
    if arr.dtype.kind in "iu" and len(arr):  # (not bool: indexing with a bool array would mask, not gather)
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi < max(4 * len(arr), 1 << 16):
            present = np.flatnonzero(np.bincount(arr, minlength=hi + 1))
            lut = np.zeros(hi + 1, np.int64)
            lut[present] = np.arange(len(present))
            return lut[arr], present
    codes, uniques = pd.factorize(arr, sort=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def _int_lookup(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n,) position of each integer value in the sorted integer `labels`, -1 where absent: a table lookup (O(n))
    when the values span a small range, else a binary search."""
    lo, hi = min(int(values.min()), int(labels.min())), max(int(values.max()), int(labels.max()))
    if hi - lo < max(4 * len(values), 1 << 16):
        lut = np.full(hi - lo + 1, -1, np.int64)
        lut[labels.astype(np.int64) - lo] = np.arange(len(labels))
        return lut[values.astype(np.int64, copy=False) - lo]
    pos = np.minimum(np.searchsorted(labels, values), len(labels) - 1)
    return np.where(labels[pos] == values, pos, -1)


def _group_labels(sensitive_features: Any, n: int) -> np.ndarray:
    """One group label per row; several columns (a DataFrame or 2-D array) are crossed into intersections."""
    if isinstance(sensitive_features, pd.DataFrame) and sensitive_features.shape[1] > 1:
        cols = [sensitive_features[c].astype(str).to_numpy(dtype=object) for c in sensitive_features.columns]
        return np.array([", ".join(t) for t in zip(*cols)], dtype=object)
    arr = np.asarray(sensitive_features) if not isinstance(sensitive_features, (pd.Series, pd.DataFrame)) else None
    if arr is not None and arr.ndim == 2:
        if arr.shape[0] != n:
            raise DataError(f"sensitive_features: has {arr.shape[0]} rows, y_true has {n}; pass aligned arrays")
        return np.array([", ".join(map(str, r)) for r in arr], dtype=object)
    return _as_1d(sensitive_features, "sensitive_features")


@dataclass(frozen=True)
class Encoded:
    """Validated inputs as integer codes: y, yhat (n,) in [0, C), g (n,) in [0, G); w (n,) float64 or None;
    `labels` (C,) and `groups` (G,) hold the original values."""

    y: np.ndarray
    yhat: np.ndarray
    g: np.ndarray
    w: np.ndarray | None
    labels: np.ndarray
    groups: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def n_groups(self) -> int:
        return len(self.groups)


def encode(
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
    *,
    min_groups: int = 2,
) -> Encoded:
    """Check and encode the inputs once (the rest of the module trusts them).

    y_true, y_pred: (n,) class labels of any hashable type; the label set is `labels` when given, else the
        classes of y_true. A prediction outside the label set is an error naming its row.
    sensitive_features: (n,) group labels, or several columns (crossed into intersectional groups).
    sample_weight: (n,) non-negative finite weights, not all zero; None means 1 per row.
    min_groups: fewer groups than this is an error (gaps compare groups).
    """
    yt, yp = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    n = len(yt)
    if n == 0:
        raise DataError("y_true: no rows; pass at least one labelled row per group")
    if len(yp) != n:
        raise DataError(f"y_pred: has {len(yp)} rows, y_true has {n}; pass aligned arrays")
    gr = _group_labels(sensitive_features, n)
    if len(gr) != n:
        raise DataError(f"sensitive_features: has {len(gr)} rows, y_true has {n}; pass aligned arrays")
    w = None
    if sample_weight is not None:
        w = np.asarray(_as_1d(sample_weight, "sample_weight"), dtype=np.float64)
        if len(w) != n:
            raise DataError(f"sample_weight: has {len(w)} rows, y_true has {n}; pass aligned arrays")
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"sample_weight: value {_fmt(w[i])} at row {i + 1} is negative or not finite "
                f"({int(bad.sum())} such rows); weights must be finite and >= 0"
            )
        if not (w > 0).any():
            raise DataError("sample_weight: all weights are zero; at least one row needs a positive weight")

    if labels is None:
        y, lab = _codes(yt, "y_true")
        if lab.dtype.kind in "iu" and yp.dtype.kind in "iu":
            yhat = _int_lookup(lab, yp)
            outside = yhat < 0
        else:
            yp_codes, yp_lab = _codes(yp, "y_pred")
            pos = pd.Index(lab).get_indexer(pd.Index(yp_lab))
            yhat = pos[yp_codes]
            outside = yhat < 0
    else:
        lab = np.asarray(pd.unique(np.asarray(list(labels), dtype=object)))
        if len(lab) != len(list(labels)):
            raise ConfigError("labels: holds duplicates; list each class once")
        index = pd.Index(lab)
        for name, arr in (("y_true", yt), ("y_pred", yp)):
            miss = _missing(arr)
            if miss.any():
                i = int(np.argmax(miss))
                raise DataError(f"{name}: missing value at row {i + 1}; drop or fill those rows")
        y = index.get_indexer(pd.Index(yt.astype(object)))
        if (y < 0).any():
            i = int(np.argmax(y < 0))
            raise DataError(
                f"y_true: label {_fmt(yt[i])} at row {i + 1} is not in labels={_short_list(lab)}; add it to labels"
            )
        yhat = index.get_indexer(pd.Index(yp.astype(object)))
        outside = yhat < 0
    if outside.any():
        i = int(np.argmax(outside))
        where = "a class of y_true" if labels is None else "in labels"
        raise DataError(
            f"y_pred: prediction {_fmt(yp[i])} at row {i + 1} is not {where} "
            f"({int(outside.sum())} such rows; classes: {_short_list(lab)}); "
            "pass labels=[...] listing every class, or fix the predictions"
        )
    g, groups = _codes(gr, "sensitive_features")
    if len(groups) < min_groups:
        raise DataError(
            f"sensitive_features: a single group {_fmt(groups[0])}; fairness gaps compare two or more "
            "groups, pass a column with at least two distinct values"
        )
    enc = Encoded(y.astype(np.int64, copy=False), np.asarray(yhat, np.int64), g, w, lab, groups)
    if w is not None:
        gw = np.bincount(g, weights=w, minlength=len(groups))
        if (gw <= 0).any():
            j = int(np.argmax(gw <= 0))
            raise DataError(
                f"sample_weight: every row of group {_fmt(groups[j])} has weight 0; drop the group or "
                "give its rows positive weights"
            )
    return enc


def _fmt(value: Any) -> str:
    """repr of a label as the user wrote it (numpy scalars shown as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _short_list(values: np.ndarray, k: int = 8) -> str:
    vals = [_fmt(v) for v in values[:k]]
    return "[" + ", ".join(vals) + (", ...]" if len(values) > k else "]")


# ---------------------------------------------------------------------------------------------- kernel


def confusion_counts(enc: Encoded) -> np.ndarray:
    """(G, C, C) float64 weighted counts: counts[a, y, k] = total weight of rows with group a, label y,
    prediction k. One bincount over flat indices; O(n + G C^2)."""
    G, C = enc.n_groups, enc.n_classes
    flat = (enc.g * C + enc.y) * C + enc.yhat
    return np.bincount(flat, weights=enc.w, minlength=G * C * C).astype(np.float64).reshape(G, C, C)


def group_rates(counts: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-group rates, the overall rates and their supports.

    Returns (rates, defined, overall, overall_defined):
    - "sp": rates (G, C)    P(h=k | A=a);            defined where the group has weight.
    - "eopp": rates (G, C)  P(h=y | Y=y, A=a);       defined where group a has weight on class y.
    - "eodds": rates (G, C, C) P(h=k | Y=y, A=a);    defined where group a has weight on class y.
    overall: the same with A marginalised, shape without the leading G axis.
    """
    if metric == "sp":
        num = counts.sum(axis=1)  # (G, C): predicted-class totals
        den = counts.sum(axis=(1, 2))[:, None] * np.ones_like(num)  # (G, C): group totals
    elif metric == "eopp":
        num = np.diagonal(counts, axis1=1, axis2=2).copy()  # (G, C): correct predictions per class
        den = counts.sum(axis=2)  # (G, C): class supports
    elif metric == "eodds":
        num = counts
        den = np.broadcast_to(counts.sum(axis=2, keepdims=True), counts.shape)
    else:
        raise ConfigError(f"metric={metric!r}: unknown; choose one of {', '.join(METRICS)}")
    defined = den > 0
    rates = np.divide(num, den, out=np.full(num.shape, np.nan), where=defined)
    onum, oden = num.sum(axis=0), den.sum(axis=0)
    odef = oden > 0
    overall = np.divide(onum, oden, out=np.full(onum.shape, np.nan), where=odef)
    return rates, defined, overall, odef


def rate_gaps(
    rates: np.ndarray, defined: np.ndarray, overall: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Gap over groups of each rate (axis 0 is the group): (gaps, gap_defined) with the trailing shape.

    between_groups: max - min over the groups that define the rate; to_overall: max |rate_a - overall|.
    A gap needs at least two groups defining the rate, else it is undefined (NaN with gap_defined False)."""
    n_def = defined.sum(axis=0)
    ok = n_def >= 2
    if method == "between_groups":
        hi = np.where(defined, rates, -np.inf).max(axis=0)
        lo = np.where(defined, rates, np.inf).min(axis=0)
        gaps = hi - lo
    elif method == "to_overall":
        gaps = np.where(defined, np.abs(rates - overall), -np.inf).max(axis=0)
    else:
        raise ConfigError(f"method={method!r}: unknown; choose one of {', '.join(METHODS)}")
    return np.where(ok, gaps, np.nan), ok


def class_gaps_from_counts(
    counts: np.ndarray, metric: str, method: str = "between_groups"
) -> tuple[np.ndarray, np.ndarray]:
    """(C,) per-class gaps and their defined mask. SP: per predicted class; EOpp: per true class;
    EOdds: per true class, the L1 gap of the confusion row (undefined if any entry of the row is)."""
    rates, defined, overall, _ = group_rates(counts, metric)
    gaps, ok = rate_gaps(rates, defined, overall, method)
    if metric == "eodds":
        ok = ok.all(axis=1)
        gaps = np.where(ok, np.nan_to_num(gaps).sum(axis=1), np.nan)
    return gaps, ok


def aggregate(gaps: np.ndarray, ok: np.ndarray, agg: str) -> float:
    """sum / max / mean over the defined classes (NaN when none is defined)."""
    vals = gaps[ok]
    if vals.size == 0:
        return float("nan")
    if agg == "sum":
        return float(vals.sum())
    if agg == "max":
        return float(vals.max())
    if agg == "mean":
        return float(vals.mean())
    raise ConfigError(f"agg={agg!r}: unknown; choose one of {', '.join(AGGS)}")


def undefined_reasons(
    counts: np.ndarray, metric: str, enc_labels: np.ndarray, enc_groups: np.ndarray
) -> dict[str, str]:
    """{class label: reason} for each class whose gap is undefined (EOpp/EOdds: fewer than two groups have it)."""
    if metric == "sp":
        return {}
    support = counts.sum(axis=2)  # (G, C)
    out: dict[str, str] = {}
    for c in np.flatnonzero((support > 0).sum(axis=0) < 2):
        missing = [str(enc_groups[a]) for a in np.flatnonzero(support[:, c] <= 0)]
        out[str(enc_labels[c])] = (
            f"class {_fmt(enc_labels[c])} has no rows (or zero weight) in group(s) "
            f"{', '.join(missing)}; its rate P(h | Y={_fmt(enc_labels[c])}, A) is defined in "
            "fewer than two groups"
        )
    return out


def _raise_undefined(counts: np.ndarray, metric: str, enc: Encoded) -> None:
    support = counts.sum(axis=2)
    empty = np.argwhere(support <= 0)
    if metric != "sp" and len(empty):
        a, c = empty[0]
        raise DataError(
            f"{METRIC_NAMES[metric]}: group {_fmt(enc.groups[a])} has no rows of class {_fmt(enc.labels[c])} "
            f"({len(empty)} empty group/class cells), so P(h | Y={_fmt(enc.labels[c])}, A={_fmt(enc.groups[a])}) is "
            "undefined; pass `undefined` skip to compare only the groups that have each "
            "class, or merge rare classes/groups"
        )


# ---------------------------------------------------------------------------------------------- public functions


def _metric(
    metric: str,
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    method: str,
    agg: str,
    sample_weight: Any,
    labels: Sequence[Any] | None,
    undefined: str,
) -> float:
    _check_choice("method", method, METHODS)
    _check_choice("agg", agg, AGGS)
    _check_choice("undefined", undefined, UNDEFINED)
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    counts = confusion_counts(enc)
    if undefined == "raise":
        _raise_undefined(counts, metric, enc)
    gaps, ok = class_gaps_from_counts(counts, metric, method)
    return aggregate(gaps, ok, agg)


def statistical_parity(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    method: str = "between_groups",
    agg: str = "sum",
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
    undefined: str = "raise",
) -> float:
    """Additive multi-class statistical parity: agg over predicted classes k of the gap of P(h=k | A=a).

    With agg="sum" and two groups it is sum_k |P(h=k|a) - P(h=k|b)| = 2 x total variation between the groups'
    prediction distributions (in [0, 2]); agg="max" with binary labels is fairlearn's demographic_parity_difference.
    `y_true` only fixes the label set. Signature as fairlearn's metrics (y_true, y_pred, *, sensitive_features).
    """
    return _metric("sp", y_true, y_pred, sensitive_features, method, agg, sample_weight, labels, undefined)


def equal_opportunity(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    method: str = "between_groups",
    agg: str = "sum",
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
    undefined: str = "raise",
) -> float:
    """Additive multi-class equal opportunity: agg over true classes y of the gap of P(h=y | Y=y, A=a).

    In [0, C] with agg="sum". Binary labels: the class gaps are |dTPR| and |dFPR|, so agg="max" is fairlearn's
    equalized_odds_difference and agg="mean" AIF360's average_abs_odds_difference (see the module docstring).
    """
    return _metric("eopp", y_true, y_pred, sensitive_features, method, agg, sample_weight, labels, undefined)


def equalized_odds(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    method: str = "between_groups",
    agg: str = "sum",
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
    undefined: str = "raise",
) -> float:
    """Additive multi-class equalized odds: agg over true classes y of sum_k gap of P(h=k | Y=y, A=a).

    In [0, 2C] with agg="sum"; binary labels give 2 (|dTPR| + |dFPR|).
    """
    return _metric("eodds", y_true, y_pred, sensitive_features, method, agg, sample_weight, labels, undefined)


METRIC_FUNCTIONS = {"sp": statistical_parity, "eopp": equal_opportunity, "eodds": equalized_odds}


def class_gaps(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    metric: str = "sp",
    method: str = "between_groups",
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
) -> pd.Series:
    """The per-class gap vector of one metric as a Series indexed by class label (NaN only where undefined;
    `fairness_metrics(...).undefined` gives the reason)."""
    _check_choice("metric", metric, METRICS)
    _check_choice("method", method, METHODS)
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    gaps, _ = class_gaps_from_counts(confusion_counts(enc), metric, method)
    return pd.Series(gaps, index=pd.Index(enc.labels, name="class"), name=f"{metric}_gap")


# ---------------------------------------------------------------------------------------------- detailed result


@dataclass(frozen=True)
class FairnessMetrics(Result):
    """All three additive metrics of one classifier, with per-class gaps, per-group rates and bootstrap intervals.

    values: {metric: aggregate gap} ("sp", "eopp", "eodds"); NaN only for a metric with no defined class.
    intervals: {metric: Interval.to_dict()} when n_boot > 0.
    undefined: {metric: {class: reason}} for classes whose gap is undefined (left out of the aggregate).
    per_class (per_class.parquet): metric, class, gap, defined.
    rates (rates.parquet): metric, group, class, predicted (EOdds only; else equal to class), rate, support.
    """

    values: dict[str, float]
    method: str
    agg: str
    n_rows: int
    total_weight: float
    labels: list[Any]
    groups: list[Any]
    undefined: dict[str, dict[str, str]]
    intervals: dict[str, dict[str, float]] | None
    accuracy: float
    per_class: pd.DataFrame = table_field("per_class")
    rates: pd.DataFrame = table_field("rates")

    def summary(self) -> str:
        lines = [
            f"{self.n_rows:,} rows, {len(self.labels)} classes, {len(self.groups)} groups "
            f"(method {self.method}, agg {self.agg}); accuracy {self.accuracy:.4f}"
        ]
        for m in METRICS:
            if m not in self.values:
                continue
            ci = ""
            if self.intervals and m in self.intervals:
                iv = self.intervals[m]
                ci = f"  [{iv['low']:.4f}, {iv['high']:.4f}] at {iv['level']:.0%}"
            und = f"  ({len(self.undefined.get(m, {}))} classes undefined)" if self.undefined.get(m) else ""
            lines.append(f"{METRIC_NAMES[m]:<20} {self.values[m]:.4f}{ci}{und}")
        return "\n".join(lines)


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def fairness_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    sample_weight: Any = None,
    metrics: Sequence[str] = METRICS,
    method: str = "between_groups",
    agg: str = "sum",
    labels: Sequence[Any] | None = None,
    undefined: str = "raise",
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> FairnessMetrics:
    """The additive metrics with per-class gaps, per-group rates and (n_boot > 0) percentile bootstrap intervals.

    Bootstrap: rows are resampled with `rote.core.stats.bootstrap_ci` (weights travel with their rows); a
    replicate in which a class gap becomes undefined aggregates over the classes it defines.
    """
    check_options(metrics, method, agg, undefined)
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    counts = confusion_counts(enc)
    values, und, per_class, rate_rows = {}, {}, [], []
    for m in metrics:
        if undefined == "raise":
            _raise_undefined(counts, m, enc)
        gaps, ok = class_gaps_from_counts(counts, m, method)
        values[m] = aggregate(gaps, ok, agg)
        und[m] = undefined_reasons(counts, m, enc.labels, enc.groups)
        per_class.append(pd.DataFrame({"metric": m, "class": [str(x) for x in enc.labels], "gap": gaps, "defined": ok}))
        rates, defined, _, _ = group_rates(counts, m)
        support = (
            counts.sum(axis=2) if m != "sp" else np.repeat(counts.sum(axis=(1, 2))[:, None], enc.n_classes, axis=1)
        )
        G, C = enc.n_groups, enc.n_classes
        if m == "eodds":
            a, y, k = np.meshgrid(np.arange(G), np.arange(C), np.arange(C), indexing="ij")
            a, y, k = a.ravel(), y.ravel(), k.ravel()
            rate_rows.append(
                pd.DataFrame(
                    {
                        "metric": m,
                        "group": [str(enc.groups[i]) for i in a],
                        "class": [str(enc.labels[i]) for i in y],
                        "predicted": [str(enc.labels[i]) for i in k],
                        "rate": rates.ravel(),
                        "support": support[a, y],
                    }
                )
            )
        else:
            a, c = np.meshgrid(np.arange(G), np.arange(C), indexing="ij")
            a, c = a.ravel(), c.ravel()
            rate_rows.append(
                pd.DataFrame(
                    {
                        "metric": m,
                        "group": [str(enc.groups[i]) for i in a],
                        "class": [str(enc.labels[i]) for i in c],
                        "predicted": [str(enc.labels[i]) for i in c],
                        "rate": rates.ravel(),
                        "support": support.ravel(),
                    }
                )
            )
    intervals = None
    if n_boot > 0:
        from rote.core.stats import bootstrap_ci

        G, C = enc.n_groups, enc.n_classes
        flat = (enc.g * C + enc.y) * C + enc.yhat
        w = enc.w if enc.w is not None else np.ones(len(flat))
        intervals = {}
        for m in metrics:

            def stat(f: np.ndarray, ww: np.ndarray, m: str = m) -> float:
                cnt = np.bincount(f, weights=ww, minlength=G * C * C).reshape(G, C, C)
                if (cnt.sum(axis=(1, 2)) <= 0).any():
                    return float("nan")  # a group vanished from this replicate: drop it
                return aggregate(*class_gaps_from_counts(cnt, m, method), agg)

            intervals[m] = bootstrap_ci(stat, flat, w, n_boot=n_boot, level=level, seed=seed).to_dict()
    total = counts.sum()
    return FairnessMetrics(
        values=values,
        method=method,
        agg=agg,
        n_rows=len(enc.y),
        total_weight=float(total),
        labels=[_py(v) for v in enc.labels],
        groups=[_py(v) for v in enc.groups],
        undefined=und,
        intervals=intervals,
        accuracy=float(np.trace(counts.sum(axis=0)) / total),
        per_class=pd.concat(per_class, ignore_index=True),
        rates=pd.concat(rate_rows, ignore_index=True),
    )
