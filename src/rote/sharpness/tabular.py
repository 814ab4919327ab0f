"""Sharpness of rote's TabDDPM (`rote.tabular.models.TabDDPM`): the score of its Gaussian part, an adapter to the
score interface, a sampler that keeps the trajectory, and detection against the tabular audit's labels.

The Gaussian part of TabDDPM diffuses the numeric columns (after its quantile transform) with a cosine schedule
and predicts their noise from [x_num, one-hot of the current categorical state]. Its score, with the categorical
state held fixed, is s(x_num, t | x_cat) = -eps_num / sqrt(1 - abar_t): the Hessian is the n_num x n_num
Jacobian of that map (tiny, so full spectra are cheap). rote's TabDDPM is unconditional (the label is one more
categorical column), so the conditional statistics (||H_delta s_delta||^2, Wen's ||s_delta||) are not defined
for it; the unconditional ones are.
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
    """Score interface over a fitted TabDDPM's Gaussian part. `x_cat` (N, C) categorical codes of the rows being
    measured; `c` in `score(x, t, c)` is the row index into `x_cat` (not a class: `conditional` is False)."""

    conditional = False

    def __init__(self, model: Any, x_cat: torch.Tensor) -> None:
        if not hasattr(model, "diffusion_"):
            raise ConfigError("`model` must be a fitted TabDDPM (call fit or TabDDPM.load first)")
        if model.diffusion_.n_num == 0:
            raise ConfigError("`model` has no numeric columns: the Gaussian part (and its score) is empty")
        self.model, self.x_cat = model, torch.as_tensor(x_cat, dtype=torch.long)

    @property
    def num_timesteps(self) -> int:
        return int(self.model.diffusion_.T)

    def score(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        diff = self.model.diffusion_
        if c is None:
            raise ConfigError("`c` (row indices into x_cat) is needed for the TabDDPM score")
        inp = diff.denoiser_input(x, self.x_cat.to(x.device)[c])
        eps = self.model.denoiser_(inp, t)[:, : diff.n_num]
        return -eps / diff.sqrt_1m_abar.to(x.device)[t][:, None]


@torch.no_grad()
def sample_with_trajectory(
    model: Any, n: int, seed: int = 0, record: tuple[int, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor, dict[int, tuple[torch.Tensor, torch.Tensor]]]:
    """TabDDPM's reverse chain (the same draws as `MixedDiffusion.sample` with a generator seeded `seed`), keeping
    (x_num, x_cat) as they enter the denoiser at each step in `record`. Returns (x_num, x_cat, states)."""
    diff, net = model.diffusion_, model.denoiser_
    dev = diff.device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    x_num = torch.randn((n, diff.n_num), generator=gen, device=dev)
    uniform = diff.valid.float().expand(n, -1, -1)
    x_cat = diff.sample_from_probs(uniform, gen) if diff.C else torch.zeros((n, 0), dtype=torch.long, device=dev)
    states = {}
    for i in reversed(range(diff.T)):
        if i in record:
            states[i] = (x_num.clone(), x_cat.clone())
        t = torch.full((n,), i, device=dev, dtype=torch.long)
        inp = diff.denoiser_input(x_num, x_cat)
        out = net(inp, t)
        x_num = diff.p_sample_num(x_num, out[:, : diff.n_num], t, gen)
        if diff.C:
            probs_x0 = diff.pad_logits(out[:, diff.n_num :], log=False)
            x_cat = diff.sample_from_probs(diff.posterior_probs_step(probs_x0, x_cat, i), gen)
    return x_num, x_cat, states


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
    score detection. Returns (result, the synthetic table)."""
    from rote.tabular.audit import audit

    if n < 2:
        raise ConfigError(f"`samples` must be >= 2, got {n}")
    model.denoiser_.eval()
    T = int(model.diffusion_.T)
    eval_steps = tuple(eval_steps or (T - 1, 1))
    t0 = time.perf_counter()
    x_num, x_cat, states = sample_with_trajectory(model, n, seed, eval_steps)
    synthetic = model.codec_.decode(x_num.cpu(), x_cat.cpu())
    t_sample = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame: dict[str, Any] = {"sample": np.arange(n), "class": np.zeros(n, np.int64)}
    spectra = []
    for t in eval_steps:
        xn, xc = states[t]
        adapter = TabDDPMScore(model, xc)
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
        paper_statistic=f"hs_norm2_t{min(eval_steps)}",
        detection=detection(scores, cols),
        detection_groups=None,
        group_size=None,
        detection_by_mode=None,
        auc_intervals=auc_intervals(scores, cols, seed=seed),
        eval_steps=list(eval_steps),
        timings={**(timings or {}), "sample_s": round(t_sample, 2), "measure_s": round(t_measure, 2)},
        config={**(config or {}), "audit_memorization_ratio": aud.memorization_ratio},
        scores=scores,
        spectra=pd.concat(spectra, ignore_index=True),
    )
    return result, synthetic
