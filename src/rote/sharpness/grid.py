"""Detection over seeds (and settings) as a `rote.sweep` grid: the same setup (toy, MNIST or TabDDPM on Adult)
trained and scored once per seed, each point an independent task (local processes or Ray), then every statistic's
AUC and TPR at 1% FPR summarized as mean with a Student-t interval over seeds (clipped to [0, 1]).

One run of `rote sharpness toy` is one seed: its AUC interval (bootstrap over generations) says nothing about how
much the detector changes when the model is retrained. The grid answers that, and the paper's second-order
denoising score matching can be switched on and off as an axis to measure what it buys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.results import Result, table_field
from rote.core.stats import mean_t_interval

SETUPS = ("toy", "mnist", "tabular")
AXES = ("seed", "second_order_weight")


def grid_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Grid point: run one setup with one seed (and optional preset overrides); returns the detection table and
    the counts. Module-level so that worker processes and Ray tasks can import it."""
    from rote.sharpness.experiment import run_mnist, run_toy
    from rote.sharpness.tabular import run_tabular

    setup = params["setup"]
    overrides = {k: v for k, v in params.items() if k not in ("setup", "seed", "device")}
    run = {"toy": run_toy, "mnist": run_mnist, "tabular": run_tabular}[setup]
    result, _ = run(seed=int(params["seed"]), device=params.get("device", "cpu"), **overrides)
    rows = []
    for name, v in result.detection.items():
        row = {"statistic": name, "auc": v["auc"], "tpr_at_1pct_fpr": v["tpr_at_1pct_fpr"]}
        if result.detection_groups:
            row["auc_grouped"] = result.detection_groups.get(name, {}).get("auc")
        if result.detection_by_mode:
            row["auc_vs_mode"] = result.detection_by_mode.get(name, {}).get("auc")
        rows.append(row)
    return {
        "n_generations": result.n_generations,
        "n_memorized": result.n_memorized,
        "paper_statistic": result.paper_statistic,
        "train_s": result.timings.get("train_s"),
        "detection": pd.DataFrame(rows),
    }


@dataclass(frozen=True)
class SharpnessGrid(Result):
    """What `rote sharpness grid` reports.

    detection: {setting: {statistic: {"auc": {estimate, low, high, level}, "tpr_at_1pct_fpr": {...}, "n_seeds"}}}:
        mean over seeds with a 95% Student-t interval (low/high are NaN, written null, with one seed); also
        "auc_grouped" (MNIST: n generations per class prompt) and "auc_vs_mode" (toy: against "the nearest training
        point is the duplicated mode"). A setting is "second_order_weight=<w>", or "default".
    paper_statistic: the column of the paper's statistic (or its stand-in for the unconditional toy).
    per_seed: one row per (setting, seed, statistic): auc, tpr_at_1pct_fpr (auc_grouped for MNIST).
    points: the sweep's table (one row per grid point: status, seconds, counts).
    """

    setup: str
    seeds: list
    settings: list
    paper_statistic: str
    detection: dict
    n_failed: int
    per_seed: pd.DataFrame = table_field("per_seed")
    points: pd.DataFrame = table_field("points")

    def summary(self) -> str:
        lines = [f"{self.setup}: {len(self.seeds)} seed(s) x {len(self.settings)} setting(s), {self.n_failed} failed"]
        for setting, stats in self.detection.items():
            lines.append(f"{setting}")
            for name, v in stats.items():
                mark = "  <- paper" if name == self.paper_statistic else ""
                lines.append(f"  {name:<28} AUC {_fmt_interval(v['auc'])}{mark}")
        return "\n".join(lines)


def _fmt_interval(iv: dict) -> str:
    est, lo, hi = iv["estimate"], iv["low"], iv["high"]
    if est is None or not np.isfinite(est):
        return "n/a"
    if lo is None or not np.isfinite(lo):
        return f"{est:.3f} (one seed)"
    return f"{est:.3f} [{lo:.3f}, {hi:.3f}]"


