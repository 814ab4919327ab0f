"""The distance-ratio memorization audit of a synthetic table (Fang et al., ICML 2025, section 3.1).

A synthetic row x is memorized when d(x, NN1) < threshold * d(x, NN2), where NN1 and NN2 are its nearest and
second-nearest training rows: it sits much closer to one training row than to any other. The memorization ratio
is the memorized fraction of synthetic rows; Mem-AUC integrates that fraction over thresholds in [0, 1].
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, internal_field, table_field
from rote.core.neighbors import DEFAULT_BLOCK_BYTES, DISTANCES, get_distance, knn
from rote.data import TableSchema, infer_schema, load_table, unseen_categories, validate_table
from rote.tabular.encode import encode_tables, row_hashes

DEFAULT_THRESHOLD = 1 / 3
HIST_BINS = 20
FAR_NUMERIC_SD = 1.0  # a memorized row whose numbers differ from its nearest row by more than this is flagged
PAPER_AUC_GRID = np.linspace(0.0, 1.0, 10)  # the TabCutMix code's grid: 10 points, spacing 1/9 (not 0.1)

TableLike = str | os.PathLike | pd.DataFrame


def distance_ratio(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """(n,) d1 / d2, with 0/0 (a synthetic row equal to two training rows) as NaN: not memorized, as in the
    paper's code, where NaN < threshold is false."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.asarray(d1, np.float64) / np.asarray(d2, np.float64)
    return np.where((np.asarray(d1) == 0) & (np.asarray(d2) == 0), np.nan, r)


def memorized_at(ratio: np.ndarray, threshold: float) -> np.ndarray:
    """(n,) bool: ratio < threshold, with NaN (0/0) not memorized."""
    return np.nan_to_num(np.asarray(ratio, np.float64), nan=np.inf) < threshold


def memorization_ratio_at(ratio: np.ndarray, threshold: float) -> float:
    """Fraction of rows with ratio < threshold (NaN counts as not memorized)."""
    return float(np.mean(memorized_at(ratio, threshold))) if ratio.size else float("nan")


def mem_auc_exact(ratio: np.ndarray) -> float:
    """Integral over tau in [0, 1] of the fraction with ratio < tau, exactly: mean(1 - min(ratio, 1)), NaN -> 0."""
    r = np.nan_to_num(np.asarray(ratio, np.float64), nan=1.0)
    return float(np.mean(1.0 - np.clip(r, 0.0, 1.0))) if r.size else float("nan")


def mem_auc_grid(ratio: np.ndarray, grid: np.ndarray = PAPER_AUC_GRID) -> float:
    """The paper code's Mem-AUC: trapezoid rule over `grid` (10 points in [0, 1] by default)."""
    values = np.array([memorization_ratio_at(ratio, t) for t in grid])
    return float(np.trapezoid(values, grid))


