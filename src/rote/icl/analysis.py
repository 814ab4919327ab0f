"""Analysis of an ICL sweep: K* per N, the exponent of K* against N, nu from the stand-alone MLP, the t_ICL
distribution, bimodality near K*, the effect of equalized label counts (Nguyen and Reddy 2025, their analysis.py).

- K* per N: a 4-parameter sigmoid acc = d / (1 + exp(-a (log10 K - b))) + c fitted by least squares to the final ICL
  accuracy of every run (every seed at every finite K); K* = 10^b. Interval: percentile bootstrap over seeds
  (each replicate resamples the seeds at every K, then refits).
- Exponent: least-squares slope of log K* against log N; interval: the slope over paired bootstrap replicates of K*.
  The paper predicts 1/nu = 1/0.7 = 1.43.
- nu: least-squares slope of log I_K against log K over the stand-alone MLP runs; bootstrap over seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import DataError
from rote.core.runs import make_rng

__all__ = [
    "PAPER_NU",
    "sigmoid4",
    "fit_sigmoid",
    "k_star",
    "exponent_fit",
    "nu_fit",
    "loglog_slope",
    "t_icl_stats",
    "bimodality",
]

PAPER_NU = 0.7  # Nguyen and Reddy: I_K(inf) ~ K^0.7, so K* ~ N^(1/0.7)


def sigmoid4(log_k: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """d / (1 + exp(-a (log10 K - b))) + c, the authors' fit of final ICL accuracy against log10 K."""
    return d / (1 + np.exp(-a * (np.asarray(log_k, float) - b))) + c


