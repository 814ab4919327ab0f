"""Held-out predictions for every training sample: XRM twins (the paper's source) or plain k-fold cross-fitting.

XRM (Pezeshki et al., "Discovering environments with XRM", ICML 2024), as used in phase 1 of Bayat et al. 2025:
two twin networks, each holding in a random, class-balanced half of the training set; each twin minimises the
class-balanced loss (sum over classes of the mean cross-entropy within the class) on its half, with *dynamic*
labels: after every step, each sample's label is flipped to the held-out twin's prediction with probability
(p - 1/K) K/(K - 1), p that twin's max softmax probability ("echo chamber"; flips are cumulative). At the end,
sample i's held-out logits are those of the twin that did not hold it in. Among several runs, XRM keeps the one
with the highest final flip rate (`select_by_flip_rate`).

The twins are one `StackedMLP` with k = 2 (one forward, one optimizer); `kfold_heldout` is the same with k
members and plain ERM on the folds. Training runs on `rote.core.training.Trainer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, internal_field, table_field
from rote.core.training import Trainer, stacked_optimizer
from rote.data import halves_indices, kfold_indices
from rote.spurious.data import GroupedData
from rote.spurious.mat import flip_probability
from rote.spurious.models import StackedMLP

__all__ = [
    "HeldOut",
    "xrm_twins",
    "kfold_heldout",
    "select_by_flip_rate",
    "inferred_groups",
    "make_optimizer",
    "predict",
]

OPTIMIZERS = ("sgd", "adam")
_GROUP_MIN_WEIGHTS = 1 << 17  # first-layer weights (both twins) from which mini-batches are grouped by twin


def make_optimizer(
    params: Any, optimizer: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.0, *, fused: bool = False
) -> torch.optim.Optimizer:
    """SGD (with `momentum`) or Adam on `params` (`momentum` is ignored by Adam), through
    `rote.core.training.stacked_optimizer`: one multi-tensor update for the stacked twins or folds.

    fused: torch's fused kernels (for Adam one pass over each tensor instead of about seven; 2.3x faster on the
    demo twins' 1.3 M weights on one CPU thread). It is the same elementwise update, so stacked members still
    move exactly as separate ones would, but Adam rounds differently from the multi-tensor kernels (1e-8 on
    weights per step), so it is used only where it was measured (the XRM twins)."""
    if optimizer in ("sgd", "adam"):
        mom = momentum if optimizer == "sgd" else 0.0
        return stacked_optimizer(params, optimizer, lr=lr, weight_decay=weight_decay, momentum=mom, fused=fused)
    raise ConfigError(f"`optimizer` must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Logits of every member: (k, N, K), in eval mode, in batches."""
    was = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)], dim=1)
    model.train(was)
    return out


@dataclasses.dataclass(frozen=True)
class HeldOut(Result):
    """Held-out predictions of the training set (and of val / test by the whole ensemble).

    method: "xrm" or "kfold". k: members. train_logits: (N, K) logits of a member that did not hold sample i
    in. heldin_logits: (N, K) logits of the member(s) that did (k-fold: their mean). val_logits / test_logits:
    (N_split, K) mean logits of all members (none held those samples in). member: (N,) which member held sample i
    out (XRM: the other twin trained on it). flip_rate: final fraction of dynamic labels that differ from the true
    labels (XRM). heldout_acc / heldin_acc: accuracy of those logits on the true training labels.
    """

    method: str
    k: int
    flip_rate: float
    heldout_acc: float
    heldin_acc: float
    config: dict
    train_logits: torch.Tensor = internal_field()
    heldin_logits: torch.Tensor = internal_field()
    val_logits: torch.Tensor | None = internal_field()
    test_logits: torch.Tensor | None = internal_field()
    member: np.ndarray = internal_field()
    history: list = internal_field()
    dynamic_labels: np.ndarray | None = internal_field()
    rows: Any = table_field("heldout")


def inferred_groups(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """XRM/MAT inferred groups for model selection: 2 y + [held-out prediction == y] (0 = class 0 mistaken,
    1 = class 0 right, ...). logits: (N, K); labels: (N,). Returns (N,) int64 in [0, 2K)."""
    right = (logits.argmax(1) == labels.to(logits.device)).long()
    return labels.to(logits.device) * 2 + right


def _check_halves(y: np.ndarray, a: np.ndarray, b: np.ndarray, n_classes: int, name: str) -> None:
    for twin, half in (("A", a), ("B", b)):
        present = np.bincount(y[half], minlength=n_classes)
        for c in np.flatnonzero((present == 0) & (np.bincount(y, minlength=n_classes) > 0)):
            raise DataError(
                f"`train` ({name}): class {c} has {int((y == c).sum())} example(s) and none in twin {twin}'s half; "
                "the class-balanced twin loss needs every class in both halves (give it at least 2 examples)"
            )


def _frame(data: GroupedData, ho: torch.Tensor, hi: torch.Tensor, member: np.ndarray, dyn: np.ndarray | None):
    import pandas as pd

    y = data.y.cpu().numpy()
    p = torch.softmax(ho.float(), 1).cpu().numpy()
    return pd.DataFrame(
        {
            "id": data.ids.cpu().numpy(),
            "label": y,
            "attr": data.a.cpu().numpy(),
            "group": data.groups.cpu().numpy(),
            "heldout_member": member,
            "heldout_pred": p.argmax(1),
            "heldout_p_label": p[np.arange(len(y)), y],
            "heldin_pred": hi.argmax(1).cpu().numpy(),
            "dynamic_label": dyn if dyn is not None else y,
        }
    )


def _common(train: GroupedData, epochs: int, batch_size: int | None) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"`epochs` must be a whole number >= 1, got {epochs}")
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise ConfigError(f"`batch_size` must be >= 1, got {batch_size}")
    if len(train) < 2:
        raise DataError(f"`train` ({train.name}): needs at least 2 samples, got {len(train)}")


