"""End-to-end runs: held-out predictions, the MAT shift, and every method trained and scored on one dataset.

`compare_methods(splits, ...)` is what `rote spurious train` and `rote spurious demo` call; `run_linear_toy` is the
paper's interpretable experiment (`rote spurious toy`); `run_regression_toy` the good / bad / ugly toy. Each
returns a `SpuriousResult` whose `methods` maps each method to its test `avg_acc`, `worst_group_acc` and
`per_group_acc`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from rote.core.errors import ConfigError
from rote.core.results import Result, internal_field, table_field
from rote.spurious.data import GroupedData, Splits, linear_toy, regression_target, regression_toy
from rote.spurious.heldout import HeldOut, inferred_groups, kfold_heldout, select_by_flip_rate, xrm_twins
from rote.spurious.mat import _check_temperature, mat_shift
from rote.spurious.metrics import group_accuracy, heldin_heldout
from rote.spurious.train import GROUP_METHODS, METHODS, check_validation_groups, train_classifier

__all__ = [
    "SpuriousResult",
    "RegressionResult",
    "compare_methods",
    "run_linear_toy",
    "run_regression_toy",
    "TrainConfig",
    "HELDOUT",
    "GROUP_SOURCES",
    "SELECT_BY",
]

HELDOUT = ("xrm", "kfold")
GROUP_SOURCES = ("oracle", "inferred")  # where gb_erm / groupdro get training groups
SELECT_BY = ("oracle", "inferred", "last")  # validation worst-group accuracy with true / inferred groups, or none


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the twins / folds and the final classifiers."""

    hidden: tuple[int, ...] = (256, 256)
    bias: bool = True
    epochs: int = 20
    heldout_epochs: int | None = None  # None: `epochs`
    batch_size: int | None = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    twin_lrs: tuple[float, ...] | None = None  # several: one XRM run each, the highest flip rate kept
    weight_decay: float = 0.0
    momentum: float = 0.0
    dro_step_size: float = 0.01

    def common(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "bias": self.bias,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
        }


@dataclasses.dataclass(frozen=True)
class SpuriousResult(Result):
    """Methods compared on one dataset with a spurious feature.

    methods: {method: {"avg_acc", "worst_group_acc", "per_group_acc": {group: acc}}} on the test split.
    val: the same on validation. memorization: {method: held-in (train) versus held-out (test) accuracy per group,
    "minority_gap" and "majority_gap"}. heldout: the held-out predictor (source, flip rate, its accuracy per
    training group). weights: linear models only, {method: {"core", "spurious", "noise_norm"}} of the decision
    direction w = W[:, 1] - W[:, 0]. minority: the groups whose attribute disagrees with the class.
    """

    data: dict
    methods: dict
    val: dict
    memorization: dict
    heldout: dict
    weights: dict
    minority: list
    best_epoch: dict
    temperature: float
    seed: int
    seconds: float
    groups: pd.DataFrame = table_field("groups")
    samples: pd.DataFrame = table_field("samples")
    histories: pd.DataFrame = table_field("history")
    extra: Any = internal_field()

    def summary(self) -> str:
        lines = [f"{'method':<14}{'avg acc':>9}{'worst group':>13}{'minority gap':>14}"]
        for m, r in self.methods.items():
            gap = self.memorization.get(m, {}).get("minority_gap", float("nan"))
            lines.append(f"{m:<14}{r['avg_acc']:>9.3f}{r['worst_group_acc']:>13.3f}{gap:>14.3f}")
        return "\n".join(lines)


def _metrics(data: GroupedData, pred: torch.Tensor) -> dict[str, Any]:
    return group_accuracy(data.y, pred, groups=data.groups, group_names=data.group_names())


def _public(m: dict[str, Any]) -> dict[str, Any]:
    return {"avg_acc": m["avg_acc"], "worst_group_acc": m["worst_group_acc"], "per_group_acc": m["per_group_acc"]}


def minority_groups(data: GroupedData) -> list[str]:
    """Groups whose attribute value differs from the class index (for 2 classes x 2 attributes aligned with the
    class: the groups where the spurious feature points to the other class)."""
    names = data.group_names()
    return [names[yy * data.n_attrs + aa] for yy in range(data.n_classes) for aa in range(data.n_attrs) if yy != aa]


