"""Statistics shared by every domain: bootstrap intervals, exact intervals for rates (Clopper-Pearson, Wilson) and
for AUCs (DeLong), mean ± std over seeds, two-sample tests and a group comparison with effect sizes.

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


def mean_t_interval(
    values: Sequence[float], *, level: float = 0.95, bounds: tuple[float, float] | None = None
) -> Interval:
    """Mean of replicate values (e.g. one metric over seeds) with its Student-t interval, mean ± t_{n-1} s / sqrt(n).
    NaNs are dropped; with fewer than two values the interval is (nan, nan): one seed has no spread to report.
    `bounds`: clip the interval to the quantity's range (e.g. (0, 1) for a rate or an AUC), which a normal-theory
    interval over few seeds can overrun."""
    from scipy import stats

    if not 0 < level < 1:
        raise ConfigError(f"`level` must be in (0, 1), got {level}")
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return Interval(math.nan, math.nan, math.nan, level)
    mean = float(v.mean())
    if len(v) < 2:
        return Interval(mean, math.nan, math.nan, level)
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, low, high, level)


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


def welch_t(x: Sequence[float], y: Sequence[float], *, alternative: str = "two-sided") -> tuple[float, float]:
    """Welch's unequal-variance t statistic and p-value (scipy); `alternative`: "two-sided", "greater" (mean of x
    above mean of y) or "less"."""
    from scipy import stats

    if alternative not in ("two-sided", "greater", "less"):
        raise ConfigError(f"`alternative` must be two-sided, greater or less, got {alternative!r}")
    res = stats.ttest_ind(np.asarray(x, float), np.asarray(y, float), equal_var=False, alternative=alternative)
    return float(res.statistic), float(res.pvalue)


# ------------------------------------------------------------------------------------------- exact intervals


def _z(level: float) -> float:
    from scipy import stats

    if not 0 < level < 1:
        raise ConfigError(f"`level` must be in (0, 1), got {level}")
    return float(stats.norm.ppf(0.5 + level / 2))


def binomial_ci(successes: int, n: int, *, level: float = 0.95, method: str = "clopper-pearson") -> Interval:
    """Interval for a rate `successes / n` that keeps its meaning at 0/n and n/n (a bootstrap gives [0, 0] there).

    method: "clopper-pearson" (exact: inverts two one-sided binomial tests, coverage >= level; Beta quantiles) or
    "wilson" (score interval: inverts the normal test with the variance at the hypothesised rate; shorter, coverage
    close to level on average). Both match `scipy.stats.binomtest(...).proportion_ci` ("exact", "wilson").
    n = 0 gives (nan, nan, nan).
    """
    from scipy import stats

    k, n = int(successes), int(n)
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ConfigError(f"`successes` must lie in 0..n, got {k} of {n}")
    if method not in ("clopper-pearson", "wilson"):
        raise ConfigError(f"`method` must be 'clopper-pearson' or 'wilson', got {method!r}")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, level)
    z = _z(level)
    p = k / n
    if method == "wilson":
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        return Interval(p, max(0.0, centre - half), min(1.0, centre + half), level)
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return Interval(p, low, high, level)


def delong_auc_variance(positives: Sequence[float], negatives: Sequence[float]) -> tuple[float, float]:
    """AUC = P(X > Y) + P(X = Y) / 2 of positive scores X against negative scores Y, and DeLong's (1988) variance
    S10 / m + S01 / n from the structural components V10(x_i) = mean_j psi(x_i, y_j) and V01(y_j) = mean_i psi(x_i,
    y_j) (sample variances, ddof 1). O((m + n) log(m + n)) via ranks (Sun & Xu 2014)."""
    x, y = np.asarray(positives, dtype=float).ravel(), np.asarray(negatives, dtype=float).ravel()
    m, n = len(x), len(y)
    if m < 1 or n < 1:
        raise ConfigError(f"DeLong needs positives and negatives, got {m} and {n}")

    def midranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="mergesort")
        sv = v[order]
        _, first, counts = np.unique(sv, return_index=True, return_counts=True)
        r = np.empty(len(v))
        r[order] = np.repeat(first + (counts + 1) / 2.0, counts)
        return r

    rz = midranks(np.r_[x, y])
    rx, ry = midranks(x), midranks(y)
    v10 = (rz[:m] - rx) / n  # share of negatives below each positive (ties half)
    v01 = 1.0 - (rz[m:] - ry) / m  # share of positives above each negative (ties half)
    auc = float(v10.mean())
    s10 = float(v10.var(ddof=1)) if m > 1 else 0.0
    s01 = float(v01.var(ddof=1)) if n > 1 else 0.0
    return auc, s10 / m + s01 / n


def auc_ci(positives: Sequence[float], negatives: Sequence[float], *, level: float = 0.95) -> Interval:
    """Interval for the AUC of positive against negative scores that does not collapse at AUC 0 or 1.

    DeLong's normal interval, clipped to [0, 1]. Where the DeLong variance is 0 (complete separation, every pair
    ordered the same way, so every bootstrap replicate also gives 1 and the percentile interval is [1, 1]), the
    interval is instead the Wilson score interval with the largest variance any pair of distributions with that AUC
    can have, A(1 - A) / min(m, n) (Birnbaum & Klose 1957): conservative, never zero-width. For 24 vs 24 texts
    separated perfectly this gives [0.862, 1]."""
    auc, var = delong_auc_variance(positives, negatives)
    z = _z(level)
    if var > 0:
        half = z * math.sqrt(var)
        return Interval(auc, max(0.0, auc - half), min(1.0, auc + half), level)
    n_eff = min(len(np.ravel(positives)), len(np.ravel(negatives)))
    w = binomial_ci(round(auc * n_eff), n_eff, level=level, method="wilson")
    return Interval(auc, w.low, w.high, level)


# ------------------------------------------------------------------------------------------- group comparison


@dataclasses.dataclass(frozen=True)
class GroupComparison:
    """Two groups of per-item values compared: a two-sided Mann-Whitney U test (scipy, exact for small samples
    without ties), Welch's t-test, and two effect sizes: Cliff's delta P(X > Y) - P(X < Y) (with a DeLong interval,
    as 2 AUC - 1) and the difference of means."""

    name_x: str
    name_y: str
    n_x: int
    n_y: int
    mean_x: float
    mean_y: float
    median_x: float
    median_y: float
    mean_difference: float
    cliffs_delta: float
    cliffs_delta_low: float
    cliffs_delta_high: float
    mann_whitney_u: float
    mann_whitney_p: float
    welch_t: float
    welch_p: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.name_x} (n={self.n_x}, mean {self.mean_x:.4g}) vs {self.name_y} (n={self.n_y}, mean "
            f"{self.mean_y:.4g}): Cliff's delta {self.cliffs_delta:+.3f} [{self.cliffs_delta_low:+.3f}, "
            f"{self.cliffs_delta_high:+.3f}], Mann-Whitney p = {self.mann_whitney_p:.3g}, Welch p = {self.welch_p:.3g}"
        )


def compare_groups(
    x: Sequence[float], y: Sequence[float], *, name_x: str = "x", name_y: str = "y", level: float = 0.95
) -> GroupComparison:
    """Compare the values of group x with those of group y (e.g. longest copied span of a lawsuit's exhibits vs
    post-cutoff controls). NaNs are dropped; each group needs at least two values."""
    from scipy import stats

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    xs, ys = xs[~np.isnan(xs)], ys[~np.isnan(ys)]
    if len(xs) < 2 or len(ys) < 2:
        raise ConfigError(f"a group comparison needs at least two values per group, got {len(xs)} and {len(ys)}")
    iv = auc_ci(xs, ys, level=level)
    mw = stats.mannwhitneyu(xs, ys, alternative="two-sided")
    if np.ptp(np.r_[xs, ys]) == 0 or (xs.std() == 0 and ys.std() == 0):
        t, tp = math.nan, math.nan
    else:
        t, tp = welch_t(xs, ys)
    return GroupComparison(
        name_x=str(name_x),
        name_y=str(name_y),
        n_x=len(xs),
        n_y=len(ys),
        mean_x=float(xs.mean()),
        mean_y=float(ys.mean()),
        median_x=float(np.median(xs)),
        median_y=float(np.median(ys)),
        mean_difference=float(xs.mean() - ys.mean()),
        cliffs_delta=2 * iv.estimate - 1,
        cliffs_delta_low=2 * iv.low - 1,
        cliffs_delta_high=2 * iv.high - 1,
        mann_whitney_u=float(mw.statistic),
        mann_whitney_p=float(mw.pvalue),
        welch_t=float(t),
        welch_p=float(tp),
    )


# ------------------------------------------------------------------------------------------- one-sided rank test, power

MWU_ALTERNATIVES = ("greater", "less", "two-sided")


def _mwu_exact_counts(m: int, n: int) -> list[int]:
    """Number of the C(m+n, m) rankings of m x-values among n y-values (no ties) with U = u, for u = 0..m n: the
    coefficients of the Gaussian binomial [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i) (exact ints)."""
    poly = [1] + [0] * (m * n)
    for i in range(1, m + 1):
        for k in range(m * n, n + i - 1, -1):  # multiply by (1 - q^(n+i))
            poly[k] -= poly[k - n - i]
        for k in range(i, m * n + 1):  # divide by (1 - q^i): c[k] = a[k] + c[k-i]
            poly[k] += poly[k - i]
    return poly


def mann_whitney_test(
    x: Sequence[float], y: Sequence[float], *, alternative: str = "greater", method: str = "auto"
) -> tuple[float, float]:
    """Mann-Whitney U test of x against y: U (ties count half) and its p-value.

    alternative: "greater" (H1: X is stochastically larger than Y, the one-sided test of a dataset-level
        memorization detector), "less" or "two-sided".
    method: "exact" (the permutation distribution of U, from the Gaussian binomial; exact without ties),
        "asymptotic" (normal approximation with the tie-corrected variance and a 0.5 continuity correction) or
        "auto" (exact when there are no ties and one sample has at most 8 values, else asymptotic). The same
        conventions as `scipy.stats.mannwhitneyu`, implemented here and tested against it.
    """
    from scipy import stats

    if alternative not in MWU_ALTERNATIVES:
        raise ConfigError(f"`alternative` must be one of {', '.join(MWU_ALTERNATIVES)}, got {alternative!r}")
    if method not in ("auto", "exact", "asymptotic"):
        raise ConfigError(f"`method` must be auto, exact or asymptotic, got {method!r}")
    xs, ys = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if len(xs) == 0 or len(ys) == 0 or np.isnan(xs).any() or np.isnan(ys).any():
        raise ConfigError(
            f"a Mann-Whitney test needs values in both groups and no NaN, got {len(xs)} and {len(ys)} values"
        )
    m, n = len(xs), len(ys)
    u, _ = mann_whitney_u(xs, ys)
    _, counts = np.unique(np.r_[xs, ys], return_counts=True)
    ties = bool((counts > 1).any())
    if method == "auto":
        method = "exact" if (not ties and min(m, n) <= 8) else "asymptotic"
    if method == "exact":
        dist = _mwu_exact_counts(m, n)
        total = sum(dist)
        k = int(math.floor(u + 0.5))
        upper = sum(dist[k:]) / total  # P(U >= u)
        lower = sum(dist[: int(math.ceil(u - 0.5)) + 1]) / total  # P(U <= u)
        if alternative == "greater":
            return u, float(upper)
        if alternative == "less":
            return u, float(lower)
        return u, float(min(1.0, 2 * min(upper, lower)))
    big_n = m + n
    tie_term = float((counts.astype(float) ** 3 - counts).sum()) / (big_n * (big_n - 1))
    sigma = math.sqrt(m * n / 12 * ((big_n + 1) - tie_term))
    mu = m * n / 2
    if sigma == 0:
        return u, 1.0
    if alternative == "greater":
        return u, float(stats.norm.sf((u - mu - 0.5) / sigma))
    if alternative == "less":
        return u, float(stats.norm.sf((m * n - u - mu - 0.5) / sigma))
    return u, float(min(1.0, 2 * stats.norm.sf((max(u, m * n - u) - mu - 0.5) / sigma)))


def cliffs_delta_ci(x: Sequence[float], y: Sequence[float], *, level: float = 0.95) -> Interval:
    """Cliff's delta P(X > Y) - P(X < Y) with an interval: 2 AUC - 1 of `auc_ci` (DeLong, or the conservative
    Wilson bound at complete separation), so it stays inside [-1, 1] and has width > 0 at delta = +-1."""
    xs, ys = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if len(xs) < 1 or len(ys) < 1:
        raise ConfigError(f"Cliff's delta needs values in both groups, got {len(xs)} and {len(ys)}")
    iv = auc_ci(xs, ys, level=level)
    return Interval(2 * iv.estimate - 1, 2 * iv.low - 1, 2 * iv.high - 1, level)


def _check_power_args(delta: float, alpha: float) -> float:
    if not -1 < float(delta) < 1 or delta == 0:
        raise ConfigError(f"`delta` (Cliff's delta to detect) must be in (-1, 0) or (0, 1), got {delta}")
    if not 0 < float(alpha) < 1:
        raise ConfigError(f"`alpha` must be in (0, 1), got {alpha}")
    return abs(float(delta)) / 2  # |P(X > Y) - 1/2|


def mann_whitney_power(delta: float, n_x: int, n_y: int, *, alpha: float = 0.05, one_sided: bool = True) -> float:
    """Approximate power of the Mann-Whitney test to detect a Cliff's delta `delta` with n_x and n_y values.

    Noether (1987, JASA 82:645): the test statistic is about normal with standardized shift
    sqrt(12 n_x n_y / (n_x + n_y)) |P(X > Y) - 1/2|, P(X > Y) = (1 + delta) / 2 (no ties), so
    power = Phi(sqrt(12 n_x n_y / N) |delta| / 2 - z_{1-alpha}) (alpha / 2 when two-sided).
    """
    from scipy import stats

    shift = _check_power_args(delta, alpha)
    if int(n_x) < 1 or int(n_y) < 1:
        raise ConfigError(f"`n_x` and `n_y` must be at least 1, got {n_x} and {n_y}")
    z_a = stats.norm.isf(alpha if one_sided else alpha / 2)
    return float(stats.norm.cdf(math.sqrt(12 * n_x * n_y / (n_x + n_y)) * shift - z_a))


def mann_whitney_sample_size(
    delta: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0, one_sided: bool = True
) -> tuple[int, int]:
    """Smallest (n_x, n_y), n_y = ceil(ratio n_x), for which `mann_whitney_power` reaches `power` (Noether 1987:
    N = (z_{1-alpha} + z_{power})^2 / (12 c (1 - c) (delta / 2)^2), c = n_x / N). E.g. delta 0.5, alpha 0.05
    one-sided, power 0.8, equal groups: N = 32.97, so (17, 17)."""
    from scipy import stats

    shift = _check_power_args(delta, alpha)
    if not 0 < float(power) < 1:
        raise ConfigError(f"`power` must be in (0, 1), got {power}")
    if not float(ratio) > 0:
        raise ConfigError(f"`ratio` (n_y / n_x) must be > 0, got {ratio}")
    z_a = stats.norm.isf(alpha if one_sided else alpha / 2)
    c = 1 / (1 + ratio)
    total = (z_a + stats.norm.ppf(power)) ** 2 / (12 * c * (1 - c) * shift**2)
    n_x = max(1, math.ceil(total * c - 1e-9))
    while mann_whitney_power(delta, n_x, math.ceil(ratio * n_x), alpha=alpha, one_sided=one_sided) < power:
        n_x += 1  # rounding n_y up and down can leave the formula's N a hair short
    return n_x, max(1, math.ceil(ratio * n_x - 1e-9))


# ------------------------------------------------------------------------------------------- paired seeds


def paired_difference_interval(x: Sequence[float], y: Sequence[float], *, level: float = 0.95) -> Interval:
    """Mean of the paired differences x_i - y_i (e.g. one metric of two methods run with the same seeds) with its
    Student-t interval, mean ± t_{n-1} s_d / sqrt(n). Pairs with a NaN are dropped; with fewer than two pairs the
    interval is (nan, nan). x and y must have the same length (pair i = seed i)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ConfigError(f"paired values need two 1-D sequences of equal length, got {xs.shape} and {ys.shape}")
    return mean_t_interval(xs - ys, level=level)


