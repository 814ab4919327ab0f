"""Data with a spurious feature: labelled samples that also carry a spurious attribute, and the group (class, attribute)
of every sample.

`GroupedData` holds one split: x (N, ...) float32 inputs, y (N,) int64 classes, a (N,) int64 spurious attributes
and ids (N,) int64 that survive subsetting. The group of a sample is `y * n_attrs + a` (Sagawa et al.'s (y, a)
groups). `Splits` bundles train / val / test.

Sources (each seeded):
- `linear_toy`: the paper's interpretable experiment (Bayat et al., ICLR 2025, Fig. 1): a core feature, a spurious
  feature five times larger that agrees with the label in `agreement` of train and 50% of val/test, and
  example-specific noise dimensions that let a linear model memorize.
- `regression_toy`: the paper's "good, bad and ugly memorization" 1-D regression (Fig. 3).
- `colored_images`: a binary image task built from real images (Fashion-MNIST, MNIST-5k, digits) whose foreground
  colour (red or green) agrees with the label in `agreement` of train and 50% of val/test (ColorMNIST-style).
- `load_waterbirds`, `load_celeba`: the subpopulation-shift benchmarks from a user's files, in their own
  metadata formats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rote.core.errors import ConfigError, DataError
from rote.core.runs import make_rng

__all__ = [
    "GroupedData",
    "Splits",
    "linear_toy",
    "regression_toy",
    "colored_images",
    "image_benchmark",
    "load_waterbirds",
    "load_celeba",
    "IMAGE_SOURCES",
]


@dataclasses.dataclass(frozen=True, eq=False)
class GroupedData:
    """One split of a dataset with a spurious attribute.

    x: (N, ...) float32 inputs. y: (N,) int64 classes in [0, n_classes). a: (N,) int64 spurious attribute in
    [0, n_attrs). ids: (N,) int64 sample ids. classes / attrs: names. name: the split's source, for messages.
    """

    x: torch.Tensor
    y: torch.Tensor
    a: torch.Tensor
    ids: torch.Tensor
    classes: tuple[str, ...]
    attrs: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        for field in ("y", "a", "ids"):
            t = getattr(self, field)
            if not isinstance(t, torch.Tensor) or t.dtype != torch.int64 or t.shape != (n,):
                raise DataError(f"{self.name or 'data'}: {field} must be an int64 tensor of shape ({n},)")
        if n and (int(self.y.min()) < 0 or int(self.y.max()) >= len(self.classes)):
            raise DataError(f"{self.name or 'data'}: labels must lie in [0, {len(self.classes)})")
        if n and (int(self.a.min()) < 0 or int(self.a.max()) >= len(self.attrs)):
            raise DataError(f"{self.name or 'data'}: attributes must lie in [0, {len(self.attrs)})")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_attrs(self) -> int:
        return len(self.attrs)

    @property
    def n_groups(self) -> int:
        return self.n_classes * self.n_attrs

    @property
    def groups(self) -> torch.Tensor:
        """(N,) int64 group index y * n_attrs + a."""
        return self.y * self.n_attrs + self.a

    def group_names(self) -> list[str]:
        """Name of every group index: 'class,attr' (e.g. 'landbird,water')."""
        return [f"{c},{t}" for c in self.classes for t in self.attrs]

    def group_counts(self) -> np.ndarray:
        """(n_groups,) int64 samples per group."""
        return np.bincount(self.groups.cpu().numpy(), minlength=self.n_groups).astype(np.int64)

    def subset(self, index: Any) -> GroupedData:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.int64, device=self.x.device)
        return dataclasses.replace(self, x=self.x[idx], y=self.y[idx], a=self.a[idx], ids=self.ids[idx])

    def to(self, device: str | torch.device) -> GroupedData:
        return dataclasses.replace(
            self, x=self.x.to(device), y=self.y.to(device), a=self.a.to(device), ids=self.ids.to(device)
        )

    @property
    def in_features(self) -> int:
        return int(np.prod(self.x.shape[1:]))


@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
    """train / val / test splits of one dataset (same classes and attributes) and how they were made."""

    train: GroupedData
    val: GroupedData
    test: GroupedData
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to(self, device: str | torch.device) -> Splits:
        return Splits(self.train.to(device), self.val.to(device), self.test.to(device), dict(self.info))


def _check_fraction(name: str, value: float, low: float = 0.0, high: float = 1.0) -> None:
    if not (isinstance(value, (int, float)) and low <= float(value) <= high):
        raise ConfigError(f"`{name}` must lie in [{low}, {high}], got {value}")


def _check_count(name: str, value: int, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"`{name}` must be a whole number >= {low}, got {value}")


# ---------------------------------------------------------------------------------------------- linear toy


def _toy_split(n: int, d: int, agreement: float, noise: float, core_std: float, rng: np.random.Generator, name: str):
    y = rng.integers(0, 2, n)
    sign = 2.0 * y - 1.0
    core = (rng.normal(0.0, core_std, n) - 1.0) * sign  # the paper's x_y = (N(0, s^2) - 1)(2y - 1)
    spur = 5.0 * (rng.normal(0.0, core_std, n) - 1.0) * sign
    flip = rng.random(n) >= agreement  # the minority: spurious feature disagrees with the label
    spur = np.where(flip, -spur, spur)
    x = np.zeros((n, d), np.float32)
    x[:, 0], x[:, 1] = core, spur
    if d > 2:
        x[:, 2:] = rng.normal(0.0, 1.0, (n, d - 2)) * noise if noise > 0 else 0.0
    a = np.where(flip, 1 - y, y)  # attribute = the class the spurious feature points to
    t = lambda v: torch.as_tensor(np.array(v, dtype=np.int64))  # noqa: E731
    return GroupedData(
        torch.as_tensor(x), t(y), t(a), t(np.arange(n)), ("0", "1"), ("points-to-0", "points-to-1"), name
    )


def linear_toy(
    n: int = 1000,
    d: int = 1800,
    *,
    agreement: float = 0.9,
    noise: float = 0.5,
    core_std: float = 0.1,
    seed: int = 0,
) -> Splits:
    """The paper's interpretable linear experiment (Bayat et al. 2025, Sec. 2 / Fig. 1; `interpretable_experiment.py`).

    Every split has `n` samples, y ~ Bernoulli(0.5). Column 0 is the core feature (N(0, core_std^2) - 1)(2y - 1),
    column 1 the spurious feature, the same construction times 5, sign-flipped for a random (1 - agreement)
    fraction of train and for half of val and test; columns 2..d-1 are example-specific noise N(0, noise^2) (the
    memorization capacity; noise=0 removes it). Attribute a = the class the spurious feature points to, so the
    groups with a == y are the majority.
    """
    _check_count("n", n, 2)
    _check_count("d", d, 2)
    _check_fraction("agreement", agreement)
    if not noise >= 0:
        raise ConfigError(f"`noise` must be >= 0, got {noise}")
    rng = make_rng(seed)
    train = _toy_split(n, d, agreement, noise, core_std, rng, "linear-toy:train")
    val = _toy_split(n, d, 0.5, noise, core_std, rng, "linear-toy:val")
    test = _toy_split(n, d, 0.5, noise, core_std, rng, "linear-toy:test")
    info = {"source": "linear-toy", "n": n, "d": d, "agreement": agreement, "noise": noise, "core_std": core_std}
    return Splits(train, val, test, info)


# ---------------------------------------------------------------------------------------------- regression toy


def regression_target(x: np.ndarray | torch.Tensor) -> Any:
    """The toy's true function y = tanh(x) + 0.5 tanh(-5x) (Bayat et al. 2025, Fig. 3)."""
    if isinstance(x, torch.Tensor):
        return torch.tanh(x) + 0.5 * torch.tanh(-5.0 * x)
    return np.tanh(x) + 0.5 * np.tanh(-5.0 * x)


