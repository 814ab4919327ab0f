"""Training-set augmenters that lower memorization: TabCutMix, TabCutMixPlus and the paper's baselines.

Fang et al., "Understanding and Mitigating Memorization in Diffusion Models for Tabular Data" (ICML 2025):
TabCutMix (section 4.1, Alg. 1) builds a new row by taking some feature values from one training row and the
rest from another row of the same class; TabCutMixPlus (section 4.2) swaps whole clusters of associated columns
instead of single columns, so that correlated values stay together. Mixup, SMOTE and independent-column sampling
(IJF) are the paper's baselines. The out-of-distribution rate of augmented rows (App. D.4.6) is `ood_rate`.

Every augmenter follows one contract:

    aug = TabCutMix(ratio=0.3, seed=0).fit(table, schema)
    new = aug.sample(n)          # n NEW rows: the table's schema columns, in its order, with its dtypes
    both = aug.augment(table)    # the table's rows, then round(ratio * len(table)) new rows

Rows are mixed by copying values (never interpolating) except in Mixup and SMOTE, whose interpolated values are
rounded back for integer columns so dtypes stay those of the input. The label column (`schema.target`) must be
categorical; with no target every row is one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, table_field
from rote.core.runs import make_rng
from rote.data import TableSchema, validate_table
from rote.tabular.association import DEFAULT_CUT, association_matrix, cluster_columns
from rote.tabular.baseline import IndependentColumnSampler

__all__ = [
    "TabCutMix",
    "TabCutMixPlus",
    "Mixup",
    "SMOTEAugmenter",
    "IJFAugmenter",
    "OODDetector",
    "OODResult",
    "ood_rate",
    "identical_share",
    "association_matrix",
    "cluster_columns",
    "AUGMENTERS",
]

MODES = ("paper", "code")
MAX_RATIO = 100.0  # new rows per training row; 1e9 would try to allocate hundreds of GiB


def identical_share(train: pd.DataFrame, new_rows: pd.DataFrame) -> float:
    """Fraction of `new_rows` (augmented rows) equal, value for value in every column of `train`, to some row of
    `train` (NaN when there are none). TabCutMix can return a copy (swapping no feature, or swapping between equal
    rows), and such copies inflate the memorization a generator trained on the augmented table shows."""
    if len(new_rows) == 0:
        return float("nan")
    cols = list(train.columns)
    seen = set(map(tuple, train[cols].astype(object).itertuples(index=False, name=None)))
    return float(np.mean([tuple(r) in seen for r in new_rows[cols].astype(object).itertuples(index=False, name=None)]))


def _check_ratio(ratio: Any, who: str) -> float:
    if (
        isinstance(ratio, bool)
        or not isinstance(ratio, (int, float, np.integer, np.floating))
        or not np.isfinite(ratio)
        or ratio < 0
    ):
        raise ConfigError(f"{who}: ratio={ratio!r} must be a number >= 0 (new rows per training row, e.g. 0.3)")
    if ratio > MAX_RATIO:
        raise ConfigError(
            f"{who}: `ratio`={ratio!r} is above {MAX_RATIO:g} new rows per training row (the paper uses 0.3, Magic "
            f"2.0); a larger table would not fit in memory; lower --ratio / --aug-ratio"
        )
    return float(ratio)


def _check_n(n: Any, who: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"{who}: n={n!r} must be a whole number >= 0 (how many new rows to draw)")
    return int(n)


class _Augmenter:
    """Shared plumbing: input checks, the class index, `augment`. Subclasses implement `_sample(n, rng)`."""

    ratio: float
    seed: int

    def fit(self, table: pd.DataFrame, schema: TableSchema) -> Self:
        """Learn what sampling needs from `table` (validated against `schema`; never modified); returns self."""
        who = type(self).__name__
        _check_ratio(self.ratio, who)
        if not isinstance(table, pd.DataFrame):
            raise ConfigError(f"{who}.fit: table must be a pandas DataFrame, got {type(table).__name__}")
        name = str(table.attrs.get("source", "train"))
        clean = validate_table(table, schema, name=name)  # the one place input is checked
        if schema.target is not None and schema.target not in schema.categorical:
            raise ConfigError(
                f"{who}: target '{schema.target}' is numeric; mixing needs class labels. Declare it "
                f"categorical (`categorical` {schema.target}) or fit without a target"
            )
        self.schema_ = schema
        self.columns_ = [c for c in table.columns if c in set(schema.columns)]  # the table's own order
        self.table_ = table[self.columns_].reset_index(drop=True)
        self.clean_ = clean
        self.features_ = [c for c in self.columns_ if c != schema.target]
        labels = clean[schema.target].to_numpy(object) if schema.target else np.zeros(len(clean), np.int64)
        self.classes_, codes = np.unique(labels, return_inverse=True)
        self.class_codes_ = codes.astype(np.int64)
        self.class_order_ = np.argsort(self.class_codes_, kind="stable")  # rows grouped by class
        self.class_counts_ = np.bincount(self.class_codes_, minlength=len(self.classes_))
        self.class_starts_ = np.cumsum(self.class_counts_) - self.class_counts_
        self._fit_more(clean)
        self._fit_input = (table, schema)  # lets augment(table) skip refitting on the very same object
        return self

    def _fit_more(self, clean: pd.DataFrame) -> None:
        """Extra state for a subclass (clusters, neighbours)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "table_"):
            raise ConfigError(f"{type(self).__name__}: call fit(table, schema) before sample(n) or augment")

    def _pairs(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(n,) row indices a (uniform over all rows, so the class follows the class prior) and (n,) b, uniform
        over a's class (b may equal a: a class of one row pairs with itself)."""
        a = rng.integers(0, len(self.table_), n)
        cls = self.class_codes_[a]
        b = self.class_order_[self.class_starts_[cls] + rng.integers(0, self.class_counts_[cls])]
        return a, b

    def _assemble(self, take: dict[str, np.ndarray]) -> pd.DataFrame:
        """A frame of new rows: column c is table_[c] at row indices take[c] (dtypes kept)."""
        return pd.DataFrame({c: self.table_[c].take(take[c]).reset_index(drop=True) for c in self.columns_})

    def _sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        raise NotImplementedError

    def sample(self, n: int, seed: int | None = None) -> pd.DataFrame:
        """(n rows) new rows with the fitted table's columns, order and dtypes; `seed` overrides self.seed."""
        self._check_fitted()
        n = _check_n(n, type(self).__name__)
        rng = make_rng(self.seed if seed is None else seed)
        if n == 0:
            return self.table_.iloc[:0].copy()
        return self._sample(n, rng)

    def augment(
        self, table: pd.DataFrame, ratio: float | None = None, *, schema: TableSchema | None = None
    ) -> pd.DataFrame:
        """`table`'s rows (first, unchanged) then round(ratio * len(table)) new rows mixed from them.

        Fits on `table` with `schema` (default: the schema of the last `fit`), unless `fit` was last called on
        this very object with this schema (`aug.fit(t, s).augment(t)` fits once). ratio: default self.ratio.
        The input is not modified; the result has a fresh RangeIndex.
        """
        schema = schema if schema is not None else getattr(self, "schema_", None)
        if schema is None:
            raise ConfigError(f"{type(self).__name__}.augment: pass schema=... (or call fit(table, schema) first)")
        ratio = _check_ratio(self.ratio if ratio is None else ratio, type(self).__name__)
        last = getattr(self, "_fit_input", None)
        if last is None or last[0] is not table or last[1] != schema:
            self.fit(table, schema)
        new = self.sample(int(round(ratio * len(table))))
        return pd.concat([self.table_, new], ignore_index=True)


def _swap_mask_exact(k: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """(n, width) bool with exactly k[i] True entries in row i, chosen uniformly without replacement."""
    keys = rng.random((len(k), width))
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)  # a uniform random permutation per row
    return ranks < k[:, None]


class _CutMixBase(_Augmenter):
    """Same-class pairs (a, b); some units (columns or clusters) come from b, the rest and the label from a."""

    mode: str
    lam: float | None

    def _units(self) -> list[list[str]]:
        raise NotImplementedError

    def _sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        if self.mode not in MODES:
            raise ConfigError(f"{type(self).__name__}: mode={self.mode!r}; choose 'paper' or 'code'")
        a, b = self._pairs(n, rng)
        units = self._units()
        lam = rng.random(n) if self.lam is None else np.full(n, float(self.lam))
        if self.mode == "paper":
            # Alg. 1: M ~ Bernoulli(lam) per unit, new = M * x_a + (1 - M) * x_b.
            from_b = ~(rng.random((n, len(units))) < lam[:, None])
        else:
            # the code: exactly floor(lam * n_units) units, without replacement, copied from b into a copy of a.
            from_b = _swap_mask_exact(np.floor(lam * len(units)).astype(np.int64), len(units), rng)
        take = {c: a for c in self.columns_}
        for j, unit in enumerate(units):
            idx = np.where(from_b[:, j], b, a)
            for c in unit:
                take[c] = idx
        if self.schema_.target is not None:
            take[self.schema_.target] = a  # same class, but keep a's label explicitly (as the code resets it)
        return self._assemble(take)


def _check_lam(lam: Any, who: str) -> None:
    if lam is not None and (isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0):
        raise ConfigError(
            f"{who}: lam={lam!r} must be None (drawn from U(0, 1) per new row, as the paper) or a number in [0, 1]"
        )


class TabCutMix(_CutMixBase):
    """TabCutMix (Fang et al. 2025, section 4.1): mix the features of two training rows of the same class.

    ratio: new rows per training row for `augment` (paper: 0.3; Magic 2.0).
    lam: None draws lambda ~ U(0, 1) per new row (the paper and the code); a number fixes it.
    mode: "paper": each feature comes from the first row with probability lambda (Bernoulli mask, Alg. 1);
        "code": exactly floor(lambda * F) of the F features, chosen without replacement, come from the partner
        (the official `cutmix_tabular`). In both modes the first row is uniform over the table (so the class
        follows the class prior) and the partner uniform over its class, possibly the row itself.
    The label is never mixed. Numeric and categorical values are copied, never interpolated.
    """

    def __init__(self, ratio: float = 0.3, lam: float | None = None, mode: str = "paper", seed: int = 0) -> None:
        self.ratio, self.lam, self.mode, self.seed = ratio, lam, mode, seed

    def _fit_more(self, clean: pd.DataFrame) -> None:
        _check_lam(self.lam, "TabCutMix")
        if self.mode not in MODES:
            raise ConfigError(f"TabCutMix: mode={self.mode!r}; choose 'paper' or 'code'")

    def _units(self) -> list[list[str]]:
        return [[c] for c in self.features_]


class TabCutMixPlus(_CutMixBase):
    """TabCutMixPlus (Fang et al. 2025, section 4.2): TabCutMix that swaps whole clusters of associated columns.

    fit computes `association_` (a (C, C) frame: |Pearson|, bias-corrected Cramer's V, correlation ratio; label
    included; see `rote.tabular.association`) and `clusters_` (average linkage on 1 - association, cut at `cut`).
    Each cluster is one unit: all its columns come from the same row.
    mode: "paper": each cluster comes from the partner with probability 1 - lambda (the prose of section 4.2:
        features of a cluster are exchanged together); "code": exactly floor(lambda * K) of the K clusters
        (the official `cutmix_tabular_cluster`; K counts the label's cluster, as there).
    The label always stays the first row's (the same class as the partner's).
    """

    def __init__(
        self, ratio: float = 0.3, cut: float = DEFAULT_CUT, lam: float | None = None, mode: str = "paper", seed: int = 0
    ) -> None:
        self.ratio, self.cut, self.lam, self.mode, self.seed = ratio, cut, lam, mode, seed

    def _fit_more(self, clean: pd.DataFrame) -> None:
        _check_lam(self.lam, "TabCutMixPlus")
        if self.mode not in MODES:
            raise ConfigError(f"TabCutMixPlus: mode={self.mode!r}; choose 'paper' or 'code'")
        assoc = association_matrix(clean, self.schema_)
        order = self.columns_  # report in the table's own column order
        self.association_ = assoc.loc[order, order]
        self.clusters_ = cluster_columns(self.association_, self.cut)

    def _units(self) -> list[list[str]]:
        return self.clusters_


class Mixup(_Augmenter):
    """Mixup baseline (Zhang et al. 2018) for tables, within a class: numeric values x = w a + (1 - w) b with
    w ~ Beta(alpha, alpha) per new row; each categorical value (and the label) comes from a when w >= 0.5, else
    from b (the row with the larger weight). Pairs are same-class as in TabCutMix, so labels stay hard.
    Integer-typed numeric columns are rounded back to integers.
    """

    def __init__(self, ratio: float = 0.3, alpha: float = 0.2, seed: int = 0) -> None:
        self.ratio, self.alpha, self.seed = ratio, alpha, seed

    def _fit_more(self, clean: pd.DataFrame) -> None:
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not self.alpha > 0:
            raise ConfigError(f"Mixup: alpha={self.alpha!r} must be a number > 0 (Beta(alpha, alpha) weights)")

    def _sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        a, b = self._pairs(n, rng)
        w = rng.beta(self.alpha, self.alpha, n)
        lead = np.where(w >= 0.5, a, b)
        out = self._assemble({c: lead for c in self.columns_})
        for c in self.schema_.numeric:
            if c == self.schema_.target:
                continue
            x = self.clean_[c].to_numpy(np.float64)
            # clipped to the pair's range: no rounding overshoot past either value
            mixed = np.clip(x[b] + w * (x[a] - x[b]), np.minimum(x[a], x[b]), np.maximum(x[a], x[b]))
            out[c] = _like(mixed, self.table_[c])
        return out


def _like(values: np.ndarray, template: pd.Series) -> pd.Series:
    """(n,) float values as a Series of `template`'s dtype (integers rounded, the column's range kept)."""
    if pd.api.types.is_integer_dtype(template.dtype) or pd.api.types.is_bool_dtype(template.dtype):
        values = np.round(values)
    return pd.Series(values).astype(template.dtype)


class SMOTEAugmenter(_Augmenter):
    """SMOTE baseline (Chawla et al. 2002) on the minority class: each new row starts at a random minority row a,
    picks one of its `k` nearest minority neighbours b (Gower distance via `rote.core.neighbors`, the row itself
    excluded) and sets numeric values to a + u (b - a), u ~ U(0, 1); categorical values come from a when
    u < 0.5, else from b. The label is the minority class. With one class, that class is the "minority"; a
    minority class of one row gives copies of it (no neighbour to move towards).
    target_class: which class to grow (default: the least frequent; ties -> the first in sorted order).
    """

    def __init__(self, ratio: float = 0.3, k: int = 5, target_class: Any = None, seed: int = 0) -> None:
        self.ratio, self.k, self.target_class, self.seed = ratio, k, target_class, seed

    def _fit_more(self, clean: pd.DataFrame) -> None:
        from rote.core.neighbors import knn
        from rote.tabular.encode import encode_tables

        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ConfigError(f"SMOTEAugmenter: k={self.k!r} must be a whole number >= 1 (neighbours per row)")
        if self.target_class is None:
            cls = int(np.argmin(self.class_counts_))
        else:
            hit = np.flatnonzero(self.classes_.astype(str) == str(self.target_class))
            if not hit.size:
                raise ConfigError(
                    f"SMOTEAugmenter: target_class={self.target_class!r} is not a class of "
                    f"'{self.schema_.target}' (classes: {', '.join(map(str, self.classes_))})"
                )
            cls = int(hit[0])
        self.minority_ = self.classes_[cls]
        rows = np.flatnonzero(self.class_codes_ == cls)
        self.minority_rows_ = rows
        k = min(int(self.k), len(rows) - 1)
        if k == 0:
            self.neighbours_ = rows[:, None]
            return
        (mat,), _ = encode_tables([clean.iloc[rows].reset_index(drop=True)], self.schema_, include_target=False)
        nb = knn(mat, mat, k=k + 1, distance="gower").indices  # (m, k+1), usually self first
        own = np.arange(len(rows))[:, None]
        # drop the row itself; where duplicates hid it, drop the farthest instead (keep k per row)
        not_self = nb != own
        drop_last = not_self.all(1)
        not_self[drop_last, -1] = False
        self.neighbours_ = rows[nb[not_self].reshape(len(rows), k)]

    def _sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        pick = rng.integers(0, len(self.minority_rows_), n)
        a = self.minority_rows_[pick]
        b = self.neighbours_[pick, rng.integers(0, self.neighbours_.shape[1], n)]
        u = rng.random(n)
        out = self._assemble({c: np.where(u < 0.5, a, b) for c in self.columns_})
        for c in self.schema_.numeric:
            x = self.clean_[c].to_numpy(np.float64)
            moved = np.clip(x[a] + u * (x[b] - x[a]), np.minimum(x[a], x[b]), np.maximum(x[a], x[b]))
            out[c] = _like(moved, self.table_[c])
        if self.schema_.target is not None:
            out[self.schema_.target] = self.table_[self.schema_.target].take(a).reset_index(drop=True)
        return out


class IJFAugmenter(_Augmenter):
    """IJF baseline: new rows with every column drawn independently (`IndependentColumnSampler`), label included.

    numeric: "gaussian" (the paper's IJF: N(mean, std) per numeric column) or "empirical".
    """

    def __init__(self, ratio: float = 0.3, numeric: str = "gaussian", seed: int = 0) -> None:
        self.ratio, self.numeric, self.seed = ratio, numeric, seed

    def _fit_more(self, clean: pd.DataFrame) -> None:
        self.sampler_ = IndependentColumnSampler(numeric=self.numeric, seed=self.seed).fit(self.table_, self.schema_)

    def _sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        return self.sampler_.sample(n, seed=int(rng.integers(0, 2**63 - 1)))


AUGMENTERS: dict[str, type[_Augmenter]] = {
    "tabcutmix": TabCutMix,
    "tabcutmixplus": TabCutMixPlus,
    "mixup": Mixup,
    "smote": SMOTEAugmenter,
    "ijf": IJFAugmenter,
}
"""Augmenter classes by the short name the CLI and experiment grids use."""


# ---------------------------------------------------------------------------------------------- OOD rate


@dataclass(frozen=True)
class OODResult(Result):
    """Result of `ood_rate`: `ood_rate` is the fraction of the given rows the detector flags as perturbed.

    detector_accuracy: accuracy of the real-vs-perturbed detector on held-out real and perturbed rows (how
    trustworthy the flag is). `rows` has one row per scored row: `p_ood` and `ood` (p_ood > 0.5).
    """

    ood_rate: float
    n_rows: int
    n_train_real: int
    detector_accuracy: float
    real_flag_rate: float
    factor: float
    rows: pd.DataFrame = table_field("ood_rows")

    def summary(self) -> str:
        return (
            f"OOD rate {self.ood_rate:.2%} of {self.n_rows} rows (detector accuracy "
            f"{self.detector_accuracy:.2%}; held-out real rows flagged {self.real_flag_rate:.2%})"
        )


UNKNOWN_CATEGORY = "unknown"
"""The category the TabCutMix code's OOD helper writes into a perturbed categorical cell."""


def _perturb(
    clean: pd.DataFrame,
    schema: TableSchema,
    columns: list[str],
    factor: float,
    rng: np.random.Generator,
    categorical: str = "other",
) -> pd.DataFrame:
    """A copy of `clean` with one column per row changed: numeric value x factor; categorical value -> a
    different category of that column, uniformly ("other"; columns with one category are never picked), or
    -> `UNKNOWN_CATEGORY` ("unknown")."""
    cats = {c: np.unique(clean[c].to_numpy(object)) for c in schema.categorical if c in columns}
    movable = [c for c in columns if c in schema.numeric or categorical == "unknown" or len(cats[c]) > 1]
    if not movable:
        raise DataError("ood_rate: no column can be perturbed (every column is categorical with one category)")
    out = clean.copy()
    which = rng.integers(0, len(movable), len(clean))
    for j, c in enumerate(movable):
        rows = np.flatnonzero(which == j)
        if not rows.size:
            continue
        if c in schema.numeric:
            vals = out[c].to_numpy(np.float64, copy=True)
            vals[rows] *= factor
            out[c] = vals
        elif categorical == "unknown":
            vals = out[c].to_numpy(object, copy=True)
            vals[rows] = UNKNOWN_CATEGORY
            out[c] = vals
        else:
            levels = cats[c]
            current = np.searchsorted(levels, out[c].to_numpy(object)[rows])
            shift = rng.integers(1, len(levels), rows.size)  # any other category, uniformly
            vals = out[c].to_numpy(object, copy=True)
            vals[rows] = levels[(current + shift) % len(levels)]
            out[c] = vals
    return out


def _design(
    frames: list[pd.DataFrame], reference: pd.DataFrame, schema: TableSchema, columns: list[str]
) -> list[np.ndarray]:
    """Numeric columns standardised with `reference`'s mean/std (after a signed log, so x100 stays finite and
    visible), categorical one-hot on `reference`'s categories (unseen -> all zeros)."""
    num = [c for c in schema.numeric if c in columns]
    cat = [c for c in schema.categorical if c in columns]

    def slog(x: np.ndarray) -> np.ndarray:
        return np.sign(x) * np.log1p(np.abs(x))

    ref_num = slog(reference[num].to_numpy(np.float64)) if num else np.zeros((len(reference), 0))
    mu, sd = ref_num.mean(0), ref_num.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    levels = {c: np.unique(reference[c].to_numpy(object)) for c in cat}
    out = []
    for f in frames:
        parts = [(slog(f[num].to_numpy(np.float64)) - mu) / sd] if num else []
        for c in cat:
            parts.append((f[c].to_numpy(object)[:, None] == levels[c][None, :]).astype(np.float64))
        out.append(np.hstack(parts) if parts else np.zeros((len(f), 0)))
    return out


class OODDetector:
    """The real-vs-perturbed classifier of Fang et al. (2025, App. D.4.6), fitted once, then applied to the new
    rows of several augmenters (`rate(rows)`), so that their OOD rates share one detector.

    Positives are real rows with one column perturbed (numeric x `factor`, paper F = 100; categorical: with
    `categorical="other"` (the paper's text) another category of that column, uniformly; with "unknown" (the
    code's `generate_syn_sample`, which also uses factor 10) the new category "unknown"); negatives are the
    real rows. An MLP (scikit-learn, `hidden` layers,
    seeded) learns real vs perturbed on 80% of the real rows and their perturbed copies; the other 20% give
    `detector_accuracy` and `real_flag_rate`. A scored row is OOD when P(perturbed) > 0.5.
    max_real: at most this many real rows are used (sampled with `seed`).
    include_target: also perturb and feed the label (off by default: augmenters never change labels).
    Features: signed-log then standardised numerics, one-hot categoricals (our choice; the paper does not say).
    With "other", a numeric 0 is unchanged by x factor and a category swap often yields a plausible row, so
    such "positives" look real: the detector's accuracy stays below 100% (about 78% on Adult), and it learns to
    flag unusual combinations of values, which cut-mixed rows are.
    """

    def __init__(
        self,
        factor: float = 100.0,
        categorical: str = "other",
        max_real: int = 10_000,
        hidden: tuple[int, ...] = (64, 64),
        include_target: bool = False,
        seed: int = 0,
    ) -> None:
        self.factor, self.categorical, self.max_real, self.hidden, self.include_target, self.seed = (
            factor,
            categorical,
            max_real,
            hidden,
            include_target,
            seed,
        )

    def fit(self, real: pd.DataFrame, schema: TableSchema) -> "OODDetector":
        from sklearn.neural_network import MLPClassifier

        from rote.tabular.quality import single_thread

        if not self.factor > 0 or self.factor == 1:
            raise ConfigError(
                f"ood_rate: factor={self.factor!r} must be > 0 and not 1 (numeric values are multiplied by it)"
            )
        if self.categorical not in ("other", "unknown"):
            raise ConfigError(
                f"ood_rate: categorical={self.categorical!r}; choose 'other' (the paper) or "
                "'unknown' (the code's helper)"
            )
        real_c = validate_table(real, schema, name=str(real.attrs.get("source", "real")), allow_extra=True)
        if len(real_c) < 5:
            raise DataError(f"ood_rate: the real table has {len(real_c)} rows; the detector needs at least 5")
        rng = make_rng(self.seed)
        if len(real_c) > self.max_real:
            real_c = real_c.iloc[np.sort(rng.choice(len(real_c), self.max_real, replace=False))].reset_index(drop=True)
        self.schema_ = schema
        self.columns_ = [c for c in schema.columns if self.include_target or c != schema.target]
        self.reference_ = real_c
        pert = _perturb(real_c, schema, self.columns_, self.factor, rng, self.categorical)
        x_real, x_pert = _design([real_c, pert], real_c, schema, self.columns_)
        n = len(real_c)
        perm = rng.permutation(n)
        n_tr = max(1, int(0.8 * n))
        tr, te = perm[:n_tr], perm[n_tr:]
        x = np.vstack([x_real[tr], x_pert[tr]])
        y = np.r_[np.zeros(len(tr)), np.ones(len(tr))]
        self.model_ = MLPClassifier(
            hidden_layer_sizes=self.hidden,
            max_iter=200,
            early_stopping=len(tr) >= 50,
            random_state=int(rng.integers(0, 2**31 - 1)),
        )
        with single_thread():  # small model; OpenMP/BLAS spin-waiting on a busy machine costs more than it gains
            self.model_.fit(x, y)
            p_te = self.model_.predict_proba(np.vstack([x_real[te], x_pert[te]]))[:, 1]
        self.n_train_real_ = len(tr)
        if len(te):
            y_te = np.r_[np.zeros(len(te)), np.ones(len(te))]
            self.detector_accuracy_ = float(np.mean((p_te > 0.5) == (y_te == 1)))
            self.real_flag_rate_ = float(np.mean(p_te[: len(te)] > 0.5))
        else:
            self.detector_accuracy_ = self.real_flag_rate_ = float("nan")
        return self

    def rate(self, rows: pd.DataFrame) -> OODResult:
        """OOD rate of `rows` (validated against the fitted schema; extra columns ignored)."""
        from rote.tabular.quality import single_thread

        if not hasattr(self, "model_"):
            raise ConfigError("OODDetector: call fit(real, schema) before rate(rows)")
        rows_c = validate_table(rows, self.schema_, name=str(rows.attrs.get("source", "rows")), allow_extra=True)
        (x_rows,) = _design([rows_c], self.reference_, self.schema_, self.columns_)
        with single_thread():
            p = self.model_.predict_proba(x_rows)[:, 1]
        return OODResult(
            ood_rate=float(np.mean(p > 0.5)),
            n_rows=len(rows_c),
            n_train_real=self.n_train_real_,
            detector_accuracy=self.detector_accuracy_,
            real_flag_rate=self.real_flag_rate_,
            factor=float(self.factor),
            rows=pd.DataFrame({"row": np.arange(len(rows_c)), "p_ood": p, "ood": p > 0.5}),
        )


def ood_rate(
    real: pd.DataFrame,
    rows: pd.DataFrame,
    schema: TableSchema,
    *,
    factor: float = 100.0,
    categorical: str = "other",
    max_real: int = 10_000,
    hidden: tuple[int, ...] = (64, 64),
    include_target: bool = False,
    seed: int = 0,
) -> OODResult:
    """Fraction of `rows` (e.g. the new rows of an augmenter) that look out of distribution (App. D.4.6):
    `OODDetector(...).fit(real, schema).rate(rows)`; see `OODDetector` for the procedure."""
    return (
        OODDetector(
            factor=factor,
            categorical=categorical,
            max_real=max_real,
            hidden=hidden,
            include_target=include_target,
            seed=seed,
        )
        .fit(real, schema)
        .rate(rows)
    )