def heldout_predictions(
    splits: Splits, *, source: str, config: TrainConfig, folds: int, seed: int, device: str, progress: Any = False
) -> HeldOut:
    """XRM twins (several learning rates: the run with the highest flip rate) or k-fold held-out logits."""
    if source not in HELDOUT:
        raise ConfigError(f"`heldout` must be one of {', '.join(HELDOUT)}, got {source!r}")
    epochs = config.heldout_epochs or config.epochs
    kw = dict(
        val=splits.val, test=splits.test, epochs=epochs, seed=seed, device=device, progress=progress, **config.common()
    )
    if source == "kfold":
        return kfold_heldout(splits.train, k=folds, lr=config.lr, **kw)
    runs = [xrm_twins(splits.train, lr=lr, **kw) for lr in (config.twin_lrs or (config.lr,))]
    return select_by_flip_rate(runs)


def compare_methods(
    splits: Splits,
    *,
    methods: Sequence[str] = ("erm", "mat", "groupdro"),
    heldout: str = "xrm",
    folds: int = 5,
    temperature: float = 0.1,
    train_groups: str = "oracle",
    select: str = "oracle",
    config: TrainConfig = TrainConfig(),
    seed: int = 0,
    device: str = "cpu",
    progress: Any = False,
    precomputed: HeldOut | None = None,
) -> SpuriousResult:
    """Held-out predictions (when MAT or inferred groups need them), then each method trained on `splits.train`,
    selected on `splits.val` and scored on `splits.test`.

    train_groups: the groups gb_erm / groupdro train with: "oracle" (true (y, a)) or "inferred" (XRM's
    (y, held-out correct); groupdro then is XRM + GroupDRO). select: validation worst-group accuracy with
    "oracle" or "inferred" groups, or "last" (final epoch).
    """
    t0 = time.perf_counter()
    methods = list(dict.fromkeys(methods))
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"`methods` must be among {', '.join(METHODS)}, got {m!r}")
    if not methods:
        raise ConfigError("`methods` is empty; name at least one of " + ", ".join(METHODS))
    _check_temperature(temperature)
    if train_groups not in GROUP_SOURCES:
        raise ConfigError(f"`train_groups` must be one of {', '.join(GROUP_SOURCES)}, got {train_groups!r}")
    if select not in SELECT_BY:
        raise ConfigError(f"`select` must be one of {', '.join(SELECT_BY)}, got {select!r}")
    tr, va, te = splits.train, splits.val, splits.test
    if select == "oracle":
        check_validation_groups(tr, va)
    need_ho = (
        "mat" in methods
        or select == "inferred"
        or (train_groups == "inferred" and any(m in GROUP_METHODS for m in methods))
    )
    ho = precomputed
    if need_ho and ho is None:
        ho = heldout_predictions(
            splits, source=heldout, config=config, folds=folds, seed=seed, device=device, progress=progress
        )
    shift = mat_shift(ho.train_logits, tr.y, temperature, tr.n_classes) if ho is not None else None
    val_groups = {"oracle": va.groups, "last": None}.get(select)
    if select == "inferred":
        val_groups = inferred_groups(ho.val_logits, va.y)
    tgroups = (
        tr.groups if train_groups == "oracle" else (inferred_groups(ho.train_logits, tr.y) if ho is not None else None)
    )
    results, vals, mem, weights, best, hist = {}, {}, {}, {}, {}, []
    rows = []
    minority = minority_groups(tr)
    samples = pd.DataFrame(
        {
            "id": tr.ids.cpu().numpy(),
            "label": tr.y.cpu().numpy(),
            "attr": tr.a.cpu().numpy(),
            "group": [tr.group_names()[i] for i in tr.groups.cpu().numpy()],
        }
    )
    if ho is not None:
        samples["heldout_pred"] = ho.train_logits.argmax(1).numpy()
        samples["shift_label"] = shift[torch.arange(len(tr)), tr.y].numpy()
    for m in methods:
        model = train_classifier(
            m,
            tr,
            val=va,
            shift=shift if m == "mat" else None,
            groups=tgroups if m in GROUP_METHODS else None,
            select="last" if select == "last" else "val",
            val_groups=val_groups,
            epochs=config.epochs,
            lr=config.lr,
            dro_step_size=config.dro_step_size,
            seed=seed,
            device=device,
            progress=progress,
            **config.common(),
        )
        per_split = {name: _metrics(d, model.predict(d.x)) for name, d in (("train", tr), ("val", va), ("test", te))}
        results[m], vals[m] = _public(per_split["test"]), _public(per_split["val"])
        mem[m] = heldin_heldout(per_split["train"], per_split["test"], minority)
        best[m] = model.best_epoch
        for split, r in per_split.items():
            for gname, acc in r["per_group_acc"].items():
                rows.append(
                    {
                        "method": m,
                        "split": split,
                        "group": gname,
                        "n": r["group_sizes"][gname],
                        "acc": acc,
                        "minority": gname in minority,
                    }
                )
        if not config.hidden and tr.n_classes == 2:
            w = model.model.weight_vector()[0].cpu().numpy()
            weights[m] = {
                "core": float(w[0]),
                "spurious": float(w[1]),
                "noise_norm": float(np.linalg.norm(w[2:])) if len(w) > 2 else 0.0,
            }
        samples[f"loss_{m}"] = model.per_sample_loss
        samples[f"train_pred_{m}"] = model.predict(tr.x).numpy()
        hist += [{"method": m, **{k: v for k, v in h.items() if isinstance(v, (int, float))}} for h in model.history]
    ho_info: dict[str, Any] = {}
    if ho is not None:
        ho_acc = _metrics(tr, ho.train_logits.argmax(1))
        ho_info = {
            "source": ho.method,
            "k": ho.k,
            "flip_rate": ho.flip_rate,
            "heldout_acc": ho.heldout_acc,
            "heldin_acc": ho.heldin_acc,
            "per_group_heldout_acc": ho_acc["per_group_acc"],
            "config": ho.config,
        }
    return SpuriousResult(
        data=dict(splits.info),
        methods=results,
        val=vals,
        memorization=mem,
        heldout=ho_info,
        weights=weights,
        minority=minority,
        best_epoch=best,
        temperature=temperature,
        seed=seed,
        seconds=time.perf_counter() - t0,
        groups=pd.DataFrame(rows),
        samples=samples,
        histories=pd.DataFrame(hist),
        extra={"heldout": ho},
    )


