"""SSLMem, LayerMem, UnitMem and ClassMem of vision encoders: pure functions on torch modules.

SSLMem (Wang et al., ICLR 2024): m(x) = E_g[L_align(g, x)] - E_f[L_align(f, x)], f trained with x, g without it,
L_align = mean distance between the representations of views of x. LayerMem (Wang et al., NeurIPS 2024, Sec. 3) is
SSLMem with both encoders cut after layer l; delta-LayerMem_l = LayerMem_l - LayerMem_{l-1}. UnitMem (same paper,
Sec. 4) is the selectivity index of a unit for single data points, ClassMem the same index over class means.

Code-faithful defaults (sprintml/LocalizingMemorizationInSSL, `memorization_scores.py`): `n_aug`=5 views, distance
between the ORIGINAL image and each augmented view (`pair`="orig_vs_aug"), representations flattened and L2-normalized,
raw score divided by its range over the evaluated points (`normalize`="range"). Paper-faithful option:
`pair`="aug_vs_aug" (two augmented views per draw) and lists of f and g models (expectation over training runs).

Every layer is read in ONE forward pass per batch of (points x views) with `rote.core.hooks`, instead of one pass per
layer as the reference code does (`single_pass=False` reproduces that schedule; both give identical numbers).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from rote.core.errors import ConfigError, DataError
from rote.core.hooks import capture
from rote.data.augment import simclr_augment

__all__ = [
    "OUTPUT",
    "Augment",
    "default_augment",
    "check_images",
    "check_layers",
    "check_same_architecture",
    "LayerMem",
    "layermem",
    "sslmem",
    "selectivity",
    "point_selectivity",
    "unit_activations",
    "UnitMem",
    "unitmem",
    "classmem",
    "breakdown",
    "layer_consistency",
    "unitmem_sslmem_ttest",
]

OUTPUT = "output"
"""Layer name of the encoder's representation `net.features(x)` (the SSLMem layer)."""

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
PAIRS = ("orig_vs_aug", "aug_vs_aug")
NORMALIZE = ("range", "minmax01", "none")
OTHERS = ("mean", "median")
MIN_POINTS = 2


def default_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The SimCLR views used for training and scoring (`rote.data.augment.simclr_augment`, strength 0.5).
    x: (B, C, H, W) float in [0, 1] -> (B, C, H, W)."""
    return simclr_augment(x, generator=generator)


# ---------------------------------------------------------------------------------------------- checks


def check_images(images: torch.Tensor, *, name: str = "images", min_points: int = MIN_POINTS) -> torch.Tensor:
    """(N, C, H, W) float in [0, 1] (uint8 is divided by 255); DataError naming `name` otherwise."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise DataError(f"`{name}` must be a (N, C, H, W) image tensor, got shape {got}; add a channel axis")
    if images.dtype == torch.uint8:
        images = images.float().div(255.0)
    elif not images.dtype.is_floating_point:
        raise DataError(f"`{name}` must be uint8 or float images, got {images.dtype}")
    if images.shape[0] < min_points:
        raise DataError(
            f"`{name}`: {images.shape[0]} image(s); the scores need at least {min_points} points (they are normalized "
            "over the evaluated set); pass more points"
        )
    if images.numel():
        lo, hi = float(images.min()), float(images.max())
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi > 1:
            raise DataError(
                f"`{name}`: pixel values must lie in [0, 1] (or uint8 0..255), got [{lo:.4g}, {hi:.4g}]; divide by "
                "255 and do not standardize (the encoders normalize inside)"
            )
    return images.float()


def _valid_layers(model: nn.Module) -> list[str]:
    names = model.layer_names() if hasattr(model, "layer_names") else [n for n, _ in model.named_modules() if n]
    return [*names, OUTPUT]


