"""TabSyn (Zhang et al., ICLR 2024): a column-tokenizing VAE, then EDM diffusion in its latent space.

Phase 1 (VAE, `vae_epochs`): each column becomes a d_token-dimensional token (numeric: x_j w_j + b_j on the
quantile-normalized value; categorical: an embedding row plus a column bias). A small transformer encodes the
tokens into per-token means and log-variances; a transformer decoder maps a latent sample back, and per-column
heads reconstruct the numeric value (MSE) and the category (cross-entropy). The KL weight beta starts at
max_beta and is multiplied by beta_decay once whenever the validation loss has not improved for `beta_patience`
epochs, while above min_beta (the TabSyn code's schedule).

Phase 2 (diffusion, `epochs`): the encoder means of the training rows, flattened to (n, F * d_token), centred and
halved, are the data of an EDM model (Karras et al. 2022): preconditioned MLP denoiser, ln sigma ~ N(-1.2, 1.2)
during training, and the stochastic Heun sampler on the Karras sigma schedule (50 steps, S_churn = 1) to sample.
Decoding a sampled latent gives the table.

Epochs are numbered through both phases: epochs 1..vae_epochs train the VAE, the rest the diffusion model
(`history_` entries carry "phase"). A callback that asks to stop during the VAE phase ends that phase early.
The VAE is the TabSyn code's (`tabsyn/vae/model.py`): a [CLS] token, pre-norm transformers with no final
norm, a bias-free numeric head; its lr (ReduceLROnPlateau 0.95 / 10) and KL weight (x0.7 once per stall of
`beta_patience` epochs) follow the validation reconstruction cross-entropy (`fit(..., validation=table)`).
Differences from the TabSyn code: without a validation table the schedules watch the training rows; the
validation loss decodes the encoder means (the reference decodes one noisy draw).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rote.core.errors import ConfigError
from rote.tabular.models.base import TabularGenerator
from rote.tabular.models.preprocess import TableCodec
from rote.tabular.models.tabddpm import NEG, timestep_embedding

SIGMA_DATA = 0.5
P_MEAN, P_STD = -1.2, 1.2


class Tokenizer(nn.Module):
    """x_num (B, n_num) floats and x_cat (B, C) codes -> tokens (B, 1 + n_num + C, d), the first a [CLS] token.

    As the TabSyn code (`tabsyn/vae/model.py::Tokenizer`): a numeric token is x_j w_j + b_j, the [CLS] token is
    w_0 (input 1, no bias), a categorical token is an embedding row plus the column's bias; weights, biases and
    embeddings start Kaiming-uniform (a = sqrt(5)).
    """

    def __init__(self, n_num: int, n_classes: list[int], d: int) -> None:
        super().__init__()
        self.n_num = n_num
        self.weight = nn.Parameter(torch.empty(n_num + 1, d))
        self.bias = nn.Parameter(torch.empty(n_num + len(n_classes), d))
        self.embed = nn.Embedding(max(1, sum(n_classes)), d)
        for w in (self.weight, self.bias, self.embed.weight):
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.register_buffer(
            "offsets",
            torch.as_tensor(
                np.concatenate([[0], np.cumsum(n_classes)[:-1]]) if n_classes else np.zeros(0), dtype=torch.long
            ),
        )

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        ones = torch.ones((x_num.shape[0], 1), device=x_num.device, dtype=x_num.dtype)
        num = torch.cat([ones, x_num], 1)[:, :, None] * self.weight  # (B, 1 + n_num, d)
        cat = self.embed(x_cat + self.offsets)  # (B, C, d)
        bias = torch.cat([torch.zeros_like(self.bias[:1]), self.bias])  # no bias on [CLS]
        return torch.cat([num, cat], dim=1) + bias


class Reconstructor(nn.Module):
    """Decoded tokens (B, n_num + C, d) -> numeric values (B, n_num) and padded logits (B, C, K_max).

    As the TabSyn code: numeric value = <h_j, w_j> (no bias), category logits = a Linear(d, K_c) per column;
    weights Xavier-uniform with gain 1/sqrt(2)."""

    def __init__(self, n_num: int, n_classes: list[int], d: int) -> None:
        super().__init__()
        self.n_num = n_num
        self.k_max = max(n_classes, default=1)
        self.weight = nn.Parameter(torch.empty(n_num, d))
        nn.init.xavier_uniform_(self.weight, gain=1 / math.sqrt(2))
        self.cat_heads = nn.ModuleList(nn.Linear(d, k) for k in n_classes)
        for head in self.cat_heads:
            nn.init.xavier_uniform_(head.weight, gain=1 / math.sqrt(2))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        num = (h[:, : self.n_num] * self.weight).sum(-1)  # (B, n_num)
        logits = [
            F.pad(head(h[:, self.n_num + c]), (0, self.k_max - head.out_features), value=NEG)
            for c, head in enumerate(self.cat_heads)
        ]
        out = torch.stack(logits, 1) if logits else h.new_zeros((h.shape[0], 0, self.k_max))
        return num, out  # logits (B, C, K_max), padding at NEG


class Attention(nn.Module):
    """TabSyn's multi-head attention: W_q, W_k, W_v (biases zero at start), softmax(q k^T / sqrt(d_head)) v, and
    an output projection only with more than one head."""

    def __init__(self, d: int, n_heads: int) -> None:
        super().__init__()
        if d % n_heads:
            raise ConfigError(f"TabSyn: `d_token`={d} must be a multiple of `n_heads`={n_heads}")
        self.n_heads = n_heads
        self.W_q, self.W_k, self.W_v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.W_out = nn.Linear(d, d) if n_heads > 1 else None
        for m in (self.W_q, self.W_k, self.W_v) + ((self.W_out,) if self.W_out is not None else ()):
            nn.init.zeros_(m.bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, H, n, d_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.W_q(x)), self._split(self.W_k(x)), self._split(self.W_v(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        out = (att @ v).transpose(1, 2).reshape(x.shape)
        return self.W_out(out) if self.W_out is not None else out


class Transformer(nn.Module):
    """TabSyn's pre-norm transformer (`tabsyn/vae/model.py::Transformer` with prenormalization): per layer
    x + Attention(LN0(x)) (no LN0 in the first layer), then x + W1 ReLU(W0 LN1(x)); no final normalization (the
    reference builds one but never applies it), so latent tokens are not layer-normalized."""

    def __init__(self, d: int, n_layers: int, n_heads: int, factor: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for i in range(n_layers):
            layer = nn.ModuleDict(
                {
                    "attention": Attention(d, n_heads),
                    "linear0": nn.Linear(d, d * factor),
                    "linear1": nn.Linear(d * factor, d),
                    "norm1": nn.LayerNorm(d),
                }
            )
            if i:
                layer["norm0"] = nn.LayerNorm(d)
            self.layers.append(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            r = layer["norm0"](x) if "norm0" in layer else x
            x = x + layer["attention"](r)
            x = x + layer["linear1"](torch.relu(layer["linear0"](layer["norm1"](x))))
        return x


class TabularVAE(nn.Module):
    """Tokenizer -> (mu, logvar) transformers over [CLS] + column tokens -> z -> decoder transformer over the
    column tokens (the [CLS] latent is dropped, as in TabSyn) -> reconstructor."""

    def __init__(
        self, n_num: int, n_classes: list[int], d_token: int = 4, n_layers: int = 2, n_heads: int = 1, factor: int = 32
    ) -> None:
        super().__init__()
        self.tokenizer = Tokenizer(n_num, n_classes, d_token)
        self.encoder_mu = Transformer(d_token, n_layers, n_heads, factor)
        self.encoder_logvar = Transformer(d_token, n_layers, n_heads, factor)
        self.decoder = Transformer(d_token, n_layers, n_heads, factor)
        self.reconstructor = Reconstructor(n_num, n_classes, d_token)

    def encode(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, 1 + F, d): position 0 is the [CLS] token."""
        tokens = self.tokenizer(x_num, x_cat)  # (B, 1 + F, d)
        return self.encoder_mu(tokens), self.encoder_logvar(tokens)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, F, d) column latents (no [CLS]) -> (numeric (B, n_num), logits (B, C, K_max))."""
        return self.reconstructor(self.decoder(z))


def vae_loss(
    rec_num: torch.Tensor,
    logits: torch.Tensor,
    x_num: torch.Tensor,
    x_cat: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TabSyn's `compute_loss`: (MSE over rows and numeric columns, cross-entropy averaged over columns of each
    column's row mean, KL -0.5 mean(1 + logvar - mu^2 - e^logvar) over every latent entry, [CLS] included)."""
    zero = torch.zeros((), device=mu.device)
    mse = F.mse_loss(rec_num, x_num) if x_num.shape[1] else zero
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x_cat.reshape(-1)) if x_cat.shape[1] else zero
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).mean()
    return mse, ce, kl


