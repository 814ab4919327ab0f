"""The memorized mass that removes bias: linear feasibility problems, closed-form bounds, concrete row sets.

Pepin, Igel & Selvan (arXiv 2412.09254) characterise the memorized sets that bring a multi-class additive metric
to zero as linear constraints, and bound the memorized mass p_D they need. Two models of "which points" are
provided (docs/fairness.md derives both):

- `model="rows"` (default): a finite dataset with fixed base predictions g. Memorizing a row sets its prediction
  to its label; rows already predicted correctly gain nothing, so the variables are the masses x[a, y, k] of
  misclassified rows (group a, label y, base prediction k != y) that are memorized, 0 <= x <= their mass.
  Every rate of h is linear in x with fixed denominators (group or group-and-class mass), so zero bias is a
  set of linear equalities. The LP optimum is the exact minimum over (fractionally weighted) row sets;
  `integral=True` solves the integer program over whole rows (unit weights), which equals the best subset.
- `model="paper"`: the paper's population setting: the memorized set is described by its group/label masses
  m[a, y] (rate rho[a, y] = m / pi[a, y]) and the base classifier's statistics on the unmemorized part are held
  fixed: r_a for statistical parity, R_{a,y} for equal opportunity and equalized odds. Memorization then only
  rescales each unmemorized confusion row, so equalized odds can be removed without memorizing a whole class
  only if the groups' error vectors are proportional (the "ratio condition", `eodds_ratio_condition`).

Closed forms (mass units; divide by the total weight for p_D), with n_{a,y} the mass of group a, class y and
t_{a,y} the base TPR, t*_y = max_a t_{a,y}, e_{a,y}(k) = P(g=k | y, a) for k != y:
- SP lower bound (both models): max over group pairs of 1/2 ||P_a - P_b||_1 min(n_a, n_b).
- SP upper bound (rows): groups other than a reference b move to P_b by memorizing errors that carry mass from a
  surplus class straight to a deficit class (greedy fill); cost 1/2 ||P_a - P_b||_1 n_a per group when it succeeds.
- SP upper bound (paper): memorize only the groups other than a reference b, each with the smallest mu_a that
  makes r_b reachable, mu_a = 1 - min_k r_b(k) / r_a(k); feasible when the needed labels exist.
- EOpp exact: rows sum_{a,y} n_{a,y} (t*_y - t_{a,y}); paper sum n_{a,y} (t*_y - t_{a,y}) / (1 - t_{a,y}).
- EOdds exact: rows sum_{a,y,k!=y} n_{a,y} (e_{a,y}(k) - min_b e_{b,y}(k)); paper as EOpp on classes meeting
  the ratio condition, all of n_{a,y} for every group with errors on the others.
The rows model's exact values are lower bounds of the paper model's (a paper-model set is a rows-model set that
also spends mass on correctly predicted rows).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.results import Result, internal_field, table_field
from rote.fairness.metrics import (
    _fmt,
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

MODELS: tuple[str, ...] = ("rows", "paper")
_PROP_TOL = 1e-9


# ---------------------------------------------------------------------------------------------- closed forms


def _sel(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P (G, C) prediction distribution per group, n (G,) group mass)."""
    n = counts.sum(axis=(1, 2))
    return counts.sum(axis=1) / n[:, None], n


def sp_lower_bound(counts: np.ndarray) -> float:
    """Mass lower bound for zero statistical parity (both models): memorizing mass delta in group a moves its
    prediction distribution by at most 2 delta / n_a in L1, so every pair needs
    delta_a + delta_b >= 1/2 ||P_a - P_b||_1 min(n_a, n_b)."""
    P, n = _sel(counts)
    best = 0.0
    for a, b in itertools.combinations(range(len(n)), 2):
        best = max(best, 0.5 * float(np.abs(P[a] - P[b]).sum()) * float(min(n[a], n[b])))
    return best


def sp_upper_bound_paper(counts: np.ndarray, max_rate: float = 1.0) -> tuple[float, int | None]:
    """(mass, reference group) of the paper-model construction that memorizes every group but a reference b,
    group a with mu_a = 1 - min_k r_b(k)/r_a(k) and labels m_a = n_a (r_b - (1 - mu_a) r_a), so that
    P'_a = r_b. Feasible when m_a(k) <= max_rate n_{a,k} for all k; (inf, None) when no reference works."""
    P, n = _sel(counts)
    label_mass = counts.sum(axis=2)  # (G, C)
    best, ref = np.inf, None
    for b in range(len(n)):
        total, ok = 0.0, True
        for a in range(len(n)):
            if a == b:
                continue
            pos = P[a] > 0
            mu = 1.0 - float(np.min(P[b][pos] / P[a][pos]))
            m = n[a] * (P[b] - (1.0 - mu) * P[a])
            if (m > max_rate * label_mass[a] + 1e-9 * n[a]).any():
                ok = False
                break
            total += mu * n[a]
        if ok and total < best:
            best, ref = total, b
    return float(best), ref


