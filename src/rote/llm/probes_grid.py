"""`rote llm probe-grid`: the probe demo (`rote.llm.probes.probe_demo`) once per seed through `rote.sweep` (local
processes or Ray tasks, resumable), summarized over seeds with Student-t intervals (`rote.core.stats`).

Each seed is a whole demo: its own planted canaries, tiny GPT, folds, loss matching and suppression sweep. Per seed
the point records the best (layer, site) probe's cross-validated AUC, the loss and min-k% AUCs on the same tokens,
the unmodified model's extraction rate and held-out perplexity, and the suppression point: the lowest extraction
within the demo's +10% perplexity budget (`best_tradeoff`, NaN when no point keeps it) with its relative
perplexity rise. The per-seed suppression curves are kept as the `curve` table.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.results import Result, table_field

#: per-seed scalars summarized over seeds, with the range their interval is clipped to (None: unbounded)
GRID_METRICS: dict[str, tuple[float, float] | None] = {
    "best_auc": (0.0, 1.0),
    "loss_auc": (0.0, 1.0),
    "min_k_auc": (0.0, 1.0),
    "extraction_unmodified": (0.0, 1.0),
    "extraction_suppressed": (0.0, 1.0),
    "ppl_unmodified": None,
    "ppl_rise": None,
}


def demo_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """`rote.sweep` point: `probe_demo` with the point's seed, its model in `work_dir/model`; returns the headline
    scalars and the suppression curve."""
    from rote.llm.probes import probe_demo

    kw = {k: v for k, v in params.items() if k != "seed"}
    seed = int(params["seed"])
    probe, curve, train, _ = probe_demo(Path(work_dir) / "model", seed=seed, **kw)
    return point_values(probe, curve)


def point_values(probe: Any, curve: Any) -> dict[str, Any]:
    """The scalars a grid keeps of one demo (a `ProbeResult` and a `SuppressResult`)."""
    base = curve.baseline
    best = curve.best_tradeoff
    table = curve.table.copy()
    return {
        "best_auc": float(probe.best["auc"]),
        "best_layer": int(probe.best["layer"]),
        "best_site": str(probe.best["site"]),
        "loss_auc": float(probe.baselines["loss"]),
        "min_k_auc": float(probe.baselines["min_k"]),
        "extraction_unmodified": float(base["extraction_rate"]),
        "ppl_unmodified": float(base["heldout_ppl"]),
        "extraction_suppressed": float(best["extraction_rate"]) if best else math.nan,
        "ppl_rise": float(best["heldout_ppl"] / base["heldout_ppl"] - 1) if best else math.nan,
        "supp_layer": int(best["layer"]) if best else -1,
        "supp_alpha": float(best["alpha"]) if best else math.nan,
        "n_positive": int(probe.n_positive),
        "curve": table,
    }


@dataclasses.dataclass(frozen=True)
class ProbeGrid(Result):
    """`rote llm probe-grid`: one probe demo per seed.
    over_seeds: {metric: {estimate, low, high, level}}: the mean over seeds with a 95% Student-t interval (NaN
    bounds with one seed; AUCs and rates clipped to [0, 1]) of every `GRID_METRICS` entry.
    per_seed: one row per seed (scalars of `point_values`); curve: every seed's suppression curve."""

    seeds: list
    over_seeds: dict
    n_failed: int
    per_seed: pd.DataFrame = table_field("per_seed")
    curve: pd.DataFrame = table_field("curve")

    def summary(self) -> str:
        def fmt(v: dict) -> str:
            if not np.isfinite(v["estimate"]):
                return "n/a"
            if not np.isfinite(v["low"]):
                return f"{v['estimate']:.3f} (one seed)"
            return f"{v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"

        lines = [f"{len(self.seeds)} seeds ({self.n_failed} failed); means with 95% t-intervals over seeds"]
        lines += [f"{m:<22} {fmt(self.over_seeds[m])}" for m in GRID_METRICS]
        return "\n".join(lines)


def probe_grid(
    out_dir: str | os.PathLike,
    seeds: Sequence[int],
    *,
    workers: int = 1,
    ray: str | None = None,
    quiet: bool = False,
    **demo_kw: Any,
) -> tuple[ProbeGrid, Any]:
    """Run `probe_demo` once per seed as `rote.sweep` points under `out_dir/grid` (finished seeds are reused) and
    summarize over seeds. demo_kw: `probe_demo`'s options (plain values: steps, per_count, max_texts, n_layer,
    min_run, alphas, direction, n_heldout, device). Returns (ProbeGrid, SweepResult)."""
    from rote.core.stats import mean_t_interval
    from rote.sweep import Grid, run_grid

    if not seeds:
        raise ConfigError("`seeds` is empty; pass at least one seed, e.g. --seeds 0,1,2")
    if "alphas" in demo_kw:
        demo_kw["alphas"] = [float(a) for a in demo_kw["alphas"]]
    grid = Grid({"seed": [int(s) for s in seeds]}, fixed=dict(demo_kw))
    sweep = run_grid(demo_point, grid, Path(out_dir) / "grid", workers=workers, ray=ray, seed_axis="seed", quiet=quiet)
    done = sweep.table[sweep.table["status"] == "done"]
    if done.empty:
        raise ConfigError(f"no seed finished ({sweep.n_failed} failed); see {sweep.out_dir}/points/*/error.json")
    cols = ["seed", *GRID_METRICS, "best_layer", "best_site", "supp_layer", "supp_alpha", "n_positive"]
    per_seed = done[cols].reset_index(drop=True)
    over_seeds = {m: mean_t_interval(per_seed[m].to_numpy(float), bounds=b).to_dict() for m, b in GRID_METRICS.items()}
    result = ProbeGrid(
        seeds=[int(s) for s in per_seed["seed"]],
        over_seeds=over_seeds,
        n_failed=int(sweep.n_failed),
        per_seed=per_seed,
        curve=sweep.point_table("curve").drop(columns=["point_id"], errors="ignore"),
    )
    return result, sweep
