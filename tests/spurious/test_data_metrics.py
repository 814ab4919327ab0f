"""Data with a spurious feature (toys, coloured images, Waterbirds / CelebA from files) and the group metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rote.core.errors import ConfigError, DataError
from rote.spurious.data import (
    colored_images,
    linear_toy,
    load_celeba,
    load_waterbirds,
    regression_target,
    regression_toy,
)
from rote.spurious.metrics import group_accuracy, heldin_heldout


def test_linear_toy_construction():
    s = linear_toy(2000, 10, agreement=0.9, noise=0.5, seed=0)
    tr, te = s.train, s.test
    y, x = tr.y.numpy(), tr.x.numpy()
    sign = 2 * y - 1
    # core = (N(0, .1^2) - 1)(2y - 1): sign opposite to 2y - 1, magnitude ~1
    assert np.all(np.sign(x[:, 0]) == -sign)
    assert abs(np.abs(x[:, 0]).mean() - 1.0) < 0.01
    agree = np.sign(x[:, 1]) == np.sign(x[:, 0])
    assert abs(agree.mean() - 0.9) < 0.02  # 90% majority in train
    xt = te.x.numpy()
    assert abs((np.sign(xt[:, 1]) == np.sign(xt[:, 0])).mean() - 0.5) < 0.04
    assert abs(np.abs(x[:, 1]).mean() - 5.0) < 0.05
    np.testing.assert_array_equal(tr.a.numpy() == y, agree)  # attribute = the class the spurious feature points to
    assert abs(x[:, 2:].std() - 0.5) < 0.01
    again = linear_toy(2000, 10, agreement=0.9, noise=0.5, seed=0)
    assert torch.equal(again.train.x, tr.x)
    with pytest.raises(ConfigError, match="`agreement`"):
        linear_toy(10, 4, agreement=1.5)


def test_regression_toy():
    d = regression_toy(input_noise=1e-3, seed=0)
    assert d["x_train"].shape == (20, 31)
    x0 = d["x_train"][:, 0].numpy()
    np.testing.assert_allclose(d["f_train"].numpy(), np.tanh(x0) + 0.5 * np.tanh(-5 * x0), atol=1e-6)
    assert abs(float((d["y_train"] - d["f_train"]).std()) - 0.08) < 0.05
    assert float(regression_target(torch.tensor(0.0))) == 0.0


def test_colored_images_colour_and_agreement():
    imgs = torch.randint(0, 256, (400, 1, 4, 4), dtype=torch.uint8)
    labels = torch.arange(400) % 10
    d = colored_images(imgs, labels, positive=range(5, 10), agreement=0.8, seed=0)
    np.testing.assert_array_equal(d.y.numpy(), (labels.numpy() >= 5).astype(int))
    assert abs((d.a == d.y).float().mean().item() - 0.8) < 0.06
    for i in range(10):
        ch = int(d.a[i])
        torch.testing.assert_close(d.x[i, ch], imgs[i, 0].float() / 255)
        assert float(d.x[i, 1 - ch].abs().sum()) == 0.0 and float(d.x[i, 2].abs().sum()) == 0.0
    assert d.group_names() == ["neg,red", "neg,green", "pos,red", "pos,green"]
    np.testing.assert_array_equal(d.groups.numpy(), d.y.numpy() * 2 + d.a.numpy())


def _png(path, value):
    from PIL import Image

    Image.fromarray(np.full((10, 12, 3), value, np.uint8)).save(path)


def test_load_waterbirds_from_metadata(tmp_path):
    rows = []
    for i in range(9):
        (tmp_path / "birds").mkdir(exist_ok=True)
        _png(tmp_path / "birds" / f"{i}.png", 20 * i)
        rows.append({"img_id": i, "img_filename": f"birds/{i}.png", "y": i % 2, "split": i % 3, "place": (i // 2) % 2})
    pd.DataFrame(rows).to_csv(tmp_path / "metadata.csv", index=False)
    s = load_waterbirds(tmp_path, size=8)
    assert len(s.train) == 3 and s.train.x.shape == (3, 3, 8, 8)
    np.testing.assert_array_equal(s.train.y.numpy(), [0, 1, 0])  # ids 0, 3, 6
    np.testing.assert_array_equal(s.train.a.numpy(), [0, 1, 1])
    assert float(s.train.x[1].mean()) == pytest.approx(60 / 255, abs=1e-3)
    (tmp_path / "birds" / "4.png").unlink()
    with pytest.raises(DataError, match="4.png: image listed in the metadata is missing"):
        load_waterbirds(tmp_path, size=8)
    with pytest.raises(DataError, match="no metadata.csv"):
        load_waterbirds(tmp_path / "birds")


def test_load_celeba_original_text_format(tmp_path):
    img = tmp_path / "img_align_celeba"
    img.mkdir()
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for i, n in enumerate(names):
        _png(img / n, 10 * i)
    attrs = ["5", "Blond_Hair Male Smiling"] + [
        f"{n} {1 if i % 2 else -1} {1 if i < 3 else -1} 1" for i, n in enumerate(names)
    ]
    (tmp_path / "list_attr_celeba.txt").write_text("\n".join(attrs) + "\n")
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{n} {i % 3}\n" for i, n in enumerate(names)))
    s = load_celeba(tmp_path, size=4)
    np.testing.assert_array_equal(s.train.y.numpy(), [0, 1])  # images 1 and 4
    np.testing.assert_array_equal(s.train.a.numpy(), [1, 0])
    assert s.train.classes == ("not Blond_Hair", "Blond_Hair")
    with pytest.raises(DataError, match="no attribute 'Bald'"):
        load_celeba(tmp_path, target="Bald")


def test_group_accuracy_by_hand():
    y = [0, 0, 1, 1, 1, 0]
    p = [0, 1, 1, 1, 0, 0]
    g = [0, 0, 1, 1, 2, 0]
    m = group_accuracy(y, p, groups=g, group_names=["a", "b", "c", "d"])
    assert m["avg_acc"] == pytest.approx(4 / 6)
    assert m["per_group_acc"] == pytest.approx({"a": 2 / 3, "b": 1.0, "c": 0.0})
    assert m["worst_group_acc"] == 0.0
    assert m["empty_groups"] == ["d"]
    with pytest.raises(DataError, match="empty"):
        group_accuracy([], [], groups=[])


def test_heldin_heldout_gap():
    a = {"per_group_acc": {"maj": 1.0, "min": 1.0}}
    b = {"per_group_acc": {"maj": 0.9, "min": 0.3}}
    r = heldin_heldout(a, b, minority=["min"])
    assert r["minority_gap"] == pytest.approx(0.7) and r["majority_gap"] == pytest.approx(0.1)
    assert r["per_group"]["min"] == pytest.approx({"heldin": 1.0, "heldout": 0.3, "gap": 0.7})