def sp_upper_bound_rows(counts: np.ndarray) -> tuple[float, int | None]:
    """(mass, reference group) of a rows-model construction for zero statistical parity: every group a but a
    reference b moves its prediction distribution to P_b by memorizing misclassified rows (label k, prediction j)
    that carry mass from a surplus class j straight to a deficit class k, filled greedily (largest deficit and
    surplus first). When the greedy fill covers every deficit the cost is 1/2 ||P_a - P_b||_1 n_a per group (no
    set moving group a alone can cost less); (inf, None) when it fails for every reference."""
    P, n = _sel(counts)
    G = len(n)
    best, ref = np.inf, None
    for b in range(G):
        total = 0.0
        for a in range(G):
            if a == b:
                continue
            need = np.maximum(P[b] - P[a], 0.0) * n[a]  # (C,) mass class k must gain
            spare = np.maximum(P[a] - P[b], 0.0) * n[a]  # (C,) mass class j must lose
            err = counts[a].copy()  # err[k, j]: label k predicted j
            np.fill_diagonal(err, 0.0)
            for k in np.argsort(-need, kind="stable"):
                for j in np.argsort(-spare, kind="stable"):
                    move = min(need[k], spare[j], err[k, j])
                    need[k] -= move
                    spare[j] -= move
                    err[k, j] -= move
            if need.sum() > 1e-9 * n[a]:
                total = np.inf
                break
            total += 0.5 * float(np.abs(P[a] - P[b]).sum()) * float(n[a])
        if total < best:
            best, ref = total, b
    return float(best), ref


def _tpr(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t (G, C) base TPR, NaN where undefined; n (G, C) class mass)."""
    n = counts.sum(axis=2)
    diag = np.diagonal(counts, axis1=1, axis2=2)
    return np.divide(diag, n, out=np.full(n.shape, np.nan), where=n > 0), n


def eopp_exact(counts: np.ndarray, model: str = "rows") -> np.ndarray:
    """(C,) minimum memorized mass per class for zero equal-opportunity gap: raise every group's TPR to the best
    group's (memorization can only raise a TPR). Classes present in fewer than two groups need nothing."""
    t, n = _tpr(counts)
    out = np.zeros(t.shape[1])
    for y in range(t.shape[1]):
        d = n[:, y] > 0
        if d.sum() < 2:
            continue
        tmax = t[d, y].max()
        gap = tmax - t[d, y]
        if model == "rows":
            out[y] = float((n[d, y] * gap).sum())
        else:
            denom = 1.0 - t[d, y]
            out[y] = float((n[d, y] * np.divide(gap, denom, out=np.zeros_like(gap), where=denom > 0)).sum())
    return out


def eodds_ratio_condition(counts: np.ndarray) -> np.ndarray:
    """(C,) bool: per true class y, the paper model can remove the equalized-odds gap without memorizing all of
    class y in every group that errs on it iff the groups' error vectors e_{a,y}(k), k != y, are proportional
    (groups with no errors on y are proportional to anything). Classes in fewer than two groups: True."""
    G, C, _ = counts.shape
    n = counts.sum(axis=2)
    out = np.ones(C, bool)
    for y in range(C):
        vecs = []
        for a in range(G):
            if n[a, y] <= 0:
                continue
            e = np.delete(counts[a, y], y) / n[a, y]
            if e.sum() > 0:
                vecs.append(e / e.sum())
        if len(vecs) >= 2 and any(np.abs(v - vecs[0]).max() > _PROP_TOL for v in vecs[1:]):
            out[y] = False
    return out


def eodds_exact(counts: np.ndarray, model: str = "rows") -> np.ndarray:
    """(C,) minimum memorized mass per true class for zero equalized-odds gap (max_rate = 1).

    rows: lower every off-diagonal error rate to the smallest group's, memorizing exactly those errors.
    paper: memorization rescales each unmemorized row by (1 - rho); with the ratio condition the minimum is the
    EOpp one, otherwise every group with errors on y memorizes all of its class-y mass."""
    G, C, _ = counts.shape
    n = counts.sum(axis=2)
    out = np.zeros(C)
    ratio = eodds_ratio_condition(counts) if model == "paper" else None
    t, _ = _tpr(counts)
    for y in range(C):
        d = n[:, y] > 0
        if d.sum() < 2:
            continue
        e = np.delete(counts[d, y], y, axis=1) / n[d, y][:, None]  # (D, C-1) error rates
        if model == "rows":
            out[y] = float((n[d, y][:, None] * (e - e.min(axis=0))).sum())
        elif ratio[y]:
            lam = 1.0 - t[d, y]
            c = lam.min()
            out[y] = float((n[d, y] * np.divide(lam - c, lam, out=np.zeros_like(lam), where=lam > 0)).sum())
        else:
            out[y] = float(n[d, y][(1.0 - t[d, y]) > 0].sum())
    return out


