"""The `rote ssl` pipelines: load data, train f and g on the split protocol, localize memorization, prune.

`localize(f, g, candidates, ...)` is the analysis every command shares: LayerMem and delta-LayerMem of every layer,
UnitMem of f's units (and ClassMem when labels are given), the top/bottom/random breakdown, the consistency between
layers and the UnitMem-SSLMem t-test, in one `SSLResult`. `run_demo` is the small end-to-end experiment of
`rote ssl demo` (a narrow ResNet9 on a Fashion-MNIST subset, minutes on 2 CPU cores).
"""

from __future__ import annotations

import dataclasses
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
from rote.data.images import ImageDataset
from rote.ssl.finetune import compare_finetuning
from rote.ssl.prune import pruning_curve
from rote.ssl.scores import (
    OUTPUT,
    breakdown,
    check_layers,
    classmem,
    layer_consistency,
    layermem,
    unitmem,
    unitmem_sslmem_ttest,
)
from rote.ssl.train import build_encoder, make_splits, train_simclr, train_supervised

__all__ = ["DATASETS", "load_data", "SSLResult", "localize", "run_demo", "DEMO", "downstream_data"]

DATASETS = ("fashion-mnist", "mnist-5k", "digits", "cifar10", "cifar100", "svhn", "stl10", "folder")


def load_data(name: str, root: str | Path | None = None, split: str = "train") -> ImageDataset:
    """An `ImageDataset` by name: the offline ones (fashion-mnist, mnist-5k, digits) or a user's files (cifar10,
    cifar100, svhn, stl10 in their standard formats, or an image folder) under `root`."""
    from rote.data import image_loaders as L

    if name not in DATASETS:
        raise ConfigError(f"`data` must be one of {', '.join(DATASETS)}, got {name!r}")
    if name == "fashion-mnist":
        return L.load_fashion_mnist(split)
    if name == "mnist-5k":
        return L.load_mnist5k()
    if name == "digits":
        return L.load_digits()
    if root is None:
        raise ConfigError(f"`root`: dataset {name} is read from your files; pass the folder (or file) that holds it")
    if name == "cifar10":
        return L.load_cifar10(root, split)
    if name == "cifar100":
        return L.load_cifar100(root, split)
    if name == "svhn":
        return L.load_svhn(root, split)
    if name == "stl10":
        return L.load_stl10(root, split)
    return L.load_image_folder(root)


@dataclasses.dataclass(frozen=True)
class SSLResult(Result):
    """What `rote ssl localize` / `demo` / `prune` report.

    layers: input to output, {"name", "layermem", "delta_layermem", "units_highly_memorizing"} (units of f with
    UnitMem above `unit_threshold`). sslmem: mean SSLMem at the encoder output. pruning: {rule: probe accuracy}
    or None. layer_details: per layer the top/bottom/random means, UnitMem mean/median/max and ClassMem means.
    finetune (demo only): {rule: downstream test accuracy} after fine-tuning the k layers with the highest LayerMem
    ("most"), the last k ("last") or k random ones ("random") with a linear head (`rote.ssl.finetune`), else None.
    """

    layers: list[dict[str, Any]]
    sslmem: float | None
    pruning: dict[str, float] | None
    finetune: dict[str, float] | None
    unit_threshold: float
    n_points: int
    layer_details: list[dict[str, Any]]
    consistency: list[dict[str, Any]]
    ttest: dict[str, float] | None
    setup: dict[str, Any]
    seconds: dict[str, float]
    points: pd.DataFrame = table_field("points")
    units: pd.DataFrame = table_field("units")
    history: pd.DataFrame | None = internal_field()

    def summary(self) -> str:
        lines = [f"{'layer':<14}{'LayerMem':>10}{'delta':>10}{'units>' + str(self.unit_threshold):>12}"]
        for r in self.layers:
            lines.append(
                f"{r['name']:<14}{r['layermem']:>10.4f}{r['delta_layermem']:>10.4f}{r['units_highly_memorizing']:>12}"
            )
        if self.sslmem is not None:
            lines.append(f"SSLMem (output, mean over {self.n_points} candidates): {self.sslmem:.4f}")
        if self.ttest:
            lines.append(
                f"UnitMem vs SSLMem (top-{self.ttest['k']} vs bottom-{self.ttest['k']}): t = {self.ttest['t']:.2f}, "
                f"one-sided p = {self.ttest['p_one_sided']:.3g}"
            )
        if self.pruning:
            lines.append("probe accuracy after pruning: " + ", ".join(f"{k} {v:.4f}" for k, v in self.pruning.items()))
        if self.finetune:
            lines.append("accuracy after fine-tuning: " + ", ".join(f"{k} {v:.4f}" for k, v in self.finetune.items()))
        return "\n".join(lines)


