"""The comparison: balanced membership design, risk bins by hand, the scoring path, and the CLI contract of
`rote adversarial demo`, `train` and `evaluate` (tiny: sklearn digits, a few epochs, in this process)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rote.adversarial.experiment import (
    CONTRACT,
    DEMO,
    RUNS,
    dp_guarantee,
    memorization_table,
    method_configs,
    risk_table,
    score_run,
)
from rote.adversarial.shadow import ModelSet, membership_design
from rote.core import privacy
from rote.core.errors import ConfigError
from rote_testing import run


def test_membership_design_is_balanced_and_seeded():
    m = membership_design(50, 6, seed=1)
    assert m.shape == (6, 50) and (m.sum(0) == 3).all()
    assert np.array_equal(m, membership_design(50, 6, seed=1))
    assert not np.array_equal(m, membership_design(50, 6, seed=2))
    with pytest.raises(ConfigError, match="even"):
        membership_design(50, 5)


def _set(rng, m=4, n=8, shift=0.0):
    mask = membership_design(n, m, seed=0)
    stats = rng.normal(size=(m, n, 2)) + shift * mask[:, :, None]
    correct = rng.random((m, n)) < 0.7
    risk = np.where(mask, rng.random((m, n)), np.nan)
    return ModelSet(stats, correct, risk, rng.random(m), rng.random(m), np.ones(m)), mask


def test_risk_table_by_hand():
    rng = np.random.default_rng(0)
    s, mask = _set(rng)
    t = risk_table({"a": s}, "a")
    assert set(t["risk"]) == {"train_loss", "feldman"}
    t = t[t["risk"] == "train_loss"]
    risk = np.nanmean(s.risk, axis=0)
    q1 = risk <= np.quantile(risk, 0.25)
    row = t[(t["run"] == "a") & (t["bin"] == "q1 (lowest risk)")].iloc[0]
    tr = [s.correct[mask[:, i], i].mean() for i in np.flatnonzero(q1)]
    ho = [s.correct[~mask[:, i], i].mean() for i in np.flatnonzero(q1)]
    assert row["n"] == q1.sum()
    assert row["train_acc"] == pytest.approx(np.mean(tr))
    assert row["heldout_acc"] == pytest.approx(np.mean(ho))
    assert row["memorization"] == pytest.approx(np.mean(tr) - np.mean(ho))


def test_feldman_bins_by_hand():
    # reference run "a" defines the bins by its Feldman estimate; run "b" is measured in them
    rng = np.random.default_rng(2)
    a, mask = _set(rng, m=6, n=40)
    b, _ = _set(rng, m=6, n=40)
    t = risk_table({"a": a, "b": b}, "a")
    f = t[t["risk"] == "feldman"]
    mem = np.array([a.correct[mask[:, i], i].mean() - a.correct[~mask[:, i], i].mean() for i in range(40)])
    rules = {
        "mem < 0": mem < 0,
        "mem = 0": mem == 0,
        "0 < mem < 0.5": (mem > 0) & (mem < 0.5),
        "mem >= 0.5": mem >= 0.5,
    }
    assert set(f["bin"]) == {k for k, v in rules.items() if v.any()}
    for _, row in f[f["run"] == "b"].iterrows():
        sel = rules[row["bin"]]
        ho = np.mean([b.correct[~mask[:, i], i].mean() for i in np.flatnonzero(sel)])
        assert row["n"] == sel.sum() and row["heldout_acc"] == pytest.approx(ho)
        assert row["risk_mean"] == pytest.approx(mem[sel].mean())
    assert f[f["run"] == "b"]["n"].sum() == 40  # every example in exactly one (non-empty) bin
    memo = memorization_table({"a": a})
    assert len(memo) == 40 and memo["memorization"].to_numpy() == pytest.approx(mem)
    assert (memo["n_in"] == 3).all() and (memo["low"] <= memo["memorization"]).all()


def test_dp_guarantee_counts_steps_and_rate():
    o = {**DEMO, "epochs": 3, "batch_size": 64}
    cfg = method_configs(o, ["pgd_at_dpsgd"])["pgd_at_dpsgd"]
    g = dp_guarantee(cfg, 500, 1e-5)
    # 500 images in batches of 64: 8 steps per epoch (the last one short), sampling rate 64 / 500
    assert g.steps == 24 and g.sample_rate == pytest.approx(0.128) and g.noise_multiplier == 0.5
    assert g.epsilon == pytest.approx(privacy.dp_sgd_epsilon(0.128, 0.5, 24, 1e-5).epsilon)
    assert dp_guarantee(method_configs(o, ["pgd_at"])["pgd_at"], 500, 1e-5) is None


def test_score_run_is_leave_one_out_lira():
    rng = np.random.default_rng(1)
    s, mask = _set(rng, m=6, n=300, shift=2.0)
    main, details, msg = score_run(s, n_boot=0)
    assert set(main) == set(CONTRACT)
    scores, labels, bad, _ = privacy.lira_leave_one_out(s.stats, mask, online=True, fix_variance=True, min_models=1)
    assert main["mia_auc"] == pytest.approx(privacy.roc_auc(scores, labels))
    assert main["tpr_at_1pct_fpr"] == pytest.approx(privacy.tpr_at_fpr(scores, labels, 0.01))
    assert main["mia_auc"] > 0.8 and bad == 0 and msg == ""
    assert main["natural_acc"] == pytest.approx(s.natural.mean())


def test_demo_contract(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = [
        "adversarial",
        "demo",
        "--data",
        "digits",
        "--n-pool",
        "40",
        "--n-test",
        "20",
        "--n-models",
        "4",
        "--epochs",
        "1",
        "--width",
        "4",
        "--hidden",
        "16",
        "--demem-flood",
        "0.7",
        "--workers",
        "0",
        "--out",
        str(out),
        "--quiet",
    ]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    # the network and flood options reach every model's TrainConfig (the leaky regime's command relies on them)
    cfg = json.loads((out / "config.json").read_text())["options"]
    assert (cfg["width"], cfg["hidden"], cfg["demem_flood"]) == (4, 16, 0.7)
    points = list((out / "grid" / "points").glob("*/result.json"))
    assert len(points) == 4 * len(RUNS)
    trained = [json.loads(p.read_text())["params"]["run"] for p in points]
    assert all(r["config"]["width"] == 4 and r["config"]["hidden"] == 16 for r in trained)
    assert {r["config"]["demem"]["flood"] for r in trained if r["config"]["demem"]} == {0.7}
    res = json.loads((out / "results.json").read_text())
    assert list(res["runs"]) == list(RUNS)
    for r in res["runs"].values():
        assert set(r) == set(CONTRACT)
        assert all(isinstance(v, float) and 0 <= v <= 1 for v in r.values())
    assert res["mia_attack"] == "lira_online_fixed_variance"
    assert res["details"]["standard"]["n_pairs"] == 4 * 40
    bins = pd.read_parquet(out / "risk_bins.parquet")
    assert set(bins["run"]) == set(RUNS) and set(bins["risk"]) == {"train_loss", "feldman"}
    assert (bins.groupby(["risk", "run"])["n"].sum() == 40).all()
    memo = pd.read_parquet(out / "memorization.parquet")
    assert len(memo) == 40 * len(RUNS) and ((memo["n_in"] == 2) & (memo["n_out"] == 2)).all()
    dp = res["dp"]["pgd_at_dpsgd"]
    assert set(res["dp"]) == {"pgd_at_dpsgd"} and dp["delta"] == 1e-5 and dp["epsilon"] > 0
    # about 20 images per model and batches of 64: one step per epoch over the whole set (sampling rate 1)
    assert dp["steps"] == 1 and dp["sample_rate"] == 1.0 and dp["n_train_max"] < 64
    assert res["details"]["pgd_at_dpsgd"]["dp"] == dp
    assert (out / "report.html").is_file() and (out / "metrics.png").is_file()
    # the same command again with --force reuses the finished models of the grid
    code, _, err = run([*argv, "--force"], capsys)
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["runs"] == res["runs"]


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "train"
    code, _, err = run(
        [
            "adversarial",
            "train",
            "--data",
            "digits",
            "--n-train",
            "60",
            "--n-test",
            "30",
            "--epochs",
            "2",
            "--method",
            "trades",
            "--demem",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["run"] == "trades_demem" and 0 <= res["robust_acc"] <= res["natural_acc"] + 0.2
    assert (out / "checkpoints" / "epoch-000002.pt").is_file()
    samples = pd.read_parquet(out / "samples.parquet")
    assert len(samples) == 60 and samples["high_risk"].sum() == 6
    ev = tmp_path / "eval"
    code, _, err = run(
        ["adversarial", "evaluate", "--run", str(out), "--eps", "0", "--out", str(ev), "--quiet"], capsys
    )
    assert code == 0, err
    r2 = json.loads((ev / "results.json").read_text())
    assert r2["natural_acc"] == pytest.approx(res["natural_acc"])
    assert r2["robust_acc"] == pytest.approx(r2["natural_acc"])  # eps 0: no attack
    assert r2["membership"]["loss"]["auc"] == pytest.approx(res["membership"]["loss"]["auc"])


def test_train_with_dp_reports_epsilon(tmp_path, capsys):
    out = tmp_path / "dp"
    argv = ["adversarial", "train", "--data", "digits", "--n-train", "40", "--n-test", "20", "--epochs", "2"]
    argv += ["--method", "standard", "--dp", "--dp-noise", "1.0", "--dp-delta", "1e-3", "--batch-size", "16"]
    code, _, err = run([*argv, "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    dp = json.loads((out / "results.json").read_text())["dp"]
    # 40 images in batches of 16: 3 steps per epoch, 6 in all, sampling rate 0.4
    expected = privacy.dp_sgd_epsilon(0.4, 1.0, 6, 1e-3)
    assert dp["steps"] == 6 and dp["sample_rate"] == pytest.approx(0.4) and dp["delta"] == 1e-3
    assert dp["epsilon"] == pytest.approx(expected.epsilon) and dp["conversion"] == "classic"
    code, _, err = run(["adversarial", "evaluate", "--run", str(out), "--out", str(tmp_path / "ev"), "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["dp"] == dp


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--dp-delta", "1"], "--dp-delta"),
        (["demo", "--dp-delta", "0"], "--dp-delta"),
        (["train", "--eps", "1.5"], "--eps"),
        (["train", "--step-size", "0.5"], "--step-size"),
        (["train", "--demem-fraction", "0"], "--demem-fraction"),
        (["demo", "--n-models", "3"], "--n-models"),
        (["demo", "--width", "0"], "--width"),
        (["demo", "--demem-flood", "-1"], "--demem-flood"),
        (["demo", "--runs", "standard,mart"], "mart"),
        (["evaluate", "--run", "{tmp}"], "config.json"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, match, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = tmp_path / "out"
    code, _, err = run(
        ["adversarial", *argv, "--data", "digits", "--out", str(out), "--quiet"]
        if argv[0] != "evaluate"
        else ["adversarial", *argv, "--out", str(out), "--quiet"],
        capsys,
    )
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and match in err, err
    assert not out.exists()


@pytest.mark.gpu
def test_demo_on_cuda(tmp_path, capsys):
    out = tmp_path / "cuda"
    code, _, err = run(
        [
            "adversarial",
            "demo",
            "--data",
            "digits",
            "--n-pool",
            "60",
            "--n-test",
            "30",
            "--n-models",
            "4",
            "--epochs",
            "1",
            "--runs",
            "pgd_at,pgd_at_dpsgd",
            "--workers",
            "0",
            "--device",
            "cuda",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert set(res["runs"]) == {"pgd_at", "pgd_at_dpsgd"}
    assert json.loads((out / "config.json").read_text())["options"]["device"].startswith("cuda")


def test_leaky_regime_is_the_documented_demo_command(tmp_path, capsys, monkeypatch):
    # docs/adversarial.md gives the leaky regime as a `rote adversarial demo` command: it must build LEAKY's options
    from rote.adversarial import experiment
    from rote.adversarial.experiment import LEAKY

    seen = {}

    def capture(options, out_dir, **kw):
        seen.update(options=dict(options), runs=list(kw["runs"]))
        raise ConfigError("captured")

    monkeypatch.setattr(experiment, "run_experiment", capture)
    argv = "--runs pgd_at,pgd_at_demem --n-pool 500 --n-models 16 --epochs 40 --width 16 --hidden 128".split()
    code, _, err = run(["adversarial", "demo", *argv, "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 2 and "captured" in err, err
    assert seen["runs"] == ["pgd_at", "pgd_at_demem"]
    assert seen["options"] == LEAKY
    assert (LEAKY["n_pool"], LEAKY["n_models"], LEAKY["width"], LEAKY["epochs"]) == (500, 16, 16, 40)
