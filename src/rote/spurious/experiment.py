"""Seeds as a `rote.sweep` grid: `run_seeds(task, options, seeds, out)` runs one point per seed (local processes,
in this process with workers=0, or Ray with an address) and aggregates them into a `SpuriousRun`.

A point (`spurious_point`) builds its data and calls `rote.spurious.pipeline` for one seed; it returns the
result's scalars and its tables (groups, samples, history), which the grid stores under out/grid/points/<id>/.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.results import Result, table_field
from rote.core.stats import mean_std

__all__ = ["SpuriousRun", "spurious_point", "run_seeds", "build_splits", "result_to_run", "TASKS"]

TASKS = ("linear-toy", "compare")


def build_splits(options: Mapping[str, Any], seed: int) -> Any:
    """The splits named by options["data"]: colored-<fashion-mnist|mnist5k|digits>, linear-toy, waterbirds or
    celeba (these two read options["root"])."""
    from rote.spurious.data import IMAGE_SOURCES, image_benchmark, linear_toy, load_celeba, load_waterbirds

    data = options["data"]
    if data.startswith("colored-") and data.removeprefix("colored-") in IMAGE_SOURCES:
        return image_benchmark(
            data.removeprefix("colored-"),
            n_train=options["n_train"],
            n_val=options["n_val"],
            n_test=options["n_test"],
            agreement=options["agreement"],
            seed=seed,
        )
    if data == "linear-toy":
        return linear_toy(
            options.get("n", 1000),
            options.get("d", 1800),
            agreement=options["agreement"],
            noise=options.get("noise", 0.5),
            seed=seed,
        )
    if data in ("waterbirds", "celeba"):
        if not options.get("root"):
            raise ConfigError(f"`root` is needed for --data {data}: the folder with its metadata and images")
        load = load_waterbirds if data == "waterbirds" else load_celeba
        return load(options["root"], size=options.get("image_size", 64), limit=options.get("limit"), seed=seed)
    choices = [f"colored-{s}" for s in IMAGE_SOURCES] + ["linear-toy", "waterbirds", "celeba"]
    raise ConfigError(f"`data` must be one of {', '.join(choices)}, got {data!r}")


def _config(o: Mapping[str, Any]) -> Any:
    from rote.spurious.pipeline import TrainConfig

    return TrainConfig(
        hidden=tuple(o.get("hidden", (256, 256))),
        bias=o.get("bias", True),
        epochs=o.get("epochs", 20),
        heldout_epochs=o.get("heldout_epochs"),
        batch_size=o.get("batch_size", 128),
        optimizer=o.get("optimizer", "adam"),
        lr=o.get("lr", 1e-3),
        twin_lrs=tuple(o["twin_lrs"]) if o.get("twin_lrs") else None,
        weight_decay=o.get("weight_decay", 0.0),
        dro_step_size=o.get("dro_step_size", 0.01),
    )


def run_one(task: str, options: Mapping[str, Any], seed: int, progress: Any = False) -> Any:
    """One seed of `task` as a `SpuriousResult`."""
    from rote.spurious.pipeline import compare_methods, run_linear_toy

    device = options.get("device", "cpu")
    if task == "linear-toy":
        return run_linear_toy(
            n=options["n"],
            d=options["d"],
            agreement=options["agreement"],
            noise=options["noise"],
            epochs=options["epochs"],
            lr=options["lr"],
            temperature=options["temperature"],
            seed=seed,
            device=device,
            progress=progress,
        )
    if task == "compare":
        return compare_methods(
            build_splits(options, seed),
            methods=options["methods"],
            heldout=options["heldout"],
            folds=options["folds"],
            temperature=options["temperature"],
            train_groups=options["train_groups"],
            select=options["select"],
            config=_config(options),
            seed=seed,
            device=device,
            progress=progress,
        )
    raise ConfigError(f"`task` must be one of {', '.join(TASKS)}, got {task!r}")


def spurious_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """A `rote.sweep` point: params {"task", "seed", "options"}; returns scalars and tables."""
    r = run_one(params["task"], params["options"], int(params["seed"]))
    return {**r.to_dict(), **{k.removesuffix(".parquet"): v for k, v in r.tables().items()}}


@dataclasses.dataclass(frozen=True)
class SpuriousRun(Result):
    """Methods compared over one or more seeds.

    methods: {method: {"avg_acc", "worst_group_acc", "per_group_acc"}} on test, means over seeds (the contract
    outside checks read). intervals: {method: {metric: {"mean", "std", "n", "values"}}} over seeds for avg_acc,
    worst_group_acc and the minority held-in/held-out gap. per_seed: {seed: methods}. memorization, heldout,
    weights, val, best_epoch: the first seed's (per seed in the tables).
    """

    task: str
    data: dict
    seeds: list
    methods: dict
    intervals: dict
    per_seed: dict
    val: dict
    memorization: dict
    heldout: dict
    weights: dict
    minority: list
    best_epoch: dict
    temperature: float
    seconds: float
    groups: pd.DataFrame = table_field("groups")
    samples: pd.DataFrame = table_field("samples")
    histories: pd.DataFrame = table_field("history")

    def summary(self) -> str:
        n = len(self.seeds)
        head = f"{'method':<14}{'avg acc':>16}{'worst group':>16}{'minority gap':>16}"
        lines = [f"{self.data.get('source', self.task)}, {n} seed{'s' if n > 1 else ''}", head]
        for m in self.methods:
            iv = self.intervals[m]
            cells = [
                f"{iv[k]['mean']:.3f}" + (f" ± {iv[k]['std']:.3f}" if n > 1 else "")
                for k in ("avg_acc", "worst_group_acc", "minority_gap")
            ]
            lines.append(f"{m:<14}" + "".join(f"{c:>16}" for c in cells))
        return "\n".join(lines)


def _interval(values: Sequence[float]) -> dict[str, Any]:
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    mean, std = mean_std(vals) if vals else (float("nan"), float("nan"))
    return {"mean": mean, "std": std, "n": len(vals), "values": vals}


def aggregate(
    task: str, per_seed: Mapping[int, Mapping[str, Any]], tables: Mapping[str, pd.DataFrame], seconds: float
) -> SpuriousRun:
    """Combine per-seed result dicts (`SpuriousResult.to_dict()`) into a SpuriousRun."""
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]
    methods, intervals = {}, {}
    for m in first["methods"]:
        runs = [per_seed[s]["methods"][m] for s in seeds]
        groups = list(runs[0]["per_group_acc"])
        methods[m] = {
            "avg_acc": float(np.mean([r["avg_acc"] for r in runs])),
            "worst_group_acc": float(np.mean([r["worst_group_acc"] for r in runs])),
            "per_group_acc": {g: float(np.mean([r["per_group_acc"].get(g, np.nan) for r in runs])) for g in groups},
        }
        intervals[m] = {
            "avg_acc": _interval([r["avg_acc"] for r in runs]),
            "worst_group_acc": _interval([r["worst_group_acc"] for r in runs]),
            "minority_gap": _interval([per_seed[s]["memorization"][m]["minority_gap"] for s in seeds]),
        }
    return SpuriousRun(
        task=task,
        data=first["data"],
        seeds=seeds,
        methods=methods,
        intervals=intervals,
        per_seed={str(s): per_seed[s]["methods"] for s in seeds},
        val=first["val"],
        memorization=first["memorization"],
        heldout=first["heldout"],
        weights=first["weights"],
        minority=first["minority"],
        best_epoch=first["best_epoch"],
        temperature=first["temperature"],
        seconds=seconds,
        groups=tables.get("groups", pd.DataFrame()),
        samples=tables.get("samples", pd.DataFrame()),
        histories=tables.get("history", pd.DataFrame()),
    )


def result_to_run(task: str, result: Any, seconds: float | None = None) -> SpuriousRun:
    """One seed's SpuriousResult as a SpuriousRun (the `train` verb)."""
    tables = {k.removesuffix(".parquet"): v.assign(seed=result.seed) for k, v in result.tables().items()}
    return aggregate(task, {result.seed: result.to_dict()}, tables, result.seconds if seconds is None else seconds)


