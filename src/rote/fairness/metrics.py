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

Ranges: each per-class gap of SP and EOpp is in [0, 1], an EOdds row's in [0, min(G, C)]; summed over classes
SP is in [0, min(G, C)], EOpp in [0, C] and EOdds in [0, C min(G, C)] (two groups: 2, C and 2C). Summing max - min
across more than two groups is rote's generalisation of the paper's two-group metric; `metric_maximum` gives the
largest value possible with the given groups and classes, and `normalize=True` / `FairnessMetrics.normalized`
divide by it.

Undefined values are never NaN silently: a rate P(. | Y=y, A=a) is undefined when group a has no weight on class
y. `undefined="raise"` (default) raises a `DataError` naming the group and class; `undefined="skip"` takes each
class's gap over the groups that have it and aggregates over the classes at least two groups have;
`undefined="zero"` counts an empty cell's rates as 0 (fairlearn's numbers, through scikit-learn's
zero_division=0). Every result lists each empty (group, class) cell and what was done with it (`empty_cells`), and
the classes left out of the aggregate (`undefined`). The memorization and bound functions take raise and skip with
the same meaning.

fairlearn users: the scalar functions drop into a `MetricFrame` (a slice with one group returns 0 with a
`FairnessWarning`, as fairlearn returns 0; labels=None takes the classes of y_true and y_pred); `pos_label` gives
fairlearn's binary metrics on the one-vs-rest problem of a class, `parity_ratio` the ratio form (the 80% rule),
and `fairness_metrics` the groups that set each gap (group_max, group_min), per-group base rates and counts,
signed differences against a `privileged` group, per-class bootstrap intervals and small-group warnings.
"""

from __future__ import annotations

import warnings
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
UNDEFINED: tuple[str, ...] = ("raise", "skip", "zero")


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


def _lookup(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n,) position of each value in `labels`, -1 where absent (a table lookup for integers)."""
    if labels.dtype.kind in "iu" and values.dtype.kind in "iu" and len(values):
        return _int_lookup(labels, values)
    return pd.Index(labels).get_indexer(pd.Index(values.astype(object) if values.dtype.kind != "O" else values))


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


