"""Use of LayerMem: fine-tune the most-memorizing layers of an SSL encoder versus its last layers (Wang et al.,
NeurIPS 2024, Sec. 6, Tab. 4: a SimCLR ResNet9 trained on CIFAR-10, k layers fine-tuned with a linear head on
STL-10 resized to 32x32; fine-tuning the layers with the highest LayerMem or delta-LayerMem beat fine-tuning the
last layers, the usual practice).

Rules for choosing the k fine-tuned layers from a localize result (`rote ssl localize` / `demo`):
    most        the k layers with the highest LayerMem
    most-delta  the k layers with the highest delta-LayerMem (what the layer itself adds)
    last        the last k layers (standard practice)
    random      k layers drawn with the run's seed (control)
    none        no layer: the linear head alone (a linear probe trained by the same loop)
Ties are broken by depth (the earlier layer first); the chosen layers are returned in forward order.

Everything else is frozen: its parameters get no gradient and are not in the optimizer, and its BatchNorm layers
stay in eval mode, so their running statistics are those of pre-training and the frozen part of the encoder is
bit-for-bit unchanged. The fine-tuned layers train their conv and BatchNorm weights and, in train mode, update
their BatchNorm running statistics on the downstream data. The SimCLR projection head is dropped; a new linear
head on `features(x)` is trained with them. Training runs on `rote.core.training.Trainer` (Adam, cross-entropy,
crop + flip augmentation), so a run is a function of its seed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from rote.core.errors import ConfigError, DataError
from rote.core.results import Result, internal_field, table_field
from rote.ssl.scores import OUTPUT, check_images, check_layers

__all__ = [
    "RULES",
    "DEFAULT_RULES",
    "LayerScores",
    "read_localize",
    "layer_scores",
    "check_fits",
    "choose_layers",
    "FinetuneRun",
    "accuracy",
    "finetune",
    "FinetuneResult",
    "compare_finetuning",
    "parse_rules",
]

RULES = ("most", "most-delta", "last", "random", "none")
DEFAULT_RULES = ("most", "last", "random")
ARCH_KEYS = ("arch", "in_channels", "width", "image_size")
"""The architecture fields of an encoder spec that must agree between the encoder and the localize run."""


# ---------------------------------------------------------------------------------------------- layer choice


@dataclasses.dataclass(frozen=True)
class LayerScores:
    """Per-layer scores of a localize result, input to output: names, LayerMem, delta-LayerMem; `arch`: the
    encoder spec the localize run measured (None when unknown); `source`: where they came from (for messages)."""

    names: list[str]
    layermem: np.ndarray
    delta: np.ndarray
    arch: dict[str, Any] | None = None
    source: str = "localize"


def layer_scores(
    layers: Sequence[Mapping[str, Any]], *, arch: Mapping[str, Any] | None = None, source: str = "localize"
) -> LayerScores:
    """LayerScores from the `layers` key of a localize result ([{"name", "layermem", "delta_layermem", ...}])."""
    if not isinstance(layers, Sequence) or isinstance(layers, (str, bytes)) or not layers:
        raise DataError(
            f"`localize` {source}: no `layers`; pass the folder `rote ssl localize` or `rote ssl demo` wrote"
        )
    names, lm, dl = [], [], []
    for i, row in enumerate(layers):
        try:
            name, a, b = str(row["name"]), float(row["layermem"]), float(row["delta_layermem"])
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"`localize` {source}: layers row {i} lacks a name, layermem or delta_layermem; "
                "pass the folder `rote ssl localize` or `rote ssl demo` wrote"
            ) from None
        if not (math.isfinite(a) and math.isfinite(b)):
            raise DataError(f"`localize` {source}: layer {name!r} (row {i}) has a non-finite LayerMem; rerun localize")
        names.append(name)
        lm.append(a)
        dl.append(b)
    if len(set(names)) != len(names):
        raise DataError(f"`localize` {source}: a layer appears twice in `layers`; rerun localize")
    return LayerScores(names, np.asarray(lm), np.asarray(dl), dict(arch) if arch else None, source)


def read_localize(path: str | Path) -> LayerScores:
    """The per-layer scores in a `rote ssl localize` / `rote ssl demo` run folder (its results.json)."""
    p = Path(path)
    f = p / "results.json" if p.is_dir() else p
    if not f.is_file():
        raise DataError(
            f"`localize` {path}: no results.json there; pass the --out folder of `rote ssl localize` or `rote ssl demo`"
        )
    try:
        res = json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"`localize` {f}: cannot be read as JSON ({type(e).__name__}); rerun localize") from None
    if not isinstance(res, dict) or "layers" not in res:
        raise DataError(
            f"`localize` {f}: no `layers` key; pass the folder `rote ssl localize` or `rote ssl demo` wrote"
        )
    setup = res.get("setup") if isinstance(res.get("setup"), dict) else {}
    arch = setup.get("arch") if isinstance(setup.get("arch"), dict) else None
    return layer_scores(res["layers"], arch=arch, source=str(p))


def check_fits(model: nn.Module, scores: LayerScores, arch: Mapping[str, Any] | None = None) -> None:
    """DataError unless the localize result measured this encoder's architecture: its layers must be layers of
    `model` and, when both specs are known, arch / in_channels / width / image_size must agree."""
    valid = list(model.layer_names()) if hasattr(model, "layer_names") else []
    modules = {n for n, _ in model.named_modules() if n}  # localize --layers may name any submodule
    missing = [n for n in scores.names if n not in modules]
    if missing:
        raise DataError(
            f"`localize` {scores.source}: layer(s) {', '.join(missing[:3])} are not layers of the encoder (its layers: "
            f"{', '.join(valid)}); the localize run measured another architecture: pass this encoder's localize folder"
        )
    if arch and scores.arch:
        diff = [k for k in ARCH_KEYS if k in arch and k in scores.arch and arch[k] != scores.arch[k]]
        if diff:
            k = diff[0]
            raise DataError(
                f"`localize` {scores.source}: measured an encoder with {k}={scores.arch[k]!r}, this one has "
                f"{k}={arch[k]!r}; the localize run measured another architecture: pass this encoder's localize folder"
            )


def _whole(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"`{name}` must be a whole number >= {low}, got {value!r}")
    return int(value)


def choose_layers(scores: LayerScores, k: int, rule: str, *, seed: int = 0) -> list[str]:
    """The k layers `rule` fine-tunes (see the module docstring), in forward order. ConfigError when k exceeds the
    number of scored layers or the rule is unknown."""
    if rule not in RULES:
        raise ConfigError(f"`rule` must be one of {', '.join(RULES)}, got {rule!r}")
    k = _whole(k, "k", 1)
    n = len(scores.names)
    if k > n:
        raise ConfigError(f"`k` = {k} but the localize result scores {n} layer(s); pass a k between 1 and {n}")
    if rule == "none":
        return []
    if rule == "last":
        idx = np.arange(n - k, n)
    elif rule == "random":
        idx = np.random.default_rng(seed).choice(n, size=k, replace=False)
    else:
        v = scores.layermem if rule == "most" else scores.delta
        idx = np.argsort(-v, kind="stable")[:k]  # stable: equal scores keep forward order (earlier layer first)
    return [scores.names[i] for i in sorted(int(i) for i in idx)]


# ---------------------------------------------------------------------------------------------- one fine-tuning run


class _Classifier(nn.Module):
    """encoder.features(x) (B, D) -> linear head (B, classes)."""

    def __init__(self, encoder: nn.Module, head: nn.Linear):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.features(x))


class _KeepFrozenInEval:
    """Trainer callback: after the loop puts the net in train mode, the frozen part goes back to eval mode (its
    BatchNorm running statistics must not move); only the fine-tuned layers and the head train."""

    def __init__(self, net: _Classifier, layers: Sequence[str]):
        self.net, self.layers = net, list(layers)

    def on_epoch_begin(self, state: Any) -> None:
        self.net.encoder.eval()
        for name in self.layers:
            self.net.encoder.get_submodule(name).train()


@dataclasses.dataclass
class FinetuneRun:
    """One fine-tuning run: test `accuracy`, the fine-tuned `layers`, trainable parameters (layers + head), the
    per-epoch `history` and the fine-tuned `model` (encoder + head, eval mode)."""

    accuracy: float
    layers: list[str]
    trainable_params: int
    history: pd.DataFrame
    model: nn.Module
    seconds: float


def _labels(y: Any, name: str, n: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)).reshape(-1).long()
    if len(t) != n:
        raise DataError(f"`{name}` has {len(t)} labels for {n} images; give one label per image")
    if len(t) and int(t.min()) < 0:
        raise DataError(f"`{name}`: fine-tuning needs labelled images (found label {int(t.min())})")
    return t


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 256) -> float:
    """Top-1 accuracy of a classifier (eval mode) on (N, C, H, W) images and (N,) labels."""
    model.eval()
    dev = next(model.parameters()).device
    hits = 0
    for s in range(0, len(images), batch_size):
        pred = model(images[s : s + batch_size].to(dev)).argmax(1).cpu()
        hits += int((pred == labels[s : s + batch_size]).sum())
    return hits / len(images)


def finetune(
    model: nn.Module,
    layers: Sequence[str],
    train_images: torch.Tensor,
    train_labels: Any,
    test_images: torch.Tensor,
    test_labels: Any,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    augment: bool = True,
    n_classes: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Any = False,
) -> FinetuneRun:
    """Fine-tune `layers` of a copy of encoder `model` (a rote net with `features`) together with a new linear head
    on (N, C, H, W) float [0, 1] train images and (N,) int labels; everything else frozen (module docstring).
    Adam (`lr`, `weight_decay`; reference finetune.py: Adam, wd 1e-4), cross-entropy, crop + flip views when
    `augment`. The head's initial weights, the batch order and the views are fixed by `seed`. `model` is left
    untouched. Returns the test accuracy of the fine-tuned net and the net itself."""
    from rote.core.training import Trainer
    from rote.data.augment import crop_flip
    from rote.nets.common import seeded
    from rote.ssl.train import _cpu_generator

    epochs, batch_size = _whole(epochs, "epochs", 1), _whole(batch_size, "batch_size", 2)
    if not lr > 0:
        raise ConfigError(f"`lr` must be > 0, got {lr}")
    if weight_decay < 0:
        raise ConfigError(f"`weight_decay` must be >= 0, got {weight_decay}")
    xtr = check_images(train_images, name="train_images")
    xte = check_images(test_images, name="test_images", min_points=1)
    ytr, yte = _labels(train_labels, "train_labels", len(xtr)), _labels(test_labels, "test_labels", len(xte))
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"`test_images` are {tuple(xte.shape[1:])} but `train_images` {tuple(xtr.shape[1:])}")
    layers = list(layers)
    if OUTPUT in layers:
        raise ConfigError(f"`layers`: {OUTPUT!r} is the representation, not a layer with weights; name layers")
    if layers:
        check_layers(model, layers)
    n_cls = int(n_classes) if n_classes else int(max(int(ytr.max()), int(yte.max()))) + 1
    if len(torch.unique(ytr)) < 2:
        raise DataError("`train_labels`: fine-tuning needs at least two classes")
    dev = torch.device(device)
    encoder = copy.deepcopy(model).to(dev)
    encoder.requires_grad_(False)
    for name in layers:
        encoder.get_submodule(name).requires_grad_(True)
    with seeded(seed):
        head = nn.Linear(int(encoder.feature_dim), n_cls)
    net = _Classifier(encoder, head).to(dev)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    x, y = xtr.to(dev), ytr.to(dev)

    def step(idx: torch.Tensor, st: Any) -> dict:
        idx = idx.to(dev)
        xb = crop_flip(x[idx], generator=_cpu_generator(st)) if augment else x[idx]
        logits = net(xb)
        return {"loss": F.cross_entropy(logits, y[idx]), "accuracy": (logits.argmax(1) == y[idx]).float().mean()}

    t0 = time.perf_counter()
    n = len(x)
    state = Trainer(
        {"net": net},
        step,
        optimizers={"net": opt},
        data=n,
        batch_size=min(batch_size, n),
        drop_last=n > batch_size,
        epochs=epochs,
        seed=seed,
        device=dev,
        callbacks=[_KeepFrozenInEval(net, layers)],
        kind="rote.ssl.finetune",
        progress=progress,
        description="finetune",
    ).fit()
    acc = accuracy(net, xte, yte)
    return FinetuneRun(
        accuracy=acc,
        layers=layers,
        trainable_params=sum(p.numel() for p in params),
        history=pd.DataFrame(list(state.history)),
        model=net.eval(),
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------------------------- rules over seeds


@dataclasses.dataclass(frozen=True)
class FinetuneResult(Result):
    """What `rote ssl finetune` reports.

    finetune: {rule: mean test accuracy over the seeds}. intervals: {rule: 95% Student-t interval of that mean}.
    differences: {"<rule> - last": paired 95% t-interval of the per-seed accuracy difference} (same seed = same
    head initialization, batch order and views). chosen: {rule: layers} for the rules whose choice does not
    depend on the seed (random: see the `runs` table). layers: the localize scores the choice was made from.
    """

    finetune: dict[str, float]
    intervals: dict[str, dict[str, float]]
    std: dict[str, float]
    differences: dict[str, dict[str, float]]
    k: int
    rules: list[str]
    seeds: list[int]
    chosen: dict[str, list[str]]
    layers: list[dict[str, Any]]
    setup: dict[str, Any]
    runs: pd.DataFrame = table_field("runs")
    history: pd.DataFrame | None = internal_field()

    def summary(self) -> str:
        lines = [f"fine-tuning k={self.k} layer(s), {len(self.seeds)} seed(s): test accuracy (95% t-interval)"]
        for r in self.rules:
            iv = self.intervals[r]
            where = ", ".join(self.chosen[r]) if r in self.chosen else "random per seed"
            lines.append(f"  {r:<11}{iv['estimate']:.4f} [{iv['low']:.4f}, {iv['high']:.4f}]  ({where or 'head only'})")
        for name, iv in self.differences.items():
            lines.append(f"  {name}: {iv['estimate']:+.4f} [{iv['low']:+.4f}, {iv['high']:+.4f}]")
        return "\n".join(lines)


def parse_rules(rules: Sequence[str] | str) -> list[str]:
    """Rule names from "most,last" or a list; ConfigError for an unknown, repeated or missing rule."""
    items = [r.strip() for r in rules.split(",")] if isinstance(rules, str) else [str(r).strip() for r in rules]
    items = [r for r in items if r]
    if not items:
        raise ConfigError(f"`rules` is empty; give one or more of {', '.join(RULES)}")
    bad = [r for r in items if r not in RULES]
    if bad:
        raise ConfigError(f"`rules`: unknown rule {bad[0]!r}; choose from {', '.join(RULES)}")
    if len(set(items)) != len(items):
        raise ConfigError(f"`rules` repeats a rule: {','.join(items)}")
    return items


def compare_finetuning(
    model: nn.Module,
    scores: LayerScores | Sequence[Mapping[str, Any]],
    data: tuple[torch.Tensor, Any, torch.Tensor, Any],
    *,
    k: int = 2,
    rules: Sequence[str] | str = DEFAULT_RULES,
    seeds: Sequence[int] = (0, 1, 2),
    arch: Mapping[str, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    augment: bool = True,
    n_classes: int | None = None,
    device: str | torch.device = "cpu",
    setup: Mapping[str, Any] | None = None,
    progress: Any = False,
) -> FinetuneResult:
    """Fine-tune the k layers each rule chooses (from `scores`, a localize result) once per seed and compare the
    downstream test accuracies. data: (train images, train labels, test images, test labels); arch: the encoder's
    spec, checked against the one the localize run recorded. Every rule of a seed starts from the same head and
    sees the same batches, so the per-seed differences are paired."""
    from rote.core.stats import mean_std, mean_t_interval, paired_difference_interval

    if not isinstance(scores, LayerScores):
        scores = layer_scores(scores)
    rule_list = parse_rules(rules)
    seed_list = [_whole(s, "seeds", 0) for s in seeds]
    if not seed_list:
        raise ConfigError("`seeds` is empty; give at least one seed")
    if len(set(seed_list)) != len(seed_list):
        raise ConfigError(f"`seeds` repeats a seed: {seed_list}")
    check_fits(model, scores, arch)
    for r in rule_list:  # refuse a bad k before any training
        choose_layers(scores, k, r, seed=seed_list[0])
    tr_x, tr_y, te_x, te_y = data
    rows, hist = [], []
    for seed in seed_list:
        for rule in rule_list:
            layers = choose_layers(scores, k, rule, seed=seed)
            run = finetune(
                model,
                layers,
                tr_x,
                tr_y,
                te_x,
                te_y,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                weight_decay=weight_decay,
                augment=augment,
                n_classes=n_classes,
                seed=seed,
                device=device,
                progress=progress,
            )
            rows.append(
                {
                    "rule": rule,
                    "seed": seed,
                    "layers": ",".join(layers),
                    "accuracy": run.accuracy,
                    "trainable_params": run.trainable_params,
                    "final_loss": float(run.history.loss.iloc[-1]),
                    "seconds": run.seconds,
                }
            )
            hist.append(run.history.assign(rule=rule, seed=seed))
    runs = pd.DataFrame(rows)
    acc = {r: runs.loc[runs.rule == r, "accuracy"].to_numpy() for r in rule_list}
    intervals = {r: mean_t_interval(v, bounds=(0.0, 1.0)).to_dict() for r, v in acc.items()}
    diffs = {}
    if "last" in acc:
        for r in rule_list:
            if r != "last":
                diffs[f"{r} - last"] = paired_difference_interval(acc[r], acc["last"]).to_dict()
    chosen = {r: choose_layers(scores, k, r) for r in rule_list if r != "random"}
    table = [
        {"name": n, "layermem": float(a), "delta_layermem": float(b)}
        for n, a, b in zip(scores.names, scores.layermem, scores.delta)
    ]
    opts = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "augment": augment}
    return FinetuneResult(
        finetune={r: float(v.mean()) for r, v in acc.items()},
        intervals=intervals,
        std={r: mean_std(v)[1] for r, v in acc.items()},
        differences=diffs,
        k=int(k),
        rules=rule_list,
        seeds=seed_list,
        chosen=chosen,
        layers=table,
        setup={**dict(setup or {}), **opts, "n_train": len(tr_x), "n_test": len(te_x), "device": str(device)},
        runs=runs,
        history=pd.concat(hist, ignore_index=True) if hist else None,
    )
