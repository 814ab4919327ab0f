"""The ICL sweep through `rote.sweep`: one grid point per (K, N[, equalize]) trains every seed at once.

Layout of a sweep folder DIR: `DIR/grid/points/<id>/` (one per ICL point: per_seed.parquet, history.parquet,
result.json), `DIR/grid/mlp/points/<id>/` (one per stand-alone MLP K, when asked), then the analysis files at the
top (config.json, runs.parquet, k_star.parquet, plots, report.html, results.json). `analyze_sweep(DIR)` reads the
points back; points without a result are named (`missing`), and rerunning the same sweep command fills them in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, table_field
from rote.core.runs import read_json
from rote.icl import analysis as an

__all__ = [
    "ICLAnalysis",
    "analyze_sweep",
    "icl_point",
    "memorization_scaling",
    "mlp_point",
    "parse_k",
    "run_sweep",
    "sweep_grids",
]

INF = "inf"  # K -> infinity in grids and on the command line


def parse_k(value: Any) -> int | str:
    """A K value: an integer >= 2, or "inf" for the K -> infinity task."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinity", "none"):
        return INF
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"`K` values must be integers or 'inf', got {value!r}") from None
    if k < 2 or k != float(value):
        raise ConfigError(f"`K` values must be integers >= 2 (or 'inf'), got {value!r}")
    return k


def _task(p: Mapping[str, Any]):
    from rote.icl.task import make_task

    kind = p.get("task", "binary")
    if kind == "binary":
        k = None if str(p["K"]) == INF else int(p["K"])
        return make_task("binary", K=k, N=int(p["N"]), D=int(p.get("D", 63)), equalize=bool(p.get("equalize", False)))
    kw = {k: p[k] for k in ("K", "N", "L", "D", "B", "p_B", "alpha", "p_C") if k in p}
    return make_task("reddy", **kw)


def icl_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Grid point: train every seed of `params["seeds"]` on the task at (K, N); returns per-seed outcomes."""
    from rote.icl.train import train_icl

    run = train_icl(
        _task(params),
        params["seeds"],
        model=params.get("model", "one_layer"),
        steps=int(params["steps"]),
        batch=int(params.get("batch", 128)),
        lr=float(params.get("lr", 0.01)),
        wd_attention=float(params.get("wd_attention", 1e-10)),
        wd_mlp=float(params.get("wd_mlp", 1e-10)),
        hidden=int(params.get("hidden", 512)),
        eval_every=int(params.get("eval_every", 100)),
        eval_n=int(params.get("eval_n", 2000)),
        stop_at=params.get("stop_at"),
        device=params.get("device", "cpu"),
    )
    p = run.per_seed
    return {
        "steps_run": run.steps,
        "icl_acc_mean": float(p["icl_acc"].mean()),
        "acquired": int(p["acquired"].sum()),
        "per_seed": p,
        "history": run.history,
    }


def mlp_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Grid point: the stand-alone MLP memorizing K items, every seed at once; returns I_K per seed."""
    from rote.icl.train import train_mlp

    run = train_mlp(
        int(params["K"]),
        params["seeds"],
        hidden=int(params.get("hidden", 512)),
        steps=int(params["steps"]),
        batch=int(params.get("batch", 128)),
        lr=float(params.get("lr", 0.01)),
        log_every=int(params.get("log_every", 50)),
        device=params.get("device", "cpu"),
    )
    return {"I_K_mean": float(run.per_seed["I_K"].mean()), "per_seed": run.per_seed, "curve": run.curve}