def _numeric_weights(arr: np.ndarray) -> np.ndarray:
    """(n,) float64 weights; a value that is not a number is a DataError naming its row (not a traceback)."""
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    num = pd.to_numeric(pd.Series(arr, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(num)  # text that is not a number, and missing cells
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"sample_weight: value {_fmt(arr[i])} at row {i + 1} is not a number ({int(bad.sum())} such rows); "
            "weights must be finite numbers >= 0"
        )
    return num


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
    union_labels: bool = False,
) -> Encoded:
    """Check and encode the inputs once (the rest of the module trusts them).

    y_true, y_pred: (n,) class labels of any hashable type; the label set is `labels` when given, else the
        classes of y_true. A prediction outside the label set is an error naming its row.
    sensitive_features: (n,) group labels, or several columns (crossed into intersectional groups).
    sample_weight: (n,) non-negative finite weights, not all zero; None means 1 per row.
    min_groups: fewer groups than this is an error (gaps compare groups).
    union_labels: with labels=None, the label set is every value of y_true or y_pred (scikit-learn's and
        fairlearn's convention, used by the scalar metrics) instead of the classes of y_true.
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
        w = _numeric_weights(_as_1d(sample_weight, "sample_weight"))
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

    if labels is None and union_labels:
        miss = _missing(yp)
        if miss.any():
            i = int(np.argmax(miss))
            raise DataError(f"y_pred: missing value at row {i + 1}; drop or fill those rows")
        y, lab = _codes(yt, "y_true")
        yhat = _lookup(lab, yp)
        if (yhat < 0).any():  # predicted classes that y_true lacks join the label set (sorted where possible)
            extra = pd.unique(np.asarray(yp[yhat < 0]))
            lab = np.asarray(pd.Index(lab).union(pd.Index(extra)))
            y, yhat = _lookup(lab, yt), _lookup(lab, yp)
        outside = np.zeros(n, bool)
    elif labels is None:
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


class FairnessWarning(UserWarning):
    """A metric computed on degenerate or very small input (one group in a slice, a tiny group): the value is
    returned and the warning says why it may mislead."""


def confusion_counts(enc: Encoded) -> np.ndarray:
    """(G, C, C) float64 weighted counts: counts[a, y, k] = total weight of rows with group a, label y,
    prediction k. One bincount over flat indices; O(n + G C^2)."""
    G, C = enc.n_groups, enc.n_classes
    flat = (enc.g * C + enc.y) * C + enc.yhat
    return np.bincount(flat, weights=enc.w, minlength=G * C * C).astype(np.float64).reshape(G, C, C)


def group_rates(
    counts: np.ndarray, metric: str, undefined: str = "skip"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-group rates, the overall rates and their supports.

    Returns (rates, defined, overall, overall_defined):
    - "sp": rates (G, C)    P(h=k | A=a);            defined where the group has weight.
    - "eopp": rates (G, C)  P(h=y | Y=y, A=a);       defined where group a has weight on class y.
    - "eodds": rates (G, C, C) P(h=k | Y=y, A=a);    defined where group a has weight on class y.
    overall: the same with A marginalised, shape without the leading G axis.
    undefined="zero" counts the rates of an empty (group, class) cell as 0 and defined (fairlearn's convention,
    through scikit-learn's zero_division=0); "raise" and "skip" leave them undefined.
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
    if undefined == "zero":
        rates = np.where(defined, rates, 0.0)
        defined = np.ones(defined.shape, bool)
    onum, oden = num.sum(axis=0), den.sum(axis=0)
    odef = oden > 0
    overall = np.divide(onum, oden, out=np.full(onum.shape, np.nan), where=odef)
    if undefined == "zero":
        overall, odef = np.where(odef, overall, 0.0), np.ones(odef.shape, bool)
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


def rate_ratios(rates: np.ndarray, defined: np.ndarray, overall: np.ndarray, method: str) -> np.ndarray:
    """Ratio over groups of each rate (fairlearn's `MetricFrame.ratio`): between_groups min / max over the groups
    that define it; to_overall min over groups of min(rate / overall, overall / rate). 1 where every rate is 0
    (no disparity), NaN where fewer than two groups define it."""
    ok = defined.sum(axis=0) >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "between_groups":
            hi = np.where(defined, rates, -np.inf).max(axis=0)
            lo = np.where(defined, rates, np.inf).min(axis=0)
            r = np.where(hi > 0, lo / np.where(hi > 0, hi, 1.0), 1.0)
        else:
            o = np.broadcast_to(overall, rates.shape)
            pair = np.where(
                (rates > 0) & (o > 0),
                np.minimum(rates / np.where(o > 0, o, 1.0), o / np.where(rates > 0, rates, 1.0)),
                np.where((rates == 0) & (o == 0), 1.0, 0.0),
            )
            r = np.where(defined, pair, np.inf).min(axis=0)
    return np.where(ok, r, np.nan)


def _extreme_groups(rates: np.ndarray, defined: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the groups with the highest and lowest defined rate (group_max, group_min)."""
    return (
        np.argmax(np.where(defined, rates, -np.inf), axis=0),
        np.argmin(np.where(defined, rates, np.inf), axis=0),
    )


def class_gaps_from_counts(
    counts: np.ndarray, metric: str, method: str = "between_groups", undefined: str = "skip"
) -> tuple[np.ndarray, np.ndarray]:
    """(C,) per-class gaps and their defined mask. SP: per predicted class; EOpp: per true class;
    EOdds: per true class, the L1 gap of the confusion row (undefined if any entry of the row is)."""
    rates, defined, overall, _ = group_rates(counts, metric, undefined)
    gaps, ok = rate_gaps(rates, defined, overall, method)
    if metric == "eodds":
        ok = ok.all(axis=1)
        gaps = np.where(ok, np.nan_to_num(gaps).sum(axis=1), np.nan)
    return gaps, ok


def class_details_from_counts(
    counts: np.ndarray, metric: str, method: str = "between_groups", undefined: str = "skip"
) -> dict[str, np.ndarray]:
    """(C,) per-class gap, defined mask, ratio (EOdds: the smallest ratio of the row's entries) and the indices of
    the groups with the highest and lowest rate (EOdds: of the row's entry with the largest gap)."""
    rates, defined, overall, _ = group_rates(counts, metric, undefined)
    gaps, ok = rate_gaps(rates, defined, overall, method)
    ratios = rate_ratios(rates, defined, overall, method)
    hi, lo = _extreme_groups(rates, defined)
    if metric == "eodds":
        worst = np.argmax(np.nan_to_num(gaps, nan=-1.0), axis=1)  # (C,) the entry of each row with the largest gap
        hi = np.take_along_axis(hi, worst[:, None], 1)[:, 0]
        lo = np.take_along_axis(lo, worst[:, None], 1)[:, 0]
        ok = ok.all(axis=1)
        ratios = np.where(ok, np.nanmin(np.where(np.isnan(ratios), np.inf, ratios), axis=1), np.nan)
        gaps = np.where(ok, np.nan_to_num(gaps).sum(axis=1), np.nan)
    return {"gap": gaps, "defined": ok, "ratio": ratios, "group_max": hi, "group_min": lo}


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


def metric_maximum(counts: np.ndarray, metric: str, agg: str, undefined: str = "skip") -> float:
    """The largest value the aggregated metric can take with these groups and classes (between_groups; the
    supremum of to_overall, which never exceeds between_groups), so that value / maximum is in [0, 1].

    A class's SP or EOdds-row gap sums max - min over groups of a distribution over C classes: at most
    min(G, C) for a row with G groups (reached when G groups each put all mass on a different class), and the SP
    sum over all classes is at most min(G, C) as well. An EOpp class gap is at most 1. So, over the classes in
    the aggregate: SP sum min(G, C), max 1, mean min(G, C) / C; EOpp sum C', max 1, mean 1 (C' classes defined);
    EOdds sum of min(G_y, C) over true classes y (G_y groups define class y), max / mean of those.
    """
    G, C, _ = counts.shape
    if metric == "sp":
        top = float(min(G, C))
        return {"sum": top, "max": 1.0, "mean": top / C}[agg]
    rates, defined, _, _ = group_rates(counts, metric, undefined)
    if metric == "eopp":
        n_def = defined.sum(axis=0)
        per = np.where(n_def >= 2, 1.0, np.nan)
    else:
        n_def = defined.sum(axis=0)[:, 0]  # (C,) groups defining each true class
        support = (counts.sum(axis=2) > 0).sum(axis=0)  # groups with rows of the class (zero mode: the rest are 0)
        per = np.where(n_def >= 2, np.minimum(np.maximum(support, 1), C).astype(float), np.nan)
    ok = ~np.isnan(per)
    return aggregate(np.nan_to_num(per), ok, agg)


def empty_cells(counts: np.ndarray, metric: str, labels: np.ndarray, groups: np.ndarray, undefined: str) -> list:
    """Every (group, class) cell with no weight and what the metric does with it: a list of
    {"group", "class", "treatment"}. SP never has any (its rates condition on the group only)."""
    if metric == "sp":
        return []
    support = counts.sum(axis=2)  # (G, C)
    n_with = (support > 0).sum(axis=0)
    out = []
    for a, c in np.argwhere(support <= 0):
        if undefined == "zero":
            how = "rates counted as 0 (fairlearn's convention)"
        elif n_with[c] >= 2:
            how = "group left out of this class's gap (taken over the groups that have the class)"
        else:
            how = "class left out of the aggregate (fewer than two groups have it)"
        out.append({"group": str(groups[a]), "class": str(labels[c]), "treatment": how})
    return out


def undefined_reasons(
    counts: np.ndarray, metric: str, enc_labels: np.ndarray, enc_groups: np.ndarray, undefined: str = "skip"
) -> dict[str, str]:
    """{class label: reason} for each class whose gap is undefined and left out of the aggregate (EOpp/EOdds:
    fewer than two groups have it; none with undefined="zero")."""
    if metric == "sp" or undefined == "zero":
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


def raise_undefined(counts: np.ndarray, metric: str, labels: np.ndarray, groups: np.ndarray) -> None:
    """The DataError of undefined="raise": some group has no rows of a class that another group has (a class that
    no group has is not a comparison between groups and is only listed as undefined)."""
    if metric == "sp":
        return
    support = counts.sum(axis=2)
    present = support.sum(axis=0) > 0
    empty = np.argwhere((support <= 0) & present[None, :])
    if len(empty):
        a, c = empty[0]
        raise DataError(
            f"{METRIC_NAMES[metric]}: group {_fmt(groups[a])} has no rows of class {_fmt(labels[c])} "
            f"({len(empty)} empty group/class cells), so P(h | Y={_fmt(labels[c])}, A={_fmt(groups[a])}) is "
            "undefined; pass `undefined` skip (compare only the groups that have each class; the result lists "
            "what is left out) or zero (count it as 0, as fairlearn does), or merge rare classes/groups"
        )


def _raise_undefined(counts: np.ndarray, metric: str, enc: Encoded) -> None:
    raise_undefined(counts, metric, enc.labels, enc.groups)


def _pos_index(enc: Encoded, pos_label: Any) -> int:
    hits = [i for i, v in enumerate(enc.labels) if v == pos_label or str(v) == str(pos_label)]
    if not hits:
        raise ConfigError(f"`pos_label` {_fmt(pos_label)} is not a class; classes: {_short_list(enc.labels)}")
    return hits[0]


def binary_view(counts: np.ndarray, pos: int) -> np.ndarray:
    """(G, 2, 2) one-vs-rest counts of class index `pos` (index 1 = pos, 0 = every other class)."""
    G, C, _ = counts.shape
    is_pos = np.zeros(C, bool)
    is_pos[pos] = True
    out = np.zeros((G, 2, 2))
    for yb in (0, 1):
        for kb in (0, 1):
            out[:, yb, kb] = counts[:, is_pos == bool(yb)][:, :, is_pos == bool(kb)].sum(axis=(1, 2))
    return out


def pos_label_value(counts: np.ndarray, metric: str, method: str, pos: int, undefined: str) -> tuple[float, float]:
    """(difference, ratio) of fairlearn's binary metric on the one-vs-rest problem of class index `pos`:
    SP -> demographic_parity_difference / _ratio (selection rate), EOpp -> equal_opportunity_difference / _ratio
    (TPR), EOdds -> equalized_odds_difference / _ratio (worst of TPR and FPR). NaN where undefined."""
    b = binary_view(counts, pos)
    if metric == "sp":
        rates, defined, overall, _ = group_rates(b, "sp", undefined)
        entries = [(rates[:, 1], defined[:, 1], overall[1])]
    else:
        rates, defined, overall, _ = group_rates(b, "eodds", undefined)
        entries = [(rates[:, 1, 1], defined[:, 1, 1], overall[1, 1])]  # TPR
        if metric == "eodds":
            entries.append((rates[:, 0, 1], defined[:, 0, 1], overall[0, 1]))  # FPR
    gaps, ratios = [], []
    for r, d, o in entries:
        g, ok = rate_gaps(r[:, None], d[:, None], np.asarray([o]), method)
        gaps.append(float(g[0]) if ok[0] else float("nan"))
        ratios.append(float(rate_ratios(r[:, None], d[:, None], np.asarray([o]), method)[0]))
    return max(gaps), min(ratios)


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
    pos_label: Any = None,
    normalize: bool = False,
    ratio: bool = False,
) -> float:
    _check_choice("method", method, METHODS)
    _check_choice("agg", agg, AGGS)
    _check_choice("undefined", undefined, UNDEFINED)
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels, min_groups=1, union_labels=True)
    if enc.n_groups < 2:
        warnings.warn(
            f"{METRIC_NAMES[metric]}: one group {_fmt(enc.groups[0])} in these rows, so there is no gap to measure; "
            f"returning {1.0 if ratio else 0.0} (as fairlearn does for a single group)",
            FairnessWarning,
            stacklevel=3,
        )
        return 1.0 if ratio else 0.0
    counts = confusion_counts(enc)
    if pos_label is not None:
        diff, rat = pos_label_value(counts, metric, method, _pos_index(enc, pos_label), undefined)
        return rat if ratio else diff
    if undefined == "raise":
        _raise_undefined(counts, metric, enc)
    if ratio:
        d = class_details_from_counts(counts, metric, method, undefined)
        vals = d["ratio"][d["defined"]]
        return float(vals.min()) if vals.size else float("nan")
    gaps, ok = class_gaps_from_counts(counts, metric, method, undefined)
    value = aggregate(gaps, ok, agg)
    return value / metric_maximum(counts, metric, agg, undefined) if normalize else value


