"""One transformer block, shared by rote's tiny GPT, the ICL models and the small ViT.

nanoGPT-style pre-norm block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`, with multi-head self-attention through
`F.scaled_dot_product_attention` and an optional KV cache written in place (batched decoding). The parts can be
switched off so that the ICL nets can be built from the same code:

    one attention layer + MLP readout   Block(BlockConfig(d, h))                       (the default, as in tiny GPT)
    two-layer attention-only net        [Block(BlockConfig(d, h, mlp=False)) for _ in range(2)]
    bidirectional encoder (ViT)         Block(BlockConfig(d, h, causal=False))

State-dict keys (tiny GPT checkpoints depend on them): `ln1.{weight,bias}`, `attn.qkv.{weight,bias}`,
`attn.proj.{weight,bias}`, `ln2.{weight,bias}`, `mlp.0.{weight,bias}`, `mlp.2.{weight,bias}`; `ln2` and `mlp` are
absent with `mlp=False`, `ln1`/`attn` with `attention=False`, norms hold no parameters with `layer_norm=False`.

Hook points (names relative to the block, for `rote.core.hooks`): the block itself (residual stream after the
block, (B, T, C)), `attn` (attention output before the residual add, (B, T, C)), `mlp` (MLP output before the
residual add, (B, T, C)), `mlp.1` (MLP hidden units after GELU, (B, T, mlp_ratio * C)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from rote.core.errors import ConfigError

__all__ = ["BlockConfig", "CausalSelfAttention", "Block", "block_config"]


class _HasShape(Protocol):
    n_embd: int
    n_head: int


@dataclass(frozen=True)
class BlockConfig:
    """Shape of one block.

    n_embd: width C of the residual stream; n_head: attention heads (C must be divisible by it).
    mlp_ratio: MLP hidden width = mlp_ratio * C (4 in GPT-2). attention / mlp: include that sub-layer (at least one).
    layer_norm: pre-norm LayerNorms (False: identity, as in some attention-only ICL models).
    causal: each token attends only to itself and earlier tokens (False: every token sees every token, for ViT).
    bias: biases in the linear layers.
    """

    n_embd: int
    n_head: int
    mlp_ratio: float = 4
    attention: bool = True
    mlp: bool = True
    layer_norm: bool = True
    causal: bool = True
    bias: bool = True

    def __post_init__(self) -> None:
        if int(self.n_embd) < 1 or int(self.n_head) < 1:
            raise ConfigError(f"BlockConfig: n_embd={self.n_embd} and n_head={self.n_head} must be at least 1")
        if self.n_embd % self.n_head:
            raise ConfigError(f"BlockConfig: n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not (self.attention or self.mlp):
            raise ConfigError("BlockConfig: attention=False and mlp=False leave an empty block; keep at least one")
        if self.mlp and int(self.mlp_ratio * self.n_embd) < 1:
            raise ConfigError(f"BlockConfig: mlp_ratio={self.mlp_ratio} gives an empty MLP")

    @property
    def mlp_hidden(self) -> int:
        return int(self.mlp_ratio * self.n_embd)


def block_config(cfg: BlockConfig | _HasShape) -> BlockConfig:
    """A `BlockConfig` from itself or from any config with int `n_embd` and `n_head` (e.g. `TinyGPTConfig`), which
    gets the defaults above for everything else (the GPT-2 block)."""
    if isinstance(cfg, BlockConfig):
        return cfg
    try:
        return BlockConfig(n_embd=int(cfg.n_embd), n_head=int(cfg.n_head))
    except AttributeError as exc:
        raise ConfigError(
            f"{type(cfg).__name__}: a block needs a BlockConfig or a config with n_embd and n_head"
        ) from exc


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention, (B, T, C) -> (B, T, C), one fused qkv projection and an output projection."""

    def __init__(self, cfg: BlockConfig | _HasShape):
        super().__init__()
        cfg = block_config(cfg)
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.causal = cfg.causal
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)  # each (B, T, C)
        return tuple(z.view(b, t, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)

    def forward(
        self,
        x: torch.Tensor,
        allowed: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor, int] | None = None,
    ) -> torch.Tensor:
        """x: (B, T, C); allowed: bool (B, 1, T, S) (or broadcastable), True where a query may attend a key, None for
        plain causal (or full, with causal=False) attention; kv: this layer's cache buffers k, v (B, H, L, D) and
        the number of columns already filled; the T new keys/values are written after them, S = filled + T."""
        b, t, c = x.shape
        q, k, v = self._heads(x)
        start = 0
        if kv is not None:
            kbuf, vbuf, start = kv
            kbuf[:, :, start : start + t] = k
            vbuf[:, :, start : start + t] = v
            k, v = kbuf[:, :, : start + t], vbuf[:, :, : start + t]  # (B, H, S, D), S = cached + T
        if allowed is None and self.causal and start > 0:
            # is_causal aligns the mask top-left, wrong once cached keys precede the queries: build it bottom-right
            allowed = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(diagonal=start)
        if allowed is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(b, t, c)
        return self.proj(y)

    @torch.no_grad()
    def attention_pattern(self, x: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """Attention probabilities (B, H, T, T) for input x (B, T, C) (no cache), computed explicitly, for analysis
        (e.g. induction heads in ICL); the forward pass uses the fused kernel and never materializes them."""
        q, k, _ = self._heads(x)
        t = x.shape[1]
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, T, T)
        if allowed is None and self.causal:
            allowed = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        return scores.softmax(dim=-1)


class Block(nn.Module):
    """Pre-norm transformer block: x (B, T, C) -> x + attn(ln1(x)) -> (...) + mlp(ln2(...)), same shape.

    cfg: a `BlockConfig` or any config with `n_embd` and `n_head` (tiny GPT passes its `TinyGPTConfig`).
    Submodules are created in the order ln1, ln2, attn, mlp, the order the tiny GPT's own block used, so that a
    model initialized with the same seed gets the same weights.
    """

    def __init__(self, cfg: BlockConfig | _HasShape):
        super().__init__()
        cfg = block_config(cfg)
        self.cfg = cfg
        c = cfg.n_embd

        def norm() -> nn.Module:
            return nn.LayerNorm(c, bias=cfg.bias) if cfg.layer_norm else nn.Identity()

        if cfg.attention and cfg.mlp:
            self.ln1, self.ln2 = norm(), norm()
        elif cfg.attention:
            self.ln1 = norm()
        else:
            self.ln2 = norm()
        if cfg.attention:
            self.attn = CausalSelfAttention(cfg)
        if cfg.mlp:
            h = cfg.mlp_hidden
            self.mlp = nn.Sequential(nn.Linear(c, h, bias=cfg.bias), nn.GELU(), nn.Linear(h, c, bias=cfg.bias))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None, kv: Any = None) -> torch.Tensor:
        """x: (B, T, C); allowed, kv: as in `CausalSelfAttention.forward`. Returns (B, T, C)."""
        if self.cfg.attention:
            x = x + self.attn(self.ln1(x), allowed, kv)
        if self.cfg.mlp:
            x = x + self.mlp(self.ln2(x))
        return x
