"""Run every point of a grid as an independent task: local processes by default, Ray tasks on request.

`run_grid(fn, grid, out_dir)` calls `fn(params, work_dir)` once per grid point, each call in a worker process
(never in the calling process unless `workers=0`). The point's outputs are written atomically to
`out_dir/points/<id>/`: its tables as Parquet, then `result.json` (written last; it marks a finished point). A
re-run of the same grid into the same folder skips finished points, so an interrupted grid resumes without
recomputing anything. A point that raises is recorded in `points/<id>/error.json` with its traceback and the
grid goes on; the next run tries it again.

`fn` must be a module-level function (it is pickled into the workers). It receives a copy of the point's
parameters and a scratch folder `out_dir/points/<id>/work` (for checkpoints: a resumed point can continue from
them), and returns a mapping of results: scalars (numbers, strings, booleans, None, small lists or dicts) go to
result.json, pandas DataFrames to `<key>.parquet`.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import pickle
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rote.core.errors import ConfigError, RoteError
from rote.core.runs import atomic_write_json, atomic_write_parquet, progress_bar, read_json
from rote.sweep.grid import Grid, Point

PointFn = Callable[[dict[str, Any], Path], Mapping[str, Any]]
STATUS_DONE, STATUS_FAILED = "done", "failed"


# ---------------------------------------------------------------------------------------------- worker side


def _init_worker(threads: int) -> None:
    """Worker start-up: cap each worker's BLAS/torch threads so `workers` processes share the cores instead of
    oversubscribing them (results do not depend on the thread count on CPU)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


def execute_point(fn: PointFn, params: dict[str, Any], work_dir: str, seed_axis: str | None) -> dict[str, Any]:
    """Run one point (in a worker); never raises for an error of `fn`: returns a payload dict with
    status "done" (scalars, tables, seconds) or "failed" (error line, traceback, seconds)."""
    from rote.core.runs import seed_everything

    start = time.perf_counter()
    try:
        if seed_axis is not None and isinstance(params.get(seed_axis), int):
            seed_everything(params[seed_axis])  # a worker process is an entry point: its global RNGs start here
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        out = fn(dict(params), Path(work_dir))
        if not isinstance(out, Mapping):
            raise TypeError(f"the point function returned {type(out).__name__}; it must return a mapping of results")
        scalars = {str(k): v for k, v in out.items() if not isinstance(v, pd.DataFrame)}
        tables = {str(k): v for k, v in out.items() if isinstance(v, pd.DataFrame)}
        return {"status": STATUS_DONE, "scalars": scalars, "tables": tables, "seconds": time.perf_counter() - start}
    except Exception as exc:  # recorded, the grid goes on
        return {
            "status": STATUS_FAILED,
            "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}",
            "user_error": isinstance(exc, RoteError),
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - start,
        }


# ---------------------------------------------------------------------------------------------- driver side


def point_dir(out_dir: str | os.PathLike, point: Point) -> Path:
    return Path(out_dir) / "points" / point.id


def _finished(out_dir: Path, point: Point) -> dict[str, Any] | None:
    """The point's result.json when it exists, is readable and holds the same parameters; else None."""
    path = point_dir(out_dir, point) / "result.json"
    if not path.is_file():
        return None
    try:
        record = read_json(path)
    except RoteError:
        return None  # unreadable: recompute (it is rewritten atomically)
    return record if record.get("params") == point.params and record.get("status") == STATUS_DONE else None


def _record(out_dir: Path, point: Point, payload: dict[str, Any]) -> dict[str, Any]:
    """Write a worker's payload into the point's folder; returns the record (what result.json / error.json hold)."""
    folder = point_dir(out_dir, point)
    base = {"id": point.id, "params": point.params, "status": payload["status"], "seconds": payload["seconds"]}
    if payload["status"] == STATUS_DONE:
        for name, frame in payload["tables"].items():
            atomic_write_parquet(folder / f"{name}.parquet", frame)
        record = {**base, "scalars": payload["scalars"], "tables": sorted(payload["tables"])}
        atomic_write_json(folder / "result.json", record)  # last: marks the point finished
        (folder / "error.json").unlink(missing_ok=True)
    else:
        record = {
            **base,
            "error": payload["error"],
            "user_error": payload.get("user_error", False),
            "traceback": payload["traceback"],
        }
        atomic_write_json(folder / "error.json", record)
    return record