_SCALAR_DOC = """
    Signature as fairlearn's metrics (y_true, y_pred, *, sensitive_features, sample_weight), so it drops into a
    `MetricFrame`. With labels=None the classes are every value of y_true or y_pred (scikit-learn's convention);
    one group in the rows (a MetricFrame slice) returns 0 with a `FairnessWarning` saying why, as fairlearn
    returns 0 there. pos_label: fairlearn's binary metric on the one-vs-rest problem of that class instead of the
    additive multi-class one. normalize: divide by the largest value possible with these groups and classes
    (`metric_maximum`). undefined: a group without some class raises ("raise"), is left out of that class's gap
    ("skip"), or has its rates counted as 0 ("zero", fairlearn's numbers)."""


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
    pos_label: Any = None,
    normalize: bool = False,
) -> float:
    """Additive multi-class statistical parity: agg over predicted classes k of the gap of P(h=k | A=a).

    With agg="sum" it is in [0, min(G, C)] (G groups, C classes): two groups give sum_k |P(h=k|a) - P(h=k|b)|
    = 2 x the total variation between the groups' prediction distributions, in [0, 2]. agg="max" with binary
    labels, or pos_label, is fairlearn's demographic_parity_difference.
    """
    return _metric(
        "sp", y_true, y_pred, sensitive_features, method, agg, sample_weight, labels, undefined, pos_label, normalize
    )


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
    pos_label: Any = None,
    normalize: bool = False,
) -> float:
    """Additive multi-class equal opportunity: agg over true classes y of the gap of P(h=y | Y=y, A=a).

    In [0, C] with agg="sum". Binary labels: the class gaps are |dTPR| and |dFPR|, so agg="max" is fairlearn's
    equalized_odds_difference and agg="mean" AIF360's average_abs_odds_difference; pos_label gives fairlearn's
    equal_opportunity_difference.
    """
    return _metric(
        "eopp", y_true, y_pred, sensitive_features, method, agg, sample_weight, labels, undefined, pos_label, normalize
    )


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
    pos_label: Any = None,
    normalize: bool = False,
) -> float:
    """Additive multi-class equalized odds: agg over true classes y of sum_k gap of P(h=k | Y=y, A=a).

    In [0, C min(G, C)] with agg="sum" (two groups: [0, 2C]); binary labels give 2 (|dTPR| + |dFPR|). pos_label
    gives fairlearn's equalized_odds_difference (worst of |dTPR| and |dFPR| of that class).
    """
    return _metric(
        "eodds", y_true, y_pred, sensitive_features, method, agg, sample_weight, labels, undefined, pos_label, normalize
    )


