"""A small DDPM with classifier-free guidance for the paper's toy and MNIST setups (Jeon, Kim & No, ICML 2025,
section 4 and App. A): epsilon prediction, linear beta schedule, DDIM sampling, the first-order denoising
score-matching loss plus, optionally, the second-order one (Meng et al. 2021; Lu et al. 2022) that the paper adds
so that autodiff Hessians of small models are accurate.

`DDPM` implements the score interface of `rote.sharpness.measure` (score, num_timesteps, conditional): with
classes, c = -1 is the null class of classifier-free guidance.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import jvp, vmap

from rote.core.checkpoints import load_checkpoint, save_checkpoint
from rote.core.device import resolve_device
from rote.core.errors import ConfigError
from rote.core.training import Trainer

KIND = "rote.sharpness.DDPM"


def linear_alphas_cumprod(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """(T,) abar_t of DDPM's linear schedule, beta_t from beta_1 to beta_T (scaled by 1000 / T, so a shorter
    chain keeps the same abar_T)."""
    scale = 1000.0 / T
    betas = np.linspace(beta_1 * scale, min(beta_T * scale, 0.999), T, dtype=np.float64)
    return torch.as_tensor(np.cumprod(1.0 - betas), dtype=torch.float32)


def time_features(t: torch.Tensor, dim: int, T: int) -> torch.Tensor:
    """(B,) timesteps -> (B, dim) sinusoidal features of t / T * 1000."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float() * (1000.0 / T))[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class MLPDenoiser(nn.Module):
    """epsilon(x, t, c) for flat data: x (B, d) -> (B, d). SiLU MLP on [x, time features] plus a class embedding
    (index n_classes = the null class); smooth, so its input Jacobian is smooth too."""

    def __init__(self, d: int, hidden: int = 128, depth: int = 3, n_classes: int = 0, dim_t: int = 32) -> None:
        super().__init__()
        self.d, self.dim_t, self.n_classes = d, dim_t, n_classes
        self.inp = nn.Linear(d + dim_t, hidden)
        self.emb = nn.Embedding(n_classes + 1, hidden) if n_classes else None
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.out = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor, tf: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = self.inp(torch.cat([x, tf], dim=1))  # (B, hidden)
        if self.emb is not None:
            h = h + self.emb(c)
        for lin in self.blocks:
            h = h + lin(nn.functional.silu(h))
        return self.out(nn.functional.silu(h))  # (B, d)


class ConvDenoiser(nn.Module):
    """epsilon(x, t, c) for 1-channel images: x (B, H*W) flat -> (B, H*W). Conv stack with dilations 1, 2, 4, 2,
    1 (receptive field covers a 14x14 image), GroupNorm (per sample) and SiLU; time and class enter as a channel
    bias after the first convolution."""

    def __init__(self, side: int, channels: int = 32, n_classes: int = 0, dim_t: int = 32) -> None:
        super().__init__()
        self.side, self.dim_t, self.n_classes = side, dim_t, n_classes
        self.first = nn.Conv2d(1, channels, 3, padding=1)
        self.temb = nn.Linear(dim_t, channels)
        self.emb = nn.Embedding(n_classes + 1, channels) if n_classes else None
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=dl, dilation=dl) for dl in (1, 2, 4, 2))
        self.norms = nn.ModuleList(nn.GroupNorm(8, channels) for _ in range(4))
        self.last = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, tf: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        B = x.shape[0]
        h = self.first(x.reshape(B, 1, self.side, self.side)) + self.temb(tf)[:, :, None, None]
        if self.emb is not None:
            h = h + self.emb(c)[:, :, None, None]
        for conv, norm in zip(self.convs, self.norms):
            h = h + conv(nn.functional.silu(norm(h)))
        return self.last(nn.functional.silu(h)).reshape(B, -1)


NETS = {"mlp": MLPDenoiser, "conv": ConvDenoiser}