def _bounded(values: pd.Series) -> dict[str, Any]:
    """Mean and t-interval of a quantity that lives in [0, 1] (AUC, TPR), clipped to [0, 1]."""
    return mean_t_interval(values.to_numpy(float), bounds=(0.0, 1.0)).to_dict()


def build_grid(setup: str, seeds: list[int], second_order_weights: list[float] | None, fixed: dict[str, Any]):
    """The `rote.sweep.Grid` of a sharpness grid: axes seed (and second_order_weight when given)."""
    from rote.sweep import Grid

    if setup not in SETUPS:
        raise ConfigError(f"`setup` must be one of {', '.join(SETUPS)}, got {setup!r}")
    if not seeds:
        raise ConfigError("`seeds` is empty; pass at least one seed, e.g. --seeds 0,1,2")
    axes: dict[str, list] = {"seed": list(seeds)}
    if second_order_weights and setup == "tabular":
        raise ConfigError("`second_order_weight` is not an option of the tabular setup (TabDDPM has no such loss)")
    if second_order_weights:
        if any(w < 0 for w in second_order_weights):
            raise ConfigError(f"`second_order_weight` values must be >= 0, got {second_order_weights}")
        axes["second_order_weight"] = [float(w) for w in second_order_weights]
    return Grid(axes, fixed={"setup": setup, **fixed})


def summarize(setup: str, sweep: Any) -> SharpnessGrid:
    """Mean and t-interval over seeds of each statistic's AUC and TPR, per setting, from a finished sweep."""
    per_seed = sweep.point_table("detection")
    if per_seed.empty:
        raise ConfigError(f"no grid point finished ({sweep.n_failed} failed); see {sweep.out_dir}/points/*/error.json")
    if "second_order_weight" not in per_seed.columns:
        per_seed["second_order_weight"] = sweep.grid.fixed.get("second_order_weight", np.nan)
    per_seed = per_seed.drop(columns=["point_id"])
    detection: dict[str, dict] = {}
    settings = []
    for w, g in per_seed.groupby("second_order_weight", sort=True, dropna=False):
        setting = "default" if pd.isna(w) else f"second_order_weight={w:g}"
        settings.append(setting)
        detection[setting] = {
            name: {
                "auc": _bounded(gs["auc"]),
                "tpr_at_1pct_fpr": _bounded(gs["tpr_at_1pct_fpr"]),
                **{k: _bounded(gs[k]) for k in ("auc_grouped", "auc_vs_mode") if k in gs and gs[k].notna().any()},
                "n_seeds": int(gs["auc"].notna().sum()),
            }
            for name, gs in g.groupby("statistic", sort=False)
        }
    table = sweep.table
    paper = table["paper_statistic"].dropna().iloc[0] if "paper_statistic" in table else ""
    return SharpnessGrid(
        setup=setup,
        seeds=sorted(int(s) for s in per_seed["seed"].unique()),
        settings=settings,
        paper_statistic=str(paper),
        detection=detection,
        n_failed=int(sweep.n_failed),
        per_seed=per_seed.reset_index(drop=True),
        points=table.drop(columns=["user_error"], errors="ignore"),
    )


def run_sharpness_grid(
    out: str | Path,
    setup: str,
    seeds: list[int],
    *,
    second_order_weights: list[float] | None = None,
    fixed: dict[str, Any] | None = None,
    workers: int = 1,
    ray: str | None = None,
    quiet: bool = False,
) -> tuple[SharpnessGrid, Any]:
    """Run the grid into `out/grid` (finished points are reused, so an interrupted grid resumes) and summarize.
    `fixed`: preset overrides for every point (epochs, generations, steps, ...). Returns (summary, SweepResult)."""
    from rote.sweep import run_grid

    grid = build_grid(setup, seeds, second_order_weights, dict(fixed or {}))
    sweep = run_grid(grid_point, grid, Path(out) / "grid", workers=workers, ray=ray, seed_axis="seed", quiet=quiet)
    return summarize(setup, sweep), sweep
