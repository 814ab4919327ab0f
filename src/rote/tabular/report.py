"""Reports of the tabular domain: audit, train, augment, quality and experiment runs.

- `audit_report` / `audit_outputs`: an audit's report.html (headline numbers, the d1/d2 histogram, the most-copied
  training rows beside their memorized copies) and its plots; `rote tabular audit` and `rote tabular train`.
- `association_heatmap`, `cluster_dendrogram`, `quality_bars`, `quality_table`, `augment_report`: TabCutMixPlus's
  column association and clusters, quality metrics of several synthetic tables side by side; `rote tabular augment`.
- `quality_plots`, `marginal_figure`, `trend_heatmaps`, `quality_html`: report.html of `rote tabular quality`
  (marginals per column, real / synthetic / difference trend heat maps, naive and one-class alpha/beta curves).
- `experiment_plots`, `experiment_report`: memorization against epoch, training size and feature fraction, and the
  paper-style table of `rote tabular experiment`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rote.core.errors import ConfigError
from rote.report import Report, figure_to_png, ratio_histogram
from rote.report.plots import new_figure
from rote.tabular.audit import AuditResult
from rote.tabular.quality import MARGINAL_BINS, MARGINAL_TOP

COPIES_PER_ROW = 3  # memorized synthetic rows shown under each most-copied training row

_DISTANCE_WORDS = {
    "tabcutmix": (
        "the TabCutMix code's distance: Euclidean distance on the raw numeric values, min-max rescaled "
        "per synthetic row across all training rows, plus the number of categorical mismatches, divided "
        "by the number of columns"
    ),
    "gower": (
        "a Gower-style distance: the mean over columns of |a - b| / range (capped at 1) for numeric columns "
        "and 0/1 mismatch for categorical ones"
    ),
    "l2": "Euclidean distance on standardized numeric columns and one-hot encoded categorical columns",
}


def _pct(x: float) -> str:
    return "undefined" if x is None or not np.isfinite(x) else f"{x:.2%}"


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _summary(result: AuditResult) -> dict[str, Any]:
    n_mem = int(result.rows["memorized"].sum())
    n_copied = int((result.train_rows["n_memorized"] > 0).sum())
    items: dict[str, Any] = {
        "memorization ratio": f"{_pct(result.memorization_ratio)} ({n_mem:,} of {result.n_synthetic:,} synthetic rows)",
        "threshold (d1/d2 <)": f"{result.threshold:.4g}",
        "Mem-AUC (exact)": f"{result.mem_auc:.4f}",
        "Mem-AUC (paper's 10-point grid)": f"{result.mem_auc_grid:.4f}",
        "exact copies": result.exact_copies,
        "training rows copied": n_copied,
        "n_train": result.n_train,
        "n_synthetic": result.n_synthetic,
        "distance": result.distance,
        "label column in distance": (result.include_target if result.schema.target is not None else "no label column"),
        "undefined ratios (0/0)": result.n_undefined_ratio,
        "unseen categories": (
            ", ".join(f"{k}: {v:,}" for k, v in result.unseen_categories.items())
            if result.unseen_categories
            else "none"
        ),
    }
    if result.dcr:
        d = result.dcr
        items.update(
            {
                "DCR: closer to train than holdout": (
                    f"{_pct(d['share_closer_to_train'])} (ideal about {_pct(d['ideal_share'])})"
                ),
                "DCR: ties": _pct(d["share_ties"]),
                "DCR: median to train / holdout": f"{d['median_dcr_train']:.4g} / {d['median_dcr_holdout']:.4g}",
                "DCR: distance, holdout rows": f"{d['distance']}, {d['n_holdout']:,}",
            }
        )
    return items


def _explanation(result: AuditResult) -> list[str]:
    t = result.threshold
    words = _DISTANCE_WORDS.get(result.distance, f"the {result.distance} distance")
    text = [
        f"A synthetic row counts as memorized when its nearest training row is less than {t:.3g} times as far "
        f"away as its second-nearest training row (d1/d2 < {t:.3g}): it sits much closer to one particular "
        "training row than to any other, so it looks like a copy of that row rather than a new sample. This is "
        "the distance-ratio criterion of Fang et al. (ICML 2025). The memorization ratio is the share of synthetic "
        "rows that meet it; Mem-AUC averages that share over all thresholds from 0 to 1, so it does not depend "
        "on the choice of threshold.",
        f"Distances are measured with {words}.",
    ]
    if result.n_undefined_ratio:
        text.append(
            f"{result.n_undefined_ratio:,} synthetic rows have distance 0 to two training rows (the "
            "training table holds duplicates); their ratio 0/0 is undefined and they are not counted as "
            "memorized."
        )
    return text


def _most_copied(result: AuditResult, top: int) -> pd.DataFrame:
    """Training rows with at least one memorized copy, most copied first (ties: more often nearest, then lower
    index), at most `top` of them."""
    tr = result.train_rows[result.train_rows["n_memorized"] > 0]
    return tr.sort_values(
        ["n_memorized", "n_nearest", "train_row"], ascending=[False, False, True], kind="stable"
    ).head(top)


def _differs(a: Any, b: Any) -> bool:
    a_na, b_na = pd.isna(a), pd.isna(b)
    if a_na or b_na:
        return not (a_na and b_na)
    try:
        return bool(a != b)
    except (TypeError, ValueError):
        return str(a) != str(b)


def copies_table(
    result: AuditResult, train_row: int, n_copies: int = COPIES_PER_ROW
) -> tuple[pd.DataFrame, dict[int, set[str]]]:
    """One training row and up to `n_copies` of its memorized synthetic copies (lowest ratio first), as rows of
    one frame with a first column "row"; and {row position: columns where the copy differs from the training
    row}."""
    cols = list(result.train.columns)
    label = "row" if "row" not in cols else "(row)"
    rows = result.rows
    mine = rows[(rows["nearest_train_row"] == train_row) & rows["memorized"]]
    mine = mine.sort_values(["ratio", "synthetic_row"], kind="stable").head(n_copies)

    reference = result.train.iloc[int(train_row)].tolist()
    records = [[f"train #{int(train_row)}", *reference]]
    highlight: dict[int, set[str]] = {}
    for pos, (j, r, copy_of) in enumerate(zip(mine["synthetic_row"], mine["ratio"], mine["exact_copy_of"]), start=1):
        values = result.synthetic.iloc[int(j)].tolist()
        tag = "exact copy" if int(copy_of) == int(train_row) else f"ratio {r:.3g}"
        records.append([f"synthetic #{int(j)} ({tag})", *values])
        diff = {str(c) for c, a, b in zip(cols, reference, values) if _differs(a, b)}
        if diff:
            highlight[pos] = diff
    frame = pd.DataFrame(records, columns=[label, *[str(c) for c in cols]], dtype=object)
    return frame, highlight


def _histogram_png(result: AuditResult) -> bytes:
    h = result.ratio_histogram
    fig = ratio_histogram(h["edges"], h["counts"], result.threshold, undefined=h.get("undefined", 0))
    return figure_to_png(fig)


def training_plots(history: pd.DataFrame | None, curve: pd.DataFrame | None) -> dict[str, bytes]:
    """PNG plots of a training run: `train_loss` (mean training loss per epoch, and its parts when logged) and
    `mem_vs_epoch` (the MemorizationHook's memorization ratio per checked epoch); each only when there is data."""
    out: dict[str, bytes] = {}
    if history is not None and len(history) and "loss" in history:
        fig = new_figure(7.5, 3.6)
        ax = fig.add_subplot()
        for col in ("loss", "loss_gaussian", "loss_multinomial"):
            if col in history:
                ax.plot(history["epoch"], history[col], label=col.replace("_", " "), lw=1.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (epoch mean)")
        ax.set_title("Training loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        out["train_loss"] = figure_to_png(fig)
    if curve is not None and len(curve):
        fig = new_figure(7.5, 3.6)
        ax = fig.add_subplot()
        ax.plot(curve["epoch"], 100 * curve["memorization_ratio"].to_numpy(float), marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("memorization ratio (%)")
        ax.set_title("Memorization during training (sampled rows per check)")
        ax.grid(alpha=0.3)
        out["mem_vs_epoch"] = figure_to_png(fig)
    return out


def _build_report(
    result: AuditResult,
    *,
    config: Mapping[str, Any] | None,
    top: int,
    title: str,
    hist_png: bytes,
    training: Mapping[str, bytes] | None = None,
) -> str:
    if not isinstance(top, int) or top < 0:
        raise ConfigError(f"top must be a non-negative integer, got {top!r}")
    report = Report(
        title,
        subtitle=f"{result.n_synthetic:,} synthetic rows audited against {result.n_train:,} "
        f"training rows, distance {result.distance}",
    )
    report.add_summary(_summary(result))

    report.add_heading("What is measured")
    for paragraph in _explanation(result):
        report.add_text(paragraph)

    if training:
        report.add_heading("Training")
        if "train_loss" in training:
            report.add_image(
                training["train_loss"], alt="Training loss per epoch", caption="Mean training loss per epoch."
            )
        if "mem_vs_epoch" in training:
            report.add_image(
                training["mem_vs_epoch"],
                alt="Memorization ratio versus epoch",
                caption="Memorization ratio of rows sampled at each check (`--every`), against the original "
                "training rows. One training run: checks of a few hundred rows vary by several points.",
            )

    if result.n_far_numeric:
        from rote.tabular.audit import FAR_NUMERIC_SD

        report.add_heading("Warning: memorized rows with far-apart numbers")
        report.add_text(
            f"{result.n_far_numeric:,} memorized synthetic rows differ from their nearest training row by more than "
            f"{FAR_NUMERIC_SD:g} training standard deviation(s) in some numeric column. The {result.distance} "
            "distance min-max rescales the numeric distance of each synthetic row over all training rows, so a "
            "row whose categories all match can count as a copy while its numbers are far apart. The nearest "
            "pairs with the largest gaps:",
            note=True,
        )
        far = result.rows[result.rows["memorized"] & (result.rows["max_numeric_gap_sd"] > FAR_NUMERIC_SD)]
        far = far.sort_values("max_numeric_gap_sd", ascending=False).head(5)
        num = list(result.schema.numeric)
        pairs = []
        for _, r in far.iterrows():
            syn, tr = result.synthetic.iloc[int(r["synthetic_row"])], result.train.iloc[int(r["nearest_train_row"])]
            pairs.append({"row": f"synthetic #{int(r['synthetic_row'])}", **{c: syn[c] for c in num}})
            pairs.append(
                {
                    "row": f"train #{int(r['nearest_train_row'])} (gap {r['max_numeric_gap_sd']:.3g} sd)",
                    **{c: tr[c] for c in num},
                }
            )
        report.add_table(pd.DataFrame(pairs), caption="numeric columns of each flagged pair", digits=None)

    report.add_heading("Distance ratios")
    report.add_image(
        hist_png,
        alt="Histogram of the distance ratio d1/d2 of synthetic rows",
        caption=f"Synthetic rows left of the dashed line (d1/d2 < {result.threshold:.3g}) are "
        "memorized. Ratios near 1 mean a row is about as close to its second-nearest training "
        "row as to its nearest: no single row is copied.",
    )

    report.add_heading("Most-copied training rows")
    most = _most_copied(result, top)
    if most.empty:
        report.add_text(
            f"No synthetic row is memorized at threshold {result.threshold:.3g}: no training row is copied."
        )
    else:
        n_copied = int((result.train_rows["n_memorized"] > 0).sum())
        report.add_text(
            f"{n_copied:,} training rows are the nearest row of at least one memorized synthetic row; "
            f"the {len(most):,} most copied are shown, each with up to {COPIES_PER_ROW} of its memorized "
            "copies (closest first). Highlighted cells differ from the training row."
        )
        overview = most.rename(
            columns={
                "train_row": "train row",
                "n_memorized": "memorized copies",
                "n_nearest": "nearest of",
                "n_exact_copies": "exact copies",
            }
        )
        overview = overview[["train row", "memorized copies", "exact copies", "nearest of"]].reset_index(drop=True)
        report.add_table(
            overview,
            caption="Synthetic rows per training row (nearest of: synthetic rows whose "
            "nearest training row it is, memorized or not)",
        )
        for i, n_mem, n_exact in zip(most["train_row"], most["n_memorized"], most["n_exact_copies"]):
            frame, highlight = copies_table(result, int(i))
            report.add_heading(
                f"train #{int(i)}: {_count(int(n_mem), 'memorized copy', 'memorized copies')}, {int(n_exact):,} exact",
                level=3,
            )
            report.add_table(frame, highlight=highlight, digits=None)

    if config is not None:
        report.add_config(config)
    return report.render()


def audit_report(
    result: AuditResult,
    *,
    config: Mapping[str, Any] | None = None,
    top: int = 10,
    title: str = "Tabular memorization audit",
) -> str:
    """report.html of an audit as one self-contained HTML string.

    Holds the headline numbers, a plain-language statement of the criterion, the histogram of d1/d2, and the
    `top` most-copied training rows, each beside up to 3 of its memorized synthetic copies with differing cells
    highlighted. `config` (e.g. the run's config.json) is shown in a collapsed block; nothing time-dependent is
    added otherwise, so the same result gives the same HTML.
    """
    return _build_report(result, config=config, top=top, title=title, hist_png=_histogram_png(result))


def audit_outputs(
    result: AuditResult,
    *,
    top: int = 10,
    title: str = "Tabular memorization audit",
    history: pd.DataFrame | None = None,
    curve: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """What `RunFolder.finish` writes for an audit besides its tables (rows.parquet, train_rows.parquet) and
    results.json: ratio_hist.png and report.html (the `top` most-copied training rows), as keyword arguments
    `plots` and `report` (a function of the run's config). With a training run's `history` / `curve` (from
    `rote tabular train`) also train_loss.png and mem_vs_epoch.png, shown in the report."""
    if not isinstance(top, int) or top < 0:
        raise ConfigError(f"`top` must be a non-negative integer, got {top!r}")
    hist_png = _histogram_png(result)
    training = training_plots(history, curve)
    return {
        "plots": {"ratio_hist": hist_png, **training},
        "report": lambda config: _build_report(
            result, config=config, top=top, title=title, hist_png=hist_png, training=training
        ),
    }


# ---------------------------------------------------------------------------------------------- augment

QUALITY_METRICS: tuple[tuple[str, str], ...] = (
    ("shape", "Shape"),
    ("trend", "Trend"),
    ("alpha_precision", "α-precision"),
    ("beta_recall", "β-recall"),
    ("c2st", "C2ST"),
    ("mle_auc", "MLE AUC"),
    ("dcr_share", "DCR share"),
)
"""(attribute of QualityResult, label) in the order of the paper's tables."""


def _check_square(association: pd.DataFrame) -> None:
    if association.shape[0] != association.shape[1] or list(association.index) != list(association.columns):
        raise ConfigError("association must be a square frame with the same labels on its index and columns")


def association_heatmap(
    association: pd.DataFrame,
    clusters: Sequence[Sequence[str]] | None = None,
    title: str = "Column association (label included)",
) -> Figure:
    """Heat map of a (C, C) association frame in [0, 1]; columns ordered cluster by cluster (when `clusters` is
    given) with each multi-column cluster outlined. Cells show values to two decimals when C <= 20."""
    _check_square(association)
    order = [c for cl in clusters for c in cl] if clusters else list(association.columns)
    if sorted(order) != sorted(association.columns):
        raise ConfigError("clusters must list every column of the association exactly once")
    m = association.loc[order, order].to_numpy(np.float64)
    n = len(order)
    size = max(4.5, min(12.0, 0.45 * n + 2.5))
    fig = new_figure(size + 1.2, size)
    ax = fig.add_subplot()
    im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), order, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), order, fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="black" if m[i, j] > 0.6 else "white",
                )
    if clusters:
        start = 0
        for cl in clusters:
            k = len(cl)
            if k > 1:
                ax.add_patch(_rect(start - 0.5, k))
            start += k
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="|Pearson r| · Cramér's V · η")
    return fig


def _rect(at: float, k: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((at, at), k, k, fill=False, edgecolor="#d1495b", linewidth=2.0)


def cluster_dendrogram(
    association: pd.DataFrame, cut: float = 0.3, title: str = "Average-linkage clustering on 1 − association"
) -> Figure:
    """Dendrogram of the columns (average linkage on 1 - association) with the cut as a dashed line: columns
    joined below the line form one TabCutMixPlus cluster."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    _check_square(association)
    cols = [str(c) for c in association.columns]
    fig = new_figure(max(6.0, 0.4 * len(cols) + 2), 4.0)
    ax = fig.add_subplot()
    if len(cols) < 2:
        ax.text(0.5, 0.5, "one column: nothing to cluster", ha="center", va="center", transform=ax.transAxes)
        return fig
    a = association.to_numpy(np.float64)
    dist = 1.0 - np.clip(np.abs((a + a.T) / 2), 0.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="average")
    dendrogram(z, labels=cols, ax=ax, color_threshold=cut, above_threshold_color="#8a8f98", leaf_rotation=60)
    ax.axhline(cut, color="#d1495b", linestyle="--", linewidth=1.2, label=f"cut {cut:g}")
    ax.set_ylabel("1 − association")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper right")
    ax.set_title(title)
    for label in ax.get_xticklabels():
        label.set_fontsize(8)
        label.set_ha("right")
    return fig


def quality_bars(results: Mapping[str, Any], title: str = "Quality of synthetic tables") -> Figure:
    """Grouped bars: one group per metric of `QUALITY_METRICS`, one bar per entry of `results`
    (name -> QualityResult or a dict with those keys; values are fractions in [0, 1]; missing ones are skipped)."""
    if not results:
        raise ConfigError("quality_bars needs at least one result")
    names = list(results)

    def get(r: Any, key: str) -> float:
        v = r.get(key) if isinstance(r, Mapping) else getattr(r, key, None)
        return np.nan if v is None else float(v)

    metrics = [(k, lab) for k, lab in QUALITY_METRICS if any(np.isfinite(get(results[n], k)) for n in names)]
    fig = new_figure(max(7.0, 1.2 * len(metrics) + 2), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(metrics))
    for i, n in enumerate(names):
        vals = np.array([get(results[n], k) for k, _ in metrics])
        ax.bar(x + (i - (len(names) - 1) / 2) * width, np.nan_to_num(vals), width, label=n)
    ax.set_xticks(x, [lab for _, lab in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (higher = closer to real; DCR ideal ≈ train share)")
    ax.legend(fontsize=8, ncols=min(4, len(names)))
    ax.set_title(title)
    return fig


def quality_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """One row per result, the metrics of `QUALITY_METRICS` as percentages (2 decimals), like the paper."""
    rows = []
    for name, r in results.items():
        row: dict[str, Any] = {"method": name}
        for key, label in QUALITY_METRICS:
            v = r.get(key) if isinstance(r, Mapping) else getattr(r, key, None)
            row[label] = None if v is None or not np.isfinite(v) else round(100 * float(v), 2)
        rows.append(row)
    return pd.DataFrame(rows)


def augment_plots(augmenter: Any) -> dict[str, bytes]:
    """PNGs of a fitted augmenter for its run folder: TabCutMixPlus's association heat map and dendrogram (none for
    the other augmenters)."""
    clusters = getattr(augmenter, "clusters_", None)
    if clusters is None:
        return {}
    return {
        "association": figure_to_png(association_heatmap(augmenter.association_, clusters)),
        "dendrogram": figure_to_png(cluster_dendrogram(augmenter.association_, augmenter.cut)),
    }


def augment_report(
    augmenter: Any,
    *,
    plots: Mapping[str, bytes] | None = None,
    quality: Mapping[str, Any] | None = None,
    ood: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    title: str = "Training-set augmentation",
) -> str:
    """report.html (one self-contained string) for a fitted augmenter.

    augmenter: fitted; for TabCutMixPlus its association heat map, dendrogram and clusters are shown.
    plots: `augment_plots(augmenter)` when the caller already made them (the run folder writes the same PNGs).
    quality: name -> QualityResult (or dict), shown as a table and grouped bars.
    ood: name -> OODResult (or a float rate), shown as a table.
    """
    if not hasattr(augmenter, "table_"):
        raise ConfigError("augment_report needs a fitted augmenter (call fit(table, schema) first)")
    name = type(augmenter).__name__
    report = Report(
        title, subtitle=f"{name} fitted on {len(augmenter.table_):,} rows x {len(augmenter.columns_)} columns"
    )
    summary: dict[str, Any] = {
        "augmenter": name,
        "ratio": getattr(augmenter, "ratio", None),
        "mode": getattr(augmenter, "mode", None),
        "seed": getattr(augmenter, "seed", None),
    }
    clusters = getattr(augmenter, "clusters_", None)
    if clusters is not None:
        summary["clusters"] = len(clusters)
        summary["multi-column clusters"] = sum(len(c) > 1 for c in clusters)
    report.add_summary({k: v for k, v in summary.items() if v is not None})
    if clusters is not None:
        report.add_heading("Column association and clusters")
        report.add_text(
            "TabCutMixPlus swaps whole clusters of associated columns between two rows of the same "
            "class, so values that go together (e.g. education and education-num) stay together. "
            "Association: |Pearson r| for two numeric columns, bias-corrected Cramér's V for two "
            "categorical ones, correlation ratio η for a mixed pair; clusters: average linkage on "
            f"1 − association cut at {augmenter.cut:g}."
        )
        pngs = dict(plots) if plots else augment_plots(augmenter)
        report.add_image(
            pngs["association"],
            alt="association heat map",
            caption="Columns ordered by cluster; red squares outline clusters of more than one column.",
        )
        report.add_image(
            pngs["dendrogram"],
            alt="dendrogram",
            caption="Columns joined below the dashed line form one cluster.",
        )
        report.add_table(
            pd.DataFrame({"cluster": range(1, len(clusters) + 1), "columns": [", ".join(c) for c in clusters]}),
            caption="Clusters",
        )
    if ood:
        report.add_heading("Out-of-distribution rate of new rows")
        rows = []
        for k, v in ood.items():
            rate = v if isinstance(v, (int, float)) else v.ood_rate
            acc = None if isinstance(v, (int, float)) else v.detector_accuracy
            rows.append(
                {
                    "method": k,
                    "OOD rate %": round(100 * rate, 2),
                    "detector accuracy %": None if acc is None else round(100 * acc, 2),
                }
            )
        report.add_table(
            pd.DataFrame(rows),
            caption="Share of new rows a real-vs-perturbed classifier flags as "
            "perturbed (Fang et al. 2025, App. D.4.6)",
        )
    if quality:
        report.add_heading("Quality")
        report.add_table(quality_table(quality), caption="Percent; higher is closer to the real data")
        report.add_figure(quality_bars(quality), alt="quality bars")
    if config is not None:
        report.add_config(config)
    return report.render()


# ---------------------------------------------------------------------------------------------- experiment


def _label(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    return (
        ", ".join(f"{row[k]}" if k in ("generator", "augmentation", "dataset") else f"{k}={row[k]}" for k in keys)
        or "all"
    )


def _lines_plot(
    frame: pd.DataFrame, x: str, y: str, err: str, keys: list[str], *, xlabel: str, title: str, logx: bool = False
):
    fig = new_figure(7.5, 4.0)
    ax = fig.add_subplot()
    groups = frame.groupby(keys, sort=False, dropna=False) if keys else [((), frame)]
    for key, g in groups:
        g = g.sort_values(x)
        key = key if isinstance(key, tuple) else (key,)
        xs, ys = g[x].to_numpy(float), 100 * g[y].to_numpy(float)
        sd = 100 * np.nan_to_num(g[err].to_numpy(float))
        (line,) = ax.plot(xs, ys, marker="o", ms=3, label=_label(dict(zip(keys, key)), keys))
        ax.fill_between(xs, ys - sd, ys + sd, color=line.get_color(), alpha=0.15, linewidth=0)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("memorization ratio (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(ax.get_lines()) > 1:
        ax.legend(fontsize=8)
    return fig


def experiment_plots(result) -> dict[str, bytes]:
    """PNG bytes by file name; a sweep plot only when its axis has more than one value."""
    out: dict[str, bytes] = {}
    axes = result.axes()
    curves = result.curves
    if not curves.empty:
        keys = [a for a in axes if a in curves.columns and curves[a].nunique() > 1]
        out["mem_vs_epoch.png"] = figure_to_png(
            _lines_plot(
                curves,
                "epoch",
                "mem_mean",
                "mem_std",
                keys,
                xlabel="epoch",
                title="Memorization during training (one run per point)",
            )
        )
    table = result.paper_table
    for axis, name, xlabel, title in (
        ("train_fraction", "mem_vs_size.png", "fraction of training rows", "Training-set size"),
        ("feature_fraction", "mem_vs_features.png", "fraction of feature columns kept", "Feature dimension"),
    ):
        if axis in table.columns and table[axis].nunique() > 1:
            keys = [a for a in axes if a != axis and a in table.columns and table[a].nunique() > 1]
            out[name] = figure_to_png(
                _lines_plot(
                    table,
                    axis,
                    "mem_ratio_mean",
                    "mem_ratio_std",
                    keys,
                    xlabel=xlabel,
                    title=title,
                    logx=axis == "train_fraction",
                )
            )
    return out


def experiment_report(
    result,
    *,
    plots: Mapping[str, bytes],
    config: Mapping[str, Any] | None = None,
    title: str = "Tabular memorization experiment",
) -> str:
    """report.html of an experiment grid as one self-contained HTML string."""
    report = Report(
        title, subtitle="Fang et al., ICML 2025: memorization of tabular diffusion models, TabCutMix and TabCutMixPlus"
    )
    fixed = result.grid.get("fixed", {})
    report.add_summary(
        {
            "grid points": result.n_points,
            "finished": result.n_done,
            "reused from an earlier run": result.n_reused,
            "failed": result.n_failed,
            **{
                f"{k}": v
                for k, v in fixed.items()
                if k in ("dataset", "generator", "epochs", "rows", "preset", "distance")
            },
        }
    )
    report.add_heading("Memorization and quality (mean ± std over seeds)")
    if result.paper_table.empty:
        report.add_text("No grid point finished; see the failures below.")
    else:
        report.add_table(
            result.formatted_table(),
            caption="Memorization ratio (d1/d2 < 1/3, lower is better), its "
            "relative reduction against no augmentation, and quality (higher is better; DCR: ~50% "
            "is ideal)",
            max_rows=500,
        )
    report.add_text(
        "Memorization ratio: the share of synthetic rows whose nearest training row is less than a "
        "third as far as the second nearest, against the original (not augmented) training rows. "
        "Improv.: (none - method) / none of the mean ratios, same other settings. OOD %: share of the "
        "augmented rows a real-versus-perturbed classifier flags.",
        note=True,
    )
    captions = {
        "mem_vs_epoch.png": "Memorization ratio during training, measured by a hook every few epochs "
        "(mean over seeds; band: ± one std).",
        "mem_vs_size.png": "Final memorization ratio against the share of training rows used.",
        "mem_vs_features.png": "Final memorization ratio against the share of feature columns kept.",
    }
    for name, png in plots.items():
        report.add_heading(captions[name].split(",")[0].split(" against")[0].rstrip("."), level=3)
        report.add_image(png, alt=name, caption=captions[name])
    if not result.failures.empty:
        report.add_heading("Failed points")
        report.add_table(
            result.failures, caption="Run the same command again to retry them (finished points are kept)."
        )
    cols = [c for c in result.points.columns if c not in ("error",)]
    report.add_heading("All points")
    report.add_table(result.points[cols], caption="One row per grid point (points.parquet)", max_rows=500, digits=4)
    if config:
        report.add_config(config)
    return report.render()


MARGINAL_GRID_COLUMNS = 3  # subplots per row of the marginal grid


def marginal_figure(marginals: pd.DataFrame, title: str = "Marginals: real vs synthetic") -> Figure:
    """A grid of one subplot per column of a `rote.tabular.quality.marginals` frame: side-by-side bars of the real
    and synthetic shares of each numeric bin or category (the truncated category lists end with "other").
    Each subplot has two bar containers labelled "real" and "synthetic" whose heights are the shares in %."""
    need = {"column", "kind", "label", "left", "right", "real_share", "synthetic_share"}
    if not need <= set(marginals.columns):
        raise ConfigError(f"`marginals` needs the columns {sorted(need)} (from rote.tabular.quality.marginals)")
    cols = list(dict.fromkeys(marginals["column"].astype(str)))
    n = max(len(cols), 1)
    ncols = min(MARGINAL_GRID_COLUMNS, n)
    nrows = -(-n // ncols)
    fig = new_figure(3.6 * ncols + 0.4, 2.7 * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[len(cols) :]:
        ax.set_visible(False)
    names = marginals["column"].astype(str)
    for ax, c in zip(axes, cols):
        m = marginals[names == c]
        real, synth = 100 * m["real_share"].to_numpy(float), 100 * m["synthetic_share"].to_numpy(float)
        if (m["kind"] == "numeric").all():
            left, right = m["left"].to_numpy(float), m["right"].to_numpy(float)
            with np.errstate(over="ignore", invalid="ignore"):
                width = np.where(np.isfinite(right - left), right - left, 0.0)
                mid = left / 2 + right / 2
            w = np.where(width > 0, width / 2, 1.0)
            ax.bar(mid - w / 2, real, w, label="real", color="#4c72b0", alpha=0.85)
            ax.bar(mid + w / 2, synth, w, label="synthetic", color="#dd8452", alpha=0.85)
            ax.set_xlabel(c, fontsize=8)
        else:
            x = np.arange(len(m))
            ax.bar(x - 0.2, real, 0.4, label="real", color="#4c72b0")
            ax.bar(x + 0.2, synth, 0.4, label="synthetic", color="#dd8452")
            labels = [s if len(s) <= 14 else s[:13] + "…" for s in m["label"].astype(str)]
            ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
            ax.set_xlabel(c, fontsize=8)
        ax.set_ylabel("% of rows", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(c, fontsize=9)
    if cols:
        axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def _pair_matrix(pairs: pd.DataFrame, value: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(columns, (C, C) symmetric matrix of `value` per pair; NaN on the diagonal and for missing pairs)."""
    a, b = pairs["column_1"].astype(str).tolist(), pairs["column_2"].astype(str).tolist()
    cols = list(dict.fromkeys([*a, *b]))
    idx = {c: i for i, c in enumerate(cols)}
    m = np.full((len(cols), len(cols)), np.nan)
    for u, v, x in zip(a, b, value):
        m[idx[u], idx[v]] = m[idx[v], idx[u]] = x
    return cols, m


def trend_heatmaps(pairs: pd.DataFrame) -> dict[str, Figure]:
    """The pairwise-trend heat maps of a `trend_score(...).pairs` frame: `trend_real`, `trend_synthetic` (each
    pair's association in that table: Pearson r for two numeric columns, Cramér's V of the binned table
    otherwise) and `trend_difference` (|real - synthetic|). The matrices are the figures' images (`ax.images[0]`);
    cells are annotated when there are at most 16 columns."""
    if not {"column_1", "column_2", "real", "synthetic"} <= set(pairs.columns):
        raise ConfigError("`pairs` needs the columns column_1, column_2, real, synthetic (from trend_score)")
    real, synth = pairs["real"].to_numpy(float), pairs["synthetic"].to_numpy(float)
    specs = {
        "trend_real": (real, "Real table: association per column pair", "RdBu_r", -1.0, 1.0),
        "trend_synthetic": (synth, "Synthetic table: association per column pair", "RdBu_r", -1.0, 1.0),
        "trend_difference": (np.abs(real - synth), "|real − synthetic| association", "magma_r", 0.0, 1.0),
    }
    out = {}
    for name, (vals, title, cmap, lo, hi) in specs.items():
        cols, m = _pair_matrix(pairs, vals)
        k = len(cols)
        size = max(4.0, min(11.0, 0.42 * k + 2.5))
        fig = new_figure(size + 1.2, size)
        ax = fig.add_subplot()
        im = ax.imshow(m, vmin=lo, vmax=hi, cmap=cmap)
        ax.set_xticks(range(k), cols, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(k), cols, fontsize=7)
        if k <= 16:
            for i in range(k):
                for j in range(k):
                    if np.isfinite(m[i, j]):
                        ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson r (numeric pairs) · Cramér's V (other pairs)")
        out[name] = fig
    return out


def quality_plots(result, *, detail: bool = False) -> dict[str, bytes]:
    """PNG plots of a QualityResult: `shape_columns` (per-column marginal score), `trend_heatmap` (per-pair trend
    score as a column x column matrix; blank where undefined) and `alpha_beta` (the alpha-precision and
    beta-coverage curves of the naive and, when computed, one-class variants against the ideal diagonal).
    detail: also `marginals` (`marginal_figure`) and `trend_real`, `trend_synthetic`, `trend_difference`
    (`trend_heatmaps`); `quality_html` draws them itself when they are not given."""
    out: dict[str, bytes] = {}
    sc = result.shape_columns
    if len(sc):
        fig = new_figure(7.5, max(2.5, 0.28 * len(sc) + 1))
        ax = fig.add_subplot()
        ax.barh(sc["column"].astype(str)[::-1], 100 * sc["score"].to_numpy(float)[::-1], color="#4c72b0")
        ax.set_xlim(0, 100)
        ax.set_xlabel("marginal similarity (%): 1 - KS (numeric), 1 - TVD (categorical)")
        ax.set_title("Per-column shape")
        out["shape_columns"] = figure_to_png(fig)
    tp = result.trend_pairs
    if len(tp):
        cols = list(dict.fromkeys([*tp["column_1"].astype(str), *tp["column_2"].astype(str)]))
        idx = {c: i for i, c in enumerate(cols)}
        m = np.full((len(cols), len(cols)), np.nan)
        for a, b, v in zip(tp["column_1"].astype(str), tp["column_2"].astype(str), tp["score"].to_numpy(float)):
            m[idx[a], idx[b]] = m[idx[b], idx[a]] = 100 * v
        fig = new_figure(6.5, 5.5)
        ax = fig.add_subplot()
        im = ax.imshow(m, vmin=0, vmax=100, cmap="viridis")
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
        ax.set_yticks(range(len(cols)), cols, fontsize=7)
        ax.set_title("Pairwise trend score (%): 100 = same association in real and synthetic")
        fig.colorbar(im, ax=ax, shrink=0.8)
        out["trend_heatmap"] = figure_to_png(fig)
    ab = result.alpha_beta_curves
    if len(ab):
        fig = new_figure(5.5, 4.0)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="ideal")
        ax.plot(ab["alpha"], ab["alpha_precision"], color="#4c72b0", label="α-precision (naive)")
        ax.plot(ab["alpha"], ab["beta_coverage"], color="#dd8452", label="β-coverage (naive)")
        if "alpha_precision_oc" in ab:
            ax.plot(ab["alpha"], ab["alpha_precision_oc"], color="#4c72b0", ls=":", label="α-precision (one-class)")
            ax.plot(ab["alpha"], ab["beta_coverage_oc"], color="#dd8452", ls=":", label="β-coverage (one-class)")
        ax.set_xlabel("α (β)")
        ax.set_ylabel("share of rows")
        ax.set_title("α-precision and β-recall curves")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        out["alpha_beta"] = figure_to_png(fig)
    if detail:
        out.update(_detail_plots(result))
    return out


