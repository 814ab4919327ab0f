"""Quality of a synthetic table against the real one: the metrics of Fang et al. (ICML 2025), section 5.1.

Each metric is a pure function of (real, synthetic, schema) returning a small result with per-column or per-pair
detail; `quality_report` runs them all. Scores are fractions in [0, 1], higher = closer to the real data.

- `shape_score`: SDMetrics "Column Shapes" (KSComplement / TVComplement), mean over columns.
- `trend_score`: SDMetrics "Column Pair Trends" (CorrelationSimilarity / ContingencySimilarity), mean over pairs.
- `alpha_precision_beta_recall`: synthcity `AlphaPrecision`, the "naive" variants the paper reports.
- `c2st_score`: SDMetrics `LogisticDetection`.
- `mle_score`: train a gradient-boosted classifier on synthetic rows, ROC AUC on real test rows.
- `dcr_share`: the holdout DCR share of `rote.tabular.audit.audit` (not a second implementation).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from rote.core.errors import ConfigError, DataError
from rote.core.privacy import roc_auc
from rote.core.results import Result, table_field
from rote.core.runs import make_rng
from rote.data import TableSchema, validate_table
from rote.tabular.association import chi2_statistic, pearson

TREND_BINS = 10
"""Equal-width bins a numeric column is cut into for contingency similarity (SDMetrics' default)."""

BINNINGS = ("sdmetrics", "shared")
N_ALPHAS = 30  # synthcity's alpha grid: np.linspace(0, 1, 30)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run scikit-learn models on one OpenMP/BLAS thread: these models are small, and on a busy machine
    OpenMP's spin-waiting made HistGradientBoosting about 100x slower (17 s vs 0.15 s for 600 rows)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _clean(frame: pd.DataFrame, schema: TableSchema, role: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"{role} must be a pandas DataFrame, got {type(frame).__name__}")
    return validate_table(frame, schema, name=str(frame.attrs.get("source", role)), allow_extra=True)


def _both(real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema) -> tuple[pd.DataFrame, pd.DataFrame]:
    return _clean(real, schema, "real"), _clean(synth, schema, "synthetic")


def _codes(real: pd.Series, synth: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Shared integer codes of two categorical columns (categories: union of both)."""
    codes, uniques = pd.factorize(pd.concat([real, synth], ignore_index=True))
    return codes[: len(real)], codes[len(real) :], len(uniques)


def tv_distance(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Total variation distance 0.5 * sum |p - q| of two count vectors over the same categories."""
    p = p_counts / p_counts.sum()
    q = q_counts / q_counts.sum()
    return float(0.5 * np.abs(p - q).sum())


# ---------------------------------------------------------------------------------------------- shape


@dataclass(frozen=True)
class ShapeScore(Result):
    """`score`: mean over columns of 1 - KS (numeric) or 1 - TVD (categorical); `columns`: one row per column."""

    score: float
    columns: pd.DataFrame = table_field("shape_columns")


def shape_score(real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema) -> ShapeScore:
    """Column-shape similarity, as SDMetrics' QualityReport "Column Shapes" (the paper's Shape).

    numeric column: KSComplement = 1 - two-sample Kolmogorov-Smirnov statistic (scipy `ks_2samp`);
    categorical column: TVComplement = 1 - 0.5 * sum over categories (union of both tables) of |R(c) - S(c)|.
    Every schema column, the target included. Returns the mean and a per-column frame (column, kind, metric, score).
    """
    r, s = _both(real, synth, schema)
    rows = []
    for c in schema.columns:
        if c in schema.numeric:
            ks = ks_2samp(r[c].to_numpy(np.float64), s[c].to_numpy(np.float64)).statistic
            rows.append((c, "numeric", "KSComplement", 1.0 - float(ks)))
        else:
            a, b, k = _codes(r[c], s[c])
            tvd = tv_distance(np.bincount(a, minlength=k).astype(float), np.bincount(b, minlength=k).astype(float))
            rows.append((c, "categorical", "TVComplement", 1.0 - tvd))
    frame = pd.DataFrame(rows, columns=["column", "kind", "metric", "score"])
    return ShapeScore(score=float(frame["score"].mean()), columns=frame)


# ---------------------------------------------------------------------------------------------- trend


@dataclass(frozen=True)
class TrendScore(Result):
    """`score`: mean over the defined column pairs that meet the thresholds; `pairs`: one row per pair (score NaN
    with `note` when undefined, e.g. a constant column in a correlation; `meets_threshold`); `n_undefined`: how
    many pairs were undefined."""

    score: float
    n_pairs: int
    n_undefined: int
    binning: str
    pairs: pd.DataFrame = table_field("trend_pairs")


def _bin(x: np.ndarray, edges: np.ndarray | None) -> np.ndarray:
    """np.digitize on `edges` (default: 10 equal-width edges over x itself, as SDMetrics' report)."""
    if edges is None:
        edges = np.histogram_bin_edges(x, bins=TREND_BINS)
    return np.digitize(x, bins=edges)


SDMETRICS_032_THRESHOLDS = {"correlation_threshold": 0.5, "association_threshold": 0.3}
"""`trend_score` keyword arguments that reproduce SDMetrics 0.32's QualityReport "Column Pair Trends" average."""


def _cramers_v_plain(counts: np.ndarray) -> float:
    """Cramer's V without bias correction or Yates (scipy.stats.contingency.association(method="cramer")) of a
    count table; empty rows and columns are dropped first; 0 when fewer than 2 rows or columns remain."""
    counts = counts[counts.sum(1) > 0][:, counts.sum(0) > 0]
    if min(counts.shape) < 2:
        return 0.0
    return float(np.sqrt(chi2_statistic(counts, yates=False) / (counts.sum() * (min(counts.shape) - 1))))


def trend_score(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    schema: TableSchema,
    *,
    binning: str = "sdmetrics",
    correlation_threshold: float = 0.0,
    association_threshold: float = 0.0,
) -> TrendScore:
    """Column-pair trend similarity, as SDMetrics' QualityReport "Column Pair Trends" (the paper's Trend).

    numeric-numeric: CorrelationSimilarity = 1 - |rho_R - rho_S| / 2 (Pearson); undefined (left out, as SDMetrics
    does) when a column is constant in either table. Other pairs: ContingencySimilarity = 1 - TVD of the joint
    distribution of the two columns, numeric columns cut into 10 equal-width bins.
    binning: "sdmetrics" bins each table on its own edges (what SDMetrics' report does, and so the paper's
        numbers); "shared" bins both on the real table's edges with open outer bins (SDMetrics'
        `ContingencySimilarity` metric called on its own with continuous columns).
    correlation_threshold, association_threshold: only pairs whose REAL |Pearson r| (numeric pairs) or real
        Cramer's V (other pairs, uncorrected, on the binned table) exceeds the threshold count towards the mean.
        The defaults (0, 0) count every pair, as the SDMetrics versions the paper used; SDMetrics 0.32's report
        uses 0.5 and 0.3 (`SDMETRICS_032_THRESHOLDS`). Every pair keeps its score and a `meets_threshold` flag.
    Every pair of schema columns, the target included.
    """
    if binning not in BINNINGS:
        raise ConfigError(f"binning={binning!r}; choose one of {', '.join(BINNINGS)}")
    r, s = _both(real, synth, schema)
    disc: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for c in schema.columns:
        if c in schema.numeric:
            x, y = r[c].to_numpy(np.float64), s[c].to_numpy(np.float64)
            if binning == "sdmetrics":
                bx, by = _bin(x, None), _bin(y, None)
            else:
                edges = np.histogram_bin_edges(x, bins=TREND_BINS)
                edges[0], edges[-1] = -np.inf, np.inf
                bx, by = _bin(x, edges), _bin(y, edges)
            disc[c] = (bx, by, TREND_BINS + 2)
        else:
            disc[c] = _codes(r[c], s[c])
    rows = []
    for a, b in combinations(schema.columns, 2):
        if a in schema.numeric and b in schema.numeric:
            xr, yr, xs, ys = (t[c].to_numpy(np.float64) for t, c in ((r, a), (r, b), (s, a), (s, b)))
            const = [
                f"{c} in {role}"
                for c, v, role in ((a, xr, "real"), (b, yr, "real"), (a, xs, "synthetic"), (b, ys, "synthetic"))
                if np.ptp(v) == 0
            ]
            if const:
                rows.append((a, b, "CorrelationSimilarity", np.nan, f"constant column: {', '.join(const)}", False))
                continue
            rho_r, rho_s = pearson(xr, yr), pearson(xs, ys)
            rows.append(
                (
                    a,
                    b,
                    "CorrelationSimilarity",
                    1.0 - abs(rho_r - rho_s) / 2,
                    "",
                    abs(rho_r) > correlation_threshold or correlation_threshold <= 0,
                )
            )
        else:
            ar, as_, ka = disc[a]
            br, bs, kb = disc[b]
            k = ka * kb
            real_counts = np.bincount(ar * kb + br, minlength=k).astype(float)
            tvd = tv_distance(real_counts, np.bincount(as_ * kb + bs, minlength=k).astype(float))
            meets = association_threshold <= 0 or _cramers_v_plain(real_counts.reshape(ka, kb)) > association_threshold
            rows.append((a, b, "ContingencySimilarity", 1.0 - tvd, "", meets))
    frame = pd.DataFrame(rows, columns=["column_1", "column_2", "metric", "score", "note", "meets_threshold"])
    defined = frame["score"].notna() & frame["meets_threshold"]
    score = float(frame.loc[defined, "score"].mean()) if defined.any() else float("nan")
    return TrendScore(
        score=score, n_pairs=len(frame), n_undefined=int(frame["score"].isna().sum()), binning=binning, pairs=frame
    )


# ---------------------------------------------------------------------------------------------- alpha / beta


def _design(
    frames: list[pd.DataFrame], reference: pd.DataFrame, schema: TableSchema, columns: list[str]
) -> list[np.ndarray]:
    """[raw numeric | one-hot categorical] with `reference`'s categories (an unseen category -> all zeros)."""
    num = [c for c in schema.numeric if c in columns]
    cat = [c for c in schema.categorical if c in columns]
    levels = {c: np.unique(reference[c].to_numpy(object)) for c in cat}
    out = []
    for f in frames:
        parts = [f[num].to_numpy(np.float64)] if num else []
        for c in cat:
            parts.append((f[c].to_numpy(object)[:, None] == levels[c][None, :]).astype(np.float64))
        out.append(np.hstack(parts) if parts else np.zeros((len(f), 0)))
    return out


@dataclass(frozen=True)
class AlphaBetaScore(Result):
    """alpha_precision, beta_recall, authenticity (synthcity's naive variants); `curves`: the alpha grid with the
    alpha-precision and beta-coverage curves; n: rows used from each table."""

    alpha_precision: float
    beta_recall: float
    authenticity: float
    n: int
    curves: pd.DataFrame = table_field("alpha_beta_curves")


def _nearest(query: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k nearest rows of `reference` for each row of `query` (rote's shared kNN kernel with the
    `l2` distance at unit scale): (distances (n, k), indices (n, k)), nearest first."""
    from rote.core.neighbors import L2Distance, MixedMatrix, knn

    def mm(x: np.ndarray) -> MixedMatrix:
        return MixedMatrix(x, np.zeros((len(x), 0), np.int64), ())

    p = reference.shape[1]
    nb = knn(mm(query), mm(reference), k=k, distance=L2Distance(mean=np.zeros(p), std=np.ones(p)), dedupe=False)
    return nb.distances, nb.indices


def alpha_precision_beta_recall(
    real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema, *, seed: int = 0, max_rows: int | None = None
) -> AlphaBetaScore:
    """alpha-precision and beta-recall (Alaa et al. 2022), the "naive" variants of synthcity's `AlphaPrecision`
    (`delta_precision_alpha_naive`, `delta_coverage_beta_naive`, `authenticity_naive`) as the paper reports them.

    Features: [numeric | one-hot categorical] of every schema column (the TabCutMix evaluation passes the label
    as a categorical column), min-max scaled with the real table's range (synthcity's naive normalisation).
    synthcity needs equal row counts: the larger table is subsampled to the smaller one's size with `seed`
    (and both to `max_rows` when given: the two exact nearest-neighbour searches cost O(n^2), about 50 s for
    Adult's 32,561 rows on one busy CPU core).
    With alphas = linspace(0, 1, 30), centre c = mean of real rows:
    alpha-precision curve(a) = share of synthetic rows within the a-quantile of real distances to c;
    beta-coverage curve(a) = share of real rows whose nearest synthetic row is closer than their nearest other
    real row and lies within the a-quantile (over real rows) of distances of those nearest synthetic rows to the
    synthetic mean; each score = 1 - sum |alphas - curve| / sum alphas.

    authenticity copies synthcity's `authenticity_naive` as it is, including its index mix-up (reported upstream):
    the real-to-real distances are indexed with the *synthetic* row nearest to each real row, so it is not Alaa et
    al.'s authenticity (the share of synthetic rows farther from their nearest real row than that row is from its
    own nearest real neighbour). Kept for comparison with numbers computed by synthcity; do not read it as
    Alaa et al.'s metric. The one-class (OC, Deep-SVDD embedded) variants are not implemented.
    """
    r, s = _both(real, synth, schema)
    n = min(len(r), len(s))
    if max_rows is not None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 2:
            raise ConfigError(f"max_rows={max_rows!r} must be a whole number >= 2 (or None for all rows)")
        n = min(n, int(max_rows))
    if n < 2:
        raise DataError(
            f"alpha_precision_beta_recall: needs at least 2 rows in each table, got {len(r)} real and "
            f"{len(s)} synthetic"
        )
    rng = make_rng(seed)
    if len(r) > n:  # subsample (sorted positions keep the table's order)
        r = r.iloc[np.sort(rng.choice(len(r), n, replace=False))].reset_index(drop=True)
    if len(s) > n:
        s = s.iloc[np.sort(rng.choice(len(s), n, replace=False))].reset_index(drop=True)
    x, y = _design([r, s], r, schema, list(schema.columns))
    lo, span = x.min(0), np.ptp(x, 0)
    span = np.where(span > 0, span, 1.0)  # a constant real column maps to 0 (as sklearn's MinMaxScaler)
    x, y = (x - lo) / span, (y - lo) / span
    alphas = np.linspace(0.0, 1.0, N_ALPHAS)
    centre = x.mean(0)
    radii = np.quantile(np.linalg.norm(x - centre, axis=1), alphas)
    synth_to_centre = np.linalg.norm(y - centre, axis=1)
    rr, _ = _nearest(x, x, 2)
    real_to_real = rr[:, 1]  # nearest other real row (the row itself is at distance 0)
    rs, rs_idx = _nearest(x, y, 1)
    real_to_synth, nearest_synth = rs[:, 0], rs_idx[:, 0]
    closest_d = np.linalg.norm(y[nearest_synth] - y.mean(0), axis=1)
    closest_radii = np.quantile(closest_d, alphas)
    precision = (synth_to_centre[None, :] <= radii[:, None]).mean(1)
    coverage = ((real_to_synth <= real_to_real)[None, :] & (closest_d[None, :] <= closest_radii[:, None])).mean(1)
    authenticity = float(np.mean(real_to_real[nearest_synth] < real_to_synth))
    total = alphas.sum()
    return AlphaBetaScore(
        alpha_precision=float(1 - np.abs(alphas - precision).sum() / total),
        beta_recall=float(1 - np.abs(alphas - coverage).sum() / total),
        authenticity=authenticity,
        n=n,
        curves=pd.DataFrame({"alpha": alphas, "alpha_precision": precision, "beta_coverage": coverage}),
    )


# ---------------------------------------------------------------------------------------------- C2ST


def c2st_score(
    real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema, *, n_folds: int = 3, seed: int = 0
) -> float:
    """Classifier two-sample test score, SDMetrics' `LogisticDetection` (the paper's C2ST): in [0, 1], 1 = the
    classifier cannot tell synthetic from real rows.

    Features: raw numerics and one-hot categoricals (real categories; SDMetrics' HyperTransformer), every schema
    column; a RobustScaler + logistic regression (lbfgs) pipeline; stratified `n_folds`-fold cross-validation
    (shuffled with `seed`; SDMetrics does not seed it). Score = 1 - mean over folds of (2 max(AUC, 0.5) - 1).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import RobustScaler

    r, s = _both(real, synth, schema)
    if min(len(r), len(s)) < n_folds:
        raise DataError(
            f"c2st_score: each table needs at least {n_folds} rows for {n_folds}-fold "
            f"cross-validation, got {len(r)} real and {len(s)} synthetic"
        )
    xr, xs = _design([r, s], r, schema, list(schema.columns))
    x = np.vstack([xr, xs])
    y = np.r_[np.ones(len(xr)), np.zeros(len(xs))]
    scores = []
    for tr, te in StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x, y):
        model = Pipeline([("scale", RobustScaler()), ("clf", LogisticRegression(solver="lbfgs"))])
        with warnings.catch_warnings(), single_thread():  # lbfgs may stop at max_iter as in SDMetrics
            warnings.simplefilter("ignore")
            model.fit(x[tr], y[tr])
            p = model.predict_proba(x[te])[:, 1]
        scores.append(max(0.5, roc_auc(p, y[te])) * 2 - 1)
    return float(1 - np.mean(scores))


# ---------------------------------------------------------------------------------------------- MLE


@dataclass(frozen=True)
class MLEScore(Result):
    """ROC AUC on the real test rows of a classifier trained on synthetic rows (macro one-vs-rest for more than
    two classes); NaN with `note` when undefined (one class in the synthetic or the test table)."""

    auc: float
    target: str
    n_train: int
    n_test: int
    classes: list[str]
    note: str


def _ordinal(
    frames: list[pd.DataFrame], reference: pd.DataFrame, schema: TableSchema, columns: list[str]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Numerics as they are, categoricals as codes of `reference`'s categories (unseen -> NaN)."""
    out = []
    cats = [c for c in columns if c in schema.categorical]
    levels = {c: pd.Index(np.unique(reference[c].to_numpy(object))) for c in cats}
    for f in frames:
        cols = []
        for c in columns:
            if c in levels:
                idx = levels[c].get_indexer(f[c].to_numpy(object)).astype(np.float64)
                idx[idx < 0] = np.nan
                cols.append(idx)
            else:
                cols.append(f[c].to_numpy(np.float64))
        out.append(np.column_stack(cols) if cols else np.zeros((len(f), 0)))
    is_cat = np.array([c in levels and len(levels[c]) <= 255 for c in columns], bool)
    return out, is_cat


def mle_score(
    train_synth: pd.DataFrame, test_real: pd.DataFrame, schema: TableSchema, target: str | None = None, *, seed: int = 0
) -> MLEScore:
    """Machine-learning efficacy: fit scikit-learn's HistGradientBoostingClassifier (seeded, default settings;
    categoricals native) on the synthetic table, report ROC AUC on the real test table.

    The paper uses XGBoost with a grid search; we use one seeded gradient-boosting model without a search, so
    absolute AUCs may differ slightly; comparisons between generators use the same model.
    target: the label column (default `schema.target`; must be categorical).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    target = target if target is not None else schema.target
    if target is None or target not in schema.categorical:
        raise ConfigError(f"mle_score: target={target!r} must be a categorical column of the schema (the label)")
    tr, te = _clean(train_synth, schema, "synthetic"), _clean(test_real, schema, "real test")
    features = [c for c in schema.columns if c != target]
    (xtr, xte), is_cat = _ordinal([tr, te], tr, schema, features)
    classes = np.unique(tr[target].to_numpy(object))
    ytr = np.searchsorted(classes, tr[target].to_numpy(object))
    test_labels = te[target].to_numpy(object)
    base = dict(target=target, n_train=len(tr), n_test=len(te), classes=[str(c) for c in classes])
    if len(classes) < 2:
        return MLEScore(auc=float("nan"), note="the synthetic table has one class; no classifier to score", **base)
    if len(np.unique(test_labels)) < 2:
        return MLEScore(auc=float("nan"), note="the test table has one class; AUC is undefined", **base)
    model = HistGradientBoostingClassifier(categorical_features=is_cat if is_cat.any() else None, random_state=seed)
    with single_thread():
        model.fit(xtr, ytr)
        proba = model.predict_proba(xte)
    if len(classes) == 2:
        auc = roc_auc(proba[:, 1], test_labels == classes[1])
    else:  # macro one-vs-rest over classes present in the test table
        aucs = [
            roc_auc(proba[:, j], test_labels == c)
            for j, c in enumerate(classes)
            if 0 < np.sum(test_labels == c) < len(test_labels)
        ]
        auc = float(np.mean(aucs))
    return MLEScore(auc=float(auc), note="", **base)


# ---------------------------------------------------------------------------------------------- DCR


def dcr_share(
    real_train: pd.DataFrame, synth: pd.DataFrame, real_holdout: pd.DataFrame, schema: TableSchema
) -> dict[str, Any]:
    """Share of synthetic rows strictly closer to a training row than to any holdout row (TabSyn's DCR score;
    ideal about n_train / (n_train + n_holdout)), from `rote.tabular.audit.audit`'s holdout DCR with the Gower
    distance (range-scaled L1 on numerics + categorical mismatches; the paper's L1 on one-hot counts a mismatch
    twice). Returns audit's `dcr` dict: share_closer_to_train, share_ties, ideal_share, medians, n_holdout."""
    from rote.tabular.audit import audit

    res = audit(real_train, synth, holdout=real_holdout, schema=schema, distance="gower")
    return dict(res.dcr)


# ---------------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class QualityResult(Result):
    """Every quality metric of one synthetic table (fractions in [0, 1]; None where not computed).

    mle_auc and dcr need `real_test`; `notes` says why anything is missing.
    """

    shape: float
    trend: float
    alpha_precision: float
    beta_recall: float
    authenticity: float
    c2st: float
    mle_auc: float | None
    dcr_share: float | None
    dcr: dict[str, Any] | None
    n_real: int
    n_synthetic: int
    notes: list[str]
    shape_columns: pd.DataFrame = table_field("shape_columns")
    trend_pairs: pd.DataFrame = table_field("trend_pairs")
    alpha_beta_curves: pd.DataFrame = table_field("alpha_beta_curves")

    def summary(self) -> str:
        def pct(v: float | None) -> str:
            return "n/a" if v is None or v != v else f"{v:.2%}"

        lines = [
            f"shape            {pct(self.shape)}   trend {pct(self.trend)}",
            f"alpha-precision  {pct(self.alpha_precision)}   beta-recall {pct(self.beta_recall)}",
            f"C2ST (logistic)  {pct(self.c2st)}",
            f"MLE (AUC)        {pct(self.mle_auc)}",
            f"DCR share        {pct(self.dcr_share)}",
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def quality_report(
    real_train: pd.DataFrame,
    synth: pd.DataFrame,
    schema: TableSchema,
    real_test: pd.DataFrame | None = None,
    *,
    seed: int = 0,
    dcr: bool = True,
    alpha_beta_max_rows: int | None = None,
) -> QualityResult:
    """All quality metrics of `synth` against `real_train` (and `real_test` for MLE and DCR) in one call.

    Shape, trend, alpha/beta and C2ST compare `synth` with `real_train` (the paper compares with the training
    split). MLE trains on `synth` and tests on `real_test` (needs a categorical `schema.target`); the DCR share
    uses `real_test` as holdout (`dcr=False` skips it). alpha_beta_max_rows: subsample for alpha/beta (see
    `alpha_precision_beta_recall`). On full Adult (32,561 synthetic rows) on one busy core: shape + trend 1 s,
    alpha/beta 50 s (all rows), C2ST 13 s, MLE 3 s, DCR 28 s.
    """
    notes: list[str] = []
    sh = shape_score(real_train, synth, schema)
    tr = trend_score(real_train, synth, schema)
    if tr.n_undefined:
        notes.append(f"trend: {tr.n_undefined} of {tr.n_pairs} column pairs undefined (constant column) and left out")
    ab = alpha_precision_beta_recall(real_train, synth, schema, seed=seed, max_rows=alpha_beta_max_rows)
    c2 = c2st_score(real_train, synth, schema, seed=seed)
    mle = share = dcr_info = None
    if real_test is None:
        notes.append("no real test table: MLE and DCR share not computed")
    else:
        if schema.target is not None and schema.target in schema.categorical:
            m = mle_score(synth, real_test, schema, seed=seed)
            mle = m.auc
            if m.note:
                notes.append(f"MLE: {m.note}")
        else:
            notes.append("no categorical target: MLE not computed")
        if dcr:
            dcr_info = dcr_share(real_train, synth, real_test, schema)
            share = dcr_info["share_closer_to_train"]
    return QualityResult(
        shape=sh.score,
        trend=tr.score,
        alpha_precision=ab.alpha_precision,
        beta_recall=ab.beta_recall,
        authenticity=ab.authenticity,
        c2st=c2,
        mle_auc=mle,
        dcr_share=share,
        dcr=dcr_info,
        n_real=len(real_train),
        n_synthetic=len(synth),
        notes=notes,
        shape_columns=sh.columns,
        trend_pairs=tr.pairs,
        alpha_beta_curves=ab.curves,
    )
