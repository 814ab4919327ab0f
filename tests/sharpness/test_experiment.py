"""Labels, detection and the end-to-end verbs (tiny settings; the paper-scale runs are marked slow)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from rote_testing import run
from sklearn.metrics import roc_auc_score

from rote.core.checkpoints import save_checkpoint
from rote.sharpness.experiment import (
    FASHION_CLASSES,
    detection,
    evaluate,
    fashion_data,
    grouped,
    nn_ratio,
    run_mnist,
    run_toy,
    toy_data,
)

torch.set_num_threads(1)
TINY_TOY = ["--epochs", "2", "--generations", "60", "--steps", "8", "--quiet"]


def test_nn_ratio_matches_brute_force_and_counts_duplicates_once():
    rng = np.random.default_rng(0)
    train = np.vstack([rng.normal(size=(40, 3)), np.repeat([[5.0, 5.0, 5.0]], 10, 0)])
    gens = np.vstack([rng.normal(size=(20, 3)), [[5.01, 5.0, 5.0]]])
    frame, ref = nn_ratio(gens, train)
    assert len(ref) == 41  # the ten copies are one training point
    d = np.sqrt(((gens[:, None, :] - ref[None]) ** 2).sum(-1))
    d.sort(1)
    np.testing.assert_allclose(frame["d1"], d[:, 0], rtol=1e-12)
    np.testing.assert_allclose(frame["ratio"], d[:, 0] / d[:, 1], rtol=1e-12)
    assert (
        frame["memorized"].iloc[-1] and frame["memorized"].to_numpy().tolist() == (d[:, 0] / d[:, 1] < 1 / 3).tolist()
    )


def test_detection_agrees_with_sklearn_and_grouping_by_hand():
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.2
    frame = pd.DataFrame({"memorized": y, "a_t1": rng.normal(size=300) + y, "class": np.arange(300) % 2})
    det = detection(frame, ["a_t1"])
    assert det["a_t1"]["auc"] == pytest.approx(roc_auc_score(y, frame["a_t1"]))
    neg = np.sort(frame["a_t1"][~y].to_numpy())[::-1]
    thr = neg[int(np.floor(0.01 * len(neg)))]  # at most 1% of negatives strictly above the threshold
    assert det["a_t1"]["tpr_at_1pct_fpr"] == pytest.approx((frame["a_t1"][y] > thr).mean())
    small = pd.DataFrame({"class": [0, 0, 0, 0, 1, 1], "memorized": [1, 1, 0, 0, 0, 1], "s_t1": [1.0, 2, 3, 4, 5, 6]})
    g = grouped(small, ["s_t1"], 2)
    assert g["s_t1"].tolist() == [1.5, 3.5, 5.5] and g["memorized"].tolist() == [True, False, True]
    # squared norms are averaged as norms (the paper averages ||H_delta s_delta||, not its square)
    small["delta_hs_norm2_t9"] = [1.0, 9.0, 4.0, 16.0, 0.0, 25.0]
    g = grouped(small, ["s_t1", "delta_hs_norm2_t9"], 2)
    assert g["delta_hs_norm2_t9"].tolist() == [2.0, 3.0, 2.5]


def test_toy_data_is_the_5_95_mixture():
    x, mode = toy_data(3000, 0.05, seed=0)
    assert x.shape == (3000, 2) and mode.sum() == 150
    assert (x[mode == 1] == 3.0).all()
    assert abs(x[mode == 0].std() - 1.0) < 0.05
    np.testing.assert_array_equal(toy_data(3000, 0.05, seed=0)[0], x)


def test_tiny_toy_run_writes_the_contract(tmp_path, capsys):
    out = tmp_path / "toy"
    code, _, err = run(["sharpness", "toy", "--out", str(out), *TINY_TOY], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["paper_statistic"] in res["detection"]
    for v in res["detection"].values():
        assert set(v) == {"auc", "tpr_at_1pct_fpr"}
    for name in ("scores.parquet", "spectra.parquet", "roc.png", "spectra.png", "report.html", "model.pt"):
        assert (out / name).is_file(), name
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == 60 and {"ratio", "memorized", "hs_norm2_t1", "neg_trace_t499"} <= set(scores)
    # eval recomputes the same detection from the scores
    code, _, err = run(["sharpness", "eval", "--scores", str(out), "--out", str(tmp_path / "ev"), "--quiet"], capsys)
    assert code == 0, err
    ev = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert ev["detection"] == res["detection"] and ev["paper_statistic"] == res["paper_statistic"]
    # score re-measures new generations of the saved model
    code, _, err = run(
        [
            "sharpness",
            "score",
            "--model",
            str(out / "model.pt"),
            "--samples",
            "20",
            "--steps",
            "8",
            "--out",
            str(tmp_path / "sc"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    assert len(pd.read_parquet(tmp_path / "sc" / "scores.parquet")) == 20
    # same seed, same numbers
    r1, _ = run_toy(seed=0, epochs=1, n_generations=30, n_steps=6)
    r2, _ = run_toy(seed=0, epochs=1, n_generations=30, n_steps=6)
    pd.testing.assert_frame_equal(r1.scores, r2.scores)


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    wrong = save_checkpoint(tmp_path / "wrong.pt", {"weights": {}}, kind="rote.llm.TinyGPT")
    code, _, err = run(
        ["sharpness", "score", "--model", str(wrong), "--samples", "4", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "rote.llm.TinyGPT" in err and "--model" in err
    code, _, err = run(["sharpness", "toy", "--out", str(tmp_path / "t"), "--epochs", "0"], capsys)
    assert code == 2 and "--epochs" in err and err.count("\n") == 1
    bad = tmp_path / "scores.parquet"
    pd.DataFrame({"memorized": [True, False], "x": [1, 2]}).to_parquet(bad)
    code, _, err = run(["sharpness", "eval", "--scores", str(bad), "--out", str(tmp_path / "e")], capsys)
    assert code == 2 and "statistic columns" in err
    by_class = pd.DataFrame({"class": [0, 0, 1, 1], "memorized": [0, 1, 1, 1], "hs_norm2_t1": [1.0, 2, 3, 4]})
    res = evaluate(by_class, label="class", group_size=1)
    assert res.n_memorized == 2 and res.detection["hs_norm2_t1"]["auc"] == 1.0
    with pytest.raises(Exception, match="has no column 'nope'"):
        evaluate(pd.read_parquet(bad), label="nope")


@pytest.mark.slow
def test_toy_preset_detects_the_memorized_mode():
    result, _ = run_toy(seed=0)
    assert result.detection_by_mode[result.paper_statistic]["auc"] > 0.95


@pytest.mark.slow
def test_mnist_preset_memorizes_the_nine_and_the_papers_statistic_detects_it():
    # docs/sharpness.md "Conv denoiser": with the preset (conv denoiser) seed 0 copied the duplicated 9 in all 200
    # of its generations and none of the 3s, and the paper's statistic reached AUC 1.000 with n = 1 and n = 4 (the
    # issue's target: >= 0.95). About 15 CPU-minutes.
    result, _ = run_mnist(seed=0)
    s = result.scores
    assert s.loc[s["class"] == 1, "memorized"].sum() >= 195 and not s.loc[s["class"] == 0, "memorized"].any()
    assert result.detection[result.paper_statistic]["auc"] >= 0.95
    assert result.detection_groups[result.paper_statistic]["auc"] >= 0.95


@pytest.mark.slow
def test_fashion_mnist_seed_0_reproduces_its_documented_run():
    # docs/sharpness.md "Conv denoiser": seed 0 with the paper's counts copied the boot in all 200 generations, AUC
    # 1.000 with n = 1 and n = 4. About 25 CPU-minutes.
    from rote.sharpness.experiment import FASHION_OVERRIDES

    result, _ = run_mnist(seed=0, **FASHION_OVERRIDES)
    s = result.scores
    assert s.loc[s["class"] == 1, "memorized"].sum() >= 195 and not s.loc[s["class"] == 0, "memorized"].any()
    assert result.detection[result.paper_statistic]["auc"] >= 0.95
    assert result.detection_groups[result.paper_statistic]["auc"] >= 0.95


@pytest.mark.gpu
def test_toy_on_cuda(tmp_path, capsys):
    code, _, err = run(["sharpness", "toy", "--out", str(tmp_path / "g"), "--device", "cuda", *TINY_TOY], capsys)
    assert code == 0, err


def test_tiny_mnist_with_second_order_loss_and_score_reproduces_its_labels(tmp_path, capsys):
    tiny = ["--epochs", "1", "--generations-per-class", "4", "--steps", "4", "--duplicates", "3", "--quiet"]
    out = tmp_path / "m"
    code, _, err = run(["sharpness", "mnist", "--out", str(out), "--second-order-weight", "0.5", *tiny], capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["options"]["second_order_weight"] == 0.5
    # the preset run_mnist trained with (results.json `config`) carries the weight
    assert json.loads((out / "results.json").read_text())["config"]["second_order_weight"] == 0.5
    a = pd.read_parquet(out / "scores.parquet")
    # `score` on the checkpoint samples as `mnist` did (x0 clipped to [-1, 1]): same generations, same labels
    code, _, err = run(
        ["sharpness", "score", "--model", str(out / "model.pt"), "--samples", "8", "--steps", "4", "--spectrum", "none"]
        + ["--out", str(tmp_path / "s"), "--quiet"],
        capsys,
    )
    assert code == 0, err
    s = pd.read_parquet(tmp_path / "s" / "scores.parquet")
    np.testing.assert_allclose(s["ratio"], a["ratio"], rtol=1e-6)
    np.testing.assert_allclose(s["delta_hs_norm2_t499"], a["delta_hs_norm2_t499"], rtol=1e-5)
    code, _, err = run(["sharpness", "mnist", "--out", str(tmp_path / "x"), "--second-order-weight", "-1"], capsys)
    assert code == 2 and "--second-order-weight" in err and err.count("\n") == 1


def test_fashion_data_has_the_papers_counts_one_duplicated_boot_and_pooled_pixels():
    from rote.data import load_fashion_mnist

    x, c, pick = fashion_data(seed=3)
    assert x.shape == (3100, 196) and x.dtype == np.float32
    assert (c == 0).sum() == 3000 and (c == 1).sum() == 100 and (c[:3000] == 0).all()
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() == -1.0
    ds = load_fashion_mnist("train")
    labels = ds.labels.numpy()
    assert FASHION_CLASSES == (1, 9) and labels[pick] == 9  # an ankle boot
    # 2 x 2 average pooling by hand, from the raw uint8 image
    boot = ds.images[pick, 0].numpy().astype(np.float64).reshape(14, 2, 14, 2).mean((1, 3)) / 255 * 2 - 1
    np.testing.assert_allclose(x[3000:], np.repeat(boot.reshape(1, -1), 100, 0), atol=1e-6)
    # 3,000 distinct trousers: each generalized row is some trouser's pooled image, no two the same
    # (compared as exact integer sums of the 4 pooled pixels, recovered from [-1, 1])
    sums = ds.images[labels == 1, 0].numpy().astype(np.int64).reshape(-1, 14, 2, 14, 2).sum((2, 4))
    trousers = {row.tobytes() for row in sums.reshape(len(sums), -1)}
    rows = np.rint((x[:3000].astype(np.float64) + 1) / 2 * 255 * 4).astype(np.int64)
    assert all(row.tobytes() in trousers for row in rows) and len(np.unique(rows, axis=0)) == 3000
    # seeded: the same seed gives the same data, another seed another boot
    x2, _, pick2 = fashion_data(seed=3)
    np.testing.assert_array_equal(x, x2)
    assert pick2 == pick and fashion_data(seed=4)[2] != pick
    x28, c28, _ = fashion_data(side=28, duplicates=5, n_generalized=20, seed=0)
    assert x28.shape == (25, 784) and c28.tolist() == [0] * 20 + [1] * 5
    with pytest.raises(Exception, match="`n_generalized`"):
        fashion_data(n_generalized=7000)


def test_tiny_fashion_mnist_run_writes_the_contract_keys(tmp_path, capsys):
    out = tmp_path / "f"
    tiny = ["--epochs", "1", "--generations-per-class", "4", "--steps", "4", "--duplicates", "3", "--quiet"]
    code, _, err = run(["sharpness", "mnist", "--dataset", "fashion-mnist", "--out", str(out), *tiny], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["paper_statistic"] == "delta_hs_norm2_t499" and res["paper_statistic"] in res["detection"]
    assert set(res["detection"]["delta_hs_norm2_t499"]) == {"auc", "tpr_at_1pct_fpr"}
    assert res["config"]["dataset"] == "fashion-mnist" and res["config"]["n_generalized"] == 3000
    assert res["config"]["duplicates"] == 3 and res["config"]["epochs"] == 1
    assert json.loads((out / "config.json").read_text())["options"]["dataset"] == "fashion-mnist"
    code, _, err = run(["sharpness", "mnist", "--dataset", "cifar", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "--dataset" in err and "fashion-mnist" in err and err.count("\n") == 1