def xrm_twins(
    train: GroupedData,
    *,
    val: GroupedData | None = None,
    test: GroupedData | None = None,
    hidden: Sequence[int] = (256, 256),
    bias: bool = True,
    epochs: int = 20,
    batch_size: int | None = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    flip: bool = True,
    seed: int = 0,
    device: str = "cpu",
    progress: Any = False,
) -> HeldOut:
    """Train XRM twins on `train` and return held-out logits for every training sample (see the module docstring).

    hidden / bias: the twins' StackedMLP (hidden=() and bias=False: the linear toy's model). batch_size None: full
    batch. flip: XRM's label flipping (False: plain twins with the class-balanced loss). seed fixes the halves,
    the initial weights, batch order and flips.
    """
    _common(train, epochs, batch_size)
    k_cls = train.n_classes
    y_np = train.y.cpu().numpy()
    a_idx, b_idx = halves_indices(len(train), seed=seed, labels=y_np)
    _check_halves(y_np, a_idx, b_idx, k_cls, train.name)
    dev = torch.device(device)
    x, y = train.x.to(dev), train.y.to(dev)
    assign = torch.zeros(len(train), dtype=torch.int64)
    assign[torch.as_tensor(b_idx)] = 1
    assign = assign.to(dev)
    y_dyn = y.clone()
    model = StackedMLP(train.in_features, hidden, k_cls, k=2, bias=bias, seed=seed)
    opt = make_optimizer(model.parameters(), optimizer, lr, weight_decay, momentum, fused=True)
    rows = torch.arange(len(train), device=dev)
    # On CPU every batch is reordered so that each twin's held-in rows are contiguous (`StackedMLP`'s `heldin`):
    # its first-layer weight gradient then skips the other half's rows, whose gradient is zero. Per-sample
    # values keep the Trainer's order where it matters (the flip draws); the batch's order changes no gradient.
    # (On a GPU the row counts would cost a device sync per step for a product that is cheap there; for a small
    # first layer the reordering costs more than it saves, except with a full batch, grouped once.)
    full = batch_size is None or batch_size >= len(train)
    group = dev.type == "cpu" and (full or model.weights[0].numel() >= _GROUP_MIN_WEIGHTS)
    full_order = torch.argsort(assign, stable=True) if group and full else rows
    full_sizes = torch.bincount(assign, minlength=2).tolist() if group and full else None
    x_full = x[full_order] if group and full else x  # full batch: grouped once, not every step

    def step(idx: torch.Tensor, st: Any) -> dict:
        order, sizes = None, None
        if len(idx) == len(rows):  # full batch: the same samples every step
            idx, xb = full_order, x_full
            order = full_order if group else None
            sizes = full_sizes
        else:
            if group:
                order = torch.argsort(assign[idx], stable=True)
                idx = idx[order]
                sizes = torch.bincount(assign[idx], minlength=2).tolist()
            xb = x[idx]
        yb, ab = y_dyn[idx], assign[idx]
        logits = model(xb, heldin=sizes)  # (2, B, K)
        ar = rows[: len(idx)]
        cell = ab * k_cls + yb  # (twin, class) cell of every sample
        counts = torch.bincount(cell, minlength=2 * k_cls).to(logits.dtype)
        ce = F.cross_entropy(logits[ab, ar], yb, reduction="none")  # (B,) held-in twin's loss
        loss = (ce / counts[cell]).sum()  # class-balanced, summed over both twins
        out = {"loss": loss}
        if flip:
            with torch.no_grad():
                probs = torch.softmax(logits[1 - ab, ar].float(), 1)  # held-out twin
                draw = torch.rand(len(idx), generator=st.generator, device=probs.device)  # in the Trainer's order
                change = (draw if order is None else draw[order]) < flip_probability(probs)
                y_dyn[idx[change]] = probs.argmax(1)[change]
            out["flip_rate"] = (y_dyn != y).float().mean()
        return out

    state = Trainer(
        {"twins": model},
        step,
        optimizers={"twins": opt},
        data=len(train),
        batch_size=batch_size or len(train),
        epochs=epochs,
        seed=seed,
        device=dev,
        progress=progress,
        description="XRM twins",
    ).fit()
    logits = predict(model, x)  # (2, N, K)
    ho = logits[1 - assign, rows]
    hi = logits[assign, rows]
    member = (1 - assign).cpu().numpy()
    dyn = y_dyn.cpu().numpy()
    return _result(
        "xrm",
        2,
        float((y_dyn != y).float().mean()),
        model,
        dev,
        y,
        ho,
        hi,
        train,
        val,
        test,
        member,
        dyn,
        state,
        {
            "hidden": list(hidden),
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": weight_decay,
            "flip": flip,
            "seed": seed,
        },
    )


