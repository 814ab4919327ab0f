"""Sharpness of rote's TabDDPM (`rote.tabular.models.TabDDPM`): the score of its Gaussian part, an adapter to the
score interface, a sampler that keeps the trajectory, and detection against the tabular audit's labels.

The Gaussian part of TabDDPM diffuses the numeric columns (after its quantile transform) with a cosine schedule
and predicts their noise from [x_num, one-hot of the current categorical state]. Its score, with the categorical
state held fixed, is s(x_num, t | x_cat) = -eps_num / sqrt(1 - abar_t): the Hessian is the n_num x n_num
Jacobian of that map (tiny, so full spectra are cheap). rote's TabDDPM is unconditional by default (the label is
one more categorical column): then only the unconditional statistics exist. A class-conditional TabDDPM
(`TabDDPM(cond_column=...)`, trained with label dropout) has both s(x, t | y) and s(x, t | no class), so the
paper's ||H_delta s_delta||^2 at the first sampling step and Wen et al.'s ||s_delta|| are measured too, with the
generated row's own label as the "prompt".
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from rote.core.errors import ConfigError
from rote.sharpness.experiment import (
    RATIO_THRESHOLD,
    SharpnessResult,
    auc_intervals,
    detection,
    statistic_columns,
)
from rote.sharpness.measure import sharpness_statistics


class TabDDPMScore:
    """Score interface over a fitted TabDDPM's Gaussian part. `x_cat` (N, C) codes of the diffused categorical
    columns of the rows being measured; `c` in `score(x, t, c)` is a row index r into `x_cat`.

    Unconditional TabDDPM: `conditional` is False and c = r only picks the row's categorical state. Class-
    conditional TabDDPM (`cond_column` set): `y` (N,) are the rows' labels; c = r scores row r given its label
    y[r], c = -(r + 1) scores row r with "no class" (`null_condition`), so `delta_statistics` gets s(x | y) and
    s(x | no class) of the same row."""

    def __init__(self, model: Any, x_cat: torch.Tensor, y: torch.Tensor | None = None) -> None:
        if not hasattr(model, "diffusion_"):
            raise ConfigError("`model` must be a fitted TabDDPM (call fit or TabDDPM.load first)")
        if model.diffusion_.n_num == 0:
            raise ConfigError("`model` has no numeric columns: the Gaussian part (and its score) is empty")
        self.model, self.x_cat = model, torch.as_tensor(x_cat, dtype=torch.long)
        self.conditional = bool(getattr(model, "conditional", False))
        if self.conditional and y is None:
            raise ConfigError("`y` (the rows' labels) is needed for a class-conditional TabDDPM")
        self.y = None if y is None else torch.as_tensor(y, dtype=torch.long)

    def null_condition(self, c: torch.Tensor) -> torch.Tensor:
        """The same rows without their class: r -> -(r + 1)."""
        return torch.where(c >= 0, -c - 1, c)

    @property
    def num_timesteps(self) -> int:
        return int(self.model.diffusion_.T)

    def score(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        diff = self.model.diffusion_
        if c is None:
            raise ConfigError("`c` (row indices into x_cat) is needed for the TabDDPM score")
        rows = torch.where(c >= 0, c, -c - 1)
        inp = diff.denoiser_input(x, self.x_cat.to(x.device)[rows])
        if self.conditional:
            label = torch.where(c >= 0, self.y.to(x.device)[rows], self.model.n_cond_classes_)
            eps = self.model.denoiser_(inp, t, label)[:, : diff.n_num]
        else:
            eps = self.model.denoiser_(inp, t)[:, : diff.n_num]
        return -eps / diff.sqrt_1m_abar.to(x.device)[t][:, None]


@torch.no_grad()
def sample_with_trajectory(
    model: Any, n: int, seed: int = 0, record: tuple[int, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor, dict[int, tuple[torch.Tensor, torch.Tensor]]]:
    """TabDDPM's reverse chain (the same draws as its `_sample_codes` with a generator seeded `seed`), keeping
    (x_num, x_cat) as they enter the denoiser at each step in `record`. Returns (x_num, x_cat, states); x_cat
    holds every categorical column (a conditional model's label put back, `model.split_condition` recovers it),
    the states only the diffused ones."""
    diff, net = model.diffusion_, model.denoiser_
    dev = diff.device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    y = model.draw_classes(n, gen) if getattr(model, "conditional", False) else None
    x_num = torch.randn((n, diff.n_num), generator=gen, device=dev)
    uniform = diff.valid.float().expand(n, -1, -1)
    x_cat = diff.sample_from_probs(uniform, gen) if diff.C else torch.zeros((n, 0), dtype=torch.long, device=dev)
    states = {}
    for i in reversed(range(diff.T)):
        if i in record:
            states[i] = (x_num.clone(), x_cat.clone())
        t = torch.full((n,), i, device=dev, dtype=torch.long)
        inp = diff.denoiser_input(x_num, x_cat)
        out = net(inp, t) if y is None else net(inp, t, y)
        x_num = diff.p_sample_num(x_num, out[:, : diff.n_num], t, gen)
        if diff.C:
            probs_x0 = diff.pad_logits(out[:, diff.n_num :], log=False)
            x_cat = diff.sample_from_probs(diff.posterior_probs_step(probs_x0, x_cat, i), gen)
    return x_num, (x_cat if y is None else model.join_condition(x_cat, y)), states


def score_tabddpm(
    model: Any,
    train: pd.DataFrame,
    *,
    n: int = 1000,
    eval_steps: tuple[int, ...] | None = None,
    seed: int = 0,
    batch: int = 1000,
    config: dict | None = None,
    timings: dict | None = None,
) -> tuple[SharpnessResult, pd.DataFrame]:
    """Generate `n` rows, measure the Gaussian part's statistics at `eval_steps` (default T - 1 and 1), label
    each row by `rote.tabular.audit.audit(train, synthetic)` (distance ratio < 1/3, the TabCutMix distance), and
    score detection. A class-conditional TabDDPM adds ||H_delta s_delta||^2 and ||s_delta|| (each row's own
    label as its condition) and headlines the paper's statistic at t = T - 1; an unconditional one headlines
    ||H s||^2 at the smallest step. Returns (result, the synthetic table)."""
    from rote.tabular.audit import audit

    if n < 2:
        raise ConfigError(f"`samples` must be >= 2, got {n}")
    model.denoiser_.eval()
    T = int(model.diffusion_.T)
    eval_steps = tuple(eval_steps or (T - 1, 1))
    t0 = time.perf_counter()
    x_num, x_cat, states = sample_with_trajectory(model, n, seed, eval_steps)
    synthetic = model.codec_.decode(x_num.cpu(), x_cat.cpu())
    conditional = bool(getattr(model, "conditional", False))
    labels = model.split_condition(x_cat)[1] if conditional else None
    t_sample = time.perf_counter() - t0
    t0 = time.perf_counter()
    cls = labels.cpu().numpy() if conditional else np.zeros(n, np.int64)
    frame: dict[str, Any] = {"sample": np.arange(n), "class": cls}
    spectra = []
    for t in eval_steps:
        xn, xc = states[t]
        adapter = TabDDPMScore(model, xc, labels)
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            idx = torch.arange(start, stop)
            stats, eig = sharpness_statistics(adapter, xn[start:stop], t, idx, spectrum_method="full", seed=seed)
            for k, v in stats.items():
                frame.setdefault(f"{k}_t{t}", []).append(v)
            spectra.append(
                pd.DataFrame(
                    {
                        "sample": np.repeat(np.arange(start, stop), eig.shape[1]),
                        "t": t,
                        "rank": np.tile(np.arange(eig.shape[1]), stop - start),
                        "eigenvalue": eig.ravel(),
                    }
                )
            )
    for k in list(frame):
        if isinstance(frame[k], list):
            frame[k] = np.concatenate(frame[k])
    t_measure = time.perf_counter() - t0
    aud = audit(train, synthetic)
    rows = aud.rows
    scores = pd.DataFrame(frame)
    scores["nearest_train"] = rows["nearest_train_row"].to_numpy()
    scores["d1"], scores["d2"], scores["ratio"] = rows["d1"].to_numpy(), rows["d2"].to_numpy(), rows["ratio"].to_numpy()
    scores["memorized"] = rows["memorized"].to_numpy()
    cols = statistic_columns(scores)
    result = SharpnessResult(
        setup="tabddpm",
        n_generations=n,
        n_memorized=int(scores["memorized"].sum()),
        ratio_threshold=RATIO_THRESHOLD,
        paper_statistic=f"delta_hs_norm2_t{max(eval_steps)}" if conditional else f"hs_norm2_t{min(eval_steps)}",
        detection=detection(scores, cols),
        detection_groups=None,
        group_size=None,
        detection_by_mode=None,
        auc_intervals=auc_intervals(scores, cols, seed=seed),
        eval_steps=list(eval_steps),
        timings={**(timings or {}), "sample_s": round(t_sample, 2), "measure_s": round(t_measure, 2)},
        config={
            **(config or {}),
            "audit_memorization_ratio": aud.memorization_ratio,
            "cond_column": getattr(model, "cond_column", None),
        },
        scores=scores,
        spectra=pd.concat(spectra, ignore_index=True),
    )
    return result, synthetic


TABULAR_PRESET = dict(
    dataset="adult",
    rows=3000,
    epochs=200,
    batch_size=256,
    num_timesteps=100,
    samples=1000,
    cond_dropout=0.1,
)
"""rote's CPU-sized TabDDPM-on-Adult setup: 3,000 training rows drawn (with the seed) from the Adult training
split, the "small" TabDDPM preset with T = 100, 200 epochs of batch 256, 1,000 generated rows."""


def run_tabular(
    *,
    seed: int = 0,
    device: str = "cpu",
    cond_column: str | None = "target",
    checkpoint: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> tuple[SharpnessResult, Any]:
    """Train a TabDDPM on a shipped dataset (`TABULAR_PRESET`, overridable by keyword), generate, label each row
    with the tabular audit and score every statistic. cond_column: "target" (the dataset's target, default: a
    class-conditional TabDDPM, so the paper's ||H_delta s_delta||^2 exists), another categorical column, or None
    (rote's default unconditional TabDDPM). Returns (result, model)."""
    from rote.data import dataset_schema, load_dataset
    from rote.tabular.models import TabDDPM

    p = {**TABULAR_PRESET, **overrides}
    for key in ("rows", "epochs", "samples", "num_timesteps"):
        if int(p[key]) < (2 if key in ("rows", "samples") else 1):
            raise ConfigError(f"`{key}` must be >= {2 if key in ('rows', 'samples') else 1}, got {p[key]}")
    schema = dataset_schema(str(p["dataset"]))
    table = load_dataset(str(p["dataset"]), "train")
    if int(p["rows"]) < len(table):
        table = table.sample(n=int(p["rows"]), random_state=seed).reset_index(drop=True)
    column = schema.target if cond_column == "target" else cond_column
    model = TabDDPM(
        epochs=int(p["epochs"]),
        batch_size=int(p["batch_size"]),
        num_timesteps=int(p["num_timesteps"]),
        seed=seed,
        device=device,
        cond_column=column,
        cond_dropout=float(p["cond_dropout"]) if column is not None else None,
    )
    t0 = time.perf_counter()
    model.fit(table, schema, progress=progress)
    t_train = time.perf_counter() - t0
    if checkpoint:
        model.save(checkpoint)
    result, _ = score_tabddpm(
        model,
        table,
        n=int(p["samples"]),
        seed=seed,
        config={**p, "cond_column": column, "rows_used": len(table)},
        timings={"train_s": round(t_train, 2)},
    )
    return result, model
