"""The MAT logit shift and the losses of every method (Bayat et al., "The Pitfalls of Memorization", ICLR 2025).

MAT (memorization-aware training) trains with CE(f(x_i) + s_i, y_i), where s_i is a fixed shift computed from
held-out predictions h_i (Algorithm 1; `algos.py::MAT.get_shift` in facebookresearch/Pitfalls-of-Memorization):

1. p(k | x_i) = softmax(h_i / temperature)                                   (N, K)
2. P(y=c, yhat=k) = (1/N) sum_{i: y_i = c} p(k | x_i)                         (K, K) joint
3. P(y | yhat=k) = P(y, yhat=k) / sum_y P(y, yhat=k)                          column-normalised
4. p_ho(y | x_i) = sum_k p(k | x_i) P(y | yhat=k)                             calibrated held-out posterior
5. s_i = log(p_ho(. | x_i) + 1e-6)                                            detached

Inference uses f(x) without the shift. Where rote deviates from the paper's code: the code builds the joint per
mini-batch with columns ordered by the labels present in the batch (it assumes every class appears in every
batch); rote computes it once over the whole training set, as Algorithm 1 and the toy script do, indexes classes
0..K-1 explicitly, and gives a class that no held-out prediction points to (a zero column, possible when the
softmax underflows at small temperature) the class prior P(y) instead of 0/0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError, DataError

__all__ = [
    "EPS",
    "mat_shift",
    "mat_loss",
    "class_balanced_loss",
    "flip_probability",
    "group_balanced_weights",
    "GroupDRO",
]

EPS = 1e-6  # the paper code's floor inside the log


def _check_temperature(temperature: float) -> None:
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ConfigError(f"`temperature` must be > 0 and finite, got {temperature}")


def mat_shift(
    heldout_logits: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1, n_classes: int | None = None
) -> torch.Tensor:
    """The MAT logit shift of every training sample, computed once over the whole set, vectorized.

    heldout_logits: (N, K) logits of a model that did not train on sample i (XRM twins or k-fold).
    labels: (N,) int64 true classes. temperature: > 0 (the paper searches {0.001, 0.01, 0.1}).
    Returns (N, K) float32 shifts log(p_ho(y | x_i) + 1e-6), no gradient.
    """
    _check_temperature(temperature)
    h = heldout_logits.detach()
    if h.ndim != 2 or labels.shape != (h.shape[0],):
        raise DataError(
            f"`heldout_logits` must be (N, K) and `labels` (N,), got {tuple(h.shape)} and {tuple(labels.shape)}"
        )
    k = int(n_classes) if n_classes is not None else h.shape[1]
    if h.shape[1] != k:
        raise DataError(f"`heldout_logits` has {h.shape[1]} columns for {k} classes")
    n = h.shape[0]
    if n == 0:
        raise DataError("`heldout_logits` is empty; MAT needs the held-out predictions of the training set")
    y = labels.to(h.device).long()
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise DataError(f"`labels` must lie in [0, {k}), got {int(y.min())}..{int(y.max())}")
    p = torch.softmax(h.double() / temperature, dim=1)  # (N, K) p(yhat = k | x_i)
    joint = torch.zeros(k, k, dtype=torch.float64, device=h.device).index_add_(0, y, p) / n  # (K, K) P(y, yhat)
    col = joint.sum(0, keepdim=True)  # (1, K) P(yhat = k)
    prior = torch.bincount(y, minlength=k).double().div(n).unsqueeze(1).expand(k, k)  # (K, K) P(y) per column
    cond = torch.where(col > 0, joint / col.clamp_min(1e-300), prior)  # (K, K) P(y | yhat = k)
    p_ho = p @ cond.T  # (N, K) sum_k p(k | x_i) P(y | k)
    return torch.log(p_ho + EPS).float()


def mat_loss(logits: torch.Tensor, shift: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """CE(logits + shift, labels): the MAT training loss (the shift carries no gradient)."""
    return F.cross_entropy(logits + shift.detach(), labels, reduction=reduction)


def class_balanced_loss(logits: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """XRM's class-balanced loss: the sum over classes present of the mean cross-entropy within the class.

    logits: (B, K); labels: (B,). A class absent from the batch contributes nothing.
    """
    ce = F.cross_entropy(logits, labels, reduction="none")
    counts = torch.bincount(labels, minlength=n_classes).to(ce.dtype)
    return (ce / counts[labels]).sum()


def flip_probability(probs: torch.Tensor) -> torch.Tensor:
    """XRM's label-flip probability (p - 1/K) K / (K - 1) from the held-out twin's max softmax probability p.

    probs: (B, K) softmax probabilities. Returns (B,) in [0, 1] (0 for a uniform prediction, 1 for a certain one).
    """
    k = probs.shape[1]
    p = probs.max(dim=1).values
    return ((p - 1.0 / k) * k / (k - 1)).clamp(0.0, 1.0)


def group_balanced_weights(groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """(N,) weights N / (G' n_g) that give every present group the same total weight (mean weight 1), G' the
    number of present groups: group-balanced ERM (reweighting; Idrissi et al. 2022's RWG)."""
    counts = torch.bincount(groups, minlength=n_groups).double()
    present = int((counts > 0).sum())
    return (len(groups) / (present * counts[groups])).float()


class GroupDRO:
    """Online GroupDRO (Sagawa et al., ICLR 2020, Algorithm 1): q_g <- q_g exp(eta L_g), normalised; the loss is
    sum_g q_g L_g with L_g the batch's mean loss in group g (0 for a group absent from the batch).

    n_groups: G; step_size: eta (the paper code's `robust_step_size`, default 0.01). `q` starts uniform.
    """

    def __init__(self, n_groups: int, step_size: float = 0.01, device: str | torch.device = "cpu") -> None:
        if not step_size > 0:
            raise ConfigError(f"`dro_step_size` must be > 0, got {step_size}")
        self.n_groups, self.step_size = int(n_groups), float(step_size)
        self.q = torch.full((self.n_groups,), 1.0 / self.n_groups, device=device)

    def loss(self, per_sample: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Update q from this batch's group losses and return the robust loss sum_g q_g L_g."""
        g = self.n_groups
        sums = torch.zeros(g, dtype=per_sample.dtype, device=per_sample.device).index_add(0, groups, per_sample)
        counts = torch.bincount(groups, minlength=g).to(per_sample.dtype)
        group_loss = sums / counts.clamp_min(1.0)  # (G,)
        with torch.no_grad():
            q = self.q.to(per_sample.device) * torch.exp(self.step_size * group_loss.detach())
            self.q = q / q.sum()
        return group_loss @ self.q

    def state_dict(self) -> dict:
        return {"q": self.q.cpu()}

    def load_state_dict(self, d: dict) -> None:
        self.q = d["q"].to(self.q.device)