def sweep_grids(
    K: Sequence[Any],
    N: Sequence[int],
    seeds: Sequence[int],
    *,
    equalize: Sequence[bool] = (False,),
    mlp_K: Sequence[int] = (),
    mlp_steps: int | None = None,
    **fixed: Any,
):
    """(ICL grid, MLP grid or None). Axes K, N (and equalize when both values are asked); `fixed` holds the
    training settings (steps, lr, hidden, batch, model, eval_every, eval_n, wd_attention, wd_mlp, stop_at, device)."""
    from rote.sweep import Grid

    ks = [str(parse_k(k)) for k in K]  # strings: one column type in the grid's tables ("64", "inf")
    ns = [int(n) for n in N]
    if not ks or not ns:
        raise ConfigError("a sweep needs at least one `K` and one `N`")
    bad = [n for n in ns if n < 2]
    if bad:
        raise ConfigError(f"`N` values must be >= 2 (context plus query), got {bad[0]}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("`seeds` must list at least one seed")
    for k in ks:  # check every point's task now, before any training
        for n in ns:
            for eq in equalize:
                _task({"K": k, "N": n, "equalize": eq, **fixed})
    axes: dict[str, Any] = {"K": ks, "N": ns}
    fx = {k: v for k, v in fixed.items() if v is not None}
    if len(set(equalize)) > 1:
        axes["equalize"] = [bool(e) for e in equalize]
    else:
        fx["equalize"] = bool(list(equalize)[0])
    icl = Grid(axes, fixed={**fx, "seeds": seeds})
    mlp = None
    if mlp_K:
        mk = [int(parse_k(k)) if parse_k(k) != INF else None for k in mlp_K]
        if None in mk:
            raise ConfigError("`mlp_K` values must be finite integers (the MLP memorizes K items)")
        keep = {k: fx[k] for k in ("hidden", "batch", "lr", "device") if k in fx}
        mlp = Grid({"K": mk}, fixed={**keep, "seeds": seeds, "steps": int(mlp_steps or fx.get("steps", 1000))})
    return icl, mlp


def run_sweep(
    out: str | Path,
    icl_grid,
    mlp_grid=None,
    *,
    workers: int = 1,
    ray: str | None = None,
    quiet: bool = False,
    point_fn: Callable | None = None,
):
    """Run the grids into `out/grid` (and `out/grid/mlp`), resuming finished points; returns (icl, mlp) results."""
    from rote.sweep import run_grid

    out = Path(out)
    icl = run_grid(point_fn or icl_point, icl_grid, out / "grid", workers=workers, ray=ray, seed_axis=None, quiet=quiet)
    mlp = None
    if mlp_grid is not None:
        mlp = run_grid(mlp_point, mlp_grid, out / "grid" / "mlp", workers=workers, ray=ray, seed_axis=None, quiet=quiet)
    return icl, mlp


# ---------------------------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class ICLAnalysis(Result):
    """What `rote icl analyze` reports. k_star: {str(N): {"k_star", "ci", ...}}; exponent: {"value", "ci",
    "predicted", "covers_predicted"}; nu: the MLP's exponent (None when no MLP run); t_icl: distribution per N;
    bimodality: per N, at the K nearest K*; equalize: share acquiring ICL per K with and without equalized labels;
    transience: share of transient runs (when attention weight decay was on); missing: points without results."""

    k_star: dict
    exponent: dict
    nu: dict | None
    t_icl: dict
    bimodality: dict
    equalize: dict | None
    transience: dict
    missing: list
    n_runs: int
    runs: pd.DataFrame = table_field("runs")
    acquired: pd.DataFrame = table_field("acquired")
    mlp_runs: pd.DataFrame = table_field("mlp_runs")

    def summary(self) -> str:
        lines = [f"{self.n_runs} runs"]
        for n, v in self.k_star.items():
            ci = v["ci"]
            ci_s = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci[0] is not None else "[n/a]"
            lines.append(f"N={n}: K* = {v['k_star']:.4g} {ci_s}")
        e = self.exponent
        if e.get("value") is not None:
            ci = e["ci"]
            ci_s = f"[{ci[0]:.3g}, {ci[1]:.3g}]" if ci[0] is not None else "[n/a]"
            lines.append(f"K* ~ N^{e['value']:.3g} {ci_s} (paper 1/nu = {e['predicted']:.3g})")
        if self.nu and self.nu.get("value") is not None:
            lines.append(f"nu = {self.nu['value']:.3g} [{self.nu['ci'][0]:.3g}, {self.nu['ci'][1]:.3g}] (paper 0.7)")
        if self.missing:
            lines.append(f"missing points: {len(self.missing)} (rerun the sweep command to fill them in)")
        return "\n".join(lines)


def _describe(params: Mapping[str, Any], axes: Sequence[str]) -> str:
    return ", ".join(f"{a}={params[a]}" for a in axes)


def _read_points(folder: Path) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    """(per-seed rows with the point's parameters, descriptions of missing points, grid dict) of a grid folder."""
    from rote.sweep import Grid, point_dir

    if not (folder / "grid.json").is_file():
        raise DataError(
            f"{folder}: no grid.json; pass the folder written by `rote icl sweep --out DIR` (it holds DIR/grid)"
        )
    spec = read_json(folder / "grid.json")
    grid = Grid.from_dict({"axes": spec["axes"], "fixed": spec.get("fixed", {})}, name=str(folder / "grid.json"))
    frames, missing = [], []
    for p in grid.points():
        d = point_dir(folder, p)
        rec = None
        if (d / "result.json").is_file():
            try:
                rec = read_json(d / "result.json")
            except Exception:  # noqa: BLE001 - an unreadable record counts as missing
                rec = None
        if rec is None or rec.get("status") != "done" or not (d / "per_seed.parquet").is_file():
            missing.append(_describe(p.params, list(grid.axes)))
            continue
        frame = pd.read_parquet(d / "per_seed.parquet")
        for key in ("K", "N", "equalize", "wd_attention"):
            if key in p.params:
                frame[key] = p.params[key]
        frame["point_id"] = p.id
        frames.append(frame)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), missing, spec