def regression_toy(
    n: int = 20,
    *,
    noise_dims: int = 30,
    input_noise: float = 1e-4,
    label_noise: float = 0.08,
    n_test: int = 300,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The "good, bad, ugly memorization" regression toy (`good_bad_ugly_memorization.py`).

    Training inputs: x evenly spaced on [-1.5, 1.5] (n points) plus `noise_dims` extra input dimensions of
    N(0, input_noise^2) noise; targets f(x) + N(0, label_noise^2). Test inputs: a grid of `n_test` points with fresh
    input noise; test targets f(x) without label noise. Returns tensors x_train (n, 1 + noise_dims), y_train (n,),
    x_test, y_test (noise-free), f_train (noise-free targets of the training points).
    """
    _check_count("n", n, 2)
    _check_count("noise_dims", noise_dims, 0)
    if not input_noise >= 0:
        raise ConfigError(f"`input_noise` must be >= 0, got {input_noise}")
    if not label_noise >= 0:
        raise ConfigError(f"`label_noise` must be >= 0, got {label_noise}")
    rng = make_rng(seed)
    x = np.linspace(-1.5, 1.5, n)
    f = regression_target(x)
    y = f + rng.normal(0.0, label_noise, n)
    xt = np.linspace(-1.5, 1.5, n_test)

    def inputs(v: np.ndarray) -> torch.Tensor:
        extra = rng.normal(0.0, 1.0, (len(v), noise_dims)) * input_noise
        return torch.as_tensor(np.column_stack([v, extra]), dtype=torch.float32)

    f32 = lambda v: torch.as_tensor(v, dtype=torch.float32)  # noqa: E731
    return {
        "x_train": inputs(x),
        "y_train": f32(y),
        "f_train": f32(f),
        "x_test": inputs(xt),
        "y_test": f32(regression_target(xt)),
    }


# ---------------------------------------------------------------------------------------------- images

IMAGE_SOURCES = ("fashion-mnist", "mnist5k", "digits")


def _colour(images: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) grey images in [0, 1] -> (N, 3, H, W): the foreground in red (a = 0) or green (a = 1)."""
    out = torch.zeros(images.shape[0], 3, *images.shape[2:], dtype=torch.float32)
    rows = torch.arange(images.shape[0])
    out[rows, a] = images[:, 0].float()
    return out


def colored_images(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    positive: Sequence[int],
    agreement: float,
    seed: int,
    ids: torch.Tensor | None = None,
    name: str = "colored",
    class_names: tuple[str, str] = ("neg", "pos"),
) -> GroupedData:
    """A binary task with a spurious colour: y = [label in positive]; the foreground is drawn in the colour of
    attribute a, with a = y for a random `agreement` fraction of the samples and a = 1 - y for the rest.

    images: (N, 1, H, W) uint8 or float in [0, 1]; labels: (N,) original class labels.
    """
    _check_fraction("agreement", agreement)
    if images.ndim != 4 or images.shape[1] != 1:
        raise DataError(f"{name}: colouring needs (N, 1, H, W) grey images, got {tuple(images.shape)}")
    rng = make_rng(seed)
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    y = torch.as_tensor(np.isin(labels.cpu().numpy(), list(positive)).astype(np.int64))
    agree = torch.as_tensor(rng.random(len(y)) < agreement)
    a = torch.where(agree, y, 1 - y)
    ids = torch.arange(len(y), dtype=torch.int64) if ids is None else ids.cpu().to(torch.int64)
    return GroupedData(_colour(x, a), y, a, ids, class_names, ("red", "green"), name)


def image_benchmark(
    source: str = "fashion-mnist",
    *,
    n_train: int = 4000,
    n_val: int = 1000,
    n_test: int = 2000,
    agreement: float = 0.9,
    seed: int = 0,
) -> Splits:
    """The image benchmark with a spurious feature: `source`'s images, a binary label (original class >= K/2) and a
    foreground colour that agrees with it in `agreement` of train and 50% of val and test (ColorMNIST-style,
    Arjovsky et al. 2019, without its label noise).

    source: fashion-mnist (train/val from the 60,000 training images, test from the 10,000 test images), mnist5k
    or digits (one pool split three ways). Samples are drawn at random (seeded); ids are positions in the source.
    """
    if source not in IMAGE_SOURCES:
        raise ConfigError(f"`source` must be one of {', '.join(IMAGE_SOURCES)}, got {source!r}")
    for nm, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        _check_count(nm, v, 2)
    _check_fraction("agreement", agreement)
    from rote.data import load_digits, load_fashion_mnist, load_mnist5k

    rng = make_rng(seed)
    seeds = rng.integers(0, 2**31 - 1, 3)
    if source == "fashion-mnist":
        pool, test_pool = load_fashion_mnist("train"), load_fashion_mnist("test")
        names = ("T-shirt..Coat", "Sandal..Boot")
        if n_train + n_val > len(pool) or n_test > len(test_pool):
            raise ConfigError(f"fashion-mnist has {len(pool)} train and {len(test_pool)} test images; ask for fewer")
        pick = rng.permutation(len(pool))[: n_train + n_val]
        tr, va = pick[:n_train], pick[n_train:]
        te = rng.permutation(len(test_pool))[:n_test]
        parts = [(pool, tr), (pool, va), (test_pool, te)]
    else:
        pool = load_mnist5k() if source == "mnist5k" else load_digits()
        names = ("0-4", "5-9")
        if n_train + n_val + n_test > len(pool):
            raise ConfigError(
                f"{source} has {len(pool)} images; n_train + n_val + n_test = {n_train + n_val + n_test} is more"
            )
        pick = rng.permutation(len(pool))
        tr, va, te = pick[:n_train], pick[n_train : n_train + n_val], pick[n_train + n_val : n_train + n_val + n_test]
        parts = [(pool, tr), (pool, va), (pool, te)]
    out = []
    for (ds, idx), agree, s, split in zip(parts, (agreement, 0.5, 0.5), seeds, ("train", "val", "test")):
        sub = ds.subset(np.sort(idx))
        out.append(
            colored_images(
                sub.images,
                sub.labels,
                positive=range(5, 10),
                agreement=agree,
                seed=int(s),
                ids=sub.ids,
                name=f"colored-{source}:{split}",
                class_names=names,
            )
        )
    info = {"source": f"colored-{source}", "n_train": n_train, "n_val": n_val, "n_test": n_test, "agreement": agreement}
    return Splits(out[0], out[1], out[2], info)


# ---------------------------------------------------------------------------------------------- user files


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise DataError(f"{path}: image listed in the metadata is missing")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from None


def _build(root: Path, files: list[str], y: np.ndarray, a: np.ndarray, size: int, classes, attrs, name) -> GroupedData:
    if not len(files):
        raise DataError(f"{root}: the {name} split has no images")
    x = np.stack([_read_image(root / f, size) for f in files]).astype(np.float32) / 255.0
    t = lambda v: torch.as_tensor(np.array(v, dtype=np.int64))  # noqa: E731
    return GroupedData(torch.as_tensor(x), t(y), t(a), t(np.arange(len(files))), classes, attrs, name)


def _limit(frame: Any, limit: int | None, seed: int) -> Any:
    if limit is None or len(frame) <= limit:
        return frame
    return frame.iloc[np.sort(make_rng(seed).permutation(len(frame))[:limit])]


def load_waterbirds(root: str | Path, *, size: int = 64, limit: int | None = None, seed: int = 0) -> Splits:
    """Waterbirds (Sagawa et al. 2020) from its folder: `metadata.csv` with columns img_filename, y (0 landbird,
    1 waterbird), split (0 train, 1 val, 2 test) and place (0 land, 1 water); images under `root`. Images are
    resized to size x size RGB; `limit` keeps at most that many random images per split (seeded)."""
    import pandas as pd

    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise DataError(f"{root}: no metadata.csv; point `root` at the extracted waterbird_complete95 folder")
    frame = pd.read_csv(meta)
    missing = [c for c in ("img_filename", "y", "split", "place") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{meta}: missing columns {', '.join(missing)}; Waterbirds metadata has img_filename, y, split, place"
        )
    parts = []
    for code, split in enumerate(("train", "val", "test")):
        f = _limit(frame[frame["split"] == code], limit, seed + code)
        parts.append(
            _build(
                root,
                list(f["img_filename"]),
                f["y"].to_numpy(),
                f["place"].to_numpy(),
                size,
                ("landbird", "waterbird"),
                ("land", "water"),
                f"waterbirds:{split}",
            )
        )
    return Splits(*parts, info={"source": "waterbirds", "root": str(root), "size": size, "limit": limit})


def _celeba_table(path_csv: Path, path_txt: Path, kind: str) -> Any:
    import pandas as pd

    if path_csv.is_file():
        return pd.read_csv(path_csv)
    if path_txt.is_file():
        lines = path_txt.read_text().splitlines()
        if kind == "attr":  # first line: count; second: attribute names; then "file v1 v2 ..."
            names = lines[1].split()
            rows = [ln.split() for ln in lines[2:] if ln.strip()]
            frame = pd.DataFrame([r[1:] for r in rows], columns=names).astype(int)
            frame.insert(0, "image_id", [r[0] for r in rows])
            return frame
        rows = [ln.split() for ln in lines if ln.strip()]
        return pd.DataFrame({"image_id": [r[0] for r in rows], "partition": [int(r[1]) for r in rows]})
    raise DataError(
        f"{path_csv.parent}: neither {path_csv.name} nor {path_txt.name}; point `root` at the CelebA folder"
    )


def load_celeba(
    root: str | Path,
    *,
    target: str = "Blond_Hair",
    attribute: str = "Male",
    size: int = 64,
    limit: int | None = None,
    seed: int = 0,
) -> Splits:
    """CelebA (Liu et al. 2015) as in Sagawa et al.: class = `target` attribute, spurious attribute = `attribute`.

    Reads `list_attr_celeba.csv` (Kaggle: image_id + 40 columns of -1/1) or `list_attr_celeba.txt` (the original
    format), `list_eval_partition.csv` or `.txt` (0 train, 1 val, 2 test), and images from `img_align_celeba/`
    (or its doubled Kaggle form `img_align_celeba/img_align_celeba/`).
    """
    root = Path(root)
    attrs = _celeba_table(root / "list_attr_celeba.csv", root / "list_attr_celeba.txt", "attr")
    parts_t = _celeba_table(root / "list_eval_partition.csv", root / "list_eval_partition.txt", "partition")
    for col in (target, attribute):
        if col not in attrs.columns:
            raise DataError(f"{root}: no attribute {col!r}; attributes are {', '.join(map(str, attrs.columns[1:]))}")
    frame = attrs.merge(parts_t, on="image_id")
    img = root / "img_align_celeba"
    if (img / "img_align_celeba").is_dir():
        img = img / "img_align_celeba"
    out = []
    for code, split in enumerate(("train", "val", "test")):
        f = _limit(frame[frame["partition"] == code], limit, seed + code)
        out.append(
            _build(
                img,
                list(f["image_id"]),
                (f[target].to_numpy() > 0).astype(int),
                (f[attribute].to_numpy() > 0).astype(int),
                size,
                (f"not {target}", target),
                (f"not {attribute}", attribute),
                f"celeba:{split}",
            )
        )
    return Splits(*out, info={"source": "celeba", "root": str(root), "target": target, "attribute": attribute})