def run_linear_toy(
    *,
    n: int = 1000,
    d: int = 1800,
    agreement: float = 0.9,
    noise: float = 0.5,
    epochs: int = 1000,
    lr: float = 1e-2,
    lr_no_noise: float = 3e-2,
    temperature: float = 0.1,
    seed: int = 0,
    methods: Sequence[str] = ("erm", "mat", "groupdro"),
    device: str = "cpu",
    progress: Any = False,
) -> SpuriousResult:
    """The paper's interpretable experiment: bias-free linear model, full-batch SGD without momentum, `epochs`
    epochs; ERM, MAT (XRM twins on the same data and settings, shift over the full training set) and GroupDRO on
    the data with noise dimensions, plus `erm_no_noise` (ERM on the same data with noise = 0, lr `lr_no_noise`).
    Selection: last epoch (as the paper)."""
    cfg = TrainConfig(hidden=(), bias=False, epochs=epochs, batch_size=None, optimizer="sgd", lr=lr)
    splits = linear_toy(n, d, agreement=agreement, noise=noise, seed=seed)
    res = compare_methods(
        splits,
        methods=methods,
        temperature=temperature,
        select="last",
        config=cfg,
        seed=seed,
        device=device,
        progress=progress,
    )
    # noise = 0: the same draws with all-zero noise columns, which carry no signal and get no gradient; they are
    # dropped (d = 2), which changes only the initial weight scale (fan-in 2 instead of d).
    clean = linear_toy(n, d, agreement=agreement, noise=0.0, seed=seed)
    clean = Splits(
        *(dataclasses.replace(s, x=s.x[:, :2].contiguous()) for s in (clean.train, clean.val, clean.test)),
        info={**clean.info, "d": 2},
    )
    cfg0 = dataclasses.replace(cfg, lr=lr_no_noise)
    res0 = compare_methods(
        clean, methods=("erm",), select="last", config=cfg0, seed=seed, device=device, progress=progress
    )
    ren = lambda dct: {**dct, "erm_no_noise": dct0["erm"]}  # noqa: E731
    merged = {}
    for key in ("methods", "val", "memorization", "weights", "best_epoch"):
        dct, dct0 = getattr(res, key), getattr(res0, key)
        merged[key] = ren(dct)
    g0 = res0.groups.assign(method="erm_no_noise")
    h0 = res0.histories.assign(method="erm_no_noise")
    samples = res.samples.assign(
        loss_erm_no_noise=res0.samples["loss_erm"].to_numpy(),
        train_pred_erm_no_noise=res0.samples["train_pred_erm"].to_numpy(),
    )
    data = {**res.data, "lr": lr, "lr_no_noise": lr_no_noise, "epochs": epochs}
    return dataclasses.replace(
        res,
        data=data,
        groups=pd.concat([res.groups, g0], ignore_index=True),
        histories=pd.concat([res.histories, h0], ignore_index=True),
        samples=samples,
        seconds=res.seconds + res0.seconds,
        **merged,
    )


