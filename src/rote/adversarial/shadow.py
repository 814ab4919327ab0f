"""Shadow models for LiRA: a balanced membership design, one model per grid point trained in parallel processes
(`rote.sweep.run_grid`: local worker processes with one thread each, or Ray tasks), and the per-model arrays they
leave (LiRA statistics, correctness and risk of every pool example).

Design (Carlini et al., S&P 2022, Sec. VI): m models, each trained on a random half of a pool of n examples, such
that every example is IN exactly m/2 models. Every model is in turn the target and the others its shadow models
(`rote.core.privacy.lira_leave_one_out`), so one set of m models gives m * n scored (model, example) pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rote.core.errors import ConfigError, RoteError

__all__ = ["membership_design", "model_point", "train_models", "ModelSet"]


def membership_design(n: int, n_models: int, seed: int = 0) -> np.ndarray:
    """(n_models, n) bool: column i has exactly n_models / 2 True, at random positions (n_models even, >= 2)."""
    if isinstance(n_models, bool) or int(n_models) != n_models or n_models < 2 or n_models % 2:
        raise ConfigError(
            f"`n_models` must be an even whole number >= 2 (each example IN half of them), got {n_models}"
        )
    if n < 2:
        raise ConfigError(f"the pool needs at least 2 examples, got {n}")
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((n_models, n)), axis=0)  # an independent permutation of models per example
    return order < n_models // 2


def model_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """One grid point: train model `params["model"]` of run `params["run"]` on its IN half of the pool in
    `params["data"]` (an .npz written by `rote.adversarial.experiment`), evaluate it, and save
    work_dir/arrays.npz: stats (n, A), correct (n,) bool, risk (n,) (NaN where OUT), clean_loss (epochs, n_in).
    Returns natural_acc, robust_acc and seconds."""
    import time

    from rote.adversarial.evaluate import accuracy, logits, query_statistics
    from rote.adversarial.train import AttackConfig, TrainConfig, train_classifier

    t0 = time.perf_counter()
    torch.set_num_threads(int(params.get("threads", 1)))
    with np.load(params["data"]) as d:
        x, y = torch.from_numpy(d["pool_x"]), torch.from_numpy(d["pool_y"])
        xt, yt = torch.from_numpy(d["test_x"]), torch.from_numpy(d["test_y"])
        mask = d["mask"][int(params["model"])]
        n_classes = int(d["n_classes"])
    config = TrainConfig.from_dict(params["config"])
    seed = int(params["seed"]) * 1000 + int(params["model"])
    device = params.get("device", "cpu")
    tm = train_classifier(x[mask], y[mask], config, num_classes=n_classes, seed=seed, device=device)
    eval_attack = AttackConfig(**params["eval_attack"])
    nat = accuracy(tm.model, xt, yt, seed=seed)
    rob = accuracy(tm.model, xt, yt, attack=eval_attack, seed=seed)
    stats = query_statistics(tm.model, x, y, tuple(params["augmentations"]))
    correct = (logits(tm.model, x).argmax(1) == y).numpy()
    risk = np.full(len(y), np.nan)
    risk[mask] = tm.risk
    np.savez(work_dir / "arrays.npz", stats=stats, correct=correct, risk=risk, clean_loss=tm.clean_loss)
    return {"natural_acc": nat, "robust_acc": rob, "seconds": time.perf_counter() - t0}


class ModelSet:
    """The arrays of a run's m models, stacked: stats (m, n, A), correct (m, n), risk (m, n), and the (m,)
    natural and robust accuracies."""

    def __init__(
        self,
        stats: np.ndarray,
        correct: np.ndarray,
        risk: np.ndarray,
        natural: np.ndarray,
        robust: np.ndarray,
        seconds: np.ndarray,
    ) -> None:
        self.stats, self.correct, self.risk = stats, correct, risk
        self.natural, self.robust, self.seconds = natural, robust, seconds


def train_models(
    runs: Mapping[str, Mapping[str, Any]],
    data_path: Path,
    n_models: int,
    out_dir: Path,
    *,
    seed: int = 0,
    eval_attack: Mapping[str, Any],
    augmentations: tuple[str, ...],
    workers: int = 2,
    ray: str | None = None,
    device: str = "cpu",
    quiet: bool = False,
) -> dict[str, ModelSet]:
    """Train n_models models of every run (name -> TrainConfig dict) as one `rote.sweep` grid in `out_dir`
    (finished points are reused, so an interrupted run resumes); returns name -> ModelSet."""
    from rote.sweep import Grid, run_grid
    from rote.sweep.local import point_dir

    # one axis value per run holding its own config, so that changing one run's config leaves the ids (and
    # finished models) of the others as they are
    grid = Grid(
        {"run": [{"name": k, "config": dict(v)} for k, v in runs.items()], "model": list(range(n_models))},
        fixed={
            "data": str(data_path),
            "seed": int(seed),
            "eval_attack": dict(eval_attack),
            "augmentations": list(augmentations),
            "device": device,
            "threads": 1,
        },
    )
    sweep = run_grid(_point, grid, out_dir, workers=workers, ray=ray, seed_axis=None, quiet=quiet)
    failed = [r for r in sweep.records.values() if r.get("status") != "done"]
    if failed:
        first = failed[0]
        kind = RoteError if first.get("user_error") else RuntimeError
        raise kind(f"{len(failed)} of {len(grid)} models failed; first ({first['id']}): {first.get('error')}")
    sets: dict[str, ModelSet] = {}
    for name in runs:
        arrays, nat, rob, sec = [], [], [], []
        for p in grid.points():
            if p["run"]["name"] != name:
                continue
            rec = sweep.records[p.id]
            with np.load(point_dir(out_dir, p) / "work" / "arrays.npz") as a:
                arrays.append({k: a[k] for k in ("stats", "correct", "risk")})
            nat.append(rec["scalars"]["natural_acc"])
            rob.append(rec["scalars"]["robust_acc"])
            sec.append(rec["scalars"]["seconds"])
        sets[name] = ModelSet(
            np.stack([a["stats"] for a in arrays]),
            np.stack([a["correct"] for a in arrays]),
            np.stack([a["risk"] for a in arrays]),
            np.array(nat),
            np.array(rob),
            np.array(sec),
        )
    return sets


def _point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """The grid's point function: the run axis holds the run's name and config."""
    p = dict(params)
    p["config"] = p["run"]["config"]
    return model_point(p, work_dir)