def fit_sigmoid(K: Sequence[float], acc: Sequence[float]) -> tuple[float, float, float, float]:
    """(a, b, c, d) of `sigmoid4` fitted to accuracies at K (one entry per run); raises DataError when the data
    cannot place a transition (fewer than 2 distinct K, or the fit does not converge)."""
    from scipy.optimize import curve_fit

    lk, y = np.log10(np.asarray(K, float)), np.asarray(acc, float)
    if len(np.unique(lk)) < 2:
        raise DataError("a sigmoid in log10 K needs runs at 2 or more K values")
    lo, hi = float(lk.min()), float(lk.max())
    means = pd.Series(y).groupby(lk).mean()
    mid = 0.5 * (means.min() + means.max())
    above = means.index[means.to_numpy() >= mid]
    b0 = float(above[0]) if len(above) else 0.5 * (lo + hi)
    p0 = (5.0, b0, float(means.min()), float(max(means.max() - means.min(), 0.05)))
    bounds = ([0.0, lo - 1.0, -0.5, 0.0], [200.0, hi + 1.0, 1.0, 1.5])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            popt, _ = curve_fit(sigmoid4, lk, y, p0=p0, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        raise DataError(f"the sigmoid fit of ICL accuracy against log10 K did not converge ({exc})") from None
    return tuple(float(v) for v in popt)  # type: ignore[return-value]


def k_star(
    runs: pd.DataFrame, n_boot: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[dict[str, dict[str, Any]], dict[int, np.ndarray]]:
    """K* per N from `runs` (columns N, K, seed, icl_acc; finite K only). Returns ({str(N): {"k_star", "ci",
    "sigmoid": [a, b, c, d], "n_runs"}}, {N: (n_boot,) bootstrap K* replicates, NaN where a refit failed})."""
    out: dict[str, dict[str, Any]] = {}
    reps: dict[int, np.ndarray] = {}
    rng = make_rng(seed)
    for n_ctx, g in runs.groupby("N", sort=True):
        params = fit_sigmoid(g["K"], g["icl_acc"])
        by_k = [(k, gk["icl_acc"].to_numpy()) for k, gk in g.groupby("K", sort=True)]
        boot = np.full(n_boot, np.nan)
        for r in range(n_boot):
            ks, accs = [], []
            for k, a in by_k:
                pick = a[rng.integers(len(a), size=len(a))]
                ks.append(np.full(len(a), k))
                accs.append(pick)
            try:
                boot[r] = 10 ** fit_sigmoid(np.concatenate(ks), np.concatenate(accs))[1]
            except DataError:
                pass
        alpha = (1 - level) / 2
        ok = boot[np.isfinite(boot)]
        ci = (
            [float(np.quantile(ok, alpha)), float(np.quantile(ok, 1 - alpha))]
            if len(ok) >= n_boot / 2
            else [None, None]
        )
        out[str(int(n_ctx))] = {
            "k_star": float(10 ** params[1]),
            "ci": ci,
            "sigmoid": list(params),
            "n_runs": int(len(g)),
            "n_boot_ok": int(len(ok)),
        }
        reps[int(n_ctx)] = boot
    return out, reps


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line log y = slope log x + intercept."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    slope, intercept = np.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


def exponent_fit(
    kstar: dict[str, dict[str, Any]], reps: dict[int, np.ndarray], level: float = 0.95, predicted: float = 1 / PAPER_NU
) -> dict[str, Any]:
    """Slope of log K* against log N, its interval from the paired bootstrap replicates, and whether the interval
    covers the paper's 1/nu."""
    ns = sorted(int(n) for n in kstar)
    if len(ns) < 2:
        return {
            "value": None,
            "ci": [None, None],
            "predicted": predicted,
            "covers_predicted": None,
            "n_points": len(ns),
        }
    value, _ = loglog_slope(ns, [kstar[str(n)]["k_star"] for n in ns])
    mat = np.stack([reps[n] for n in ns], axis=1)  # (n_boot, len(ns))
    ok = mat[np.isfinite(mat).all(axis=1) & (mat > 0).all(axis=1)]
    slopes = np.array([loglog_slope(ns, row)[0] for row in ok])
    alpha = (1 - level) / 2
    ci = (
        [float(np.quantile(slopes, alpha)), float(np.quantile(slopes, 1 - alpha))]
        if len(slopes) >= 10
        else [None, None]
    )
    covers = None if ci[0] is None else bool(ci[0] <= predicted <= ci[1])
    return {"value": value, "ci": ci, "predicted": predicted, "covers_predicted": covers, "n_points": len(ns)}


def nu_fit(
    mlp: pd.DataFrame, n_boot: int = 1000, level: float = 0.95, seed: int = 0, max_c1: float | None = 0.05
) -> dict[str, Any]:
    """nu = slope of log I_K against log K (columns K, seed, I_K[, c1]), with a bootstrap over seeds within each K.

    I_K(inf) needs the MLP to have memorized: K whose mean final c1 exceeds `max_c1` (the run ended with loss
    residual left, so its I_K is cut short) are left out and listed in `not_converged` (None: keep every K)."""
    not_converged: list[int] = []
    if max_c1 is not None and "c1" in mlp:
        c1 = mlp.groupby("K")["c1"].mean()
        not_converged = [int(k) for k in c1.index if c1[k] > max_c1]
        mlp = mlp[~mlp["K"].isin(not_converged)]
    ks = sorted(mlp["K"].unique())
    if len(ks) < 2:
        return {
            "value": None,
            "ci": [None, None],
            "predicted": PAPER_NU,
            "covers_predicted": None,
            "K": [int(k) for k in ks],
            "not_converged": not_converged,
        }
    means = mlp.groupby("K")["I_K"].mean()
    value, _ = loglog_slope(ks, means.loc[ks].to_numpy())
    rng = make_rng(seed)
    groups = [mlp.loc[mlp.K == k, "I_K"].to_numpy() for k in ks]
    slopes = []
    for _ in range(n_boot):
        m = [a[rng.integers(len(a), size=len(a))].mean() for a in groups]
        slopes.append(loglog_slope(ks, m)[0])
    alpha = (1 - level) / 2
    ci = [float(np.quantile(slopes, alpha)), float(np.quantile(slopes, 1 - alpha))]
    return {
        "value": value,
        "ci": ci,
        "predicted": PAPER_NU,
        "covers_predicted": bool(ci[0] <= PAPER_NU <= ci[1]),
        "K": [int(k) for k in ks],
        "I_K": [float(means.loc[k]) for k in ks],
        "not_converged": not_converged,
        "max_c1": max_c1,
    }


def t_icl_stats(runs: pd.DataFrame) -> dict[str, Any]:
    """Per N, over the runs given (columns N, t_icl; NaN = never acquired): count, acquired, median, quartiles,
    90th percentile, max, tail ratio q90/median and skewness of the acquired t_ICL; plus the slope of the median
    against N (least squares) when there are 2 or more N."""
    per: dict[str, Any] = {}
    for n_ctx, g in runs.groupby("N", sort=True):
        t = g["t_icl"].to_numpy(float)
        a = t[np.isfinite(t)]
        row: dict[str, Any] = {"runs": int(len(t)), "acquired": int(len(a))}
        if len(a):
            q25, med, q75, q90 = np.quantile(a, [0.25, 0.5, 0.75, 0.9])
            sd = a.std()
            row.update(
                median=float(med),
                q25=float(q25),
                q75=float(q75),
                q90=float(q90),
                max=float(a.max()),
                tail_ratio=float(q90 / med) if med > 0 else None,
                skewness=float(((a - a.mean()) ** 3).mean() / sd**3) if sd > 0 else 0.0,
            )
        per[str(int(n_ctx))] = row
    ns = [int(n) for n, r in per.items() if "median" in r]
    slope = None
    if len(ns) >= 2:
        slope = float(np.polyfit(ns, [per[str(n)]["median"] for n in ns], 1)[0])
    return {"per_N": per, "median_slope_per_N": slope}


def bimodality(acc: Sequence[float], low: float = 0.6, high: float = 0.9) -> dict[str, Any]:
    """Outcome spread of final ICL accuracy across seeds: Sarle's bimodality coefficient
    (g^2 + 1) / (k + 3 (n-1)^2 / ((n-2)(n-3))) with g the sample skewness and k the excess kurtosis (> 5/9
    suggests bimodality; needs n >= 4), the share of seeds that acquired ICL (> high), that memorized (< low) and in
    between."""
    a = np.asarray(acc, float)
    n = len(a)
    out: dict[str, Any] = {
        "n": n,
        "share_icl": float((a > high).mean()) if n else None,
        "share_iwl": float((a < low).mean()) if n else None,
        "share_between": float(((a >= low) & (a <= high)).mean()) if n else None,
        "coefficient": None,
    }
    if n >= 4:
        from scipy.stats import kurtosis, skew

        if np.ptp(a) > 1e-9 * max(1.0, float(np.abs(a).max())):  # not all equal (else undefined: None)
            g, k = skew(a, bias=False), kurtosis(a, bias=False)
            out["coefficient"] = float((g**2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))
    out["bimodal"] = bool(out["share_icl"] and out["share_iwl"] and out["share_icl"] > 0 and out["share_iwl"] > 0)
    return out


def acquired_share(runs: pd.DataFrame, by: Sequence[str] = ("N", "K")) -> pd.DataFrame:
    """Share of runs that acquired ICL (final ICL accuracy > 0.75) per group, with the run count."""
    g = runs.groupby(list(by), sort=True)
    return pd.DataFrame(
        {"acquired": g["icl_acc"].apply(lambda s: float((s > 0.75).mean())), "runs": g.size()}
    ).reset_index()


def safe_log10(x: float) -> float:
    return math.log10(x) if x and x > 0 else float("nan")