def _flat(scalars: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts of results as dotted column names ({"dcr": {"share": .5}} -> {"dcr.share": .5});
    lists are left out of the table (they stay in result.json)."""
    out: dict[str, Any] = {}
    for k, v in scalars.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, (list, tuple)):
            out[f"{prefix}{k}"] = v
    return out


@dataclass(frozen=True)
class SweepResult:
    """What `run_grid` did. `table`: one row per grid point in grid order: `point_id`, the axis values,
    `status` ("done" / "failed"), `reused` (finished in an earlier run), `seconds`, `error`, then the point's
    scalar results (nested dicts as dotted names). `records`: point id -> result.json / error.json content."""

    grid: Grid
    out_dir: Path
    seed_axis: str | None
    table: pd.DataFrame
    records: dict[str, dict[str, Any]] = field(repr=False)

    @property
    def n_done(self) -> int:
        return int((self.table["status"] == STATUS_DONE).sum())

    @property
    def n_failed(self) -> int:
        return int((self.table["status"] == STATUS_FAILED).sum())

    @property
    def n_reused(self) -> int:
        return int(self.table["reused"].sum())

    def failures(self) -> pd.DataFrame:
        """point_id, the axes, the one-line error and `user_error` (bad input, not a bug) of every failed point."""
        cols = ["point_id", *self.grid.axes, "error", "user_error"]
        failed = self.table.loc[self.table["status"] == STATUS_FAILED].reset_index(drop=True)
        if "user_error" not in failed.columns:
            failed = failed.assign(user_error=False)
        failed["user_error"] = failed["user_error"].fillna(False).astype(bool)
        return failed[cols]

    def exit_status(self) -> tuple[int, str | None]:
        """(status, one-line reason) of the grid under the CLI's contract: 0 when no point failed; 2 when any
        point failed on bad input (the reason names them); 1 when points failed on internal errors only."""
        failed = self.failures()
        if failed.empty:
            return 0, None
        bad = failed[failed["user_error"]]
        if len(bad):
            first = bad.iloc[0]
            more = f" (and {len(bad) - 1} more; see results.json)" if len(bad) > 1 else ""
            return 2, (
                f"{len(bad)} of {len(self.table)} grid points failed on bad input: point {first['point_id']}: "
                f"{first['error']}{more}"
            )
        first = failed.iloc[0]
        return 1, (
            f"{len(failed)} of {len(self.table)} grid points failed on an internal error: point "
            f"{first['point_id']}: {first['error']} (traceback in its error.json)"
        )

    def point_table(self, name: str) -> pd.DataFrame:
        """The per-point tables called `name` of every finished point, stacked, with `point_id` and the axis
        values as leading columns (empty frame when no point wrote one)."""
        frames = []
        for p in self.grid.points():
            rec = self.records.get(p.id)
            if rec is None or rec["status"] != STATUS_DONE or name not in rec.get("tables", ()):
                continue
            frame = pd.read_parquet(point_dir(self.out_dir, p) / f"{name}.parquet")
            lead = pd.DataFrame(
                {"point_id": p.id, **{a: [p.params[a]] * len(frame) for a in self.grid.axes}}, index=frame.index
            )
            frames.append(pd.concat([lead, frame], axis=1))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def aggregate(self, metrics: list[str]) -> pd.DataFrame:
        """Mean and sample standard deviation (ddof=1) of `metrics` over the seed axis, per combination of the other
        axes (finished points only): columns `<axis>...`, `n_seeds`, `<metric>_mean`, `<metric>_std`.
        With one seed the std is 0 (`rote.core.stats.mean_std`); NaN values are left out."""
        from rote.core.stats import mean_std

        keys = [a for a in self.grid.axes if a != self.seed_axis]
        done = self.table[self.table["status"] == STATUS_DONE]
        rows = []
        groups = done.groupby(keys, sort=False, dropna=False) if keys else [((), done)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            row: dict[str, Any] = dict(zip(keys, key))
            row["n_seeds"] = len(g)
            for m in metrics:
                values = pd.to_numeric(g[m], errors="coerce").to_numpy(dtype=float) if m in g else []
                mean, std = mean_std(values) if len(values) else (float("nan"), float("nan"))
                row[f"{m}_mean"], row[f"{m}_std"] = mean, std
            rows.append(row)
        return pd.DataFrame(rows)


def _table(grid: Grid, records: dict[str, dict[str, Any]], reused: set[str]) -> pd.DataFrame:
    rows = []
    for p in grid.points():
        rec = records.get(p.id, {})
        row = {
            "point_id": p.id,
            **{a: p.params[a] for a in grid.axes},
            "status": rec.get("status", "missing"),
            "reused": p.id in reused,
            "seconds": rec.get("seconds", float("nan")),
            "error": rec.get("error"),
            "user_error": bool(rec.get("user_error", False)),
        }
        row.update(_flat(rec.get("scalars", {})))
        rows.append(row)
    return pd.DataFrame(rows)


def run_grid(
    fn: PointFn,
    grid: Grid,
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    ray: str | None = None,
    seed_axis: str | None = "seed",
    retry_failed: bool = True,
    quiet: bool = False,
    progress: Callable[[int], None] | None = None,
    ray_num_cpus: int = 2,
) -> SweepResult:
    """Run `fn(params, work_dir)` on every point of `grid` not finished yet in `out_dir`; returns a SweepResult.

    workers: worker processes (spawn context) on this machine; 0 runs the points in this process (debugging).
    ray: None (local processes), "local" (start a local Ray instance with `ray_num_cpus` CPUs; each point is a
        Ray task) or the address of a running Ray cluster ("ray://host:10001", "auto").
    seed_axis: the axis holding replicate seeds; each worker seeds Python, numpy and torch with it before the
        call, and `SweepResult.aggregate` averages over it.
    retry_failed: also run points whose earlier attempt failed (default); False keeps their error record.
    progress: an `advance(n)` callback to use instead of opening a bar (`quiet` silences the bar).
    Also writes `out_dir/grid.json` (the grid) and `out_dir/points.parquet` (the SweepResult table).
    """
    if not isinstance(grid, Grid):
        raise ConfigError(f"grid must be a rote.sweep.Grid, got {type(grid).__name__}")
    if workers < 0:
        raise ConfigError(f"workers must be 0 (in this process) or more, got {workers}")
    if seed_axis is not None and seed_axis not in grid.axes and seed_axis not in grid.fixed:
        seed_axis = None  # a grid without replicate seeds: nothing to seed or average over
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; choose a folder for the grid's results")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "grid.json", {**grid.to_dict(), "seed_axis": seed_axis})

    records: dict[str, dict[str, Any]] = {}
    reused: set[str] = set()
    todo: list[Point] = []
    for p in grid.points():
        rec = _finished(out, p)
        if rec is not None:
            records[p.id], _ = rec, reused.add(p.id)
            continue
        err = point_dir(out, p) / "error.json"
        if not retry_failed and err.is_file():
            records[p.id] = read_json(err)
            continue
        todo.append(p)

    if todo and (workers > 0 or ray is not None):
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise ConfigError(
                f"the point function {getattr(fn, '__qualname__', fn)!r} cannot be sent to worker "
                f"processes ({exc}); define it at module level, or run with workers=0"
            ) from None

    def done(p: Point, payload: dict[str, Any]) -> None:
        records[p.id] = _record(out, p, payload)

    tasks = [(p, str(point_dir(out, p) / "work")) for p in todo]
    with progress_bar(len(todo) if progress is None else 0, "grid points", quiet=quiet) as bar:
        advance = progress or bar
        if ray is not None:
            from rote.sweep.ray_backend import run_ray

            run_ray(
                fn,
                tasks,
                execute=execute_point,
                address=ray,
                seed_axis=seed_axis,
                on_result=done,
                advance=advance,
                num_cpus=ray_num_cpus,
            )
        elif workers == 0:
            for p, work in tasks:
                done(p, execute_point(fn, p.params, work, seed_axis))
                advance(1)
        else:
            _run_processes(fn, tasks, workers=workers, seed_axis=seed_axis, on_result=done, advance=advance)

    table = _table(grid, records, reused)
    atomic_write_parquet(out / "points.parquet", table)
    return SweepResult(grid, out, seed_axis, table, records)


def _run_processes(
    fn: PointFn,
    tasks: list[tuple[Point, str]],
    *,
    workers: int,
    seed_axis: str | None,
    on_result: Callable[[Point, dict[str, Any]], None],
    advance: Callable[[int], None],
) -> None:
    """Each task in a spawned worker process; results are recorded by this process as they complete."""
    if not tasks:
        return
    threads = max(1, (os.cpu_count() or 1) // max(1, min(workers, len(tasks))))
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe with torch/BLAS threads already running
    pool = cf.ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=_init_worker, initargs=(threads,)
    )
    try:
        futures = {pool.submit(execute_point, fn, p.params, work, seed_axis): p for p, work in tasks}
        for fut in cf.as_completed(futures):
            p = futures[fut]
            try:
                payload = fut.result()
            except Exception as exc:  # the worker died (killed, out of memory, unpicklable result)
                payload = {
                    "status": STATUS_FAILED,
                    "error": f"worker process failed: {type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                    "seconds": float("nan"),
                }
            on_result(p, payload)
            advance(1)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # interrupted: finished points are already on disk
        raise
    pool.shutdown(wait=True)
