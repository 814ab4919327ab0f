"""What every rote image/tabular network shares: a `features` / `head` split, named layers, seeded construction,
a SimCLR projection head and unit zeroing for pruning.

Contract of a `Net` (MLP, SmallCNN, ResNet9, ResNet18, ViT):
    features(x) -> (B, feature_dim)     the representation (penultimate layer; SimCLR's encoder output)
    forward(x)  -> head(features(x))    (B, num_classes) logits, or (B, projection_dim) with a projection head,
                                        or the features themselves when the net has no head
    layer_names() -> list[str]          the net's natural layers in forward order, as module names that
                                        `rote.core.hooks.capture` accepts (LayerMem / UnitMem read these)
    units(name) -> int                  number of units (channels or neurons) of that layer
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from rote.core.errors import ConfigError

__all__ = ["Net", "ProjectionHead", "make_head", "seeded", "prune_units", "unit_layers"]


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the body with the CPU torch RNG seeded by `seed`, leaving the global RNG state as it was (so building a
    net never disturbs the caller's randomness). seed=None: use (and advance) the global RNG."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


class ProjectionHead(nn.Module):
    """SimCLR projection MLP g(h) = W2 ReLU(BN(W1 h)): (B, in_dim) -> (B, out_dim) (Chen et al., 2020, Sec. 2.1).
    The contrastive loss is computed on g(h); h (the encoder features) is the representation that is evaluated."""

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None):
        super().__init__()
        hidden = hidden_dim or in_dim
        self.fc1 = nn.Linear(in_dim, hidden, bias=False)
        self.bn = nn.BatchNorm1d(hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.bn(self.fc1(h))))


def make_head(
    feature_dim: int, num_classes: int | None, projection_dim: int | None, projection_hidden: int | None = None
) -> nn.Module:
    """The head of a net: Linear(feature_dim, num_classes), a SimCLR `ProjectionHead` (projection_dim), or the
    identity when both are None (forward then returns the features)."""
    if num_classes is not None and projection_dim is not None:
        raise ConfigError(
            f"num_classes={num_classes} and projection_dim={projection_dim}: a net has one head; pass "
            "num_classes=None for a SimCLR encoder with a projection head"
        )
    if num_classes is not None:
        if int(num_classes) < 1:
            raise ConfigError(f"num_classes={num_classes}: must be at least 1 (or None for no classifier)")
        return nn.Linear(feature_dim, int(num_classes))
    if projection_dim is not None:
        if int(projection_dim) < 1:
            raise ConfigError(f"projection_dim={projection_dim}: must be at least 1")
        return ProjectionHead(feature_dim, int(projection_dim), projection_hidden)
    return nn.Identity()


class Net(nn.Module):
    """Base of rote's nets: subclasses set `self.head`, `self.feature_dim`, `self._layers` and define `features`."""

    head: nn.Module
    feature_dim: int
    _layers: list[str]

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def layer_names(self) -> list[str]:
        """The net's natural layers, in forward order (see the class docstring for what each one outputs)."""
        return list(self._layers)

    def units(self, name: str) -> int:
        """Number of units of layer `name`: output channels of its last conv, or output neurons of its last linear."""
        weight, _, _ = _unit_params(self.get_submodule(name))
        return int(weight.shape[0])

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _unit_params(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None, nn.Module | None]:
    """Weight and bias of the last Conv/Linear of `layer` (in registration = forward order for rote's nets) and the
    first BatchNorm registered after it, if any."""
    last: nn.Module | None = None
    bn: nn.Module | None = None
    for m in layer.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            last, bn = m, None
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and last is not None and bn is None:
            bn = m
    if last is None:
        raise ConfigError(f"{type(layer).__name__}: has no Conv or Linear layer whose units could be zeroed")
    return last.weight, last.bias, bn


def unit_layers(net: nn.Module, names: Sequence[str]) -> dict[str, int]:
    """{name: number of units} for the given layers of `net`."""
    return {n: int(_unit_params(net.get_submodule(n))[0].shape[0]) for n in names}


@torch.no_grad()
def prune_units(layer: nn.Module, units: Sequence[int] | torch.Tensor) -> None:
    """Prune units of a layer in place: zero the output filters `units` of its last Conv (or rows of its last
    Linear), their biases and, when a BatchNorm follows, its weight and bias at those channels, so that the
    units output exactly 0 before the nonlinearity in both train and eval mode (BN(0) = 0 * ... + 0).

    Later training can regrow the zeroed weights; mask their gradients if pruning must persist. In a residual
    block this removes the units' own contribution; the skip connection still carries its input.
    """
    idx = torch.as_tensor(units, dtype=torch.long).flatten()
    weight, bias, bn = _unit_params(layer)
    n = weight.shape[0]
    if idx.numel() and (idx.min() < -n or idx.max() >= n):
        raise ConfigError(f"units {idx.tolist()}: the layer has {n} units (0..{n - 1})")
    idx = idx.to(weight.device)
    weight[idx] = 0
    if bias is not None:
        bias[idx] = 0
    if bn is not None and bn.affine:
        bn.weight[idx] = 0
        bn.bias[idx] = 0
