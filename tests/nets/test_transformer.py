"""The shared transformer block: bit-identical to the tiny GPT's own block as it was before the swap (weights,
state-dict keys, outputs on the plain, masked and KV-cache paths, seeded initialization), and the ICL / ViT variants
against hand computations."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rote.core.errors import ConfigError
from rote.llm import tinygpt
from rote.llm.tinygpt import KVCache, TinyGPTConfig, build_model
from rote.nets.transformer import Block, BlockConfig, CausalSelfAttention

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = TinyGPTConfig(block_size=24, n_layer=2, n_head=4, n_embd=32)


# The tiny GPT's own block as rote shipped it before `rote.nets` (restated verbatim): the reference the shared
# block must reproduce bit for bit, so that old checkpoints and every tiny-GPT figure stay the same.
class _RefAttention(nn.Module):
    def __init__(self, cfg: Any):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(
        self,
        x: torch.Tensor,
        allowed: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor, int] | None = None,
    ) -> torch.Tensor:
        # x: (B, T, C); allowed: (B, 1, T, S) bool, True where a query may attend a key (None = plain causal);
        # kv: this layer's cache buffers (B, H, block_size, D) and the number of columns already filled
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)  # each (B, T, C)
        q, k, v = (z.view(b, t, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        if kv is not None:
            kbuf, vbuf, start = kv
            kbuf[:, :, start : start + t] = k
            vbuf[:, :, start : start + t] = v
            k, v = kbuf[:, :, : start + t], vbuf[:, :, : start + t]  # (B, H, S, D), S = cached + T
        if allowed is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(b, t, c)
        return self.proj(y)


class _RefBlock(nn.Module):
    def __init__(self, cfg: Any):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.attn = _RefAttention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        )

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None, kv: Any = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), allowed, kv)
        return x + self.mlp(self.ln2(x))


def _pair(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """tiny GPT's Block and the shared one, each built from the same seed (same RNG draws if the code is the same)."""
    torch.manual_seed(seed)
    ref = _RefBlock(CFG).eval()
    torch.manual_seed(seed)
    ours = Block(CFG).eval()
    return ref, ours


def test_same_seed_same_weights_and_identical_state_dict_keys():
    ref, ours = _pair(3)
    assert list(ref.state_dict()) == list(ours.state_dict())  # same keys, same order
    for k, v in ref.state_dict().items():
        assert torch.equal(v, ours.state_dict()[k]), k
    assert [n for n, _ in ref.named_modules()] == [n for n, _ in ours.named_modules()]


def test_block_outputs_bit_identical_plain_masked_and_cached():
    ref, ours = _pair(0)
    ours.load_state_dict(ref.state_dict(), strict=True)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 10, CFG.n_embd, generator=g)
    with torch.no_grad():
        assert torch.equal(ref(x), ours(x))
        # an `allowed` mask with padding (as TinyGPT.step builds it): left padding on row 0
        mask = torch.ones(3, 10, dtype=torch.bool)
        mask[0, :4] = False
        causal = torch.ones(10, 10, dtype=torch.bool).tril()
        allowed = (causal.unsqueeze(0) & mask.unsqueeze(1) | torch.eye(10, dtype=torch.bool)).unsqueeze(1)
        assert torch.equal(ref(x, allowed), ours(x, allowed))
        # KV-cache path: prefix of 7, then 3 single tokens; both write their caches in place
        caches = [KVCache(CFG, 3, torch.device("cpu"), torch.float32) for _ in range(2)]
        outs = []
        for blk, cache in zip((ref, ours), caches):
            steps = [blk(x[:, :7], allowed[:, :, :7, :7], (cache.k[0], cache.v[0], 0))]
            for t in range(7, 10):
                steps.append(blk(x[:, t : t + 1], allowed[:, :, t : t + 1, : t + 1], (cache.k[0], cache.v[0], t)))
            outs.append(torch.cat(steps, dim=1))
        assert torch.equal(outs[0], outs[1])
        assert torch.equal(caches[0].k[0][:, :, :10], caches[1].k[0][:, :, :10])
        assert torch.equal(caches[0].v[0][:, :, :10], caches[1].v[0][:, :, :10])
        torch.testing.assert_close(outs[1], ours(x, allowed), atol=1e-5, rtol=1e-5)  # cache = no cache


def test_tinygpt_built_with_shared_block_is_bit_identical(monkeypatch):
    """The tiny GPT on the shared block against the same model on its old block: the same seed gives the same
    weights, logits and cached decoding."""
    new_model = build_model(CFG, seed=5).eval()
    assert isinstance(new_model.blocks[0], Block)
    monkeypatch.setattr(tinygpt, "Block", _RefBlock)
    ref_model = build_model(CFG, seed=5).eval()
    assert isinstance(ref_model.blocks[0], _RefBlock)
    sd_ref, sd_new = ref_model.state_dict(), new_model.state_dict()
    assert list(sd_ref) == list(sd_new)
    assert all(torch.equal(sd_ref[k], sd_new[k]) for k in sd_ref)
    new_model.load_state_dict(sd_ref, strict=True)  # an old checkpoint loads strictly
    idx = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, :5] = 0
    pos = (mask.cumsum(1) - 1).clamp_min(0)
    with torch.no_grad():
        assert torch.equal(ref_model(idx), new_model(idx))
        a, ca = ref_model.step(idx[:, :9], mask[:, :9], pos[:, :9], None)
        b, cb = new_model.step(idx[:, :9], mask[:, :9], pos[:, :9], None)
        assert torch.equal(a, b)
        a, _ = ref_model.step(idx[:, 9:], mask, pos[:, 9:], ca)
        b, _ = new_model.step(idx[:, 9:], mask, pos[:, 9:], cb)
        assert torch.equal(a, b)


