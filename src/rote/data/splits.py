"""Seeded index splits for any dataset: class-balanced subsets, k folds, random twin halves.

The functions work on sample counts and label arrays (numpy), so tables, images and texts share them; each returns
sorted positions (int64 arrays) into the dataset, never copies of the data. Every function takes `seed` (an int or
a `numpy.random.Generator`) and is deterministic given it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rote.core.errors import ConfigError, DataError
from rote.core.runs import make_rng


def _labels(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ConfigError(f"labels must be one-dimensional, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"labels must be integers, got dtype {y.dtype}")
    if (y < 0).any():
        raise DataError(
            f"{int((y < 0).sum())} samples are unlabelled (label < 0); class-aware splits need labels on every sample"
        )
    return y.astype(np.int64, copy=False)


def balanced_indices(
    labels: Sequence[int] | np.ndarray,
    n_per_class: int,
    *,
    seed: int | np.random.Generator,
    n_classes: int | None = None,
) -> np.ndarray:
    """`n_per_class` random positions of every class, sorted: (n_classes * n_per_class,) int64.

    labels: (n,) int class labels. n_classes: classes 0..n_classes-1 that must all be present (default: the
    classes that occur). DataError when a class has fewer than `n_per_class` samples.
    """
    y = _labels(labels)
    if n_per_class < 1:
        raise ConfigError(f"n_per_class must be at least 1, got {n_per_class}")
    rng = make_rng(seed)
    counts = np.bincount(y, minlength=n_classes or 0)
    if n_classes is not None and len(counts) > n_classes:
        raise DataError(f"label {len(counts) - 1} is out of range for {n_classes} classes")
    classes = np.arange(n_classes) if n_classes is not None else np.flatnonzero(counts)
    short = [int(c) for c in classes if counts[c] < n_per_class]
    if short:
        c = short[0]
        raise DataError(
            f"class {c} has {int(counts[c])} samples, fewer than n_per_class={n_per_class}"
            + (f" ({len(short)} classes are short)" if len(short) > 1 else "")
            + "; lower n_per_class"
        )
    picks = [rng.choice(np.flatnonzero(y == c), n_per_class, replace=False) for c in classes]
    return np.sort(np.concatenate(picks)).astype(np.int64) if picks else np.empty(0, np.int64)


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation that deals every class out in turn: position i of the result goes to fold i % k, so each
    class spreads over the folds as evenly as possible (class sizes differ between folds by at most one)."""
    groups = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    return np.concatenate(groups) if groups else np.empty(0, np.int64)


def kfold_indices(
    n: int, k: int, *, seed: int | np.random.Generator, labels: Sequence[int] | np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`k` (train, held_out) pairs of sorted positions: every sample is held out exactly once.

    Fold sizes differ by at most one. With `labels` ((n,) ints) the folds are stratified: every class is spread
    over the folds as evenly as possible.
    """
    if k < 2:
        raise ConfigError(f"k must be at least 2, got {k}")
    if n < k:
        raise ConfigError(f"cannot make {k} folds of {n} samples; use k <= {n}")
    rng = make_rng(seed)
    if labels is None:
        order = rng.permutation(n)
    else:
        y = _labels(labels)
        if len(y) != n:
            raise ConfigError(f"{len(y)} labels for {n} samples")
        order = _stratified_order(y, rng)
    fold = np.empty(n, np.int64)
    fold[order] = np.arange(n) % k
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]


def halves_indices(
    n: int, *, seed: int | np.random.Generator, labels: Sequence[int] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random twin halves (a, b) of sorted positions, disjoint and covering all `n` samples; len(a) - len(b) is 0
    or 1. With `labels` every class is halved too (per-class counts differ by at most one), as for XRM twins."""
    if n < 2:
        raise ConfigError(f"cannot halve {n} samples; need at least 2")
    folds = kfold_indices(n, 2, seed=seed, labels=labels)
    # kfold deals positions 0, 2, 4, ... of the order to fold 0, so fold 0 holds the odd one out.
    return folds[0][1], folds[1][1]
