"""Detecting memorization from activations, and suppressing it (after Slonski 2024, "Detecting Memorization in
Large Language Models", arXiv:2412.01014; the paper gives no probe or intervention details, so this follows the
design in the project's reference notes, section 3.2, with every setting configurable).

Pipeline, top to bottom:

1. `capture` — one forward pass per batch streams the activation of every token at each (layer, site) to disk
   (`Backend.capture_hidden_states`, on `rote.core.hooks.capture_to_disk`), with per-token metadata (the next
   token's log-probability and whether it is the model's top-1 prediction).
2. Labels, per *prediction position*: row p of a text is the activation at position p, which predicts token p+1.
   - `memorized_positions`: p is memorized when token p+1 lies inside a run of >= `min_run` consecutive top-1
     correct predictions. Greedy decoding from the prefix that ends where the run starts reproduces the run verbatim
     (greedy decoding of a teacher-forced-correct run is the run), so this is "inside a sequence the model
     reproduces verbatim from its prefix" computed in one pass; `tests/llm/test_probes.py` checks it against
     `generate`.
   - controls: every position of texts the model has not seen; `match_on_loss` keeps, in each bin of the token
     loss, as many control as memorized positions, so that loss alone separates them barely (the paper's point:
     the probe must beat the loss).
   - `repetition_positions`: the second task; p is "repeated" when the n-gram ending at token p+1 occurred earlier
     in the same text (in-context copying).
3. `LogisticProbes`: L2-regularized logistic regression (scikit-learn's objective 0.5|w|^2 + C sum log-loss,
   intercept unpenalized) on standardized features, fitted for all (layer, site) problems at once by batched
   Newton-CG in float64; `MLPProbe` is the small-MLP option. `cross_validate` splits by text (no text has tokens
   on both sides of a fold) and reports out-of-fold accuracy, ROC-AUC and F1 per (layer, site), beside the loss
   and min-k% AUCs on the same tokens (`rote.core.privacy`).
4. `suppress`: h <- h - alpha (h.w) w at one layer with w the probe's direction in activation space
   (`rote.core.hooks.project_out`, through `Backend.intervene`), over a grid of layers and alphas: greedy
   extraction of the memorized texts' suffixes from their prefixes, and perplexity of held-out texts. alpha = 0 is
   the unmodified model; alpha = 1 removes the component; alpha > 1 pushes past it (steering away).

A fitted `ProbeSet` is saved with the weights fingerprint of the model it was trained on; applying it to another
model is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rote.core.errors import BackendError, ConfigError, DataError
from rote.core.privacy import min_k_score, roc_auc
from rote.core.results import Result, table_field
from rote.core.runs import atomic_write_bytes, atomic_write_json, make_rng
from rote.core.stats import auc_ci, mean_t_interval
from rote.llm.backends.base import SITES, Backend
from rote.llm.backends.torch_lm import Float16Overflow

PROBE_FORMAT = "rote-probes"
PROBE_KINDS = ("logistic", "mlp")
DIRECTIONS = ("probe", "mean_diff")
# How `probe_study` stores activations by default: float16 moved no probe's cross-validated AUC by more than 1e-4
# (tiny GPT demo and SmolLM2, `python bench/llm_probes.py --dtype-agreement`) and halves the capture's copies and
# disk traffic; values beyond its range fall back to float32 (docs/probes.md, Speed)
CAPTURE_DTYPE = "float16"

# ---------------------------------------------------------------------------------------------- labels


def memorized_positions(top1: np.ndarray, min_run: int) -> np.ndarray:
    """(T,) bool: position p is memorized when prediction p lies in a run of >= min_run consecutive top-1-correct
    predictions. top1: (T,) bool, top1[p] = the model's argmax at p is token p+1 (False at the last position)."""
    top1 = np.asarray(top1, dtype=bool)
    if min_run < 1:
        raise ConfigError(f"`min_run` must be at least 1, got {min_run}")
    out = np.zeros(len(top1), dtype=bool)
    p = 0
    while p < len(top1):
        if not top1[p]:
            p += 1
            continue
        q = p
        while q < len(top1) and top1[q]:
            q += 1
        if q - p >= min_run:
            out[p:q] = True
        p = q
    return out


def repetition_positions(tokens: Sequence[int], n: int) -> np.ndarray:
    """(T,) bool: position p (predicting token p+1) is repeated when the n tokens ending at token p+1 occurred
    earlier in `tokens` (an earlier start); the last position predicts nothing and is False."""
    if n < 1:
        raise ConfigError(f"`ngram` must be at least 1, got {n}")
    toks = [int(t) for t in tokens]
    out = np.zeros(len(toks), dtype=bool)
    seen: set[tuple[int, ...]] = set()
    for end in range(n, len(toks) + 1):  # n-gram toks[end-n:end], ending at token end-1
        gram = tuple(toks[end - n : end])
        if gram in seen and end - 2 >= 0:
            out[end - 2] = True
        seen.add(gram)
    return out