def kfold_heldout(
    train: GroupedData,
    *,
    k: int = 5,
    val: GroupedData | None = None,
    test: GroupedData | None = None,
    hidden: Sequence[int] = (256, 256),
    bias: bool = True,
    epochs: int = 20,
    batch_size: int | None = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    seed: int = 0,
    device: str = "cpu",
    progress: Any = False,
) -> HeldOut:
    """Plain k-fold cross-fitting: k members (one StackedMLP) each trained with mean cross-entropy on all folds
    but its own (stratified folds); sample i's held-out logits come from the member of its fold."""
    _common(train, epochs, batch_size)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"`folds` must be a whole number >= 2, got {k}")
    dev = torch.device(device)
    x, y = train.x.to(dev), train.y.to(dev)
    fold = np.empty(len(train), np.int64)
    for j, (_, held) in enumerate(kfold_indices(len(train), k, seed=seed, labels=train.y.cpu().numpy())):
        fold[held] = j
    fold_t = torch.as_tensor(fold, device=dev)
    model = StackedMLP(train.in_features, hidden, train.n_classes, k=k, bias=bias, seed=seed)
    opt = make_optimizer(model.parameters(), optimizer, lr, weight_decay, momentum)
    members = torch.arange(k, device=dev).unsqueeze(1)  # (k, 1)
    all_rows = torch.arange(len(train), device=dev)

    def step(idx: torch.Tensor, st: Any) -> dict:
        idx = all_rows if len(idx) == len(all_rows) else idx  # full batch: index order, no copy of x
        logits = model(x if idx is all_rows else x[idx])  # (k, B, K)
        yb = y[idx]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.repeat(k), reduction="none").view(k, -1)
        mask = (fold_t[idx].unsqueeze(0) != members).to(ce.dtype)  # (k, B): member j holds sample b in
        loss = ((ce * mask).sum(1) / mask.sum(1).clamp_min(1.0)).sum()
        return {"loss": loss}

    state = Trainer(
        {"folds": model},
        step,
        optimizers={"folds": opt},
        data=len(train),
        batch_size=batch_size or len(train),
        epochs=epochs,
        seed=seed,
        device=dev,
        progress=progress,
        description="k-fold",
    ).fit()
    logits = predict(model, x)  # (k, N, K)
    rows = torch.arange(len(train), device=dev)
    ho = logits[fold_t, rows]
    inmask = (fold_t.unsqueeze(0) != members).unsqueeze(-1).to(logits.dtype)
    hi = (logits * inmask).sum(0) / inmask.sum(0)
    return _result(
        "kfold",
        k,
        0.0,
        model,
        dev,
        y,
        ho,
        hi,
        train,
        val,
        test,
        fold,
        None,
        state,
        {
            "hidden": list(hidden),
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": weight_decay,
            "folds": k,
            "seed": seed,
        },
    )


def select_by_flip_rate(runs: Sequence[HeldOut]) -> HeldOut:
    """XRM's hyper-parameter selection: the run with the highest final flip rate (first on ties)."""
    if not runs:
        raise ConfigError("`runs` is empty; give at least one XRM run")
    return max(runs, key=lambda r: r.flip_rate)


def _result(method, k, flip_rate, model, dev, y, ho, hi, train, val, test, member, dyn, state, config) -> "HeldOut":
    """The `HeldOut` of either procedure: held-out (ho) and held-in (hi) logits (n, K) on the training set, the
    members' ensemble on validation and test, and the per-example table."""
    ens = lambda d: None if d is None else predict(model, d.x.to(dev)).mean(0).cpu()  # noqa: E731
    return HeldOut(
        method=method,
        k=k,
        flip_rate=flip_rate,
        heldout_acc=float((ho.argmax(1) == y).float().mean()),
        heldin_acc=float((hi.argmax(1) == y).float().mean()),
        config=config,
        train_logits=ho.cpu(),
        heldin_logits=hi.cpu(),
        val_logits=ens(val),
        test_logits=ens(test),
        member=member,
        history=list(state.history),
        dynamic_labels=dyn,
        rows=_frame(train, ho, hi, member, dyn),
    )