def check_layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    """The layer names to score (default: the net's `layer_names()`, then "output"). ConfigError listing the valid
    names when one does not exist; any submodule name is accepted, "output" means `net.features(x)`."""
    valid = _valid_layers(model)
    if layers is None:
        return valid
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ConfigError(f"`layers` is empty; choose from {', '.join(valid)}")
    if len(set(layers)) != len(layers):
        raise ConfigError(f"`layers` {layers}: each layer may appear only once")
    modules = {n for n, _ in model.named_modules() if n}
    bad = [name for name in layers if name != OUTPUT and name not in modules]
    if bad:
        raise ConfigError(
            f"`layers`: unknown layer(s) {', '.join(map(repr, bad))} in {type(model).__name__}; valid layers: "
            f"{', '.join(valid)}"
        )
    return layers


def check_same_architecture(f: nn.Module, g: nn.Module, *, names: tuple[str, str] = ("f", "g")) -> None:
    """ConfigError unless f and g are the same class with parameters and buffers of the same names and shapes."""
    a, b = names
    if type(f) is not type(g):
        raise ConfigError(
            f"`{a}` is a {type(f).__name__} and `{b}` a {type(g).__name__}; SSLMem compares two encoders of the same "
            "architecture trained on different data"
        )
    sf = {k: tuple(v.shape) for k, v in f.state_dict().items()}
    sg = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    if sf != sg:
        diff = sorted(k for k in set(sf) | set(sg) if sf.get(k) != sg.get(k))
        raise ConfigError(
            f"`{a}` and `{b}` are both {type(f).__name__} but differ in {len(diff)} tensor(s), e.g. {diff[0]}: "
            f"{sf.get(diff[0])} vs {sg.get(diff[0])}; train both with the same width and input channels"
        )


def _as_models(m: nn.Module | Sequence[nn.Module], name: str) -> list[nn.Module]:
    models = [m] if isinstance(m, nn.Module) else list(m)
    if not models or not all(isinstance(x, nn.Module) for x in models):
        raise ConfigError(f"`{name}` must be a torch module or a non-empty list of them")
    return models


def _check_choice(value: str, choices: Sequence[str], name: str) -> None:
    if value not in choices:
        raise ConfigError(f"`{name}` must be one of {', '.join(choices)}, got {value!r}")