def match_on_loss(
    loss_pos: np.ndarray, loss_neg: np.ndarray, *, bins: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into loss_pos and loss_neg with equal counts in each of `bins` quantile bins of the pooled loss:
    min(n_pos, n_neg) of each class per bin, drawn at random with `seed`. Returns (pos_idx, neg_idx), sorted."""
    loss_pos, loss_neg = np.asarray(loss_pos, float), np.asarray(loss_neg, float)
    if bins < 1:
        raise ConfigError(f"`bins` must be at least 1, got {bins}")
    pooled = np.concatenate([loss_pos, loss_neg])
    if len(pooled) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)))
    bp = np.clip(np.searchsorted(edges, loss_pos, side="right") - 1, 0, max(0, len(edges) - 2))
    bn = np.clip(np.searchsorted(edges, loss_neg, side="right") - 1, 0, max(0, len(edges) - 2))
    rng = make_rng(seed)
    keep_p, keep_n = [], []
    for b in range(max(1, len(edges) - 1)):
        ip, ineg = np.flatnonzero(bp == b), np.flatnonzero(bn == b)
        m = min(len(ip), len(ineg))
        if m:
            keep_p.append(rng.choice(ip, m, replace=False))
            keep_n.append(rng.choice(ineg, m, replace=False))
    cat = lambda parts: np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)  # noqa: E731
    return cat(keep_p), cat(keep_n)


def window_min_k(
    logprobs: np.ndarray, seq: np.ndarray, rows: np.ndarray | None = None, *, window: int = 32, k: float = 0.2
) -> np.ndarray:
    """Token-level min-k% (Shi et al.): per position, `rote.core.privacy.min_k_score` of the log-probabilities of
    the last `window` predictions of its own text up to and including it. logprobs, seq: (N,) aligned, rows of one
    text contiguous and in order; rows: the positions to score (default all). Higher = more member-like."""
    logprobs, seq = np.asarray(logprobs, float), np.asarray(seq)
    first = np.r_[0, np.flatnonzero(seq[1:] != seq[:-1]) + 1]  # first row of each text
    text_start = first[np.searchsorted(first, np.arange(len(seq)), side="right") - 1]
    rows = np.arange(len(seq)) if rows is None else np.asarray(rows)
    return np.array([min_k_score(logprobs[max(text_start[i], i - window + 1) : i + 1], k) for i in rows])


# ---------------------------------------------------------------------------------------------- probes


def _standardize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (P, C) of x (P, N, C) over rows; constant features get std 1."""
    mu = x.mean(dim=1)
    sd = x.std(dim=1, unbiased=False)
    return mu, torch.where(sd > 1e-12, sd, torch.ones_like(sd))


class LogisticProbes:
    """P independent L2 logistic regressions fitted at once (one per (layer, site) problem).

    Objective per problem (scikit-learn's `LogisticRegression(C=C)` on standardized features):
    0.5 |w|^2 + C * sum_i log(1 + exp(-s_i (x_i . w + b))), s_i = +-1, intercept b unpenalized. Minimized by
    Newton's method batched over problems, in float64, to a gradient norm below `tol` (relative to the start): with
    the Hessians formed and Cholesky-solved at every step when C + 1 <= `direct_max`, else Newton-CG (Hessian-vector
    products X^T D X v, O(N C) per CG step instead of O(N C^2), `cg_iter` steps at most) preconditioned by the
    Cholesky factor of an earlier step's Hessian. On one CPU core a formed Hessian (BLAS syrk) costs about
    (C + 1) / 32 Hessian-vector products and preconditioned CG takes a few steps, so forming it at every step pays
    only for narrow features (`direct_max` = 128). Problems go through in blocks of about `block_bytes` of features
    (sized to stay in cache), and converged problems leave their block's batch (see `_newton`). With `parallel`
    and torch set to T > 1 threads, the blocks (at least one per thread) are fitted T at a time, each on one
    thread (torch and BLAS), instead of one block at a time on T threads: a probe's operations are too small for
    intra-op threads to pay (bench/llm_probes.py); torch's thread count is restored afterwards. The optimum is the
    same either way (tested).

    fit(x (P, N, C), y (N,) 0/1) -> self; `coef_` (P, C) on standardized features, `intercept_` (P,), `mean_`,
    `scale_` (P, C); `decision_function(x)` (P, N); `direction()` (P, C) = coef_ / scale_, the direction in the raw
    activation space that the probe reads.
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        max_iter: int = 50,
        tol: float = 1e-7,
        cg_iter: int = 100,
        direct_max: int = 128,
        block_bytes: int = 8 << 20,
        parallel: bool = True,
    ):
        self.C, self.max_iter, self.tol, self.cg_iter, self.direct_max = C, max_iter, tol, cg_iter, direct_max
        self.block_bytes, self.parallel = block_bytes, parallel

    def fit(self, x: np.ndarray | torch.Tensor, y: np.ndarray) -> "LogisticProbes":
        if not self.C > 0:
            raise ConfigError(f"`C` must be > 0, got {self.C}")
        X = torch.as_tensor(np.asarray(x))  # converted to float64 block by block, below
        if X.dim() == 2:
            X = X.unsqueeze(0)
        yv = torch.as_tensor(np.asarray(y), dtype=torch.float64)
        if X.dim() != 3 or X.shape[1] != len(yv):
            raise DataError(f"probe features of shape {tuple(X.shape)} do not match {len(yv)} labels")
        if len(torch.unique(yv)) != 2:
            raise DataError("probe labels hold one class only; a probe needs positive and negative tokens")
        p, n, c = X.shape
        w = torch.zeros(p, c + 1, dtype=torch.float64)
        mu, sd = torch.zeros(p, c, dtype=torch.float64), torch.ones(p, c, dtype=torch.float64)
        # Problems are solved in blocks whose features fit in cache (`block_bytes`): every Newton and CG step
        # passes over a block's features, and a batch larger than the cache is read from memory at every pass
        # (all 30 SmolLM2 problems in one batch took 5x the time of a loop over them). Standardizing block by
        # block keeps those passes in cache too.
        size = max(1, min(p, int(self.block_bytes) // (n * (c + 1) * 12)))  # float64 + float32 copies
        workers = min(torch.get_num_threads(), p) if self.parallel else 1
        if workers > 1:  # at least one block per worker
            size = min(size, -(-p // workers))

        def fit_block(lo: int) -> int:
            hi = min(p, lo + size)
            Z = torch.empty(hi - lo, n, c + 1, dtype=torch.float64)
            centered = Z[:, :, :c]
            Xb = X[lo:hi].to(torch.float64)
            mu[lo:hi] = Xb.mean(dim=1)
            torch.sub(Xb, mu[lo:hi, None], out=centered)
            # `_standardize`'s population std, from the centered rows at hand (torch.std takes several times longer)
            std = centered.square().mean(dim=1).sqrt_()
            sd[lo:hi] = torch.where(std > 1e-12, std, torch.ones_like(std))
            centered.div_(sd[lo:hi, None])
            Z[:, :, c] = 1.0  # the intercept's column
            w[lo:hi], steps = self._newton(Z, yv)
            return steps

        starts = range(0, p, size)
        if workers > 1:
            steps = _map_one_thread_each(fit_block, starts, workers)
        else:
            steps = [fit_block(lo) for lo in starts]
        self.n_iter_ = max(steps)
        self.coef_ = w[:, :-1].numpy()
        self.intercept_ = w[:, -1].numpy()
        self.mean_, self.scale_ = mu.numpy(), sd.numpy()
        return self

    def _newton(self, Z: torch.Tensor, yv: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Minimize the objective for a block Z (b, N, C+1) (standardized features and a ones column); returns
        (w (b, C+1), the most Newton steps a problem took).

        Each step solves H s = -g, H = diag(reg) + C Z^T D Z, D = p (1 - p). With C + 1 <= `direct_max`, H is formed
        (a float32 batched matmul, O(N C^2)) and Cholesky-factored at every step: exact Newton. Wider features use
        conjugate gradients (Hessian-vector products, O(N C) each) preconditioned by the Cholesky factor of an
        earlier step's Hessian: near the optimum the Hessian changes little, so a few CG steps suffice, and the
        factor is refreshed when CG took more steps than a refresh costs. Gradients and the line search stay
        float64, so the optimum is the float64 one. Converged problems are dropped from the batch (one copy each
        time the batch halves; until then they ride along with a zero step)."""
        b, n, c1 = Z.shape
        reg = torch.ones(c1, dtype=Z.dtype)
        reg[-1] = 0.0  # the intercept is not penalized
        C = float(self.C)
        W = torch.zeros(b, c1, dtype=Z.dtype)
        held = torch.arange(b)  # problems still in the batch: rows of Zh, Zh32, w, z, ...
        Zh, Zh32 = Z, Z.float()
        w = torch.zeros(b, c1, dtype=Z.dtype)
        z = torch.zeros(b, n, dtype=Z.dtype)  # logits Z w, carried along: no extra pass over Z to recompute them

        def loss_prob(z: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            ll = torch.nn.functional.softplus(z) - yv * z  # log(1 + e^-z) for y=1, log(1 + e^z) for y=0
            return 0.5 * (reg * w * w).sum(1) + C * ll.sum(1), torch.sigmoid(z)

        loss, prob = loss_prob(z, w)
        grad = reg * w + C * torch.bmm((prob - yv).unsqueeze(1), Zh).squeeze(1)
        g0 = grad.norm(dim=1).clamp_min(1e-300)
        factor: torch.Tensor | None = None  # (len(held), C+1, C+1) float32 Cholesky factor of a recent Hessian
        refresh = True  # the first step is exact (w = 0: D = C/4 everywhere) and gives the first factor
        # CG steps after which the next Newton step forms a fresh Hessian instead: the fit time is flat between 6
        # and 12 on SmolLM2 and tiny-GPT activations (3 to 100 tried, bench/llm_probes.py's problems)
        refresh_after = 6
        steps = 0
        for it in range(self.max_iter):
            active = grad.norm(dim=1) > self.tol * g0
            if not bool(active.any()):
                break
            steps = it + 1
            if 2 * int(active.sum()) <= len(held):  # compact: the converged half leaves the batch
                keep = torch.nonzero(active).squeeze(1)
                W[held[~active]] = w[~active]
                held, Zh, Zh32 = held[keep], Zh.index_select(0, keep), Zh32.index_select(0, keep)
                w, z, loss, prob, grad, g0, active = (
                    w[keep],
                    z[keep],
                    loss[keep],
                    prob[keep],
                    grad[keep],
                    g0[keep],
                    active[keep],
                )
                factor = None if factor is None else factor.index_select(0, keep)
            rhs = -grad * active[:, None]  # converged problems still held take a zero step
            dvec = prob * (1 - prob) * C  # (h, N)
            if c1 <= self.direct_max:
                step = _cholesky_solve(_hessian_factor(Zh32, dvec, reg), rhs)
            elif refresh:  # an exact Newton step, and the factor that preconditions the next ones
                factor = _hessian_factor(Zh32, dvec, reg)
                step = _cholesky_solve(factor, rhs)
                factor = factor.float()  # float32 solves: half the memory traffic per CG step
                refresh = False
            else:

                def hess(
                    v: torch.Tensor, dvec32: torch.Tensor = dvec.float(), Zh32: torch.Tensor = Zh32
                ) -> torch.Tensor:
                    # float32 products (half the memory traffic); CG only needs an approximate solve
                    zv = torch.bmm(Zh32, v.float().unsqueeze(2))  # (h, N, 1)
                    return reg * v + torch.bmm(Zh32.transpose(1, 2), dvec32.unsqueeze(2) * zv).squeeze(2).double()

                def precondition(r: torch.Tensor, factor: torch.Tensor | None = factor) -> torch.Tensor:
                    if factor is None:
                        return r
                    return _cholesky_solve(factor, r.float()).double()

                eta = torch.clamp(torch.sqrt(grad.norm(dim=1) / g0), max=0.5)
                step, cg_steps = _batched_pcg(hess, rhs, precondition, self.cg_iter, eta)
                if cg_steps > refresh_after:
                    refresh = True  # the next step forms the Hessian afresh (and takes an exact Newton step)
            zs = torch.bmm(Zh, step.unsqueeze(2)).squeeze(2)  # (h, N): the logits move by t * zs
            t = torch.ones(len(held), dtype=Z.dtype)
            slope = (grad * step).sum(1)
            for _ in range(30):  # backtracking per problem (Armijo); a zero step is always accepted
                new_loss, new_prob = loss_prob(z + t[:, None] * zs, w + t[:, None] * step)
                ok = (new_loss <= loss + 1e-4 * t * slope) | ~active
                if bool(ok.all()):
                    break
                t = torch.where(ok, t, t / 2)
            else:  # no sufficient decrease in 30 halvings: take the last, tiny step and its values
                new_loss, new_prob = loss_prob(z + t[:, None] * zs, w + t[:, None] * step)
            w = w + t[:, None] * step
            z = z + t[:, None] * zs
            loss, prob = new_loss, new_prob
            grad = reg * w + C * torch.bmm((prob - yv).unsqueeze(1), Zh).squeeze(1)
        W[held] = w
        return W, steps

    def decision_function(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """(P, N) logits for x (P, N, C) (or (N, C) with one problem)."""
        X = torch.as_tensor(np.asarray(x), dtype=torch.float64)
        if X.dim() == 2:
            X = X.unsqueeze(0)
        z = (X - torch.as_tensor(self.mean_)[:, None]) / torch.as_tensor(self.scale_)[:, None]
        return (
            torch.einsum("pnc,pc->pn", z, torch.as_tensor(self.coef_)) + torch.as_tensor(self.intercept_)[:, None]
        ).numpy()

    def predict_proba(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """(P, N) probability of the positive class."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(x)))

    def direction(self) -> np.ndarray:
        """(P, C): coef_ / scale_, the probe's weight vector in raw activation space (unnormalized)."""
        return self.coef_ / self.scale_


def _map_one_thread_each(fn: Any, items: Sequence[Any], workers: int) -> list[Any]:
    """[fn(item) for item in items], `workers` at a time on threads of their own, with torch and the BLAS libraries
    limited to one thread each for the duration. Torch reads its thread count when a thread first runs a parallel
    operation, so the pool's fresh threads start at one; the caller's count is restored on exit."""
    from concurrent.futures import ThreadPoolExecutor

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas_threads().limit(limits=1), ThreadPoolExecutor(workers, thread_name_prefix="rote-probes") as pool:
            return list(pool.map(fn, items))
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def _blas_threads() -> Any:
    """A threadpoolctl controller of the BLAS libraries the fit uses (scipy's, loaded first): made once, since
    `threadpool_limits` scans the loaded libraries at every call (4 ms, 5% of a tiny-GPT probe fit)."""
    import scipy.linalg.blas  # noqa: F401  (loaded before the scan, so that it is limited too)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _hessian_factor(Z32: torch.Tensor, dvec: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Upper Cholesky factors U (b, C+1, C+1), float64, of the Hessians diag(reg) + Z^T diag(dvec) Z (H = U^T U;
    solve with `_cholesky_solve`). Each Hessian is formed in float32 by BLAS syrk, which
    computes one triangle only (half the flops of a matmul, and half again for float32), and factored in float64
    by LAPACK potrf, which reads that triangle only."""
    from scipy.linalg import blas, lapack

    b, n, c1 = Z32.shape
    out = np.empty((b, c1, c1))
    root = torch.sqrt(dvec.float()).numpy()  # Z^T D Z = (D^1/2 Z)^T (D^1/2 Z)
    for i in range(b):
        a = root[i][:, None] * Z32[i].numpy()  # (N, C+1) C-ordered = (C+1, N) Fortran-ordered: no copy below
        H = blas.ssyrk(1.0, a.T, lower=0).astype(np.float64)  # upper triangle of a^T a
        H[np.diag_indices(c1)] += reg.numpy() + 1e-10
        U, info = lapack.dpotrf(H, lower=0, clean=1)
        if info > 0:  # float32 rounding made a nearly singular Hessian indefinite: add a little ridge
            H[np.diag_indices(c1)] += 1e-6 * np.abs(np.diag(H)).max() + 1e-8
            U, info = lapack.dpotrf(H, lower=0, clean=1)
        if info != 0:
            raise FloatingPointError(f"Cholesky factorization of a probe Hessian failed (LAPACK info {info})")
        out[i] = U
    return torch.from_numpy(out)


def _cholesky_solve(U: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """x (b, C) solving U^T U x = r for upper factors U (b, C, C), in U's dtype: two triangular solves on U as it
    is laid out (torch.cholesky_solve would first copy a row-major factor to column-major, at every call)."""
    y = torch.linalg.solve_triangular(U.mT, r.unsqueeze(2), upper=False)
    return torch.linalg.solve_triangular(U, y, upper=True).squeeze(2)


def _batched_pcg(
    hess: Any, b: torch.Tensor, precondition: Any, iters: int, eta: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """Solve H x = b for each row (H symmetric positive definite, given as a batched product hess(v)) by
    preconditioned conjugate gradients (precondition(r) ~ H^-1 r), to a residual |r| <= eta |b| per row. Rows that
    converge (or have b = 0) are frozen by a zero step length. Returns (x, the steps taken)."""
    x = torch.zeros_like(b)
    r = b.clone()
    s = precondition(r)
    d = s.clone()
    rs = (r * s).sum(1)
    tol = eta.square() * (b * b).sum(1)
    k = 0
    for k in range(1, iters + 1):
        live = (r * r).sum(1) > tol
        if not bool(live.any()):
            return x, k - 1
        hd = hess(d)
        alpha = torch.where(live, rs / (d * hd).sum(1).clamp_min(1e-300), torch.zeros_like(rs))
        x = x + alpha[:, None] * d
        r = r - alpha[:, None] * hd
        s = precondition(r)
        rs_new = (r * s).sum(1)
        beta = torch.where(live, rs_new / rs.clamp_min(1e-300), torch.zeros_like(rs))
        d = torch.where(live[:, None], s + beta[:, None] * d, d)
        rs = torch.where(live, rs_new, rs)
    return x, k


class MLPProbe:
    """The small-MLP option: per problem, standardize -> Linear(C, hidden) -> ReLU -> Linear(hidden, 1), trained
    full-batch with AdamW (weight decay `l2`) for `epochs` steps, seeded. Same fit / decision_function / direction
    interface as `LogisticProbes`; its `direction()` is the mean input gradient of the logit over the training rows
    (the direction an intervention removes)."""

    def __init__(self, hidden: int = 64, *, epochs: int = 300, lr: float = 1e-2, l2: float = 1e-3, seed: int = 0):
        self.hidden, self.epochs, self.lr, self.l2, self.seed = hidden, epochs, lr, l2, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> "MLPProbe":
        X = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        if X.dim() == 2:
            X = X.unsqueeze(0)
        yv = torch.as_tensor(np.asarray(y), dtype=torch.float32)
        if len(torch.unique(yv)) != 2:
            raise DataError("probe labels hold one class only; a probe needs positive and negative tokens")
        mu, sd = _standardize(X)
        self.mean_, self.scale_ = mu.numpy(), sd.numpy()
        Z = (X - mu[:, None]) / sd[:, None]
        self.nets_, dirs = [], []
        for i in range(X.shape[0]):
            g = torch.Generator().manual_seed(int(self.seed) * 1000 + i)
            net = torch.nn.Sequential(
                torch.nn.Linear(X.shape[2], self.hidden), torch.nn.ReLU(), torch.nn.Linear(self.hidden, 1)
            )
            with torch.no_grad():
                for prm in net.parameters():
                    prm.copy_(torch.randn(prm.shape, generator=g) * (1.0 / math.sqrt(prm.shape[-1])))
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.l2)
            for _ in range(self.epochs):
                opt.zero_grad()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(Z[i]).squeeze(1), yv)
                loss.backward()
                opt.step()
            zi = Z[i].clone().requires_grad_(True)
            net(zi).sum().backward()
            dirs.append((zi.grad.mean(0) / torch.as_tensor(self.scale_[i])).detach().numpy())
            self.nets_.append(net.eval())
        self.direction_ = np.stack(dirs)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        X = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        if X.dim() == 2:
            X = X.unsqueeze(0)
        Z = (X - torch.as_tensor(self.mean_)[:, None]) / torch.as_tensor(self.scale_)[:, None]
        with torch.no_grad():
            return np.stack([net(Z[i]).squeeze(1).numpy() for i, net in enumerate(self.nets_)]).astype(np.float64)

    def direction(self) -> np.ndarray:
        return self.direction_


def make_probe(kind: str, *, C: float = 1.0, seed: int = 0) -> LogisticProbes | MLPProbe:
    """A fresh probe of `kind` ("logistic" or "mlp")."""
    if kind == "logistic":
        return LogisticProbes(C)
    if kind == "mlp":
        return MLPProbe(seed=seed)
    raise ConfigError(f"`probe` {kind!r}: choose one of {', '.join(PROBE_KINDS)}")


def group_folds(groups: np.ndarray, folds: int, seed: int = 0, strata: np.ndarray | None = None) -> np.ndarray:
    """(N,) fold number of each row; all rows of a group (a text) share a fold. Groups are shuffled with `seed`
    and dealt round-robin, so fold sizes differ by at most one group; with `strata` (N,) (e.g. whether a row is
    positive) groups are dealt per stratum of their first row, so every fold gets its share of each kind of text."""
    groups = np.asarray(groups)
    uniq, first = np.unique(groups, return_index=True)
    if folds < 2:
        raise ConfigError(f"`folds` must be at least 2, got {folds}")
    if len(uniq) < folds:
        raise DataError(f"{len(uniq)} texts hold labelled tokens, fewer than `folds` = {folds}; give more texts")
    kind = np.zeros(len(uniq), np.int64) if strata is None else np.asarray(strata)[first].astype(np.int64)
    rng = make_rng(seed)
    fold_of = np.empty(len(uniq), np.int64)
    offset = 0
    for k in np.unique(kind):
        members = np.flatnonzero(kind == k)
        members = members[rng.permutation(len(members))]
        fold_of[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)  # the next stratum continues the deal, keeping fold sizes even
    return fold_of[np.searchsorted(uniq, groups)]


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum(pred & y))
    fp, fn = float(np.sum(pred & ~y)), float(np.sum(~pred & y))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def cross_validate(
    features: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    probe: str = "logistic",
    C: float = 1.0,
    folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Out-of-fold probe scores for P problems at once, folds split by `groups` (texts).

    features: (P, N, C); y: (N,) bool; groups: (N,) text ids. Returns (scores (P, N) out-of-fold logits,
    metrics frame with one row per problem: auc (mean over test folds holding both classes), auc_low / auc_high
    (95% t-interval of that mean over folds), acc and f1 (pooled, threshold 0))."""
    y = np.asarray(y, dtype=bool)
    # texts dealt per kind (those holding positive tokens, the others), so that every training side has both
    has_pos = pd.Series(y).groupby(np.asarray(groups)).transform("any").to_numpy()
    fold = group_folds(groups, folds, seed, strata=has_pos)
    scores = np.zeros((features.shape[0], len(y)))
    for f in range(folds):
        test = fold == f
        train = ~test
        if len(np.unique(y[train])) < 2:
            raise DataError(
                f"fold {f}: the training texts hold one class only ({len(np.unique(groups[y]))} text(s) hold "
                "positive tokens); give more such texts, lower `min_run`, or use fewer `folds`"
            )
        model = make_probe(probe, C=C, seed=seed).fit(features[:, train], y[train].astype(float))
        scores[:, test] = model.decision_function(features[:, test])
    rows = []
    both = [f for f in range(folds) if len(np.unique(y[fold == f])) == 2]
    for i in range(features.shape[0]):
        pred = scores[i] > 0
        # AUC within each test fold, averaged: pooling scores of differently-fitted fold models (each with its own
        # intercept) mixes calibrations and biases the pooled AUC (below 0.5 when classes are balanced by text)
        per_fold = np.array([roc_auc(scores[i][fold == f], y[fold == f]) for f in both])
        auc = float(per_fold.mean()) if len(per_fold) else float("nan")
        # 95% t-interval of the mean over folds (folds hold disjoint texts, so they are the independent units)
        iv = mean_t_interval(per_fold, bounds=(0.0, 1.0))
        rows.append(
            {
                "auc": auc,
                "acc": float(np.mean(pred == y)),
                "f1": _f1(y, pred),
                "auc_low": iv.low,
                "auc_high": iv.high,
            }
        )
    return scores, pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- the study


@dataclasses.dataclass(frozen=True)
class ProbeSet:
    """Fitted probes of one model: for each (layer, site) the direction (C,) in raw activation space and the
    logistic parameters. Saved as probe.json + probes.npz (no pickles); `model_fingerprint` guards its use."""

    layers: list[int]
    sites: list[str]
    kind: str
    task: str
    model_name: str
    model_fingerprint: str
    tokenizer_fingerprint: str
    directions: dict[str, np.ndarray]  # "layer:site" -> (C,)
    best: tuple[int, str]
    mean_diffs: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # "layer:site" -> (C,)

    def save(self, folder: str | os.PathLike) -> None:
        import io

        meta = {
            "format": PROBE_FORMAT,
            "version": 1,
            "layers": self.layers,
            "sites": self.sites,
            "kind": self.kind,
            "task": self.task,
            "model_name": self.model_name,
            "model_fingerprint": self.model_fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "best": {"layer": self.best[0], "site": self.best[1]},
        }
        bio = io.BytesIO()
        arrays = {k.replace(":", "__"): v for k, v in self.directions.items()}
        arrays.update({"meandiff__" + k.replace(":", "__"): v for k, v in self.mean_diffs.items()})
        np.savez(bio, **arrays)
        atomic_write_bytes(Path(folder) / "probes.npz", bio.getvalue())
        atomic_write_json(Path(folder) / "probe.json", meta)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "ProbeSet":
        folder = Path(folder)
        meta_path = folder / "probe.json"
        if not meta_path.is_file() or not (folder / "probes.npz").is_file():
            raise ConfigError(
                f"`probe` {folder}: holds no probe (probe.json and probes.npz); pass the --out folder of "
                "`rote llm probe` or `rote llm probe-demo`"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            with np.load(folder / "probes.npz", allow_pickle=False) as z:
                dirs = {k.replace("__", ":"): np.asarray(z[k]) for k in z.files if not k.startswith("meandiff__")}
                diffs = {
                    k[len("meandiff__") :].replace("__", ":"): np.asarray(z[k])
                    for k in z.files
                    if k.startswith("meandiff__")
                }
            if meta.get("format") != PROBE_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            best = (int(meta["best"]["layer"]), str(meta["best"]["site"]))
            return cls(
                [int(v) for v in meta["layers"]],
                [str(v) for v in meta["sites"]],
                str(meta["kind"]),
                str(meta["task"]),
                str(meta["model_name"]),
                str(meta["model_fingerprint"]),
                str(meta["tokenizer_fingerprint"]),
                dirs,
                best,
                diffs,
            )
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise ConfigError(f"`probe` {folder}: not a readable rote probe ({exc}); rerun `rote llm probe`") from None

    def check_model(self, backend: Backend) -> None:
        """Refuse a model other than the one the probes were trained on (weights fingerprint)."""
        fp = backend.weights_fingerprint()
        if fp != self.model_fingerprint:
            raise ConfigError(
                f"`probe` was trained on model {self.model_name} (weights {self.model_fingerprint}), not on "
                f"{backend.name} (weights {fp}); its directions mean nothing there: train a probe on this model "
                "with `rote llm probe`"
            )

    def direction(self, layer: int, site: str, kind: str = "probe") -> np.ndarray:
        """(C,) direction at (layer, site): "probe" = the probe's weights in activation space, "mean_diff" = mean
        activation of positive minus control tokens."""
        key = f"{layer}:{site}"
        if kind not in DIRECTIONS:
            raise ConfigError(f"`direction` {kind!r}: choose one of {', '.join(DIRECTIONS)}")
        table = self.directions if kind == "probe" else self.mean_diffs
        if key not in table:
            raise ConfigError(
                f"`layers`/`site`: no probe for layer {layer}, site {site!r}; probed: layers "
                f"{', '.join(map(str, self.layers))}, sites {', '.join(self.sites)}"
            )
        return table[key]


@dataclasses.dataclass(frozen=True)
class ProbeResult(Result):
    """What `probe_study` measured. `layers`: [{"layer", "site", "auc", "acc", "f1", "auc_low", "auc_high"}] one per
    (layer, site), cross-validated; `baselines`: {"loss", "min_k"} ROC-AUCs on the same tokens; counts and settings.
    Tables: per_layer (the same as `layers`), tokens (every labelled token: text, pos, label, logprob, min-k, best
    probe's out-of-fold score)."""

    task: str
    probe: str
    layers: list[dict[str, Any]]
    baselines: dict[str, float]
    baseline_intervals: dict[str, list[float]]
    best: dict[str, Any]
    n_positive: int
    n_negative: int
    n_texts: int
    settings: dict[str, Any]
    model: dict[str, Any]
    per_layer: pd.DataFrame = table_field("per_layer")
    tokens: pd.DataFrame = table_field("tokens")

    def summary(self) -> str:
        b = self.best
        return (
            f"{self.task} probe ({self.probe}) on {self.n_positive} positive / {self.n_negative} control tokens "
            f"from {self.n_texts} texts\nbest: layer {b['layer']} {b['site']}: AUC {b['auc']:.3f} "
            f"[{b['auc_low']:.3f}, {b['auc_high']:.3f}], acc {b['acc']:.3f}, F1 {b['f1']:.3f}\n"
            f"baselines on the same tokens: loss AUC {self.baselines['loss']:.3f}, "
            f"min-k% AUC {self.baselines['min_k']:.3f}"
        )


def _check_texts(
    backend: Backend, texts: Sequence[str], what: str, min_tokens: int, why: str | None = None
) -> list[list[int]]:
    """Token ids of `texts` (cut to the model's context); a DataError names the first text under `min_tokens`."""
    if not texts:
        raise DataError(f"`{what}`: no texts given")
    ids = backend.encode(list(texts))
    short = [i for i, x in enumerate(ids) if len(x) < min_tokens]
    if short:
        raise DataError(
            f"`{what}`: {len(short)} text(s) (first: row {short[0]}, {len(ids[short[0]])} tokens) are shorter than "
            f"{min_tokens} tokens, {why or 'too short'}"
        )
    if backend.max_length is not None:
        ids = [x[: backend.max_length] for x in ids]
    return ids


def _load_rows(store: Any, name: str, rows: np.ndarray) -> np.ndarray:
    """Rows (sorted indices) of one module from an activation folder, chunk by chunk (memory: the rows kept)."""
    out, start = [], 0
    for chunk in store.chunks(name):
        end = start + chunk.shape[0]
        lo, hi = np.searchsorted(rows, [start, end])
        if hi > lo:
            out.append(np.asarray(chunk[rows[lo:hi] - start], dtype=np.float32))
        start = end
    return np.concatenate(out) if out else np.zeros((0, *store.shape(name)), np.float32)


def probe_study(
    backend: Backend,
    positives: Sequence[str],
    controls: Sequence[str],
    *,
    task: str = "memorization",
    layers: list[int] | None = None,
    sites: Sequence[str] = SITES,
    probe: str = "logistic",
    C: float = 1.0,
    folds: int = 5,
    min_run: int = 32,
    ngram: int = 8,
    loss_bins: int = 10,
    match_loss: bool = True,
    min_k: float = 0.2,
    min_k_window: int = 32,
    batch_size: int = 16,
    chunk_rows: int = 8192,
    activations_dir: str | os.PathLike | None = None,
    capture_dtype: str = CAPTURE_DTYPE,
    seed: int = 0,
    progress: bool = False,
) -> tuple[ProbeResult, ProbeSet]:
    """Capture activations, label tokens, cross-validate a probe per (layer, site), fit the final probes.

    task "memorization": positives = texts the model may have memorized (planted canaries, famous passages);
        labelled positive: their memorized positions (`memorized_positions`, runs >= min_run); negatives: positions
        of `controls` (texts the model has not seen), matched on loss (`match_on_loss`) unless match_loss=False.
    task "repetition": positives = texts whose repeated positions (`repetition_positions`, `ngram`) are the
        positives and whose other positions are the negatives; `controls` add negatives (may be empty).
    Returns (ProbeResult, ProbeSet fitted on all labelled tokens). activations_dir: keep the capture there
    (default: a temporary folder, removed at the end). capture_dtype: how activations are stored, "float32" or
    "float16" (half the copies and disk traffic; see docs/probes.md for what it changes in the probes); a float16
    capture that meets a value beyond float16's range is redone in float32, with a warning, and
    `settings["capture_dtype"]` says which was used.
    """
    if not backend.supports_internals:
        raise BackendError(
            f"{backend.name}: probes need the model's activations, which this backend cannot give; use a local model"
        )
    if task not in ("memorization", "repetition"):
        raise ConfigError(f"`task` {task!r}: choose memorization or repetition")
    if probe not in PROBE_KINDS:
        raise ConfigError(f"`probe` {probe!r}: choose one of {', '.join(PROBE_KINDS)}")
    if capture_dtype not in ("float32", "float16"):
        raise ConfigError(f"`capture_dtype` {capture_dtype!r}: choose float32 or float16")
    for name, v, low in (("min_run", min_run, 1), ("ngram", ngram, 1), ("loss_bins", loss_bins, 1)):
        if int(v) < low:
            raise ConfigError(f"`{name}` must be at least {low}, got {v}")
    sites = list(sites)
    names = backend.site_modules(layers, sites)  # bad layers/sites fail before any work
    need = (min_run + 1) if task == "memorization" else (ngram + 2)
    why = (
        f"too short to label with `min_run` = {min_run}; drop them or lower `min_run`"
        if task == "memorization"
        else f"too short to label with `ngram` = {ngram}; drop them or lower `ngram`"
    )
    pos_ids = _check_texts(backend, positives, "positives", need, why)
    ctrl_ids = _check_texts(backend, controls, "controls", 2) if len(controls) else []
    if task == "memorization" and not ctrl_ids:
        raise DataError("`controls`: the memorization task needs control texts the model has not seen")
    all_ids = pos_ids + ctrl_ids
    n_pos_texts = len(pos_ids)

    with tempfile.TemporaryDirectory(prefix="rote-acts-") as tmp:
        where = Path(activations_dir) if activations_dir is not None else Path(tmp) / "activations"
        capture = functools.partial(
            backend.capture_hidden_states,
            all_ids,
            where,
            layers=sorted({la for la, _ in names}),
            sites=sites,
            batch_size=batch_size,
            chunk_rows=chunk_rows,
            overwrite=activations_dir is None,
            progress=progress,
        )
        try:
            store, stored_as = capture(dtype=capture_dtype), capture_dtype
        except Float16Overflow as exc:  # the capture removed its folder; redo it at full range
            warnings.warn(f"{exc}; capturing again in float32", stacklevel=2)
            store, stored_as = capture(dtype="float32"), "float32"
        tok = pd.read_parquet(where / "tokens.parquet")
        seq, lp, top1 = tok["seq"].to_numpy(), tok["next_logprob"].to_numpy(), tok["next_top1"].to_numpy()
        has_next = tok["next_token"].to_numpy() >= 0
        is_pos_text = seq < n_pos_texts
        pos_lab = np.zeros(len(tok), dtype=bool)
        starts = np.r_[0, np.cumsum([len(x) for x in all_ids])]
        for i in range(n_pos_texts):
            a, b = starts[i], starts[i + 1]
            if task == "memorization":
                pos_lab[a:b] = memorized_positions(top1[a:b], min_run)
            else:
                pos_lab[a:b] = repetition_positions(all_ids[i], ngram)
        pos_rows = np.flatnonzero(pos_lab & has_next)
        if task == "memorization":
            neg_rows = np.flatnonzero(~is_pos_text & has_next)
        else:
            neg_rows = np.flatnonzero(~pos_lab & has_next)
        if len(pos_rows) == 0:
            what = (
                f"no token of the positive texts is memorized (no run of >= {min_run} correct greedy predictions); "
                "lower `min_run`, or give texts the model reproduces"
                if task == "memorization"
                else f"no token repeats an earlier {ngram}-gram; give texts with repeated passages or lower `ngram`"
            )
            raise DataError(f"`positives`: {what}")
        if len(neg_rows) == 0:
            raise DataError("`controls`: no control tokens to compare with")
        if match_loss:
            kp, kn = match_on_loss(-lp[pos_rows], -lp[neg_rows], bins=loss_bins, seed=seed)
            pos_rows, neg_rows = pos_rows[kp], neg_rows[kn]
            if len(pos_rows) == 0:
                raise DataError(
                    "matching on loss left no tokens: the positive and control tokens share no loss range; "
                    "pass `match_loss` False, or give controls of the same kind"
                )
        rows = np.sort(np.concatenate([pos_rows, neg_rows]))
        y = np.isin(rows, pos_rows)
        groups = seq[rows]
        keys = list(names)
        feats = np.stack([_load_rows(store, names[k], rows) for k in keys])  # (P, N, C)
    scores, metrics = cross_validate(feats, y, groups, probe=probe, C=C, folds=folds, seed=seed)
    per_layer = pd.DataFrame({"layer": [k[0] for k in keys], "site": [k[1] for k in keys]})
    per_layer = pd.concat([per_layer, metrics], axis=1)
    bi = int(per_layer["auc"].to_numpy().argmax())
    base_loss = lp[rows]
    base_mk = window_min_k(lp, seq, rows, window=min_k_window, k=min_k)
    baselines = {"loss": roc_auc(base_loss, y), "min_k": roc_auc(base_mk, y)}
    intervals = {}
    for name, s in (("loss", base_loss), ("min_k", base_mk)):
        ci = auc_ci(s[y], s[~y])
        intervals[name] = [ci.low, ci.high]
    final = make_probe(probe, C=C, seed=seed).fit(feats, y.astype(float))
    dirs = final.direction()
    probes = ProbeSet(
        layers=sorted({k[0] for k in keys}),
        sites=sites,
        kind=probe,
        task=task,
        model_name=backend.name,
        model_fingerprint=backend.weights_fingerprint(),
        tokenizer_fingerprint=backend.tokenizer_fingerprint,
        directions={f"{k[0]}:{k[1]}": dirs[i].astype(np.float32) for i, k in enumerate(keys)},
        best=(int(keys[bi][0]), str(keys[bi][1])),
        mean_diffs={
            f"{k[0]}:{k[1]}": (feats[i][y].mean(0) - feats[i][~y].mean(0)).astype(np.float32)
            for i, k in enumerate(keys)
        },
    )
    tokens = pd.DataFrame(
        {
            "text": groups.astype(np.int64),
            "pos": tok["pos"].to_numpy()[rows],
            "label": y,
            "logprob": base_loss,
            "min_k": base_mk,
            "probe_score": scores[bi],
        }
    )
    layer_rows = [
        {k: (v if isinstance(v, str) else float(v) if k not in ("layer",) else int(v)) for k, v in r.items()}
        for r in per_layer.to_dict("records")
    ]
    result = ProbeResult(
        task=task,
        probe=probe,
        layers=layer_rows,
        baselines=baselines,
        baseline_intervals=intervals,
        best=layer_rows[bi],
        n_positive=int(y.sum()),
        n_negative=int((~y).sum()),
        n_texts=int(len(np.unique(groups))),
        settings={
            "C": C,
            "folds": folds,
            "min_run": min_run,
            "ngram": ngram,
            "loss_bins": loss_bins,
            "match_loss": match_loss,
            "min_k": min_k,
            "min_k_window": min_k_window,
            "seed": seed,
            "capture_dtype": stored_as,
            "row": "activation at the position that predicts the token",
        },
        model={
            "name": backend.name,
            "weights_fingerprint": backend.weights_fingerprint(),
            "n_layers": backend.n_layers,
        },
        per_layer=per_layer,
        tokens=tokens,
    )
    return result, probes


# ---------------------------------------------------------------------------------------------- suppression


@dataclasses.dataclass(frozen=True)
class SuppressResult(Result):
    """What `suppress` measured: `curve` [{"layer", "alpha", "extraction_rate", "heldout_ppl", "n_extract"}] with
    alpha = 0 the unmodified model (one row per layer, all equal), plus the site, prefix/suffix lengths."""

    site: str
    curve: list[dict[str, Any]]
    baseline: dict[str, float]
    best_tradeoff: dict[str, Any] | None
    n_memorized_texts: int
    n_heldout_texts: int
    settings: dict[str, Any]
    model: dict[str, Any]
    table: pd.DataFrame = table_field("curve")

    def summary(self) -> str:
        lines = [
            f"unmodified model: extraction {self.baseline['extraction_rate']:.3f} of {self.n_memorized_texts} texts, "
            f"held-out perplexity {self.baseline['heldout_ppl']:.3f}"
        ]
        if self.best_tradeoff:
            b = self.best_tradeoff
            lines.append(
                f"lowest extraction with perplexity within +{100 * self.settings['ppl_budget']:.0f}%: layer "
                f"{b['layer']} alpha {b['alpha']:g}: extraction {b['extraction_rate']:.3f}, "
                f"perplexity {b['heldout_ppl']:.3f}"
            )
        return "\n".join(lines)


def _top1_hits(backend: Backend, ids: list[list[int]], batch_size: int) -> list[np.ndarray]:
    """Per sequence, (T,) bool: the model's argmax at position p is token p+1 (False at the last position); one
    forward pass per batch, through `capture_hidden_states`' token metadata."""
    with tempfile.TemporaryDirectory(prefix="rote-hits-") as tmp:
        backend.capture_hidden_states(ids, Path(tmp) / "a", layers=[0], sites=["resid"], batch_size=batch_size)
        tok = pd.read_parquet(Path(tmp) / "a" / "tokens.parquet")
    top1, bounds = tok["next_top1"].to_numpy(), np.r_[0, np.cumsum([len(x) for x in ids])]
    return [top1[bounds[i] : bounds[i + 1]] for i in range(len(ids))]


def reproduced_windows(
    backend: Backend, ids: list[list[int]], prefix: int, suffix: int, *, batch_size: int = 16
) -> list[list[int]]:
    """Token windows (prefix + suffix tokens) of the sequences `ids` whose `suffix` tokens greedy decoding from
    the window's own `prefix` tokens reproduces: the suffix tokens are the model's top-1 predictions at every step
    given the window's tokens before them (as `generate` decodes them, up to ties and the cached decoding's float
    rounding). Candidates are the windows whose suffix is top-1 given the whole sequence before it; each is then
    checked in its own context (a shorter context can lose the memory). Per sequence, windows are taken in order
    with suffixes that do not overlap. One forward pass over the sequences and one over the candidates."""
    cands = []  # (sequence, position predicting the first suffix token)
    for i, hit in enumerate(_top1_hits(backend, ids, batch_size)):
        for p in range(prefix - 1, len(ids[i]) - suffix):
            if hit[p : p + suffix].all():
                cands.append((i, p))
    if not cands:
        return []
    wins = [list(ids[i][p + 1 - prefix : p + 1 + suffix]) for i, p in cands]
    ok = [bool(h[prefix - 1 : prefix - 1 + suffix].all()) for h in _top1_hits(backend, wins, batch_size)]
    out, next_free = [], {}
    for (i, p), w, good in zip(cands, wins, ok):
        if good and p + 1 >= next_free.get(i, 0):
            out.append(w)
            next_free[i] = p + 1 + suffix
    return out


def extraction_rate(backend: Backend, ids: list[list[int]], prefix: int, suffix: int, batch_size: int = 32) -> float:
    """Fraction of texts whose `suffix` tokens after their first `prefix` tokens greedy decoding reproduces
    exactly (texts must hold prefix + suffix tokens)."""
    prompts = [x[:prefix] for x in ids]
    new = backend.generate(prompts, suffix, greedy=True, batch_size=batch_size)
    return float(np.mean([list(g) == list(x[prefix : prefix + suffix]) for g, x in zip(new, ids)]))


def perplexity(backend: Backend, ids: list[list[int]], batch_size: int = 16) -> float:
    """exp of the mean per-token negative log-likelihood over all scored tokens of all texts."""
    lps = backend.score(ids, batch_size=batch_size)
    allp = np.concatenate([s.logprobs for s in lps])
    return float(math.exp(-allp.mean()))


def suppress(
    backend: Backend,
    probes: ProbeSet,
    memorized: Sequence[str],
    heldout: Sequence[str],
    *,
    layers: list[int] | None = None,
    site: str | None = None,
    alphas: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0),
    prefix: int = 32,
    suffix: int = 32,
    ppl_budget: float = 0.1,
    direction: str = "probe",
    windows: bool = False,
    batch_size: int = 16,
    progress: bool = False,
) -> SuppressResult:
    """Sweep h <- h - alpha (h.w) w at each layer (one at a time) at `site` (default: the probes' best site), w =
    the probe direction there (`direction` "probe": the probe's weights; "mean_diff": the difference of class
    means); measure greedy extraction of `memorized` (suffix from prefix) and perplexity of
    `heldout`. layers: default every probed layer. ppl_budget: the summary's allowed relative rise in perplexity.
    windows: instead of each text's first prefix + suffix tokens, extract every window of `memorized` whose suffix
    the unmodified model reproduces (`reproduced_windows`), so that the unmodified rate is about 1 and the curve
    shows what the intervention removes (for models such as SmolLM2 that reproduce famous texts only in places).
    """
    from rote.core.hooks import project_out
    from rote.core.runs import progress_bar

    probes.check_model(backend)
    site = probes.best[1] if site is None else site
    if site not in probes.sites:
        raise ConfigError(f"`site` {site!r}: the probe holds sites {', '.join(probes.sites)}")
    layers = probes.layers if layers is None else list(layers)
    for la in layers:
        backend.site_module(la, site)  # a layer the model does not have: the error lists the valid ones
        probes.direction(la, site, direction)
    alphas = [float(a) for a in alphas]
    if not alphas or any(not math.isfinite(a) or a < 0 for a in alphas):
        raise ConfigError(f"`alphas` {alphas}: give finite values >= 0 (0 = the unmodified model)")
    if prefix < 1 or suffix < 1:
        raise ConfigError(f"`prefix` and `suffix` must be at least 1, got {prefix} and {suffix}")
    if windows:
        mem_ids = reproduced_windows(
            backend, _check_texts(backend, memorized, "memorized", 2), prefix, suffix, batch_size=batch_size
        )
        if not mem_ids:
            raise DataError(
                f"`memorized`: the model reproduces no run of {suffix} tokens after {prefix} tokens of context in "
                "these texts; lower `suffix` or `prefix`, or give texts it has memorized"
            )
    else:
        mem_ids = _check_texts(
            backend,
            memorized,
            "memorized",
            prefix + suffix,
            "too short for `prefix` + `suffix`; shorten them or drop the texts",
        )
    held_ids = _check_texts(backend, heldout, "heldout", 2)
    base = {
        "extraction_rate": extraction_rate(backend, mem_ids, prefix, suffix, batch_size),
        "heldout_ppl": perplexity(backend, held_ids, batch_size),
    }
    rows = []
    grid = [(la, a) for la in layers for a in alphas if a > 0]
    with progress_bar(len(grid), "suppressing", quiet=not progress) as advance:
        for la in layers:
            rows.append({"layer": int(la), "alpha": 0.0, **base})
            for a in alphas:
                if a == 0:
                    continue
                with backend.intervene({(la, site): project_out(probes.direction(la, site, direction), alpha=a)}):
                    rows.append(
                        {
                            "layer": int(la),
                            "alpha": a,
                            "extraction_rate": extraction_rate(backend, mem_ids, prefix, suffix, batch_size),
                            "heldout_ppl": perplexity(backend, held_ids, batch_size),
                        }
                    )
                advance(1)
    table = pd.DataFrame(rows)
    ok = table[(table["alpha"] > 0) & (table["heldout_ppl"] <= base["heldout_ppl"] * (1 + ppl_budget))]
    best = None
    if len(ok):
        r = ok.sort_values(["extraction_rate", "heldout_ppl"]).iloc[0]
        best = {k: (int(v) if k == "layer" else float(v)) for k, v in r.items()}
    return SuppressResult(
        site=site,
        curve=[{k: (int(v) if k == "layer" else float(v)) for k, v in r.items()} for r in rows],
        baseline=base,
        best_tradeoff=best,
        n_memorized_texts=len(mem_ids),
        n_heldout_texts=len(held_ids),
        settings={
            "prefix": prefix,
            "suffix": suffix,
            "alphas": alphas,
            "ppl_budget": ppl_budget,
            "direction": direction,
            "windows": windows,
        },
        model={"name": backend.name, "weights_fingerprint": backend.weights_fingerprint()},
        table=table,
    )


# ---------------------------------------------------------------------------------------------- demo


def probe_demo(
    model_dir: str | os.PathLike,
    *,
    steps: int = 800,
    per_count: int = 30,
    max_texts: int = 1500,
    n_layer: int = 2,
    min_run: int = 16,
    alphas: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0),
    direction: str = "mean_diff",
    n_heldout: int = 100,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[ProbeResult, SuppressResult, dict[str, Any], ProbeSet]:
    """The whole study on a tiny GPT: plant `per_count` canaries 100 times each (and `per_count` unseen ones of the
    same form) among the first `max_texts` KJV verses, train (`rote.llm.tinygpt.train_tiny_gpt`, d=128, 4 heads,
    192-byte context) into `model_dir`, probe planted against unseen canaries (all layers and sites), then suppress
    at the best site on every layer, extraction of the planted canaries (32-byte prefix, 32-byte suffix) against the
    perplexity of `n_heldout` KJV verses after the training ones. Returns (probe result, suppression result,
    training record, probes)."""
    backend, members, unseen, heldout, train = train_demo_model(
        model_dir,
        steps=steps,
        per_count=per_count,
        max_texts=max_texts,
        n_layer=n_layer,
        n_heldout=n_heldout,
        seed=seed,
        device=device,
        progress=progress,
    )
    probe, probes = probe_study(backend, members, unseen, min_run=min_run, folds=5, seed=seed, progress=progress)
    curve = suppress(
        backend, probes, members, heldout, alphas=alphas, prefix=32, suffix=32, direction=direction, progress=progress
    )
    return probe, curve, train, probes


def train_demo_model(
    model_dir: str | os.PathLike,
    *,
    steps: int = 800,
    per_count: int = 30,
    max_texts: int = 1500,
    n_layer: int = 2,
    n_heldout: int = 100,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[Backend, list[str], list[str], list[str], dict[str, Any]]:
    """The tiny GPT of `probe_demo`, trained into `model_dir`: (backend, planted canary texts, unseen canary texts,
    held-out KJV verses, training record)."""
    from rote.data.text import load_kjv, write_texts
    from rote.llm.corpus import plant_canaries
    from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, load_model, train_tiny_gpt

    verses = load_kjv()["text"].astype(str).tolist()
    if max_texts + n_heldout > len(verses):
        raise ConfigError(f"`max_texts` {max_texts} + {n_heldout} held-out verses exceed the {len(verses)} KJV verses")
    planted = plant_canaries(verses[:max_texts], repeats=(100,), per_count=per_count, n_unseen=per_count, seed=seed)
    cfg = TinyGPTConfig(block_size=192, n_layer=n_layer, n_head=4, n_embd=128)
    trained = train_tiny_gpt(
        planted.texts,
        cfg,
        steps=steps,
        batch_size=16,
        lr=3e-3,
        seed=seed,
        out_dir=model_dir,
        device=device,
        progress=progress,
    )
    write_texts(  # as `rote llm train-tiny` does, so that `rote llm probe --model tiny:MODEL_DIR` finds them
        Path(model_dir) / "canaries.jsonl",
        planted.canaries["text"].tolist(),
        ids=planted.canaries["id"].tolist(),
        extra={"repeats": planted.canaries["repeats"].tolist(), "member": planted.canaries["member"].tolist()},
    )
    backend = TinyGPTBackend(load_model(Path(model_dir) / "model.pt", device), name="tinygpt:probe-demo", device=device)
    can = planted.canaries
    members = can[can["member"]]["text"].astype(str).tolist()
    unseen = can[~can["member"]]["text"].astype(str).tolist()
    heldout = verses[max_texts : max_texts + n_heldout]
    train = {
        "n_params": trained.n_params,
        "steps": trained.steps,
        "final_loss": trained.final_loss,
        "seconds": round(trained.seconds, 1),
        "n_canaries": per_count,
        "n_unseen": per_count,
        "n_corpus_texts": max_texts,
    }
    return backend, members, unseen, heldout, train
