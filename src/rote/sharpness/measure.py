"""Curvature of a learned log density: scores, Hessians, spectra and the sharpness statistics of Jeon, Kim & No
(ICML 2025, "Understanding Memorization in Generative Models via Sharpness in Probability Landscapes").

The score interface (`ScoreModel`): any object with

    score(x, t, c=None) -> s      x (B, *shape) float, t (B,) int64 timesteps, c (B,) int64 classes or None
    num_timesteps: int            T; statistics at "the first sampling step" use t = T - 1
    conditional: bool             whether `c` is used (then c = -1 means "no condition", the unconditional score)

where s(x, t, c) = grad_x log p_t(x | c), computed by differentiable torch operations on `x`, with every sample
of a batch treated independently (no batch norm in training mode). `EpsilonScore` wraps an epsilon- or
v-prediction network (diffusers style) into that interface.

Everything here is batched: the Hessian H(x) = ds/dx of a batch is one `torch.func.vmap` over basis directions
of one `torch.func.jvp` of the batched score (the per-sample Jacobian is block diagonal, so a batched tangent gives
every sample's product at once); H s, H_delta s_delta, Hutchinson probes and Arnoldi/Lanczos steps are single
forward-mode products. The per-sample autograd loop that this replaces is kept in `hessian_loop` as the oracle
of the tests and the baseline of bench/sharpness_hessian.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch.func import jvp, vmap

from rote.core.errors import ConfigError, DataError, RoteError

MAX_FULL_DIM = 4096  # largest dimension for which `hessian` / full spectra are allowed (a (B, d, d) matrix)


class NotDifferentiableError(RoteError):
    """The score model's output does not depend differentiably on its input."""


class NonFiniteScoreError(DataError):
    """The score model returned NaN or infinite values."""


class DimensionTooLargeError(ConfigError):
    """A full Hessian / spectrum was asked for at a dimension where only Arnoldi is practical."""


