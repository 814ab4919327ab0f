"""The paper's setups end to end: train, generate, measure sharpness along the sampling trajectory, label each
generation memorized or not by the nearest-neighbour distance ratio (d1 / d2 < 1/3 against the de-duplicated
training set, `rote.core.neighbors.knn`), and score every statistic as a detector (`rote.core.privacy`).

- `toy_data` / `run_toy`: the 2-D 5:95 Gaussian mixture (section 4.1 of Jeon, Kim & No, ICML 2025).
- `mnist_data` / `run_mnist`: digit "3" generalized, one digit "9" duplicated 100 times (memorized), classifier-free
  guidance (p_uncond 0.2, guidance 5).
- `fashion_data` (`run_mnist(dataset="fashion-mnist", ...)`, `FASHION_OVERRIDES`): the paper's exact counts on
  Fashion-MNIST: 3,000 trousers generalized, one ankle boot duplicated 100 times.
- `score_generations`: the measurement half, for any `DDPM` (the `rote sharpness score` verb).
- `evaluate`: detection from a scores table (the `rote sharpness eval` verb).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from rote.core.errors import ConfigError
from rote.core.neighbors import L2Distance, MixedMatrix, knn
from rote.core.privacy import roc_auc, tpr_at_fpr
from rote.core.results import Result, table_field
from rote.core.stats import bootstrap_ci
from rote.sharpness.diffusion import DDPM
from rote.sharpness.measure import sharpness_statistics

RATIO_THRESHOLD = 1 / 3
TOY_PRESET = dict(
    n_train=3000,
    weight=0.05,
    T=500,
    epochs=150,
    batch_size=256,
    lr=3e-3,
    hidden=128,
    depth=4,
    second_order_weight=0.5,
    n_generations=2000,
    n_steps=100,
)
"""The paper's toy: 3,000 points, 5:95 mixture; T = 500 (the paper samples with 500 DDIM steps; rote with 100)."""
MNIST_PRESET = dict(
    side=14,
    duplicates=100,
    T=500,
    net="conv",
    hidden=512,
    depth=4,
    channels=32,
    epochs=1500,
    batch_size=64,
    lr=2e-3,
    second_order_weight=0.0,
    p_uncond=0.2,
    guidance=5.0,
    generations_per_class=200,
    n_steps=50,
    spectra_samples=40,
    n_probes=8,
)
"""rote's MNIST setup (CPU-sized: 14 x 14 images and 50 DDIM steps; the paper's differs, see docs/sharpness.md).
The denoiser is `ConvDenoiser` (the paper trains a U-Net): with it all but 21 of 2,000 generations of the duplicated
image were copies (seeds 0-4, MNIST and Fashion-MNIST) and the paper's statistic reached AUC 1.000 with four
generations per prompt and 0.931-1.000 with one, where the MLP (net="mlp", `hidden`/`depth`; the preset until
2026-11-30) left 5-56% of them inexact (docs/sharpness.md, "conv denoiser"). About 12 CPU-minutes of training (47 ms
an optimizer step on one core) against 3 for the MLP."""
FASHION_OVERRIDES = dict(dataset="fashion-mnist", n_generalized=3000, duplicates=100, epochs=600)
"""`--dataset fashion-mnist`: the paper's exact counts (3,000 images of one class, one image of another duplicated
100 times). 600 epochs of 49 batches = 29,400 optimizer steps, in which the duplicated image is drawn 60,000 times
and each trouser 600 times; `--duplicates 17 --epochs 3000` on MNIST: 27,000 steps, the 9 drawn 51,000 times. The
duplicated image has about the same share of the data (100 / 3,100 against 17 / 517). About 25 CPU-minutes with the
preset's conv denoiser (6 with net="mlp")."""
FASHION_CLASSES = (1, 9)
"""(generalized, memorized) Fashion-MNIST classes: trousers and one ankle boot. Chosen before any detection run
as the most isolated pair of those measured (14 x 14, seed 0): an ankle boot's nearest trouser is 9.55 away in the
median (4.76 at least) against 1.59 between a trouser and its nearest other trouser (ratio 6.0; bag / T-shirt
3.0-3.3, boot / trouser 3.0), so a copy of the boot has d1 / d2 near 0 and no trouser comes near the boot."""


