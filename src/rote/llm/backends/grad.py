"""The gradient-enabled path through a local backend: what fine-tuning a model behind the `Backend` interface needs.

`Backend.score` and `Backend.generate` run under `torch.inference_mode()`: no graph, no gradients. Training a model
that sits behind a backend (MemHunter's prompt generator, `rote.llm.memhunter`) needs the same padded forward pass
with autograd on. This module gives it for every `TorchLMBackend` (the tiny GPT and local Hugging Face models):

- `torch_module(backend)`: the `torch.nn.Module` whose parameters an optimizer updates;
- `sequence_nll(backend, contexts, targets)`: the differentiable negative log-likelihood, in nats, of each target
  continuation given its context, (B,) with a graph back to the module's parameters.

HTTP backends (`openai:`) hold no weights: both raise a `BackendError` saying so.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rote.core.errors import BackendError
from rote.llm.backends.base import Backend, check_ids
from rote.llm.backends.torch_lm import TorchLMBackend


def _local(backend: Backend, what: str) -> TorchLMBackend:
    if not isinstance(backend, TorchLMBackend) or not isinstance(getattr(backend, "model", None), torch.nn.Module):
        raise BackendError(
            f"{what}: model {getattr(backend, 'name', type(backend).__name__)} is not a local torch model (an HTTP "
            "endpoint has no weights to train); use a local model: 'tiny:FOLDER', 'smollm2' or a Hugging Face folder"
        )
    return backend


def torch_module(backend: Backend) -> torch.nn.Module:
    """The torch module behind a local backend (the tiny GPT or the Hugging Face model), for an optimizer."""
    return _local(backend, "torch_module").model


def sequence_nll(
    backend: Backend,
    contexts: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    *,
    per_token: bool = False,
) -> torch.Tensor:
    """Negative log-likelihood of each `targets[i]` right after `contexts[i]`, with gradients.

    contexts: B token-id sequences, each at least one token (the first token of a sequence has no prediction).
    targets: B token-id sequences, each at least one token.
    per_token: divide each sum by the target's length (nats per token) instead of the sum (nats).
    Returns (B,) float32 on the backend's device, differentiable w.r.t. `torch_module(backend)`'s parameters.
    The same padded forward pass as `TorchLMBackend.score` (right padding, real-token positions), without
    inference mode, so `sequence_nll(...).detach()` equals the summed `score` log-probabilities (tested).
    """
    lm = _local(backend, "sequence_nll")
    check_ids(list(contexts), "context", vocab_size=lm.vocab_size)
    check_ids(list(targets), "target", vocab_size=lm.vocab_size)
    if len(contexts) != len(targets):
        raise BackendError(f"sequence_nll: {len(contexts)} contexts but {len(targets)} targets; pass one per context")
    seqs = [[int(t) for t in c] + [int(t) for t in y] for c, y in zip(contexts, targets)]
    if not seqs:
        return torch.zeros(0, device=lm.device)
    lm._check_length(max(len(s) for s in seqs), "context + target")
    b, t = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((b, t), lm.pad_token_id, dtype=torch.long)
    mask = torch.zeros((b, t), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    pos = torch.arange(t).unsqueeze(0).expand(b, t)
    ids, mask, pos = ids.to(lm.device), mask.to(lm.device), pos.to(lm.device)
    with torch.enable_grad():
        logits, _ = lm._forward(ids, mask, pos, None, False)  # (B, T, V)
        logp = torch.log_softmax(logits.float(), dim=-1)
        # position p predicts token p + 1; a target occupies columns len(c) .. len(c) + len(y) - 1
        pred = torch.zeros((b, t), dtype=torch.bool, device=lm.device)
        for r, (c, y) in enumerate(zip(contexts, targets)):
            pred[r, len(c) - 1 : len(c) + len(y) - 1] = True
        nxt = torch.cat([ids[:, 1:], ids[:, :1]], dim=1)  # (B, T): the token each position predicts
        tok_lp = logp.gather(2, nxt.unsqueeze(2)).squeeze(2)  # (B, T)
        nll = -(tok_lp * pred).sum(dim=1)  # (B,)
        if per_token:
            nll = nll / torch.tensor([len(y) for y in targets], dtype=nll.dtype, device=nll.device)
    return nll
