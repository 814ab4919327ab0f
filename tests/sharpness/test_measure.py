"""Scores, Hessians, spectra, Krylov eigenvalues and the sharpness statistics against closed forms and brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rote.sharpness.measure import (
    DimensionTooLargeError,
    EpsilonScore,
    NonFiniteScoreError,
    NotDifferentiableError,
    delta_statistics,
    hessian,
    hessian_loop,
    hutchinson_trace,
    hvp,
    leading_eigenvalues,
    sharpness_statistics,
)

torch.set_num_threads(1)


class LinearScore:
    """s(x, t, c) = A_c (x - mu_c): a Gaussian's score when A = -Sigma^{-1}; H = A_c exactly."""

    num_timesteps = 10

    def __init__(self, mats: dict[int, np.ndarray], mus: dict[int, np.ndarray], conditional: bool = False):
        self.A = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in mats.items()}
        self.mu = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in mus.items()}
        self.conditional = conditional

    def score(self, x, t, c=None):
        if c is None:
            return (x - self.mu[-1]) @ self.A[-1].T
        out = []
        for k in (-1, 0, 1):
            mask = (c == k).to(x.dtype)[:, None]
            out.append(mask * ((x - self.mu[k]) @ self.A[k].T))
        return sum(out)


class MLPScore(torch.nn.Module):
    num_timesteps = 10
    conditional = False

    def __init__(self, d: int, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(d + 1, 32), torch.nn.Tanh(), torch.nn.Linear(32, d))

    def score(self, x, t, c=None):
        return self.net(torch.cat([x, t[:, None].to(x.dtype) / 10], 1))


def _spd(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q @ np.diag(rng.uniform(0.5, 5.0, d)) @ q.T


def test_gaussian_hessian_spectrum_and_statistics_match_closed_form():
    rng = np.random.default_rng(0)
    cov = _spd(4, rng)
    prec = np.linalg.inv(cov)
    mu = rng.normal(size=4)
    model = LinearScore({-1: -prec}, {-1: mu})
    x = torch.as_tensor(rng.normal(size=(5, 4)))
    h = hessian(model, x, 3).numpy()
    np.testing.assert_allclose(h, np.broadcast_to(-prec, (5, 4, 4)), atol=1e-12)
    stats, eig = sharpness_statistics(model, x, 3, spectrum_method="full", threshold=-1.0)
    np.testing.assert_allclose(eig, np.broadcast_to(np.sort(np.linalg.eigvalsh(-prec)), (5, 4)), atol=1e-10)
    s = (x.numpy() - mu) @ (-prec).T
    np.testing.assert_allclose(stats["score_norm2"], (s**2).sum(1), rtol=1e-10)
    np.testing.assert_allclose(stats["hs_norm2"], ((s @ (-prec).T) ** 2).sum(1), rtol=1e-10)
    np.testing.assert_allclose(stats["neg_trace"], np.trace(prec), rtol=1e-10)
    ev = np.linalg.eigvalsh(-prec)
    assert (stats["n_below"] == (ev < -1).sum()).all()
    np.testing.assert_allclose(stats["sum_below"], -ev[ev < -1].sum(), rtol=1e-10)


def test_batched_hessian_and_hvp_match_the_per_sample_autograd_loop():
    model = MLPScore(5).double()
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.arange(7) % 10
    h = hessian(model, x, t)
    ref = hessian_loop(model, x, t)
    torch.testing.assert_close(h, ref, rtol=1e-10, atol=1e-12)
    v = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    s, hv = hvp(model, x, t, v)
    torch.testing.assert_close(hv, torch.einsum("bij,bj->bi", ref, v))
    torch.testing.assert_close(s, model.score(x, t))


def test_arnoldi_and_lanczos_leading_eigenvalues_match_the_full_spectrum():
    rng = np.random.default_rng(3)
    d = 60
    lam = np.r_[-np.array([400.0, 250.0, 150.0, 90.0, 60.0]), -rng.uniform(0.5, 2.0, d - 5)]
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    sym = q @ np.diag(lam) @ q.T
    nonsym = sym + 1e-3 * rng.normal(size=(d, d))  # a learned Hessian is only nearly symmetric
    x = torch.as_tensor(rng.normal(size=(3, d)))
    for mat, method in ((nonsym, "arnoldi"), (sym, "lanczos")):
        model = LinearScore({-1: mat}, {-1: np.zeros(d)})
        top = leading_eigenvalues(model, x, 0, k=5, m=30, method=method).numpy()
        full = np.linalg.eigvals(mat).real
        want = full[np.argsort(-np.abs(full))][:5]
        np.testing.assert_allclose(top, np.broadcast_to(want, (3, 5)), rtol=1e-6)
        # and the same against the full spectrum that sharpness_statistics computes
        _, eig = sharpness_statistics(model, x, 0, spectrum_method="full")
        np.testing.assert_allclose(np.sort(top, 1), eig[:, :5], rtol=1e-6)


def test_hutchinson_is_exact_for_diagonal_and_unbiased_otherwise():
    rng = np.random.default_rng(4)
    diag = np.diag(rng.uniform(-3, -1, 8))
    x = torch.as_tensor(rng.normal(size=(2, 8)))
    est = hutchinson_trace(LinearScore({-1: diag}, {-1: np.zeros(8)}), x, 0, n_probes=3)
    np.testing.assert_allclose(est.numpy(), np.trace(diag), rtol=1e-12)  # v^T D v = tr D for Rademacher v
    full = -_spd(8, rng)
    est = hutchinson_trace(LinearScore({-1: full}, {-1: np.zeros(8)}), x, 0, n_probes=200, seed=1)
    # Rademacher variance of v^T A v: 2 (||A||_F^2 - sum a_ii^2); 4 standard errors of the mean of 2 x 200 probes
    se = np.sqrt(2 * ((full**2).sum() - (np.diag(full) ** 2).sum()) / 400)
    assert abs(est.mean().item() - np.trace(full)) < 4 * se


def test_delta_statistics_match_hand_computation():
    rng = np.random.default_rng(5)
    d = 3
    a_u, a_c = -_spd(d, rng), -_spd(d, rng)
    mu_u, mu_c = rng.normal(size=d), rng.normal(size=d)
    model = LinearScore({-1: a_u, 0: a_c, 1: a_c}, {-1: mu_u, 0: mu_c, 1: mu_c}, conditional=True)
    x = rng.normal(size=(4, d))
    out = delta_statistics(model, torch.as_tensor(x), 0, torch.zeros(4, dtype=torch.long))
    sd = (x - mu_c) @ a_c.T - (x - mu_u) @ a_u.T
    want = (sd @ (a_c - a_u).T) ** 2
    np.testing.assert_allclose(out["delta_hs_norm2"], want.sum(1), rtol=1e-10)
    np.testing.assert_allclose(out["wen_delta_norm"], np.linalg.norm(sd, axis=1), rtol=1e-10)
    stats, _ = sharpness_statistics(model, torch.as_tensor(x), 0, torch.zeros(4, dtype=torch.long))
    assert {"delta_hs_norm2", "wen_delta_norm"} <= set(stats)


def test_epsilon_and_v_prediction_scores_equal_the_analytic_gaussian_score():
    # data N(0, s0^2 I): x_t ~ N(0, (abar s0^2 + 1 - abar) I), score -x / (abar s0^2 + 1 - abar)
    s0 = 0.7
    abar = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)

    def var(t):
        return (abar[t] * s0**2 + 1 - abar[t])[:, None]

    def eps_net(x, t):  # E[eps | x_t] = sqrt(1 - abar) x / var
        return (1 - abar[t]).sqrt()[:, None] * x / var(t)

    def v_net(x, t):  # v = sqrt(abar) eps - sqrt(1 - abar) x0, x0 = (x - sqrt(1 - abar) eps) / sqrt(abar)
        e = eps_net(x, t)
        a = abar[t][:, None]
        return a.sqrt() * e - (1 - a).sqrt() * (x - (1 - a).sqrt() * e) / a.sqrt()

    x = torch.randn(3, 4, dtype=torch.float64)
    t = torch.tensor([0, 1, 2])
    want = -x / var(t)
    for net, pred in ((eps_net, "epsilon"), (v_net, "v")):
        m = EpsilonScore(net, abar, prediction=pred)
        m.alphas_cumprod = abar
        torch.testing.assert_close(m.score(x, t), want)


