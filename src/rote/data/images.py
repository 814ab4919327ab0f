"""`ImageDataset`: an index-aligned image dataset that every image loader returns.

Every sample carries an int64 id (its position in the file or split it was loaded from) that survives subsetting,
splitting, duplicate planting and augmentation, so per-sample scores computed anywhere (losses, memorization
scores, membership labels) can be joined back to the original sample. Splits are seeded (see `rote.data.splits`).

Pixel conventions: `images` is (N, C, H, W), either uint8 in [0, 255] (as loaded) or float32 in [0, 1]
(after `.float()` or augmentation). Labels are int64 class indices into `classes`; -1 marks an unlabelled sample
(STL-10's unlabelled split).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from rote.core.errors import ConfigError, DataError
from rote.core.runs import make_rng
from rote.data.splits import balanced_indices, halves_indices, kfold_indices

Index = Sequence[int] | np.ndarray | torch.Tensor


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with labels, stable sample ids, class names and where they came from.

    images: (N, C, H, W) uint8 in [0, 255] or float32 in [0, 1].
    labels: (N,) int64 in [0, len(classes)), or -1 for unlabelled samples.
    ids: (N,) int64 sample ids; a subset or augmented copy keeps the ids of the samples it came from (planted
        duplicates share the id of their original).
    classes: class names, index = label.
    source: where the samples came from (a file, folder or dataset name), used in messages and run configs.

    The constructor checks shapes and dtypes only (cheap); loaders check pixel values where data enters.
    """

    images: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor
    classes: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        x, y, i = self.images, self.labels, self.ids
        where = self.source or "images"
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise DataError(
                f"{where}: images must be a (N, C, H, W) tensor, got "
                f"{tuple(x.shape) if hasattr(x, 'shape') else type(x).__name__}"
            )
        if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
            raise DataError(f"{where}: images must be uint8 or float, got {x.dtype}")
        n = x.shape[0]
        for name, t in (("labels", y), ("ids", i)):
            if not isinstance(t, torch.Tensor) or t.dtype != torch.int64 or t.shape != (n,):
                got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
                raise DataError(
                    f"{where}: {name} must be an int64 tensor of shape ({n},) to match {n} images, got {got}"
                )
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    # ------------------------------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        c, h, w = self.shape
        return (
            f"ImageDataset({len(self)} x {c}x{h}x{w} {str(self.images.dtype).removeprefix('torch.')}, "
            f"{len(self.classes)} classes, source={self.source!r})"
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def class_counts(self) -> np.ndarray:
        """(n_classes,) int64: samples per class (unlabelled samples are not counted)."""
        y = self.labels.cpu().numpy()
        return np.bincount(y[y >= 0], minlength=self.n_classes).astype(np.int64)

    def _with(self, **changes: Any) -> ImageDataset:
        return dataclasses.replace(self, **changes)

    def to(self, device: str | torch.device) -> ImageDataset:
        """The same dataset with all tensors on `device` (a no-op copy-free view when already there)."""
        return self._with(images=self.images.to(device), labels=self.labels.to(device), ids=self.ids.to(device))

    def float(self) -> ImageDataset:
        """Images as float32 in [0, 1] (uint8 divided by 255; float images are kept)."""
        if self.images.dtype == torch.uint8:
            return self._with(images=self.images.float().div_(255.0))
        return self._with(images=self.images.float())

    # ------------------------------------------------------------------------------------------ subsets
    def _positions(self, index: Index) -> torch.Tensor:
        idx = torch.as_tensor(np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index))
        if idx.dtype == torch.bool:
            if idx.shape != (len(self),):
                raise ConfigError(f"a boolean mask must have shape ({len(self)},), got {tuple(idx.shape)}")
            idx = idx.nonzero().flatten()
        elif idx.numel() == 0:
            idx = idx.to(torch.int64).reshape(0)
        elif idx.dtype.is_floating_point or idx.dtype.is_complex:
            raise ConfigError(f"positions must be integers, got {idx.dtype}")
        idx = idx.to(torch.int64).reshape(-1)
        if idx.numel() and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ConfigError(f"positions must lie in [0, {len(self)}), got {int(idx.min())}..{int(idx.max())}")
        return idx.to(self.device)

    def subset(self, index: Index) -> ImageDataset:
        """The samples at `index` (positions or a boolean mask, in the given order); ids are kept."""
        idx = self._positions(index)
        return self._with(images=self.images[idx], labels=self.labels[idx], ids=self.ids[idx])

    def balanced_subset(self, n_per_class: int, *, seed: int | np.random.Generator) -> ImageDataset:
        """`n_per_class` random samples of every class (in dataset order)."""
        return self.subset(
            balanced_indices(self.labels.cpu().numpy(), n_per_class, seed=seed, n_classes=self.n_classes)
        )

    def kfold(
        self, k: int, *, seed: int | np.random.Generator, stratify: bool = False
    ) -> list[tuple[ImageDataset, ImageDataset]]:
        """`k` (train, held_out) pairs; every sample is held out exactly once (for held-out predictions)."""
        labels = self.labels.cpu().numpy() if stratify else None
        return [(self.subset(tr), self.subset(te)) for tr, te in kfold_indices(len(self), k, seed=seed, labels=labels)]

    def halves(self, *, seed: int | np.random.Generator, balanced: bool = False) -> tuple[ImageDataset, ImageDataset]:
        """Two random disjoint halves covering the dataset (XRM-style twins); `balanced` halves every class."""
        a, b = halves_indices(len(self), seed=seed, labels=self.labels.cpu().numpy() if balanced else None)
        return self.subset(a), self.subset(b)

    def plant_duplicates(
        self, index: int | Index, copies: int | Sequence[int] = 1, *, seed: int | np.random.Generator
    ) -> tuple[ImageDataset, pd.DataFrame]:
        """Append exact copies of some samples (duplicated-sample planting, for memorization-vs-duplication studies).

        index: positions of the samples to duplicate, or an int n to pick n distinct samples at random.
        copies: extra copies per chosen sample (an int, or one count per sample: e.g. [1, 10, 100]).
        Returns (dataset, record): the dataset is this one followed by the copies (in a seeded random order); each
        copy keeps the id of its original. record has one row per chosen sample: id, position (in this
        dataset), copies (extra copies added) and occurrences (copies + 1).
        """
        rng = make_rng(seed)
        if isinstance(index, (int, np.integer)):
            if not 0 <= index <= len(self):
                raise ConfigError(f"cannot choose {index} of {len(self)} samples to duplicate")
            pos = np.sort(rng.choice(len(self), int(index), replace=False)).astype(np.int64)
        else:
            pos = self._positions(index).cpu().numpy() % max(len(self), 1)  # -1 -> last position
            if len(np.unique(pos)) != len(pos):
                raise ConfigError("positions to duplicate must be distinct; raise `copies` instead")
        counts = np.asarray(copies, dtype=np.int64)
        counts = np.full(pos.shape, int(counts)) if counts.ndim == 0 else counts
        if counts.shape != pos.shape:
            raise ConfigError(f"{len(counts)} copy counts for {len(pos)} samples to duplicate")
        if (counts < 0).any():
            raise ConfigError(f"copies must be >= 0, got {int(counts.min())}")
        dup = self.subset(np.repeat(pos, counts)[rng.permutation(int(counts.sum()))])
        planted = self._with(
            images=torch.cat([self.images, dup.images]),
            labels=torch.cat([self.labels, dup.labels]),
            ids=torch.cat([self.ids, dup.ids]),
        )
        record = pd.DataFrame(
            {"id": self.ids.cpu().numpy()[pos], "position": pos, "copies": counts, "occurrences": counts + 1}
        )
        return planted, record

    # ------------------------------------------------------------------------------------------ iteration
    def augmented(
        self, augment: Callable[..., torch.Tensor], *, copies: int = 1, seed: int = 0, batch_size: int = 1024
    ) -> ImageDataset:
        """`copies` augmented views of every sample (float32), made in batches on the dataset's device.

        augment: a batch function `augment(x, generator=...)` such as `rote.data.augment.simclr_augment`.
        The result holds copy 0 of every sample, then copy 1, ...; ids and labels are repeated alongside.
        """
        if copies < 1:
            raise ConfigError(f"copies must be at least 1, got {copies}")
        gen = torch.Generator().manual_seed(int(seed))
        x = self.float().images
        views = [
            augment(x[s : s + batch_size], generator=gen)
            for _ in range(copies)
            for s in range(0, len(self), batch_size)
        ]
        return self._with(
            images=torch.cat(views) if views else x, labels=self.labels.repeat(copies), ids=self.ids.repeat(copies)
        )

    def batches(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(x, y, id) batches sliced straight from the tensors, on their device: no worker processes or
        per-sample collation, which for small in-memory images is much faster than a DataLoader."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        n = len(self)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))) if shuffle else torch.arange(n)
        order = order.to(self.device)
        stop = n - n % batch_size if drop_last else n
        for s in range(0, stop, batch_size):
            idx = order[s : s + batch_size]
            yield self.images[idx], self.labels[idx], self.ids[idx]

    def torch_dataset(self) -> IndexedImages:
        """A `torch.utils.data.Dataset` yielding (x, y, id) per sample."""
        return IndexedImages(self)

    def loader(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0, drop_last: bool = False, **kwargs: Any
    ) -> torch.utils.data.DataLoader:
        """A DataLoader of (x, y, id) batches; shuffling is seeded (a private torch.Generator)."""
        gen = torch.Generator().manual_seed(int(seed))
        return torch.utils.data.DataLoader(
            self.torch_dataset(), batch_size=batch_size, shuffle=shuffle, generator=gen, drop_last=drop_last, **kwargs
        )


class IndexedImages(torch.utils.data.Dataset):
    """Torch adapter of an `ImageDataset`: item i is (images[i], labels[i], ids[i])."""

    def __init__(self, data: ImageDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.data.images[i], self.data.labels[i], self.data.ids[i]


# ---------------------------------------------------------------------------------------------- from arrays

_LAYOUTS = ("auto", "NCHW", "NHWC")


def _to_uint8_or_float(x: np.ndarray, where: str) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.bool_):
        raise DataError(f"{where}: images are boolean; pass uint8 in [0, 255] or float in [0, 1]")
    if x.size == 0:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: integer pixel values must lie in [0, 255], got [{lo}, {hi}]")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"{where}: {int((~np.isfinite(x)).sum())} pixel values are NaN or infinite")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            hint = "; divide by 255" if hi <= 255.0 and lo >= 0.0 else ""
            raise DataError(f"{where}: float pixel values must lie in [0, 1], got [{lo:g}, {hi:g}]{hint}")
        return x.astype(np.float32, copy=False)
    raise DataError(f"{where}: images have unsupported dtype {x.dtype}; pass uint8 or float")


def from_arrays(
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor | Sequence[int] | None = None,
    *,
    classes: Sequence[str] | None = None,
    ids: np.ndarray | Sequence[int] | None = None,
    layout: str = "auto",
    source: str = "arrays",
) -> ImageDataset:
    """Check arrays and wrap them as an `ImageDataset`.

    images: (N, H, W) grayscale, or (N, C, H, W) / (N, H, W, C) with C in {1, 3, 4}; uint8 (or other integers)
        in [0, 255], or floats in [0, 1]. `layout` gives the channel position; "auto" takes the axis (1 or 3) with
        1, 3 or 4 entries whose opposite side is over 4 pixels, and raises ConfigError when that is ambiguous.
    labels: (N,) integer class indices in [0, len(classes)), -1 for unlabelled; None = all unlabelled.
    classes: class names (default "0", "1", ... up to the largest label).
    ids: (N,) distinct integer sample ids (default 0..N-1).
    DataError naming `source` for wrong shapes, pixel ranges and labels that do not match the images.
    """
    if layout not in _LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(_LAYOUTS)}, got {layout!r}")
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
        layout = "NCHW"
    if x.ndim != 4:
        raise DataError(f"{source}: images must be (N, H, W), (N, C, H, W) or (N, H, W, C), got shape {x.shape}")
    if layout == "auto":
        # a channel axis has 1, 3 or 4 entries and the image side across from it more than 4
        first = x.shape[1] in (1, 3, 4) and x.shape[3] > 4
        last = x.shape[3] in (1, 3, 4) and x.shape[1] > 4
        if first == last:
            raise ConfigError(
                f"{source}: cannot tell the channel axis of shape {x.shape}; pass layout='NCHW' or layout='NHWC'"
            )
        layout = "NCHW" if first else "NHWC"
    if layout == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    if x.shape[1] not in (1, 3, 4):
        raise DataError(f"{source}: images have {x.shape[1]} channels in layout {layout}; expected 1, 3 or 4")
    x = np.ascontiguousarray(_to_uint8_or_float(x, source))
    n = x.shape[0]
    if labels is None:
        y = np.full(n, -1, np.int64)
    else:
        y = np.asarray(labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels)
        if y.ndim == 2 and 1 in y.shape:  # a column or row vector, as .mat files store labels
            y = y.reshape(-1)
    y = _check_labels(y, n, classes, source)
    if classes is None:
        classes = tuple(str(c) for c in range(int(y.max()) + 1 if n and y.max() >= 0 else 0))
    i = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids)
    if i.shape != (n,) or (i.size and not np.issubdtype(i.dtype, np.integer)):
        raise DataError(f"{source}: ids must be ({n},) integers, got {i.dtype} {i.shape}")
    if len(np.unique(i)) != n:
        raise DataError(f"{source}: ids must be distinct")
    return ImageDataset(
        torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(i.astype(np.int64)), tuple(classes), source
    )


def _check_labels(y: np.ndarray, n: int, classes: Sequence[str] | None, source: str) -> np.ndarray:
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be one-dimensional, got shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{source}: {len(y)} labels for {n} images; they must match one to one")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.array_equal(y, np.round(y)):
            raise DataError(f"{source}: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < -1:
        raise DataError(f"{source}: label {int(y.min())} is negative; labels are class indices (-1 = unlabelled)")
    if classes is not None and y.size and y.max() >= len(classes):
        raise DataError(f"{source}: label {int(y.max())} is out of range for {len(classes)} classes")
    return y
