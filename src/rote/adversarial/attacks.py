"""Projected gradient descent (PGD; Madry et al., ICLR 2018) in the L-inf and L2 balls, on images in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from rote.core.errors import ConfigError

__all__ = ["check_attack", "pgd", "project"]

NORMS = ("linf", "l2")


def check_attack(eps: float, step_size: float, steps: int, norm: str = "linf") -> None:
    """Reject an attack budget out of range: `norm` linf or l2; `eps` in [0, 1] for linf (pixels are in [0, 1])
    and >= 0 for l2; `step_size` in (0, 2 eps] (a bigger step only bounces on the ball's surface) unless eps = 0;
    `steps` >= 0."""
    if norm not in NORMS:
        raise ConfigError(f"`norm` must be linf or l2, got {norm!r}")
    if not (eps >= 0) or (norm == "linf" and eps > 1):
        raise ConfigError(
            f"`eps` must be in [0, 1] for an L-inf attack on images in [0, 1] (e.g. 0.1 for Fashion-MNIST, 8/255 "
            f"for CIFAR-10), got {eps}"
            if norm == "linf"
            else f"`eps` must be >= 0, got {eps}"
        )
    if eps > 0 and not (0 < step_size <= 2 * eps):
        raise ConfigError(f"`step_size` must be in (0, 2 * eps] = (0, {2 * eps:g}] (usual: eps / 4), got {step_size}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ConfigError(f"`steps` must be a whole number >= 0, got {steps}")


def _flat_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.ndim - 1)))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project perturbations (B, ...) onto the `norm` ball of radius `eps` (each sample on its own)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * torch.clamp(eps / _flat_norm(delta), max=1.0)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "linf",
    random_start: bool = True,
    generator: torch.Generator | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Adversarial examples that (locally) maximize `loss_fn` within the `norm` ball of radius `eps` around x.

    x: (B, C, H, W) float in [0, 1]; y: (B,) int64 labels. steps of size `step_size`: the sign of the gradient
    (linf) or the gradient scaled to unit L2 norm (l2), then projection onto the ball and onto [0, 1].
    random_start: start from a uniform point in the L-inf ball (linf) or a random direction of norm <= eps (l2),
    drawn from `generator`. loss_fn(logits, y) -> scalar: default the summed cross-entropy (TRADES passes its KL).
    Returns (B, C, H, W) detached; the model's parameters receive no gradient.
    """
    check_attack(eps, step_size, steps, norm)
    if eps == 0 or steps == 0:
        return x.detach().clone()
    loss_fn = loss_fn or (lambda z, t: F.cross_entropy(z, t, reduction="sum"))
    x = x.detach()
    if random_start:
        r = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        if norm == "l2":
            r = (
                r
                / _flat_norm(r)
                * eps
                * torch.rand((len(x),) + (1,) * (x.ndim - 1), generator=generator, device=x.device, dtype=x.dtype)
            )
        else:
            r = r * eps
        delta = (x + r).clamp(0, 1) - x
    else:
        delta = torch.zeros_like(x)
    grads_were = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(int(steps)):
            delta.requires_grad_(True)
            loss = loss_fn(model(x + delta), y)
            (g,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                step = g.sign() if norm == "linf" else g / _flat_norm(g)
                delta = project(delta + step_size * step, eps, norm)
                delta = (x + delta).clamp(0, 1) - x
    finally:
        for p, was in zip(model.parameters(), grads_were):
            p.requires_grad_(was)
    return (x + delta).detach()