def analyze_sweep(
    folder: str | Path, *, allow_missing: bool = False, n_boot: int = 200, seed: int = 0, max_c1: float = 0.05
) -> ICLAnalysis:
    """Read a sweep folder and compute K* per N, the exponent, nu, t_ICL statistics, bimodality, equalize effect.

    Missing or unfinished points raise a DataError naming them (rerun the same `rote icl sweep` command to fill
    them in), unless `allow_missing`, which analyzes what is there and lists the rest in `missing`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"`folder` {folder}: not a folder; pass the --out folder of `rote icl sweep`")
    runs, missing, _ = _read_points(folder / "grid")
    mlp_runs, mlp_missing = pd.DataFrame(), []
    if (folder / "grid" / "mlp" / "grid.json").is_file():
        mlp_runs, mlp_missing = _read_points(folder / "grid" / "mlp")[:2]
        mlp_missing = [f"mlp {m}" for m in mlp_missing]
    missing = missing + mlp_missing
    if missing and not allow_missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise DataError(
            f"{folder}: {len(missing)} sweep points have no results: {'; '.join(missing[:3])}{more}; rerun the same "
            "`rote icl sweep` command to fill them in, or pass `allow_missing` to analyze the rest"
        )
    if runs.empty:
        raise DataError(f"{folder}: no finished sweep points to analyze")
    runs["K_inf"] = runs["K"].astype(str) == INF
    runs["K_num"] = np.where(runs["K_inf"], np.inf, pd.to_numeric(runs["K"].where(~runs["K_inf"]), errors="coerce"))
    base = runs[~runs.get("equalize", pd.Series(False, index=runs.index)).astype(bool)]
    finite = base[~base["K_inf"]].assign(K=lambda f: f["K_num"].astype(float))
    kstar: dict[str, Any] = {}
    reps: dict[int, np.ndarray] = {}
    fit_errors = {}
    for n_ctx, g in finite.groupby("N"):
        try:
            ks, rp = an.k_star(g, n_boot=n_boot, seed=seed)
            kstar.update(ks)
            reps.update(rp)
        except DataError as exc:
            fit_errors[str(int(n_ctx))] = str(exc)
    exponent = an.exponent_fit(kstar, reps)
    if fit_errors:
        exponent["fit_errors"] = fit_errors
    # t_ICL: runs at K -> infinity when there are any, else at the largest K per N
    if base["K_inf"].any():
        tsrc, where = base[base["K_inf"]], "K = inf"
    else:
        top = finite.groupby("N")["K"].transform("max")
        tsrc, where = finite[finite["K"] == top], "largest K per N"
    t_stats = {**an.t_icl_stats(tsrc), "runs_from": where}
    bimod = {}
    for n_ctx, v in kstar.items():
        g = finite[finite["N"] == int(n_ctx)]
        ks = np.array(sorted(g["K"].unique()))
        k_near = float(ks[np.argmin(np.abs(np.log(ks) - np.log(v["k_star"])))])
        bimod[n_ctx] = {"K": k_near, **an.bimodality(g.loc[g["K"] == k_near, "icl_acc"].to_numpy())}
    eq = None
    if "equalize" in runs and runs["equalize"].astype(bool).any():
        fin = runs[~runs["K_inf"]].assign(K=lambda f: f["K_num"].astype(float))
        share = an.acquired_share(fin, ("equalize", "N", "K"))
        eq = {
            ("equalized" if e else "free"): {f"N={int(n)},K={int(k)}": a for n, k, a in zip(g.N, g.K, g.acquired)}
            for e, g in share.groupby("equalize")
        }
    trans = {
        "runs": int(len(runs)),
        "acquired": int(runs["t_icl"].notna().sum()),
        "transient": int(runs["transient"].sum()),
        # acquired ICL and ended below 0.9: ICL lost for good, not a dip that recovered
        "ended_below": int((runs["t_icl"].notna() & (runs["icl_acc"] < 0.9)).sum()),
        "by_wd_attention": {
            str(w): {"runs": int(len(g)), "transient": int(g["transient"].sum())}
            for w, g in runs.groupby(runs.get("wd_attention", pd.Series(0.0, index=runs.index)))
        },
    }
    nu = None
    if not mlp_runs.empty:
        nu = an.nu_fit(mlp_runs, seed=seed, max_c1=max_c1)
    acquired = an.acquired_share(finite) if not finite.empty else pd.DataFrame()
    keep = [c for c in runs.columns if c not in ("K_num",)]
    out_runs = runs[keep].assign(K=runs["K"].astype(str))
    return ICLAnalysis(
        k_star=kstar,
        exponent=exponent,
        nu=nu,
        t_icl=t_stats,
        bimodality=bimod,
        equalize=eq,
        transience=trans,
        missing=missing,
        n_runs=int(len(runs)),
        runs=out_runs,
        acquired=acquired,
        mlp_runs=mlp_runs,
    )


@dataclass(frozen=True)
class MemorizationScaling(Result):
    """Stand-alone MLP runs at several K: per_seed (K, seed, c1, I_K, accuracy), curve (K, step, seed, c1, I_K)
    and nu = the slope of log I_K against log K with a bootstrap interval over seeds (None with one K)."""

    K: list
    seeds: list
    steps: int
    nu: dict | None
    per_seed: pd.DataFrame = table_field("per_seed")
    curve: pd.DataFrame = table_field("curve")

    def summary(self) -> str:
        lines = [f"K={k}: I_K {g.I_K.mean():.4g}, final c1 {g.c1.mean():.3g}" for k, g in self.per_seed.groupby("K")]
        if self.nu and self.nu.get("value") is not None:
            lines.append(f"nu = {self.nu['value']:.3g} [{self.nu['ci'][0]:.3g}, {self.nu['ci'][1]:.3g}] (paper 0.7)")
        return "\n".join(lines)


def memorization_scaling(
    K: Sequence[int],
    seeds: Sequence[int],
    *,
    max_c1: float = 0.05,
    progress: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> MemorizationScaling:
    """`train_mlp` at every K (all seeds at once per K), then nu from I_K ~ K^nu over the K whose final c1 is at
    most `max_c1` (`analysis.nu_fit`); kwargs go to `train_mlp`."""
    from rote.icl.train import train_mlp

    per, curves = [], []
    for k in K:
        r = train_mlp(int(k), seeds, progress=progress, **kwargs)
        per.append(r.per_seed.assign(K=int(k)))
        curves.append(r.curve.assign(K=int(k)))
    per_seed = pd.concat(per, ignore_index=True)
    nu = an.nu_fit(per_seed, max_c1=max_c1) if len(set(int(k) for k in K)) >= 2 else None
    return MemorizationScaling(
        K=[int(k) for k in K],
        seeds=[int(s) for s in seeds],
        steps=int(kwargs.get("steps", 5000)),
        nu=nu,
        per_seed=per_seed,
        curve=pd.concat(curves, ignore_index=True),
    )
