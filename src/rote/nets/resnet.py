"""CIFAR-style ResNets for 28-32 px images, 1 or 3 channels: ResNet9 (Page's DAWNBench net, as used by the SSL
memorization papers) and ResNet18 (He et al., 2016, with the CIFAR stem: one 3x3 conv, no max-pool).

Both end in global pooling, so any input size from 8 px up works; 28 and 32 px are the tested ones.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from rote.core.errors import ConfigError
from rote.nets.common import Net, make_head, seeded

__all__ = ["ConvBNReLU", "Residual", "BasicBlock", "ResNet9", "ResNet18"]


class ConvBNReLU(nn.Module):
    """conv 3x3 (no bias) -> BatchNorm -> ReLU [-> MaxPool 2]: (B, Cin, H, W) -> (B, Cout, H, W) (or H/2, W/2).
    Units are the Cout filters; `rote.nets.prune_units` zeroes a filter and its BN scale and shift together."""

    def __init__(self, c_in: int, c_out: int, pool: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


class Residual(nn.Module):
    """x + conv2(conv1(x)) with two `ConvBNReLU` of the same width: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = ConvBNReLU(c, c)
        self.conv2 = ConvBNReLU(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class ResNet9(Net):
    """ResNet9: x (B, C, S, S) -> conv1 -> conv2 -> res1 -> conv3 -> conv4 -> res2 -> global max-pool -> head.

    in_channels: 1 or 3; width: channels of conv1 (64 in the original; the others are 2, 4 and 8 times it);
    num_classes / projection_dim: the head (`make_head`; projection_dim for a SimCLR encoder);
    seed: fixes the initial weights (global RNG untouched).

    Layers (`layer_names()`, the 8 convolutions; outputs after ReLU and pooling, shapes at S = 32, w = width):
        conv1                 (B, w, 32, 32)
        conv2                 (B, 2w, 16, 16)   (pooled)
        res1.conv1, res1.conv2 (B, 2w, 16, 16)  (res1.conv2 before the skip is added)
        conv3                 (B, 4w, 8, 8)     (pooled)
        conv4                 (B, 8w, 4, 4)     (pooled)
        res2.conv1, res2.conv2 (B, 8w, 4, 4)
    Also capturable: `res1`, `res2` (after the skip connection), `pool` (B, 8w) = features.
    At S = 28 the maps are 28, 14, 7, 3.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int | None = 10,
        *,
        width: int = 64,
        projection_dim: int | None = None,
        seed: int | None = 0,
    ):
        super().__init__()
        if min(in_channels, width) < 1:
            raise ConfigError(f"ResNet9: in_channels={in_channels} and width={width} must be at least 1")
        w = int(width)
        with seeded(seed):
            self.conv1 = ConvBNReLU(in_channels, w)
            self.conv2 = ConvBNReLU(w, 2 * w, pool=True)
            self.res1 = Residual(2 * w)
            self.conv3 = ConvBNReLU(2 * w, 4 * w, pool=True)
            self.conv4 = ConvBNReLU(4 * w, 8 * w, pool=True)
            self.res2 = Residual(8 * w)
            self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
            self.head = make_head(8 * w, num_classes, projection_dim)
        self.feature_dim = 8 * w
        self._layers = ["conv1", "conv2", "res1.conv1", "res1.conv2", "conv3", "conv4", "res2.conv1", "res2.conv2"]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, S, S) -> (B, 8 * width)."""
        x = self.res1(self.conv2(self.conv1(x)))
        x = self.res2(self.conv4(self.conv3(x)))
        return self.pool(x)


class BasicBlock(nn.Module):
    """ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x)): (B, Cin, H, W) -> (B, Cout, H/stride, W/stride).
    The shortcut is a 1x1 conv + BN when the shape changes, else the identity."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(Net):
    """CIFAR ResNet18: x (B, C, S, S) -> stem -> layer1..layer4 (two BasicBlocks each) -> global avg-pool -> head.

    in_channels: 1 or 3; width: channels of the stem and layer1 (64; layer2..4 have 2, 4, 8 times it);
    num_classes / projection_dim: the head (`make_head`); seed: fixes the initial weights (global RNG untouched).

    Layers (`layer_names()`: the stem and the 8 residual blocks, outputs after the final ReLU; at S = 32):
        stem                    ConvBNReLU  (B, w, 32, 32)
        layer1.0, layer1.1      (B, w, 32, 32)
        layer2.0, layer2.1      (B, 2w, 16, 16)
        layer3.0, layer3.1      (B, 4w, 8, 8)
        layer4.0, layer4.1      (B, 8w, 4, 4)
    Units of a block are the filters of its conv2/bn2 (what `prune_units` zeroes). `pool` (B, 8w) = features.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int | None = 10,
        *,
        width: int = 64,
        projection_dim: int | None = None,
        seed: int | None = 0,
    ):
        super().__init__()
        if min(in_channels, width) < 1:
            raise ConfigError(f"ResNet18: in_channels={in_channels} and width={width} must be at least 1")
        w = int(width)
        self._layers = ["stem"]
        with seeded(seed):
            self.stem = ConvBNReLU(in_channels, w)
            c_in = w
            for i, (c, stride) in enumerate([(w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)], start=1):
                self.add_module(f"layer{i}", nn.Sequential(BasicBlock(c_in, c, stride), BasicBlock(c, c)))
                self._layers += [f"layer{i}.0", f"layer{i}.1"]
                c_in = c
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = make_head(8 * w, num_classes, projection_dim)
        self.feature_dim = 8 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, S, S) -> (B, 8 * width)."""
        x = self.stem(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.pool(x)
