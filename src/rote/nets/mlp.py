"""A plain multi-layer perceptron: the MAT / tabular baseline, and a tiny image classifier on flattened pixels."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from rote.core.errors import ConfigError
from rote.nets.common import Net, make_head, seeded

__all__ = ["MLP"]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(Net):
    """x (B, *) flattened to (B, in_features) -> fc1 -> ... -> fcK -> head.

    in_features: input width after flattening (784 for 28x28 grayscale, 3072 for 32x32 RGB).
    hidden: widths of the hidden layers; () gives a linear model (features = the flattened input).
    num_classes / projection_dim: the head (see `rote.nets.common.make_head`); both None: forward = features.
    activation: "relu", "gelu" or "tanh"; dropout: after each hidden activation (0 = none).
    seed: fixes the initial weights without touching the global RNG (None: use the global RNG).

    Layers (`layer_names()`): fc1..fcK, each `Sequential(Linear, activation[, Dropout])`, output (B, hidden[i])
    after the activation; units = neurons.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (256, 256),
        num_classes: int | None = 10,
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        projection_dim: int | None = None,
        seed: int | None = 0,
    ):
        super().__init__()
        if int(in_features) < 1 or any(int(h) < 1 for h in hidden):
            raise ConfigError(f"MLP: in_features={in_features} and hidden={tuple(hidden)} must be positive")
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"MLP: activation={activation!r}; choose one of {sorted(_ACTIVATIONS)}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"MLP: dropout={dropout} must lie in [0, 1)")
        self.in_features = int(in_features)
        self._layers = []
        with seeded(seed):
            width = self.in_features
            for i, h in enumerate(hidden, start=1):
                parts: list[nn.Module] = [nn.Linear(width, int(h)), _ACTIVATIONS[activation]()]
                if dropout:
                    parts.append(nn.Dropout(dropout))
                self.add_module(f"fc{i}", nn.Sequential(*parts))
                self._layers.append(f"fc{i}")
                width = int(h)
            self.feature_dim = width
            self.head = make_head(width, num_classes, projection_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, *) with prod(*) = in_features -> (B, feature_dim)."""
        x = x.flatten(1)
        for name in self._layers:
            x = getattr(self, name)(x)
        return x
