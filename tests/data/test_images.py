"""ImageDataset: ids through subsets, splits, duplicate planting, augmentation and loaders; the split functions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from rote.core.errors import ConfigError, DataError
from rote.data.augment import random_horizontal_flip
from rote.data.images import ImageDataset, from_arrays
from rote.data.splits import balanced_indices, halves_indices, kfold_indices


def toy(n: int = 30, n_classes: int = 3, seed: int = 0) -> ImageDataset:
    """Images whose first pixel is the sample's id (so any row can be traced back by value)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, 4, 5), dtype=np.uint8)
    x[:, 0, 0, 0] = np.arange(n)
    y = np.arange(n) % n_classes
    return from_arrays(
        x, y, classes=[f"c{i}" for i in range(n_classes)], ids=np.arange(100, 100 + n), layout="NCHW", source="toy"
    )


def assert_aligned(ds: ImageDataset) -> None:
    """Every row still holds the image and label of the sample its id names."""
    pos = ds.ids - 100
    assert torch.equal(ds.images[:, 0, 0, 0].long(), pos) and torch.equal(ds.labels, pos % 3)


def test_subset_keeps_ids_and_checks_positions():
    ds = toy()
    sub = ds.subset([5, 2, 2, -1])
    assert sub.ids.tolist() == [105, 102, 102, 129]
    assert_aligned(sub)
    mask = np.zeros(30, bool)
    mask[[1, 7]] = True
    assert ds.subset(mask).ids.tolist() == [101, 107]
    assert len(ds.subset([])) == 0
    with pytest.raises(ConfigError, match=r"positions must lie in \[0, 30\)"):
        ds.subset([30])
    with pytest.raises(ConfigError, match="boolean mask must have shape"):
        ds.subset(mask[:5])


def test_constructor_checks_alignment():
    with pytest.raises(DataError, match=r"toy: labels must be an int64 tensor of shape \(2,\) to match 2 images"):
        ImageDataset(
            torch.zeros(2, 1, 3, 3, dtype=torch.uint8),
            torch.zeros(3, dtype=torch.int64),
            torch.arange(2),
            ("a",),
            "toy",
        )
    with pytest.raises(DataError, match="images must be a"):
        ImageDataset(torch.zeros(2, 3, 3), torch.zeros(2, dtype=torch.int64), torch.arange(2), ("a",))


def test_balanced_subset_counts_and_seed():
    ds = toy(31)
    b = ds.balanced_subset(4, seed=1)
    assert b.class_counts().tolist() == [4, 4, 4]
    assert_aligned(b)
    assert torch.equal(b.ids, ds.balanced_subset(4, seed=1).ids)
    assert not torch.equal(b.ids, ds.balanced_subset(4, seed=2).ids)
    with pytest.raises(DataError, match=r"class 1 has 10 samples, fewer than n_per_class=11 \(2 classes are short\)"):
        ds.balanced_subset(11, seed=0)
    with pytest.raises(DataError, match="class 2 has 0 samples"):
        balanced_indices([0, 1, 0, 1], 1, seed=0, n_classes=3)


def test_kfold_holds_out_each_sample_once():
    ds = toy(31)
    folds = ds.kfold(4, seed=3)
    held = torch.cat([te.ids for _, te in folds])
    assert sorted(held.tolist()) == list(range(100, 131))
    assert sorted(len(te) for _, te in folds) == [7, 8, 8, 8]
    for tr, te in folds:
        assert set(tr.ids.tolist()) | set(te.ids.tolist()) == set(range(100, 131))
        assert not set(tr.ids.tolist()) & set(te.ids.tolist())
        assert_aligned(tr)
    strat = kfold_indices(40, 4, seed=0, labels=np.repeat([0, 1], [30, 10]))
    for _, te in strat:  # 30 and 10 samples spread over 4 folds: 7 or 8, and 2 or 3 per fold
        c = Counter(np.repeat([0, 1], [30, 10])[te])
        assert c[0] in (7, 8) and c[1] in (2, 3)
    with pytest.raises(ConfigError, match="cannot make 5 folds of 4 samples"):
        kfold_indices(4, 5, seed=0)


