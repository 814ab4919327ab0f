"""Train the final classifier with one method: ERM, MAT, group-balanced ERM or GroupDRO, on `rote.core.training`.

| method | loss | group labels of the training set |
|---|---|---|
| erm | mean CE(f(x), y) | not used (refused) |
| mat | mean CE(f(x) + s, y), s = `mat_shift` of held-out logits; predicts with f(x) | not used (refused) |
| gb_erm | mean of CE(f(x), y) N / (G n_g): every group the same total weight | needed (oracle or inferred) |
| groupdro | online GroupDRO, sum_g q_g L_g (Sagawa et al. 2020) | needed (oracle or inferred) |

Model selection (`select`): "last" keeps the final weights; "val" keeps the epoch with the best worst-group
accuracy on validation under `val_groups` (true groups: the paper's va_wga; inferred groups: va_gi_wga).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError, DataError
from rote.core.training import Trainer
from rote.spurious.data import GroupedData
from rote.spurious.heldout import make_optimizer, predict
from rote.spurious.mat import GroupDRO, group_balanced_weights
from rote.spurious.metrics import group_accuracy
from rote.spurious.models import StackedMLP

__all__ = ["METHODS", "GROUP_METHODS", "Trained", "train_classifier", "check_validation_groups"]

METHODS = ("erm", "mat", "gb_erm", "groupdro")
GROUP_METHODS = ("gb_erm", "groupdro")
SELECT = ("last", "val")


@dataclasses.dataclass
class Trained:
    """A trained classifier: `model` (StackedMLP with k = 1), the epoch kept, per-epoch history and the final
    per-sample training losses (N,) aligned with the training set's positions (from the Trainer)."""

    method: str
    model: StackedMLP
    best_epoch: int | None
    history: list[dict]
    per_sample_loss: np.ndarray | None

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) predicted classes (MAT predicts without its shift)."""
        dev = self.model.weights[0].device
        return predict(self.model, x.to(dev))[0].argmax(1).cpu()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        dev = self.model.weights[0].device
        return predict(self.model, x.to(dev))[0].cpu()


def check_validation_groups(train: GroupedData, val: GroupedData) -> None:
    """Selection by validation worst-group accuracy needs every group of the training set in validation."""
    names = train.group_names()
    have_train, have_val = train.group_counts(), val.group_counts()
    for g in np.flatnonzero((have_train > 0) & (have_val == 0)):
        raise DataError(
            f"`val` ({val.name}): group {names[g]} has {int(have_train[g])} training examples but none in "
            "validation, so validation worst-group accuracy is undefined; add validation examples of it or "
            "select the last epoch (`select`='last')"
        )


class _Select:
    """Epoch-end callback: worst-group and average accuracy on validation, logged as val_wga and val_acc."""

    def __init__(self, model: StackedMLP, x: torch.Tensor, y: np.ndarray, groups: np.ndarray) -> None:
        self.model, self.x, self.y, self.groups = model, x, y, groups

    def on_epoch_end(self, state: Any, logs: dict) -> bool:
        pred = predict(self.model, self.x)[0].argmax(1).cpu().numpy()
        m = group_accuracy(self.y, pred, groups=self.groups, group_names=[str(i) for i in range(self.groups.max() + 1)])
        logs["val_wga"], logs["val_acc"] = m["worst_group_acc"], m["avg_acc"]
        return False


def train_classifier(
    method: str,
    train: GroupedData,
    *,
    val: GroupedData | None = None,
    shift: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    select: str = "last",
    val_groups: torch.Tensor | None = None,
    hidden: Sequence[int] = (256, 256),
    bias: bool = True,
    epochs: int = 20,
    batch_size: int | None = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    dro_step_size: float = 0.01,
    seed: int = 0,
    device: str = "cpu",
    progress: Any = False,
) -> Trained:
    """Train one classifier on `train` with `method` (see the module docstring) and return it.

    shift: (N, K) MAT shifts (`mat_shift`), required by and only accepted for "mat". groups: (N,) training group
    labels, required by gb_erm and groupdro and refused for erm and mat (they must not use group labels).
    select: "last" or "val" (needs `val` and `val_groups`, (N_val,) group labels: true or inferred).
    """
    if method not in METHODS:
        raise ConfigError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")
    if groups is not None and method not in GROUP_METHODS:
        raise ConfigError(
            f"`groups`: method {method} trains without group labels and refuses them; give training groups only to "
            f"{' or '.join(GROUP_METHODS)} (validation groups for model selection go in `val_groups`)"
        )
    if groups is None and method in GROUP_METHODS:
        raise ConfigError(f"`groups`: method {method} needs group labels of the training set (true or inferred)")
    if method == "mat" and shift is None:
        raise ConfigError("`shift`: method mat needs the MAT shift of every training sample (see mat_shift)")
    if shift is not None and method != "mat":
        raise ConfigError(f"`shift` is only used by method mat, not {method}")
    if shift is not None and tuple(shift.shape) != (len(train), train.n_classes):
        raise DataError(f"`shift` must be ({len(train)}, {train.n_classes}), got {tuple(shift.shape)}")
    if select not in SELECT:
        raise ConfigError(f"`select` must be one of {', '.join(SELECT)}, got {select!r}")
    if select == "val" and (val is None or val_groups is None):
        raise ConfigError("`select`='val' needs `val` data and `val_groups`")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"`epochs` must be a whole number >= 1, got {epochs}")
    dev = torch.device(device)
    x, y = train.x.to(dev), train.y.to(dev)
    n = len(train)
    rows = torch.arange(n, device=dev)
    model = StackedMLP(train.in_features, hidden, train.n_classes, k=1, bias=bias, seed=seed)
    opt = make_optimizer(model.parameters(), optimizer, lr, weight_decay, momentum)
    s = shift.to(dev) if shift is not None else None
    g = groups.to(dev).long() if groups is not None else None
    n_groups = int(g.max()) + 1 if g is not None else 0
    w = group_balanced_weights(g, n_groups) if method == "gb_erm" else None
    dro = GroupDRO(n_groups, dro_step_size, device=dev) if method == "groupdro" else None

    def step(idx: torch.Tensor, st: Any) -> dict:
        idx = rows if len(idx) == n else idx
        logits = model(x if idx is rows else x[idx])[0]  # (B, K)
        yb = y[idx]
        if s is not None:
            logits = logits + s[idx]
        ce = F.cross_entropy(logits, yb, reduction="none")  # (B,)
        if w is not None:
            loss = (ce * w[idx]).mean()
        elif dro is not None:
            loss = dro.loss(ce, g[idx])
        else:
            loss = ce.mean()
        return {"loss": loss, "per_sample": ce.detach(), "indices": idx}

    callbacks = []
    if select == "val":
        callbacks.append(_Select(model, val.x.to(dev), val.y.cpu().numpy(), val_groups.cpu().numpy().astype(np.int64)))
    state = Trainer(
        {"model": model},
        step,
        optimizers={"model": opt},
        data=n,
        batch_size=batch_size or n,
        epochs=epochs,
        seed=seed,
        device=dev,
        callbacks=callbacks,
        monitor="val_wga" if select == "val" else None,
        mode="max",
        keep_best=select == "val",
        record_per_sample="latest",
        progress=progress,
        description=method,
    ).fit()
    return Trained(
        method, model, state.best_epoch if select == "val" else state.epoch, list(state.history), state.per_sample
    )