@dataclass(frozen=True)
class AuditResult(Result):
    """Result of `audit`. Scalars go to results.json; `rows` (one per synthetic row) to rows.parquet and
    `train_rows` (one per training row: how often it is copied) to train_rows.parquet. `train` and
    `synthetic` are the validated input tables (for reports; not serialized)."""

    memorization_ratio: float
    mem_auc: float
    mem_auc_grid: float
    exact_copies: int
    n_train: int
    n_synthetic: int
    distance: str
    threshold: float
    n_undefined_ratio: int
    unseen_categories: dict[str, int]
    ratio_histogram: dict[str, list]
    dcr: dict[str, Any] | None
    schema: TableSchema
    include_target: bool
    rows: pd.DataFrame = table_field("rows")
    train_rows: pd.DataFrame = table_field("train_rows")
    train: pd.DataFrame = internal_field()
    synthetic: pd.DataFrame = internal_field()
    n_far_numeric: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The scalar results (what results.json holds)."""
        return {
            **super().to_dict(),
            "n_memorized": int(self.rows["memorized"].sum()),
            "n_train_rows_copied": int((self.train_rows["n_memorized"] > 0).sum()),
        }

    def at_threshold(self, threshold: float) -> float:
        """Memorization ratio at another threshold, from the cached ratios (no new search)."""
        return memorization_ratio_at(self.rows["ratio"].to_numpy(), threshold)

    def summary(self) -> str:
        lines = [
            f"memorization ratio  {self.memorization_ratio:.2%}  "
            f"(ratio d1/d2 < {self.threshold:.4g}, distance {self.distance})",
            f"Mem-AUC             {self.mem_auc:.4f} exact, {self.mem_auc_grid:.4f} on the paper's 10-point grid",
            f"exact copies        {self.exact_copies} of {self.n_synthetic} synthetic rows",
            f"training rows       {self.n_train}; copied (nearest of a memorized row): "
            f"{int((self.train_rows['n_memorized'] > 0).sum())}",
        ]
        if self.n_undefined_ratio:
            lines.append(
                f"0/0 ratios          {self.n_undefined_ratio} (equal to duplicated training rows; not memorized)"
            )
        if self.n_far_numeric:
            lines.append(
                f"warning             {self.n_far_numeric} memorized rows differ from their nearest training row by "
                f"more than {FAR_NUMERIC_SD:g} training standard deviation(s) in some numeric column: the "
                f"{self.distance} distance rescales numeric distances per row, so a row can count as a copy "
                "with far-apart numbers (rows.parquet: max_numeric_gap_sd)"
            )
        if self.unseen_categories:
            lines.append("unseen categories   " + ", ".join(f"{k}: {v}" for k, v in self.unseen_categories.items()))
        if self.dcr:
            lines.append(
                f"DCR share           {self.dcr['share_closer_to_train']:.2%} closer to train than holdout "
                f"(ideal about {self.dcr['ideal_share']:.0%}); median DCR train {self.dcr['median_dcr_train']:.4g}, "
                f"holdout {self.dcr['median_dcr_holdout']:.4g}"
            )
        return "\n".join(lines)


def _name(table: TableLike, role: str) -> str | None:
    """Name used in error messages: a file's path, a DataFrame's attrs["source"], else its role."""
    return table.attrs.get("source", role) if isinstance(table, pd.DataFrame) else None


def prepare_audit_tables(
    train: TableLike,
    synthetic: TableLike,
    holdout: TableLike | None = None,
    *,
    schema: TableSchema | None = None,
    target: str | None = None,
    missing: str = "error",
) -> tuple[TableSchema, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Load, infer the schema from the training table (unless given), and validate all tables against it."""
    tr = load_table(train, name=_name(train, "train"))
    sy = load_table(synthetic, name=_name(synthetic, "synthetic"))
    ho = None if holdout is None else load_table(holdout, name=_name(holdout, "holdout"))
    if schema is None:
        schema = infer_schema(tr, target=target)
    elif target is not None and target != schema.target:
        schema = schema.with_overrides(target=target)
    trv = validate_table(tr, schema, missing=missing)
    syv = validate_table(sy, schema, missing=missing)
    hov = None if ho is None else validate_table(ho, schema, missing=missing)
    if len(trv) < 2:
        raise DataError(
            f"{tr.attrs.get('source', 'train')}: has {len(trv)} row; the distance ratio needs at least 2 training rows"
        )
    return schema, trv, syv, hov


def _exact_copy_of(train: pd.DataFrame, synthetic: pd.DataFrame) -> np.ndarray:
    """(n_synthetic,) index of the first training row identical to each synthetic row, -1 where none."""
    th, sh = row_hashes(train), row_hashes(synthetic)
    first = pd.Series(np.arange(len(th)), index=th)
    first = first[~first.index.duplicated()]
    idx = np.array(first.reindex(sh).fillna(-1).to_numpy(np.int64), copy=True)  # pandas 3 may hand out a read-only view
    hit = np.flatnonzero(idx >= 0)
    if hit.size:  # confirm hash matches value by value, so a 64-bit collision cannot count as a copy
        same = (train.iloc[idx[hit]].to_numpy(object) == synthetic.iloc[hit].to_numpy(object)).all(1)
        idx[hit[~same]] = -1
    return idx


RAY_BLOCK_ROWS = 4096  # synthetic rows per Ray task


