"""Accuracy under attack and the per-example statistics that membership inference reads from a trained model."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rote.adversarial.attacks import pgd
from rote.adversarial.train import AttackConfig, check_labels
from rote.core.errors import ConfigError
from rote.core.privacy import lira_statistic

__all__ = ["AUGMENTATIONS", "accuracy", "augment", "logits", "query_statistics"]

AUGMENTATIONS = ("identity", "hflip", "shift_left", "shift_right")


def augment(x: torch.Tensor, name: str) -> torch.Tensor:
    """One query augmentation of (B, C, H, W) images: identity, hflip, or a one-pixel shift (zero filled)."""
    if name == "identity":
        return x
    if name == "hflip":
        return x.flip(-1)
    if name in ("shift_left", "shift_right"):
        out = torch.zeros_like(x)
        if name == "shift_left":
            out[..., :-1] = x[..., 1:]
        else:
            out[..., 1:] = x[..., :-1]
        return out
    raise ConfigError(f"`augmentations`: unknown augmentation {name!r}; use {', '.join(AUGMENTATIONS)}")


@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """(N, K) logits of images (N, C, H, W), in batches, on the model's device, returned on CPU."""
    dev = next(model.parameters()).device
    return torch.cat([model(x[i : i + batch_size].to(dev)).cpu() for i in range(0, len(x), batch_size)])


def accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    attack: AttackConfig | None = None,
    seed: int = 0,
    batch_size: int = 512,
) -> float:
    """Accuracy on (x, y): natural (attack None) or under PGD with the `attack` budget (random start drawn from a
    generator seeded with `seed`)."""
    n_classes = int(logits(model, x[:1]).shape[1])
    check_labels(y, n_classes, "labels")
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    correct = 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev)
        if attack is not None:
            xb = pgd(
                model,
                xb,
                yb,
                eps=attack.eps,
                step_size=attack.step_size,
                steps=attack.steps,
                norm=attack.norm,
                generator=gen,
            )
        with torch.no_grad():
            correct += int((model(xb).argmax(1) == yb).sum())
    return correct / max(len(x), 1)


def query_statistics(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, augmentations: tuple[str, ...] = ("identity", "hflip")
) -> np.ndarray:
    """(N, A) LiRA statistic (logit-scaled true-class confidence, `rote.core.privacy.lira_statistic`) of each
    example under each query augmentation."""
    if not augmentations:
        raise ConfigError("`augmentations` is empty; give at least identity")
    z0 = logits(model, x[:1])
    check_labels(y, int(z0.shape[1]), "labels")
    cols = [lira_statistic(logits(model, augment(x, a)).numpy(), y.numpy()) for a in augmentations]
    return np.stack(cols, axis=1)
