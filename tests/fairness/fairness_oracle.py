"""Brute-force oracles for the fairness tests: plain Python loops over rows and dicts, no numpy vectorization,
written straight from the definitions in docs/fairness.md (independent of rote.fairness's bincount kernel)."""

from __future__ import annotations

from fractions import Fraction
from itertools import product


def rates_loop(y, p, g, w, labels, metric):
    """{group: {key: rate}} with key k (sp), y (eopp) or (y, k) (eodds); undefined rates are absent."""
    groups = sorted(set(g), key=str)
    out = {}
    for a in groups:
        rows = [i for i in range(len(y)) if g[i] == a]
        tot = sum(w[i] for i in rows)
        r = {}
        if metric == "sp":
            for k in labels:
                r[k] = sum(w[i] for i in rows if p[i] == k) / tot
        else:
            for c in labels:
                sub = [i for i in rows if y[i] == c]
                n = sum(w[i] for i in sub)
                if n <= 0:
                    continue
                if metric == "eopp":
                    r[c] = sum(w[i] for i in sub if p[i] == c) / n
                else:
                    for k in labels:
                        r[(c, k)] = sum(w[i] for i in sub if p[i] == k) / n
        out[a] = r
    return out


def overall_loop(y, p, w, labels, metric):
    return rates_loop(y, p, ["all"] * len(y), w, labels, metric)["all"]


def metric_loop(y, p, g, w, labels, metric, method="between_groups", agg="sum"):
    """Aggregate gap over the classes defined in at least two groups (None when none is)."""
    rates = rates_loop(y, p, g, w, labels, metric)
    overall = overall_loop(y, p, w, labels, metric)
    keys = labels if metric != "eodds" else list(product(labels, labels))
    entry = {}
    for key in keys:
        vals = [rates[a][key] for a in rates if key in rates[a]]
        if len(vals) < 2:
            continue
        if method == "between_groups":
            entry[key] = max(vals) - min(vals)
        else:
            entry[key] = max(abs(v - overall[key]) for v in vals)
    if metric == "eodds":
        per_class = {}
        for c in labels:
            ks = [(c, k) for k in labels]
            if all(k in entry for k in ks):
                per_class[c] = sum(entry[k] for k in ks)
    else:
        per_class = entry
    if not per_class:
        return None
    vals = list(per_class.values())
    return {"sum": sum(vals), "max": max(vals), "mean": sum(vals) / len(vals)}[agg]


def zero_gap_exact(y, h, g, labels, metric):
    """True when every gap of `metric` is exactly zero, with Fraction arithmetic (unit weights)."""
    groups = sorted(set(g), key=str)
    table = {}
    for a in groups:
        rows = [i for i in range(len(y)) if g[i] == a]
        if metric == "sp":
            for k in labels:
                table.setdefault(k, []).append(Fraction(sum(h[i] == k for i in rows), len(rows)))
        else:
            for c in labels:
                sub = [i for i in rows if y[i] == c]
                if not sub:
                    continue
                ks = [c] if metric == "eopp" else labels
                for k in ks:
                    table.setdefault((c, k), []).append(Fraction(sum(h[i] == k for i in sub), len(sub)))
    return all(len(set(v)) <= 1 for v in table.values())


def best_subset(y, p, g, labels, metric):
    """Smallest number of rows whose memorization (h = y there) zeroes `metric`, by trying every subset;
    None when no subset does."""
    n = len(y)
    best = None
    for bits in range(1 << n):
        size = bin(bits).count("1")
        if best is not None and size >= best:
            continue
        h = [y[i] if bits >> i & 1 else p[i] for i in range(n)]
        if zero_gap_exact(y, h, g, labels, metric):
            best = size
    return best


def lowest_bias_subset(y, p, g, labels, metric):
    """Lowest between-groups sum-aggregated `metric` over every memorized subset (exact Fractions; unit weights)."""
    groups = sorted(set(g), key=str)
    best = None
    for bits in range(1 << len(y)):
        h = [y[i] if bits >> i & 1 else p[i] for i in range(len(y))]
        total = Fraction(0)
        for vals in _rate_table(y, h, g, groups, labels, metric).values():
            if len(vals) >= 2:
                total += max(vals) - min(vals)
        best = total if best is None else min(best, total)
    return best


def _rate_table(y, h, g, groups, labels, metric):
    table = {}
    for a in groups:
        rows = [i for i in range(len(y)) if g[i] == a]
        if metric == "sp":
            for k in labels:
                table.setdefault(k, []).append(Fraction(sum(h[i] == k for i in rows), len(rows)))
        else:
            for c in labels:
                sub = [i for i in rows if y[i] == c]
                if sub:
                    for k in [c] if metric == "eopp" else labels:
                        table.setdefault((c, k), []).append(Fraction(sum(h[i] == k for i in sub), len(sub)))
    return table
