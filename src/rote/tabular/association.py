"""Feature association over mixed columns and the column clustering TabCutMixPlus swaps as units.

Fang et al. (ICML 2025), section 4.2: the association of two columns is |Pearson r| for numeric-numeric pairs,
the bias-corrected Cramer's V for categorical-categorical pairs and the correlation ratio eta for
numeric-categorical pairs; all columns take part, the label included. Columns are then clustered by average
linkage on 1 - association, cut at distance 0.3, so a cluster's columns have average pairwise association of
about 0.7 or more.

Undefined values are defined here, never NaN: a constant column (zero variance, or a single category) has
association 0 with every other column (it carries no information about them), and a table with one row gives
0 everywhere off the diagonal. The diagonal is 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from rote.core.errors import ConfigError
from rote.data import TableSchema, validate_table

DEFAULT_CUT = 0.3
"""The TabCutMix code's cut of the average-linkage tree (distance 1 - association)."""


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two (n,) float arrays; 0 when either is constant or n < 2 (r undefined)."""
    x = np.asarray(x, np.float64) - np.mean(x)
    y = np.asarray(y, np.float64) - np.mean(y)
    sxx, syy = float(np.sum(x * x)), float(np.sum(y * y))
    if sxx <= 0.0 or syy <= 0.0:
        return 0.0
    return float(np.clip(float(np.sum(x * y)) / np.sqrt(sxx * syy), -1.0, 1.0))


def pearson_abs(x: np.ndarray, y: np.ndarray) -> float:
    """|Pearson r| (see `pearson`)."""
    return abs(pearson(x, y))


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(r, k) counts of code pairs; a, b are (n,) non-negative int codes with no unused code below the max."""
    r, k = int(a.max()) + 1, int(b.max()) + 1
    return np.bincount(a * k + b, minlength=r * k).reshape(r, k).astype(np.float64)