def test_halves_are_random_twins():
    ds = toy(31)
    a, b = ds.halves(seed=0)
    assert (len(a), len(b)) == (16, 15)
    assert sorted(a.ids.tolist() + b.ids.tolist()) == list(range(100, 131))
    a2, _ = ds.halves(seed=0)
    assert torch.equal(a.ids, a2.ids) and not torch.equal(a.ids, ds.halves(seed=1)[0].ids)
    y = np.repeat([0, 1, 2], [7, 9, 4])
    h1, h2 = halves_indices(20, seed=5, labels=y)
    for c in range(3):
        assert abs(int((y[h1] == c).sum()) - int((y[h2] == c).sum())) <= 1
    ba, bb = ds.halves(seed=2, balanced=True)
    assert np.abs(ba.class_counts() - bb.class_counts()).max() <= 1


def test_plant_duplicates_records_the_copies():
    ds = toy(10)
    planted, record = ds.plant_duplicates([1, 4, 7], [1, 3, 0], seed=0)
    assert len(planted) == 14 and torch.equal(planted.images[:10], ds.images)
    counts = Counter(planted.ids.tolist())
    assert counts[101] == 2 and counts[104] == 4 and counts[107] == 1 and counts[100] == 1
    assert record["id"].tolist() == [101, 104, 107] and record["occurrences"].tolist() == [2, 4, 1]
    assert record["position"].tolist() == [1, 4, 7] and record["copies"].tolist() == [1, 3, 0]
    assert_aligned(planted)  # every copy is an exact copy of the sample its id names
    p2, r2 = ds.plant_duplicates(3, 2, seed=5)
    assert len(p2) == 16 and r2["copies"].tolist() == [2, 2, 2] and r2["id"].is_unique
    assert torch.equal(p2.ids, ds.plant_duplicates(3, 2, seed=5)[0].ids)
    with pytest.raises(ConfigError, match="2 copy counts for 3 samples"):
        ds.plant_duplicates([1, 2, 3], [1, 2], seed=0)


def test_iteration_keeps_ids():
    ds = toy(10)
    xs, ys, ids = zip(*ds.batches(4, shuffle=True, seed=1))
    assert [len(i) for i in ids] == [4, 4, 2]
    ids = torch.cat(ids)
    assert sorted(ids.tolist()) == list(range(100, 110))
    assert torch.equal(torch.cat(xs)[:, 0, 0, 0].long(), ids - 100) and torch.equal(torch.cat(ys), (ids - 100) % 3)
    assert len(list(ds.batches(4, drop_last=True))) == 2
    seen = []
    for x, _y, i in ds.loader(3, shuffle=True, seed=0):
        assert x.shape[1:] == (3, 4, 5) and torch.equal(x[:, 0, 0, 0].long(), i - 100)
        seen += i.tolist()
    assert sorted(seen) == list(range(100, 110))
    x0, y0, i0 = ds.torch_dataset()[3]
    assert int(i0) == 103 and int(y0) == 0 and torch.equal(x0, ds.images[3])


def test_augmented_copies_keep_ids_and_float_range():
    ds = toy(6)
    aug = ds.augmented(random_horizontal_flip, copies=3, seed=0, batch_size=4)
    assert len(aug) == 18 and aug.images.dtype == torch.float32
    assert aug.ids.tolist() == list(range(100, 106)) * 3 and aug.labels.tolist() == ds.labels.tolist() * 3
    f = ds.float().images
    for k in range(18):  # each view is the original or its mirror image
        a = aug.images[k]
        assert torch.equal(a, f[k % 6]) or torch.equal(a, f[k % 6].flip(-1))
    assert torch.equal(aug.images, ds.augmented(random_horizontal_flip, copies=3, seed=0, batch_size=4).images)
    assert float(f.max()) <= 1.0 and torch.allclose(f * 255, ds.images.float())


def test_to_device_and_repr():
    ds = toy(4)
    assert ds.to("cpu").device.type == "cpu"
    assert repr(ds) == "ImageDataset(4 x 3x4x5 uint8, 3 classes, source='toy')"
    if torch.cuda.is_available():
        g = ds.to("cuda")
        assert g.images.is_cuda and g.ids.is_cuda and torch.equal(g.subset([2, 0]).ids.cpu(), torch.tensor([102, 100]))
