"""Train the encoders that SSLMem compares: SimCLR (Chen et al. 2020) and a supervised baseline of the same
architecture, on `rote.core.training.Trainer`, with the papers' split protocol.

Splits (Wang et al. 2024, code: CIFAR-10 indices 0-39,999 shared, 40,000-44,999 candidate, 45,000-49,999
independent): f is trained on shared + candidate, g on shared + independent; the candidates are the scored points.
Encoders are saved as one checkpoint file holding the architecture, the weights and the split (`save_encoder`),
read back with `weights_only=True` (`load_encoder`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rote.core.checkpoints import load_checkpoint, save_checkpoint
from rote.core.errors import ConfigError, DataError
from rote.core.training import Trainer
from rote.data.augment import crop_flip
from rote.nets import ResNet9, ResNet18, ViT

__all__ = [
    "ARCHS",
    "Splits",
    "make_splits",
    "check_splits",
    "nt_xent",
    "build_encoder",
    "train_simclr",
    "train_supervised",
    "save_encoder",
    "load_encoder",
    "Encoder",
]

ARCHS = ("resnet9", "resnet18", "vit")
KIND = "rote.ssl.encoder"


@dataclasses.dataclass(frozen=True)
class Splits:
    """Positions (into one dataset) of the three disjoint subsets of the protocol."""

    shared: np.ndarray
    candidate: np.ndarray
    independent: np.ndarray

    def train_positions(self, which: str) -> np.ndarray:
        """Positions f ("f": shared + candidate) or g ("g": shared + independent) trains on."""
        if which == "f":
            return np.concatenate([self.shared, self.candidate])
        if which == "g":
            return np.concatenate([self.shared, self.independent])
        raise ConfigError(f"`which` must be f or g, got {which!r}")

    def to_dict(self) -> dict[str, list[int]]:
        return {k: getattr(self, k).tolist() for k in ("shared", "candidate", "independent")}


def check_splits(shared: Any, candidate: Any, independent: Any, n: int | None = None) -> Splits:
    """Splits from position lists; DataError when they overlap, repeat a position or fall outside 0..n-1."""
    parts = {
        k: np.asarray(v, dtype=np.int64).reshape(-1)
        for k, v in (("shared", shared), ("candidate", candidate), ("independent", independent))
    }
    for k, v in parts.items():
        if len(np.unique(v)) != len(v):
            raise DataError(f"`{k}` repeats positions; each point may appear once")
        if n is not None and len(v) and (v.min() < 0 or v.max() >= n):
            raise DataError(f"`{k}` has positions outside 0..{n - 1}")
    for a, b in (("candidate", "independent"), ("shared", "candidate"), ("shared", "independent")):
        both = np.intersect1d(parts[a], parts[b])
        if len(both):
            raise DataError(
                f"`{a}` and `{b}` share {len(both)} point(s) (e.g. position {int(both[0])}); g must never see a "
                "candidate, so the subsets must be disjoint"
            )
    if len(parts["candidate"]) < 2:
        raise DataError(f"`candidate` has {len(parts['candidate'])} point(s); the scores need at least 2")
    return Splits(**parts)


def make_splits(n: int, n_candidate: int, n_independent: int, *, n_shared: int | None = None, seed: int = 0) -> Splits:
    """A seeded random split of n points into shared, candidate and independent subsets (sorted positions).
    n_shared: default all the rest."""
    for name, v in (("n_candidate", n_candidate), ("n_independent", n_independent)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
            raise ConfigError(f"`{name}` must be a whole number >= 2, got {v!r}")
    rest = n - n_candidate - n_independent
    n_shared = rest if n_shared is None else int(n_shared)
    if n_shared < 0 or n_shared > rest:
        raise DataError(
            f"{n} points cannot hold {n_candidate} candidate + {n_independent} independent + {n_shared} shared; "
            "use more data or smaller subsets"
        )
    perm = np.random.default_rng(seed).permutation(n)
    c, i = perm[:n_candidate], perm[n_candidate : n_candidate + n_independent]
    s = perm[n_candidate + n_independent : n_candidate + n_independent + n_shared]
    return check_splits(np.sort(s), np.sort(c), np.sort(i), n)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent loss (Chen et al. 2020, Eq. 1) averaged over the 2B anchors. z1, z2: (B, D) projections
    of two views of the same B images; positives are (z1[i], z2[i]), negatives the other 2B - 2 views."""
    if z1.shape != z2.shape or z1.ndim != 2 or z1.shape[0] < 2:
        raise DataError(f"nt_xent needs two (B, D) batches with B >= 2, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, D)
    sim = z @ z.t() / temperature  # (2B, 2B) cosine / tau
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


def build_encoder(
    arch: str,
    in_channels: int,
    *,
    width: int = 64,
    image_size: int = 32,
    num_classes: int | None = None,
    projection_dim: int | None = 64,
    seed: int = 0,
) -> nn.Module:
    """A rote.nets encoder: ResNet9 (paper), ResNet18, or a small ViT. With num_classes: supervised classifier
    head; else a SimCLR projection head of `projection_dim` (reference config: 64)."""
    if arch not in ARCHS:
        raise ConfigError(f"`arch` must be one of {', '.join(ARCHS)}, got {arch!r}")
    proj = None if num_classes is not None else projection_dim
    if arch == "resnet9":
        return ResNet9(in_channels, num_classes, width=width, projection_dim=proj, seed=seed)
    if arch == "resnet18":
        return ResNet18(in_channels, num_classes, width=width, projection_dim=proj, seed=seed)
    patch = 4 if image_size % 4 == 0 else 2
    return ViT(
        in_channels,
        num_classes,
        image_size=image_size,
        patch_size=patch,
        dim=width,
        depth=4,
        heads=4,
        projection_dim=proj,
        seed=seed,
    )


def _cpu_generator(st: Any) -> torch.Generator:
    """A CPU generator drawn from the epoch's stream (augmentation parameters are drawn on the CPU)."""
    g = st.generator
    s = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
    return torch.Generator().manual_seed(s)


def _fit(
    model: nn.Module,
    step,
    n: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    device: str | torch.device,
    checkpoint_dir: str | os.PathLike | None,
    progress: Any,
    kind: str,
    meta: dict,
) -> list[dict]:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"`epochs` must be a whole number >= 1, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ConfigError(f"`batch_size` must be a whole number >= 2, got {batch_size!r}")
    if not lr > 0:
        raise ConfigError(f"`lr` must be > 0, got {lr}")
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    state = Trainer(
        {"model": model},
        step,
        optimizers={"model": opt},
        data=n,
        batch_size=min(batch_size, n),
        drop_last=n > batch_size,
        epochs=epochs,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=1 if checkpoint_dir else None,
        keep_checkpoints=2,
        kind=kind,
        meta=meta,
        progress=progress,
        description=kind.rsplit(".", 1)[-1],
    ).fit()
    return list(state.history)


def train_simclr(
    model: nn.Module,
    images: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 256,
    temperature: float = 0.5,
    lr: float = 1e-3,
    weight_decay: float = 1e-6,
    strength: float = 0.5,
    seed: int = 0,
    device: str = "cpu",
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Any = False,
) -> list[dict]:
    """SimCLR training of `model` (a rote net with a projection head) on images (N, C, H, W) float [0, 1] in place:
    two `simclr_augment` views per image, NT-Xent at `temperature`, Adam (reference: lr 1e-3, wd 1e-6, tau 0.5).
    Returns the per-epoch history. Resumes from `checkpoint_dir` when it holds checkpoints."""
    from rote.data.augment import simclr_augment

    if not temperature > 0:
        raise ConfigError(f"`temperature` must be > 0, got {temperature}")
    dev = torch.device(device)
    x = images.to(dev)

    def step(idx: torch.Tensor, st: Any) -> dict:
        xb = x[idx.to(dev)]
        gen = _cpu_generator(st)
        v1 = simclr_augment(xb, generator=gen, strength=strength)
        v2 = simclr_augment(xb, generator=gen, strength=strength)
        return {"loss": nt_xent(model(v1), model(v2), temperature)}

    meta = {"method": "simclr", "n": len(x), "temperature": float(temperature), "strength": float(strength)}
    return _fit(
        model,
        step,
        len(x),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        device=dev,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        kind="rote.ssl.simclr",
        meta=meta,
    )


def train_supervised(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    seed: int = 0,
    device: str = "cpu",
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Any = False,
) -> list[dict]:
    """The supervised baseline: cross-entropy with crop + flip augmentation, Adam; `model` has a classifier head."""
    dev = torch.device(device)
    x, y = images.to(dev), labels.to(dev)
    if (y < 0).any():
        raise DataError("`labels`: the supervised baseline needs labelled images (found -1)")

    def step(idx: torch.Tensor, st: Any) -> dict:
        idx = idx.to(dev)
        xb = crop_flip(x[idx], generator=_cpu_generator(st))
        return {"loss": F.cross_entropy(model(xb), y[idx])}

    meta = {"method": "supervised", "n": len(x)}
    return _fit(
        model,
        step,
        len(x),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        device=dev,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        kind="rote.ssl.supervised",
        meta=meta,
    )


@dataclasses.dataclass
class Encoder:
    """A loaded encoder: the net, how it was built (`arch`), how it was trained (`info`: method, data, split role,
    the split's positions and the candidate ids)."""

    model: nn.Module
    arch: dict[str, Any]
    info: dict[str, Any]


def save_encoder(path: str | os.PathLike, model: nn.Module, arch: dict[str, Any], info: dict[str, Any]) -> Path:
    """Write the encoder atomically: {"arch": build_encoder kwargs, "state_dict", "info"}."""
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(path, {"arch": dict(arch), "state_dict": sd, "info": dict(info)}, KIND)


def load_encoder(path: str | os.PathLike, *, name: str = "f", device: str | torch.device = "cpu") -> Encoder:
    """Read an encoder written by `save_encoder` / `rote ssl train` (weights_only: no pickled code runs)."""
    p = Path(path)
    if p.is_dir():
        p = p / "encoder.pt"
    if not p.is_file():
        raise DataError(f"`{name}` {path}: no such encoder file; pass the encoder.pt that `rote ssl train` wrote")
    try:
        ck = load_checkpoint(p, KIND, map_location="cpu")
    except ConfigError as e:
        raise DataError(f"`{name}` {p}: not a rote ssl encoder ({e})") from None
    except Exception as e:  # a corrupt or foreign file
        raise DataError(f"`{name}` {p}: cannot be read as a rote ssl encoder ({type(e).__name__})") from None
    arch = dict(ck["arch"])
    model = build_encoder(**arch)
    model.load_state_dict(ck["state_dict"])
    model.to(device).eval()
    return Encoder(model, arch, dict(ck.get("info", {})))


def positions_of(ids: Sequence[int], all_ids: np.ndarray) -> np.ndarray:
    """Positions in a dataset (ids all_ids) of the given sample ids; DataError for ids it lacks."""
    lookup = {int(v): i for i, v in enumerate(all_ids.tolist())}
    missing = [int(v) for v in ids if int(v) not in lookup]
    if missing:
        raise DataError(
            f"{len(missing)} candidate id(s) (e.g. {missing[0]}) are not in the dataset; use the data "
            "the encoders were trained on"
        )
    return np.asarray([lookup[int(v)] for v in ids], dtype=np.int64)