def _manual_attention(attn: CausalSelfAttention, x: torch.Tensor, causal: bool) -> torch.Tensor:
    b, t, c = x.shape
    h, d = attn.n_head, attn.head_dim
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = (z.reshape(b, t, h, d).transpose(1, 2) for z in qkv.split(c, dim=2))
    s = q @ k.transpose(-1, -2) / math.sqrt(d)
    if causal:
        s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
    y = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c)
    return y @ attn.proj.weight.T + attn.proj.bias


@pytest.mark.parametrize("causal", [True, False])
def test_attention_equals_hand_computation_and_pattern(causal):
    torch.manual_seed(0)
    blk = Block(BlockConfig(16, 2, causal=causal)).eval()
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        torch.testing.assert_close(blk.attn(x), _manual_attention(blk.attn, x, causal), atol=1e-5, rtol=1e-5)
        p = blk.attn.attention_pattern(x)  # (B, H, T, T)
    assert p.shape == (2, 2, 6, 6)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 2, 6))
    upper = torch.ones(6, 6, dtype=torch.bool).triu(1)
    assert bool((p[..., upper] == 0).all()) == causal
    # a future token changes the first token's output only without the causal mask
    x2 = x.clone()
    x2[:, -1] = torch.randn(2, 16)  # (a constant shift would be undone by the LayerNorm)
    with torch.no_grad():
        changed = not torch.allclose(blk(x)[:, 0], blk(x2)[:, 0])
    assert changed == (not causal)


def test_icl_variants_attention_only_and_no_layer_norm():
    torch.manual_seed(0)
    only = Block(BlockConfig(16, 2, mlp=False))
    assert set(only.state_dict()) == {
        "ln1.weight",
        "ln1.bias",
        "attn.qkv.weight",
        "attn.qkv.bias",
        "attn.proj.weight",
        "attn.proj.bias",
    }
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(only(x), x + only.attn(only.ln1(x)))
    bare = Block(BlockConfig(16, 2, mlp=False, layer_norm=False, bias=False))
    assert set(bare.state_dict()) == {"attn.qkv.weight", "attn.proj.weight"}
    with torch.no_grad():
        torch.testing.assert_close(bare(x), x + bare.attn(x))
    mlp_only = Block(BlockConfig(16, 2, attention=False, mlp_ratio=2))
    assert mlp_only.mlp[0].out_features == 32
    with torch.no_grad():
        torch.testing.assert_close(mlp_only(x), x + mlp_only.mlp(mlp_only.ln2(x)))
    # two-layer attention-only net, one layer attention + MLP readout: parameter counts by formula
    c = 16
    attn_params = 2 * c + (3 * c * c + 3 * c) + (c * c + c)
    two_layer = torch.nn.Sequential(Block(BlockConfig(c, 2, mlp=False)), Block(BlockConfig(c, 2, mlp=False)))
    assert sum(p.numel() for p in two_layer.parameters()) == 2 * attn_params
    full = Block(BlockConfig(c, 2))
    assert sum(p.numel() for p in full.parameters()) == attn_params + 2 * c + (4 * c * c + 4 * c) + (4 * c * c + c)


def test_cache_without_mask_is_bottom_right_causal():
    torch.manual_seed(0)
    blk = Block(BlockConfig(16, 2)).eval()
    x = torch.randn(2, 8, 16)
    k = torch.empty(2, 2, 8, 8)
    v = torch.empty(2, 2, 8, 8)
    with torch.no_grad():
        full = blk(x)
        first = blk(x[:, :5], None, (k, v, 0))
        rest = blk(x[:, 5:], None, (k, v, 5))
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=1e-5, rtol=1e-5)


def test_config_errors():
    with pytest.raises(ConfigError, match="divisible"):
        BlockConfig(10, 3)
    with pytest.raises(ConfigError, match="empty block"):
        BlockConfig(8, 2, attention=False, mlp=False)
    with pytest.raises(ConfigError, match="n_embd and n_head"):
        Block(object())


def test_gelu_mlp_matches_functional():
    torch.manual_seed(0)
    blk = Block(BlockConfig(8, 2))
    x = torch.randn(3, 8)
    w1, b1, w2, b2 = blk.mlp[0].weight, blk.mlp[0].bias, blk.mlp[2].weight, blk.mlp[2].bias
    with torch.no_grad():
        torch.testing.assert_close(blk.mlp(x), F.gelu(x @ w1.T + b1) @ w2.T + b2)