def localize(
    f: nn.Module,
    g: nn.Module,
    images: torch.Tensor,
    *,
    ids: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    layers: Sequence[str] | None = None,
    n_aug: int = 5,
    unit_aug: int = 10,
    pair: str = "orig_vs_aug",
    normalize: str = "range",
    others: str = "mean",
    absolute: bool | None = None,
    unit_threshold: float = 0.5,
    k: int = 50,
    seed: int = 0,
    batch_size: int = 64,
    supervised: nn.Module | None = None,
    pruning: dict[str, float] | None = None,
    setup: dict[str, Any] | None = None,
    history: pd.DataFrame | None = None,
    seconds: dict[str, float] | None = None,
) -> SSLResult:
    """LayerMem / delta-LayerMem of `layers` (default: f's `layer_names()`) on the candidate `images`, UnitMem
    (`unit_aug` views, `others`) of f's units in those layers, ClassMem of f (and UnitMem / ClassMem of a
    `supervised` baseline) when `labels` are given, breakdown for top/bottom/random k points ranked by SSLMem at
    the output, top-k overlap and Kendall tau between layers, and the one-sided t-test at the last layer.
    absolute: |activation| for UnitMem / ClassMem (default: True for the ViT, whose residual stream is signed)."""
    from rote.nets import ViT

    if absolute is None:
        absolute = isinstance(f, ViT)
    if not 0 < unit_threshold < 1:
        raise ConfigError(f"`unit_threshold` must lie in (0, 1), got {unit_threshold}")
    names = [n for n in check_layers(f, layers if layers is not None else f.layer_names()) if n != OUTPUT]
    if not names:
        raise ConfigError("`layers`: give at least one layer besides output")
    secs = dict(seconds or {})
    t0 = time.perf_counter()
    lm = layermem(
        f,
        g,
        images,
        [*names, OUTPUT],
        ids=ids,
        n_aug=n_aug,
        pair=pair,
        normalize=normalize,
        seed=seed,
        batch_size=batch_size,
    )
    secs["layermem"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    um = unitmem(
        f, images, names, ids=ids, n_aug=unit_aug, others=others, absolute=absolute, seed=seed, batch_size=batch_size
    )
    secs["unitmem"] = time.perf_counter() - t0
    n = len(images)
    kk = min(k, n // 2)
    if kk < 2:
        raise DataError(f"{n} candidate points: the top/bottom breakdown and the t-test need at least 4; pass more")
    scores = lm.scores
    bd = breakdown(scores, k=kk, by=OUTPUT, seed=seed).set_index("layer")
    cons = layer_consistency(scores[names], k=min(100, max(1, n // 4)))  # top-100 of 500 in the reference
    tt = unitmem_sslmem_ttest(um.mu[names[-1]], scores[OUTPUT].to_numpy(), k=kk)
    cm = cm_sup = um_sup = None
    if labels is not None:
        cm = classmem(f, images, labels, names, others=others, absolute=absolute, batch_size=batch_size)
        if supervised is not None:
            kw = {"others": others, "absolute": absolute, "batch_size": batch_size}
            um_sup = unitmem(supervised, images, names, ids=ids, n_aug=unit_aug, seed=seed, **kw)
            cm_sup = classmem(supervised, images, labels, names, **kw)
    lmem, delta = lm.layermem, lm.delta
    rows, details = [], []
    for name in names:
        v = um.values[name]
        rows.append(
            {
                "name": name,
                "layermem": lmem[name],
                "delta_layermem": delta[name],
                "units_highly_memorizing": int((v > unit_threshold).sum()),
            }
        )
        d = {
            "name": name,
            "units": len(v),
            "unitmem_mean": float(v.mean()),
            "unitmem_median": float(np.median(v)),
            "unitmem_max": float(v.max()),
            "top_k_layermem": float(bd.loc[name, "top"]),
            "bottom_k_layermem": float(bd.loc[name, "bottom"]),
            "random_k_layermem": float(bd.loc[name, "random"]),
        }
        if cm is not None:
            d["classmem_mean"] = float(cm.values[name].mean())
        if um_sup is not None:
            d["supervised_unitmem_mean"] = float(um_sup.values[name].mean())
            d["supervised_classmem_mean"] = float(cm_sup.values[name].mean())
        details.append(d)
    points = scores.rename(columns=lambda c: f"layermem:{c}").reset_index()
    points["sslmem"] = scores[OUTPUT].to_numpy()
    units = um.frame().rename(columns={"value": "unitmem", "argmax": "argmax_id"})
    if cm is not None:
        units["classmem"] = np.concatenate([cm.values[nm] for nm in names])
    opts = {
        "absolute": absolute,
        "n_aug": n_aug,
        "unit_aug": unit_aug,
        "pair": pair,
        "normalize": normalize,
        "others": others,
        "k": kk,
        "seed": seed,
    }
    return SSLResult(
        layers=rows,
        sslmem=float(scores[OUTPUT].mean()),
        pruning=pruning,
        finetune=None,
        unit_threshold=unit_threshold,
        n_points=n,
        layer_details=details,
        consistency=cons.to_dict("records"),
        ttest=tt,
        setup={**(setup or {}), **opts},
        seconds=secs,
        points=points,
        units=units,
        history=history,
    )


DEMO: dict[str, Any] = {
    "data": "fashion-mnist",
    "arch": "resnet9",
    "width": 8,
    "n_shared": 100,
    "n_candidate": 100,
    "n_independent": 100,
    "epochs": 100,
    "supervised_epochs": 5,
    "batch_size": 32,
    "n_probe": 1000,
    "prune_fraction": 0.1,
    "finetune_k": 2,
    "finetune_epochs": 5,
}
"""`rote ssl demo`'s defaults: an 8-wide ResNet9 (the paper's is 64), 300 Fashion-MNIST training images (the paper:
50,000 CIFAR-10), 100 SimCLR epochs at batch 32 (600 steps per encoder); scale is what a 2-core CPU affords."""


def run_demo(
    *,
    width: int = DEMO["width"],
    n_shared: int = DEMO["n_shared"],
    n_candidate: int = DEMO["n_candidate"],
    n_independent: int = DEMO["n_independent"],
    epochs: int = DEMO["epochs"],
    supervised_epochs: int = DEMO["supervised_epochs"],
    batch_size: int = DEMO["batch_size"],
    n_probe: int = DEMO["n_probe"],
    prune_fraction: float = DEMO["prune_fraction"],
    finetune_k: int = DEMO["finetune_k"],
    finetune_epochs: int = DEMO["finetune_epochs"],
    unit_threshold: float = 0.5,
    seed: int = 0,
    device: str = "cpu",
    data: str = DEMO["data"],
    progress: Any = False,
) -> SSLResult:
    """The end-to-end experiment: split `data` (train split) into shared / candidate / independent, train SimCLR
    encoders f (shared + candidate) and g (shared + independent) from the same initialization, a supervised
    ResNet9 on f's data (when supervised_epochs > 0), localize, and prune 10% of every layer's units by UnitMem
    (top / random / bottom) with a linear probe on `n_probe` + `n_probe` test images. With finetune_k > 0, also
    fine-tune f's `finetune_k` highest-LayerMem, last and random layers with a linear head on the same images
    (`finetune_epochs`, one run per rule with the demo's seed)."""
    secs: dict[str, float] = {}
    ds = load_data(data, split="train")
    n_total = n_shared + n_candidate + n_independent
    if n_total > len(ds):
        raise DataError(f"{data} has {len(ds)} training images; shared + candidate + independent = {n_total}")
    pool = ds.subset(np.random.default_rng(seed).permutation(len(ds))[:n_total]).float()
    sp = make_splits(n_total, n_candidate, n_independent, n_shared=n_shared, seed=seed)
    c, h, w = pool.shape
    arch = {"arch": "resnet9", "in_channels": c, "width": width, "image_size": h, "seed": seed}
    models = {}
    hist = []
    for role in ("f", "g"):
        t0 = time.perf_counter()
        m = build_encoder(**arch)
        x = pool.images[torch.as_tensor(sp.train_positions(role))]
        for r in train_simclr(m, x, epochs=epochs, batch_size=batch_size, seed=seed, device=device, progress=progress):
            hist.append({"model": role, **r})
        models[role] = m.eval()
        secs[f"train_{role}"] = time.perf_counter() - t0
    sup = None
    if supervised_epochs > 0:
        t0 = time.perf_counter()
        sup = build_encoder(**arch, num_classes=pool.n_classes)
        pos = torch.as_tensor(sp.train_positions("f"))
        for r in train_supervised(
            sup,
            pool.images[pos],
            pool.labels[pos],
            epochs=supervised_epochs,
            batch_size=batch_size,
            seed=seed,
            device=device,
            progress=progress,
        ):
            hist.append({"model": "supervised", **r})
        sup.eval()
        secs["train_supervised"] = time.perf_counter() - t0
    cand = pool.subset(sp.candidate)
    pruning = finetune = None
    result = localize(
        models["f"],
        models["g"],
        cand.images,
        ids=cand.ids.cpu().numpy(),
        labels=cand.labels.cpu().numpy(),
        unit_threshold=unit_threshold,
        seed=seed,
        supervised=sup,
        seconds=secs,
        history=pd.DataFrame(hist),
    )
    if n_probe > 0:
        t0 = time.perf_counter()
        test = load_data(data, split="test")
        perm = np.random.default_rng(seed + 1).permutation(len(test))[: 2 * n_probe]
        tr, te = test.subset(perm[:n_probe]).float(), test.subset(perm[n_probe:]).float()
        um = {r["name"]: result.units.loc[result.units.layer == r["name"], "unitmem"].to_numpy() for r in result.layers}
        pruning = pruning_curve(
            models["f"], um, (tr.images, tr.labels, te.images, te.labels), fraction=prune_fraction, seed=seed
        )
        secs["pruning"] = time.perf_counter() - t0
        if finetune_k > 0:
            t0 = time.perf_counter()
            ft = compare_finetuning(
                models["f"],
                result.layers,
                (tr.images, tr.labels, te.images, te.labels),
                k=min(finetune_k, len(result.layers)),
                seeds=[seed],
                epochs=finetune_epochs,
                n_classes=test.n_classes,
                device=device,
            )
            finetune = ft.finetune
            secs["finetune"] = time.perf_counter() - t0
    setup = {
        "data": data,
        "arch": arch,
        "n_shared": n_shared,
        "n_candidate": n_candidate,
        "n_independent": n_independent,
        "epochs": epochs,
        "supervised_epochs": supervised_epochs,
        "batch_size": batch_size,
        "n_probe": n_probe,
        "prune_fraction": prune_fraction,
        "finetune_k": finetune_k if n_probe > 0 else 0,
        "finetune_epochs": finetune_epochs,
        "device": str(device),
    }
    return dataclasses.replace(
        result, pruning=pruning, finetune=finetune, setup={**setup, **result.setup}, seconds=secs
    )


SINGLE_SPLIT = ("mnist-5k", "digits", "folder")
"""Datasets whose "test" split is the training data itself: the encoder's training points are left out there."""


def downstream_data(
    info: Mapping[str, Any],
    arch: Mapping[str, Any],
    *,
    data: str | None = None,
    root: str | Path | None = None,
    n_train: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict[str, Any]]:
    """The labelled downstream set: `n_train` + `n_test` disjoint images drawn (seeded) from the test split of
    `data` (default: the data the encoder was trained on, `info["data"]`). On single-split datasets (mnist-5k,
    digits, an image folder) the encoder's own training ids are left out when it is the encoder's data. Images must
    have the encoder's channels; images of another size are resized (bilinear, antialiased) to its `image_size`, as
    the paper resized STL-10 to 32x32. Returns ((train x, train y, test x, test y), a description)."""
    for flag, v, low in (("n_train", n_train, 2), ("n_test", n_test, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ConfigError(f"`{flag}` must be a whole number >= {low}, got {v!r}")
    name = data or info.get("data")
    if not name:
        raise ConfigError("`data`: the encoder records no dataset; pass the downstream data explicitly")
    if data is None and root is None:
        root = info.get("root")
    ds = load_data(name, root, "test")
    pool = np.arange(len(ds))
    if name in SINGLE_SPLIT and name == info.get("data") and info.get("train_ids"):
        seen = np.isin(ds.ids.cpu().numpy(), np.asarray(info["train_ids"], dtype=np.int64))
        pool = pool[~seen]  # the same file serves as train and test split: never fine-tune on pre-training points
    if len(pool) < n_train + n_test:
        raise DataError(
            f"{name} has {len(pool)} images available for fine-tuning; n_train {n_train} + n_test {n_test} needs "
            f"{n_train + n_test}: pass smaller --n-train / --n-test"
        )
    c, h, w = ds.shape
    if c != arch.get("in_channels"):
        raise DataError(
            f"{name} images have {c} channel(s) but the encoder takes {arch.get('in_channels')}; fine-tune on data "
            "with the encoder's channels"
        )
    size = int(arch.get("image_size", h))
    perm = pool[np.random.default_rng(seed).permutation(len(pool))]
    tr, te = ds.subset(perm[:n_train]).float(), ds.subset(perm[n_train : n_train + n_test]).float()
    xtr, xte = tr.images, te.images
    if (h, w) != (size, size):  # as the paper's STL-10 (96 px) resized to the encoder's 32 px
        xtr, xte = (
            F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
            for x in (xtr, xte)
        )
    desc = {"data": name, "split": "test", "n_train": n_train, "n_test": n_test, "classes": ds.n_classes}
    desc["resized_from"] = [h, w] if (h, w) != (size, size) else None
    return (xtr, tr.labels, xte, te.labels), desc


# ---------------------------------------------------------------------------------------------- seeds as a grid


def demo_point(params: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """One seed of the demo as a `rote.sweep` point: params = {"seed": int, "options": run_demo keyword options}.
    Returns the scalars (nested: layermem / delta / units / top / bottom per layer, pruning per rule) and tables."""
    res = run_demo(seed=int(params["seed"]), **dict(params.get("options", {})))
    d = {r["name"]: r for r in res.layer_details}
    return {
        "sslmem": res.sslmem,
        "ttest_p": res.ttest["p_one_sided"] if res.ttest else None,
        "layermem": {r["name"]: r["layermem"] for r in res.layers},
        "delta": {r["name"]: r["delta_layermem"] for r in res.layers},
        "units": {r["name"]: r["units_highly_memorizing"] for r in res.layers},
        "top": {n: v["top_k_layermem"] for n, v in d.items()},
        "bottom": {n: v["bottom_k_layermem"] for n, v in d.items()},
        "unitmem": {n: v["unitmem_mean"] for n, v in d.items()},
        "pruning": res.pruning or {},
        "finetune": res.finetune or {},
        "points": res.points,
        "units_table": res.units,
    }


def run_demo_seeds(
    seeds: Sequence[int],
    out: str | Path,
    *,
    options: dict[str, Any] | None = None,
    workers: int = 0,
    ray: str | None = None,
    quiet: bool = True,
) -> tuple[pd.DataFrame, Any]:
    """The demo once per seed through `rote.sweep.run_grid` (in this process with workers=0, worker processes, or
    Ray with an address) into out/grid; returns (one row per metric: mean, std, n over the seeds, the sweep)."""
    from rote.core.stats import mean_std
    from rote.sweep import Grid, run_grid

    if not seeds:
        raise ConfigError("`seeds` is empty; give at least one seed")
    grid = Grid({"seed": [int(s) for s in seeds]}, fixed={"options": dict(options or {})})
    sweep = run_grid(demo_point, grid, Path(out) / "grid", workers=workers, ray=ray, seed_axis="seed", quiet=quiet)
    done = sweep.table[sweep.table["status"] == "done"]
    rows = []
    for col in done.columns:
        if col.split(".")[0] in (
            "sslmem",
            "ttest_p",
            "layermem",
            "delta",
            "units",
            "top",
            "bottom",
            "unitmem",
            "pruning",
            "finetune",
        ):
            vals = pd.to_numeric(done[col], errors="coerce").dropna().to_numpy(dtype=float)
            if len(vals):
                m, s = mean_std(vals)
                rows.append({"metric": col, "mean": m, "std": s, "n_seeds": len(vals)})
    return pd.DataFrame(rows, columns=["metric", "mean", "std", "n_seeds"]), sweep
