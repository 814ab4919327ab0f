"""A small Vision Transformer for 28-32 px images (Dosovitskiy et al., 2021): 4x4 patches, a class token, learned
positions and the shared pre-norm `Block` without the causal mask."""

from __future__ import annotations

import torch
import torch.nn as nn

from rote.core.errors import ConfigError
from rote.nets.common import Net, make_head, seeded
from rote.nets.transformer import Block, BlockConfig

__all__ = ["PatchEmbed", "ViT"]


class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches, linearly embedded: (B, C, S, S) -> (B, N, dim), N = (S / p)^2, row-major."""

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)  # stride p: one linear map per patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, dim, S/p, S/p) -> (B, N, dim)


class ViT(Net):
    """x (B, C, S, S) -> patch_embed -> [cls] + patches + positions -> blocks -> norm -> class token -> head.

    in_channels: 1 or 3; image_size: S (must be divisible by patch_size; 28 with p = 4 gives 49 patches, 32 gives 64).
    dim, depth, heads, mlp_ratio: width, number of blocks, attention heads and MLP expansion (defaults: about 1.8M
    parameters, a ViT-Tiny narrowed for 32 px). pool: "cls" (the class token) or "mean" (mean over all tokens) as
    features. num_classes / projection_dim: the head (`make_head`); seed: fixes the initial weights.

    Layers (`layer_names()`): blocks.0 .. blocks.{depth-1}, each the residual stream after that block,
    (B, N + 1, dim) with the class token first. Also capturable: `patch_embed` (B, N, dim), `norm`, and inside a
    block `attn`, `mlp`, `mlp.1` (hidden units, (B, N + 1, mlp_ratio * dim)).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int | None = 10,
        *,
        image_size: int = 32,
        patch_size: int = 4,
        dim: int = 192,
        depth: int = 6,
        heads: int = 3,
        mlp_ratio: float = 2,
        pool: str = "cls",
        projection_dim: int | None = None,
        seed: int | None = 0,
    ):
        super().__init__()
        if image_size < 1 or patch_size < 1 or image_size % patch_size:
            raise ConfigError(f"ViT: image_size={image_size} must be a positive multiple of patch_size={patch_size}")
        if pool not in ("cls", "mean"):
            raise ConfigError(f"ViT: pool={pool!r}; choose 'cls' or 'mean'")
        if min(in_channels, depth) < 1:
            raise ConfigError(f"ViT: in_channels={in_channels} and depth={depth} must be at least 1")
        cfg = BlockConfig(n_embd=dim, n_head=heads, mlp_ratio=mlp_ratio, causal=False)
        self.image_size, self.patch_size, self.pool = int(image_size), int(patch_size), pool
        n_patches = (image_size // patch_size) ** 2
        with seeded(seed):
            self.patch_embed = PatchEmbed(in_channels, dim, patch_size)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, dim))
            self.blocks = nn.ModuleList(Block(cfg) for _ in range(depth))
            self.norm = nn.LayerNorm(dim)
            self.head = make_head(dim, num_classes, projection_dim)
            # timm's ViT init: truncated normal(0.02) for positions, class token and linear weights, zero biases
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.trunc_normal_(self.cls_token, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        self.feature_dim = int(dim)
        self._layers = [f"blocks.{i}" for i in range(depth)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, S, S) -> (B, dim)."""
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"ViT: expected {self.image_size}x{self.image_size} images, got {tuple(x.shape[-2:])}")
        t = self.patch_embed(x)  # (B, N, dim)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed  # (B, N + 1, dim)
        for blk in self.blocks:
            t = blk(t)
        t = self.norm(t)
        return t[:, 0] if self.pool == "cls" else t.mean(dim=1)
