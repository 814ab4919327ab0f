"""The ICL models restated one model at a time with plain torch ops: the authors' forward pass and a textbook
training loop.

`reference_forward` projects every token to q, k and v and runs causal attention at every position, as the
authors' `attention.py` / `transformer_v2.py` do, where `rote.icl.models.ICLNet` holds M models as batched
tensors and rearranges the one-layer model so that only the query's row is computed. `train_reference` trains
one model the plain way: `task.sample` batches, that forward pass, `torch.optim.SGD` with the two weight-decay
groups. Two uses: the parity checks of the batched forms (tests/icl/test_models.py), and the baseline of the
speed benchmark (bench/icl_vectorized.py), where training M models one after another this way is what a user
without rote would run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError
from rote.icl.models import ICLNet
from rote.icl.task import Batch, BinaryTask

__all__ = ["reference_forward", "train_reference"]


def _mlp(h: torch.Tensor, p: dict[str, torch.Tensor], name: str, relu_last: bool = False) -> torch.Tensor:
    h = F.relu(h @ p[f"{name}0_w"] + p[f"{name}0_b"])
    h = F.relu(h @ p[f"{name}1_w"] + p[f"{name}1_b"])
    h = h @ p[f"{name}2_w"] + p[f"{name}2_b"]
    return F.relu(h) if relu_last else h


def _causal_attention(
    x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor, scale: float
) -> torch.Tensor:
    """Single-head causal attention at every position: x (B, T, C), W (C, C) -> (B, T, C)."""
    q, k, v = x @ wq, x @ wk, x @ wv
    t = x.shape[1]
    s = (q @ k.transpose(1, 2)) * scale
    s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool, device=x.device).tril(), float("-inf"))
    return s.softmax(-1) @ v


def reference_forward(kind: str, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """One model's logits. params: its parameters without the model axis (`ICLNet.model_state(m)`); x (B, T, C)
    tokens -> (B,) binary logits ("one_layer", "two_layer") or (B, L) label logits ("reddy")."""
    p, c = params, x.shape[-1]
    if kind == "reddy":
        s = c**-0.5
        x = x + _causal_attention(x, p["q1_w"], p["k1_w"], p["v1_w"], s)
        x = x + _causal_attention(x, p["q2_w"], p["k2_w"], p["v2_w"], s)
        h = _mlp(x[:, -1], p, "out", relu_last=True)
        return h @ p["read_w"] + p["read_b"]
    if kind not in ("one_layer", "two_layer"):
        raise ConfigError(f"`model` must be one of one_layer, two_layer, reddy, got {kind!r}")
    x = F.layer_norm(x, (c,), p["ln_w"], p["ln_b"])
    w = p["qkv1_w"]
    if kind == "two_layer":
        x = x + _causal_attention(x, w[:, :c], w[:, c : 2 * c], w[:, 2 * c :], 1.0)
        x = x + _mlp(x, p, "mid")
        w = p["qkv2_w"]
    x = x + _causal_attention(x, w[:, :c], w[:, c : 2 * c], w[:, 2 * c :], 1.0)  # residual, as the authors'
    return _mlp(x[:, -1], p, "out").squeeze(-1)


def _evaluate(params: dict[str, torch.Tensor], sets: dict[str, Batch]) -> dict[str, tuple[float, float]]:
    """set -> (accuracy, mean loss) of the one-layer binary model."""
    out = {}
    with torch.no_grad():
        for name, b in sets.items():
            yz = b.y * reference_forward("one_layer", params, b.x)
            out[name] = (float((yz > 0).float().mean()), float(F.softplus(-yz).mean()))
    return out


def train_reference(
    task: BinaryTask,
    seed: int,
    *,
    steps: int,
    batch: int = 128,
    lr: float = 0.01,
    hidden: int = 512,
    wd_attention: float = 1e-10,
    wd_mlp: float = 1e-10,
    eval_sets: dict[str, Batch] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[int, dict[str, tuple[float, float]]]]:
    """Train the one-layer model of seed `seed` alone, the textbook way, with the same initial weights and the same
    batch stream as `rote.icl.train_icl(task, [seed], ...)`.

    Returns (the trained parameters, {step: {set: (accuracy, loss)}} on `eval_sets` at step 0 and at `steps`).
    """
    if not isinstance(task, BinaryTask):
        raise ConfigError("`train_reference` restates the binary task's one-layer model; give a BinaryTask")
    init = ICLNet("one_layer", [seed], task.dim, hidden=hidden).model_state(0)  # train_icl's initial weights
    p = {n: t.clone().requires_grad_() for n, t in init.items()}
    attention = [p[n] for n in ("ln_w", "ln_b", "qkv1_w")]
    mlp = [t for n, t in p.items() if n.startswith("out")]
    opt = torch.optim.SGD(
        [{"params": attention, "weight_decay": wd_attention}, {"params": mlp, "weight_decay": wd_mlp}], lr=lr
    )
    g = torch.Generator().manual_seed(1_000_003 * seed + 17)  # train_icl's batch stream for this seed
    evals = {0: _evaluate(p, eval_sets)} if eval_sets else {}
    for _ in range(steps):
        b = task.sample(batch, g)
        loss = F.softplus(-b.y * reference_forward("one_layer", p, b.x)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if eval_sets:
        evals[steps] = _evaluate(p, eval_sets)
    return {n: t.detach() for n, t in p.items()}, evals