class DDPM:
    """Epsilon-prediction DDPM on flat data (B, d) with optional classes and classifier-free guidance.

    net: "mlp" (any d) or "conv" (d = side**2 images); net_args: the network's keyword arguments (besides d /
    side and n_classes); T: diffusion steps; n_classes: 0 for an unconditional model.
    """

    def __init__(
        self,
        d: int,
        *,
        net: str = "mlp",
        net_args: dict | None = None,
        T: int = 1000,
        n_classes: int = 0,
        seed: int = 0,
    ) -> None:
        if net not in NETS:
            raise ConfigError(f"`net` must be one of {', '.join(NETS)}, got {net!r}")
        if T < 2:
            raise ConfigError(f"`T` must be >= 2, got {T}")
        self.d, self.net_name, self.net_args, self.T, self.n_classes, self.seed = (
            int(d),
            net,
            dict(net_args or {}),
            int(T),
            int(n_classes),
            int(seed),
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if net == "conv":
                side = int(round(math.sqrt(d)))
                if side * side != d:
                    raise ConfigError(f"`net` conv needs square images, got d = {d}")
                self.net = ConvDenoiser(side, n_classes=self.n_classes, **self.net_args)
            else:
                self.net = MLPDenoiser(self.d, n_classes=self.n_classes, **self.net_args)
        self.net.eval()
        self.alphas_cumprod = linear_alphas_cumprod(self.T)
        self.history_: list[dict] = []

    # ------------------------------------------------------------------ score interface
    @property
    def num_timesteps(self) -> int:
        return self.T

    @property
    def conditional(self) -> bool:
        return self.n_classes > 0

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _cls(self, c: torch.Tensor | None, B: int, device: torch.device) -> torch.Tensor | None:
        if not self.n_classes:
            return None
        if c is None:
            return torch.full((B,), self.n_classes, dtype=torch.long, device=device)
        c = c.long().to(device)
        return torch.where(c < 0, torch.full_like(c, self.n_classes), c)

    def eps(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) predicted noise; c (B,) classes, -1 (or None) = the null class."""
        return self.net(x, time_features(t, self.net.dim_t, self.T), self._cls(c, x.shape[0], x.device))

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.alphas_cumprod.to(t.device)[t]).sqrt()

    def score(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) s(x, t, c) = -eps(x, t, c) / sqrt(1 - abar_t)."""
        return -self.eps(x, t, c) / self.sigma(t)[:, None]

    # ------------------------------------------------------------------ training
    def loss(
        self,
        x0: torch.Tensor,
        c: torch.Tensor | None,
        gen: torch.Generator,
        *,
        p_uncond: float = 0.2,
        second_order_weight: float = 0.0,
        probes: int = 0,
    ) -> dict[str, torch.Tensor]:
        """DSM loss of a batch; with `second_order_weight` w > 0 adds w * L2, the second-order DSM loss
        E||sigma_t^2 H_theta + I - l l^T||_F^2 / d with l = sigma_t s_theta (detached) + eps: exact Frobenius norm
        from the full Jacobian when `probes` = 0, else the unbiased estimate mean_v ||A v||^2 / d over `probes`
        Gaussian probes v (one jvp each)."""
        B, dev = x0.shape[0], x0.device
        t = torch.randint(0, self.T, (B,), generator=gen, device=dev)
        noise = torch.randn(x0.shape, generator=gen, device=dev)
        abar = self.alphas_cumprod.to(dev)[t][:, None]
        xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        if c is not None and self.n_classes:
            drop = torch.rand((B,), generator=gen, device=dev) < p_uncond
            c = torch.where(drop, torch.full_like(c, -1), c)
        eps = self.eps(xt, t, c)
        l1 = (eps - noise).pow(2).mean(1)
        out = {"loss": l1.mean(), "loss_dsm": l1.mean().detach()}
        if second_order_weight > 0:
            sig = (1 - abar).sqrt()  # (B, 1)
            ell = (noise - eps).detach()  # sigma s + eps with s = -eps_theta / sigma

            def s_fn(z: torch.Tensor) -> torch.Tensor:
                return -self.eps(z, t, c) / sig

            def a_times(v: torch.Tensor) -> torch.Tensor:  # A v = sigma^2 H v + v - l (l . v)
                hv = jvp(s_fn, (xt,), (v,))[1]
                return sig**2 * hv + v - ell * (ell * v).sum(1, keepdim=True)

            if probes <= 0:
                basis = torch.eye(self.d, device=dev)[:, None, :].expand(self.d, B, self.d)
                av = vmap(a_times)(basis)  # (d, B, d): columns of A
                l2 = av.pow(2).sum((0, 2)) / self.d
            else:
                vs = torch.randn((probes, B, self.d), generator=gen, device=dev)
                l2 = vmap(a_times)(vs).pow(2).sum(2).mean(0) / self.d
            out["loss"] = out["loss"] + second_order_weight * l2.mean()
            out["loss_second_order"] = l2.mean().detach()
        return out

    def fit(
        self,
        x: torch.Tensor,
        c: torch.Tensor | None = None,
        *,
        epochs: int = 100,
        batch_size: int = 256,
        lr: float = 2e-3,
        p_uncond: float = 0.2,
        second_order_weight: float = 0.0,
        probes: int = 0,
        device: str = "cpu",
        checkpoint_dir: str | Path | None = None,
        progress: bool = False,
    ) -> DDPM:
        """Train on x (N, d) float (classes c (N,) for a conditional model) with `rote.core.training.Trainer`
        (AdamW, cosine learning-rate decay, gradient clipping 1.0); seeded by the model's seed."""
        if epochs < 1 or batch_size < 1:
            raise ConfigError(f"`epochs` and `batch_size` must be >= 1, got {epochs} and {batch_size}")
        if not lr > 0:
            raise ConfigError(f"`lr` must be > 0, got {lr}")
        if not 0 <= p_uncond < 1:
            raise ConfigError(f"`p_uncond` must be in [0, 1), got {p_uncond}")
        if second_order_weight < 0:
            raise ConfigError(f"`second_order_weight` must be >= 0, got {second_order_weight}")
        dev = resolve_device(device)
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ConfigError(f"`x` must be (N, {self.d}), got {tuple(x.shape)}")
        if self.n_classes and c is None:
            raise ConfigError("`c` (classes) is needed to train a conditional model")
        data: Any = (x,) if not self.n_classes else (x, torch.as_tensor(c, dtype=torch.long))
        self.net.to(dev).train()
        opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=0.0)
        steps = epochs * math.ceil(len(x) / batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))

        def step(batch: Any, state: Any) -> dict[str, torch.Tensor]:
            xb = batch[0].to(dev)
            cb = batch[1].to(dev) if self.n_classes else None
            return self.loss(
                xb, cb, state.generator, p_uncond=p_uncond, second_order_weight=second_order_weight, probes=probes
            )

        state = Trainer(
            {"net": self.net},
            step,
            optimizers={"opt": opt},
            schedulers={"lr": sched},
            scheduler_interval="step",
            data=data,
            batch_size=batch_size,
            epochs=epochs,
            seed=self.seed,
            device=dev,
            grad_clip=1.0,
            checkpoint_dir=checkpoint_dir,
            kind=KIND + ".train",
            progress=progress,
            description="training DDPM",
        ).fit()
        self.history_ = state.history
        self.net.eval()
        return self

    # ------------------------------------------------------------------ sampling
    def timesteps(self, n_steps: int) -> list[int]:
        """The DDIM schedule: T - 1 first, ending ..., 1, 0 (t = 1 is always visited: the paper's small t)."""
        if n_steps < 2:
            raise ConfigError(f"`n_steps` must be >= 2, got {n_steps}")
        ts = set(np.round(np.linspace(self.T - 1, 0, min(n_steps, self.T))).astype(int).tolist()) | {1, 0}
        return sorted(ts, reverse=True)

    @torch.no_grad()
    def guided_eps(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None, guidance: float) -> torch.Tensor:
        """eps_u + guidance (eps_c - eps_u) (classifier-free guidance; guidance 1 = plain conditional)."""
        if not self.n_classes or c is None:
            return self.eps(x, t, None)
        e_c = self.eps(x, t, c)
        if guidance == 1.0:
            return e_c
        e_u = self.eps(x, t, None)
        return e_u + guidance * (e_c - e_u)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        c: torch.Tensor | None = None,
        *,
        guidance: float = 1.0,
        n_steps: int = 100,
        seed: int = 0,
        record: tuple[int, ...] = (),
        clip: float | None = None,
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """n samples by deterministic DDIM (eta = 0) from x_T ~ N(0, I) drawn with `seed`.
        Returns ((n, d) samples, {t: (n, d) state x_t at which the net is evaluated at step t} for t in `record`
        that the schedule visits; t = T - 1 is the initial noise). clip: clamp each step's predicted x0 to
        [-clip, clip] (image data in [-1, 1]: 1.0), with the noise re-derived from it."""
        if n < 1:
            raise ConfigError(f"`n` must be >= 1, got {n}")
        dev = self.device
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        x = torch.randn((n, self.d), generator=g).to(dev)
        cc = None if c is None else torch.as_tensor(c, dtype=torch.long, device=dev).expand(n)
        ts = self.timesteps(n_steps)
        abar = self.alphas_cumprod.to(dev)
        states: dict[int, torch.Tensor] = {}
        for i, ti in enumerate(ts):
            if ti in record:
                states[ti] = x.clone()
            t = torch.full((n,), ti, dtype=torch.long, device=dev)
            e = self.guided_eps(x, t, cc, guidance)
            a_t = abar[ti]
            x0 = (x - (1 - a_t).sqrt() * e) / a_t.sqrt()
            if clip is not None:  # images: predicted x0 clipped to the data range, eps re-derived (as diffusers)
                x0 = x0.clamp(-clip, clip)
                e = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
            a_prev = abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, device=dev)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * e
        return x, states

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | Path, **extra: Any) -> Path:
        """One checkpoint file: configuration, weights, history and `extra` tensors/values (e.g. training data)."""
        cfg = {
            "d": self.d,
            "net": self.net_name,
            "net_args": self.net_args,
            "T": self.T,
            "n_classes": self.n_classes,
            "seed": self.seed,
        }
        return save_checkpoint(Path(path), {"config": cfg, "weights": self.net.state_dict(), "extra": extra}, kind=KIND)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> tuple[DDPM, dict[str, Any]]:
        """(model, extra) from a file written by `save`; ConfigError for another kind of checkpoint."""
        state = load_checkpoint(Path(path), KIND)
        try:
            cfg = state["config"]
            model = cls(
                cfg["d"],
                net=cfg["net"],
                net_args=cfg["net_args"],
                T=cfg["T"],
                n_classes=cfg["n_classes"],
                seed=cfg["seed"],
            )
            model.net.load_state_dict(state["weights"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ConfigError(f"{path}: checkpoint content does not fit a sharpness DDPM ({exc})") from None
        model.net.to(resolve_device(device)).eval()
        return model, dict(state.get("extra") or {})