# ---------------------------------------------------------------------------------------------- regression toy


@dataclasses.dataclass(frozen=True)
class RegressionResult(Result):
    """The good / bad / ugly memorization toy: per setting (input noise sigma), the training MSE, the test MSE
    against the noise-free function, and the steps taken. curves: the fitted function on the test grid."""

    settings: dict
    steps: int
    seed: int
    seconds: float
    curves: pd.DataFrame = table_field("curves")

    def summary(self) -> str:
        lines = [f"{'setting':<8}{'sigma':>9}{'train MSE':>12}{'test MSE':>12}"]
        for k, v in self.settings.items():
            lines.append(f"{k:<8}{v['input_noise']:>9.0e}{v['train_mse']:>12.2e}{v['test_mse']:>12.2e}")
        return "\n".join(lines)


REGRESSION_SETTINGS = {"good": 1e-4, "bad": 1e-3, "ugly": 0.0}


def run_regression_toy(
    *,
    steps: int = 20000,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    tol: float = 1e-6,
    settings: dict[str, float] | None = None,
) -> RegressionResult:
    """Fig. 3 of the paper: an MLP [31 -> 300 -> 300 -> 1] (tanh, Adam) fit to 20 noisy samples of
    tanh(x) + 0.5 tanh(-5x) with 30 extra input dimensions of N(0, sigma^2) noise, until the training MSE is below
    `tol` or `steps` full-batch steps (the paper allows 1e5)."""
    from rote.core.training import Trainer
    from rote.spurious.heldout import make_optimizer
    from rote.spurious.models import StackedMLP

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"`steps` must be a whole number >= 1, got {steps}")
    t0 = time.perf_counter()
    dev = torch.device(device)
    out, curves = {}, []
    for name, sigma in (settings or REGRESSION_SETTINGS).items():
        data = regression_toy(input_noise=sigma, seed=seed)
        x, y = data["x_train"].to(dev), data["y_train"].to(dev)
        net = StackedMLP(x.shape[1], (300, 300), 1, k=1, activation="tanh", seed=seed)
        opt = make_optimizer(net.parameters(), "adam", lr)

        def step(batch: Any, st: Any, net=net, x=x, y=y) -> dict:
            loss = ((net(x)[0, :, 0] - y) ** 2).mean()
            if float(loss.detach()) < tol:
                st.request_stop()
            return {"loss": loss}

        state = Trainer({"net": net}, step, optimizers={"net": opt}, steps=steps, seed=seed, device=dev).fit()
        with torch.no_grad():
            train_mse = float(((net(x)[0, :, 0] - y) ** 2).mean())
            fit = net(data["x_test"].to(dev))[0, :, 0].cpu()
            test_mse = float(((fit - data["y_test"]) ** 2).mean())
            clean = regression_target(data["x_train"][:, 0])
            fit_train_clean = float(((net(x)[0, :, 0].cpu() - clean) ** 2).mean())
        out[name] = {
            "input_noise": sigma,
            "train_mse": train_mse,
            "test_mse": test_mse,
            "train_mse_vs_clean": fit_train_clean,
            "steps": int(state.step),
        }
        curves.append(
            pd.DataFrame(
                {
                    "setting": name,
                    "x": data["x_test"][:, 0].numpy(),
                    "fit": fit.numpy(),
                    "truth": data["y_test"].numpy(),
                }
            )
        )
    return RegressionResult(
        settings=out,
        steps=steps,
        seed=seed,
        seconds=time.perf_counter() - t0,
        curves=pd.concat(curves, ignore_index=True),
    )