@dataclass(frozen=True)
class SharpnessResult(Result):
    """Detection of memorized generations by sharpness statistics.

    detection: {statistic: {"auc", "tpr_at_1pct_fpr"}} against the nearest-neighbour labels, one generation each.
    detection_groups: the same with each statistic averaged over `group_size` generations of the same class
        (label: most of them memorized); None for unconditional models.
    detection_by_mode: (toy) against "the generation's nearest training point is the duplicated mode".
    auc_intervals: 95% bootstrap intervals (stratified, 200 replicates) of each AUC.
    paper_statistic: the column of the paper's ||H_delta s_delta||^2 at t = T - 1 (or its stand-in).
    scores: one row per generation: class, nearest-neighbour ratio, memorized, every statistic at every step.
    spectra: full eigen-spectra (long format: sample, t, rank, eigenvalue), when computed.
    """

    setup: str
    n_generations: int
    n_memorized: int
    ratio_threshold: float
    paper_statistic: str
    detection: dict
    detection_groups: dict | None
    group_size: int | None
    detection_by_mode: dict | None
    auc_intervals: dict
    eval_steps: list
    timings: dict
    config: dict
    scores: pd.DataFrame = table_field("scores")
    spectra: pd.DataFrame = table_field("spectra")

    def summary(self) -> str:
        lines = [
            f"{self.setup}: {self.n_generations} generations, {self.n_memorized} memorized (d1/d2 < "
            f"{self.ratio_threshold:.3g})",
            f"{'statistic':<28} {'AUC':>7} {'TPR@1%FPR':>10}",
        ]
        for name, v in self.detection.items():
            mark = "  <- paper" if name == self.paper_statistic else ""
            lines.append(f"{name:<28} {_fmt(v['auc']):>7} {_fmt(v['tpr_at_1pct_fpr']):>10}{mark}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


# --------------------------------------------------------------------------------------------------- data


def toy_data(n: int = 3000, weight: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, 2) float32, mode (n,) int: 1 = small mode) of the 5:95 mixture: a fraction `weight` of the points
    is the small-variance mode at (3, 3), taken in its zero-variance limit (one point repeated, as MNIST's one
    duplicated image; with any positive variance the nearest-neighbour ratio cannot call a generation a copy),
    the rest N(0, I)."""
    if n < 10:
        raise ConfigError(f"`n_train` must be >= 10, got {n}")
    if not 0 < weight < 1:
        raise ConfigError(f"`weight` must be in (0, 1), got {weight}")
    rng = np.random.default_rng(seed)
    na = max(1, int(round(weight * n)))
    x = np.vstack([np.tile([[3.0, 3.0]], (na, 1)), rng.normal(0.0, 1.0, (n - na, 2))]).astype(np.float32)
    mode = np.r_[np.ones(na, np.int64), np.zeros(n - na, np.int64)]
    return x, mode


def fashion_data(
    side: int = 14,
    duplicates: int = 100,
    n_generalized: int = 3000,
    seed: int = 0,
    classes: tuple[int, int] = FASHION_CLASSES,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The paper's MNIST counts on Fashion-MNIST (train split): (x (n_generalized + duplicates, side*side) in
    [-1, 1], classes (N,) with 0 = `n_generalized` images of `classes[0]` (trousers) and 1 = one image of
    `classes[1]` (an ankle boot) repeated `duplicates` times, index of that image in the train split). The images
    of both classes are drawn by `seed`."""
    from rote.data import load_fashion_mnist

    _check_image_set(side, duplicates)
    ds = load_fashion_mnist("train")
    labels = ds.labels.numpy()
    general = np.flatnonzero(labels == classes[0])
    if not 1 <= n_generalized <= len(general):
        raise ConfigError(
            f"`n_generalized` must be in [1, {len(general)}] (the class's images in Fashion-MNIST's train split), "
            f"got {n_generalized}"
        )
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(general, n_generalized, replace=False))
    pick = int(rng.choice(np.flatnonzero(labels == classes[1])))
    imgs = _pooled(ds.images[np.r_[keep, pick]], side)
    return (*_one_image_duplicated(imgs[:-1], imgs[-1], duplicates), pick)