def closed_form_bounds(
    counts: np.ndarray, metric: str, model: str = "rows", max_rate: float = 1.0
) -> tuple[float, float]:
    """(lower, upper) closed-form bounds on the minimum memorized mass for zero bias (tol = 0); upper is inf
    where the SP construction fails (or max_rate < 1 caps the rows-model one)."""
    if metric == "sp":
        lo = sp_lower_bound(counts)
        if model == "paper":
            hi = sp_upper_bound_paper(counts, max_rate)[0]
        else:
            hi = sp_upper_bound_rows(counts)[0] if max_rate >= 1.0 else np.inf
        return lo, hi
    exact = eopp_exact if metric == "eopp" else eodds_exact
    if model == "rows":
        v = float(exact(counts, "rows").sum())
        return v, v
    return float(exact(counts, "rows").sum()), float(exact(counts, "paper").sum())


# ---------------------------------------------------------------------------------------------- linear programs


@dataclass
class _LP:
    """Columns: memorization variables (with bounds and cost) then free level variables; rows: constraints
    base + A x - den * L (= 0, or in [0, den * tol])."""

    var_cells: list[tuple[int, int, int]]  # (group, class, predicted) — predicted -1 for paper-model cells
    var_upper: list[float]
    rows: list[dict[int, float]]
    base: list[float]
    den: list[float]
    level: list[int]
    n_levels: int = 0
    caps: list[tuple[dict[int, float], float]] = dataclasses.field(default_factory=list)  # sum x <= cap


def _build_rows(counts: np.ndarray, metric: str, max_rate: float) -> tuple[_LP, list[tuple[str, Any]]]:
    G, C, _ = counts.shape
    lp = _LP([], [], [], [], [], [])
    var = {}
    for a, y, k in itertools.product(range(G), range(C), range(C)):
        if k != y and counts[a, y, k] > 0:
            var[(a, y, k)] = len(lp.var_cells)
            lp.var_cells.append((a, y, k))
            lp.var_upper.append(float(counts[a, y, k]))
    n_ay = counts.sum(axis=2)
    caps = []
    if max_rate < 1.0:  # at most max_rate of each (group, class) cell may be memorized
        for a, y in itertools.product(range(G), range(C)):
            cols = [var[(a, y, k)] for k in range(C) if (a, y, k) in var]
            if cols:
                caps.append(({c: 1.0 for c in cols}, max_rate * float(n_ay[a, y])))
    keys: list[tuple[str, Any]] = []

    def add(level: int, a: int, coefs: dict[int, float], base: float, den: float) -> None:
        lp.rows.append(coefs)
        lp.base.append(base)
        lp.den.append(den)
        lp.level.append(level)

    if metric == "sp":
        n_a = counts.sum(axis=(1, 2))
        S = counts.sum(axis=1)
        for k in range(C):
            lvl = lp.n_levels
            lp.n_levels += 1
            keys.append(("class", k))
            for a in range(G):
                coefs: dict[int, float] = {}
                for yhat in range(C):  # memorized rows of label k predicted yhat move into class k
                    if (a, k, yhat) in var:
                        coefs[var[(a, k, yhat)]] = coefs.get(var[(a, k, yhat)], 0.0) + 1.0
                for y in range(C):  # memorized rows predicted k with another label leave class k
                    if (a, y, k) in var:
                        coefs[var[(a, y, k)]] = coefs.get(var[(a, y, k)], 0.0) - 1.0
                add(lvl, a, coefs, float(S[a, k]), float(n_a[a]))
    elif metric == "eopp":
        for y in range(C):
            groups = [a for a in range(G) if n_ay[a, y] > 0]
            if len(groups) < 2:
                continue
            lvl = lp.n_levels
            lp.n_levels += 1
            keys.append(("class", y))
            for a in groups:
                coefs = {var[(a, y, k)]: 1.0 for k in range(C) if (a, y, k) in var}
                add(lvl, a, coefs, float(counts[a, y, y]), float(n_ay[a, y]))
    else:
        for y in range(C):
            groups = [a for a in range(G) if n_ay[a, y] > 0]
            if len(groups) < 2:
                continue
            for k in range(C):  # the diagonal is included so that tol bounds every entry of the row
                lvl = lp.n_levels
                lp.n_levels += 1
                keys.append(("cell", (y, k)))
                for a in groups:
                    if k == y:
                        coefs = {var[(a, y, j)]: 1.0 for j in range(C) if (a, y, j) in var}
                    else:
                        coefs = {var[(a, y, k)]: -1.0} if (a, y, k) in var else {}
                    add(lvl, a, coefs, float(counts[a, y, k]), float(n_ay[a, y]))
    lp.caps = caps
    return lp, keys


