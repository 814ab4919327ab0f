"""A small CNN for 28x28 grayscale (MNIST-style) and 32x32 images: the adversarial-training and MAT workhorse,
after Madry et al. (2018)'s MNIST network (two conv + pool stages and one hidden fully connected layer)."""

from __future__ import annotations

import torch
import torch.nn as nn

from rote.core.errors import ConfigError
from rote.nets.common import Net, make_head, seeded

__all__ = ["SmallCNN"]


class SmallCNN(Net):
    """x (B, C, S, S) -> conv1 -> conv2 -> fc -> head.

    in_channels: 1 (grayscale) or 3; image_size: S, the height = width of the input (28 or 32; fixes fc's width).
    width: channels of conv1 (conv2 has 2 * width); hidden: width of fc; kernel_size: odd conv kernel (3 or 5).
    num_classes / projection_dim: the head (`make_head`); seed: fixes the initial weights (global RNG untouched).

    Layers (`layer_names()`):
        conv1  Sequential(Conv2d, ReLU, MaxPool2d(2))   (B, width, S/2, S/2)
        conv2  Sequential(Conv2d, ReLU, MaxPool2d(2))   (B, 2 width, S/4, S/4)
        fc     Sequential(Flatten, Linear, ReLU)        (B, hidden) = features
    No BatchNorm: adversarial training is cleaner without it (no train/eval statistics gap under attack).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int | None = 10,
        *,
        image_size: int = 28,
        width: int = 32,
        hidden: int = 256,
        kernel_size: int = 3,
        projection_dim: int | None = None,
        seed: int | None = 0,
    ):
        super().__init__()
        if image_size < 4 or min(in_channels, width, hidden) < 1 or kernel_size % 2 == 0:
            raise ConfigError(
                f"SmallCNN: image_size={image_size} (>= 4), in_channels={in_channels}, width={width}, "
                f"hidden={hidden} (>= 1) and an odd kernel_size ({kernel_size}) expected"
            )
        self.image_size, self.in_channels = int(image_size), int(in_channels)
        pad = kernel_size // 2  # 'same' convolutions: only the pools shrink the image
        s = image_size // 2 // 2
        with seeded(seed):
            self.conv1 = nn.Sequential(
                nn.Conv2d(in_channels, width, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2)
            )
            self.conv2 = nn.Sequential(
                nn.Conv2d(width, 2 * width, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2)
            )
            self.fc = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * s * s, hidden), nn.ReLU())
            self.head = make_head(hidden, num_classes, projection_dim)
        self.feature_dim = int(hidden)
        self._layers = ["conv1", "conv2", "fc"]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, S, S) -> (B, hidden)."""
        return self.fc(self.conv2(self.conv1(x)))
