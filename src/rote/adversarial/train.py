"""Standard, PGD-AT and TRADES training, optionally with DP-SGD and with the DeMem penalty, on `rote.core.training`.

Objectives, per sample i (the loss that is averaged over a batch):
    standard  CE(f(x_i), y_i)
    pgd_at    CE(f(x'_i), y_i),  x'_i = PGD maximizing CE in the eps-ball (Madry et al., ICLR 2018)
    trades    CE(f(x_i), y_i) + beta KL(p(x_i) || p(x'_i)),  x'_i = PGD maximizing the KL (Zhang et al., ICML 2019)

DeMem (Luo & Li, MLSP 2025; "DeMem-style": the paper's exact penalty is not public, see docs/adversarial.md): a
per-sample risk score r_i is read from the sample's CLEAN training loss: "drop" (default), its mean over training
so far minus its latest value (a sample that stayed hard for long and is now fitted: memorized; a typical sample
is fitted early and drops little, an unfittable one stays high and drops little), "trajectory", the mean alone
(hard samples, fitted or not), or "loss", the latest value; after `warmup` epochs the `fraction` of samples with
the highest risk are high-risk (H), and each of them gets `weight` * phi added to its loss, with phi
    flood    relu(b - c_i)   c_i the sample's CLEAN cross-entropy (`target="clean"`, default) or its training
                             objective l_i (`target="objective"`): a high-risk sample's loss is not driven below b
                             (weight 1 stops the descent below b, weight 2 reverses it: per-sample flooding, Ishida
                             et al. 2020). The clean loss is what a membership attack queries; under PGD-AT the
                             adversarial loss of hard samples rarely falls below b, so flooding it does nothing.
    ascent   -l_i            plain down-weighting of high-risk samples (weight < 1)
    entropy  -H(p(x_i))      a confidence penalty on the clean prediction of high-risk samples (Pereyra et al. 2017)
Atypical samples that are fitted only late are the ones a network memorizes and the ones membership inference
finds (Feldman 2020; Carlini et al. 2022), hence the default risk rule.

DP-SGD (Abadi et al. 2016): per-sample gradients (torch.func vmap over grad), each clipped to L2 norm `clip`,
summed, Gaussian noise of std `noise * clip` added, divided by the batch size. Batches are fixed-size shuffles
(not Poisson sampling); `rote.adversarial.experiment.dp_guarantee` reports the customary (epsilon, delta) of the
RDP accountant for the Poisson-subsampled Gaussian at q = batch size / n, which assumes Poisson sampling.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rote.adversarial.attacks import check_attack, pgd
from rote.core.errors import ConfigError, DataError, RoteError

__all__ = [
    "AttackConfig",
    "DeMemConfig",
    "DPConfig",
    "TrainConfig",
    "TrainedModel",
    "METHODS",
    "build_model",
    "check_labels",
    "clip_and_sum",
    "per_sample_grads",
    "per_sample_objective",
    "train_classifier",
]

METHODS = ("standard", "pgd_at", "trades")
RISK_RULES = ("drop", "trajectory", "loss")
PENALTIES = ("flood", "ascent", "entropy")


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """A PGD budget: L-`norm` radius `eps`, `steps` steps of `step_size` (pixels in [0, 1])."""

    eps: float = 0.1
    step_size: float = 0.025
    steps: int = 5
    norm: str = "linf"

    def __post_init__(self) -> None:
        check_attack(self.eps, self.step_size, self.steps, self.norm)


@dataclasses.dataclass(frozen=True)
class DeMemConfig:
    """The de-memorization penalty (module docstring): risk rule, high-risk fraction, penalty form and weight."""

    weight: float = 2.0
    fraction: float = 0.1
    risk: str = "drop"
    penalty: str = "flood"
    flood: float = 0.5
    warmup: int = 1
    target: str = "clean"

    def __post_init__(self) -> None:
        if self.target not in ("clean", "objective"):
            raise ConfigError(f"`demem_target` must be clean or objective, got {self.target!r}")
        if self.risk not in RISK_RULES:
            raise ConfigError(f"`demem_risk` must be one of {', '.join(RISK_RULES)}, got {self.risk!r}")
        if self.penalty not in PENALTIES:
            raise ConfigError(f"`demem_penalty` must be one of {', '.join(PENALTIES)}, got {self.penalty!r}")
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"`demem_fraction` must be in (0, 1], got {self.fraction}")
        if not (self.weight >= 0 and math.isfinite(self.weight)):
            raise ConfigError(f"`demem_weight` must be a finite number >= 0, got {self.weight}")
        if not self.flood >= 0:
            raise ConfigError(f"`demem_flood` must be >= 0, got {self.flood}")
        if int(self.warmup) != self.warmup or self.warmup < 0:
            raise ConfigError(f"`demem_warmup` must be a whole number of epochs >= 0, got {self.warmup}")


@dataclasses.dataclass(frozen=True)
class DPConfig:
    """DP-SGD: per-sample clipping norm `clip` and noise multiplier `noise` (std of the noise = noise * clip)."""

    clip: float = 1.0
    noise: float = 1.0

    def __post_init__(self) -> None:
        if not self.clip > 0:
            raise ConfigError(f"`dp_clip` must be > 0, got {self.clip}")
        if not self.noise >= 0:
            raise ConfigError(f"`dp_noise` must be >= 0, got {self.noise}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (see the module docstring for the objectives)."""

    method: str = "standard"
    attack: AttackConfig = dataclasses.field(default_factory=AttackConfig)
    beta: float = 6.0
    demem: DeMemConfig | None = None
    dp: DPConfig | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 16
    hidden: int = 128

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"`method` must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.beta >= 0:
            raise ConfigError(f"`beta` must be >= 0, got {self.beta}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"`lr` must be a finite number > 0, got {self.lr}")
        for name in ("epochs", "batch_size", "width", "hidden"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ConfigError(f"`{name}` must be a whole number >= 1, got {v}")

    @property
    def name(self) -> str:
        """The run's name in tables: method, then _demem / _dpsgd."""
        return self.method + ("_demem" if self.demem else "") + ("_dpsgd" if self.dp else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        d = dict(d)
        d["attack"] = AttackConfig(**d.get("attack", {}))
        d["demem"] = DeMemConfig(**d["demem"]) if d.get("demem") else None
        d["dp"] = DPConfig(**d["dp"]) if d.get("dp") else None
        return cls(**d)


@dataclasses.dataclass
class TrainedModel:
    """A trained classifier and what training recorded.

    model: the network (eval mode). history: one dict per epoch (loss, clean_acc, n_high_risk, seconds).
    risk: (n,) float, the final DeMem risk score of each training sample (mean clean loss over training, or the
    latest one). clean_loss: (epochs, n) float32, each sample's clean loss in each epoch.
    """

    model: nn.Module
    config: TrainConfig
    history: list[dict]
    risk: np.ndarray
    clean_loss: np.ndarray


def check_labels(labels: torch.Tensor, num_classes: int, where: str = "labels") -> None:
    """Labels must be whole numbers in [0, num_classes): a mismatched label space is refused, not trained on."""
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise DataError(f"`{where}` must be integers, got {labels.dtype}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DataError(
            f"`{where}` run from {int(labels.min())} to {int(labels.max())} but the model has {num_classes} "
            f"classes (0..{num_classes - 1}); the label spaces do not match: use data with the model's classes"
        )


def build_model(in_channels: int, num_classes: int, image_size: int, config: TrainConfig, seed: int) -> nn.Module:
    """rote.nets.SmallCNN (no BatchNorm: clean under attack, and per-sample gradients need no batch statistics)."""
    from rote.nets import SmallCNN

    return SmallCNN(
        in_channels, num_classes, image_size=image_size, width=config.width, hidden=config.hidden, seed=seed
    )


def per_sample_objective(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    x_adv: torch.Tensor | None,
    y: torch.Tensor,
    high: torch.Tensor | None,
    config: TrainConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) training losses (objective + DeMem penalty where `high`) and (B,) clean cross-entropies (detached).

    logits_fn: inputs (B, C, H, W) -> logits (B, K); x: clean inputs; x_adv: adversarial inputs (None for
    standard training); y: (B,) labels; high: (B,) bool, the high-risk samples of the batch (None: no penalty).
    """
    clean = logits_fn(x)
    ce_clean = F.cross_entropy(clean, y, reduction="none")
    if config.method == "standard":
        loss = ce_clean
    elif config.method == "pgd_at":
        loss = F.cross_entropy(logits_fn(x_adv), y, reduction="none")
    else:  # trades
        adv = logits_fn(x_adv)
        kl = (F.softmax(clean, 1) * (F.log_softmax(clean, 1) - F.log_softmax(adv, 1))).sum(1)
        loss = ce_clean + config.beta * kl
    if high is not None and config.demem is not None and config.demem.weight > 0:
        d = config.demem
        if d.penalty == "flood":
            phi = F.relu(d.flood - (ce_clean if d.target == "clean" else loss))
        elif d.penalty == "ascent":
            phi = -loss
        else:
            p = F.softmax(clean, 1)
            phi = (p * F.log_softmax(clean, 1)).sum(1)  # minus the entropy
        loss = loss + d.weight * high.to(loss.dtype) * phi
    return loss, ce_clean.detach()


def per_sample_grads(
    model: nn.Module,
    loss_one: Callable[..., torch.Tensor],
    *batch: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Gradients of `loss_one(params, *sample)` for each sample of `batch` (vmap over torch.func.grad).

    loss_one(params, *tensors_of_one_sample) -> scalar; batch: tensors with B rows. Returns name -> (B, *p.shape).
    """
    from torch.func import grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    return vmap(grad(loss_one), in_dims=(None,) + (0,) * len(batch), randomness="error")(params, *batch)


def clip_and_sum(grads: Mapping[str, torch.Tensor], clip: float) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Clip each sample's whole gradient (over all parameters) to L2 norm <= `clip` and sum over samples.

    grads: name -> (B, *shape). Returns (name -> (*shape,) clipped sums, (B,) norms before clipping)."""
    names = list(grads)
    b = grads[names[0]].shape[0]
    norms = torch.sqrt(sum(grads[k].reshape(b, -1).pow(2).sum(1) for k in names))
    factor = torch.clamp(clip / norms.clamp_min(1e-12), max=1.0)
    return {k: torch.einsum("b,b...->...", factor, grads[k]) for k in names}, norms


class _StepGuard:
    """Stops training at the first non-finite loss, naming the step and the last good checkpoint (the Trainer's
    epoch-end check would only see it after the rest of the epoch ran on NaN weights)."""

    def on_step_end(self, state: Any, out: Mapping[str, Any]) -> bool:
        loss = out.get("loss")
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            last = (
                f"the last good checkpoint is {state.last_checkpoint} (resume continues from it)"
                if state.last_checkpoint is not None
                else "no checkpoint had been written yet"
            )
            raise RoteError(
                f"training diverged: the loss is {value} at epoch {state.epoch}, step {state.step}; training "
                f"stopped and {last}; lower `lr` (or the DeMem weight) and train again"
            )
        return False


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    *,
    num_classes: int,
    seed: int = 0,
    device: str = "cpu",
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    callbacks: Sequence[Any] = (),
    progress: bool = False,
) -> TrainedModel:
    """Train one SmallCNN with `config` on images (N, C, H, W) float in [0, 1] and labels (N,) int64.

    Deterministic on CPU for a given seed (the Trainer seeds every draw from (seed, epoch); PGD's random starts
    and DP noise come from the epoch's generator). With `checkpoint_dir`, a checkpoint after every epoch; a
    non-finite loss stops training with a `RoteError` naming the last good one.
    """
    from rote.core.training import Trainer

    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.dtype.is_floating_point:
        raise DataError("`images` must be a float (N, C, H, W) tensor with pixels in [0, 1]")
    if len(images) != len(labels):
        raise DataError(f"`images` has {len(images)} rows but `labels` has {len(labels)}; they must match")
    check_labels(labels, num_classes)
    labels = labels.long()
    n, c, h, w = images.shape
    if h != w:
        raise DataError(f"`images` must be square for SmallCNN, got {h}x{w}")
    model = build_model(c, num_classes, h, config, seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    risk_sum = torch.zeros(n, dtype=torch.float64)
    risk_count = torch.zeros(n, dtype=torch.float64)
    risk_last = torch.zeros(n, dtype=torch.float64)
    high_mask = torch.zeros(n, dtype=torch.bool)
    demem = config.demem

    def risk_now() -> torch.Tensor:
        mean = risk_sum / risk_count.clamp_min(1)
        if demem is not None and demem.risk == "loss":
            return risk_last.clone()
        if demem is not None and demem.risk == "drop":
            return mean - risk_last
        return mean

    class _Risk:
        """Chooses the high-risk set H at the start of each epoch from the risk measured so far."""

        def on_epoch_begin(self, state: Any) -> None:
            high_mask.zero_()
            if demem is None or state.epoch <= demem.warmup or risk_count.max() == 0:
                return
            r = risk_now()
            k = max(1, int(round(demem.fraction * n)))
            high_mask[torch.topk(r, k, sorted=False).indices] = True  # ties: torch's order, deterministic on CPU

        def on_epoch_end(self, state: Any, logs: dict) -> bool:
            logs["n_high_risk"] = int(high_mask.sum())
            return False

    def adversarial(model_: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = config.attack
        if config.method == "pgd_at":
            return pgd(model_, x, y, eps=a.eps, step_size=a.step_size, steps=a.steps, norm=a.norm, generator=gen)
        with torch.no_grad():
            p_clean = F.softmax(model_(x), 1)

        def kl(z: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
            return (p_clean * (torch.log(p_clean.clamp_min(1e-12)) - F.log_softmax(z, 1))).sum()

        return pgd(
            model_, x, y, eps=a.eps, step_size=a.step_size, steps=a.steps, norm=a.norm, generator=gen, loss_fn=kl
        )

    def step(batch: Any, state: Any) -> dict[str, Any]:
        x, y = batch
        idx = state.indices.cpu()
        m = state.modules["model"]
        x_adv = None if config.method == "standard" else adversarial(m, x, y, state.generator)
        high = high_mask[idx].to(x.device) if demem is not None else None
        if config.dp is None:
            loss_i, ce = per_sample_objective(m, x, x_adv, y, high, config)
            loss = loss_i.mean()
        else:
            from torch.func import functional_call

            def loss_one(params, xi, xai, yi, hi):
                def f(inp):
                    return functional_call(m, params, (inp,))

                li, _ = per_sample_objective(
                    f, xi[None], None if xai is None else xai[None], yi[None], hi[None], config
                )
                return li[0]

            hh = high if high is not None else torch.zeros(len(y), dtype=torch.bool, device=x.device)
            xa = x_adv if x_adv is not None else x  # unused by the standard objective
            grads = per_sample_grads(m, loss_one, x, xa, y, hh)
            summed, _ = clip_and_sum(grads, config.dp.clip)
            opt.zero_grad(set_to_none=True)
            for name, p in m.named_parameters():
                noise = torch.randn(p.shape, generator=state.generator, device=p.device, dtype=p.dtype)
                p.grad = (summed[name] + config.dp.noise * config.dp.clip * noise) / len(y)
            opt.step()
            with torch.no_grad():
                loss_i, ce = per_sample_objective(m, x, x_adv, y, high, config)
            loss = loss_i.mean()
        with torch.no_grad():
            c = ce.double().cpu()
            risk_sum.index_add_(0, idx, c)
            risk_count.index_add_(0, idx, torch.ones_like(c))
            risk_last[idx] = c
        return {"loss": loss, "per_sample": ce, "clean_ce": ce.mean()}

    def payload(state: Any) -> dict:
        return {"risk": {"sum": risk_sum.clone(), "count": risk_count.clone(), "last": risk_last.clone()}}

    def load_payload(path: Path, ck: dict) -> None:
        risk_sum.copy_(ck["risk"]["sum"])
        risk_count.copy_(ck["risk"]["count"])
        risk_last.copy_(ck["risk"]["last"])

    trainer = Trainer(
        {"model": model},
        step,
        optimizers={"opt": opt},
        data=(images, labels),
        batch_size=config.batch_size,
        epochs=config.epochs,
        seed=seed,
        device=device,
        manual_optimization=config.dp is not None,
        callbacks=[_Risk(), _StepGuard(), *callbacks],
        record_per_sample="all",
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=1 if checkpoint_dir is not None else None,
        resume=resume,
        kind="rote.adversarial",
        meta={"config": config.to_dict(), "num_classes": int(num_classes)},
        payload=payload,
        load_payload=load_payload,
        progress=progress,
        description=f"training {config.name}",
    )
    state = trainer.fit()
    model.eval()
    return TrainedModel(model, config, list(state.history), risk_now().numpy(), state.per_sample)
