"""Train M ICL models at once (one per seed) and measure ICL, ICL2 and IWL over training.

`train_icl(task, seeds, ...)` runs plain SGD (the authors' optimizer: no momentum) on batched parameters, with
separate weight decay for the attention path and the MLPs, each model drawing its own batches from its own seed.
Every `eval_every` steps it scores the evaluation sets; from the curves it reads t_ICL (first step with ICL accuracy
> 0.95) and transience (ICL accuracy later below 0.9), the authors' thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from rote.core.device import resolve_device
from rote.core.errors import ConfigError
from rote.core.results import Result, table_field
from rote.core.training import stacked_optimizer
from rote.icl.models import ICLNet, MLPNet
from rote.icl.task import Batch, BinaryTask, ReddyTask

__all__ = [
    "ICLRun",
    "MemorizationRun",
    "loss_and_correct",
    "t_icl",
    "transience",
    "train_icl",
    "train_mlp",
    "ICL_THRESHOLD",
    "TRANSIENT_THRESHOLD",
    "ACQUIRED_THRESHOLD",
]

ICL_THRESHOLD = 0.95  # t_ICL: first time ICL accuracy exceeds this
TRANSIENT_THRESHOLD = 0.9  # transient: ICL accuracy later falls below this
ACQUIRED_THRESHOLD = 0.75  # "the run acquired ICL" (the authors' Fig. 6E)


def _check_positive(name: str, value: float, integer: bool = False) -> None:
    if integer and (isinstance(value, bool) or int(value) != value):
        raise ConfigError(f"`{name}` must be an integer, got {value}")
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"`{name}` must be > 0, got {value}")


def loss_and_correct(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence loss and correctness. Binary: logits (M, B), y (B,) or (M, B) in {-1, +1}: loss
    -log sigmoid(y z), correct y z > 0. Labels: logits (M, B, L), y label ids: cross-entropy, argmax."""
    if logits.dim() == 2:  # binary: (M, B) logits
        yz = y * logits
        return F.softplus(-yz), yz > 0
    m, b, n_lab = logits.shape
    y = y.expand(m, b) if y.dim() == 1 else y
    loss = F.cross_entropy(logits.reshape(m * b, n_lab), y.reshape(-1), reduction="none").view(m, b)
    return loss, logits.argmax(-1) == y


def t_icl(steps: np.ndarray, icl_acc: np.ndarray, threshold: float = ICL_THRESHOLD) -> float:
    """First step at which ICL accuracy exceeds `threshold` (NaN if never)."""
    hit = np.nonzero(np.asarray(icl_acc) > threshold)[0]
    return float(np.asarray(steps)[hit[0]]) if len(hit) else float("nan")


def transience(
    icl_acc: np.ndarray, threshold: float = ICL_THRESHOLD, drop: float = TRANSIENT_THRESHOLD
) -> tuple[bool, float]:
    """(transient, peak): ICL accuracy exceeded `threshold` and later fell below `drop`; peak = max accuracy."""
    a = np.asarray(icl_acc, dtype=float)
    hit = np.nonzero(a > threshold)[0]
    if not len(hit):
        return False, float(a.max()) if len(a) else float("nan")
    return bool((a[hit[0] :] < drop).any()), float(a.max())


@dataclass(frozen=True)
class ICLRun(Result):
    """Curves and per-seed outcomes of one `train_icl` call.

    per_seed: one row per seed: final accuracy and loss on each evaluation set, t_icl (steps; NaN = never),
    acquired (final ICL accuracy > 0.75), transient, peak ICL accuracy. history: long table step, seed, set
    ("icl", "icl2", "iwl", "train"), accuracy, loss.
    """

    task: dict
    model: str
    steps: int
    seeds: list
    per_seed: pd.DataFrame = table_field("per_seed")
    history: pd.DataFrame = table_field("history")

    def summary(self) -> str:
        p = self.per_seed
        lines = [f"{self.model} on {self.task}: {len(self.seeds)} seeds, {self.steps} steps"]
        for col in ("icl_acc", "icl2_acc", "iwl_acc"):
            if col in p:
                lines.append(f"final {col}: mean {p[col].mean():.3f} (min {p[col].min():.3f}, max {p[col].max():.3f})")
        n = int(p["t_icl"].notna().sum())
        med = float(np.nanmedian(p["t_icl"])) if n else float("nan")
        lines.append(f"ICL acquired (acc > 0.95) by {n}/{len(p)} seeds; median t_ICL {med:.0f} steps")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        out = super().to_dict()
        p = self.per_seed
        out["final"] = {c: [float(v) for v in p[c]] for c in p.columns if c.endswith("_acc") or c.endswith("_loss")}
        out["t_icl"] = [None if math.isnan(v) else float(v) for v in p["t_icl"]]
        out["transient"] = [bool(v) for v in p["transient"]]
        return out


