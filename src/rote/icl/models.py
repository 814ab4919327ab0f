"""The ICL networks, M independent models held as batched parameter tensors (one leading model axis).

Every parameter has shape (M, ...): model m is slice m, initialized from its own seed, so the same seed gives the
same model whatever else trains beside it, and one forward/backward pass trains all M (a loss that sums the M
per-model mean losses gives each slice exactly its own gradient). Linear layers are `x @ W + b` with W (M, in, out),
initialized like `torch.nn.Linear` (U(-1/sqrt(in), 1/sqrt(in)) for weights and biases).

Architectures (docs/icl.md; the authors' attention.py / transformer_v2.py restated):

- "one_layer" (Nguyen and Reddy 2025, `CausalTransformer`): LayerNorm over the token (no positional code, no
  embedding), one single-head causal attention layer with a bias-free fused qkv projection (C -> 3C) and
  softmax scale 1.0 (no 1/sqrt(d)), no output projection; the readout takes the query position h = x_q + attn_q
  through a 3-layer ReLU MLP C -> H -> H -> 1 (H = 512 in the paper) to a scalar logit.
- "two_layer" (their `MultilayerCausalTransformer`, Fig. A5): the same LayerNorm, attention layer 1 at every
  position, a residual 3-layer ReLU MLP C -> H -> H -> C at every position, attention layer 2 at the query, and
  the same readout MLP.
- "reddy" (Reddy 2024): two single-head causal attention layers with separate q, k, v (C -> C, no bias, init
  N(0, 1/D)), residual, no LayerNorm, softmax scale 1/sqrt(C); then 3 ReLU layers of width C and a linear readout
  to L logits at the query position.

Parameter groups: `attention` (LayerNorm and attention weights: the ICL path) and `mlp` (every MLP: the IWL path),
so the two get separate weight decay (`param_groups`). The shared `rote.nets.transformer.Block` is not used: its
attention has an output projection and a 1/sqrt(d) scale and its MLP a GELU, none of which these models have.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from rote.core.errors import ConfigError

__all__ = ["ICLNet", "MLPNet", "MODEL_KINDS"]

MODEL_KINDS = ("one_layer", "two_layer", "reddy")


def _uniform(shape: tuple[int, ...], bound: float, g: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=g) * 2 - 1) * bound


class _Batched(nn.Module):
    """Holds named (M, ...) parameters built per model from that model's seed, and their group."""

    def __init__(self, seeds: Sequence[int]):
        super().__init__()
        if not len(seeds):
            raise ConfigError("`seeds` must list at least one seed")
        self.seeds = [int(s) for s in seeds]
        self.group: dict[str, str] = {}

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    def _build(self, spec: list[tuple[str, tuple[int, ...], str, str, float]]) -> None:
        """spec: (name, shape, init, group, scale) in creation order; init 'uniform' (bound = scale), 'normal'
        (std = scale), 'ones', 'zeros'. Each model draws its tensors in this order from its own generator."""
        per_model: dict[str, list[torch.Tensor]] = {name: [] for name, *_ in spec}
        for seed in self.seeds:
            g = torch.Generator().manual_seed(seed)
            for name, shape, init, _, scale in spec:
                if init == "uniform":
                    t = _uniform(shape, scale, g)
                elif init == "normal":
                    t = torch.randn(shape, generator=g) * scale
                elif init == "ones":
                    t = torch.ones(shape)
                else:
                    t = torch.zeros(shape)
                per_model[name].append(t)
        for name, _, _, group, _ in spec:
            self.register_parameter(name, nn.Parameter(torch.stack(per_model[name])))
            self.group[name] = group

    @staticmethod
    def _linear_spec(prefix: str, fan_in: int, fan_out: int, group: str, bias: bool = True) -> list:
        bound = 1 / math.sqrt(fan_in)
        out = [(f"{prefix}_w", (fan_in, fan_out), "uniform", group, bound)]
        if bias:
            out.append((f"{prefix}_b", (fan_out,), "uniform", group, bound))
        return out

    def param_groups(self, wd_attention: float, wd_mlp: float) -> list[dict]:
        """Two optimizer groups: the attention path with `wd_attention`, the MLPs with `wd_mlp`."""
        groups = []
        for group, wd in (("attention", wd_attention), ("mlp", wd_mlp)):
            params = [p for n, p in self.named_parameters() if self.group[n] == group]
            if params:
                groups.append({"params": params, "weight_decay": wd, "name": group})
        return groups

    def model_state(self, m: int) -> dict[str, torch.Tensor]:
        """Model m's parameters, (...) each (a copy)."""
        return {n: p.detach()[m].clone() for n, p in self.named_parameters()}