class ScoreModel(Protocol):
    num_timesteps: int
    conditional: bool

    def score(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor: ...


@dataclass
class EpsilonScore:
    """Score of a diffusers-style noise predictor: s = -eps / sqrt(1 - abar_t) (epsilon prediction) or, for
    v-prediction (v = sqrt(abar) eps - sqrt(1 - abar) x0), eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t first.

    net(x, t, c) -> (B, *shape); alphas_cumprod: (T,) abar_t; prediction: "epsilon" or "v". Pass
    `conditional=True` when the net takes classes (c = -1 for the unconditional branch of classifier-free
    guidance).
    """

    net: Callable[..., torch.Tensor]
    alphas_cumprod: torch.Tensor
    prediction: str = "epsilon"
    conditional: bool = False

    def __post_init__(self) -> None:
        if self.prediction not in ("epsilon", "v"):
            raise ConfigError(f"`prediction` must be 'epsilon' or 'v', got {self.prediction!r}")
        self.alphas_cumprod = torch.as_tensor(self.alphas_cumprod, dtype=torch.float32)

    @property
    def num_timesteps(self) -> int:
        return int(self.alphas_cumprod.numel())

    def score(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        abar = self.alphas_cumprod.to(x.device)[t].reshape(-1, *([1] * (x.ndim - 1)))
        out = self.net(x, t, c) if self.conditional else self.net(x, t)
        eps = out if self.prediction == "epsilon" else abar.sqrt() * out + (1 - abar).sqrt() * x
        return -eps / (1 - abar).sqrt()


# ------------------------------------------------------------------------------------------------ checks


def _as_batch(x: Any, t: Any, c: Any, model: ScoreModel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    x = torch.as_tensor(x)
    if not x.dtype.is_floating_point:
        x = x.float()
    if x.ndim < 2:
        raise ConfigError(f"`x` must be a batch (B, *shape) of samples, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise DataError(f"`x` has {int((~torch.isfinite(x)).sum())} NaN or infinite values; pass finite samples")
    B = x.shape[0]
    t = torch.as_tensor(t, device=x.device)
    t = (t.expand(B) if t.ndim == 0 else t).long()
    T = int(model.num_timesteps)
    if t.shape != (B,) or (t < 0).any() or (t >= T).any():
        raise ConfigError(f"`t` must be one timestep or (B,) timesteps in [0, {T - 1}], got {t.tolist()[:5]}")
    if c is not None:
        c = torch.as_tensor(c, device=x.device)
        c = (c.expand(B) if c.ndim == 0 else c).long()
        if c.shape != (B,):
            raise ConfigError(f"`c` must be one class or (B,) classes, got shape {tuple(c.shape)}")
    return x, t, c


def check_score_model(model: ScoreModel, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> None:
    """Raise `NotDifferentiableError` unless the score depends differentiably on x (same shape, has a gradient
    path), `NonFiniteScoreError` when it returns NaN/inf."""
    x0 = x[:1].detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            s = model.score(x0, t[:1], None if c is None else c[:1])
    except RoteError:
        raise
    except Exception as exc:
        raise NotDifferentiableError(f"`model`.score failed on a batch of shape {tuple(x0.shape)}: {exc}") from None
    if not isinstance(s, torch.Tensor) or s.shape != x0.shape:
        raise NotDifferentiableError(
            f"`model`.score must return a tensor shaped like its input {tuple(x0.shape)}, got "
            f"{tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__}"
        )
    if not torch.isfinite(s).all():
        raise NonFiniteScoreError("`model` returned NaN or infinite scores; check its weights and the timesteps")
    grad = None
    if s.requires_grad:
        grad = torch.autograd.grad(s.sum(), x0, allow_unused=True)[0]
    if grad is None:
        raise NotDifferentiableError(
            "`model` is not differentiable in its input: its score has no gradient path to x (detached, "
            "computed in numpy, or under no_grad); write score() with differentiable torch operations"
        )


def _finite(v: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(v).all():
        bad = (~torch.isfinite(v.reshape(v.shape[0], -1))).any(1).nonzero().flatten().tolist()
        raise NonFiniteScoreError(
            f"`model` returned NaN or infinite values in {what} for samples {bad[:5]}; check the model and inputs"
        )
    return v


def _score_fn(model: ScoreModel, t: torch.Tensor, c: torch.Tensor | None, shape: tuple[int, ...]):
    """Flat batched score: (B, d) -> (B, d)."""

    def f(z: torch.Tensor) -> torch.Tensor:
        return model.score(z.reshape(shape), t, c).reshape(z.shape[0], -1)

    return f


def _wrap_transform_error(exc: Exception) -> NotDifferentiableError:
    return NotDifferentiableError(
        f"`model` is not differentiable in its input under torch.func (forward-mode): {str(exc).splitlines()[0]}"
    )


def score(model: ScoreModel, x: Any, t: Any, c: Any = None) -> torch.Tensor:
    """(B, *shape) s(x, t, c), checked finite."""
    x, t, c = _as_batch(x, t, c, model)
    with torch.no_grad():
        return _finite(model.score(x, t, c), "the score")


def hvp(model: ScoreModel, x: Any, t: Any, v: Any, c: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, H v), each (B, *shape), from one forward-mode product (jvp) of the batched score; v (B, *shape)."""
    x, t, c = _as_batch(x, t, c, model)
    f = _score_fn(model, t, c, tuple(x.shape))
    flat, v = x.reshape(x.shape[0], -1), torch.as_tensor(v, dtype=x.dtype, device=x.device).reshape(x.shape[0], -1)
    try:
        with torch.no_grad():  # forward-mode only: no graph for the parameters' gradients
            s, hv = jvp(f, (flat,), (v,))
    except RoteError:
        raise
    except RuntimeError as exc:
        raise _wrap_transform_error(exc) from None
    return _finite(s, "the score").detach().reshape(x.shape), _finite(hv, "H v").detach().reshape(x.shape)


def hessian(
    model: ScoreModel, x: Any, t: Any, c: Any = None, *, chunk_size: int | None = None, max_dim: int = MAX_FULL_DIM
) -> torch.Tensor:
    """(B, d, d) H(x) = d s / d x (d = prod(shape)), H[b, i, j] = d s_i / d x_j of sample b: `vmap` over the d
    basis directions of one batched `jvp` (d forward-mode passes, `chunk_size` at a time)."""
    x, t, c = _as_batch(x, t, c, model)
    B, d = x.shape[0], int(np.prod(x.shape[1:]))
    if d > max_dim:
        raise DimensionTooLargeError(
            f"`x` has dimension {d} > {max_dim}: a full Hessian is a (B, d, d) matrix; use the Arnoldi "
            "eigenvalues (leading_eigenvalues) and Hutchinson traces instead (spectrum='arnoldi')"
        )
    f = _score_fn(model, t, c, tuple(x.shape))
    flat = x.reshape(B, d)
    basis = torch.eye(d, dtype=x.dtype, device=x.device)[:, None, :].expand(d, B, d)  # (d, B, d)
    try:
        with torch.no_grad():  # forward-mode only: no graph for the parameters' gradients
            cols = vmap(lambda v: jvp(f, (flat,), (v,))[1], chunk_size=chunk_size)(basis)  # (d, B, d): column j
    except RoteError:
        raise
    except RuntimeError as exc:
        raise _wrap_transform_error(exc) from None
    return _finite(cols.detach().permute(1, 2, 0).contiguous(), "the Hessian")  # (B, d_out, d_in)


def hessian_loop(model: ScoreModel, x: Any, t: Any, c: Any = None) -> torch.Tensor:
    """(B, d, d) the same Hessian from a per-sample Python loop of `torch.autograd.functional.jacobian` calls (the
    oracle of the tests and the baseline of the benchmark)."""
    x, t, c = _as_batch(x, t, c, model)
    B, d = x.shape[0], int(np.prod(x.shape[1:]))
    out = []
    for b in range(B):
        cb = None if c is None else c[b : b + 1]

        def f(z: torch.Tensor, b: int = b, cb: Any = cb) -> torch.Tensor:
            return model.score(z.reshape(1, *x.shape[1:]), t[b : b + 1], cb).reshape(d)

        out.append(torch.autograd.functional.jacobian(f, x[b].reshape(d)))
    return torch.stack(out).detach()


def spectrum(h: torch.Tensor) -> torch.Tensor:
    """(B, d) eigenvalues of each H (real parts, ascending). H of a learned score is only nearly symmetric, so
    the general eigen-solver is used (as the paper's Arnoldi does); for the symmetric part use `symmetric=True`
    in `sharpness_statistics`."""
    ev = torch.linalg.eigvals(h.double()).real
    return torch.sort(ev, dim=-1).values.to(h.dtype)


# ------------------------------------------------------------------------------------------ Krylov methods


def _batched_gen(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def arnoldi(
    matvec: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, m: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched Arnoldi iteration: B independent Krylov spaces K_m(A_b, v0_b) with one `matvec` (B, d) -> (B, d)
    per step. Returns (Q (B, d, m'), Hm (B, m', m')) with m' <= m (early stop on an invariant subspace of every
    sample); the eigenvalues of Hm (Ritz values) approximate the largest-|lambda| eigenvalues of A."""
    B, d = v0.shape
    m = min(int(m), d)
    q = v0 / v0.norm(dim=1, keepdim=True)
    Q = [q]
    Hm = torch.zeros(B, m + 1, m, dtype=torch.float64, device=v0.device)
    for j in range(m):
        w = matvec(Q[j]).to(v0.dtype)
        for _ in range(2):  # classical Gram-Schmidt, twice (stable in float32)
            Qs = torch.stack(Q, dim=2)  # (B, d, j+1)
            coef = torch.einsum("bdk,bd->bk", Qs, w)
            w = w - torch.einsum("bdk,bk->bd", Qs, coef)
            Hm[:, : j + 1, j] += coef.double()
        nrm = w.norm(dim=1)
        Hm[:, j + 1, j] = nrm.double()
        if j + 1 == m:
            break
        if (nrm <= 1e-10 * Hm[:, : j + 1, j].abs().amax(1).clamp_min(1e-30).to(nrm.dtype)).all():
            m = j + 1
            break
        Q.append(w / nrm.clamp_min(1e-30)[:, None])
    return torch.stack(Q[:m], dim=2), Hm[:, :m, :m]


def lanczos(matvec: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, m: int) -> torch.Tensor:
    """Batched Lanczos with full re-orthogonalization for symmetric A: returns the (B, m', m') tridiagonal matrix
    whose eigenvalues (Ritz values) approximate A's extreme eigenvalues."""
    B, d = v0.shape
    m = min(int(m), d)
    Q = [v0 / v0.norm(dim=1, keepdim=True)]
    alpha, beta = [], []
    for j in range(m):
        w = matvec(Q[j]).to(v0.dtype)
        a = (w * Q[j]).sum(1)
        alpha.append(a)
        Qs = torch.stack(Q, dim=2)
        for _ in range(2):
            w = w - torch.einsum("bdk,bk->bd", Qs, torch.einsum("bdk,bd->bk", Qs, w))
        b = w.norm(dim=1)
        if j + 1 == m or (b <= 1e-10 * a.abs().clamp_min(1e-30)).all():
            break
        beta.append(b)
        Q.append(w / b.clamp_min(1e-30)[:, None])
    k = len(alpha)
    Tm = torch.diag_embed(torch.stack(alpha, 1).double())
    if beta:
        off = torch.stack(beta[: k - 1], 1).double()
        Tm = Tm + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    return Tm


def leading_eigenvalues(
    model: ScoreModel,
    x: Any,
    t: Any,
    c: Any = None,
    *,
    k: int = 10,
    m: int | None = None,
    method: str = "arnoldi",
    seed: int = 0,
) -> torch.Tensor:
    """(B, k) the k largest-|lambda| eigenvalues of each sample's H (real parts of Ritz values, sorted by
    |lambda| descending) from `m` (default 2k + 10) Hessian-vector products: Arnoldi (the paper's choice; H is not
    exactly symmetric) or Lanczos on the symmetric part (H + H^T)/2 is not available from jvp alone, so
    `method="lanczos"` assumes H symmetric (true for an exact score). Random start from `seed`."""
    if method not in ("arnoldi", "lanczos"):
        raise ConfigError(f"`method` must be 'arnoldi' or 'lanczos', got {method!r}")
    x, t, c = _as_batch(x, t, c, model)
    B, d = x.shape[0], int(np.prod(x.shape[1:]))
    if k < 1:
        raise ConfigError(f"`k` must be >= 1, got {k}")
    m = min(d, max(int(m or 2 * k + 10), k))
    f = _score_fn(model, t, c, tuple(x.shape))
    flat = x.reshape(B, d)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        try:
            with torch.no_grad():
                return _finite(jvp(f, (flat,), (v,))[1].detach(), "H v")
        except RoteError:
            raise
        except RuntimeError as exc:
            raise _wrap_transform_error(exc) from None

    g = _batched_gen(seed, torch.device("cpu"))
    v0 = torch.randn(B, d, generator=g, dtype=x.dtype).to(x.device)
    with torch.no_grad():
        small = arnoldi(matvec, v0, m)[1] if method == "arnoldi" else lanczos(matvec, v0, m)
    ev = torch.linalg.eigvals(small).real if method == "arnoldi" else torch.linalg.eigvalsh(small)
    order = torch.argsort(ev.abs(), dim=1, descending=True)
    ev = torch.gather(ev, 1, order)[:, :k]
    if ev.shape[1] < k:  # an invariant subspace smaller than k: the rest of the spectrum is not seen
        ev = torch.cat([ev, torch.full((B, k - ev.shape[1]), float("nan"), dtype=ev.dtype)], 1)
    return ev.to(x.dtype)


def hutchinson_trace(
    model: ScoreModel, x: Any, t: Any, c: Any = None, *, n_probes: int = 16, seed: int = 0
) -> torch.Tensor:
    """(B,) unbiased estimate of tr H(x) from `n_probes` Rademacher probes v: mean of v^T H v (one jvp each)."""
    x, t, c = _as_batch(x, t, c, model)
    if n_probes < 1:
        raise ConfigError(f"`n_probes` must be >= 1, got {n_probes}")
    B, d = x.shape[0], int(np.prod(x.shape[1:]))
    g = _batched_gen(seed, torch.device("cpu"))
    total = torch.zeros(B, dtype=torch.float64)
    for _ in range(int(n_probes)):
        v = (torch.randint(0, 2, (B, d), generator=g) * 2 - 1).to(x.dtype).to(x.device)
        _, hv = hvp(model, x, t, v.reshape(x.shape), c)
        total += (hv.reshape(B, d) * v).sum(1).double().cpu()
    return (total / n_probes).to(x.dtype)


# ------------------------------------------------------------------------------------------ the statistics

STATISTICS = {
    "neg_trace": "-tr H(x): sharpness (Lemma 4.1: = E||s||^2); Hutchinson estimate when no full spectrum",
    "score_norm2": "||s(x)||^2 (Lemma 4.1's proxy of -tr H)",
    "hs_norm2": "||H(x) s(x)||^2 (Lemma 4.3: E = -tr H^3)",
    "n_below": "number of eigenvalues of H below the threshold (many large negative = sharp)",
    "sum_below": "-(sum of the eigenvalues below the threshold), >= 0",
    "delta_hs_norm2": "the paper's ||H_delta s_delta||^2, s_delta = s(x, c) - s(x), H_delta = H(x, c) - H(x)",
    "wen_delta_norm": "Wen et al.'s ||s(x, c) - s(x)|| (text-conditional noise difference, as a score)",
}
"""Every per-sample statistic, higher = sharper = more likely memorized."""


def sharpness_statistics(
    model: ScoreModel,
    x: Any,
    t: Any,
    c: Any = None,
    *,
    spectrum_method: str = "auto",
    threshold: float = 0.0,
    k: int = 20,
    n_probes: int = 16,
    symmetric: bool = False,
    max_full_dim: int = MAX_FULL_DIM,
    chunk_size: int | None = None,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Per-sample statistics of `STATISTICS` at (x, t, c) and, with a full spectrum, the eigenvalues.

    x: (B, *shape); t: one or (B,) timesteps; c: (B,) classes of a conditional model (None: unconditional; the
    delta statistics then are not computed). spectrum_method: "full" (H and all d eigenvalues; d <= max_full_dim),
    "arnoldi" (the k largest-|lambda| Ritz values from 2k + 10 Hessian-vector products, and -tr H by Hutchinson
    with `n_probes` probes; n_below / sum_below count among those k only), "none" (no eigenvalues; -tr H by
    Hutchinson unless n_probes = 0) or "auto"
    (full when d <= 256, else arnoldi). threshold: eigenvalues below it count in n_below / sum_below.
    symmetric: use the eigenvalues of (H + H^T) / 2 for the full spectrum.

    ||H s||^2 is one jvp in direction s; the paper's ||H_delta s_delta||^2 is one jvp of x -> [s(x, c), s(x)]
    in direction s_delta (the `local_model/pipe.py` recipe: both products from a single forward-mode pass).
    Returns ({name: (B,) float64}, (B, d) eigenvalues ascending or None).
    """
    if spectrum_method not in ("auto", "full", "arnoldi", "none"):
        raise ConfigError(f"`spectrum_method` must be auto, full, arnoldi or none, got {spectrum_method!r}")
    x, t, c = _as_batch(x, t, c, model)
    check_score_model(model, x, t, c)
    B, d = x.shape[0], int(np.prod(x.shape[1:]))
    method = ("full" if d <= 256 else "arnoldi") if spectrum_method == "auto" else spectrum_method
    if method == "full" and d > max_full_dim:
        raise DimensionTooLargeError(
            f"`x` has dimension {d} > {max_full_dim}: too large for a full spectrum; use "
            "`spectrum_method` arnoldi (leading eigenvalues from Hessian-vector products)"
        )
    out: dict[str, np.ndarray] = {}
    s, hs = hvp(model, x, t, _score_sample(model, x, t, c), c)
    out["score_norm2"] = _np(s.reshape(B, -1).pow(2).sum(1))
    out["hs_norm2"] = _np(hs.reshape(B, -1).pow(2).sum(1))
    eig = None
    if method == "full":
        h = hessian(model, x, t, c, chunk_size=chunk_size, max_dim=max_full_dim)
        if symmetric:
            h = (h + h.transpose(1, 2)) / 2
        ev = spectrum(h)
        eig = _np(ev)
        out["neg_trace"] = _np(-torch.diagonal(h, dim1=1, dim2=2).sum(1))
    elif method == "arnoldi":
        ev = leading_eigenvalues(model, x, t, c, k=min(k, d), seed=seed)
        out["neg_trace"] = _np(-hutchinson_trace(model, x, t, c, n_probes=n_probes, seed=seed + 1))
    elif n_probes > 0:
        out["neg_trace"] = _np(-hutchinson_trace(model, x, t, c, n_probes=n_probes, seed=seed + 1))
    if method != "none":
        evn = np.nan_to_num(_np(ev), nan=np.inf)
        below = evn < threshold
        out["n_below"] = below.sum(1).astype(np.float64)
        out["sum_below"] = -np.where(below, evn, 0.0).sum(1)
    if c is not None and model.conditional:
        out.update(delta_statistics(model, x, t, c))
    return out, eig


def _score_sample(model: ScoreModel, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    with torch.no_grad():
        return _finite(model.score(x, t, c), "the score")


def delta_statistics(model: ScoreModel, x: Any, t: Any, c: Any) -> dict[str, np.ndarray]:
    """{"delta_hs_norm2": ||H_delta s_delta||^2, "wen_delta_norm": ||s_delta||} per sample, from one jvp of
    x -> [s(x, c), s(x, no class)] in direction s_delta = s(x, c) - s(x)."""
    x, t, c = _as_batch(x, t, c, model)
    if c is None:
        raise ConfigError("`c` is needed for the conditional (delta) statistics")
    B = x.shape[0]
    # c = -1 is "no condition"; a model whose c also carries more than the class (the tabular adapter: a row
    # index) says how to drop the class from it
    null = model.null_condition(c) if hasattr(model, "null_condition") else torch.full_like(c, -1)
    shape = tuple(x.shape)

    def both(z: torch.Tensor) -> torch.Tensor:
        zz = z.reshape(shape)
        return torch.stack([model.score(zz, t, c).reshape(B, -1), model.score(zz, t, null).reshape(B, -1)])

    flat = x.reshape(B, -1)
    with torch.no_grad():
        sc, su = both(flat)
    sd = _finite(sc - su, "the score")
    try:
        with torch.no_grad():
            _, prods = jvp(both, (flat,), (sd,))
    except RoteError:
        raise
    except RuntimeError as exc:
        raise _wrap_transform_error(exc) from None
    hd = _finite((prods[0] - prods[1]).detach(), "H_delta s_delta")
    return {"delta_hs_norm2": _np(hd.pow(2).sum(1)), "wen_delta_norm": _np(sd.norm(dim=1))}


def _np(v: torch.Tensor) -> np.ndarray:
    return v.detach().double().cpu().numpy()


def crossover_dimension(times_full: dict[int, float], times_arnoldi: dict[int, float]) -> int | None:
    """Smallest dimension at which the Arnoldi time is below the full-spectrum time (None if never)."""
    for dim in sorted(set(times_full) & set(times_arnoldi)):
        if times_arnoldi[dim] < times_full[dim]:
            return dim
    return None


def gaussian_log_density_hessian(cov: np.ndarray) -> np.ndarray:
    """-cov^{-1}: the Hessian of log N(mu, cov) (test oracle; constant in x)."""
    return -np.linalg.inv(np.asarray(cov, np.float64))


__all__ = [
    "MAX_FULL_DIM",
    "STATISTICS",
    "DimensionTooLargeError",
    "EpsilonScore",
    "NonFiniteScoreError",
    "NotDifferentiableError",
    "ScoreModel",
    "arnoldi",
    "check_score_model",
    "crossover_dimension",
    "delta_statistics",
    "hessian",
    "hessian_loop",
    "hutchinson_trace",
    "hvp",
    "lanczos",
    "leading_eigenvalues",
    "score",
    "sharpness_statistics",
    "spectrum",
]
