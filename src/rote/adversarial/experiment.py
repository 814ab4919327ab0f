"""The DeMem comparison: standard training, PGD-AT, TRADES, each with DeMem, and PGD-AT with DP-SGD, each trained
as m models on random halves of one pool, evaluated by natural / PGD accuracy and leave-one-out LiRA.

`run_experiment(...)` -> `AdversarialRun`; `rote adversarial demo` is `run_experiment` with `DEMO` settings.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rote.adversarial.shadow import ModelSet, membership_design, train_models
from rote.adversarial.train import AttackConfig, DeMemConfig, DPConfig, TrainConfig
from rote.core.errors import ConfigError, DataError
from rote.core.privacy import (
    DPGuarantee,
    balanced_accuracy,
    dp_sgd_epsilon,
    feldman_memorization,
    lira_leave_one_out,
    membership_metrics,
)
from rote.core.results import Result, table_field

__all__ = [
    "AdversarialRun",
    "SingleRun",
    "DATASETS",
    "DEMO",
    "LEAKY",
    "RUNS",
    "dp_guarantee",
    "evaluate_checkpoint",
    "load_images",
    "memorization_table",
    "method_configs",
    "risk_table",
    "run_experiment",
    "train_one",
]

DATASETS = ("fashion-mnist", "mnist5k", "digits", "cifar10", "cifar100")
RUNS = ("standard", "pgd_at", "pgd_at_demem", "trades", "trades_demem", "pgd_at_dpsgd")
# trainable one at a time (`rote adversarial train`), outside the demo's comparison
EXTRA_RUNS = ("standard_demem", "standard_dpsgd", "trades_dpsgd")
CONTRACT = ("natural_acc", "robust_acc", "mia_auc", "tpr_at_0.1pct_fpr", "tpr_at_1pct_fpr")
MIA_ATTACK = "lira_online_fixed_variance"

# The CPU demo: a small CNN on 1,000 Fashion-MNIST images, 8 models per run (see docs/adversarial.md).
DEMO: dict[str, Any] = {
    "data": "fashion-mnist",
    "n_pool": 1000,
    "n_test": 500,
    "n_models": 8,
    "epochs": 20,
    "batch_size": 64,
    "lr": 3e-3,
    "width": 8,
    "hidden": 64,
    "eps": 0.1,
    "train_step_size": 0.04,
    "train_steps": 3,
    "eval_step_size": 0.025,
    "eval_steps": 10,
    "beta": 6.0,
    "demem_weight": 2.0,
    "demem_fraction": 0.1,
    "demem_risk": "drop",
    "demem_penalty": "flood",
    "demem_flood": 0.5,
    "demem_warmup": 1,
    "demem_target": "clean",
    "dp_clip": 1.0,
    "dp_noise": 0.5,
    "dp_delta": 1e-5,
    "augmentations": ["identity", "hflip"],
}

# The regime where PGD-AT leaks at low FPR on CPU (docs/adversarial.md, "DeMem where there is leakage to cut"): a
# smaller pool, a wider network trained twice as long, 16 models per run for LiRA's per-example fits. The demo's
# width-8 CNN is underfit (LiRA TPR at 0.1% FPR about 0.002, chance 0.001), which leaves DeMem nothing to cut.
# DeMem keeps the demo's settings (drop risk, 10%, flood 0.5, weight 2): checked on tuning seed 100 only, disjoint
# from the evaluation seeds 0-4 of `bench/adversarial_lira.py --regime leaky`; nothing was selected on those.
LEAKY: dict[str, Any] = {
    **DEMO,
    "n_pool": 500,
    "n_models": 16,
    "width": 16,
    "hidden": 128,
    "epochs": 40,
}


def load_images(
    data: str, n_pool: int, n_test: int, *, seed: int = 0, root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(pool_x, pool_y, test_x, test_y, classes): n_pool training images and n_test test images, float in [0, 1],
    drawn at random (seed) from `data`'s train and test splits (mnist5k and digits: disjoint parts of the one set;
    cifar10 / cifar100 are read from the user's `root`)."""
    from rote.data import image_loaders as L

    if data not in DATASETS:
        raise ConfigError(f"`data` must be one of {', '.join(DATASETS)}, got {data!r}")
    if n_pool < 10 or n_test < 1:
        raise ConfigError(f"`n_pool` must be >= 10 and `n_test` >= 1, got {n_pool} and {n_test}")
    rng = np.random.default_rng(seed)
    if data in ("cifar10", "cifar100"):
        if root is None:
            raise ConfigError(f"`root` is needed for {data}: the folder with the CIFAR python batches")
        load = L.load_cifar10 if data == "cifar10" else L.load_cifar100
        train, test = load(root, "train"), load(root, "test")
    elif data == "fashion-mnist":
        train, test = L.load_fashion_mnist("train"), L.load_fashion_mnist("test")
    else:
        whole = L.load_mnist5k() if data == "mnist5k" else L.load_digits()
        perm = rng.permutation(len(whole))
        cut = len(whole) - min(n_test, len(whole) // 2)
        train, test = whole.subset(perm[:cut]), whole.subset(perm[cut:])
    for split, ds, k in (("train", train, n_pool), ("test", test, n_test)):
        if len(ds) < k:
            raise DataError(f"{ds.source}: {split} has {len(ds)} images, fewer than the {k} asked for; ask for fewer")
    tr = train.subset(np.sort(rng.choice(len(train), n_pool, replace=False))).float()
    te = test.subset(np.sort(rng.choice(len(test), n_test, replace=False))).float()
    if tr.images.shape[-1] != tr.images.shape[-2]:
        raise DataError(f"{train.source}: images must be square, got {tuple(tr.images.shape[-2:])}")
    return tr.images.contiguous(), tr.labels, te.images.contiguous(), te.labels, tr.classes


def method_configs(options: Mapping[str, Any], runs: Sequence[str] = RUNS) -> dict[str, TrainConfig]:
    """The TrainConfig of each named run from flat options (the keys of DEMO)."""
    o = options
    train_attack = AttackConfig(o["eps"], o["train_step_size"], o["train_steps"])
    demem = DeMemConfig(
        weight=o["demem_weight"],
        fraction=o["demem_fraction"],
        risk=o["demem_risk"],
        penalty=o["demem_penalty"],
        flood=o["demem_flood"],
        warmup=o["demem_warmup"],
        target=o.get("demem_target", "clean"),
    )
    dp = DPConfig(o["dp_clip"], o["dp_noise"])
    base = {
        "epochs": o["epochs"],
        "batch_size": o["batch_size"],
        "lr": o["lr"],
        "width": o["width"],
        "hidden": o["hidden"],
        "attack": train_attack,
        "beta": o["beta"],
    }
    out: dict[str, TrainConfig] = {}
    for name in runs:
        if name not in RUNS + EXTRA_RUNS:
            raise ConfigError(f"`runs`: unknown run {name!r}; choose from {', '.join(RUNS + EXTRA_RUNS)}")
        method = name.removesuffix("_demem").removesuffix("_dpsgd")
        out[name] = TrainConfig(
            method=method,
            demem=demem if name.endswith("_demem") else None,
            dp=dp if name.endswith("_dpsgd") else None,
            **base,
        )
    return out


def dp_guarantee(config: TrainConfig, n_train: int, delta: float) -> DPGuarantee | None:
    """(epsilon, delta) of a DP-SGD TrainConfig trained on `n_train` images (None without DP or without noise):
    RDP accounting of the Poisson-subsampled Gaussian mechanism (`rote.core.privacy.dp_sgd_epsilon`, classic
    conversion) at sampling rate batch_size / n_train over epochs * ceil(n_train / batch_size) steps. rote's
    DP-SGD draws shuffled fixed-size batches, not Poisson samples, so this is the customary accounting that TF
    Privacy's and Opacus's tutorials report for such training, not a proof for shuffling."""
    if config.dp is None or config.dp.noise == 0:
        return None
    if n_train < 1:
        raise ConfigError(f"`n_train` must be >= 1 for privacy accounting, got {n_train}")
    steps = config.epochs * math.ceil(n_train / config.batch_size)
    q = min(1.0, config.batch_size / n_train)
    return dp_sgd_epsilon(q, config.dp.noise, steps, delta)


@dataclasses.dataclass(frozen=True)
class AdversarialRun(Result):
    """What `run_experiment` measured.

    runs: name -> {natural_acc, robust_acc (PGD), mia_auc, tpr_at_0.1pct_fpr, tpr_at_1pct_fpr}: accuracies are
        means over the m models on the test images; the MIA numbers are leave-one-out LiRA (`mia_attack`) over
        all m * n (model, pool example) pairs. details: name -> std of the accuracies over models, the AUC's
        DeLong interval, bootstrap intervals of the TPRs, balanced accuracy, pairs scored and excluded.
    dp: name -> (epsilon, delta) of each DP-SGD run's models (`dp_guarantee`).
    models: one row per (run, model); risk_bins: accuracy of each run by risk quartile, under two risk scores (see
    `risk_table`); memorization: Feldman's estimate per (run, pool example) (see `memorization_table`).
    """

    runs: dict[str, dict[str, float]]
    mia_attack: str
    details: dict[str, dict[str, Any]]
    data: dict[str, Any]
    n_models: int
    seconds: float
    messages: list[str]
    dp: dict[str, dict[str, Any]]
    models: pd.DataFrame = table_field("models")
    risk_bins: pd.DataFrame = table_field("risk_bins")
    memorization: pd.DataFrame = table_field("memorization")

    def summary(self) -> str:
        lines = [
            f"{'run':<14} natural  robust  MIA AUC  TPR@0.1%  TPR@1%   ({self.mia_attack}, {self.n_models} models)"
        ]
        for name, r in self.runs.items():
            lines.append(
                f"{name:<14} {r['natural_acc']:.3f}    {r['robust_acc']:.3f}   {r['mia_auc']:.3f}    "
                f"{r['tpr_at_0.1pct_fpr']:.4f}    {r['tpr_at_1pct_fpr']:.4f}"
            )
        for name, g in self.dp.items():
            lines.append(
                f"{name}: ({g['epsilon']:.3g}, {g['delta']:g})-DP (RDP accounting, {g['conversion']} conversion)"
            )
        return "\n".join(lines + self.messages)


RISK_SCORES = ("train_loss", "feldman")


def _mean_over_in(risk: np.ndarray) -> np.ndarray:
    """(m, n) risk, NaN where the model did not train on the example -> (n,) mean over IN models (NaN if none)."""
    inn = ~np.isnan(risk)
    k = inn.sum(axis=0)
    return np.where(k > 0, np.where(inn, risk, 0.0).sum(axis=0) / np.maximum(k, 1), np.nan)


_BIN_LABELS = ["q1 (lowest risk)", "q2", "q3", "q4 (highest risk)"]
# Feldman estimates from m models are multiples of 2/m and mostly tie at 0 (an image every model gets right, or
# none), so quartiles collapse; fixed bins of the estimate instead
_FELDMAN_BINS = ["mem < 0", "mem = 0", "0 < mem < 0.5", "mem >= 0.5"]


def _feldman_bin(mem: np.ndarray) -> np.ndarray:
    b = np.full(len(mem), -1)
    b[mem < 0] = 0
    b[mem == 0] = 1
    b[(mem > 0) & (mem < 0.5)] = 2
    b[mem >= 0.5] = 3
    return b


def risk_table(sets: Mapping[str, ModelSet], reference: str) -> pd.DataFrame:
    """Accuracy of every run on the pool examples, by bins of a per-example risk score of the `reference` run.

    Two risk scores (column `risk`): "train_loss", example i's mean clean training loss over the epochs of the
    reference run's models that trained on it (DeMem's trajectory risk), in quartiles; and "feldman", Feldman's
    memorization estimate of i from the reference run's models (`rote.core.privacy.feldman_memorization`: accuracy
    of the models that trained on i minus that of those that did not), in the fixed bins mem < 0, mem = 0,
    0 < mem < 0.5, mem >= 0.5 (the estimate moves in steps of 2/m and mostly ties at 0, so quartiles collapse;
    empty bins are left out, `n` counts each bin). Per bin and run:
    train_acc (mean correctness under the models that trained on i), heldout_acc (under those that did not) and
    memorization = train_acc - heldout_acc. For the reference run itself, Feldman bins select on the same
    held-out correctness they then report, so its heldout_acc by Feldman bin is biased (low in high bins by
    construction); the other runs' models are independent of the binning."""
    ref = sets[reference]
    ref_in = ~np.isnan(ref.risk)
    scores = {
        "train_loss": _mean_over_in(ref.risk),
        "feldman": feldman_memorization(ref.correct.astype(bool), ref_in).memorization,
    }
    per_run = {name: feldman_memorization(s.correct.astype(bool), ~np.isnan(s.risk)) for name, s in sets.items()}
    rows = []
    for score, risk in scores.items():
        valid = ~np.isnan(risk)
        if not valid.any():
            continue
        if score == "feldman":
            bins, labels = _feldman_bin(risk), _FELDMAN_BINS
        else:
            edges = np.quantile(risk[valid], [0.25, 0.5, 0.75])
            bins, labels = np.where(valid, np.searchsorted(edges, risk, side="right"), -1), _BIN_LABELS
        for name, fe in per_run.items():
            for b, lab in enumerate(labels):
                sel = bins == b
                if not sel.any():
                    continue
                tr, ho = _nanmean(fe.p_in[sel]), _nanmean(fe.p_out[sel])
                rows.append(
                    {
                        "risk": score,
                        "run": name,
                        "bin": lab,
                        "n": int(sel.sum()),
                        "risk_mean": float(risk[sel].mean()),
                        "risk_low": float(risk[sel].min()),
                        "risk_high": float(risk[sel].max()),
                        "train_acc": float(tr),
                        "heldout_acc": float(ho),
                        "memorization": float(tr - ho),
                    }
                )
    return pd.DataFrame(rows)


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else math.nan


def memorization_table(sets: Mapping[str, ModelSet], *, level: float = 0.95) -> pd.DataFrame:
    """Feldman's memorization estimate of every pool example under every run, from the run's own models (no
    extra training): one row per (run, example) with the estimate, its Newcombe interval at `level`, the IN / OUT
    model counts and the mean clean training loss (DeMem's trajectory risk) over the IN models."""
    frames = []
    for name, s in sets.items():
        inn = ~np.isnan(s.risk)
        fe = feldman_memorization(s.correct.astype(bool), inn, level=level)
        frames.append(
            pd.DataFrame(
                {
                    "run": name,
                    "example": np.arange(s.correct.shape[1]),
                    "memorization": fe.memorization,
                    "low": fe.low,
                    "high": fe.high,
                    "p_in": fe.p_in,
                    "p_out": fe.p_out,
                    "n_in": fe.n_in,
                    "n_out": fe.n_out,
                    "train_loss": _mean_over_in(s.risk),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def score_run(s: ModelSet, *, n_boot: int = 200, seed: int = 0) -> tuple[dict[str, float], dict[str, Any], str]:
    """The contract's numbers and the details of one run's model set (leave-one-out online LiRA, fixed variance)."""
    mask = ~np.isnan(s.risk)
    scores, labels, bad, msg = lira_leave_one_out(s.stats, mask, online=True, fix_variance=True, min_models=1)
    m = membership_metrics(scores, labels, fprs=(0.001, 0.01), n_boot=n_boot, seed=seed)
    main = {
        "natural_acc": float(s.natural.mean()),
        "robust_acc": float(s.robust.mean()),
        "mia_auc": float(m.auc),
        "tpr_at_0.1pct_fpr": float(m.tpr_at[0.001]),
        "tpr_at_1pct_fpr": float(m.tpr_at[0.01]),
    }
    details = {
        "natural_acc_std": float(s.natural.std(ddof=1)) if len(s.natural) > 1 else 0.0,
        "robust_acc_std": float(s.robust.std(ddof=1)) if len(s.robust) > 1 else 0.0,
        "balanced_acc": balanced_accuracy(scores, labels),
        "membership": m.to_dict(),
        "n_pairs": int(len(scores)),
        "n_excluded": int(bad),
        "train_seconds_mean": float(s.seconds.mean()),
    }
    return main, details, msg


def run_experiment(
    options: Mapping[str, Any],
    out_dir: str | Path,
    *,
    runs: Sequence[str] = RUNS,
    seed: int = 0,
    root: str | Path | None = None,
    workers: int = 2,
    ray: str | None = None,
    device: str = "cpu",
    quiet: bool = False,
    n_boot: int = 200,
) -> AdversarialRun:
    """Train `options["n_models"]` models of each run in `runs` (parallel processes, or Ray with `ray`) and score
    them. Work files go to out_dir/grid (points are reused when the same command is run again)."""
    t0 = time.perf_counter()
    o = dict(options)
    configs = method_configs(o, runs)
    eval_attack = AttackConfig(o["eps"], o["eval_step_size"], o["eval_steps"])
    n_models = int(o["n_models"])
    mask = membership_design(int(o["n_pool"]), n_models, seed)
    px, py, tx, ty, classes = load_images(o["data"], int(o["n_pool"]), int(o["n_test"]), seed=seed, root=root)
    out = Path(out_dir)
    (out / "grid").mkdir(parents=True, exist_ok=True)
    data_path = out / "grid" / "data.npz"
    np.savez(
        data_path,
        pool_x=px.numpy(),
        pool_y=py.numpy(),
        test_x=tx.numpy(),
        test_y=ty.numpy(),
        mask=mask,
        n_classes=len(classes),
    )
    sets = train_models(
        {k: c.to_dict() for k, c in configs.items()},
        data_path,
        n_models,
        out / "grid",
        seed=seed,
        eval_attack=dataclasses.asdict(eval_attack),
        augmentations=tuple(o["augmentations"]),
        workers=workers,
        ray=ray,
        device=device,
        quiet=quiet,
    )
    results, details, messages, rows = {}, {}, [], []
    for name, s in sets.items():
        results[name], details[name], msg = score_run(s, n_boot=n_boot, seed=seed)
        if msg:
            messages.append(f"{name}: {msg}")
        for k in range(n_models):
            rows.append(
                {
                    "run": name,
                    "model": k,
                    "natural_acc": float(s.natural[k]),
                    "robust_acc": float(s.robust[k]),
                    "seconds": float(s.seconds[k]),
                }
            )
    reference = "pgd_at" if "pgd_at" in sets else next(iter(sets))
    dp: dict[str, dict[str, Any]] = {}
    for name, cfg in configs.items():
        # each model trains on its own IN half (sizes differ a little): report the largest epsilon over models
        sizes = sorted({int(k) for k in mask.sum(axis=1)})
        gs = [dp_guarantee(cfg, k, float(o.get("dp_delta", 1e-5))) for k in sizes]
        if gs and gs[0] is not None:
            worst = max(gs, key=lambda g: g.epsilon)
            dp[name] = {**worst.to_dict(), "n_train_min": sizes[0], "n_train_max": sizes[-1]}
            details[name]["dp"] = dp[name]
    memo = memorization_table(sets)
    for name, s in sets.items():
        fe = feldman_memorization(s.correct.astype(bool), ~np.isnan(s.risk))
        details[name]["feldman_mean"] = float(np.nanmean(fe.memorization)) if fe.included.any() else math.nan
        details[name]["feldman_excluded"] = fe.n_excluded
        if fe.message:
            messages.append(f"{name}: {fe.message}")
    data_info = {
        "source": o["data"],
        "n_pool": int(o["n_pool"]),
        "n_test": int(o["n_test"]),
        "classes": list(classes),
        "image_shape": list(px.shape[1:]),
        "risk_reference": reference,
    }
    return AdversarialRun(
        runs=results,
        mia_attack=MIA_ATTACK,
        details=details,
        data=data_info,
        n_models=n_models,
        seconds=time.perf_counter() - t0,
        messages=messages,
        dp=dp,
        models=pd.DataFrame(rows),
        risk_bins=risk_table(sets, reference),
        memorization=memo,
    )


# ---------------------------------------------------------------------------------------------- one model


@dataclasses.dataclass(frozen=True)
class SingleRun(Result):
    """One trained (or re-evaluated) model: test accuracy natural and under PGD, and the threshold attacks that
    need no shadow models (loss, confidence, modified entropy; members = its training images, non-members = the
    test images). samples: one row per training image (risk, final clean loss, DeMem's high-risk flag). dp: the
    (epsilon, delta) of a DP-SGD model (`dp_guarantee`), None otherwise."""

    run: str
    natural_acc: float
    robust_acc: float
    attack: dict[str, Any]
    membership: dict[str, dict[str, Any]]
    data: dict[str, Any]
    history: list[dict]
    seconds: float
    checkpoint: str
    samples: pd.DataFrame = table_field("samples")
    dp: dict[str, Any] | None = None

    def summary(self) -> str:
        lines = [f"{self.run}: natural accuracy {self.natural_acc:.3f}, PGD accuracy {self.robust_acc:.3f}"]
        for k, m in self.membership.items():
            lines.append(f"  {k} attack: AUC {m['auc']:.3f}, TPR at 1% FPR {m['tpr_at_0.01_fpr']:.3f}")
        if self.dp:
            lines.append(f"  DP-SGD: ({self.dp['epsilon']:.3g}, {self.dp['delta']:g})-DP (RDP accounting)")
        return "\n".join(lines)


def _dp_dict(config: TrainConfig, n_train: int, options: Mapping[str, Any]) -> dict[str, Any] | None:
    g = dp_guarantee(config, n_train, float(options.get("dp_delta", 1e-5)))
    return None if g is None else g.to_dict()


def _threshold_attacks(model: Any, px: torch.Tensor, py: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> dict:
    from rote.adversarial.evaluate import logits
    from rote.core.privacy import confidence_score, entropy_score, loss_attack_score

    x, y = torch.cat([px, tx]), torch.cat([py, ty])
    member = np.r_[np.ones(len(px)), np.zeros(len(tx))]
    p = torch.softmax(logits(model, x), 1).double().numpy()
    out = {}
    for name, fn in (("loss", loss_attack_score), ("confidence", confidence_score), ("entropy", entropy_score)):
        out[name] = membership_metrics(fn(p, y.numpy()), member, fprs=(0.001, 0.01)).to_dict()
    return out


def train_one(
    options: Mapping[str, Any],
    run: str,
    *,
    seed: int = 0,
    root: str | Path | None = None,
    device: str = "cpu",
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> SingleRun:
    """Train one model of `run` (a name in RUNS) on options["n_pool"] training images and evaluate it on
    options["n_test"] test images (options: the keys of DEMO)."""
    from rote.adversarial.evaluate import accuracy, logits
    from rote.adversarial.train import train_classifier

    t0 = time.perf_counter()
    config = method_configs(options, [run])[run]
    eval_attack = AttackConfig(options["eps"], options["eval_step_size"], options["eval_steps"])
    px, py, tx, ty, classes = load_images(
        options["data"], int(options["n_pool"]), int(options["n_test"]), seed=seed, root=root
    )
    tm = train_classifier(
        px,
        py,
        config,
        num_classes=len(classes),
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
    )
    nat = accuracy(tm.model, tx, ty, seed=seed)
    rob = accuracy(tm.model, tx, ty, attack=eval_attack, seed=seed)
    final_loss = torch.nn.functional.cross_entropy(logits(tm.model, px), py, reduction="none").numpy()
    k = max(1, int(round(config.demem.fraction * len(py)))) if config.demem else 0
    high = np.zeros(len(py), bool)
    if k:
        high[np.argsort(-tm.risk, kind="stable")[:k]] = True
    samples = pd.DataFrame(
        {
            "index": np.arange(len(py)),
            "label": py.numpy(),
            "risk": tm.risk,
            "final_clean_loss": final_loss,
            "high_risk": high,
        }
    )
    from rote.core.checkpoints import latest_checkpoint

    ck = latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    return SingleRun(
        run=run,
        natural_acc=nat,
        robust_acc=rob,
        attack=dataclasses.asdict(eval_attack),
        membership=_threshold_attacks(tm.model, px, py, tx, ty),
        data={"source": options["data"], "n_train": len(py), "n_test": len(ty), "classes": list(classes)},
        history=tm.history,
        seconds=time.perf_counter() - t0,
        checkpoint=str(ck) if ck is not None else "",
        samples=samples,
        dp=_dp_dict(config, len(py), options),
    )


def evaluate_checkpoint(
    run_dir: str | Path,
    *,
    eps: float | None = None,
    step_size: float | None = None,
    steps: int | None = None,
    norm: str = "linf",
    device: str = "cpu",
    root: str | Path | None = None,
) -> SingleRun:
    """Re-evaluate the model a `rote adversarial train` run folder holds (its newest checkpoint), on the same
    data, under another PGD budget (None: the run's own)."""
    from rote.adversarial.evaluate import accuracy
    from rote.adversarial.train import build_model
    from rote.core.checkpoints import latest_checkpoint, load_checkpoint
    from rote.core.device import resolve_device
    from rote.core.runs import read_json

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise DataError(f"`run` {run_dir}: no config.json; give the folder of a `rote adversarial train` run")
    cfg = read_json(cfg_path)
    if cfg.get("command") != "rote adversarial train":
        raise DataError(f"`run` {run_dir}: holds a {cfg.get('command')!r} run, not `rote adversarial train`")
    o = cfg["options"]
    ck_path = latest_checkpoint(run_dir / "checkpoints")
    if ck_path is None:
        raise DataError(f"`run` {run_dir}: no checkpoint in {run_dir / 'checkpoints'}; train the model first")
    ck = load_checkpoint(ck_path, "rote.adversarial", map_location="cpu")
    config = TrainConfig.from_dict(ck["meta"]["config"])
    n_classes = int(ck["meta"]["num_classes"])
    seed = int(cfg.get("seed") or 0)
    px, py, tx, ty, classes = load_images(
        o["data"], int(o["n_pool"]), int(o["n_test"]), seed=seed, root=root if root is not None else o.get("root")
    )
    if len(classes) != n_classes:
        raise DataError(
            f"`run` {run_dir}: the model has {n_classes} classes but {o['data']} has {len(classes)}; the label "
            "spaces do not match"
        )
    model = build_model(px.shape[1], n_classes, px.shape[-1], config, seed)
    model.load_state_dict(ck["modules"]["model"])
    model.to(resolve_device(device)).eval()
    a = AttackConfig(
        o["eps"] if eps is None else eps,
        o["eval_step_size"] if step_size is None else step_size,
        o["eval_steps"] if steps is None else steps,
        norm,
    )
    return SingleRun(
        run=str(o.get("run", config.name)),
        natural_acc=accuracy(model, tx, ty, seed=seed),
        robust_acc=accuracy(model, tx, ty, attack=a, seed=seed),
        attack=dataclasses.asdict(a),
        membership=_threshold_attacks(model, px, py, tx, ty),
        data={"source": o["data"], "n_train": len(py), "n_test": len(ty), "classes": list(classes)},
        history=list(ck.get("history") or []),
        seconds=time.perf_counter() - t0,
        checkpoint=str(ck_path),
        samples=pd.DataFrame({"index": np.arange(len(py)), "label": py.numpy()}),
        dp=_dp_dict(config, len(py), o),
    )