for _f in (statistical_parity, equal_opportunity, equalized_odds):
    _f.__doc__ = (_f.__doc__ or "").rstrip() + "\n" + _SCALAR_DOC


def parity_ratio(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    metric: str = "sp",
    method: str = "between_groups",
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
    undefined: str = "raise",
    pos_label: Any = None,
) -> float:
    """The ratio form (the "80% rule"): the smallest over classes of min_a rate / max_a rate (between_groups) or
    of min(rate / overall, overall / rate) (to_overall); 1 is parity. EOdds takes the smallest ratio of every
    confusion entry. With pos_label: fairlearn's demographic_parity_ratio (sp), equal_opportunity_ratio (eopp),
    equalized_odds_ratio (eodds) on the one-vs-rest problem of that class."""
    _check_choice("metric", metric, METRICS)
    return _metric(
        metric,
        y_true,
        y_pred,
        sensitive_features,
        method,
        "sum",
        sample_weight,
        labels,
        undefined,
        pos_label,
        ratio=True,
    )


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
    undefined: str = "raise",
) -> pd.Series:
    """The per-class gap vector of one metric as a Series indexed by class label, with the same `undefined`
    semantics as the aggregates: "raise" (a group without a class another group has), "skip" (that group is
    left out of the class's gap; NaN for a class fewer than two groups have) or "zero" (fairlearn's numbers).
    `fairness_metrics(...).empty_cells` lists exactly what is left out."""
    _check_choice("metric", metric, METRICS)
    _check_choice("method", method, METHODS)
    _check_choice("undefined", undefined, UNDEFINED)
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    counts = confusion_counts(enc)
    if undefined == "raise":
        _raise_undefined(counts, metric, enc)
    gaps, _ = class_gaps_from_counts(counts, metric, method, undefined)
    return pd.Series(gaps, index=pd.Index(enc.labels, name="class"), name=f"{metric}_gap")


