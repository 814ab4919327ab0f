"""Use of UnitMem: prune the highest-, lowest-UnitMem or random units and re-train a linear probe (Wang et al.,
NeurIPS 2024, Sec. 6; reference `prune.py` + `performance_loss_cal.py`).

Pruning zeroes whole filters (conv weights and the following BatchNorm's scale and shift, `rote.nets.prune_units`),
so a pruned unit outputs exactly 0 before its ReLU. The probe is a multinomial logistic regression (scikit-learn,
L-BFGS, deterministic) on the frozen, standardized features of the pruned encoder.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from rote.core.errors import ConfigError, DataError
from rote.nets import prune_units
from rote.ssl.scores import OUTPUT, check_images

__all__ = ["RULES", "choose_units", "pruned_copy", "encode", "linear_probe", "pruning_curve"]

RULES = ("top", "random", "bottom", "none")


def choose_units(values: np.ndarray, fraction: float, rule: str, *, seed: int = 0) -> np.ndarray:
    """Indices of round(fraction * U) units: the highest values ("top"), the lowest ("bottom"), a seeded random
    set ("random") or none ("none"). Ties are broken by unit index (stable sort)."""
    if rule not in RULES:
        raise ConfigError(f"`rule` must be one of {', '.join(RULES)}, got {rule!r}")
    if not 0 <= fraction < 1:
        raise ConfigError(f"`fraction` must lie in [0, 1), got {fraction}")
    v = np.asarray(values, dtype=float)
    k = int(round(fraction * len(v)))
    if rule == "none" or k == 0:
        return np.zeros(0, dtype=np.int64)
    if rule == "random":
        return np.sort(np.random.default_rng(seed).choice(len(v), size=k, replace=False))
    order = np.argsort(-v if rule == "top" else v, kind="stable")
    return np.sort(order[:k])


def pruned_copy(
    model: nn.Module, unit_values: Mapping[str, np.ndarray], fraction: float, rule: str, *, seed: int = 0
) -> tuple[nn.Module, dict[str, list[int]]]:
    """A deep copy of `model` with, in every layer of `unit_values` ({layer: (U,) UnitMem}), the `rule` fraction of
    its units pruned (per-layer ranking, as the reference's default). Returns (copy, {layer: pruned units})."""
    net = copy.deepcopy(model)
    chosen: dict[str, list[int]] = {}
    for i, (name, values) in enumerate(unit_values.items()):
        if name == OUTPUT:
            continue  # the representation is not a layer with filters of its own
        idx = choose_units(values, fraction, rule, seed=seed + i)
        layer = net.get_submodule(name)
        if idx.size:
            prune_units(layer, torch.as_tensor(idx))
        chosen[name] = idx.tolist()
    return net.eval(), chosen


@torch.no_grad()
def encode(model: nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> np.ndarray:
    """(N, feature_dim) float64 representations `model.features(x)` in eval mode."""
    model.eval()
    dev = next(model.parameters()).device
    x = check_images(images)
    out = [model.features(x[s : s + batch_size].to(dev)).double().cpu() for s in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def linear_probe(
    model: nn.Module,
    train_images: torch.Tensor,
    train_labels: Sequence[int] | np.ndarray | torch.Tensor,
    test_images: torch.Tensor,
    test_labels: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    c: float = 1.0,
    max_iter: int = 500,
) -> float:
    """Test accuracy of a logistic-regression probe (inverse regularization `c`) trained on the frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    ytr = np.asarray(train_labels.cpu() if isinstance(train_labels, torch.Tensor) else train_labels).reshape(-1)
    yte = np.asarray(test_labels.cpu() if isinstance(test_labels, torch.Tensor) else test_labels).reshape(-1)
    if len(np.unique(ytr)) < 2:
        raise DataError("`train_labels`: the probe needs at least two classes")
    ftr, fte = encode(model, train_images), encode(model, test_images)
    if len(ytr) != len(ftr) or len(yte) != len(fte):
        raise DataError("the probe's labels and images differ in length; give one label per image")
    scaler = StandardScaler().fit(ftr)
    clf = LogisticRegression(C=c, max_iter=max_iter)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on tiny probes: the accuracy is what is reported
        clf.fit(scaler.transform(ftr), ytr)
    return float((clf.predict(scaler.transform(fte)) == yte).mean())


def pruning_curve(
    model: nn.Module,
    unit_values: Mapping[str, np.ndarray],
    probe_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    fraction: float = 0.1,
    rules: Sequence[str] = RULES,
    seed: int = 0,
) -> dict[str, float]:
    """{rule: linear-probe accuracy after pruning `fraction` of the units of each layer by that rule}.
    probe_data: (train images, train labels, test images, test labels)."""
    out = {}
    for rule in rules:
        net, _ = pruned_copy(model, unit_values, fraction if rule != "none" else 0.0, rule, seed=seed)
        out[rule] = linear_probe(net, *probe_data)
    return out