def _build_paper(counts: np.ndarray, metric: str, max_rate: float) -> tuple[_LP, list[tuple[str, Any]]]:
    G, C, _ = counts.shape
    lp = _LP([], [], [], [], [], [])
    n_ay = counts.sum(axis=2)
    var = {}
    for a, y in itertools.product(range(G), range(C)):
        if n_ay[a, y] > 0:
            var[(a, y)] = len(lp.var_cells)
            lp.var_cells.append((a, y, -1))
            lp.var_upper.append(max_rate * float(n_ay[a, y]))
    keys: list[tuple[str, Any]] = []

    def add(level: int, coefs: dict[int, float], base: float, den: float) -> None:
        lp.rows.append(coefs)
        lp.base.append(base)
        lp.den.append(den)
        lp.level.append(level)

    if metric == "sp":
        n_a = counts.sum(axis=(1, 2))
        S = counts.sum(axis=1)
        r = S / n_a[:, None]  # r_a(k), held fixed for the unmemorized part
        for k in range(C):
            lvl = lp.n_levels
            lp.n_levels += 1
            keys.append(("class", k))
            for a in range(G):
                # n_a P'_a(k) = m_{a,k} + (n_a - sum_y m_{a,y}) r_a(k)
                coefs = {var[(a, y)]: -float(r[a, k]) for y in range(C) if (a, y) in var}
                if (a, k) in var:
                    coefs[var[(a, k)]] += 1.0
                add(lvl, coefs, float(S[a, k]), float(n_a[a]))
    else:
        t, _ = _tpr(counts)
        for y in range(C):
            groups = [a for a in range(G) if n_ay[a, y] > 0]
            if len(groups) < 2:
                continue
            ks = [y] if metric == "eopp" else list(range(C))
            for k in ks:
                lvl = lp.n_levels
                lp.n_levels += 1
                keys.append(("class", y) if metric == "eopp" else ("cell", (y, k)))
                for a in groups:
                    R = counts[a, y, k] / n_ay[a, y]
                    # n P'(k|y) = n R(k) + m ([k = y] - R(k))
                    add(
                        lvl,
                        {var[(a, y)]: (1.0 if k == y else 0.0) - float(R)},
                        float(counts[a, y, k]),
                        float(n_ay[a, y]),
                    )
    return lp, keys


def _matrix(lp: _LP, tol: float, slack: bool):
    """Ranged constraint matrix over columns [x (memorized masses), L (levels), s (slacks, when `slack`)]:
    each rate row is base + A x - den L in [0, den tol], or with slacks in [0, den s] (s = that entry's gap)."""
    from scipy.sparse import lil_matrix

    nv, nl = len(lp.var_cells), lp.n_levels
    ns = nl if slack else 0
    nr = len(lp.rows)
    n_rows = (2 * nr if slack else nr) + len(lp.caps)
    A = lil_matrix((n_rows, nv + nl + ns))
    lo, hi = np.empty(n_rows), np.empty(n_rows)
    for i, (coefs, base, den, lvl) in enumerate(zip(lp.rows, lp.base, lp.den, lp.level)):
        rows = (i, nr + i) if slack else (i,)
        for r in rows:
            for j, v in coefs.items():
                A[r, j] = v
            A[r, nv + lvl] = -den
        if slack:
            A[nr + i, nv + nl + lvl] = -den
            lo[i], hi[i] = -base, np.inf  # base + A x - den L >= 0
            lo[nr + i], hi[nr + i] = -np.inf, -base  # base + A x - den L - den s <= 0
        else:
            lo[i], hi[i] = -base, -base + den * tol
    for i, (coefs, cap) in enumerate(lp.caps, start=n_rows - len(lp.caps)):
        for j, v in coefs.items():
            A[i, j] = v
        lo[i], hi[i] = -np.inf, cap
    lb = np.concatenate([np.zeros(nv), np.full(nl, -np.inf), np.zeros(ns)])
    ub = np.concatenate([np.asarray(lp.var_upper, float), np.full(nl, np.inf), np.full(ns, np.inf)])
    return A.tocsr(), lo, hi, lb, ub


def _run(cost, A, lo, hi, lb, ub, integrality=None):
    """HiGHS through scipy: `linprog(method="highs")` for LPs, `milp` when some columns are integer.
    Returns (ok, x, message)."""
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp

    if integrality is not None:
        res = milp(
            cost,
            constraints=LinearConstraint(A, lo, hi) if A.shape[0] else None,
            integrality=integrality,
            bounds=Bounds(lb, ub),
        )
        return res.status == 0, res.x, str(res.message)
    eq = lo == hi
    up, down = np.isfinite(hi) & ~eq, np.isfinite(lo) & ~eq
    from scipy.sparse import vstack

    A_ub = vstack([A[up], -A[down]]).tocsr()
    b_ub = np.concatenate([hi[up], -lo[down]])
    res = linprog(
        cost,
        A_ub=A_ub if A_ub.shape[0] else None,
        b_ub=b_ub if b_ub.size else None,
        A_eq=A[eq] if eq.any() else None,
        b_eq=lo[eq] if eq.any() else None,
        bounds=list(zip(lb, ub)),
        method="highs",
    )
    return res.status == 0, res.x, str(res.message)


