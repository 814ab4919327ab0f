"""Training methods (group labels refused or required, selection, determinism) and the `rote spurious` verbs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rote.core.errors import ConfigError, DataError
from rote.spurious.data import Splits, linear_toy
from rote.spurious.experiment import aggregate
from rote.spurious.mat import mat_shift
from rote.spurious.pipeline import TrainConfig, compare_methods
from rote.spurious.train import check_validation_groups, train_classifier
from rote_testing import run

LINEAR = dict(hidden=(), bias=False, epochs=30, batch_size=None, optimizer="sgd", lr=0.05)


@pytest.fixture(scope="module")
def toy():
    return linear_toy(80, 20, agreement=0.9, noise=0.3, seed=0)


def test_methods_refuse_or_require_group_labels(toy):
    tr = toy.train
    with pytest.raises(ConfigError, match="`groups`: method mat trains without group labels and refuses them"):
        train_classifier("mat", tr, shift=torch.zeros(len(tr), 2), groups=tr.groups, **LINEAR)
    with pytest.raises(ConfigError, match="`groups`: method erm trains without group labels"):
        train_classifier("erm", tr, groups=tr.groups, **LINEAR)
    with pytest.raises(ConfigError, match="`groups`: method groupdro needs group labels"):
        train_classifier("groupdro", tr, **LINEAR)
    with pytest.raises(ConfigError, match="`shift`: method mat needs"):
        train_classifier("mat", tr, **LINEAR)
    with pytest.raises(ConfigError, match="`method` must be one of"):
        train_classifier("jtt", tr, **LINEAR)


def test_mat_with_zero_shift_is_erm(toy):
    tr = toy.train
    erm = train_classifier("erm", tr, seed=1, **LINEAR)
    mat = train_classifier("mat", tr, shift=torch.zeros(len(tr), 2), seed=1, **LINEAR)
    torch.testing.assert_close(erm.model.weights[0], mat.model.weights[0])
    # a nonzero shift changes the weights; inference never adds it
    s = mat_shift(torch.randn(len(tr), 2, generator=torch.Generator().manual_seed(0)), tr.y, 0.1)
    shifted = train_classifier("mat", tr, shift=s, seed=1, **LINEAR)
    assert not torch.allclose(shifted.model.weights[0], erm.model.weights[0])
    torch.testing.assert_close(shifted.logits(tr.x), tr.x @ shifted.model.weights[0][0].T)
    # per-sample losses from the Trainer are the final epoch's CE of the shifted logits, aligned with positions
    assert shifted.per_sample_loss.shape == (len(tr),) and np.isfinite(shifted.per_sample_loss).all()


def test_validation_without_a_group(toy):
    val = toy.val.subset(np.flatnonzero(toy.val.groups.numpy() != 1))
    with pytest.raises(DataError, match="group 0,points-to-1 has .* training examples but none in validation"):
        check_validation_groups(toy.train, val)
    with pytest.raises(DataError, match="`select`='last'"):
        compare_methods(Splits(toy.train, val, toy.test), methods=["erm"], config=TrainConfig(**LINEAR))


def test_selection_keeps_the_best_validation_epoch(toy):
    r = train_classifier("erm", toy.train, val=toy.val, select="val", val_groups=toy.val.groups, seed=0, **LINEAR)
    wga = [h["val_wga"] for h in r.history]
    assert r.best_epoch == int(np.argmax(wga)) + 1


def test_compare_is_deterministic_and_reports_the_contract(toy):
    cfg = TrainConfig(**LINEAR)
    a = compare_methods(toy, methods=["erm", "mat", "groupdro", "gb_erm"], select="last", config=cfg, seed=2)
    b = compare_methods(toy, methods=["erm", "mat", "groupdro", "gb_erm"], select="last", config=cfg, seed=2)
    assert a.methods == b.methods
    for r in a.methods.values():
        assert set(r) == {"avg_acc", "worst_group_acc", "per_group_acc"}
        assert r["worst_group_acc"] == min(r["per_group_acc"].values())
        y, g = toy.test.y.numpy(), toy.test.groups.numpy()
        sizes = np.bincount(g, minlength=4)
        avg = sum(r["per_group_acc"][name] * sizes[i] for i, name in enumerate(toy.test.group_names())) / len(y)
        assert r["avg_acc"] == pytest.approx(avg)
    assert set(a.weights) == {"erm", "mat", "groupdro", "gb_erm"}


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_toy(tmp_path, capsys):
    out = tmp_path / "toy"
    code, _, err = run(
        ["spurious", "toy", "--n", "40", "--d", "8", "--epochs", "5", "--seeds", "3", "--out", str(out), "--quiet"],
        capsys,
    )
    assert code == 0, err
    r = json.loads((out / "results.json").read_text())
    assert set(r["methods"]) == {"erm", "mat", "groupdro", "erm_no_noise"}
    for m in r["methods"].values():
        assert set(m) == {"avg_acc", "worst_group_acc", "per_group_acc"}
    assert r["seeds"] == [3] and (out / "grid" / "points").is_dir()
    assert (out / "report.html").is_file() and (out / "weights.png").is_file()


def test_seeds_aggregate_to_means_and_sample_std():
    def one(wga, avg, gap):
        per = {"a": wga, "b": 1.0}
        return {
            "data": {},
            "methods": {"mat": {"avg_acc": avg, "worst_group_acc": wga, "per_group_acc": per}},
            "val": {},
            "memorization": {"mat": {"minority_gap": gap}},
            "heldout": {},
            "weights": {},
            "minority": ["a"],
            "best_epoch": {},
            "temperature": 0.1,
        }

    run_ = aggregate("compare", {0: one(0.5, 0.8, 0.1), 1: one(0.7, 0.9, 0.3)}, {}, 1.0)
    assert run_.methods["mat"]["worst_group_acc"] == pytest.approx(0.6)
    assert run_.methods["mat"]["per_group_acc"] == pytest.approx({"a": 0.6, "b": 1.0})
    iv = run_.intervals["mat"]
    assert iv["worst_group_acc"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert iv["minority_gap"]["values"] == [0.1, 0.3] and iv["avg_acc"]["n"] == 2
    assert run_.seeds == [0, 1]


def test_cli_train_on_coloured_digits(tmp_path, capsys):
    out = tmp_path / "train"
    code, _, err = run(
        [
            "spurious",
            "train",
            "--method",
            "groupdro",
            "--data",
            "colored-digits",
            "--n-train",
            "300",
            "--n-val",
            "150",
            "--n-test",
            "300",
            "--epochs",
            "2",
            "--hidden",
            "16",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    r = json.loads((out / "results.json").read_text())
    assert list(r["methods"]) == ["groupdro"]
    assert set(r["methods"]["groupdro"]["per_group_acc"]) == {"0-4,red", "0-4,green", "5-9,red", "5-9,green"}


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--method", "mat", "--groups", "oracle"], "--groups: method mat trains without group labels"),
        (["--temperature", "-1"], "--temperature must be > 0"),
        (["--n-val", "2"], "none in validation"),
        (["--method", "jtt"], "--method must be one of"),
    ],
)
def test_cli_train_bad_input(tmp_path, capsys, argv, match):
    out = tmp_path / "bad"
    code, stdout, err = run(
        [
            "spurious",
            "train",
            "--data",
            "colored-digits",
            "--n-train",
            "40",
            "--n-test",
            "20",
            "--epochs",
            "1",
            *argv,
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and match in err, err
    assert not out.exists()


@pytest.mark.gpu
def test_cli_train_cuda(tmp_path, capsys):
    out = tmp_path / "cuda"
    code, _, err = run(
        [
            "spurious",
            "train",
            "--method",
            "mat",
            "--data",
            "colored-digits",
            "--n-train",
            "300",
            "--n-val",
            "150",
            "--n-test",
            "300",
            "--epochs",
            "2",
            "--device",
            "cuda",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    r = json.loads((out / "results.json").read_text())
    assert 0.0 <= r["methods"]["mat"]["worst_group_acc"] <= 1.0
    assert json.loads((out / "config.json").read_text())["options"]["device"].startswith("cuda")
