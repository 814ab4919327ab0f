"""Statistics shared by every domain: bootstrap intervals, mean ± std over seeds, two-sample tests.

All random functions take a seed; the same seed gives the same interval.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np

from rote.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval [low, high] at `level` (e.g. 0.95)."""

    estimate: float
    low: float
    high: float
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}]"


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: Any,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    strata: Any = None,
) -> Interval:
    """Percentile bootstrap interval of `statistic(*arrays)`.

    Each replicate draws len(arrays[0]) row indices with replacement and applies them to every array (so paired
    arrays such as scores and labels stay aligned). With `strata` (one label per row), rows are resampled within each
    stratum so every replicate keeps the stratum sizes: use it for members vs non-members, where a replicate with one
    class only would leave an AUC undefined. Replicates whose statistic is not finite are dropped; if fewer than half
    survive the interval is (nan, nan).

    Args:
        statistic: function of the (resampled) arrays returning a float.
        arrays: array-likes of equal length n (numpy arrays or anything `np.asarray` accepts; indexed on axis 0).
        n_boot: number of bootstrap replicates.
        level: confidence level in (0, 1).
        seed: seed of the resampling.
        strata: optional (n,) labels; resampling is done within each label.
    """
    if not arrays:
        raise ConfigError("bootstrap_ci needs at least one array to resample")
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise ConfigError(f"bootstrap_ci: arrays have different lengths {[len(a) for a in arrs]}; pass aligned arrays")
    if not 0 < level < 1:
        raise ConfigError(f"bootstrap_ci: level must be in (0, 1), got {level}")
    estimate = float(statistic(*arrs))
    if n == 0 or n_boot <= 0:
        return Interval(estimate, math.nan, math.nan, level)
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n)]
    else:
        s = np.asarray(strata)
        if len(s) != n:
            raise ConfigError(f"bootstrap_ci: strata has length {len(s)}, arrays have {n}")
        groups = [np.flatnonzero(s == u) for u in np.unique(s)]
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        values[b] = statistic(*[a[idx] for a in arrs])
    values = values[np.isfinite(values)]
    if len(values) < n_boot / 2:
        return Interval(estimate, math.nan, math.nan, level)
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Interval(estimate, float(low), float(high), level)


def mean_std(values: Sequence[float], ddof: int = 1) -> tuple[float, float]:
    """Mean and standard deviation over seeds; the std of a single value is 0 (not NaN). NaNs are ignored."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) <= ddof:
        return float(v.mean()), 0.0
    return float(v.mean()), float(v.std(ddof=ddof))


def format_mean_std(mean: float, std: float, digits: int = 2) -> str:
    """'12.34 ± 0.56' (the papers' table style); 'n/a' for NaN."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def relative_change(value: float, baseline: float) -> float:
    """(value - baseline) / |baseline|, e.g. -0.12 for a 12 % reduction; NaN when the baseline is 0."""
    if baseline == 0 or math.isnan(baseline):
        return math.nan
    return (value - baseline) / abs(baseline)


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """U statistic of x against y (ties count half) and its normalised form U / (n_x n_y) = P(X > Y) + P(X = Y)/2.

    The normalised U is exactly the ROC AUC of scores x (positives) against y (negatives).
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) == 0 or len(ys) == 0:
        return math.nan, math.nan
    allv = np.concatenate([xs, ys])
    # average ranks (1-based) handle ties
    order = np.argsort(allv, kind="mergesort")
    sorted_v = allv[order]
    ranks = np.empty(len(allv))
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = float(ranks[: len(xs)].sum() - len(xs) * (len(xs) + 1) / 2.0)
    return u, u / (len(xs) * len(ys))


def cliffs_delta(x: Sequence[float], y: Sequence[float]) -> float:
    """Cliff's delta P(X > Y) - P(X < Y), from the Mann-Whitney U (O(n log n))."""
    _, auc = mann_whitney_u(x, y)
    return 2 * auc - 1


def welch_t(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Welch's unequal-variance t statistic and two-sided p-value (scipy)."""
    from scipy import stats

    res = stats.ttest_ind(np.asarray(x, float), np.asarray(y, float), equal_var=False)
    return float(res.statistic), float(res.pvalue)
