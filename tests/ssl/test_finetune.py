"""Fine-tuning the most-memorizing layers versus the last layers (`rote.ssl.finetune`, `rote ssl finetune`): the
layer choice against hand-sorted lists, frozen layers bit-for-bit unchanged, determinism, the statistics against
scipy, and bad input as one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rote.cli.main import main
from rote.core.errors import ConfigError, DataError
from rote.ssl.finetune import (
    accuracy,
    choose_layers,
    compare_finetuning,
    finetune,
    layer_scores,
    read_localize,
)
from rote.ssl.train import build_encoder
from rote_testing import run

NAMES = ["conv1", "conv2", "res1.conv1", "res1.conv2", "conv3", "conv4", "res2.conv1", "res2.conv2"]
LAYERMEM = [0.30, 0.07, -0.18, -0.09, 0.005, 0.006, 0.004, 0.022]


def _scores(layermem=LAYERMEM, names=NAMES):
    prev, rows = 0.0, []
    for n, v in zip(names, layermem):
        rows.append({"name": n, "layermem": v, "delta_layermem": v - prev})
        prev = v
    return layer_scores(rows)


def _digits(n_train=120, n_test=80):
    from rote.data.image_loaders import load_digits

    ds = load_digits()
    perm = np.random.default_rng(0).permutation(len(ds))
    tr, te = ds.subset(perm[:n_train]).float(), ds.subset(perm[n_train : n_train + n_test]).float()
    return tr.images, tr.labels, te.images, te.labels


@pytest.fixture(scope="module")
def data():
    return _digits()


@pytest.fixture(scope="module")
def encoder(data):
    """An untrained ResNet9 whose BatchNorm statistics are set on the images (as a trained encoder's are; with the
    initial mean 0 / var 1 its eval-mode features are ~0.01 and no head learns from them in a few steps)."""
    net = build_encoder("resnet9", 1, width=2, image_size=8, seed=0).train()
    with torch.no_grad():
        for _ in range(30):
            net(data[0])
    return net.eval()


# ---------------------------------------------------------------------------------------------- layer choice


def test_most_and_last_match_hand_sorted_lists():
    s = _scores()
    # LayerMem sorted by hand: conv1 0.30 > conv2 0.07 > res2.conv2 0.022 > conv4 0.006 > conv3 0.005 > ...
    assert choose_layers(s, 1, "most") == ["conv1"]
    assert choose_layers(s, 3, "most") == ["conv1", "conv2", "res2.conv2"]  # returned in forward order
    assert choose_layers(s, 4, "most") == ["conv1", "conv2", "conv4", "res2.conv2"]
    # delta by hand: conv1 +0.30, conv2 -0.23, res1.conv1 -0.25, res1.conv2 +0.09, conv3 +0.095,
    # conv4 +0.001, res2.conv1 -0.002, res2.conv2 +0.018 -> conv1, conv3, res1.conv2, res2.conv2
    assert choose_layers(s, 3, "most-delta") == ["conv1", "res1.conv2", "conv3"]
    assert choose_layers(s, 4, "most-delta") == ["conv1", "res1.conv2", "conv3", "res2.conv2"]
    assert choose_layers(s, 2, "last") == ["res2.conv1", "res2.conv2"]
    assert choose_layers(s, 8, "last") == NAMES
    assert choose_layers(s, 2, "none") == []


def test_ties_go_to_the_earlier_layer_and_random_is_seeded():
    s = _scores([0.1, 0.2, 0.2, 0.0], NAMES[:4])
    assert choose_layers(s, 1, "most") == ["conv2"]
    assert choose_layers(s, 2, "most") == ["conv2", "res1.conv1"]
    picks = {tuple(choose_layers(s, 2, "random", seed=i)) for i in range(20)}
    assert len(picks) > 1 and all(len(set(p)) == 2 and set(p) <= set(NAMES[:4]) for p in picks)
    assert choose_layers(s, 2, "random", seed=3) == choose_layers(s, 2, "random", seed=3)
    expected = sorted(np.random.default_rng(3).choice(4, size=2, replace=False))
    assert choose_layers(s, 2, "random", seed=3) == [NAMES[i] for i in expected]


@pytest.mark.parametrize(
    "k, rule, needle",
    [(9, "most", "`k` = 9 but the localize result scores 8 layer(s)"), (0, "last", "`k`"), (2, "best", "`rule`")],
)
def test_bad_k_and_rule(k, rule, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        choose_layers(_scores(), k, rule)


# ---------------------------------------------------------------------------------------------- one run


def test_frozen_layers_are_unchanged_bit_for_bit(encoder, data):
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    chosen = ["conv2", "res2.conv1"]
    res = finetune(encoder, chosen, *data, epochs=2, batch_size=32, seed=0)
    after = res.model.encoder.state_dict()
    trained = [k for k in after if k.split(".")[0] == "conv2" or k.startswith("res2.conv1.")]
    assert any("running_mean" in k for k in trained) and any(k.endswith("weight") for k in trained)
    for k, v in after.items():
        if k in trained:
            if v.dtype.is_floating_point:
                assert not torch.equal(v, before[k]), k  # weights and BN statistics of the chosen layers moved
        else:
            assert torch.equal(v, before[k]), k  # every frozen tensor, BN running statistics included
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k  # the caller's encoder is not touched
    head = res.model.head
    assert res.trainable_params == sum(p.numel() for n in chosen for p in encoder.get_submodule(n).parameters()) + (
        head.weight.numel() + head.bias.numel()
    )


def test_head_only_and_accuracy_against_numpy(encoder, data):
    res = finetune(encoder, [], *data, epochs=1, batch_size=32, seed=1)
    assert res.layers == [] and res.trainable_params == res.model.head.weight.numel() + res.model.head.bias.numel()
    with torch.no_grad():
        logits = res.model(data[2]).numpy()
    assert res.accuracy == pytest.approx(float(np.mean(logits.argmax(1) == data[3].numpy())))
    assert accuracy(res.model, data[2], data[3], batch_size=7) == res.accuracy


def test_finetuning_is_deterministic(encoder, data):
    a = finetune(encoder, ["res2.conv2"], *data, epochs=2, batch_size=32, seed=5)
    b = finetune(encoder, ["res2.conv2"], *data, epochs=2, batch_size=32, seed=5)
    c = finetune(encoder, ["res2.conv2"], *data, epochs=2, batch_size=32, seed=6)
    assert a.accuracy == b.accuracy
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_finetune_bad_input(encoder, data):
    with pytest.raises(ConfigError, match="valid layers: conv1"):
        finetune(encoder, ["blocks.0"], *data, epochs=1)
    with pytest.raises(ConfigError, match="`layers`"):
        finetune(encoder, ["output"], *data, epochs=1)
    with pytest.raises(DataError, match="`train_labels` has 3 labels for 120 images"):
        finetune(encoder, [], data[0], data[1][:3], data[2], data[3], epochs=1)
    with pytest.raises(ConfigError, match="`epochs`"):
        finetune(encoder, [], *data, epochs=0)


def test_compare_reports_means_and_t_intervals_like_scipy(encoder, data):
    from scipy import stats

    res = compare_finetuning(
        encoder, _scores(), data, k=2, rules="most,last,random", seeds=[0, 1, 2], epochs=1, batch_size=64
    )
    assert list(res.finetune) == ["most", "last", "random"]
    assert res.chosen == {"most": ["conv1", "conv2"], "last": ["res2.conv1", "res2.conv2"]}
    runs = res.runs
    assert len(runs) == 9 and set(runs.loc[runs.rule == "most", "layers"]) == {"conv1,conv2"}
    for rule in ("most", "last", "random"):
        v = runs.loc[runs.rule == rule, "accuracy"].to_numpy()
        assert res.finetune[rule] == pytest.approx(v.mean())
        lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        assert res.intervals[rule]["low"] == pytest.approx(max(lo, 0.0))
        assert res.intervals[rule]["high"] == pytest.approx(min(hi, 1.0))
    d = runs.loc[runs.rule == "most", "accuracy"].to_numpy() - runs.loc[runs.rule == "last", "accuracy"].to_numpy()
    lo, hi = stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d))
    assert res.differences["most - last"]["estimate"] == pytest.approx(d.mean())
    assert res.differences["most - last"]["low"] == pytest.approx(lo)
    # the same seed gives the same run whatever other rules are compared with it
    again = compare_finetuning(encoder, _scores(), data, k=2, rules=["last"], seeds=[1], epochs=1, batch_size=64)
    assert again.finetune["last"] == runs.loc[(runs.rule == "last") & (runs.seed == 1), "accuracy"].item()


def test_compare_refuses_another_architecture_before_training(encoder, data):
    vit_layers = _scores([0.1, 0.2], ["blocks.0", "blocks.1"])
    with pytest.raises(DataError, match="localize run measured another architecture"):
        compare_finetuning(encoder, vit_layers, data, k=1, seeds=[0], epochs=1)
    wide = layer_scores(
        [{"name": n, "layermem": 0.0, "delta_layermem": 0.0} for n in NAMES],
        arch={"arch": "resnet9", "in_channels": 1, "width": 3, "image_size": 8},
    )
    with pytest.raises(DataError, match="width=3"):
        compare_finetuning(encoder, wide, data, k=1, seeds=[0], epochs=1, arch={"arch": "resnet9", "width": 2})
    with pytest.raises(ConfigError, match="unknown rule 'first'"):
        compare_finetuning(encoder, _scores(), data, rules="most,first", seeds=[0], epochs=1)


def test_downstream_data_leaves_out_pretraining_points_and_resizes():
    from rote.ssl.experiment import downstream_data

    info = {"data": "digits", "train_ids": list(range(1000))}
    (xtr, ytr, xte, yte), desc = downstream_data(info, {"in_channels": 1, "image_size": 8}, n_train=500, n_test=297)
    assert xtr.shape == (500, 1, 8, 8) and xte.shape == (297, 1, 8, 8) and desc["resized_from"] is None
    with pytest.raises(DataError, match="797 images available"):
        downstream_data(info, {"in_channels": 1, "image_size": 8}, n_train=500, n_test=298)
    (xtr16, *_), desc = downstream_data(info, {"in_channels": 1, "image_size": 16}, n_train=500, n_test=297)
    assert xtr16.shape == (500, 1, 16, 16) and desc["resized_from"] == [8, 8]
    assert float(xtr16.mean()) == pytest.approx(float(xtr.mean()), abs=0.01)  # resizing keeps the brightness
    with pytest.raises(DataError, match="1 channel"):
        downstream_data(info, {"in_channels": 3, "image_size": 8}, n_train=100, n_test=100)


# ---------------------------------------------------------------------------------------------- the CLI

TINY = ["--data", "digits", "--width", "2", "--epochs", "1", "--n-candidate", "40", "--n-independent", "40"]
TINY += ["--n-shared", "100", "--batch-size", "64", "--quiet"]


def _ok(argv) -> None:
    try:
        main(argv)
    except SystemExit as exc:
        raise AssertionError(f"{argv} exited with {exc.code}") from None


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("ssl-ft")
    for role in ("f", "g"):
        _ok(["ssl", "train", "--role", role, "--out", str(d / role), *TINY])
    _ok(
        ["ssl", "localize", "--f", str(d / "f"), "--g", str(d / "g"), "--n-points", "40", "--k", "10"]
        + ["--out", str(d / "loc"), "--quiet"]
    )
    res = json.loads((d / "loc" / "results.json").read_text())
    res["setup"]["arch"]["width"] = 3  # the localize result of a wider net
    (d / "wide").mkdir()
    (d / "wide" / "results.json").write_text(json.dumps(res))
    res["layers"] = [{**r, "name": f"blocks.{i}"} for i, r in enumerate(res["layers"])]
    (d / "vit").mkdir()
    (d / "vit" / "results.json").write_text(json.dumps(res))
    return d


FT = ["--n-train", "150", "--n-test", "100", "--epochs", "1", "--seeds", "0,1", "--quiet"]


def test_cli_finetune_writes_accuracy_per_rule(trained, tmp_path, capsys):
    out = tmp_path / "ft"
    argv = ["ssl", "finetune", "--f", str(trained / "f"), "--localize", str(trained / "loc"), "--k", "2"]
    code, _, err = run([*argv, *FT, "--out", str(out)], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert set(res["finetune"]) == {"most", "last", "random"}
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in res["finetune"].values())
    assert res["chosen"]["last"] == ["res2.conv1", "res2.conv2"]
    loc = read_localize(trained / "loc")
    assert res["chosen"]["most"] == choose_layers(loc, 2, "most")
    assert res["setup"]["n_train"] == 150 and res["setup"]["data"] == "digits"
    assert (out / "runs.parquet").is_file() and (out / "report.html").read_text().count("<img") == 1


@pytest.mark.parametrize(
    "localize, extra, needle",
    [
        ("loc", ["--k", "9"], "= 9 but the localize result scores 8 layer(s)"),
        ("loc", ["--rules", "most,best"], "unknown rule 'best'"),
        ("wide", [], "another architecture"),
        ("vit", [], "blocks.0"),
        ("nothing", [], "no results.json"),
        ("loc", ["--n-train", "5000"], "--n-train"),
    ],
)
def test_cli_finetune_bad_input_is_one_line(trained, tmp_path, capsys, localize, extra, needle):
    argv = ["ssl", "finetune", "--f", str(trained / "f"), "--localize", str(trained / localize), *FT, *extra]
    code, _, err = run([*argv, "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.gpu
def test_finetune_on_cuda(trained, tmp_path, capsys):
    assert torch.cuda.is_available(), "the gpu mark promises a CUDA device"
    argv = ["ssl", "finetune", "--f", str(trained / "f"), "--localize", str(trained / "loc"), *FT, "--device", "cuda"]
    code, _, err = run([*argv, "--out", str(tmp_path / "gpu")], capsys)
    assert code == 0, err
    assert set(json.loads((tmp_path / "gpu" / "results.json").read_text())["finetune"]) == {"most", "last", "random"}