class _Searcher:
    """knn here, or over Ray tasks (blocks of query rows against the whole reference); a context manager that
    starts Ray for "local" (or connects to an address) and stops it if it started it."""

    def __init__(self, ray: str | None, block_rows: int, **kw: Any) -> None:
        if ray is not None and (not isinstance(ray, str) or not ray):
            raise ConfigError("`ray`: give 'local' to start Ray here, or a cluster address such as ray://head:10001")
        if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
            raise ConfigError(f"`ray_block_rows` must be a whole number >= 1, got {block_rows!r}")
        self.address, self.block_rows, self.kw, self.started = ray, int(block_rows), kw, False

    def __enter__(self) -> "_Searcher":
        if self.address is None:
            return self
        from rote.core.errors import BackendError
        from rote.sweep.ray_backend import import_ray

        self.ray = import_ray()
        if not self.ray.is_initialized():
            try:
                if self.address == "local":
                    self.ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
                else:
                    self.ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            except Exception as exc:
                reason = " ".join(str(exc).split())[:300]
                raise BackendError(
                    f"`ray` {self.address}: cannot start or reach Ray ({type(exc).__name__}: {reason}); "
                    "check the address, or run without --ray"
                ) from None
            self.started = True
        self.task = self.ray.remote(num_cpus=1, max_retries=1)(_knn_block)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.ray.shutdown()

    def __call__(self, query: Any, reference: Any, k: int, dist: Any) -> Any:
        if self.address is None:
            return knn(query, reference, k=k, distance=dist, **self.kw)
        from rote.core.neighbors import Neighbors

        ref = self.ray.put(reference)
        starts = list(range(0, query.n_rows, self.block_rows))
        refs = [
            self.task.remote(query.take(np.arange(s, min(s + self.block_rows, query.n_rows))), ref, k, dist)
            for s in starts
        ]
        parts = self.ray.get(refs)
        progress = self.kw.get("progress")
        if progress is not None:
            progress(query.n_rows)
        if not parts:
            return knn(query, reference, k=k, distance=dist)
        return Neighbors(np.concatenate([p.indices for p in parts]), np.concatenate([p.distances for p in parts]))


def _knn_block(query: Any, reference: Any, k: int, dist: Any) -> Any:
    """One Ray task: exact k nearest reference rows of a block of query rows (CPU, all of the task's threads)."""
    return knn(query, reference, k=k, distance=dist)


def _numeric_gap_sd(train_num: np.ndarray, synth_num: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """(n_synthetic,) the largest |synthetic - nearest training row| over numeric columns, in training standard
    deviations (a constant column counts any difference as infinite; 0 without numeric columns)."""
    if train_num.shape[1] == 0 or len(synth_num) == 0:
        return np.zeros(len(synth_num))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        scale = np.exp2(-np.ceil(np.log2(np.maximum(np.abs(train_num).max(0), 1.0))))  # exact; std cannot overflow
        sd = (train_num * scale).std(0) / scale
        gap = np.abs(synth_num / 2 - train_num[nearest] / 2) * 2
        z = np.where(sd > 0, gap / np.where(sd > 0, sd, 1.0), np.where(gap > 0, np.inf, 0.0))
    return z.max(1)


def audit_searches(has_holdout: bool, distance: str) -> int:
    """How many passes over the synthetic rows `audit` makes (for a progress bar's total: n_synthetic times this):
    the distance-ratio search, plus the DCR searches against train (when the audit distance is relative)
    and holdout."""
    if not has_holdout:
        return 1
    return 3 if distance in DISTANCES and DISTANCES[distance].relative else 2


def audit(
    train: TableLike,
    synthetic: TableLike,
    *,
    holdout: TableLike | None = None,
    schema: TableSchema | None = None,
    target: str | None = None,
    distance: str = "tabcutmix",
    threshold: float = DEFAULT_THRESHOLD,
    include_target: bool = True,
    missing: str = "error",
    device: str = "cpu",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: Callable[[int], None] | None = None,
    ray: str | None = None,
    ray_block_rows: int = RAY_BLOCK_ROWS,
) -> AuditResult:
    """Audit a synthetic table for rows that copy training rows (distance-ratio criterion).

    train, synthetic, holdout: DataFrames or CSV/Parquet paths; inputs are never modified.
    schema: column types; inferred from `train` when None (`target` sets the label column).
    distance: "tabcutmix" (the paper code's distance), "gower" or "l2" (see `rote.core.neighbors`).
    threshold: a row is memorized when d1/d2 < threshold (paper: 1/3).
    include_target: count the label as a categorical column in the distance (the paper's code does).
    progress: called with the number of synthetic rows searched after each block; the total over the whole
        audit is n_synthetic * audit_searches(holdout is not None, distance).
    holdout: real rows not used for training; adds the DCR share (synthetic rows strictly closer to train
        than to holdout; about n_train / (n_train + n_holdout) for a generator that does not copy) measured
        with `gower` when the audit distance is relative (`tabcutmix`), else with the audit distance, fitted on train.
    ray: None searches here; "local" (start Ray on this machine) or a cluster address: the synthetic rows are
        split into blocks of `ray_block_rows`, each searched against the whole training table as one Ray task.
        Every distance is a function of one synthetic row and the training table, so the result is identical.
    """
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"`threshold` must be in (0, 1], got {threshold}")
    if distance not in DISTANCES:
        raise ConfigError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    schema, trv, syv, hov = prepare_audit_tables(
        train, synthetic, holdout, schema=schema, target=target, missing=missing
    )
    tables = [trv, syv] + ([hov] if hov is not None else [])
    mats, _ = encode_tables(tables, schema, include_target=include_target)
    tr_m = mats[0]

    dist = get_distance(distance).fit(tr_m)
    with _Searcher(ray, ray_block_rows, device=device, block_bytes=block_bytes, progress=progress) as search:
        return _audit_tables(search, dist, schema, trv, syv, hov, mats, distance, threshold, include_target)