def chi2_statistic(table: np.ndarray, yates: bool = True) -> float:
    """Pearson's chi-squared statistic of an (r, k) contingency table of counts.

    With `yates=True` and one degree of freedom (a 2x2 table) each |observed - expected| is reduced by
    min(0.5, |observed - expected|): Yates' continuity correction, applied by `scipy.stats.chi2_contingency`'s
    default, which the TabCutMix code calls.
    """
    n = table.sum()
    expected = np.outer(table.sum(1), table.sum(0)) / n
    diff = table - expected
    if yates and (table.shape[0] - 1) * (table.shape[1] - 1) == 1:
        diff = np.sign(diff) * np.maximum(np.abs(diff) - np.minimum(0.5, np.abs(diff)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, diff**2 / expected, 0.0)
    return float(terms.sum())


def cramers_v_corrected(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramer's V (Bergsma 2013) of two (n,) int code arrays (codes 0..c-1, all used).

    phi2 = chi2 / n, phi2_corr = max(0, phi2 - (k-1)(r-1)/(n-1)), r_corr = r - (r-1)^2/(n-1),
    k_corr = k - (k-1)^2/(n-1), V = sqrt(phi2_corr / min(k_corr - 1, r_corr - 1)); chi2 with Yates' correction
    on 2x2 tables, as the TabCutMix code. Returns 0 when V is undefined (a single category, or n < 2).
    """
    n = len(a)
    table = _contingency(a, b)
    r, k = table.shape
    if n < 2 or r < 2 or k < 2:
        return 0.0
    phi2 = chi2_statistic(table) / n
    phi2_corr = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_corr = r - (r - 1) ** 2 / (n - 1)
    k_corr = k - (k - 1) ** 2 / (n - 1)
    denom = min(k_corr - 1, r_corr - 1)
    if denom <= 0:  # tiny n: the correction leaves no freedom, V is undefined
        return 0.0
    return float(min(1.0, np.sqrt(phi2_corr / denom)))


def correlation_ratio(codes: np.ndarray, values: np.ndarray) -> float:
    """Correlation ratio eta = sqrt(SS_between / SS_total) of (n,) numeric `values` grouped by (n,) int `codes`.

    0 when the numeric column is constant (SS_total = 0) or there is a single group.
    """
    values = np.asarray(values, np.float64)
    centred = values - values.mean()
    ss_total = float(np.sum(centred * centred))
    if ss_total <= 0.0:
        return 0.0
    counts = np.bincount(codes).astype(np.float64)
    used = counts > 0
    if used.sum() < 2:  # one group: no between-group variation (exactly 0, not a rounding residue)
        return 0.0
    sums = np.bincount(codes, weights=centred)
    ss_between = float(np.sum(sums[used] ** 2 / counts[used]))
    return float(np.sqrt(min(1.0, max(0.0, ss_between / ss_total))))


def association_matrix(table: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """(C, C) symmetric association of every pair of the schema's columns (label included), in [0, 1].

    |Pearson r| numeric-numeric, bias-corrected Cramer's V categorical-categorical, correlation ratio eta
    numeric-categorical (Fang et al. 2025, section 4.2). Index and columns are `schema.columns`; diagonal 1.
    Unlike the TabCutMix code, the column types come from `schema`, so integer-coded categoricals get Cramer's V
    rather than Pearson. Constant columns have association 0 (see the module docstring).
    """
    clean = validate_table(table, schema, name=str(table.attrs.get("source", "table")), allow_extra=True)
    cols = list(schema.columns)
    pos = {c: i for i, c in enumerate(cols)}
    out = np.eye(len(cols))
    num_cols = list(schema.numeric)
    # (n, p) centred numerics; einsum, not BLAS: these products are small, and threaded BLAS spin-waits on a
    # busy machine cost more than the products themselves
    xc = clean[num_cols].to_numpy(np.float64) if num_cols else np.zeros((len(clean), 0))
    xc = xc - xc.mean(0)
    ss = np.einsum("ni,ni->i", xc, xc)
    live = ss > 0.0
    if num_cols:
        cross = np.abs(np.einsum("ni,nj->ij", xc, xc))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(np.outer(live, live), cross / np.sqrt(np.outer(ss, ss)), 0.0)
        r = np.clip(r, 0.0, 1.0)
        idx = [pos[c] for c in num_cols]
        out[np.ix_(idx, idx)] = r
    codes = {c: pd.factorize(clean[c])[0].astype(np.int64) for c in schema.categorical}
    for c, g in codes.items():
        counts = np.bincount(g).astype(np.float64)
        for j, x in enumerate(num_cols):
            if not live[j] or len(counts) < 2:
                eta = 0.0
            else:  # eta^2 = SS_between / SS_total, group sums of the centred column
                sums = np.bincount(g, weights=xc[:, j], minlength=len(counts))
                eta = float(np.sqrt(min(1.0, max(0.0, np.sum(sums**2 / counts) / ss[j]))))
            out[pos[c], pos[x]] = out[pos[x], pos[c]] = eta
    cats = list(schema.categorical)
    for i, a in enumerate(cats):
        for b in cats[i + 1 :]:
            out[pos[a], pos[b]] = out[pos[b], pos[a]] = cramers_v_corrected(codes[a], codes[b])
    np.fill_diagonal(out, 1.0)
    return pd.DataFrame(out, index=cols, columns=cols)


def cluster_columns(association: pd.DataFrame, cut: float = DEFAULT_CUT) -> list[list[str]]:
    """Clusters of columns: average linkage on distance 1 - |association|, tree cut at `cut`.

    association: (C, C) symmetric frame (as from `association_matrix`); the diagonal is ignored.
    Returns the clusters as lists of column names, each in the association's column order, clusters ordered by
    their first column. One column gives [[column]].
    """
    if not 0.0 <= cut <= 1.0:
        raise ConfigError(f"cut={cut!r}: the clustering cut is a distance 1 - association, so it must be in [0, 1]")
    cols = [str(c) for c in association.columns]
    values = association.to_numpy(np.float64)
    if values.shape != (len(cols), len(cols)) or list(association.index) != list(association.columns):
        raise ConfigError("association must be a square frame with the same labels on its index and columns")
    if np.isnan(values).any():
        raise ConfigError("association holds NaN; build it with association_matrix, which defines every pair")
    if len(cols) == 1:
        return [cols]
    dist = 1.0 - np.clip(np.abs((values + values.T) / 2), 0.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(linkage(squareform(dist, checks=False), method="average"), t=cut, criterion="distance")
    clusters: dict[int, list[str]] = {}
    for col, lab in zip(cols, labels):
        clusters.setdefault(int(lab), []).append(col)
    return list(clusters.values())  # dict order = order of first column
