"""The small DDPM: second-order DSM loss against an explicit Jacobian, DDIM determinism, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rote.core.checkpoints import save_checkpoint
from rote.core.errors import ConfigError
from rote.sharpness.diffusion import DDPM, linear_alphas_cumprod

torch.set_num_threads(1)


def test_linear_schedule_is_ddpm_linear_betas():
    abar = linear_alphas_cumprod(1000).double().numpy()
    betas = np.linspace(1e-4, 0.02, 1000)
    np.testing.assert_allclose(abar, np.cumprod(1 - betas), rtol=1e-6)


def test_second_order_loss_equals_explicit_frobenius_norm_and_its_probe_estimate():
    model = DDPM(3, net="mlp", net_args=dict(hidden=16, depth=2), T=50, seed=0)
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    out = model.loss(x0, None, torch.Generator().manual_seed(7), second_order_weight=0.5)
    # the same draws by hand: t, noise, then A = sigma^2 H + I - l l^T with H from autograd per sample
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, 50, (4,), generator=g)
    noise = torch.randn((4, 3), generator=g)
    abar = model.alphas_cumprod[t][:, None]
    xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    eps = model.eps(xt, t)
    sig = (1 - abar).sqrt()
    ell = (noise - eps).detach()
    frob = []
    for b in range(4):
        h = torch.autograd.functional.jacobian(lambda z, b=b: model.score(z[None], t[b : b + 1])[0], xt[b])
        a = sig[b] ** 2 * h + torch.eye(3) - torch.outer(ell[b], ell[b])
        frob.append((a**2).sum() / 3)
    want = torch.stack(frob).mean()
    torch.testing.assert_close(out["loss_second_order"], want.detach(), rtol=1e-5, atol=1e-6)
    dsm = ((eps - noise) ** 2).mean(1).mean()
    torch.testing.assert_close(out["loss"], (dsm + 0.5 * want).detach(), rtol=1e-5, atol=1e-6)
    # Gaussian probes: E ||A v||^2 = ||A||_F^2
    est = model.loss(x0, None, torch.Generator().manual_seed(7), second_order_weight=0.5, probes=3000)
    assert abs(est["loss_second_order"].item() - want.item()) < 0.08 * want.item()
    # it is differentiable in the weights (the point of the loss)
    out["loss"].backward()
    assert model.net.inp.weight.grad.abs().sum() > 0


def test_ddim_sampling_is_seeded_and_visits_first_and_small_steps():
    model = DDPM(2, net="mlp", net_args=dict(hidden=8, depth=2), T=100, n_classes=2, seed=1)
    ts = model.timesteps(10)
    assert ts[0] == 99 and ts[-2:] == [1, 0] and ts == sorted(ts, reverse=True)
    a, sa = model.sample(5, torch.tensor(1), guidance=3.0, n_steps=10, seed=3, record=(99, 1))
    b, _ = model.sample(5, torch.tensor(1), guidance=3.0, n_steps=10, seed=3)
    torch.testing.assert_close(a, b)
    assert set(sa) == {99, 1}
    clipped, _ = model.sample(5, torch.tensor(1), guidance=3.0, n_steps=10, seed=3, clip=0.1)
    assert clipped.abs().max() <= 0.1 + 1e-6  # the last step returns the (clipped) predicted x0
    torch.testing.assert_close(sa[99], torch.randn((5, 2), generator=torch.Generator().manual_seed(3)))
    # classifier-free guidance: eps_u + w (eps_c - eps_u)
    x, t = torch.randn(5, 2), torch.full((5,), 50)
    c = torch.ones(5, dtype=torch.long)
    e_u, e_c = model.eps(x, t, None), model.eps(x, t, c)
    torch.testing.assert_close(model.guided_eps(x, t, c, 3.0), e_u + 3.0 * (e_c - e_u))
    torch.testing.assert_close(model.eps(x, t, -c), e_u)  # c = -1 is the null class


def test_training_reduces_the_loss_and_checkpoints_round_trip(tmp_path):
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0)) * 0.3 + 1.0
    model = DDPM(2, net="mlp", net_args=dict(hidden=32, depth=2), T=100, seed=0)
    model.fit(x, epochs=12, batch_size=64, lr=3e-3)
    losses = [h["loss"] for h in model.history_]
    assert losses[-1] < 0.8 * losses[0]
    path = model.save(tmp_path / "m.pt", train=x)
    loaded, extra = DDPM.load(path)
    torch.testing.assert_close(extra["train"], x)
    xt, t = torch.randn(3, 2), torch.tensor([5, 50, 99])
    torch.testing.assert_close(loaded.score(xt, t), model.score(xt, t))
    save_checkpoint(tmp_path / "other.pt", {"weights": {}}, kind="rote.tabular.TabDDPM")
    with pytest.raises(ConfigError, match="rote.tabular.TabDDPM"):
        DDPM.load(tmp_path / "other.pt")


def test_conv_denoiser_treats_samples_independently():
    model = DDPM(49, net="conv", net_args=dict(channels=8), T=20, n_classes=2, seed=0)
    x = torch.randn(4, 49)
    t = torch.tensor([1, 5, 10, 19])
    c = torch.tensor([0, 1, -1, 0])
    full = model.score(x, t, c)
    one = torch.cat([model.score(x[i : i + 1], t[i : i + 1], c[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(full, one, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="square"):
        DDPM(50, net="conv")