class EDMDenoiser(nn.Module):
    """TabSyn's MLPDiffusion with EDM preconditioning: D(x, sigma) = c_skip x + c_out F(c_in x, ln(sigma)/4).

    x (B, D), sigma (B,) -> (B, D). F: proj(x) + time_mlp(emb), then SiLU MLP dim_t -> 2 dim_t -> 2 dim_t -> dim_t -> D.
    """

    def __init__(self, dim: int, dim_t: int = 1024) -> None:
        super().__init__()
        self.dim_t = dim_t
        self.proj = nn.Linear(dim, dim_t)
        self.time_mlp = nn.Sequential(nn.Linear(dim_t, dim_t), nn.SiLU(), nn.Linear(dim_t, dim_t))
        self.mlp = nn.Sequential(
            nn.Linear(dim_t, 2 * dim_t),
            nn.SiLU(),
            nn.Linear(2 * dim_t, 2 * dim_t),
            nn.SiLU(),
            nn.Linear(2 * dim_t, dim_t),
            nn.SiLU(),
            nn.Linear(dim_t, dim),
        )

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.reshape(-1, 1)
        c_skip = SIGMA_DATA**2 / (s**2 + SIGMA_DATA**2)
        c_out = s * SIGMA_DATA / (s**2 + SIGMA_DATA**2).sqrt()
        c_in = 1.0 / (SIGMA_DATA**2 + s**2).sqrt()
        c_noise = sigma.log() / 4
        # TabSyn's MLPDiffusion swaps the positional embedding's halves: [sin, cos]
        emb = self.time_mlp(timestep_embedding(c_noise, self.dim_t).roll(self.dim_t // 2, dims=1))
        f = self.mlp(self.proj(c_in * x) + emb)
        return c_skip * x + c_out * f


def edm_loss(denoiser: nn.Module, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """EDM training loss of a batch y (B, D): lambda(sigma) |D(y + sigma n, sigma) - y|^2, averaged."""
    sigma = (torch.randn(y.shape[0], generator=gen, device=y.device) * P_STD + P_MEAN).exp()
    weight = (sigma**2 + SIGMA_DATA**2) / (sigma * SIGMA_DATA) ** 2
    noisy = y + torch.randn(y.shape, generator=gen, device=y.device) * sigma[:, None]
    return (weight[:, None] * (denoiser(noisy, sigma) - y) ** 2).mean()


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """(steps + 1,) the Karras et al. schedule from sigma_max down to sigma_min, then 0."""
    i = torch.arange(steps, dtype=torch.float64)
    s = (sigma_max ** (1 / rho) + i / max(steps - 1, 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)])


@torch.no_grad()
def edm_sample(
    denoiser: nn.Module,
    n: int,
    dim: int,
    gen: torch.Generator,
    steps: int = 50,
    s_churn: float = 1.0,
    s_noise: float = 1.0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Stochastic Heun sampler (EDM Algorithm 2, S_min = 0, S_max = inf): (n, dim) samples."""
    sigmas = karras_sigmas(steps).to(device)
    x = torch.randn((n, dim), generator=gen, device=device, dtype=torch.float64) * sigmas[0]
    gamma = min(s_churn / steps, math.sqrt(2) - 1)

    def d_of(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return denoiser(x.float(), s.float().expand(n)).double()

    for i in range(steps):
        s_cur, s_next = sigmas[i], sigmas[i + 1]
        s_hat = s_cur * (1 + gamma)
        x_hat = x + (s_hat**2 - s_cur**2).sqrt() * s_noise * torch.randn(
            x.shape, generator=gen, device=device, dtype=torch.float64
        )
        d = (x_hat - d_of(x_hat, s_hat)) / s_hat
        x_next = x_hat + (s_next - s_hat) * d
        if i < steps - 1:
            d2 = (x_next - d_of(x_next, s_next)) / s_next
            x_next = x_hat + (s_next - s_hat) * (0.5 * d + 0.5 * d2)
        x = x_next
    return x.float()


class TabSyn(TabularGenerator):
    """TabSyn generator. Presets: "small" (default, CPU) and "paper" (the TabCutMix code's TabSyn: d_token 4,
    2 layers, 1 head, factor 32, batch 4096, 4000 VAE epochs, denoiser width 1024, 10,000 diffusion epochs).

    Parameters left at None take the preset's value.
    """

    kind = "rote.tabular.TabSyn"
    presets = {
        "small": dict(
            vae_epochs=30,
            epochs=100,
            batch_size=256,
            vae_lr=1e-3,
            lr=1e-3,
            d_token=4,
            n_layers=2,
            n_heads=1,
            factor=32,
            max_beta=1e-2,
            min_beta=1e-5,
            beta_decay=0.7,
            beta_patience=10,
            dim_t=256,
            sample_steps=50,
            sample_batch_size=10_000,
        ),
        "paper": dict(
            vae_epochs=4000,
            epochs=10_000,
            batch_size=4096,
            vae_lr=1e-3,
            lr=1e-3,
            d_token=4,
            n_layers=2,
            n_heads=1,
            factor=32,
            max_beta=1e-2,
            min_beta=1e-5,
            beta_decay=0.7,
            beta_patience=10,
            dim_t=1024,
            sample_steps=50,
            sample_batch_size=10_000,
        ),
    }

    def __init__(
        self,
        preset: str = "small",
        vae_epochs: int | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        vae_lr: float | None = None,
        lr: float | None = None,
        d_token: int | None = None,
        n_layers: int | None = None,
        n_heads: int | None = None,
        factor: int | None = None,
        max_beta: float | None = None,
        min_beta: float | None = None,
        beta_decay: float | None = None,
        beta_patience: int | None = None,
        dim_t: int | None = None,
        sample_steps: int | None = None,
        sample_batch_size: int | None = None,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.preset, self.vae_epochs, self.epochs, self.batch_size = preset, vae_epochs, epochs, batch_size
        self.vae_lr, self.lr, self.d_token, self.n_layers, self.n_heads = vae_lr, lr, d_token, n_layers, n_heads
        self.factor, self.max_beta, self.min_beta, self.beta_decay = factor, max_beta, min_beta, beta_decay
        self.beta_patience, self.dim_t, self.sample_steps = beta_patience, dim_t, sample_steps
        self.sample_batch_size, self.seed, self.device = sample_batch_size, seed, device

    # ------------------------------------------------------------------ structure
    def _total_epochs(self, cfg: dict[str, Any], n_rows: int) -> int:
        vae = getattr(self, "vae_epochs_run_", None)
        return (int(cfg["vae_epochs"]) if vae is None else vae) + int(cfg["epochs"])

    def _build(self, cfg: dict[str, Any], codec: TableCodec, n_rows: int, device: torch.device) -> None:
        self.cfg_ = cfg
        self.n_rows_ = n_rows
        self.device_ = device
        n_num, n_classes = len(codec.numeric), codec.n_classes
        self.latent_dim_ = (n_num + len(n_classes)) * int(cfg["d_token"])
        with torch.random.fork_rng(devices=[]):  # weights from the seed; the global RNG is left as it was
            torch.manual_seed(int(cfg["seed"]))
            self.vae_ = TabularVAE(
                n_num, n_classes, int(cfg["d_token"]), int(cfg["n_layers"]), int(cfg["n_heads"]), int(cfg["factor"])
            ).to(device)
            self.denoiser_ = EDMDenoiser(self.latent_dim_, int(cfg["dim_t"])).to(device)
        self.vae_opt_ = torch.optim.Adam(self.vae_.parameters(), lr=float(cfg["vae_lr"]))
        self.vae_sched_ = torch.optim.lr_scheduler.ReduceLROnPlateau(self.vae_opt_, factor=0.95, patience=10)
        self.opt_ = torch.optim.Adam(self.denoiser_.parameters(), lr=float(cfg["lr"]))
        self.sched_ = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt_, factor=0.9, patience=20)
        self.vae_epochs_run_ = None  # set when the VAE phase ends
        self.beta_, self.best_vae_loss_, self.beta_wait_ = float(cfg["max_beta"]), math.inf, 0
        self.latent_mean_: torch.Tensor | None = None
        self._latents: torch.Tensor | None = None

    def _modules(self) -> dict[str, nn.Module]:
        return {"vae": self.vae_, "denoiser": self.denoiser_}

    def _optimizers(self) -> dict[str, Any]:
        return {"vae_opt": self.vae_opt_, "opt": self.opt_}

    def _schedulers(self) -> dict[str, Any]:
        return {"vae_sched": self.vae_sched_, "sched": self.sched_}

    def _extra_state(self) -> dict[str, Any]:
        return {
            "n_rows": int(self.n_rows_),
            "vae_epochs_run": self.vae_epochs_run_,
            "beta": float(self.beta_),
            "best_vae_loss": float(self.best_vae_loss_),
            "beta_wait": int(self.beta_wait_),
            "latent_mean": self.latent_mean_,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.vae_epochs_run_ = state["vae_epochs_run"]
        self.beta_, self.best_vae_loss_, self.beta_wait_ = state["beta"], state["best_vae_loss"], state["beta_wait"]
        mean = state["latent_mean"]
        self.latent_mean_ = None if mean is None else mean.to(self.device_)
        self._latents = None

    @property
    def _sampling_epoch_offset(self) -> int:
        """Epochs before the diffusion phase (MemorizationHook counts its period in diffusion epochs)."""
        return int(self.cfg_["vae_epochs"]) if self.vae_epochs_run_ is None else int(self.vae_epochs_run_)

    def ready_to_sample(self) -> bool:
        return (
            hasattr(self, "codec_")
            and self.latent_mean_ is not None
            and self.n_epochs_trained_ > self._sampling_epoch_offset
        )

    def _in_vae_phase(self, epoch: int) -> bool:
        return self.vae_epochs_run_ is None and epoch <= int(self.cfg_["vae_epochs"])

    def _on_stop(self, epoch: int) -> bool:
        if self._in_vae_phase(epoch):
            self._end_vae_phase(epoch)
            return False
        return True

    def _end_vae_phase(self, epoch: int) -> None:
        self.vae_epochs_run_ = epoch
        self._last_epoch = self._total_epochs(self.cfg_, self.n_rows_)

    # ------------------------------------------------------------------ training
    def _epoch_begin(self, state: Any) -> None:
        self._vae_phase = self._in_vae_phase(state.epoch)
        if self._vae_phase:
            state.active_optimizers = ("vae_opt",)
            return
        if self.vae_epochs_run_ is None:  # vae_epochs = 0
            self.vae_epochs_run_ = 0
        if self._latents is None:  # first diffusion epoch, or resumed: the latents are a function of the VAE
            z = self.encode_latents(self._x_num, self._x_cat)
            if self.latent_mean_ is None:
                self.latent_mean_ = z.mean(0)
            self._latents = (z - self.latent_mean_) / 2
        state.active_optimizers = ("opt",)

    def _train_step(self, idx: torch.Tensor, state: Any) -> dict[str, torch.Tensor]:
        gen = state.generator
        if not self._vae_phase:
            return {"loss": edm_loss(self.denoiser_, self._latents[idx], gen)}
        xn, xc = self._x_num[idx], self._x_cat[idx]
        mu, logvar = self.vae_.encode(xn, xc)
        z = mu + torch.randn(mu.shape, generator=gen, device=mu.device) * (0.5 * logvar).exp()
        rec_num, logits = self.vae_.decode(z[:, 1:])  # the [CLS] latent is not decoded
        mse, ce, kl = vae_loss(rec_num, logits, xn, xc, mu, logvar)
        return {"loss": mse + ce + self.beta_ * kl, "mse": mse, "ce": ce, "kl": kl}

    @torch.no_grad()
    def validation_loss(self) -> float:
        """The reconstruction cross-entropy TabSyn's schedules watch, on the validation table (the reference uses
        the real test split) or, without one, on the training rows; eval mode, decoding the encoder means (the
        reference decodes one noisy draw; the mean keeps the schedule deterministic)."""
        if getattr(self, "_val", None) is None and getattr(self, "validation", None) is not None:
            val = self.validation
            keep = np.ones(len(val), bool)  # rows with a category the training table lacks cannot be encoded
            for col, cats in zip(self.codec_.categorical, self.codec_.categories):
                keep &= val[col].astype(object).isin(list(cats)).to_numpy()
            if keep.any():
                enc = self.codec_.encode(val[keep].reset_index(drop=True), name="validation")
                self._val = tuple(t.to(self.device_) for t in enc)
        xn, xc = self._val if getattr(self, "_val", None) is not None else (self._x_num, self._x_cat)
        was = self.vae_.training
        self.vae_.eval()
        bs = int(self.cfg_["sample_batch_size"])
        total = 0.0
        for s in range(0, len(xn), bs):
            mu, logvar = self.vae_.encode(xn[s : s + bs], xc[s : s + bs])
            rec_num, logits = self.vae_.decode(mu[:, 1:])
            total += float(vae_loss(rec_num, logits, xn[s : s + bs], xc[s : s + bs], mu, logvar)[1]) * len(mu)
        self.vae_.train(was)
        return total / max(len(xn), 1)

    def _epoch_end(self, epoch: int, logs: dict) -> None:
        loss = logs["loss"]
        if not self._vae_phase:
            self.sched_.step(loss)
            logs.update(phase="diffusion", lr=self.opt_.param_groups[0]["lr"])
            return
        beta = self.beta_
        val = self.validation_loss()
        self.vae_sched_.step(val)
        # TabSyn's KL schedule on the validation loss: beta *= beta_decay once per stall, when the epochs without
        # improvement reach beta_patience (not again until it improves), while beta > min_beta (no clamp)
        if val < self.best_vae_loss_:
            self.best_vae_loss_, self.beta_wait_ = val, 0
        else:
            self.beta_wait_ += 1
            if self.beta_wait_ == int(self.cfg_["beta_patience"]) and self.beta_ > float(self.cfg_["min_beta"]):
                self.beta_ = self.beta_ * float(self.cfg_["beta_decay"])
        logs.update(phase="vae", beta=beta, val_ce=val, lr=self.vae_opt_.param_groups[0]["lr"])
        if epoch == int(self.cfg_["vae_epochs"]):
            self.vae_epochs_run_ = epoch

    def fit(self, table: Any, schema: Any, *, validation: Any = None, **kwargs: Any) -> "TabSyn":
        """`TabularGenerator.fit`, plus validation: a real table the VAE's lr and beta schedules watch (TabSyn
        uses the test split); None watches the training rows (a documented deviation)."""
        self.validation, self._val = validation, None
        try:
            return super().fit(table, schema, **kwargs)
        finally:
            self._val = None

    @torch.no_grad()
    def encode_latents(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """(n, F * d_token) encoder means of the column tokens ([CLS] dropped, as TabSyn), eval mode, in batches."""
        self.vae_.eval()
        bs = int(self.cfg_["sample_batch_size"])
        out = [
            self.vae_.encode(x_num[s : s + bs], x_cat[s : s + bs])[0][:, 1:].flatten(1)
            for s in range(0, len(x_num), bs)
        ]
        return torch.cat(out)

    # ------------------------------------------------------------------ sampling
    def _sample_codes(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = edm_sample(
            self.denoiser_, n, self.latent_dim_, gen, steps=int(self.cfg_["sample_steps"]), device=self.device_
        )
        z = z * 2 + self.latent_mean_
        d = int(self.cfg_["d_token"])
        rec_num, logits = self.vae_.decode(z.reshape(n, -1, d))
        return rec_num, logits.argmax(-1)