DETAIL_PLOTS = ("marginals", "trend_real", "trend_synthetic", "trend_difference")


def _detail_plots(result) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    marg = getattr(result, "marginals", None)
    if marg is not None and len(marg):
        out["marginals"] = figure_to_png(marginal_figure(marg))
    tp = result.trend_pairs
    if len(tp) and {"real", "synthetic"} <= set(tp.columns):
        out.update({k: figure_to_png(f) for k, f in trend_heatmaps(tp).items()})
    return out


def quality_html(result, *, config: Mapping[str, Any] | None = None, plots: Mapping[str, bytes] | None = None) -> str:
    """report.html of `rote tabular quality` (a QualityResult), with `quality_plots` (computed when not given;
    the detail plots, marginals and the real / synthetic / difference trend heat maps, are drawn when missing)."""
    plots = dict(quality_plots(result) if plots is None else plots)
    if not set(DETAIL_PLOTS) <= set(plots):
        plots.update({k: v for k, v in _detail_plots(result).items() if k not in plots})

    def pct(v: Any) -> str:
        return "n/a" if v is None or v != v else f"{100 * float(v):.2f}%"

    definition = result.authenticity_definition
    report = Report("Synthetic table quality", subtitle="shape, trend, α-precision, β-recall, C2ST, MLE, DCR")
    report.add_summary(
        {
            "shape": pct(result.shape),
            "trend": pct(result.trend),
            "α-precision (naive / one-class)": f"{pct(result.alpha_precision)} / {pct(result.alpha_precision_oc)}",
            "β-recall (naive / one-class)": f"{pct(result.beta_recall)} / {pct(result.beta_recall_oc)}",
            f"authenticity, {definition} (naive / one-class)": f"{pct(result.authenticity)} / "
            f"{pct(result.authenticity_oc)}",
            "C2ST (logistic detection)": pct(result.c2st),
            "MLE (AUC on real test)": pct(result.mle_auc),
            "DCR share closer to train": pct(result.dcr_share)
            + (f" (ideal {pct(result.dcr['ideal_share'])})" if result.dcr else ""),
            "real rows": result.n_real,
            "synthetic rows": result.n_synthetic,
        }
    )
    for note in result.notes:
        report.add_text(note, note=True)
    report.add_heading("Per column: marginals")
    if "marginals" in plots:
        report.add_image(
            plots["marginals"],
            alt="Marginals of each column, real vs synthetic",
            caption=f"Share of rows per bin ({MARGINAL_BINS} equal-width bins over the range of both tables) or per "
            f"category (the {MARGINAL_TOP} most frequent real categories; the rest pooled as 'other').",
        )
    if "shape_columns" in plots:
        report.add_image(plots["shape_columns"], alt="Per-column shape scores")
    report.add_table(result.shape_columns, caption="1 - KS (numeric) or 1 - TVD (categorical)", max_rows=200)
    report.add_heading("Per column pair: trend")
    for key, alt, caption in (
        ("trend_real", "Pairwise association heat map, real table", "Association in the real table."),
        ("trend_synthetic", "Pairwise association heat map, synthetic table", "Association in the synthetic table."),
        (
            "trend_difference",
            "Pairwise association difference heat map",
            "|real − synthetic|: where the synthetic table breaks (or invents) a relation between two columns.",
        ),
    ):
        if key in plots:
            report.add_image(
                plots[key],
                alt=alt,
                caption=caption + " Pearson r for two numeric columns, Cramér's V (no bias correction) of the "
                "binned table otherwise.",
            )
    if "trend_heatmap" in plots:
        report.add_image(plots["trend_heatmap"], alt="Pairwise trend heat map")
    report.add_table(result.trend_pairs, max_rows=200)
    if "alpha_beta" in plots:
        report.add_heading("α-precision and β-recall curves")
        report.add_image(
            plots["alpha_beta"],
            alt="alpha-precision and beta-coverage curves",
            caption="Each score is 1 minus the area between its curve and the diagonal, over the area under it.",
        )
        report.add_text(
            "Naive: features (numeric | one-hot) min-max scaled with the real range, centre = real mean (what "
            "Fang et al. report). One-class: the same unscaled features embedded by synthcity's one-class network "
            "(4 bias-free layers of 32 units, 1000 full-batch AdamW steps, lr 2e-3, weight decay 2e-3, centre 10), "
            "fitted on the real rows with the run's seed."
        )
    if definition == "alaa":
        report.add_text(
            "Authenticity: share of synthetic rows farther from their nearest real row than that row is from its "
            "own nearest other real row (Alaa et al. 2022). synthcity's `authenticity_*` indexes these distances "
            'with the wrong row (reported upstream); `authenticity="synthcity"` reproduces its value.',
            note=True,
        )
    else:
        report.add_text(
            "Authenticity is synthcity's value, which indexes the real-to-real distances with the synthetic row "
            "nearest to each real row (an index mix-up reported upstream): it is not Alaa et al.'s authenticity.",
            note=True,
        )
    if config:
        report.add_config(config)
    return report.render()