def _lin(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """x (M, ..., in) @ W (M, in, out) + b (M, out) -> (M, ..., out)."""
    shape = x.shape
    y = torch.bmm(x.reshape(shape[0], -1, shape[-1]), w).reshape(*shape[:-1], w.shape[-1])
    if b is not None:
        y = y + b.view(b.shape[0], *([1] * (len(shape) - 2)), b.shape[-1])
    return y


def _expand(x: torch.Tensor, m: int) -> torch.Tensor:
    """(B, T, C) shared inputs -> (M, B, T, C); (M, B, T, C) unchanged."""
    return x.unsqueeze(0).expand(m, *x.shape) if x.dim() == 3 else x


class MLPNet(_Batched):
    """M ReLU MLPs in -> H -> H -> out (the stand-alone memorization MLP of Nguyen and Reddy: 63 -> 512 -> 512 -> 1).
    forward: (M, B, in) -> (M, B, out), or (B, in) shared inputs."""

    def __init__(self, seeds: Sequence[int], d_in: int, hidden: int = 512, d_out: int = 1, prefix: str = "mlp"):
        super().__init__(seeds)
        self.prefix = prefix
        self._build(
            self._linear_spec(f"{prefix}0", d_in, hidden, "mlp")
            + self._linear_spec(f"{prefix}1", hidden, hidden, "mlp")
            + self._linear_spec(f"{prefix}2", hidden, d_out, "mlp")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_models, *x.shape)
        return _mlp3(self, self.prefix, x, relu_last=False)


def _mlp3(net: nn.Module, p: str, h: torch.Tensor, relu_last: bool) -> torch.Tensor:
    h = F.relu(_lin(h, getattr(net, f"{p}0_w"), getattr(net, f"{p}0_b")))
    h = F.relu(_lin(h, getattr(net, f"{p}1_w"), getattr(net, f"{p}1_b")))
    h = _lin(h, getattr(net, f"{p}2_w"), getattr(net, f"{p}2_b"))
    return F.relu(h) if relu_last else h


class ICLNet(_Batched):
    """M ICL transformers of one kind ("one_layer", "two_layer", "reddy").

    dim: token width C (65 for the binary task, 2 n_max + 1 + D for Reddy's); hidden: MLP width H (paper 512; Reddy's
    readout uses C); n_out: 1 (binary logit) or L (label logits); content_dim: D, for the Reddy init scale.
    forward(x): x (M, B, T, C) or shared (B, T, C) -> (M, B) logits (n_out = 1) or (M, B, L).
    """

    def __init__(
        self,
        kind: str,
        seeds: Sequence[int],
        dim: int,
        hidden: int = 512,
        n_out: int = 1,
        content_dim: int | None = None,
    ):
        super().__init__(seeds)
        if kind not in MODEL_KINDS:
            raise ConfigError(f"`model` must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")
        if hidden < 1:
            raise ConfigError(f"`hidden` must be >= 1, got {hidden}")
        self.kind, self.dim, self.hidden, self.n_out = kind, dim, hidden, n_out
        c, spec = dim, []
        if kind in ("one_layer", "two_layer"):
            spec += [("ln_w", (c,), "ones", "attention", 0), ("ln_b", (c,), "zeros", "attention", 0)]
            spec += self._linear_spec("qkv1", c, 3 * c, "attention", bias=False)
            if kind == "two_layer":
                spec += self._linear_spec("mid0", c, hidden, "mlp")
                spec += self._linear_spec("mid1", hidden, hidden, "mlp")
                spec += self._linear_spec("mid2", hidden, c, "mlp")
                spec += self._linear_spec("qkv2", c, 3 * c, "attention", bias=False)
            spec += self._linear_spec("out0", c, hidden, "mlp")
            spec += self._linear_spec("out1", hidden, hidden, "mlp")
            spec += self._linear_spec("out2", hidden, n_out, "mlp")
        else:
            std = 1 / math.sqrt(content_dim or c)
            for layer in (1, 2):
                spec += [(f"{w}{layer}_w", (c, c), "normal", "attention", std) for w in ("q", "k", "v")]
            spec += self._linear_spec("out0", c, c, "mlp")
            spec += self._linear_spec("out1", c, c, "mlp")
            spec += self._linear_spec("out2", c, c, "mlp")
            spec += self._linear_spec("read", c, n_out, "mlp")
        self._build(spec)

    # -------------------------------------------------------------------------------------------- attention

    @staticmethod
    def _attend_query(
        x: torch.Tensor, xq: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor, scale: float
    ) -> torch.Tensor:
        """Attention of the last position over every token (causal: it sees all), x (M, B, T, C), xq (M, B, C), W
        (M, C, C) -> (M, B, C). Computed as scores_t = ((xq Wq) Wk^T) . x_t and out = (sum_t p_t x_t) Wv, the same
        numbers as projecting every token to k and v, at O(T C) instead of O(T C^2) per sequence."""
        qk = torch.bmm(torch.bmm(xq, wq), wk.transpose(1, 2))  # (M, B, C)
        scores = torch.einsum("mbc,mbtc->mbt", qk, x) * scale
        xbar = torch.einsum("mbt,mbtc->mbc", scores.softmax(dim=-1), x)
        return torch.bmm(xbar, wv)

    @staticmethod
    def _attend_all(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        """Causal attention at every position: q, k, v (M, B, T, C) -> (M, B, T, C)."""
        m, b, t, c = q.shape
        y = F.scaled_dot_product_attention(
            q.reshape(m * b, 1, t, c), k.reshape(m * b, 1, t, c), v.reshape(m * b, 1, t, c), is_causal=True, scale=scale
        )
        return y.reshape(m, b, t, c)

    def _forward_one_layer(self, xh: torch.Tensor) -> torch.Tensor:
        """The one-layer model on normalized tokens xh (M, B, T, C) or shared (B, T, C) -> (M, B) or (M, B, L).

        The same numbers as LayerNorm(x) w + b followed by `_attend_query`, rearranged so that no (M, B, T, C)
        tensor takes part in autograd: with x_t = xh_t * w + b, the score qk . x_t = (qk * w) . xh_t + qk . b,
        and the last term is the same for every t, which softmax ignores; sum_t p_t x_t = (sum_t p_t xh_t) * w + b
        because the p_t sum to 1. The backward pass then touches the tokens only to form the gradients of the
        (M, B, C) vectors, which is most of the saving over the plain form on a CPU (bench/icl_vectorized.py)."""
        c = xh.shape[-1]
        w_ln, b_ln = self.ln_w.unsqueeze(1), self.ln_b.unsqueeze(1)  # (M, 1, C)
        w = self.qkv1_w
        xq = xh[..., -1, :] * w_ln + b_ln  # (M, B, C): the query token after the LayerNorm's affine part
        qk = torch.bmm(torch.bmm(xq, w[:, :, :c]), w[:, :, c : 2 * c].transpose(1, 2))  # (M, B, C)
        tok = "mbtc" if xh.dim() == 4 else "btc"
        scores = torch.einsum(f"mbc,{tok}->mbt", qk * w_ln, xh)  # scale 1.0, as the authors
        xbar = torch.einsum(f"mbt,{tok}->mbc", scores.softmax(dim=-1), xh) * w_ln + b_ln  # (M, B, C)
        h = xq + torch.bmm(xbar, w[:, :, 2 * c :])
        z = _mlp3(self, "out", h, relu_last=False)
        return z.squeeze(-1) if self.n_out == 1 else z

    def _ln(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x, (x.shape[-1],))
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return x * self.ln_w.view(shape) + self.ln_b.view(shape)

    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        """LayerNorm of every token without the affine part, (..., C) -> (..., C): the only work the one-layer
        model does on all T tokens, and it holds no parameter, so it can be done once per batch (or per class)."""
        return F.layer_norm(x, (x.shape[-1],))

    def forward(self, x: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        """x (M, B, T, C) or shared (B, T, C) tokens; normalized=True: x is already `normalize(tokens)` (one_layer
        only; the training loop gathers such tokens from a per-class table)."""
        if self.kind == "one_layer":
            return self._forward_one_layer(x if normalized else self.normalize(x))
        if normalized:
            raise ConfigError(f"`normalized` inputs are only accepted by the one_layer model, not {self.kind!r}")
        x = _expand(x, self.n_models)  # (M, B, T, C)
        c = x.shape[-1]
        if self.kind == "reddy":
            s = 1 / math.sqrt(c)
            q, k, v = (torch.einsum("mbtc,mcd->mbtd", x, getattr(self, f"{w}1_w")) for w in "qkv")
            x = x + self._attend_all(q, k, v, s)
            h = x[:, :, -1] + self._attend_query(x, x[:, :, -1], self.q2_w, self.k2_w, self.v2_w, s)
            h = _mlp3(self, "out", h, relu_last=True)
            return _lin(h, self.read_w, self.read_b)
        x = self._ln(x)  # two_layer: attention and an MLP at every position, then the query's attention
        q, k, v = _lin(x, self.qkv1_w, None).split(c, dim=-1)
        x = x + self._attend_all(q, k, v, 1.0)
        x = x + _mlp3(self, "mid", x, relu_last=False)
        w = self.qkv2_w
        xq = x[:, :, -1]  # (M, B, C): only the query's row is read out
        h = xq + self._attend_query(x, xq, w[:, :, :c], w[:, :, c : 2 * c], w[:, :, 2 * c :], 1.0)
        z = _mlp3(self, "out", h, relu_last=False)
        return z.squeeze(-1) if self.n_out == 1 else z
