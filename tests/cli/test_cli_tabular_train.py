"""`rote tabular train | augment | quality | experiment` end to end, and their bad inputs (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rote_testing import run, sha
from rote.data import infer_schema, load_dataset


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """200 Adult training rows and 150 test rows as CSV files."""
    d = tmp_path_factory.mktemp("adult")
    train = load_dataset("adult", "train").sample(200, random_state=1).reset_index(drop=True)
    test = load_dataset("adult", "test").sample(150, random_state=1).reset_index(drop=True)
    paths = {"train": d / "train.csv", "test": d / "test.csv"}
    train.to_csv(paths["train"], index=False)
    test.to_csv(paths["test"], index=False)
    return paths


def test_train_writes_model_synthetic_curve_and_audit(files, tmp_path, capsys):
    from rote.tabular import audit
    from rote.tabular.models import TabDDPM

    before = sha(files["train"])
    out = tmp_path / "tr"
    code, stdout, err = run(
        [
            "tabular",
            "train",
            "--train",
            str(files["train"]),
            "--target",
            "income",
            "--epochs",
            "2",
            "--timesteps",
            "50",
            "--every",
            "1",
            "--hook-samples",
            "30",
            "--n-synthetic",
            "80",
            "--augmentation",
            "tabcutmix",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["n_training_rows"] == 200 + 60 and res["epochs_trained"] == 2
    assert [c["epoch"] for c in res["memorization_curve"]] == [1, 2]
    synth = pd.read_parquet(out / "synthetic.parquet")
    assert len(synth) == 80 == res["n_synthetic"]
    # the saved model reproduces the synthetic table; the audit matches a direct call
    model = TabDDPM.load(out / "model.pt")
    pd.testing.assert_frame_equal(model.sample(80, seed=0), synth)
    train = pd.read_csv(files["train"])
    direct = audit(train, synth, target="income")
    assert res["memorization_ratio"] == pytest.approx(direct.memorization_ratio)
    assert (out / "report.html").is_file() and "report:" in stdout
    # the report shows the training loss and memorization-versus-epoch plots (also written as PNG files)
    assert (out / "train_loss.png").read_bytes()[:4] == b"\x89PNG" and (out / "mem_vs_epoch.png").is_file()
    html = (out / "report.html").read_text()
    assert "Training loss per epoch" in html and "Memorization ratio versus epoch" in html
    assert sha(files["train"]) == before
    # a finished run is not overwritten without --force
    code, _, err = run(
        [
            "tabular",
            "train",
            "--train",
            str(files["train"]),
            "--target",
            "income",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "--force" in err and err.count("\n") == 1


def test_augment_tabcutmixplus_and_quality(files, tmp_path, capsys):
    from rote.tabular.augment import TabCutMixPlus, ood_rate
    from rote.tabular.quality import quality_report

    out = tmp_path / "aug"
    code, stdout, err = run(
        [
            "tabular",
            "augment",
            "--train",
            str(files["train"]),
            "--target",
            "income",
            "--method",
            "tabcutmixplus",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    aug = pd.read_csv(out / "augmented.csv")
    assert len(aug) == 260 and res["n_new"] == 60
    train = pd.read_csv(files["train"])
    schema = infer_schema(train, target="income")  # what the CLI infers from the file (capital-loss: categorical)
    direct = TabCutMixPlus(ratio=0.3, seed=3).fit(train, schema)
    assert res["clusters"] == direct.clusters_
    both = direct.augment(train)
    assert res["ood_rate"] == pytest.approx(ood_rate(train, both.iloc[200:], schema, seed=3).ood_rate)
    assert "clusters" in stdout and "association heat map" in (out / "report.html").read_text()
    # the run folder holds the plots the report embeds, byte for byte
    from rote.tabular.report import augment_plots

    for name, png in augment_plots(direct).items():
        assert (out / f"{name}.png").read_bytes() == png

    qout = tmp_path / "q"
    code, _, err = run(
        [
            "tabular",
            "quality",
            "--train",
            str(files["train"]),
            "--target",
            "income",
            "--synthetic",
            str(out / "augmented.parquet"),
            "--test",
            str(files["test"]),
            "--out",
            str(qout),
        ],
        capsys,
    )
    assert code == 0, err
    q = json.loads((qout / "results.json").read_text())
    ref = quality_report(
        train, pd.read_parquet(out / "augmented.parquet"), schema, real_test=pd.read_csv(files["test"]), seed=0
    )
    for key in ("shape", "trend", "alpha_precision", "beta_recall", "c2st", "mle_auc", "dcr_share"):
        assert q[key] == pytest.approx(getattr(ref, key)), key
    assert (qout / "shape_columns.parquet").is_file()
    # plots: per-column shape, trend heat map, alpha/beta curves; in the report and as files; DCR with its ideal
    from rote.tabular.report import quality_plots

    names = set(quality_plots(ref, detail=True))
    assert names == {"shape_columns", "trend_heatmap", "alpha_beta", "marginals", "trend_real"} | {
        "trend_synthetic",
        "trend_difference",
    }
    for name in names:
        assert (qout / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    html = (qout / "report.html").read_text()
    assert "Pairwise trend heat map" in html and "alpha-precision and beta-coverage curves" in html
    ideal = 200 / (200 + 150)
    assert f"(ideal {100 * ideal:.2f}%)" in html


def test_experiment_cli_grid_file_resume_and_table(files, tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("axes:\n  augmentation: [none, tabcutmix]\n  seed: [0, 1]\nfixed:\n  generator: ijf\n")
    out = tmp_path / "exp"
    argv = [
        "tabular",
        "experiment",
        "--grid",
        str(grid),
        "--rows",
        "120",
        "--test-rows",
        "100",
        "--no-quality",
        "--no-ood",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["n_done"] == 4 and res["n_reused"] == 0 and res["grid"]["fixed"]["rows"] == 120
    table = pd.read_parquet(out / "paper_table.parquet")
    pts = pd.read_parquet(out / "points.parquet")
    assert len(pts) == 4 and set(pts["n_train"]) == {120}
    none = pts.loc[pts["augmentation"] == "none", "mem_ratio"].mean()
    tcm = pts.loc[pts["augmentation"] == "tabcutmix", "mem_ratio"].mean()
    row = table[table["augmentation"] == "tabcutmix"].iloc[0]
    assert row["mem_ratio_mean"] == pytest.approx(tcm)
    if none > 0:
        assert row["improvement"] == pytest.approx((none - tcm) / none)
    assert "Mem. ratio %" in stdout and (out / "report.html").is_file() and (out / "paper_table.md").is_file()
    # the same command again: refused without --force; with --force every point is reused
    code, _, err = run(argv, capsys)
    assert code == 2 and "--force" in err
    code, stdout, err = run(argv + ["--force"], capsys)
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["n_reused"] == 4


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["tabular", "experiment", "--generator", "gan"], "generator 'gan' is unknown"),
        (["tabular", "experiment", "--train-fraction", "0"], "fraction in (0, 1]"),
        (["tabular", "experiment", "--seeds", "0,x"], "--seeds: 'x' is not a valid int"),
        (["tabular", "experiment", "--workers", "0"], "--workers must be at least 1"),
        (["tabular", "train", "--generator", "gan"], "--generator 'gan' is unknown"),
        (["tabular", "train", "--dataset", "adult", "--train", "x.csv"], "exactly one of --train FILE or --dataset"),
        (["tabular", "augment", "--dataset", "adult", "--method", "cutout"], "--method 'cutout' is unknown"),
        (["tabular", "augment", "--dataset", "adult", "--method", "mixup", "--mode", "code"], "--mode applies"),
        (["tabular", "augment", "--dataset", "adult", "--ratio", "1e9"], "above 100 new rows per training row"),
        (["tabular", "train", "--dataset", "adult", "--timesteps", "0"], "must be a whole number >= 1"),
        (["tabular", "train", "--dataset", "adult", "--seed", "-1"], "--seed` must be a whole number >= 0"),
        (["tabular", "train", "--dataset", "adult", "--aug-ratio", "1e9", "--augmentation", "tabcutmix"], "above 100"),
        (["tabular", "train", "--dataset", "adult", "--num-nan-policy", "median"], "'median' is unknown"),
        (["tabular", "experiment", "--mode", "exact", "--augmentation", "tabcutmix"], "mode 'exact' is unknown"),
        (["tabular", "quality", "--dataset", "adult", "--synthetic", "s.csv", "--oc-epochs", "0"], "--oc-epochs"),
        (["tabular", "quality", "--dataset", "adult", "--synthetic", "s.csv", "--authenticity", "x"], "alaa or"),
    ],
)
def test_bad_input_exit_2(argv, needle, tmp_path, capsys):
    code, _, err = run(argv + ["--out", str(tmp_path / "o")], capsys)
    assert code == 2 and needle in err and err.count("\n") == 1


def test_bad_grid_file_exit_2(tmp_path, capsys):
    bad = tmp_path / "g.yaml"
    bad.write_text("axes:\n  epochs: [1, 1]\n")
    code, _, err = run(["tabular", "experiment", "--grid", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "g.yaml" in err and "more than once" in err


def test_train_mode_code_and_mean_imputation(files, tmp_path, capsys):
    """--mode reaches the augmenter, the share of augmented rows equal to a training row is reported, and
    --num-nan-policy mean fills missing numeric cells with the column mean (TabDDPM's policy)."""
    from rote.tabular.augment import TabCutMix, identical_share

    train = pd.read_csv(files["train"])
    train.loc[[3, 7], "age"] = float("nan")
    path = tmp_path / "nan.csv"
    train.to_csv(path, index=False)
    out = tmp_path / "o"
    argv = ["tabular", "train", "--train", str(path), "--target", "income", "--epochs", "1", "--timesteps", "5"]
    argv += ["--augmentation", "tabcutmix", "--mode", "code", "--n-synthetic", "40", "--quiet"]
    code, _, err = run(argv + ["--out", str(out)], capsys)
    assert code == 2 and "age" in err  # missing numeric cells are refused by default
    code, _, err = run(argv + ["--num-nan-policy", "mean", "--out", str(out), "--force"], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    mean = train["age"].dropna().mean()
    assert res["imputed_numeric"] == {"age": {"n": 2, "mean": pytest.approx(mean)}}
    filled = train.copy()
    filled["age"] = filled["age"].fillna(mean)
    schema = infer_schema(filled, target="income")
    both = TabCutMix(ratio=0.3, mode="code", seed=0).fit(filled, schema).augment(filled)
    assert res["identical_share"] == pytest.approx(identical_share(filled, both.iloc[len(filled) :]))