def _check_count(value: int, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"`{name}` must be a whole number >= {low}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------- one pass


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def layer_outputs(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """{layer: (B, ...) output} of every layer in ONE forward pass of `model.features(x)` (eval mode is the
    caller's job). "output" is the representation itself. Tensors stay on the model's device."""
    x = x.to(_device_of(model))
    names = [n for n in layers if n != OUTPUT]
    if not names:
        return {OUTPUT: model.features(x)}
    acts, out = capture(model, names, lambda: model.features(x), device=None, return_output=True)
    acts[OUTPUT] = out
    return {n: acts[n] for n in layers}


def _normalized(t: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B, D) flattened and L2-normalized (a zero vector stays zero)."""
    z = t.flatten(1).double()
    return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _views(
    x: torch.Tensor, n_aug: int, pair: str, augment: Augment, gen: torch.Generator
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """All views of a batch stacked: (V * B, C, H, W) with V = 1 + n_aug (original first) or 2 n_aug, and the
    (view a, view b) index pairs whose distances are averaged."""
    if pair == "orig_vs_aug":
        views = [x] + [augment(x, gen) for _ in range(n_aug)]
        pairs = [(0, j) for j in range(1, n_aug + 1)]
    else:
        views = []
        for _ in range(n_aug):
            views += [augment(x, gen), augment(x, gen)]
        pairs = [(2 * j, 2 * j + 1) for j in range(n_aug)]
    return torch.cat(views), pairs


def _batch_distances(
    models: Sequence[nn.Module], stacked: torch.Tensor, pairs: Sequence[tuple[int, int]], layers: Sequence[str], b: int
) -> dict[str, torch.Tensor]:
    """{layer: (B,) mean over pairs and models of ||z_a - z_b||} for one batch of stacked views."""
    total: dict[str, torch.Tensor] = {n: torch.zeros(b, dtype=torch.float64) for n in layers}
    for model in models:
        outs = layer_outputs(model, stacked, layers)
        for n in layers:
            z = _normalized(outs[n]).view(-1, b, outs[n][0].numel())  # (V, B, D)
            d = torch.stack([(z[i] - z[j]).norm(dim=1) for i, j in pairs]).mean(0)  # (B,)
            total[n] += d.cpu()
    return {n: v / len(models) for n, v in total.items()}


def _normalize(raw: np.ndarray, how: str, layer: str) -> np.ndarray:
    if how == "none":
        return raw
    width = float(raw.max() - raw.min())
    if not width > 0:
        raise DataError(
            f"layer {layer}: all {len(raw)} points have the same raw score, so the range normalization is undefined; "
            "evaluate more (and more varied) points or use `normalize`='none'"
        )
    return raw / width if how == "range" else (raw - raw.min()) / width


# ---------------------------------------------------------------------------------------------- LayerMem


@dataclasses.dataclass(frozen=True)
class LayerMem:
    """LayerMem of f versus g on N points for each layer (input to output order).

    scores: (N, L) frame, one column per layer: normalized per-point SSLMem at that layer (index = point ids).
    raw: (N, L) raw scores D_g - D_f (mean L2 distances of normalized representations; in [-2, 2]).
    dist_f, dist_g: (N, L) the alignment distances D_f and D_g themselves.
    """

    layers: list[str]
    scores: pd.DataFrame
    raw: pd.DataFrame
    dist_f: pd.DataFrame
    dist_g: pd.DataFrame
    options: dict[str, Any]

    @property
    def layermem(self) -> dict[str, float]:
        """{layer: mean normalized score over the points} (LayerMem_l)."""
        return {n: float(self.scores[n].mean()) for n in self.layers}

    @property
    def delta(self) -> dict[str, float]:
        """{layer: LayerMem_l - LayerMem_(l-1)}; the first layer's delta is its LayerMem."""
        lm = self.layermem
        out, prev = {}, 0.0
        for n in self.layers:
            out[n] = lm[n] - prev
            prev = lm[n]
        return out

    def table(self) -> pd.DataFrame:
        """One row per layer: layer, layermem, delta_layermem, raw_mean."""
        lm, dl = self.layermem, self.delta
        return pd.DataFrame(
            {
                "layer": self.layers,
                "layermem": [lm[n] for n in self.layers],
                "delta_layermem": [dl[n] for n in self.layers],
                "raw_mean": [float(self.raw[n].mean()) for n in self.layers],
            }
        )


def layermem(
    f: nn.Module | Sequence[nn.Module],
    g: nn.Module | Sequence[nn.Module],
    images: torch.Tensor,
    layers: Sequence[str] | None = None,
    *,
    ids: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    n_aug: int = 5,
    pair: str = "orig_vs_aug",
    normalize: str = "range",
    augment: Augment | None = None,
    seed: int = 0,
    batch_size: int = 64,
    single_pass: bool = True,
    progress: Callable[[int], None] | None = None,
) -> LayerMem:
    """LayerMem of every layer in `layers` (default: all of `f.layer_names()` and "output").

    f: encoder(s) trained WITH the points (shared + candidate); g: encoder(s) trained WITHOUT them (shared +
        independent); a list of several runs averages the distances over them (paper-faithful expectation).
    images: (N, C, H, W) candidate points, float in [0, 1] or uint8; ids: (N,) their ids (default 0..N-1).
    n_aug: augmentation draws per point; pair: "orig_vs_aug" (code) or "aug_vs_aug" (paper);
    normalize: "range" (raw / (max - min), code), "minmax01" ((raw - min) / (max - min)) or "none".
    augment(x, generator): the views (default `default_augment`; use the training augmentation). The same views
        are shown to every model and layer; the views are a function of (seed, batch_size) only.
    single_pass: read all layers in one forward pass per batch (True) or one pass per layer as the reference code
        does (False); both give the same numbers. progress: called with 1 per batch and model pass group.
    """
    fs, gs = _as_models(f, "f"), _as_models(g, "g")
    for m in fs[1:]:
        check_same_architecture(fs[0], m, names=("f", "f"))
    for m in gs:
        check_same_architecture(fs[0], m, names=("f", "g"))
    x = check_images(images)
    names = check_layers(fs[0], layers)
    n_aug = _check_count(n_aug, "n_aug")
    batch_size = _check_count(batch_size, "batch_size")
    _check_choice(pair, PAIRS, "pair")
    _check_choice(normalize, NORMALIZE, "normalize")
    point_ids = _ids(ids, len(x))
    aug = augment or default_augment
    for m in fs + gs:
        m.eval()
    groups = [names] if single_pass else [[n] for n in names]
    d_f: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    d_g: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for group in groups:
        gen = torch.Generator().manual_seed(int(seed))  # every group sees the very same views
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            stacked, pairs = _views(xb.to(_device_of(fs[0])), n_aug, pair, aug, gen)
            for out, models in ((d_f, fs), (d_g, gs)):
                for n, v in _batch_distances(models, stacked, pairs, group, len(xb)).items():
                    out[n].append(v)
            if progress is not None:
                progress(1)
    frame = {
        k: pd.DataFrame({n: torch.cat(v[n]).numpy() for n in names}, index=point_ids)
        for k, v in (("f", d_f), ("g", d_g))
    }
    raw = frame["g"] - frame["f"]
    scores = pd.DataFrame({n: _normalize(raw[n].to_numpy(), normalize, n) for n in names}, index=point_ids)
    for t in (raw, scores, frame["f"], frame["g"]):
        t.index.name = "id"
    options = {
        "n_aug": n_aug,
        "pair": pair,
        "normalize": normalize,
        "seed": int(seed),
        "batch_size": batch_size,
        "n_f": len(fs),
        "n_g": len(gs),
        "n_points": len(x),
    }
    return LayerMem(names, scores, raw, frame["f"], frame["g"], options)


def sslmem(
    f: nn.Module | Sequence[nn.Module],
    g: nn.Module | Sequence[nn.Module],
    images: torch.Tensor,
    **options: Any,
) -> np.ndarray:
    """SSLMem (N,) of each point at the encoder output (`layermem` restricted to "output"; same options)."""
    return layermem(f, g, images, [OUTPUT], **options).scores[OUTPUT].to_numpy()


def _ids(ids: Any, n: int) -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.int64)
    a = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids).astype(np.int64).reshape(-1)
    if len(a) != n:
        raise DataError(f"`ids` has {len(a)} entries for {n} images; give one id per image")
    return a