def _audit_tables(search, dist, schema, trv, syv, hov, mats, distance, threshold, include_target) -> AuditResult:
    """The searches and result frames of `audit` (after validation and encoding)."""
    tr_m, sy_m = mats[0], mats[1]
    nb = search(sy_m, tr_m, 2, dist)
    d1, d2 = nb.distances[:, 0], nb.distances[:, 1]
    ratio = distance_ratio(d1, d2)
    memorized = memorized_at(ratio, threshold)
    copy_of = _exact_copy_of(trv, syv)

    rows = pd.DataFrame(
        {
            "synthetic_row": np.arange(len(syv)),
            "nearest_train_row": nb.indices[:, 0],
            "second_train_row": nb.indices[:, 1],
            "d1": d1,
            "d2": d2,
            "ratio": ratio,
            "memorized": memorized,
            "exact_copy_of": copy_of,
        }
    )
    rows["max_numeric_gap_sd"] = _numeric_gap_sd(tr_m.numeric, sy_m.numeric, nb.indices[:, 0])
    n_far = int((memorized & (rows["max_numeric_gap_sd"].to_numpy() > FAR_NUMERIC_SD)).sum())
    n_tr = len(trv)
    train_rows = pd.DataFrame(
        {
            "train_row": np.arange(n_tr),
            "n_nearest": np.bincount(nb.indices[:, 0], minlength=n_tr),
            "n_memorized": np.bincount(nb.indices[memorized, 0], minlength=n_tr),
            "n_exact_copies": np.bincount(copy_of[copy_of >= 0], minlength=n_tr),
        }
    )
    finite = ratio[~np.isnan(ratio)]
    counts, edges = np.histogram(finite, bins=HIST_BINS, range=(0.0, 1.0))

    dcr = None
    if hov is not None:
        ho_m = mats[2]
        dcr_dist = get_distance("gower").fit(tr_m) if dist.relative else dist  # fitted on train either way
        dcr_train = search(sy_m, tr_m, 1, dcr_dist).distances[:, 0] if dist.relative else d1
        dcr_hold = search(sy_m, ho_m, 1, dcr_dist).distances[:, 0]
        rows["dcr_train"], rows["dcr_holdout"] = dcr_train, dcr_hold
        dcr = {
            "distance": dcr_dist.name,
            "n_holdout": len(hov),
            "share_closer_to_train": float(np.mean(dcr_train < dcr_hold)),
            "share_ties": float(np.mean(dcr_train == dcr_hold)),
            "ideal_share": n_tr / (n_tr + len(hov)),
            "median_dcr_train": float(np.median(dcr_train)),
            "median_dcr_holdout": float(np.median(dcr_hold)),
        }

    return AuditResult(
        memorization_ratio=float(memorized.mean()),
        mem_auc=mem_auc_exact(ratio),
        mem_auc_grid=mem_auc_grid(ratio),
        exact_copies=int((copy_of >= 0).sum()),
        n_train=n_tr,
        n_synthetic=len(syv),
        distance=distance,
        threshold=float(threshold),
        n_undefined_ratio=int(np.isnan(ratio).sum()),
        unseen_categories=unseen_categories(trv, syv, schema),
        ratio_histogram={"edges": edges.tolist(), "counts": counts.tolist(), "undefined": int(np.isnan(ratio).sum())},
        dcr=dcr,
        schema=schema,
        include_target=include_target,
        rows=rows,
        train_rows=train_rows,
        train=trv,
        synthetic=syv,
        n_far_numeric=n_far,
    )


def memorization_ratio(
    train: TableLike,
    synthetic: TableLike,
    *,
    schema: TableSchema | None = None,
    target: str | None = None,
    distance: str = "tabcutmix",
    threshold: float = DEFAULT_THRESHOLD,
    **kwargs: Any,
) -> float:
    """Fraction of synthetic rows with d1/d2 < threshold (see `audit`)."""
    return audit(
        train, synthetic, schema=schema, target=target, distance=distance, threshold=threshold, **kwargs
    ).memorization_ratio