# ---------------------------------------------------------------------------------------------- detailed result


@dataclass(frozen=True)
class FairnessMetrics(Result):
    """All three additive metrics of one classifier, with per-class gaps, per-group rates and bootstrap intervals.

    values: {metric: aggregate gap} ("sp", "eopp", "eodds"); NaN only for a metric with no defined class.
    maximum: {metric: the largest value possible with these groups and classes}; normalized: values / maximum.
    ratios: {metric: smallest per-class ratio min/max over groups} (the 80% rule; 1 = parity).
    pos_label, binary: with pos_label, {metric: {"difference", "ratio"}} of fairlearn's binary metrics on the
    one-vs-rest problem of that class.
    intervals: {metric: Interval.to_dict()} when n_boot > 0.
    undefined: {metric: {class: reason}} for classes left out of the aggregate.
    empty_cells: {metric: [{group, class, treatment}]}: every (group, class) cell without weight and what was
    done with it (left out of the class gap, class left out, or counted as 0).
    warnings: small groups and other reasons to read the numbers with care.
    per_class (per_class.parquet): metric, class, gap, defined, ratio, group_max, group_min (groups with the
    highest and lowest rate; EOdds: of the row's entry with the largest gap), and ci_low, ci_high (n_boot > 0).
    rates (rates.parquet): metric, group, class, predicted (EOdds only; else equal to class), rate, support.
    group_stats (group_stats.parquet): group, class, rows, weight, base_rate P(Y=class | A), selection_rate
    P(h=class | A), and with privileged=...: difference and ratio of each rate against the privileged group.
    """

    values: dict[str, float]
    maximum: dict[str, float]
    normalized: dict[str, float]
    ratios: dict[str, float]
    method: str
    agg: str
    undefined_mode: str
    n_rows: int
    total_weight: float
    labels: list[Any]
    groups: list[Any]
    undefined: dict[str, dict[str, str]]
    empty_cells: dict[str, list[dict[str, str]]]
    intervals: dict[str, dict[str, float]] | None
    accuracy: float
    pos_label: Any
    binary: dict[str, dict[str, float]] | None
    privileged: Any
    warnings: list[str]
    per_class: pd.DataFrame = table_field("per_class")
    rates: pd.DataFrame = table_field("rates")
    group_stats: pd.DataFrame = table_field("group_stats")

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
            lines.append(
                f"{METRIC_NAMES[m]:<20} {self.values[m]:.4f}{ci}  (of at most {self.maximum[m]:.4g}: "
                f"normalized {self.normalized[m]:.4f}; worst ratio {self.ratios[m]:.4f}){und}"
            )
            if self.binary:
                b = self.binary[m]
                lines.append(
                    f"  pos_label {self.pos_label!r}: difference {b['difference']:.4f}, ratio {b['ratio']:.4f}"
                )
            cells = self.empty_cells.get(m) or []
            if cells and self.undefined_mode != "raise":
                shown = "; ".join(f"{c['group']}/{c['class']}" for c in cells[:6]) + ("; ..." if len(cells) > 6 else "")
                lines.append(f"  {len(cells)} empty group/class cells ({cells[0]['treatment']}): {shown}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _group_stats(counts: np.ndarray, enc: Encoded, rows: np.ndarray, privileged: int | None) -> pd.DataFrame:
    G, C = enc.n_groups, enc.n_classes
    wg = counts.sum(axis=(1, 2))
    base = counts.sum(axis=2) / wg[:, None]
    sel = counts.sum(axis=1) / wg[:, None]
    a, c = np.meshgrid(np.arange(G), np.arange(C), indexing="ij")
    a, c = a.ravel(), c.ravel()
    frame = pd.DataFrame(
        {
            "group": [str(enc.groups[i]) for i in a],
            "class": [str(enc.labels[i]) for i in c],
            "rows": rows[a],
            "weight": wg[a],
            "class_weight": counts.sum(axis=2)[a, c],
            "base_rate": base[a, c],
            "selection_rate": sel[a, c],
        }
    )
    if privileged is not None:
        tpr = np.diagonal(counts, axis1=1, axis2=2) / np.where(counts.sum(axis=2) > 0, counts.sum(axis=2), np.nan)
        for name, r in (("selection_rate", sel), ("true_positive_rate", tpr)):
            frame[f"{name}_difference"] = (r - r[privileged][None])[a, c]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = r / r[privileged][None]
                frame[f"{name}_ratio"] = np.where(np.isfinite(ratio), ratio, np.nan)[a, c]
        frame["true_positive_rate"] = tpr[a, c]
    return frame


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
    pos_label: Any = None,
    privileged: Any = None,
    small_group: int = 30,
) -> FairnessMetrics:
    """The additive metrics with per-class gaps and ratios, per-group rates and base rates, and (n_boot > 0)
    percentile bootstrap intervals on the aggregates and on every per-class gap.

    Bootstrap: row replicates drawn exactly as `rote.core.stats.bootstrap_ci` draws them (weights travel with
    their rows; a replicate in which a group vanishes is dropped; one in which a class gap becomes undefined
    aggregates over the classes it defines). pos_label: also fairlearn's binary difference and ratio on the
    one-vs-rest problem of that class. privileged: a group; group_stats gains each group's signed difference and
    ratio against it (AIF360's convention: unprivileged minus privileged). small_group: groups with fewer rows
    than this get a warning (in `warnings` and as a `FairnessWarning`).
    """
    check_options(metrics, method, agg, undefined)
    if n_boot < 0:
        raise ConfigError(f"`n_boot` must be >= 0, got {n_boot}")
    if not 0 < level < 1:
        raise ConfigError(f"`level` must be in (0, 1), got {level}")
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    counts = confusion_counts(enc)
    G, C = enc.n_groups, enc.n_classes
    pos = None if pos_label is None else _pos_index(enc, pos_label)
    priv = None
    if privileged is not None:
        hits = [i for i, v in enumerate(enc.groups) if v == privileged or str(v) == str(privileged)]
        if not hits:
            raise ConfigError(f"`privileged` {_fmt(privileged)} is not a group; groups: {_short_list(enc.groups)}")
        priv = hits[0]
    values, maximum, normalized, ratios, und, cells, per_class, rate_rows = {}, {}, {}, {}, {}, {}, [], []
    binary: dict[str, dict[str, float]] | None = {} if pos is not None else None
    for m in metrics:
        if undefined == "raise":
            _raise_undefined(counts, m, enc)
        d = class_details_from_counts(counts, m, method, undefined)
        values[m] = aggregate(d["gap"], d["defined"], agg)
        maximum[m] = metric_maximum(counts, m, agg, undefined)
        normalized[m] = values[m] / maximum[m] if maximum[m] > 0 else float("nan")
        rv = d["ratio"][d["defined"]]
        ratios[m] = float(rv.min()) if rv.size else float("nan")
        und[m] = undefined_reasons(counts, m, enc.labels, enc.groups, undefined)
        cells[m] = empty_cells(counts, m, enc.labels, enc.groups, undefined)
        if binary is not None:
            diff, rat = pos_label_value(counts, m, method, pos, undefined)
            binary[m] = {"difference": diff, "ratio": rat}
        per_class.append(
            pd.DataFrame(
                {
                    "metric": m,
                    "class": [str(x) for x in enc.labels],
                    "gap": d["gap"],
                    "defined": d["defined"],
                    "ratio": d["ratio"],
                    "group_max": [str(enc.groups[i]) if ok else None for i, ok in zip(d["group_max"], d["defined"])],
                    "group_min": [str(enc.groups[i]) if ok else None for i, ok in zip(d["group_min"], d["defined"])],
                }
            )
        )
        rates, defined, _, _ = group_rates(counts, m, undefined)
        support = counts.sum(axis=2) if m != "sp" else np.repeat(counts.sum(axis=(1, 2))[:, None], C, axis=1)
        if m == "eodds":
            a, y, k = (v.ravel() for v in np.meshgrid(np.arange(G), np.arange(C), np.arange(C), indexing="ij"))
        else:
            a, y = (v.ravel() for v in np.meshgrid(np.arange(G), np.arange(C), indexing="ij"))
            k = y
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
    intervals = None
    pc = pd.concat(per_class, ignore_index=True)
    if n_boot > 0:
        intervals, lows, highs = _bootstrap(enc, metrics, method, agg, undefined, n_boot, level, seed, values)
        pc["ci_low"] = np.concatenate([lows[m] for m in metrics])
        pc["ci_high"] = np.concatenate([highs[m] for m in metrics])
    rows = np.bincount(enc.g, minlength=G)
    warns = [
        f"group {_fmt(enc.groups[i])} has {int(rows[i])} rows (< {small_group}): its rates, and every gap it sets, "
        "are noisy; read the bootstrap intervals (n_boot) or merge it"
        for i in np.flatnonzero(rows < small_group)
    ]
    for w in warns:
        warnings.warn(w, FairnessWarning, stacklevel=2)
    total = counts.sum()
    return FairnessMetrics(
        values=values,
        maximum=maximum,
        normalized=normalized,
        ratios=ratios,
        method=method,
        agg=agg,
        undefined_mode=undefined,
        n_rows=len(enc.y),
        total_weight=float(total),
        labels=[_py(v) for v in enc.labels],
        groups=[_py(v) for v in enc.groups],
        undefined=und,
        empty_cells=cells,
        intervals=intervals,
        accuracy=float(np.trace(counts.sum(axis=0)) / total),
        pos_label=_py(pos_label) if pos_label is not None else None,
        binary=binary,
        privileged=_py(privileged) if privileged is not None else None,
        warnings=warns,
        per_class=pc,
        rates=pd.concat(rate_rows, ignore_index=True),
        group_stats=_group_stats(counts, enc, rows, priv),
    )


