"""`StackedMLP`: k independent MLPs in one module, evaluated in one forward pass.

XRM's twins (k = 2) and k-fold cross-fitting (k models) train several copies of one network on different subsets.
Stacking their weights on a leading axis turns k small matrix products per layer into one batched product
(`torch.baddbmm`), and k optimizers into one: on CPU, where small models are bound by per-operation overhead, this
is where the speed-up over separate models comes from (bench/spurious_twins.py), together with `heldin`: when each
member's loss uses only its own rows (XRM's twins), its first-layer weight gradient skips the other rows. Member i
is initialised exactly like `rote.nets.MLP(in_features, hidden, num_classes, seed=seed + i)` and `member(i)`
returns it as such an MLP, so a stacked model trained on member-wise masked losses equals k separately trained
MLPs (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rote.core.errors import ConfigError
from rote.nets import MLP

__all__ = ["StackedMLP"]

_ACT = {"relu": torch.relu, "tanh": torch.tanh}


class _HeldInLinear(torch.autograd.Function):
    """The stacked first layer x (B, in) -> (B, k out) as one product, whose backward pass forms member i's weight
    gradient from its own rows only (`StackedMLP.forward`'s `heldin`): g_i^T x_i with g_i (n_i, out) instead of
    g^T x over all B rows, most of which are zero for member i. The bias gradient is the plain column sum."""

    @staticmethod
    def forward(ctx, x, w, b, sizes):  # x (B, in), w (k, out, in), b (k, 1, out) or None
        ctx.save_for_backward(x, w)
        ctx.sizes = sizes
        return F.linear(x, w.reshape(-1, w.shape[2]), None if b is None else b.reshape(-1))

    @staticmethod
    def backward(ctx, g):  # g (B, k out)
        x, w = ctx.saved_tensors
        k, out, _ = w.shape
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = g @ w.reshape(k * out, -1)
        if ctx.needs_input_grad[1]:
            gw = torch.empty_like(w)
            start = 0
            for i, n in enumerate(ctx.sizes):
                torch.mm(g[start : start + n, i * out : (i + 1) * out].t(), x[start : start + n], out=gw[i])
                start += n
        if ctx.needs_input_grad[2]:
            gb = g.sum(0).view(k, 1, out)
        return gx, gw, gb, None


class StackedMLP(nn.Module):
    """k MLPs x (B, *) -> (k, B, num_classes), flattening x from dim 1.

    hidden: hidden widths (() = linear model). bias: False gives bias-free layers (the paper's linear toy).
    activation: "relu" or "tanh". seed: member i gets `rote.nets.MLP`'s initial weights for seed + i.
    Parameters: weight_j (k, out_j, in_j) (nn.Linear's layout per member) and bias_j (k, 1, out_j) per layer j.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (256, 256),
        num_classes: int = 2,
        *,
        k: int = 1,
        bias: bool = True,
        activation: str = "relu",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if activation not in _ACT:
            raise ConfigError(f"`activation` must be one of {', '.join(_ACT)}, got {activation!r}")
        if int(k) < 1:
            raise ConfigError(f"`k` must be >= 1, got {k}")
        self.k, self.in_features, self.hidden = int(k), int(in_features), tuple(int(h) for h in hidden)
        self.num_classes, self.use_bias, self.activation = int(num_classes), bool(bias), activation
        self.seed = int(seed)
        nets = [MLP(in_features, self.hidden, num_classes, activation=activation, seed=seed + i) for i in range(k)]
        names = [f"fc{j}.0" for j in range(1, len(self.hidden) + 1)] + ["head"]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for name in names:
            layers = [n.get_submodule(name) for n in nets]
            self.weights.append(nn.Parameter(torch.stack([m.weight.detach().clone() for m in layers])))
            if self.use_bias:
                self.biases.append(nn.Parameter(torch.stack([m.bias.detach().unsqueeze(0) for m in layers])))
        self._names = names

    def forward(self, x: torch.Tensor, heldin: Sequence[int] | None = None) -> torch.Tensor:
        """x: (B, *) shared by all members -> logits (k, B, num_classes).

        heldin: k row counts when the rows of x are grouped by the member whose loss uses them (the first
        heldin[0] rows member 0's, and so on; XRM's twins) and the loss of member i has no gradient through any
        other row. The first layer's weight gradient of member i is then computed from its own rows only, half
        the largest product of the backward pass for twins; the forward pass and every gradient are unchanged
        (only rows whose gradient is exactly zero are skipped). None: the plain backward pass.
        """
        x = x.reshape(x.shape[0], -1)  # (B, in)
        act = _ACT[self.activation]
        last = len(self.weights) - 1
        w0 = self.weights[0]  # (k, out, in): the shared input makes the first layer one matrix product
        b0 = self.biases[0] if self.use_bias else None
        if heldin is not None:
            if len(heldin) != self.k or sum(heldin) != x.shape[0]:
                raise ConfigError(f"`heldin` must give {self.k} row counts summing to {x.shape[0]}, got {heldin}")
            h = _HeldInLinear.apply(x, w0, b0, tuple(int(n) for n in heldin))
        else:
            h = F.linear(x, w0.reshape(-1, w0.shape[2]), None if b0 is None else b0.reshape(-1))
        h = h.view(x.shape[0], self.k, -1).transpose(0, 1)  # (k, B, out)
        for j in range(1, last + 1):
            h = act(h)
            w = self.weights[j].transpose(1, 2)  # (k, in_j, out_j)
            h = torch.baddbmm(self.biases[j], h, w) if self.use_bias else torch.bmm(h, w)  # (k, B, out_j)
        return h

    def member(self, i: int) -> MLP:
        """Member i as a `rote.nets.MLP` with the current weights (biases 0 when bias=False)."""
        net = MLP(self.in_features, self.hidden, self.num_classes, activation=self.activation, seed=self.seed + i)
        with torch.no_grad():
            for j, name in enumerate(self._names):
                layer = net.get_submodule(name)
                layer.weight.copy_(self.weights[j][i])
                if self.use_bias:
                    layer.bias.copy_(self.biases[j][i, 0])
                else:
                    layer.bias.zero_()
        return net.to(self.weights[0].device)

    def weight_vector(self) -> torch.Tensor:
        """For a linear 2-class model (hidden=()): (k, in_features) w = W[:, 1] - W[:, 0], the direction that
        decides the prediction (the paper's weight on core versus spurious feature)."""
        if self.hidden or self.num_classes != 2:
            raise ConfigError("weight_vector is defined for a linear two-class model (hidden=(), num_classes=2)")
        w = self.weights[0].detach()  # (k, 2, in)
        return w[:, 1, :] - w[:, 0, :]