def paired_t_sample_size(effect: float, sd: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Smallest number of pairs n for which a two-sided paired t-test at level `alpha` detects a mean difference
    `effect` with probability `power`, when the paired differences have standard deviation `sd`.

    Exact power from the noncentral t distribution: power(n) = P(|T| > t_{1-alpha/2, n-1}), T ~ nct(n - 1,
    effect sqrt(n) / sd); n starts at 2 and grows until power(n) >= `power`. E.g. effect = sd (d = 1), alpha 0.05,
    power 0.8: n = 10 (the normal approximation (z_a + z_b)^2 / d^2 = 7.85 is too optimistic at small n)."""
    from scipy import stats

    if not float(sd) > 0 or not math.isfinite(float(sd)):
        raise ConfigError(f"`sd` (standard deviation of the paired differences) must be > 0, got {sd}")
    if float(effect) == 0 or not math.isfinite(float(effect)):
        raise ConfigError(f"`effect` (mean difference to detect) must be finite and non-zero, got {effect}")
    if not 0 < float(alpha) < 1 or not 0 < float(power) < 1:
        raise ConfigError(f"`alpha` and `power` must be in (0, 1), got {alpha} and {power}")
    d = abs(float(effect)) / float(sd)
    n = 2
    while True:
        df = n - 1
        crit = stats.t.ppf(1 - alpha / 2, df)
        nc = d * math.sqrt(n)
        achieved = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
        if achieved >= power or n >= 100_000:
            return n
        n += 1