def _bootstrap(
    enc: Encoded,
    metrics: Sequence[str],
    method: str,
    agg: str,
    undefined: str,
    n_boot: int,
    level: float,
    seed: int,
    values: dict[str, float],
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Percentile intervals of each aggregate and each per-class gap from the same row replicates, drawn as
    `rote.core.stats.bootstrap_ci` draws them (so the aggregate intervals equal bootstrap_ci's)."""
    from rote.core.stats import Interval

    G, C = enc.n_groups, enc.n_classes
    flat = (enc.g * C + enc.y) * C + enc.yhat
    w = enc.w if enc.w is not None else np.ones(len(flat))
    n = len(flat)
    rng = np.random.default_rng(seed)
    agg_vals = {m: np.full(n_boot, np.nan) for m in metrics}
    cls_vals = {m: np.full((n_boot, C), np.nan) for m in metrics}
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        cnt = np.bincount(flat[idx], weights=w[idx], minlength=G * C * C).reshape(G, C, C)
        if (cnt.sum(axis=(1, 2)) <= 0).any():
            continue  # a group vanished from this replicate: drop it
        for m in metrics:
            gaps, ok = class_gaps_from_counts(cnt, m, method, undefined)
            agg_vals[m][b] = aggregate(gaps, ok, agg)
            cls_vals[m][b] = np.where(ok, gaps, np.nan)
    tail = (1 - level) / 2
    intervals, lows, highs = {}, {}, {}
    for m in metrics:
        v = agg_vals[m][np.isfinite(agg_vals[m])]
        if len(v) < n_boot / 2:
            intervals[m] = Interval(values[m], float("nan"), float("nan"), level).to_dict()
        else:
            lo, hi = np.quantile(v, [tail, 1 - tail])
            intervals[m] = Interval(values[m], float(lo), float(hi), level).to_dict()
        lows[m], highs[m] = np.full(C, np.nan), np.full(C, np.nan)
        for c in range(C):
            col = cls_vals[m][:, c]
            col = col[np.isfinite(col)]
            if len(col) >= n_boot / 2:
                lows[m][c], highs[m][c] = np.quantile(col, [tail, 1 - tail])
    return intervals, lows, highs