def _solve(lp: _LP, tol: float, integral: bool):
    nv, nl = len(lp.var_cells), lp.n_levels
    if nv + nl == 0:  # nothing to constrain and nothing to memorize
        return True, np.zeros(0), "no constraints"
    A, lo, hi, lb, ub = _matrix(lp, tol, slack=False)
    cost = np.concatenate([np.ones(nv), np.zeros(nl)])
    integ = np.concatenate([np.ones(nv), np.zeros(nl)]) if integral else None
    return _run(cost, A, lo, hi, lb, ub, integ)


def _reachable(lp: _LP) -> tuple[float, float, np.ndarray]:
    """(lowest reachable sum of entry gaps, the least mass that reaches it, x): two HiGHS LPs, first minimising
    the sum of slacks (each equals its entry's max - min gap at the optimum), then the mass at that bias."""
    from scipy.sparse import csr_matrix, vstack

    nv, nl = len(lp.var_cells), lp.n_levels
    if nl == 0:
        return 0.0, 0.0, np.zeros(nv)
    A, lo, hi, lb, ub = _matrix(lp, 0.0, slack=True)
    ok, x, msg = _run(np.concatenate([np.zeros(nv + nl), np.ones(nl)]), A, lo, hi, lb, ub)
    if not ok:  # pragma: no cover - always feasible (x = 0 with large slacks)
        raise RuntimeError(f"HiGHS failed on the reachable-bias LP: {msg}")
    best = float(x[nv + nl :].sum())
    row = csr_matrix(np.concatenate([np.zeros(nv + nl), np.ones(nl)])[None])
    A2 = vstack([A, row]).tocsr()
    lo2, hi2 = np.append(lo, -np.inf), np.append(hi, best * (1 + 1e-9) + 1e-12)
    ok, x2, _ = _run(np.concatenate([np.ones(nv), np.zeros(2 * nl)]), A2, lo2, hi2, lb, ub)
    x = x2 if ok else x
    return best, float(np.clip(x[:nv], 0, None).sum()), np.clip(x[:nv], 0, None)


def lowest_reachable_bias(
    counts: np.ndarray, metric: str, *, model: str = "rows", max_rate: float = 1.0
) -> tuple[float, float]:
    """(lowest `metric` (agg="sum", between_groups) that any memorized set reaches, the least mass reaching it),
    in the given model; (0, minimum mass) when the bias can be removed. For EOdds the sum runs over every entry
    of the confusion rows, as the metric does."""
    _check_choice("metric", metric, METRICS)
    _check_choice("model", model, MODELS)
    lp, _ = (_build_rows if model == "rows" else _build_paper)(counts, metric, max_rate)
    best, mass, _ = _reachable(lp)
    return best, mass


# ---------------------------------------------------------------------------------------------- result


@dataclass(frozen=True)
class MinimumMass(Result):
    """Minimum memorized mass that brings one additive metric to zero (to `tol` per class entry).

    mass: minimum memorized weight (NaN when infeasible); p_memorized: mass / total weight (the paper's p_D).
    lower_bound, upper_bound: closed-form bounds in mass units (tol = 0 only; inf = no closed form applies,
    e.g. the greedy SP construction fails). They bound the LP relaxation: with integral=True, lp_mass is the LP
    relaxation's minimum (lower_bound <= lp_mass <= mass, and the integer minimum can exceed upper_bound).
    reason: why no set works, when infeasible. ratio_condition: {class: bool} (equalized odds, paper model).
    empty_cells: every (group, class) cell without weight and what was done with it (left out of the class's
    constraints; the bias is over the groups that have each class).
    plan_reaches: "zero bias" (feasible) or "lowest reachable bias" (infeasible: the plan is the least mass that
    reaches `reachable_bias`).
    plan (plan.parquet): group, class, predicted ("*" for all rows of the cell in the paper model), available
    (mass), memorized (mass), rate (memorized / available).
    """

    metric: str
    model: str
    feasible: bool
    mass: float
    p_memorized: float
    total_weight: float
    lower_bound: float | None
    upper_bound: float | None
    tol: float
    max_rate: float
    integral: bool
    reason: str | None
    ratio_condition: dict[str, bool] | None
    bias_before: float
    reachable_bias: float | None
    reachable_mass: float | None
    solver_status: str
    lp_mass: float | None
    empty_cells: list[dict[str, str]]
    plan_reaches: str
    plan: pd.DataFrame = table_field("plan")

    def summary(self) -> str:
        head = f"{METRIC_NAMES[self.metric]} ({self.model} model): "
        if not self.feasible:
            low = (
                ""
                if self.reachable_bias is None
                else (
                    f" (the lowest bias memorization reaches is {self.reachable_bias:.4f} of {self.bias_before:.4f}, "
                    f"with p_D = {self.reachable_mass / self.total_weight:.4f})"
                )
            )
            return head + f"no memorized set removes the bias{low}: {self.reason}"
        b = ""
        if self.lower_bound is not None:
            up = (
                "none (the construction fails)"
                if self.upper_bound is None or not np.isfinite(self.upper_bound)
                else f"{self.upper_bound / self.total_weight:.4f}"
            )
            on = "on the LP relaxation " if self.integral else ""
            b = f"; closed-form bounds {on}[{self.lower_bound / self.total_weight:.4f}, {up}]"
        kind = "integer minimum" if self.integral else "minimum"
        lp = ""
        if self.integral and self.lp_mass is not None:
            lp = f"; LP relaxation minimum {self.lp_mass:.6g} (p_D = {self.lp_mass / self.total_weight:.4f})"
        return (
            head + f"{kind} memorized mass {self.mass:.6g} of {self.total_weight:.6g} "
            f"(p_D = {self.p_memorized:.4f}){lp}{b}; bias before {self.bias_before:.4f}"
        )