def run_seeds(
    task: str,
    options: Mapping[str, Any],
    seeds: Sequence[int],
    out: str | Path,
    *,
    workers: int = 0,
    ray: str | None = None,
    quiet: bool = True,
) -> tuple[SpuriousRun, Any]:
    """Run `task` once per seed through `rote.sweep.run_grid` into out/grid and aggregate; returns the run and
    the SweepResult (its exit_status says whether points failed)."""
    from rote.sweep import Grid, run_grid

    if not seeds:
        raise ConfigError("`seeds` is empty; give at least one seed")
    t0 = time.perf_counter()
    grid = Grid({"seed": [int(s) for s in seeds]}, fixed={"task": task, "options": dict(options)})
    sweep = run_grid(spurious_point, grid, Path(out) / "grid", workers=workers, ray=ray, seed_axis="seed", quiet=quiet)
    per_seed = {}
    for p in grid.points():
        rec = sweep.records.get(p.id)
        if rec is not None and rec.get("status") == "done":
            per_seed[int(p.params["seed"])] = rec["scalars"]
    if not per_seed:  # nothing to aggregate: the first failure is the run's error
        failures = sweep.failures()
        err = str(failures["error"].iloc[0]) if len(failures) else "no point finished"
        if len(failures) and bool(failures["user_error"].iloc[0]):
            raise ConfigError(err.split(": ", 1)[-1])
        raise RuntimeError(f"every seed failed: {err}")
    tables = {}
    for name in ("groups", "samples", "history"):
        t = sweep.point_table(name)
        tables[name] = t.drop(columns=["point_id"], errors="ignore") if len(t) else t
    return aggregate(task, per_seed, tables, time.perf_counter() - t0), sweep