def test_bad_inputs_raise_one_clear_error():
    class Detached(MLPScore):
        def score(self, x, t, c=None):
            return super().score(x.detach(), t)

    class NaNs(MLPScore):
        def score(self, x, t, c=None):
            return super().score(x, t) * float("nan")

    x = torch.randn(2, 5)
    with pytest.raises(NotDifferentiableError, match="not differentiable"):
        sharpness_statistics(Detached(5), x, 1)
    with pytest.raises(NonFiniteScoreError, match="NaN"):
        sharpness_statistics(NaNs(5), x, 1)
    with pytest.raises(DimensionTooLargeError, match="arnoldi"):
        sharpness_statistics(MLPScore(5), x, 1, spectrum_method="full", max_full_dim=4)
    with pytest.raises(DimensionTooLargeError, match="Arnoldi"):
        hessian(MLPScore(5), x, 1, max_dim=4)
    with pytest.raises(Exception, match="`t`"):
        sharpness_statistics(MLPScore(5), x, 10)
    with pytest.raises(Exception, match="`x`"):
        sharpness_statistics(MLPScore(5), x.new_full((2, 5), float("nan")), 1)


def test_arnoldi_route_statistics_on_a_mid_size_model():
    model = MLPScore(40, seed=2).double()
    x = torch.randn(3, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    # the MLP's hidden width (32) < d, so H has exact zero eigenvalues: count below -0.05, away from them
    full, eig = sharpness_statistics(model, x, 2, spectrum_method="full", threshold=-0.05)
    arn, none = sharpness_statistics(model, x, 2, spectrum_method="arnoldi", k=40, n_probes=64, threshold=-0.05)
    assert none is None
    np.testing.assert_allclose(arn["hs_norm2"], full["hs_norm2"], rtol=1e-10)
    # Hutchinson with 64 probes: within 3 standard errors of the exact trace
    h = hessian(model, x, 2).numpy()
    off = np.array([(hi**2).sum() - (np.diag(hi) ** 2).sum() for hi in (h + h.transpose(0, 2, 1)) / 2])
    se = np.sqrt(2 * off / 64)
    assert (np.abs(arn["neg_trace"] - full["neg_trace"]) < 3 * se + 1e-9).all()
    # with k = d Ritz values, Arnoldi recovers the whole spectrum
    np.testing.assert_allclose(arn["n_below"], full["n_below"])
    np.testing.assert_allclose(arn["sum_below"], full["sum_below"], rtol=1e-6)
    assert (full["n_below"] > 0).all()
