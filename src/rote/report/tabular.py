"""The report and run-folder files of a tabular memorization audit.

`audit_report(result)` gives report.html as a string; `save_audit(result, run)` writes everything an audit run
leaves behind: results.json, rows.parquet, train_rows.parquet, ratio_hist.png and report.html.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.runs import RunFolder
from rote.report import Report, figure_to_png, ratio_histogram
from rote.tabular.audit import AuditResult

COPIES_PER_ROW = 3  # memorized synthetic rows shown under each most-copied training row

_DISTANCE_WORDS = {
    "tabcutmix": ("the TabCutMix code's distance: Euclidean distance on the raw numeric values, min-max rescaled "
                  "per synthetic row across all training rows, plus the number of categorical mismatches, divided "
                  "by the number of columns"),
    "gower": ("a Gower-style distance: the mean over columns of |a - b| / range (capped at 1) for numeric columns "
              "and 0/1 mismatch for categorical ones"),
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
        "unseen categories": (", ".join(f"{k}: {v:,}" for k, v in result.unseen_categories.items())
                              if result.unseen_categories else "none"),
    }
    if result.dcr:
        d = result.dcr
        items.update({
            "DCR: closer to train than holdout": (f"{_pct(d['share_closer_to_train'])} "
                                                  f"(ideal about {_pct(d['ideal_share'])})"),
            "DCR: ties": _pct(d["share_ties"]),
            "DCR: median to train / holdout": f"{d['median_dcr_train']:.4g} / {d['median_dcr_holdout']:.4g}",
            "DCR: distance, holdout rows": f"{d['distance']}, {d['n_holdout']:,}",
        })
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
        text.append(f"{result.n_undefined_ratio:,} synthetic rows have distance 0 to two training rows (the "
                    "training table holds duplicates); their ratio 0/0 is undefined and they are not counted as "
                    "memorized.")
    return text


def _most_copied(result: AuditResult, top: int) -> pd.DataFrame:
    """Training rows with at least one memorized copy, most copied first (ties: more often nearest, then lower
    index), at most `top` of them."""
    tr = result.train_rows[result.train_rows["n_memorized"] > 0]
    return tr.sort_values(["n_memorized", "n_nearest", "train_row"], ascending=[False, False, True],
                          kind="stable").head(top)


def _differs(a: Any, b: Any) -> bool:
    a_na, b_na = pd.isna(a), pd.isna(b)
    if a_na or b_na:
        return not (a_na and b_na)
    try:
        return bool(a != b)
    except (TypeError, ValueError):
        return str(a) != str(b)


def copies_table(result: AuditResult, train_row: int, n_copies: int = COPIES_PER_ROW
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


def _build_report(result: AuditResult, *, config: Mapping[str, Any] | None, top: int, title: str,
                  hist_png: bytes) -> str:
    if not isinstance(top, int) or top < 0:
        raise ConfigError(f"top must be a non-negative integer, got {top!r}")
    report = Report(title, subtitle=f"{result.n_synthetic:,} synthetic rows audited against {result.n_train:,} "
                                    f"training rows, distance {result.distance}")
    report.add_summary(_summary(result))

    report.add_heading("What is measured")
    for paragraph in _explanation(result):
        report.add_text(paragraph)

    report.add_heading("Distance ratios")
    report.add_image(hist_png, alt="Histogram of the distance ratio d1/d2 of synthetic rows",
                     caption=f"Synthetic rows left of the dashed line (d1/d2 < {result.threshold:.3g}) are "
                             "memorized. Ratios near 1 mean a row is about as close to its second-nearest training "
                             "row as to its nearest: no single row is copied.")

    report.add_heading("Most-copied training rows")
    most = _most_copied(result, top)
    if most.empty:
        report.add_text(f"No synthetic row is memorized at threshold {result.threshold:.3g}: no training row is "
                        "copied.")
    else:
        n_copied = int((result.train_rows["n_memorized"] > 0).sum())
        report.add_text(f"{n_copied:,} training rows are the nearest row of at least one memorized synthetic row; "
                        f"the {len(most):,} most copied are shown, each with up to {COPIES_PER_ROW} of its memorized "
                        "copies (closest first). Highlighted cells differ from the training row.")
        overview = most.rename(columns={"train_row": "train row", "n_memorized": "memorized copies",
                                        "n_nearest": "nearest of", "n_exact_copies": "exact copies"})
        overview = overview[["train row", "memorized copies", "exact copies", "nearest of"]].reset_index(drop=True)
        report.add_table(overview, caption="Synthetic rows per training row (nearest of: synthetic rows whose "
                                           "nearest training row it is, memorized or not)")
        for i, n_mem, n_exact in zip(most["train_row"], most["n_memorized"], most["n_exact_copies"]):
            frame, highlight = copies_table(result, int(i))
            report.add_heading(f"train #{int(i)}: {_count(int(n_mem), 'memorized copy', 'memorized copies')}, "
                               f"{int(n_exact):,} exact", level=3)
            report.add_table(frame, highlight=highlight, digits=None)

    if config is not None:
        report.add_config(config)
    return report.render()


def audit_report(result: AuditResult, *, config: Mapping[str, Any] | None = None, top: int = 10,
                 title: str = "Tabular memorization audit") -> str:
    """report.html of an audit as one self-contained HTML string.

    Holds the headline numbers, a plain-language statement of the criterion, the histogram of d1/d2, and the
    `top` most-copied training rows, each beside up to 3 of its memorized synthetic copies with differing cells
    highlighted. `config` (e.g. the run's config.json) is shown in a collapsed block; nothing time-dependent is
    added otherwise, so the same result gives the same HTML.
    """
    return _build_report(result, config=config, top=top, title=title, hist_png=_histogram_png(result))


def save_audit(result: AuditResult, run: RunFolder, *, config: Mapping[str, Any] | None = None,
               top: int = 10, extra: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write an audit's files into `run` (each atomically) and return their paths, keyed by file stem:
    "ratio_hist" (ratio_hist.png), "report" (report.html, `top` most-copied training rows), "rows"
    (rows.parquet, one row per synthetic row), "train_rows" (train_rows.parquet, one per training row) and
    "results" (results.json: `result.to_dict()` plus `extra`), written last since it marks the run finished.
    config.json is the caller's (`run.write_config`)."""
    hist_png = _histogram_png(result)
    paths = {
        "ratio_hist": run.write_bytes("ratio_hist.png", hist_png),
        "report": run.write_text("report.html", _build_report(result, config=config, top=top,
                                                             title="Tabular memorization audit", hist_png=hist_png)),
    }
    paths.update(result.save(run, extra=dict(extra or {})))
    return paths