# ---------------------------------------------------------------------------------------------- UnitMem


def selectivity(mu: np.ndarray | torch.Tensor, others: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Selectivity index of each unit over the rows of mu (Morcos et al. 2018; UnitMem when rows are points,
    ClassMem when rows are classes): (mu_max - mu_other) / (mu_max + mu_other).

    mu: (K, U) non-negative mean activations of U units on K points (or classes), K >= 2.
    others: aggregate of the K - 1 rows other than the maximum: "mean" (paper) or "median" (reference code).
    Returns (values (U,) in [0, 1], argmax (U,) row of the maximum). A unit silent on every row (0/0) gets 0: it
    prefers no point. Negative means raise DataError (take `absolute` activations for signed layers).
    """
    m = torch.as_tensor(np.asarray(mu) if not isinstance(mu, torch.Tensor) else mu).double()
    _check_choice(others, OTHERS, "others")
    if m.ndim != 2 or m.shape[0] < 2:
        raise DataError(f"selectivity needs (K, U) means with K >= 2 rows, got shape {tuple(m.shape)}")
    if bool((m < 0).any()):
        raise DataError(
            f"selectivity: {int((m < 0).sum())} negative mean activation(s); the index is defined for non-negative "
            "activations (after ReLU); pass `absolute`=True for layers with signed outputs"
        )
    top, arg = m.max(dim=0)  # (U,)
    keep = torch.ones_like(m, dtype=torch.bool)
    keep[arg, torch.arange(m.shape[1])] = False  # drop exactly one maximal row per unit
    rest = m.t()[keep.t()].view(m.shape[1], m.shape[0] - 1)  # (U, K - 1)
    other = rest.mean(1) if others == "mean" else rest.median(1).values
    if others == "median" and rest.shape[1] % 2 == 0:
        other = rest.quantile(0.5, dim=1)  # the midpoint of the two middle values, as numpy's median
    den = top + other
    val = torch.where(den > 0, (top - other) / den.clamp_min(1e-300), torch.zeros_like(den))
    return val.numpy(), arg.numpy()


def point_selectivity(mu: np.ndarray | torch.Tensor) -> np.ndarray:
    """(K, U) selectivity of every unit for every row: (mu[k] - mean_{j != k} mu[j]) / (mu[k] + mean_{j != k} mu[j]);
    row argmax of a unit gives its UnitMem (others="mean"). 0/0 -> 0."""
    m = torch.as_tensor(np.asarray(mu) if not isinstance(mu, torch.Tensor) else mu).double()
    k = m.shape[0]
    other = (m.sum(0, keepdim=True) - m) / (k - 1)
    den = m + other
    return torch.where(den > 0, (m - other) / den.clamp_min(1e-300), torch.zeros_like(den)).numpy()


def _unit_means(t: torch.Tensor) -> torch.Tensor:
    """(B, C, *spatial) -> (B, C) spatial mean; (B, T, C) -> (B, C) token mean; (B, C) unchanged."""
    if t.dim() >= 4:
        return t.mean(dim=tuple(range(2, t.dim())))
    if t.dim() == 3:
        return t.mean(dim=1)
    return t


@torch.no_grad()
def unit_activations(
    model: nn.Module,
    images: torch.Tensor,
    layers: Sequence[str] | None = None,
    *,
    n_aug: int = 10,
    augment: Augment | None = None,
    absolute: bool = False,
    seed: int = 0,
    batch_size: int = 64,
) -> dict[str, np.ndarray]:
    """{layer: (N, U) mean activation of each unit over `n_aug` augmented views of each point} (mu_u(x) of the
    paper). A unit's activation on a view is its channel's spatial mean (conv maps) or its feature averaged over
    tokens (token models); `absolute` takes |activation| per view first (for signed layers). n_aug=0: the
    un-augmented image only. All layers are read in one pass per batch of views."""
    x = check_images(images)
    names = check_layers(model, layers)
    n_aug = _check_count(n_aug, "n_aug", low=0)
    batch_size = _check_count(batch_size, "batch_size")
    aug = augment or default_augment
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))
    dev = _device_of(model)
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(dev)
        views = [xb] if n_aug == 0 else [aug(xb, gen) for _ in range(n_aug)]
        acts = layer_outputs(model, torch.cat(views), names)
        for n in names:
            u = _unit_means(acts[n]).double()
            if absolute:
                u = u.abs()
            out[n].append(u.view(len(views), len(xb), -1).mean(0).cpu())
    return {n: torch.cat(v).numpy() for n, v in out.items()}


@dataclasses.dataclass(frozen=True)
class UnitMem:
    """UnitMem (or ClassMem) of every unit of each layer.

    values: {layer: (U,) selectivity}; argmax: {layer: (U,) id of the point (or class) with the largest mean};
    mu: {layer: (K, U) the means themselves}.
    """

    layers: list[str]
    values: dict[str, np.ndarray]
    argmax: dict[str, np.ndarray]
    mu: dict[str, np.ndarray]
    options: dict[str, Any]

    def table(self, threshold: float = 0.5) -> pd.DataFrame:
        """One row per layer: units, mean, median, max, and how many units exceed `threshold`."""
        rows = []
        for n in self.layers:
            v = self.values[n]
            rows.append(
                {
                    "layer": n,
                    "units": len(v),
                    "mean": float(v.mean()),
                    "median": float(np.median(v)),
                    "max": float(v.max()),
                    "above": int((v > threshold).sum()),
                }
            )
        return pd.DataFrame(rows)

    def frame(self) -> pd.DataFrame:
        """One row per unit: layer, unit, value, argmax."""
        return pd.concat(
            [
                pd.DataFrame(
                    {
                        "layer": n,
                        "unit": np.arange(len(self.values[n])),
                        "value": self.values[n],
                        "argmax": self.argmax[n],
                    }
                )
                for n in self.layers
            ],
            ignore_index=True,
        )


def unitmem(
    model: nn.Module,
    images: torch.Tensor,
    layers: Sequence[str] | None = None,
    *,
    ids: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    n_aug: int = 10,
    others: str = "mean",
    absolute: bool = False,
    augment: Augment | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> UnitMem:
    """UnitMem of every unit in `layers` (default: all layers and "output") on the N points `images`.

    UnitMem(u) = (mu_max - mu_other) / (mu_max + mu_other), mu over `n_aug` views (reference code: 10), mu_other
    the mean (paper) or median (`others`="median", reference code) over the other points. argmax: the id of the
    point each unit prefers (`ids`, default 0..N-1).
    """
    _check_choice(others, OTHERS, "others")
    x = check_images(images)
    point_ids = _ids(ids, len(x))
    mu = unit_activations(
        model, x, layers, n_aug=n_aug, augment=augment, absolute=absolute, seed=seed, batch_size=batch_size
    )
    values, argmax = {}, {}
    for n, m in mu.items():
        values[n], arg = selectivity(m, others)
        argmax[n] = point_ids[arg]
    options = {"n_aug": n_aug, "others": others, "absolute": absolute, "seed": int(seed), "n_points": len(x)}
    return UnitMem(list(mu), values, argmax, mu, options)


def classmem(
    model: nn.Module,
    images: torch.Tensor,
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    layers: Sequence[str] | None = None,
    *,
    others: str = "mean",
    absolute: bool = False,
    batch_size: int = 64,
) -> UnitMem:
    """ClassMem of every unit: the selectivity index over class means mu_c(u) = mean activation on the images of
    class c (no augmentation, as the reference code). labels: (N,) int classes, at least two classes present."""
    x = check_images(images)
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64).reshape(-1)
    if len(y) != len(x):
        raise DataError(f"`labels` has {len(y)} entries for {len(x)} images; give one label per image")
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"`labels`: ClassMem needs at least two classes, got {classes.tolist()}")
    act = unit_activations(model, x, layers, n_aug=0, absolute=absolute, batch_size=batch_size)
    values, argmax, mus = {}, {}, {}
    for n, a in act.items():
        mus[n] = np.stack([a[y == c].mean(0) for c in classes])  # (classes, U)
        values[n], arg = selectivity(mus[n], others)
        argmax[n] = classes[arg]
    return UnitMem(list(act), values, argmax, mus, {"others": others, "absolute": absolute, "n_points": len(x)})


# ---------------------------------------------------------------------------------------------- analysis


def _rank_points(scores: pd.DataFrame, by: str | None) -> pd.Series:
    col = scores.columns[-1] if by is None else by
    if col not in scores.columns:
        raise ConfigError(f"`by` {col!r} is not a scored layer; choose one of {', '.join(scores.columns)}")
    return scores[col]


def breakdown(scores: pd.DataFrame, *, k: int = 50, by: str | None = None, seed: int = 0) -> pd.DataFrame:
    """Mean per-layer score of k random, the top-k and the bottom-k points, ranked by layer `by` (default the
    last column, the output), as the paper's Tab. 1. scores: (N, L) per-point scores (`LayerMem.scores`).
    Returns one row per layer: layer, random, top, bottom (and k)."""
    k = _check_count(k, "k")
    if 2 * k > len(scores):
        raise DataError(f"`k`={k}: top-k and bottom-k need at least {2 * k} points, got {len(scores)}; lower `k`")
    rank = _rank_points(scores, by).to_numpy()
    order = np.argsort(-rank, kind="stable")
    top, bottom = order[:k], order[-k:]
    rnd = np.random.default_rng(seed).choice(len(scores), size=k, replace=False)
    return pd.DataFrame(
        {
            "layer": list(scores.columns),
            "random": [float(scores[c].to_numpy()[rnd].mean()) for c in scores.columns],
            "top": [float(scores[c].to_numpy()[top].mean()) for c in scores.columns],
            "bottom": [float(scores[c].to_numpy()[bottom].mean()) for c in scores.columns],
            "k": k,
        }
    )


def layer_consistency(scores: pd.DataFrame, *, k: int = 100) -> pd.DataFrame:
    """For every pair of layers: overlap (fraction in [0, 1]) of their top-k memorized points and Kendall's tau
    (tau-b, scipy) between their per-point scores. Returns rows layer_a, layer_b, topk_overlap, kendall_tau, k."""
    from scipy.stats import kendalltau

    k = _check_count(k, "k")
    k = min(k, len(scores))
    cols = list(scores.columns)
    tops = {c: set(scores[c].nlargest(k).index.tolist()) for c in cols}
    rows = []
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            tau = kendalltau(scores[a].to_numpy(), scores[b].to_numpy()).statistic
            rows.append(
                {
                    "layer_a": a,
                    "layer_b": b,
                    "topk_overlap": len(tops[a] & tops[b]) / k,
                    "kendall_tau": float(tau),
                    "k": k,
                }
            )
    return pd.DataFrame(rows, columns=["layer_a", "layer_b", "topk_overlap", "kendall_tau", "k"])


def unitmem_sslmem_ttest(
    mu: np.ndarray, sslmem_scores: np.ndarray | pd.Series, *, k: int = 50, equal_var: bool = False
) -> dict[str, float]:
    """Are points with high SSLMem also the ones units are selective for? Per point x, the highest selectivity any
    unit of the layer has for it, max_u (mu_u(x) - mean_{j!=x} mu_u(j)) / (mu_u(x) + mean_{j!=x} mu_u(j)); the
    values of the top-k SSLMem points are compared with those of the bottom-k by a one-sided Welch t-test
    (alternative: top > bottom; `rote.core.stats.welch_t`). mu: (N, U) unit means on the points; sslmem_scores:
    (N,) aligned. equal_var=True: Student's pooled-variance test instead, as the reference `Ttest.py`
    (scipy `ttest_ind(equal_var=True)`, two-sided p halved towards "greater"); its per-point values come from
    .mat files no script of the reference repository writes, so the per-point statistic here is rote's own."""
    from rote.core.stats import welch_t

    s = np.asarray(sslmem_scores, dtype=float).reshape(-1)
    if mu.shape[0] != len(s):
        raise DataError(f"`mu` has {mu.shape[0]} points and `sslmem_scores` {len(s)}; they must be aligned")
    k = _check_count(k, "k", low=2)
    if 2 * k > len(s):
        raise DataError(f"`k`={k}: the t-test needs at least {2 * k} points, got {len(s)}; lower `k`")
    per_point = point_selectivity(mu).max(axis=1)  # (N,)
    order = np.argsort(-s, kind="stable")
    top, bottom = per_point[order[:k]], per_point[order[-k:]]
    if equal_var:
        from scipy import stats

        t, p = (float(v) for v in stats.ttest_ind(top, bottom, equal_var=True, alternative="greater"))
    else:
        t, p = welch_t(top, bottom, alternative="greater")
    return {"k": k, "top_mean": float(top.mean()), "bottom_mean": float(bottom.mean()), "t": t, "p_one_sided": p}


def layer_units(scores: Mapping[str, np.ndarray], threshold: float) -> dict[str, int]:
    """{layer: number of units with a value above `threshold`}."""
    return {n: int((np.asarray(v) > threshold).sum()) for n, v in scores.items()}