def _reason(
    counts: np.ndarray, metric: str, model: str, max_rate: float, labels: np.ndarray, groups: np.ndarray, message: str
) -> str:
    if metric == "eodds" and model == "paper":
        bad = np.flatnonzero(~eodds_ratio_condition(counts))
        if len(bad) and max_rate < 1:
            y = int(bad[0])
            return (
                f"the equalized-odds ratio condition fails for class {_fmt(labels[y])} (the groups' error "
                "vectors P(g=k | Y, A), k != Y, are not proportional), so only memorizing all of that class in "
                f"every group that errs on it removes the gap, but max_rate={max_rate} allows at most that "
                "share of a cell; raise max_rate to 1"
            )
    if metric in ("eopp", "eodds") and max_rate < 1:
        return (
            f"removing the gap needs more than max_rate={max_rate} of some (group, class) cell to be "
            "memorized; raise max_rate"
        )
    if metric == "sp":
        return (
            "no memorized set gives every group the same prediction distribution: memorizing rows of group a "
            "can only move its predictions towards its true label distribution (limited by its misclassified "
            f"rows{'' if max_rate >= 1 else f' and max_rate={max_rate}'}); HiGHS: {message}"
        )
    return f"infeasible (HiGHS: {message})"


def min_mass_from_counts(
    counts: np.ndarray,
    metric: str,
    *,
    model: str = "rows",
    tol: float = 0.0,
    max_rate: float = 1.0,
    integral: bool = False,
    labels: Sequence[Any] | None = None,
    groups: Sequence[Any] | None = None,
    undefined: str = "skip",
) -> MinimumMass:
    """`minimum_memorized_mass` on a (G, C, C) weighted count tensor [group, true, base prediction].

    undefined: "skip" (default here) compares each class over the groups that have it and lists the empty cells;
    "raise" raises a DataError when some group lacks a class another group has."""
    _check_choice("metric", metric, METRICS)
    _check_choice("model", model, MODELS)
    if not 0.0 <= tol:
        raise ConfigError(f"`tol` must be >= 0, got {tol}")
    if not 0.0 < max_rate <= 1.0:
        raise ConfigError(f"`max_rate` must be in (0, 1], got {max_rate}")
    if integral and model != "rows":
        raise ConfigError("`integral` selects whole rows and needs `model` rows")
    if undefined not in ("raise", "skip"):
        raise ConfigError(
            f"`undefined` {undefined!r}: the memorized-mass problems take raise or skip (zero applies to the "
            "metrics only: a group without a class has no rows to memorize)"
        )
    G, C, _ = counts.shape
    labels = np.asarray(labels if labels is not None else np.arange(C), dtype=object)
    groups = np.asarray(groups if groups is not None else np.arange(G), dtype=object)
    if undefined == "raise":
        raise_undefined(counts, metric, labels, groups)
    build = _build_rows if model == "rows" else _build_paper
    lp, _ = build(counts, metric, max_rate)
    ok, x, message = _solve(lp, tol, integral)
    total = float(counts.sum())
    bias = aggregate(*class_gaps_from_counts(counts, metric, "between_groups"), "sum")
    lo = hi = None
    if tol == 0.0:
        lo, hi = closed_form_bounds(counts, metric, model, max_rate)
        if metric != "sp" and max_rate < 1.0:
            hi = np.inf  # the exact closed forms assume any share of a cell may be memorized
    ratio = None
    if metric == "eodds" and model == "paper":
        ratio = {str(labels[y]): bool(v) for y, v in enumerate(eodds_ratio_condition(counts))}
    reach: tuple[float | None, float | None] = (None, None)
    nv = len(lp.var_cells)
    if not ok:
        best, rmass, rx = _reachable(lp)
        reach = (best, rmass)
    lp_mass = None
    if integral and ok:
        ok_lp, x_lp, _ = _solve(lp, tol, False)
        lp_mass = float(np.clip(np.asarray(x_lp[:nv]), 0.0, None).sum()) if ok_lp else None
    mem = np.zeros(nv) if x is None else np.clip(np.asarray(x[:nv]), 0.0, None)
    if not ok:
        mem = rx  # the least mass reaching the lowest bias: the plan a concrete set follows
    plan = pd.DataFrame(
        {
            "group": [str(groups[a]) for a, _, _ in lp.var_cells],
            "class": [str(labels[y]) for _, y, _ in lp.var_cells],
            "predicted": [str(labels[k]) if k >= 0 else "*" for _, _, k in lp.var_cells],
            "available": [float(counts[a, y, k]) if k >= 0 else float(counts[a, y].sum()) for a, y, k in lp.var_cells],
            "memorized": mem,
        }
    )
    plan["rate"] = plan["memorized"] / plan["available"]
    mass = float(mem.sum()) if ok else float("nan")
    return MinimumMass(
        metric=metric,
        model=model,
        feasible=bool(ok),
        mass=mass,
        p_memorized=mass / total if ok else float("nan"),
        total_weight=total,
        lower_bound=lo,
        upper_bound=hi,
        tol=float(tol),
        max_rate=float(max_rate),
        integral=bool(integral),
        reason=None if ok else _reason(counts, metric, model, max_rate, labels, groups, str(message)),
        ratio_condition=ratio,
        bias_before=float(bias),
        reachable_bias=reach[0],
        reachable_mass=reach[1],
        solver_status=str(message),
        lp_mass=lp_mass,
        empty_cells=empty_cells(counts, metric, labels, groups, "skip"),
        plan_reaches="zero bias" if ok else "lowest reachable bias",
        plan=plan[plan["memorized"] > 1e-12].reset_index(drop=True),
    )