def mnist_data(side: int = 14, duplicates: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """(x (N, side*side) in [-1, 1], classes (N,) with 0 = digit "3" (every 3 of MNIST-5k), 1 = digit "9" (one 9
    chosen by `seed`, repeated `duplicates` times), index of that 9 in MNIST-5k)."""
    from rote.data import load_mnist5k

    _check_image_set(side, duplicates)
    ds = load_mnist5k()
    imgs = _pooled(ds.images, side)
    labels = ds.labels.numpy()
    threes = np.flatnonzero(labels == 3)
    nines = np.flatnonzero(labels == 9)
    pick = int(nines[np.random.default_rng(seed).integers(len(nines))])
    return (*_one_image_duplicated(imgs[threes], imgs[pick], duplicates), pick)


def _check_image_set(side: int, duplicates: int) -> None:
    if side not in (7, 14, 28):
        raise ConfigError(f"`side` must be 7, 14 or 28, got {side}")
    if duplicates < 1:
        raise ConfigError(f"`duplicates` must be >= 1, got {duplicates}")


def _pooled(images: torch.Tensor, side: int) -> np.ndarray:
    """uint8 28 x 28 images (N, ...) -> (N, side * side) float in [-1, 1], average-pooled to side x side."""
    imgs = images.float() / 255.0
    if side != 28:
        imgs = torch.nn.functional.avg_pool2d(imgs, 28 // side)
    return (imgs * 2 - 1).reshape(len(imgs), -1).numpy()


def _one_image_duplicated(general: np.ndarray, image: np.ndarray, duplicates: int) -> tuple[np.ndarray, np.ndarray]:
    """(x: the `general` rows (class 0) then `image` repeated `duplicates` times (class 1), float32; classes)."""
    x = np.vstack([general, np.repeat(image[None], duplicates, 0)]).astype(np.float32)
    return x, np.r_[np.zeros(len(general), np.int64), np.ones(duplicates, np.int64)]


# ----------------------------------------------------------------------------------------------- labels


def nn_ratio(generations: np.ndarray, train: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Per generation: nearest and second-nearest distinct training points (Euclidean, raw units), d1, d2,
    ratio d1 / d2, memorized (ratio < 1/3); and the de-duplicated training points. Training points are
    de-duplicated first: a duplicated point is one training example (else d1 = d2 = its distance and a
    copy would never count as memorized)."""
    ref = np.unique(np.asarray(train, np.float64), axis=0)
    q = np.asarray(generations, np.float64)
    dist = L2Distance(mean=np.zeros(ref.shape[1]), std=np.ones(ref.shape[1]))
    nb = knn(
        MixedMatrix(q, np.zeros((len(q), 0), np.int64), ()),
        MixedMatrix(ref, np.zeros((len(ref), 0), np.int64), ()),
        k=2,
        distance=dist,
    )
    d1, d2 = nb.distances[:, 0], nb.distances[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d2 > 0, d1 / d2, np.nan)
    return pd.DataFrame(
        {
            "nearest_train": nb.indices[:, 0],
            "d1": d1,
            "d2": d2,
            "ratio": ratio,
            "memorized": np.nan_to_num(ratio, nan=np.inf) < RATIO_THRESHOLD,
        }
    ), ref


# -------------------------------------------------------------------------------------------- detection


def detection(scores: pd.DataFrame, statistics: list[str], label: str = "memorized") -> dict[str, dict]:
    """{statistic: {"auc", "tpr_at_1pct_fpr"}}: each statistic (higher = memorized) as a detector of `label`.
    NaN (written as null) when the labels hold only one class."""
    y = scores[label].to_numpy().astype(bool)
    out: dict[str, dict] = {}
    for s in statistics:
        v = scores[s].to_numpy(np.float64)
        if y.all() or not y.any():
            out[s] = {"auc": float("nan"), "tpr_at_1pct_fpr": float("nan")}
        else:
            out[s] = {"auc": roc_auc(v, y), "tpr_at_1pct_fpr": tpr_at_fpr(v, y, 0.01)}
    return out


def auc_intervals(scores: pd.DataFrame, statistics: list[str], n_boot: int = 200, seed: int = 0) -> dict:
    y = scores["memorized"].to_numpy().astype(bool)
    if y.all() or not y.any():
        return {}
    return {
        s: bootstrap_ci(roc_auc, scores[s].to_numpy(np.float64), y, n_boot=n_boot, seed=seed, strata=y).to_dict()
        for s in statistics
    }


def _group_value(name: str, values: pd.Series) -> float:
    """A squared norm (`*norm2_t<step>`) is averaged as the norm, as the paper's `pipe.py` averages
    ||H_delta s_delta|| (not its square) over a prompt's generations: one outlying generation then does not
    decide the group. Other statistics are averaged as they are."""
    if name.rsplit("_t", 1)[0].endswith("norm2"):
        return float(np.sqrt(values.to_numpy(np.float64).clip(min=0)).mean())
    return float(values.mean())


def grouped(scores: pd.DataFrame, statistics: list[str], n: int) -> pd.DataFrame:
    """Mean of each statistic over consecutive groups of `n` generations of the same class (the paper's n
    generations per prompt; squared norms averaged as norms, `_group_value`); label: at least half of the group
    memorized."""
    rows = []
    for cls, frame in scores.groupby("class", sort=True):
        for start in range(0, len(frame) - n + 1, n):
            part = frame.iloc[start : start + n]
            rows.append(
                {
                    "class": cls,
                    "memorized": part["memorized"].mean() >= 0.5,
                    **{s: _group_value(s, part[s]) for s in statistics},
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ measurement


def statistic_columns(scores: pd.DataFrame) -> list[str]:
    """The statistic columns of a scores table (named `<statistic>_t<step>`)."""
    from rote.sharpness.measure import STATISTICS

    return [c for c in scores.columns if c.rsplit("_t", 1)[0] in STATISTICS and c.rsplit("_t", 1)[-1].isdigit()]


def score_generations(
    model: DDPM,
    train: np.ndarray,
    *,
    n: int,
    classes: list[int] | None = None,
    guidance: float = 1.0,
    n_steps: int = 100,
    eval_steps: tuple[int, ...] | None = None,
    spectrum_method: str = "auto",
    batch: int = 250,
    seed: int = 0,
    setup: str = "custom",
    paper_statistic: str | None = None,
    group_size: int | None = 4,
    clip: float | None = None,
    mode_index: int | None = None,
    spectra_samples: int | None = None,
    n_probes: int = 16,
    config: dict | None = None,
    timings: dict | None = None,
) -> SharpnessResult:
    """Generate `n` samples (cycling through `classes` for a conditional model; the unconditional model ignores
    them), measure every statistic at each of `eval_steps` (default: T - 1, the first sampling step, and t = 1)
    on the trajectory state x_t, label by the nearest-neighbour ratio against `train`, and score detection.
    mode_index: index in the de-duplicated training set of a point whose copies are "the memorized mode".
    spectra_samples: when set, the statistics use no eigenvalues (-tr H by Hutchinson with `n_probes` probes; no
    n_below / sum_below) and full spectra are computed for that many generations only (evenly spaced), for the
    spectra plot: the cost of a full Hessian is d Hessian-vector products per sample."""
    if n < 2:
        raise ConfigError(f"`samples` must be >= 2, got {n}")
    T = model.num_timesteps
    eval_steps = tuple(eval_steps or (T - 1, 1))
    cls = None
    if model.conditional:
        classes = list(classes if classes is not None else range(model.n_classes))
        cls = torch.as_tensor([classes[i * len(classes) // n] for i in range(n)], dtype=torch.long)
    t0 = time.perf_counter()
    gens, states = [], {t: [] for t in eval_steps}
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        cb = None if cls is None else cls[start:stop]
        x, st = _sample_batch(model, stop - start, cb, guidance, n_steps, seed + start, eval_steps, clip)
        gens.append(x)
        for t in eval_steps:
            states[t].append(st[t])
    gen = torch.cat(gens)
    t_sample = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame: dict[str, Any] = {"sample": np.arange(n), "class": (cls.numpy() if cls is not None else np.zeros(n, int))}
    spectra = []
    for t in eval_steps:
        xt = torch.cat(states[t])
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            stats, eig = sharpness_statistics(
                model,
                xt[start:stop],
                t,
                None if cls is None else cls[start:stop],
                spectrum_method="none" if spectra_samples else spectrum_method,
                n_probes=n_probes,
                chunk_size=16,
                seed=seed,
            )
            for k, v in stats.items():
                frame.setdefault(f"{k}_t{t}", []).append(v)
            if eig is not None:
                spectra.append(_spectra_frame(np.arange(start, stop), t, eig))
        if spectra_samples:
            pick = np.unique(np.linspace(0, n - 1, min(spectra_samples, n)).round().astype(int))
            _, eig = sharpness_statistics(
                model,
                xt[pick],
                t,
                None if cls is None else cls[pick],
                spectrum_method="full",
                chunk_size=16,
                seed=seed,
            )
            spectra.append(_spectra_frame(pick, t, eig))
    for k in list(frame):
        if isinstance(frame[k], list):
            frame[k] = np.concatenate(frame[k])
    t_measure = time.perf_counter() - t0
    labels, ref = nn_ratio(gen.cpu().numpy(), train)
    scores = pd.concat([pd.DataFrame(frame), labels], axis=1)
    if mode_index is not None:
        scores["in_memorized_mode"] = scores["nearest_train"].to_numpy() == mode_index
    stats_cols = statistic_columns(scores)
    if paper_statistic is None:
        paper_statistic = f"delta_hs_norm2_t{T - 1}" if model.conditional else f"hs_norm2_t{min(eval_steps)}"
    det_groups = None
    if model.conditional and group_size and group_size > 1:
        g = grouped(scores, stats_cols, group_size)
        det_groups = detection(g, stats_cols) if len(g) else None
    return SharpnessResult(
        setup=setup,
        n_generations=n,
        n_memorized=int(scores["memorized"].sum()),
        ratio_threshold=RATIO_THRESHOLD,
        paper_statistic=paper_statistic,
        detection=detection(scores, stats_cols),
        detection_groups=det_groups,
        group_size=group_size if det_groups is not None else None,
        detection_by_mode=detection(scores, stats_cols, "in_memorized_mode") if mode_index is not None else None,
        auc_intervals=auc_intervals(scores, stats_cols, seed=seed),
        eval_steps=list(eval_steps),
        timings={**(timings or {}), "sample_s": round(t_sample, 2), "measure_s": round(t_measure, 2)},
        config=dict(config or {}),
        scores=scores,
        spectra=pd.concat(spectra, ignore_index=True)
        if spectra
        else pd.DataFrame({"sample": [], "t": [], "rank": [], "eigenvalue": []}),
    )


def _spectra_frame(samples: np.ndarray, t: int, eig: np.ndarray) -> pd.DataFrame:
    """Long format: one row per (sample, eigenvalue rank)."""
    d = eig.shape[1]
    return pd.DataFrame(
        {
            "sample": np.repeat(samples, d),
            "t": t,
            "rank": np.tile(np.arange(d), len(samples)),
            "eigenvalue": eig.ravel(),
        }
    )


def _sample_batch(model, n, c, guidance, n_steps, seed, eval_steps, clip=None):
    x, st = model.sample(n, c, guidance=guidance, n_steps=n_steps, seed=seed, record=eval_steps, clip=clip)
    missing = [t for t in eval_steps if t not in st]
    if missing:  # a step the DDIM schedule skips: noise the final sample to it instead would change the method
        raise ConfigError(f"`eval_steps` {missing} are not on the {n_steps}-step DDIM schedule; use T - 1, 1 or 0")
    return x, st


def run_toy(
    *, seed: int = 0, device: str = "cpu", checkpoint: str | None = None, progress: bool = False, **overrides: Any
) -> tuple[SharpnessResult, DDPM]:
    """The paper's 2-D toy end to end (`TOY_PRESET`, overridable by keyword); returns (result, model)."""
    p = {**TOY_PRESET, **overrides}
    x, _ = toy_data(p["n_train"], p["weight"], seed)
    model = DDPM(2, net="mlp", net_args=dict(hidden=p["hidden"], depth=p["depth"]), T=p["T"], seed=seed)
    t0 = time.perf_counter()
    model.fit(
        torch.as_tensor(x),
        epochs=p["epochs"],
        batch_size=p["batch_size"],
        lr=p["lr"],
        second_order_weight=p["second_order_weight"],
        device=device,
        progress=progress,
    )
    t_train = time.perf_counter() - t0
    if checkpoint:
        model.save(checkpoint, train=torch.as_tensor(x), setup="toy")
    ref = np.unique(x.astype(np.float64), axis=0)
    mode_index = int(np.flatnonzero((ref == 3.0).all(1))[0])
    result = score_generations(
        model,
        x,
        n=p["n_generations"],
        n_steps=p["n_steps"],
        seed=seed,
        setup="toy",
        mode_index=mode_index,
        config=p,
        timings={"train_s": round(t_train, 2)},
    )
    return result, model


def run_mnist(
    *, seed: int = 0, device: str = "cpu", checkpoint: str | None = None, progress: bool = False, **overrides: Any
) -> tuple[SharpnessResult, DDPM]:
    """The MNIST setup end to end (`MNIST_PRESET`, overridable by keyword); returns (result, model)."""
    p = {**MNIST_PRESET, **overrides}
    if p.get("dataset", "mnist") == "fashion-mnist":
        x, c, pick = fashion_data(p["side"], p["duplicates"], p["n_generalized"], seed)
    elif p.get("dataset", "mnist") == "mnist":
        x, c, pick = mnist_data(p["side"], p["duplicates"], seed)
    else:
        raise ConfigError(f"`dataset` must be mnist or fashion-mnist, got {p['dataset']!r}")
    net_args = dict(channels=p["channels"]) if p["net"] == "conv" else dict(hidden=p["hidden"], depth=p["depth"])
    model = DDPM(x.shape[1], net=p["net"], net_args=net_args, T=p["T"], n_classes=2, seed=seed)
    t0 = time.perf_counter()
    model.fit(
        torch.as_tensor(x),
        torch.as_tensor(c),
        epochs=p["epochs"],
        batch_size=p["batch_size"],
        lr=p["lr"],
        p_uncond=p["p_uncond"],
        second_order_weight=p["second_order_weight"],
        probes=1,
        device=device,
        progress=progress,
    )
    t_train = time.perf_counter() - t0
    if checkpoint:
        model.save(
            checkpoint,
            train=torch.as_tensor(x),
            classes=torch.as_tensor(c),
            setup="mnist",
            guidance=float(p["guidance"]),
            clip=1.0,
        )
    result = score_generations(
        model,
        x,
        n=2 * p["generations_per_class"],
        classes=[0, 1],
        guidance=p["guidance"],
        n_steps=p["n_steps"],
        seed=seed,
        setup="mnist",
        clip=1.0,
        spectra_samples=p["spectra_samples"],
        n_probes=p["n_probes"],
        config={
            **p,
            "mnist5k_index_of_the_9" if p.get("dataset", "mnist") == "mnist" else "train_index_of_the_duplicate": pick,
        },
        timings={"train_s": round(t_train, 2)},
    )
    return result, model


def evaluate(
    scores: pd.DataFrame,
    spectra: pd.DataFrame | None = None,
    *,
    paper_statistic: str | None = None,
    group_size: int = 4,
    label: str = "memorized",
    seed: int = 0,
) -> SharpnessResult:
    """Detection from a scores table written by `score`/`toy`/`mnist` (or any table with a boolean `label`
    column, a `class` column and statistic columns named `<statistic>_t<step>`)."""
    if label not in scores.columns:
        raise ConfigError(f"`scores` has no column '{label}'; columns are: {', '.join(map(str, scores.columns))}")
    cols = statistic_columns(scores)
    if not cols:
        raise ConfigError(
            "`scores` has no statistic columns (named like hs_norm2_t1); pass a scores.parquet "
            "written by `rote sharpness score`"
        )
    if paper_statistic is None:
        delta = [c for c in cols if c.startswith("delta_hs_norm2_t")]
        paper_statistic = (
            max(delta, key=lambda c: int(c.rsplit("_t", 1)[1]))
            if delta
            else min(
                (c for c in cols if c.startswith("hs_norm2_t")),
                key=lambda c: int(c.rsplit("_t", 1)[1]),
                default=cols[0],
            )
        )
    elif paper_statistic not in cols:
        raise ConfigError(f"`paper_statistic` {paper_statistic!r} is not a statistic column: {', '.join(cols)}")
    # another ground truth (e.g. --label class, the paper's own MNIST labels) replaces `memorized`; the column
    # it comes from stays, so grouping by class still works
    frame = scores if label == "memorized" else scores.assign(memorized=scores[label].astype(bool))
    conditional = "class" in frame.columns and frame["class"].nunique() > 1
    det_groups = None
    if conditional and group_size > 1:
        g = grouped(frame, cols, group_size)
        det_groups = detection(g, cols) if len(g) else None
    steps = sorted({int(c.rsplit("_t", 1)[1]) for c in cols}, reverse=True)
    return SharpnessResult(
        setup="eval",
        n_generations=len(frame),
        n_memorized=int(frame["memorized"].sum()),
        ratio_threshold=RATIO_THRESHOLD,
        paper_statistic=paper_statistic,
        detection=detection(frame, cols),
        detection_groups=det_groups,
        group_size=group_size if det_groups is not None else None,
        detection_by_mode=detection(frame, cols, "in_memorized_mode") if "in_memorized_mode" in frame else None,
        auc_intervals=auc_intervals(frame, cols, seed=seed),
        eval_steps=steps,
        timings={},
        config={},
        scores=frame,
        spectra=spectra if spectra is not None else pd.DataFrame({"sample": [], "t": [], "rank": [], "eigenvalue": []}),
    )
