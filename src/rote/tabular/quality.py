"""Quality of a synthetic table against the real one: the metrics of Fang et al. (ICML 2025), section 5.1.

Each metric is a pure function of (real, synthetic, schema) returning a small result with per-column or per-pair
detail; `quality_report` runs them all. Scores are fractions in [0, 1], higher = closer to the real data.

- `shape_score`: SDMetrics "Column Shapes" (KSComplement / TVComplement), mean over columns.
- `trend_score`: SDMetrics "Column Pair Trends" (CorrelationSimilarity / ContingencySimilarity), mean over pairs.
- `alpha_precision_beta_recall`: synthcity `AlphaPrecision`: the "naive" variants the paper reports and the
  one-class ("oc") variants; authenticity as Alaa et al. define it (synthcity's index mix-up as an option).
- `marginals`: per-column real and synthetic histograms / category shares (the report's marginal plots).
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


# ---------------------------------------------------------------------------------------------- marginals

MARGINAL_BINS = 20
"""Equal-width bins of a numeric column's real-vs-synthetic histogram (over the range of both tables)."""
MARGINAL_TOP = 12
"""Categories shown per categorical column: the most frequent in the real table (then the synthetic one); the rest
are pooled into "other"."""


def _edges(lo: float, hi: float, bins: int) -> np.ndarray:
    """`bins` + 1 equal-width edges from lo to hi, computed as lo (1 - t) + hi t so that a range near the float
    limit (hi - lo = inf) still gives finite edges."""
    t = np.linspace(0.0, 1.0, bins + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        edges = lo * (1 - t) + hi * t
    edges[0], edges[-1] = lo, hi
    return edges


def _bin_shares(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of `v` in each bin of `edges` (left-closed bins, the last one closed on both sides)."""
    k = len(edges) - 1
    pos = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, k - 1)
    return np.bincount(pos, minlength=k).astype(float) / max(len(v), 1)


def marginals(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    schema: TableSchema,
    *,
    bins: int = MARGINAL_BINS,
    top: int = MARGINAL_TOP,
) -> pd.DataFrame:
    """Per-column distributions of both tables, the data of the report's marginal plots.

    numeric column: `bins` equal-width bins over [min, max] of both tables together (the last bin is closed);
    categorical column: the `top` categories most frequent in the real table (ties: in the synthetic table, then
    by name), the others pooled into one "other" row (only when there are others).
    Returns one row per (column, bin or category): column, kind ("numeric" / "categorical"), label (the
    category, or "[left, right)"), left, right (bin edges; NaN for categories), real_share, synthetic_share
    (fractions of each table's rows; each column's shares sum to 1 in each table).
    """
    for name, v, low in (("bins", bins, 1), ("top", top, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ConfigError(f"marginals: `{name}`={v!r} must be a whole number >= {low}")
    r, s = _both(real, synth, schema)
    rows = []
    for c in schema.columns:
        if c in schema.numeric:
            x, y = r[c].to_numpy(np.float64), s[c].to_numpy(np.float64)
            both = np.concatenate([x, y])
            lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 0.0)
            edges = _edges(lo, hi, int(bins) if hi > lo else 1)  # a constant column: one bin
            k = len(edges) - 1
            pr, ps = _bin_shares(x, edges), _bin_shares(y, edges)
            for i in range(k):
                label = f"[{edges[i]:.4g}, {edges[i + 1]:.4g}" + ("]" if i == k - 1 else ")")
                rows.append((c, "numeric", label, edges[i], edges[i + 1], pr[i], ps[i]))
        else:
            pr = r[c].astype(str).value_counts(normalize=True)
            ps = s[c].astype(str).value_counts(normalize=True)
            cats = pd.DataFrame({"real": pr, "synthetic": ps}).fillna(0.0)
            cats["name"] = cats.index
            cats = cats.sort_values(["real", "synthetic", "name"], ascending=[False, False, True], kind="stable")
            shown, rest = cats.iloc[: int(top)], cats.iloc[int(top) :]
            for name, v in shown.iterrows():
                rows.append((c, "categorical", str(name), np.nan, np.nan, v["real"], v["synthetic"]))
            if len(rest):
                other = "other" if "other" not in set(shown.index) else "(other)"
                rows.append((c, "categorical", other, np.nan, np.nan, rest["real"].sum(), rest["synthetic"].sum()))
    return pd.DataFrame(rows, columns=["column", "kind", "label", "left", "right", "real_share", "synthetic_share"])


# ---------------------------------------------------------------------------------------------- trend


@dataclass(frozen=True)
class TrendScore(Result):
    """`score`: mean over the defined column pairs that meet the thresholds; `pairs`: one row per pair (score NaN
    with `note` when undefined, e.g. a constant column in a correlation; `meets_threshold`; `association`,
    `real`, `synthetic`: the pair's Pearson r (numeric pairs, NaN for a constant column) or uncorrected Cramer's V
    of the binned table (other pairs) in each table); `n_undefined`: how many pairs were undefined."""

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
                rho_r = pearson(xr, yr) if np.ptp(xr) > 0 and np.ptp(yr) > 0 else np.nan
                rho_s = pearson(xs, ys) if np.ptp(xs) > 0 and np.ptp(ys) > 0 else np.nan
                note = f"constant column: {', '.join(const)}"
                rows.append((a, b, "CorrelationSimilarity", np.nan, note, False, "pearson", rho_r, rho_s))
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
                    "pearson",
                    rho_r,
                    rho_s,
                )
            )
        else:
            ar, as_, ka = disc[a]
            br, bs, kb = disc[b]
            k = ka * kb
            real_counts = np.bincount(ar * kb + br, minlength=k).astype(float)
            synth_counts = np.bincount(as_ * kb + bs, minlength=k).astype(float)
            tvd = tv_distance(real_counts, synth_counts)
            v_real = _cramers_v_plain(real_counts.reshape(ka, kb))
            v_synth = _cramers_v_plain(synth_counts.reshape(ka, kb))
            meets = association_threshold <= 0 or v_real > association_threshold
            rows.append((a, b, "ContingencySimilarity", 1.0 - tvd, "", meets, "cramers_v", v_real, v_synth))
    frame = pd.DataFrame(
        rows,
        columns=[
            "column_1",
            "column_2",
            "metric",
            "score",
            "note",
            "meets_threshold",
            "association",
            "real",
            "synthetic",
        ],
    )
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


OC_DISTINCT_WARN = 0.5
"""`quality_report` notes a one-class embedding that keeps fewer than this share of the distinct real rows."""
AUTHENTICITY = ("alaa", "synthcity")
"""`authenticity` definitions: "alaa" (Alaa et al. 2022, the default) or "synthcity" (its index mix-up)."""
VARIANTS = ("naive", "oc")


@dataclass(frozen=True)
class AlphaBetaScore(Result):
    """alpha_precision, beta_recall, authenticity of one variant ("naive": min-max scaled features; "oc": the
    one-class embedding) with the `authenticity_definition` used ("alaa" or "synthcity"; `authenticity_other`:
    the value by the other definition, for comparison); `curves`: the alpha grid with the alpha-precision and
    beta-coverage curves; n: rows used from each table; distinct_share: distinct real rows after the embedding over
    distinct real rows before it (1 for "naive"; well below 1 when the one-class network maps many rows onto the
    same point, e.g. dead ReLU units on unscaled features, and its scores say little)."""

    alpha_precision: float
    beta_recall: float
    authenticity: float
    authenticity_other: float
    n: int
    distinct_share: float
    variant: str
    authenticity_definition: str
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


def alpha_beta_curves(
    x: np.ndarray, y: np.ndarray, centre: np.ndarray | None = None
) -> tuple[pd.DataFrame, float, float, dict[str, float]]:
    """The alpha-precision / beta-recall / authenticity computation of Alaa et al. (2022) on two feature arrays
    of equal length, as synthcity's `AlphaPrecision.metrics` (the same for its naive and OC variants).

    x: (n, p) real rows; y: (n, p) synthetic rows (already scaled or embedded); centre: (p,) the real
    distribution's centre (default: the mean of x; the OC variant passes its one-class centre).
    With alphas = linspace(0, 1, 30):
    alpha-precision curve(a) = share of synthetic rows within the a-quantile of real distances to `centre`;
    beta-coverage curve(a) = share of real rows whose nearest synthetic row is no farther than their nearest
    other real row and lies within the a-quantile (over real rows) of distances of those nearest synthetic
    rows to the synthetic mean; each score = 1 - sum |alphas - curve| / sum alphas.
    Authenticity, by definition ("alaa", "synthcity"): "alaa" = share of synthetic rows farther from their nearest
    real row than that real row is from its own nearest other real row (Alaa et al., Sec. 3: a row closer than
    that is a copy); "synthcity" = synthcity's value, which indexes the real-to-real distances with the synthetic
    row nearest to each real row (an index mix-up reported upstream): a share of real rows, not synthetic rows.
    Returns (curves frame: alpha, alpha_precision, beta_coverage; alpha-precision; beta-recall;
    {definition: authenticity}).
    """
    alphas = np.linspace(0.0, 1.0, N_ALPHAS)
    centre = x.mean(0) if centre is None else np.asarray(centre, np.float64)
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
    sr, sr_idx = _nearest(y, x, 1)  # each synthetic row's nearest real row
    auth = {
        "alaa": float(np.mean(real_to_real[sr_idx[:, 0]] < sr[:, 0])),
        "synthcity": float(np.mean(real_to_real[nearest_synth] < real_to_synth)),
    }
    total = alphas.sum()
    curves = pd.DataFrame({"alpha": alphas, "alpha_precision": precision, "beta_coverage": coverage})
    return (
        curves,
        float(1 - np.abs(alphas - precision).sum() / total),
        float(1 - np.abs(alphas - coverage).sum() / total),
        auth,
    )


class OneClassEmbedding:
    """The one-class (Deep SVDD-like) network of synthcity's `AlphaPrecision` OC variant (synthcity
    `OneClassLayer` as `MetricEvaluator._get_oneclass_model` builds it; Alaa et al. 2022, Sec. 4).

    Network: Linear(p, hidden) -> ReLU -> (layers - 1) x [Linear(hidden, hidden) -> ReLU] -> Linear(hidden, p),
    all without bias (a bias could map every row onto the centre); the output has the input's width p.
    Training: full batch, `epochs` AdamW steps (lr, weight_decay) on loss = mean ||f(x) - c||^2 / nu, c = `centre`
    in every coordinate (synthcity's soft-boundary loss reduces to this: its radius term is overwritten). float32.
    Defaults are synthcity's: 4 layers of 32 units, 1000 epochs, lr 2e-3, weight decay 2e-3, nu 1e-2, c = 10.
    seed: the initial weights (torch's default Linear init from a generator seeded with it; the global RNG is
    left as it was). No dropout and no batching, so training has no other randomness.
    Fitted state: `net_` (the torch module), `centre_` (p,), `losses_` (epochs,).
    """

    def __init__(
        self,
        *,
        hidden: int = 32,
        layers: int = 4,
        epochs: int = 1000,
        lr: float = 2e-3,
        weight_decay: float = 2e-3,
        nu: float = 1e-2,
        centre: float = 10.0,
        seed: int = 0,
    ):
        self.hidden, self.layers, self.epochs, self.lr = hidden, layers, epochs, lr
        self.weight_decay, self.nu, self.centre, self.seed = weight_decay, nu, centre, seed

    def fit(self, x: np.ndarray) -> OneClassEmbedding:
        """x: (n, p) real rows (synthcity's input: raw numeric | one-hot categorical, not scaled)."""
        import torch

        from rote.nets import seeded

        for name in ("hidden", "layers", "epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"OneClassEmbedding: `{name}`={v!r} must be a whole number >= 1")
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or len(x) < 1 or not np.isfinite(x).all():
            raise DataError(f"OneClassEmbedding: x must be a finite (n, p) array with n >= 1, got shape {x.shape}")
        if np.abs(x).max(initial=0.0) > np.finfo(np.float32).max:  # the network runs in float32, as synthcity's
            raise DataError(
                "OneClassEmbedding: values beyond float32's range (3.4e38) would overflow the one-class network; "
                "scale the table first (`oc_input`='minmax' in alpha_precision_beta_recall)"
            )
        p = x.shape[1]
        widths = [p, *([int(self.hidden)] * int(self.layers)), p]
        with seeded(self.seed):
            mods: list[torch.nn.Module] = []
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
                mods.append(torch.nn.Linear(a, b, bias=False))
                if i < len(widths) - 2:
                    mods.append(torch.nn.ReLU())
            net = torch.nn.Sequential(*mods)
        c = torch.full((p,), float(self.centre))
        inputs = torch.from_numpy(x).float()  # (n, p)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        losses = np.empty(int(self.epochs))
        for epoch in range(int(self.epochs)):
            opt.zero_grad()
            loss = ((net(inputs) - c) ** 2).sum(1).mean() / self.nu
            loss.backward()
            opt.step()
            losses[epoch] = float(loss.detach())
        self.net_, self.centre_, self.losses_ = net.eval(), c.numpy().astype(np.float64), losses
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(n, p) rows -> (n, p) embedding (float64 of the float32 network output)."""
        import torch

        if not hasattr(self, "net_"):
            raise ConfigError("OneClassEmbedding is not fitted: call fit(real_rows) first")
        with torch.no_grad():
            return self.net_(torch.from_numpy(np.asarray(x, np.float64)).float()).numpy().astype(np.float64)


def alpha_precision_beta_recall(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    schema: TableSchema,
    *,
    seed: int = 0,
    max_rows: int | None = None,
    variant: str = "naive",
    authenticity: str = "alaa",
    oc_epochs: int = 1000,
    oc_input: str = "raw",
) -> AlphaBetaScore:
    """alpha-precision, beta-recall and authenticity (Alaa et al. 2022) as synthcity's `AlphaPrecision` computes
    them: variant "naive" (`delta_precision_alpha_naive`, ..., what the paper reports) or "oc" (`..._OC`).

    Features: [numeric | one-hot categorical] of every schema column (the TabCutMix evaluation passes the label
    as a categorical column). "naive": min-max scaled with the real table's range, centre = real mean. "oc":
    the unscaled features (as the TabCutMix evaluation hands them to synthcity) embedded by a
    `OneClassEmbedding` fitted on the real rows (synthcity's settings; `oc_epochs` full-batch steps, seeded
    with `seed`), centre = its fixed centre c = (10, ..., 10). Both then run `alpha_beta_curves`.
    oc_input: "raw" (synthcity as the TabCutMix evaluation calls it: Adult's fnlwgt, in the 1e5s, dominates the
    embedding, and the scores swing with the network's seed) or "minmax" (the naive variant's scaling first).
    synthcity needs equal row counts: the larger table is subsampled to the smaller one's size with `seed`
    (and both to `max_rows` when given: the two exact nearest-neighbour searches cost O(n^2), about 50 s for
    Adult's 32,561 rows on one busy CPU core).
    authenticity: "alaa" (default; Alaa et al.'s definition) or "synthcity" (synthcity's `authenticity_*`
    value, kept for parity with numbers computed by synthcity); see `alpha_beta_curves`.
    """
    if oc_input not in ("raw", "minmax"):
        raise ConfigError(f"`oc_input`={oc_input!r}; choose raw or minmax")
    if variant not in VARIANTS:
        raise ConfigError(f"`variant`={variant!r}; choose one of {', '.join(VARIANTS)}")
    if authenticity not in AUTHENTICITY:
        raise ConfigError(f"`authenticity`={authenticity!r}; choose one of {', '.join(AUTHENTICITY)}")
    r, s = _both(real, synth, schema)
    n = min(len(r), len(s))
    if max_rows is not None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 2:
            raise ConfigError(f"`max_rows`={max_rows!r} must be a whole number >= 2 (or None for all rows)")
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
    centre = None
    if variant == "naive" or oc_input == "minmax":
        lo, span = x.min(0), np.ptp(x, 0)
        span = np.where(span > 0, span, 1.0)  # a constant real column maps to 0 (as sklearn's MinMaxScaler)
        x, y = (x - lo) / span, (y - lo) / span
    distinct = 1.0
    if variant == "oc":
        emb = OneClassEmbedding(epochs=oc_epochs, seed=seed).fit(x)
        before = len(np.unique(x, axis=0))
        x, y, centre = emb.transform(x), emb.transform(y), emb.centre_
        distinct = len(np.unique(x, axis=0)) / before
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise DataError(
                "alpha_precision_beta_recall: the one-class network's output overflowed (values too large for "
                "float32 training); use `oc_input`='minmax'"
            )
    curves, a, b, auth = alpha_beta_curves(x, y, centre)
    return AlphaBetaScore(
        alpha_precision=a,
        beta_recall=b,
        authenticity=auth[authenticity],
        authenticity_other=auth[next(d for d in AUTHENTICITY if d != authenticity)],
        n=n,
        distinct_share=distinct,
        variant=variant,
        authenticity_definition=authenticity,
        curves=curves,
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

    alpha_precision, beta_recall, authenticity: the naive variants; `*_oc`: the one-class variants (None with
    `one_class=False`); authenticity_definition: "alaa" or "synthcity". mle_auc and dcr need `real_test`;
    `notes` says why anything is missing. Tables: shape_columns, trend_pairs (with each pair's real and
    synthetic association), alpha_beta_curves (naive and, when computed, `*_oc` curves), marginals.
    """

    shape: float
    trend: float
    alpha_precision: float
    beta_recall: float
    authenticity: float
    alpha_precision_oc: float | None
    beta_recall_oc: float | None
    authenticity_oc: float | None
    authenticity_definition: str
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
    marginals: pd.DataFrame = table_field("marginals")

    def summary(self) -> str:
        def pct(v: float | None) -> str:
            return "n/a" if v is None or v != v else f"{v:.2%}"

        lines = [
            f"shape            {pct(self.shape)}   trend {pct(self.trend)}",
            f"alpha-precision  {pct(self.alpha_precision)}   beta-recall {pct(self.beta_recall)}   "
            f"authenticity {pct(self.authenticity)} (naive)",
            f"alpha-precision  {pct(self.alpha_precision_oc)}   beta-recall {pct(self.beta_recall_oc)}   "
            f"authenticity {pct(self.authenticity_oc)} (one-class)",
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
    one_class: bool = True,
    authenticity: str = "alaa",
    oc_epochs: int = 1000,
) -> QualityResult:
    """All quality metrics of `synth` against `real_train` (and `real_test` for MLE and DCR) in one call.

    Shape, trend, alpha/beta and C2ST compare `synth` with `real_train` (the paper compares with the training
    split). MLE trains on `synth` and tests on `real_test` (needs a categorical `schema.target`); the DCR share
    uses `real_test` as holdout (`dcr=False` skips it). alpha_beta_max_rows: subsample for alpha/beta (see
    `alpha_precision_beta_recall`). one_class: also the OC variants (`oc_epochs` full-batch steps of the
    one-class network); authenticity: "alaa" or "synthcity" (both variants). On full Adult (32,561 synthetic
    rows) on one busy core: shape + trend 1 s, alpha/beta 50 s (all rows), C2ST 13 s, MLE 3 s, DCR 28 s.
    """
    notes: list[str] = []
    sh = shape_score(real_train, synth, schema)
    tr = trend_score(real_train, synth, schema)
    if tr.n_undefined:
        notes.append(f"trend: {tr.n_undefined} of {tr.n_pairs} column pairs undefined (constant column) and left out")
    ab = alpha_precision_beta_recall(
        real_train, synth, schema, seed=seed, max_rows=alpha_beta_max_rows, authenticity=authenticity
    )
    curves = ab.curves
    oc = None
    if one_class:
        try:
            oc = alpha_precision_beta_recall(
                real_train,
                synth,
                schema,
                seed=seed,
                max_rows=alpha_beta_max_rows,
                variant="oc",
                authenticity=authenticity,
                oc_epochs=oc_epochs,
            )
        except DataError as e:  # huge values: the naive scores stand, the OC ones say why they are missing
            notes.append(f"one-class alpha/beta not computed: {e}")
    if oc is not None and oc.distinct_share < OC_DISTINCT_WARN:
        notes.append(
            f"one-class alpha/beta: the network maps the real rows onto {oc.distinct_share:.0%} as many distinct "
            "points as there are distinct rows (collapsed units on unscaled features, as synthcity's network); "
            "its scores say little here (`oc_input`='minmax' scales first)"
        )
    if oc is not None:
        curves = curves.assign(
            alpha_precision_oc=oc.curves["alpha_precision"].to_numpy(),
            beta_coverage_oc=oc.curves["beta_coverage"].to_numpy(),
        )
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
        alpha_precision_oc=None if oc is None else oc.alpha_precision,
        beta_recall_oc=None if oc is None else oc.beta_recall,
        authenticity_oc=None if oc is None else oc.authenticity,
        authenticity_definition=authenticity,
        c2st=c2,
        mle_auc=mle,
        dcr_share=share,
        dcr=dcr_info,
        n_real=len(real_train),
        n_synthetic=len(synth),
        notes=notes,
        shape_columns=sh.columns,
        trend_pairs=tr.pairs,
        alpha_beta_curves=curves,
        marginals=marginals(real_train, synth, schema),
    )
