"""Feldman's memorization estimate from shadow-model masks, and the RDP accountant of DP-SGD (Poisson-subsampled
Gaussian), each against an independent computation: a hand-worked case and a brute-force loop for the former;
numerical integration of the Renyi divergence and TensorFlow Privacy's published MNIST figures for the latter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from rote.core import privacy as P
from rote.core.errors import ConfigError, RoteError
from rote.core.stats import binomial_ci

# ------------------------------------------------------------------------------------- Feldman memorization


def test_feldman_hand_worked():
    # 4 models, 3 examples. Example 0: IN models 0, 1 (both correct), OUT models 2, 3 (one correct): 1 - 0.5.
    # Example 1: IN models 0, 2, 3 (correct, wrong, correct), OUT model 1 (wrong): 2/3 - 0.
    # Example 2: IN every model: no OUT model, excluded.
    correct = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [1, 1, 0]], bool)
    mask = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1]], bool)
    r = P.feldman_memorization(correct, mask)
    assert r.memorization[:2] == pytest.approx([0.5, 2 / 3])
    assert np.isnan(r.memorization[2]) and r.included.tolist() == [True, True, False]
    assert r.n_in.tolist() == [2, 3, 4] and r.n_out.tolist() == [2, 1, 0]
    assert r.p_in[2] == pytest.approx(0.75) and np.isnan(r.p_out[2])
    assert r.n_excluded == 1 and "1 of 3 examples" in r.message and "`min_models`" in r.message
    # min_models=2 also drops example 1 (one OUT model)
    r2 = P.feldman_memorization(correct, mask, min_models=2)
    assert r2.included.tolist() == [True, False, False] and r2.n_excluded == 2


def test_feldman_equals_brute_force_loop():
    rng = np.random.default_rng(3)
    m, n = 9, 200
    mask = rng.random((m, n)) < 0.5
    correct = rng.random((m, n)) < np.where(mask, 0.9, 0.6)
    r = P.feldman_memorization(correct, mask, min_models=2, level=0.9)
    for i in range(n):
        ins = [correct[j, i] for j in range(m) if mask[j, i]]
        outs = [correct[j, i] for j in range(m) if not mask[j, i]]
        if len(ins) < 2 or len(outs) < 2:
            assert not r.included[i] and np.isnan(r.memorization[i])
            continue
        d = sum(ins) / len(ins) - sum(outs) / len(outs)
        assert r.memorization[i] == pytest.approx(d)
        # Newcombe's hybrid score interval from scalar Wilson intervals (rote.core.stats.binomial_ci)
        a = binomial_ci(sum(ins), len(ins), level=0.9, method="wilson")
        b = binomial_ci(sum(outs), len(outs), level=0.9, method="wilson")
        low = d - math.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
        high = d + math.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
        assert (r.low[i], r.high[i]) == pytest.approx((low, high))
    assert r.n_excluded == int((~r.included).sum()) > 0


def test_feldman_interval_matches_newcombe_1998_example():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, example (a): 56/70 - 48/80 = 0.2000, method 10
    # (score, no continuity correction): 0.0524 to 0.3339. As masks: 70 IN models (56 correct), 80 OUT (48).
    mask = np.r_[np.ones(70, bool), np.zeros(80, bool)][:, None]
    correct = np.r_[np.arange(70) < 56, np.arange(80) < 48][:, None]
    r = P.feldman_memorization(correct, mask, level=0.95)
    assert r.memorization[0] == pytest.approx(0.2)
    assert r.low[0] == pytest.approx(0.0524, abs=5e-5) and r.high[0] == pytest.approx(0.3339, abs=5e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"correct": np.ones((2, 3), bool), "in_mask": np.ones((2, 4), bool)}, "`correct` and `in_mask`"),
        ({"correct": np.ones((2, 3), bool), "in_mask": np.ones((2, 3))}, "`in_mask` must be boolean"),
        ({"correct": np.full((2, 3), 0.5), "in_mask": np.ones((2, 3), bool)}, "`correct` must be boolean"),
        ({"correct": np.ones((2, 3), bool), "in_mask": np.ones((2, 3), bool), "min_models": 0}, "`min_models`"),
    ],
)
def test_feldman_bad_input(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        P.feldman_memorization(**kwargs)
    assert issubclass(ConfigError, RoteError)


# ------------------------------------------------------------------------------------- RDP accountant


def _log_a_by_integration(q: float, sigma: float, alpha: float) -> float:
    """log E_{z ~ N(0, sigma^2)}[((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha] by adaptive quadrature: the
    likelihood ratio of the mixture (1 - q) N(0, sigma^2) + q N(1, sigma^2) to N(0, sigma^2), to the power alpha."""

    def integrand(z: float) -> float:
        log_ratio = np.logaddexp(np.log1p(-q), np.log(q) + (2 * z - 1) / (2 * sigma**2))
        return math.exp(stats.norm.logpdf(z, scale=sigma) + alpha * log_ratio)

    # the integrand's mass lies within a few sigma of 0 and of alpha (the tilted mean); split there
    lo, hi = -12 * sigma, alpha + 12 * sigma + 2
    val, err = integrate.quad(integrand, lo, hi, points=[0.0, 0.5, 1.0, alpha], limit=500, epsabs=0, epsrel=1e-11)
    assert err < 1e-8 * val
    return math.log(val)


@pytest.mark.parametrize(
    "q, sigma, alpha",
    [
        (0.01, 1.1, 2),
        (0.01, 1.1, 32),
        (0.1, 0.8, 3),
        (0.2, 2.0, 10),
        (0.01, 1.1, 1.5),
        (0.01, 1.1, 7.3),
        (0.1, 0.8, 2.5),
        (0.2, 2.0, 12.75),
        (0.005, 0.6, 4.2),
        (0.128, 0.5, 1.4),  # the demo's DP-SGD regime, where the fractional series converges slowest
    ],
)
def test_rdp_equals_numerical_integration(q, sigma, alpha):
    expected = _log_a_by_integration(q, sigma, alpha) / (alpha - 1)
    got = P.rdp_sampled_gaussian(q, sigma, steps=1, orders=[alpha])[0]
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-12)
    # T steps compose additively
    assert P.rdp_sampled_gaussian(q, sigma, steps=7, orders=[alpha])[0] == pytest.approx(7 * got)


def test_rdp_limits():
    # q = 1: the Gaussian mechanism, alpha / (2 sigma^2); q = 0: nothing is released about anyone
    assert P.rdp_sampled_gaussian(1.0, 2.0, 3, [2, 4.5]) == pytest.approx([3 * 2 / 8, 3 * 4.5 / 8])
    assert P.rdp_sampled_gaussian(0.0, 2.0, 3, [2, 4.5]) == pytest.approx([0, 0])
    # the fractional series agrees with the binomial expansion where both apply (orders just off an integer)
    a = P.rdp_sampled_gaussian(0.05, 1.0, 1, [5 - 1e-9, 5, 5 + 1e-9])
    assert a[0] == pytest.approx(a[1], rel=1e-6) and a[2] == pytest.approx(a[1], rel=1e-6)


# TensorFlow Privacy, tutorials/README.md (github.com/tensorflow/privacy, "Select Parameters" table and "Expected
# Output"; mnist_dpsgd_tutorial.py): MNIST, n = 60,000, batch 256 (q = 256 / 60000), 60000 // 256 = 234 steps per
# epoch, delta = 1e-5, orders 1.1, 1.2, ..., 10.9 and 12..63, the classic conversion.
TF_PRIVACY_MNIST = [(1.1, 60, 3.01), (1.3, 15, 1.19), (0.7, 45, 7.10), (1.1, 1, 1.03), (1.1, 2, 1.11)]
TF_ORDERS = [1 + x / 10 for x in range(1, 100)] + list(range(12, 64))


@pytest.mark.parametrize("sigma, epochs, published", TF_PRIVACY_MNIST)
def test_epsilon_matches_tensorflow_privacy_mnist_tutorial(sigma, epochs, published):
    g = P.dp_sgd_epsilon(256 / 60000, sigma, epochs * (60000 // 256), 1e-5, orders=TF_ORDERS)
    assert round(g.epsilon, 2) == pytest.approx(published)
    assert g.conversion == "classic" and g.delta == 1e-5 and g.order in TF_ORDERS
    better = P.dp_sgd_epsilon(
        256 / 60000, sigma, epochs * (60000 // 256), 1e-5, orders=TF_ORDERS, conversion="improved"
    )
    assert better.epsilon < g.epsilon


def test_conversion_by_hand():
    # one order: classic eps = rdp + log(1/delta) / (alpha - 1)
    eps, order = P.rdp_to_epsilon([3.0], [0.5], 1e-5)
    assert (eps, order) == pytest.approx((0.5 + math.log(1e5) / 2, 3.0))
    eps, _ = P.rdp_to_epsilon([3.0], [0.5], 1e-5, "improved")
    assert eps == pytest.approx(0.5 + math.log(2 / 3) - (math.log(1e-5) + math.log(3)) / 2)
    # the minimum over orders is taken
    eps, order = P.rdp_to_epsilon([2.0, 11.0], [0.1, 5.0], 0.01)
    assert order == 2.0 and eps == pytest.approx(0.1 + math.log(100))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: P.rdp_sampled_gaussian(1.5, 1.0), "`q`"),
        (lambda: P.rdp_sampled_gaussian(0.1, 0.0), "`noise_multiplier`"),
        (lambda: P.rdp_sampled_gaussian(0.1, 1.0, steps=-1), "`steps`"),
        (lambda: P.rdp_sampled_gaussian(0.1, 1.0, orders=[1.0]), "`orders`"),
        (lambda: P.rdp_to_epsilon([2.0], [1.0], 0.0), "`delta`"),
        (lambda: P.rdp_to_epsilon([2.0], [1.0], 1e-5, "tight"), "`conversion`"),
        (lambda: P.rdp_to_epsilon([2.0, 3.0], [1.0], 1e-5), "`rdp`"),
    ],
)
def test_accountant_bad_input(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


@pytest.mark.parametrize("q, sigma", [(0.01, 1.0), (0.5, 0.3)])
def test_rdp_is_nondecreasing_in_the_order(q, sigma):
    # Renyi divergence is nondecreasing in its order (van Erven & Harremoes 2014, Thm. 3): a check across the
    # switch between the fractional series and the binomial expansion
    r = P.rdp_sampled_gaussian(q, sigma, 1)
    assert np.isfinite(r).all() and (np.diff(r) >= -1e-9 * np.abs(r[1:])).all()