def minimum_memorized_mass(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    metric: str = "sp",
    model: str = "rows",
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
    tol: float = 0.0,
    max_rate: float = 1.0,
    integral: bool = False,
    undefined: str = "raise",
) -> MinimumMass:
    """The smallest memorized mass after which `metric` ("sp", "eopp" or "eodds") is zero (every class entry's
    gap <= tol), from scipy's HiGHS LP (or MILP with integral=True), with closed-form bounds.

    y_true, y_pred, sensitive_features, sample_weight: (n,) as in `rote.fairness.metrics`; y_pred is the base
    classifier g. model: "rows" (choose rows of this dataset) or "paper" (memorize group/class masses, unmemorized
    statistics fixed). max_rate: largest memorized share of any (group, class) cell. integral: whole rows
    (unit weights) instead of the LP relaxation. An infeasible problem returns feasible=False with the reason.
    undefined: a group without some class another group has raises ("raise", default) or is left out of that
    class's constraints ("skip"; `MinimumMass.empty_cells` lists what is left out), as in the metrics.
    """
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    if integral and enc.w is not None and not np.all(enc.w == 1.0):
        raise ConfigError("`integral` counts whole rows and needs unit weights; drop `sample_weight` or use the LP")
    return min_mass_from_counts(
        confusion_counts(enc),
        metric,
        model=model,
        tol=tol,
        max_rate=max_rate,
        integral=integral,
        labels=enc.labels,
        groups=enc.groups,
        undefined=undefined,
    )


def select_rows(enc: Encoded, result: MinimumMass, seed: int = 0) -> np.ndarray:
    """(n,) bool mask of a concrete memorized set realising `result.plan` (when infeasible, the plan that reaches the
    lowest bias): in each planned cell, rows in a seeded
    random order until their weight reaches the planned mass (rounded to the nearest row for unit weights, so the
    achieved gap can differ from zero by about one row's share; check it with `memorization_effect`)."""
    rng = np.random.default_rng(seed)
    lab = {str(v): i for i, v in enumerate(enc.labels)}
    grp = {str(v): i for i, v in enumerate(enc.groups)}
    w = enc.w if enc.w is not None else np.ones(len(enc.y))
    mask = np.zeros(len(enc.y), bool)
    for g, y, k, mass in zip(
        result.plan["group"], result.plan["class"], result.plan["predicted"], result.plan["memorized"]
    ):
        sel = (enc.g == grp[g]) & (enc.y == lab[y])
        if k != "*":
            sel &= enc.yhat == lab[k]
        idx = rng.permutation(np.flatnonzero(sel))
        cum = np.cumsum(w[idx])
        if enc.w is None:
            take = int(round(mass))
        else:
            take = int(np.searchsorted(cum, mass - 1e-9 * max(1.0, mass))) + 1
        mask[idx[: min(take, len(idx))]] = True
    return mask


def memorized_set(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    metric: str = "sp",
    model: str = "rows",
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
    tol: float = 0.0,
    max_rate: float = 1.0,
    integral: bool = False,
    seed: int = 0,
    undefined: str = "raise",
) -> tuple[MinimumMass, np.ndarray]:
    """`minimum_memorized_mass` plus a concrete (n,) bool mask of rows that achieves it (see `select_rows`)."""
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    if integral and enc.w is not None and not np.all(enc.w == 1.0):
        raise ConfigError("`integral` counts whole rows and needs unit weights; drop `sample_weight` or use the LP")
    res = min_mass_from_counts(
        confusion_counts(enc),
        metric,
        model=model,
        tol=tol,
        max_rate=max_rate,
        integral=integral,
        labels=enc.labels,
        groups=enc.groups,
        undefined=undefined,
    )
    return res, select_rows(enc, res, seed=seed)


