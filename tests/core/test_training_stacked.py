"""`stacked_optimizer`: M models stacked on a leading axis, updated by one optimizer, against M separate torch
optimizers (the per-tensor loop, torch's reference implementation) updating each model on its own."""

from __future__ import annotations

import pytest
import torch

from rote.core.errors import ConfigError
from rote.core.training import stacked_optimizer


def _grads(m: int, steps: int) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(3)
    return [[torch.randn(m, 5, 4, generator=g), torch.randn(m, 1, 4, generator=g)] for _ in range(steps)]


@pytest.mark.parametrize(
    "name, kw, fused, exact",
    [
        ("sgd", {"lr": 0.1}, False, True),
        ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-2}, False, True),
        ("adam", {"lr": 1e-2}, False, True),
        ("sgd", {"lr": 0.1}, True, True),
        ("sgd", {"lr": 0.05, "weight_decay": 3e-3}, True, True),
        ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-2}, True, False),
        ("adam", {"lr": 1e-2, "weight_decay": 1e-3}, True, False),
    ],
)
def test_stacked_update_equals_separate_optimizers(name, kw, fused, exact):
    """Slice i of the stacked update equals M separate per-tensor optimizers on model i: bit for bit with the
    foreach kernels, and with fused plain SGD (weight decay included, as rote.icl trains); fused SGD with momentum
    and fused Adam to float rounding (the fused kernel rounds the moment update once)."""
    m, steps = 3, 6
    init = [torch.randn(m, 5, 4, generator=torch.Generator().manual_seed(1)), torch.zeros(m, 1, 4)]
    stacked = [torch.nn.Parameter(t.clone()) for t in init]
    opt = stacked_optimizer(stacked, name, fused=fused, **kw)
    assert bool(opt.defaults["fused"]) == fused and bool(opt.defaults["foreach"]) != fused
    separate = [[torch.nn.Parameter(t[i].clone()) for t in init] for i in range(m)]
    cls = torch.optim.SGD if name == "sgd" else torch.optim.Adam
    opts = [cls(ps, foreach=False, **kw) for ps in separate]
    for grads in _grads(m, steps):
        for p, g in zip(stacked, grads):
            p.grad = g.clone()
        opt.step()
        for i, (ps, o) in enumerate(zip(separate, opts)):
            for p, g in zip(ps, grads):
                p.grad = g[i].clone()
            o.step()
    for i in range(m):
        for p, q in zip(stacked, separate[i]):
            if exact:
                assert torch.equal(p.detach()[i], q.detach())
            else:
                torch.testing.assert_close(p.detach()[i], q.detach(), rtol=1e-6, atol=1e-7)
    assert not torch.equal(stacked[0].detach(), init[0])  # it did move


def test_parameter_groups_keep_their_own_weight_decay():
    a, b = torch.nn.Parameter(torch.ones(2, 3)), torch.nn.Parameter(torch.ones(2, 3))
    opt = stacked_optimizer([{"params": [a], "weight_decay": 0.5}, {"params": [b]}], "sgd", lr=0.1)
    a.grad, b.grad = torch.zeros(2, 3), torch.zeros(2, 3)
    opt.step()
    assert torch.allclose(a.detach(), torch.full((2, 3), 1 - 0.1 * 0.5))  # decayed: w - lr * wd * w
    assert torch.equal(b.detach(), torch.ones(2, 3))  # default weight_decay 0


@pytest.mark.parametrize(
    "name, kw, match",
    [
        ("rmsprop", {"lr": 0.1}, "`optimizer`"),
        ("sgd", {"lr": 0.0}, "`lr`"),
        ("sgd", {"lr": float("nan")}, "`lr`"),
        ("sgd", {"lr": 0.1, "weight_decay": -1.0}, "`weight_decay`"),
        ("adam", {"lr": 0.1, "momentum": 0.9}, "`momentum`"),
    ],
)
def test_bad_options_name_the_argument(name, kw, match):
    with pytest.raises(ConfigError, match=match):
        stacked_optimizer([torch.nn.Parameter(torch.ones(2))], name, **kw)