def _evaluate(net: ICLNet, sets: dict[str, Batch], chunk: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """set -> (accuracy (M,), loss (M,)) on shared evaluation batches, `chunk` sequences at a time."""
    out = {}
    with torch.inference_mode():
        for name, batch in sets.items():
            losses, correct = [], []
            for i in range(0, len(batch.y), chunk):
                loss, ok = loss_and_correct(net(batch.x[i : i + chunk]), batch.y[i : i + chunk])
                losses.append(loss)
                correct.append(ok)
            out[name] = (
                torch.cat(correct, 1).float().mean(1).cpu().numpy(),
                torch.cat(losses, 1).mean(1).cpu().numpy(),
            )
    return out


def _optimizer(net: ICLNet | MLPNet, wd_attention: float, wd_mlp: float, lr: float) -> torch.optim.Optimizer:
    """Plain SGD with the two weight-decay groups, fused kernels: the same update as torch's per-tensor loop bit
    for bit (tests/core/test_training_stacked.py), without the "foreach" path's temporaries for the decay."""
    return stacked_optimizer(net.param_groups(wd_attention, wd_mlp), "sgd", lr=lr, fused=True)


def _batch_drawer(
    task: BinaryTask | ReddyTask, net: ICLNet, gens: list[torch.Generator], batch: int, dev: torch.device
) -> Callable[[], tuple[torch.Tensor, torch.Tensor, bool]]:
    """A function drawing one training batch per model: () -> (x (M, B, T, C), y (M, B), normalized).

    Model m's batch comes from `gens[m]` alone and consumes it exactly as `task.sample(batch, gens[m])` does, so a
    seed sees the same batches whatever trains beside it. For the binary task with fixed classes and no item
    noise, a token is a function of its class (and of being the query), so only the class indices are drawn per
    model and the tokens of all M models are gathered at once from a (K, C) table; for the one-layer model the
    table holds LayerNorm-ed tokens (`ICLNet.normalize`, row by row, the same numbers as normalizing the batch),
    which takes the per-token LayerNorm out of the training step. Other tasks build tokens per model."""
    if isinstance(task, BinaryTask) and task.K is not None and task.eps == 0:
        means, labels = task.means(), task.labels()
        onehot = F.one_hot(labels, 2).to(means.dtype)
        ctx = torch.cat([means, onehot], dim=1)  # (K, C): a context token of each class
        query = torch.cat([means, torch.zeros_like(onehot)], dim=1)  # (K, C): the query's label slot is zero
        normalized = net.kind == "one_layer"
        if normalized:
            ctx, query = net.normalize(ctx), net.normalize(query)
        table = torch.cat([ctx, query]).to(dev)  # (2K, C): row K + k is the query token of class k
        sign = (2.0 * labels - 1.0).to(dev)
        offset = torch.zeros(task.N, dtype=torch.long)
        offset[-1] = task.K
        offset = offset.to(dev)

        def draw_tables() -> tuple[torch.Tensor, torch.Tensor, bool]:
            idx = task.sample_indices_many(batch, task.K, gens, labels).to(dev)  # (M, B, N)
            # index_select: the same rows as table[idx + offset], about 3x faster than advanced indexing on a CPU
            x = torch.index_select(table, 0, (idx + offset).view(-1)).view(*idx.shape, table.shape[1])
            return x, sign[idx[..., -1]], normalized  # (M, B, N, C), (M, B)

        return draw_tables
    means = None if getattr(task, "K", None) is None else task.means()

    def draw_tokens() -> tuple[torch.Tensor, torch.Tensor, bool]:
        bs = [task.sample(batch, g, means) for g in gens]
        return torch.stack([b.x for b in bs]).to(dev), torch.stack([b.y for b in bs]).to(dev), False

    return draw_tokens


def train_icl(
    task: BinaryTask | ReddyTask,
    seeds: Sequence[int],
    *,
    model: str = "one_layer",
    steps: int = 2000,
    batch: int = 128,
    lr: float = 0.01,
    wd_attention: float = 1e-10,
    wd_mlp: float = 1e-10,
    hidden: int = 512,
    eval_every: int = 100,
    eval_n: int = 2000,
    stop_at: float | None = None,
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> ICLRun:
    """Train one model per seed on `task`, all at once; returns curves and per-seed outcomes.

    steps: SGD iterations (the authors: 469 per epoch of 60,000 sequences at batch 128); lr: SGD learning rate
    (paper 0.01); wd_attention / wd_mlp: weight decay of the attention path / the MLPs (paper 1e-10 both; 3e-3 on
    attention for transience); hidden: MLP width (paper 512); eval_every: steps between evaluations of `eval_n`
    sequences per set; stop_at: stop once every model's ICL accuracy exceeds it (the authors stop at 0.99; None =
    run all steps). Seed s draws model s's initial weights and its batches.
    """
    _check_positive("steps", steps, integer=True)
    _check_positive("batch", batch, integer=True)
    _check_positive("lr", lr)
    _check_positive("eval_every", eval_every, integer=True)
    _check_positive("eval_n", eval_n, integer=True)
    _check_positive("hidden", hidden, integer=True)
    for name, wd in (("wd_attention", wd_attention), ("wd_mlp", wd_mlp)):
        if not wd >= 0:
            raise ConfigError(f"`{name}` must be >= 0, got {wd}")
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"`seeds` lists a seed twice: {seeds}")
    if isinstance(task, ReddyTask) and model != "reddy" or isinstance(task, BinaryTask) and model == "reddy":
        raise ConfigError(f"`model` {model!r} does not fit the {type(task).__name__}; use 'reddy' with task 'reddy'")
    dev = resolve_device(device)
    n_out = 1 if isinstance(task, BinaryTask) else task.L
    net = ICLNet(model, seeds, task.dim, hidden=hidden, n_out=n_out, content_dim=task.D).to(dev)
    opt = _optimizer(net, wd_attention, wd_mlp, lr)
    sets = {k: v.to(dev) for k, v in task.eval_sets(eval_n).items()}
    gens = [torch.Generator().manual_seed(1_000_003 * s + 17) for s in seeds]
    draw = _batch_drawer(task, net, gens, batch, dev)
    rows: list[dict] = []
    train_loss = torch.zeros(len(seeds))
    n_since = 0

    def record(step: int) -> np.ndarray:
        res = _evaluate(net, sets, chunk=max(1, 4096 // max(1, len(seeds))))
        tl = (train_loss / max(1, n_since)).numpy()
        for i, s in enumerate(seeds):
            for name, (acc, loss) in res.items():
                rows.append({"step": step, "seed": s, "set": name, "accuracy": float(acc[i]), "loss": float(loss[i])})
            if step > 0:
                rows.append({"step": step, "seed": s, "set": "train", "accuracy": np.nan, "loss": float(tl[i])})
        return res["icl"][0]

    record(0)
    done_steps = 0
    for step in range(1, steps + 1):
        x, y, normalized = draw()  # (M, B, T, C), (M, B)
        loss, _ = loss_and_correct(net(x, normalized=normalized), y)
        per_model = loss.mean(dim=1)  # (M,)
        opt.zero_grad(set_to_none=True)
        per_model.sum().backward()  # each model's slice gets exactly its own mean-loss gradient
        opt.step()
        train_loss += per_model.detach().cpu()
        n_since += 1
        done_steps = step
        if progress is not None:
            progress(1)
        if step % eval_every == 0 or step == steps:
            icl = record(step)
            train_loss.zero_()
            n_since = 0
            if stop_at is not None and bool((icl > stop_at).all()):
                if progress is not None:
                    progress(steps - step)
                break
    history = pd.DataFrame(rows)
    return ICLRun(
        task={"kind": type(task).__name__, **{k: v for k, v in task.__dict__.items()}},
        model=model,
        steps=done_steps,
        seeds=seeds,
        per_seed=per_seed_table(history),
        history=history,
    )


def per_seed_table(history: pd.DataFrame) -> pd.DataFrame:
    """One row per seed from a history table: final accuracy/loss per set, t_icl, acquired, transient, peak."""
    rows = []
    for seed, h in history.groupby("seed", sort=False):
        row: dict = {"seed": int(seed)}
        for name, g in h.groupby("set", sort=False):
            g = g.sort_values("step")
            if name != "train":
                row[f"{name}_acc"] = float(g["accuracy"].iloc[-1])
            row[f"{name}_loss"] = float(g["loss"].iloc[-1])
        icl = h[h.set == "icl"].sort_values("step")
        row["t_icl"] = t_icl(icl["step"].to_numpy(), icl["accuracy"].to_numpy())
        row["acquired"] = bool(row["icl_acc"] > ACQUIRED_THRESHOLD)
        row["transient"], row["peak_icl_acc"] = transience(icl["accuracy"].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- stand-alone MLP


@dataclass(frozen=True)
class MemorizationRun(Result):
    """The stand-alone MLP memorizing K items with +-1 labels. curve: step, seed, c1 = mean sigmoid(-y z) over
    the K items, I_K = integral of c1 over steps (trapezoid); per_seed: final c1, I_K, training accuracy."""

    K: int
    steps: int
    seeds: list
    hidden: int
    lr: float
    curve: pd.DataFrame = table_field("curve")
    per_seed: pd.DataFrame = table_field("per_seed")

    def summary(self) -> str:
        p = self.per_seed
        return (
            f"MLP memorizing K={self.K} items, {len(self.seeds)} seeds, {self.steps} steps: "
            f"I_K {p['I_K'].mean():.4g}, final c1 {p['c1'].mean():.3g}, train accuracy {p['accuracy'].mean():.3f}"
        )


def train_mlp(
    K: int,
    seeds: Sequence[int],
    *,
    D: int = 63,
    hidden: int = 512,
    steps: int = 5000,
    batch: int = 128,
    lr: float = 0.01,
    weight_decay: float = 1e-10,
    log_every: int = 50,
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> MemorizationRun:
    """The memorization run of Nguyen and Reddy (their mlp.py): M MLPs D -> H -> H -> 1 trained by SGD on the K
    training items of the binary task (class means, balanced labels), batches drawn uniformly; every `log_every`
    steps c1 = mean over the K items of sigmoid(-y z) (the authors average over the label +1 items, the same
    quantity by symmetry of the labels), and I_K(t) = integral of c1 dt in steps."""
    task = BinaryTask(K=K, N=2, D=D)
    for name, v in (("steps", steps), ("batch", batch), ("log_every", log_every), ("hidden", hidden)):
        _check_positive(name, v, integer=True)
    _check_positive("lr", lr)
    dev = resolve_device(device)
    seeds = [int(s) for s in seeds]
    x = task.means().to(dev)  # (K, D)
    y = (2.0 * task.labels() - 1).to(dev)  # (K,)
    net = MLPNet(seeds, D, hidden).to(dev)
    opt = _optimizer(net, 0.0, weight_decay, lr)
    gens = [torch.Generator().manual_seed(1_000_003 * s + 29) for s in seeds]
    rows = []

    def log(step: int) -> None:
        with torch.no_grad():
            yz = net(x).squeeze(-1) * y  # (M, K)
            c1 = torch.sigmoid(-yz).mean(1).cpu().numpy()
            acc = (yz > 0).float().mean(1).cpu().numpy()
        for i, s in enumerate(seeds):
            rows.append({"step": step, "seed": s, "c1": float(c1[i]), "accuracy": float(acc[i])})

    log(0)
    for step in range(1, steps + 1):
        idx = torch.stack([torch.randint(K, (batch,), generator=g) for g in gens]).to(dev)  # (M, B)
        z = net(x[idx]).squeeze(-1)  # (M, B)
        loss = F.softplus(-y[idx] * z).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(1)
        if step % log_every == 0 or step == steps:
            log(step)
    curve = pd.DataFrame(rows)
    per = []
    for s, g in curve.groupby("seed", sort=False):
        g = g.sort_values("step")
        ik = np.concatenate(
            [[0.0], np.cumsum(np.diff(g["step"]) * (g["c1"].to_numpy()[1:] + g["c1"].to_numpy()[:-1]) / 2)]
        )
        curve.loc[g.index, "I_K"] = ik
        per.append(
            {
                "seed": int(s),
                "c1": float(g["c1"].iloc[-1]),
                "I_K": float(ik[-1]),
                "accuracy": float(g["accuracy"].iloc[-1]),
            }
        )
    return MemorizationRun(K=K, steps=steps, seeds=seeds, hidden=hidden, lr=lr, curve=curve, per_seed=pd.DataFrame(per))