@dataclass(frozen=True)
class MemorizationBounds(Result):
    """What `rote fairness bound` computes: for each metric the minimum memorized mass (`bounds`, one
    `MinimumMass.to_dict()` each) and a concrete set of rows that follows its plan, with the bias it leaves.

    concrete_sets: {metric: {n_rows, mass, p_memorized, reaches ("zero bias" or "lowest reachable bias"),
    bias_before, bias_after (agg="sum", between_groups, as bias_before), largest_entry_gap_after (the largest
    remaining gap of one class entry, what `tol` bounds)}}. Rounding an LP plan to whole rows, or following a
    paper-model plan with random rows of each cell, can leave part of the bias; bias_after says how much.
    results: the MinimumMass objects; rows: {metric: DataFrame of the set's rows (row: 1-based data row, group,
    label, prediction)}.
    """

    bounds: list[dict[str, Any]]
    concrete_sets: dict[str, dict[str, Any]]
    results: list[MinimumMass] = internal_field()
    rows: dict[str, pd.DataFrame] = internal_field()

    def summary(self) -> str:
        lines = [r.summary() for r in self.results]
        for m, s in self.concrete_sets.items():
            lines.append(
                f"  {m}: concrete set of {s['n_rows']:,} rows (rows_{m}.parquet; 1-based data rows; plan reaches "
                f"{s['reaches']}) leaves bias {s['bias_after']:.4g} of {s['bias_before']:.4g} (largest entry gap "
                f"{s['largest_entry_gap_after']:.4g})"
            )
        return "\n".join(lines)


def memorization_bounds(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    metrics: Sequence[str] = METRICS,
    model: str = "rows",
    sample_weight: Any = None,
    labels: Sequence[Any] | None = None,
    tol: float = 0.0,
    max_rate: float = 1.0,
    integral: bool = False,
    seed: int = 0,
    undefined: str = "raise",
) -> MemorizationBounds:
    """`memorized_set` for each metric, and what each concrete set of rows leaves of the bias (measured directly
    on the memorizing classifier's predictions with `rote.fairness.memorization`). Arguments as
    `memorized_set`; undefined="skip" compares each class over the groups that have it (the empty cells are
    listed in each bound's `empty_cells`)."""
    from rote.fairness.memorization import effect_from_encoded

    for m in metrics:
        _check_choice("metric", m, METRICS)
    enc = encode(y_true, y_pred, sensitive_features, sample_weight, labels)
    if integral and enc.w is not None and not np.all(enc.w == 1.0):
        raise ConfigError("`integral` counts whole rows and needs unit weights; drop `sample_weight` or use the LP")
    counts = confusion_counts(enc)
    results, sets, rows = [], {}, {}
    for m in metrics:
        res = min_mass_from_counts(
            counts,
            m,
            model=model,
            tol=tol,
            max_rate=max_rate,
            integral=integral,
            labels=enc.labels,
            groups=enc.groups,
            undefined=undefined,
        )
        mask = select_rows(enc, res, seed=seed)
        eff = effect_from_encoded(enc, mask, metrics=[m], undefined="skip")
        after = eff.classes["gap_after"].to_numpy(float)
        w = enc.w if enc.w is not None else np.ones(len(mask))
        h = np.where(mask, enc.y, enc.yhat)
        G, C = enc.n_groups, enc.n_classes
        hc = np.bincount((enc.g * C + enc.y) * C + h, weights=w, minlength=G * C * C).reshape(G, C, C)
        from rote.fairness.metrics import group_rates, rate_gaps

        rates, defined, overall, _ = group_rates(hc, m)
        entry, ok = rate_gaps(rates, defined, overall, "between_groups")
        sets[m] = {
            "n_rows": int(mask.sum()),
            "mass": float(w[mask].sum()),
            "p_memorized": float(w[mask].sum() / w.sum()),
            "reaches": res.plan_reaches,
            "bias_before": eff.before[m],
            "bias_after": eff.after[m],
            "largest_entry_gap_after": float(np.max(entry[ok])) if ok.any() else 0.0,
            "class_gaps_after": {c: (None if np.isnan(v) else float(v)) for c, v in zip(eff.classes["class"], after)},
        }
        idx = np.flatnonzero(mask)
        rows[m] = pd.DataFrame(
            {
                "row": idx + 1,
                "group": [str(enc.groups[i]) for i in enc.g[idx]],
                "label": [str(enc.labels[i]) for i in enc.y[idx]],
                "prediction": [str(enc.labels[i]) for i in enc.yhat[idx]],
            }
        )
        results.append(res)
    return MemorizationBounds(bounds=[r.to_dict() for r in results], concrete_sets=sets, results=results, rows=rows)
