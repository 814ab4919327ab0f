"""`rote ssl` end to end on sklearn digits: train f and g, localize, prune, demo; the results.json contract and
bad input as one-line exit-2 errors."""

from __future__ import annotations

import json

import pytest

from rote.cli.main import main
from rote_testing import run

TINY = [
    "--data",
    "digits",
    "--width",
    "2",
    "--epochs",
    "1",
    "--n-candidate",
    "40",
    "--n-independent",
    "40",
    "--n-shared",
    "100",
    "--batch-size",
    "64",
    "--quiet",
]
DEMO = [
    "ssl",
    "demo",
    "--data",
    "digits",
    "--width",
    "2",
    "--epochs",
    "1",
    "--supervised-epochs",
    "1",
    "--n-shared",
    "100",
    "--n-candidate",
    "40",
    "--n-independent",
    "40",
    "--n-probe",
    "60",
    "--finetune-epochs",
    "2",
    "--quiet",
]


def _ok(argv) -> None:
    try:
        main(argv)
    except SystemExit as exc:
        raise AssertionError(f"{argv} exited with {exc.code}") from None


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    d = tmp_path_factory.mktemp("ssl")
    for role in ("f", "g"):
        _ok(["ssl", "train", "--role", role, "--out", str(d / role), *TINY])
    _ok(["ssl", "train", "--role", "g", "--out", str(d / "wide"), *TINY[:3], "3", *TINY[4:]])
    _ok(["ssl", "train", "--role", "g", "--out", str(d / "gbad"), *TINY, "--split-seed", "1"])
    return d


def _contract(layers):
    assert [r["name"] for r in layers] == [
        "conv1",
        "conv2",
        "res1.conv1",
        "res1.conv2",
        "conv3",
        "conv4",
        "res2.conv1",
        "res2.conv2",
    ]
    for r in layers:
        assert set(r) == {"name", "layermem", "delta_layermem", "units_highly_memorizing"}
        assert isinstance(r["units_highly_memorizing"], int)
    prev = 0.0
    for r in layers:
        assert r["delta_layermem"] == pytest.approx(r["layermem"] - prev)
        prev = r["layermem"]


def test_train_writes_an_encoder_with_its_split(encoders):
    res = json.loads((encoders / "f" / "results.json").read_text())
    assert res["n_train"] == 140 and res["role"] == "f"
    assert (encoders / "f" / "encoder.pt").is_file() and (encoders / "f" / "report.html").is_file()


def test_localize_writes_the_layers_contract(encoders, tmp_path, capsys):
    out = tmp_path / "loc"
    code, _, err = run(
        [
            "ssl",
            "localize",
            "--f",
            str(encoders / "f"),
            "--g",
            str(encoders / "g" / "encoder.pt"),
            "--n-points",
            "40",
            "--k",
            "10",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    _contract(res["layers"])
    assert res["n_points"] == 40 and 0 <= res["ttest"]["p_one_sided"] <= 1
    assert (out / "points.parquet").is_file() and (out / "units.parquet").is_file()
    code, _, err = run(
        [
            "ssl",
            "localize",
            "--f",
            str(encoders / "f"),
            "--g",
            str(encoders / "g"),
            "--layers",
            "conv2,res2.conv2",
            "--n-points",
            "20",
            "--k",
            "5",
            "--out",
            str(tmp_path / "two"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    assert [r["name"] for r in json.loads((tmp_path / "two" / "results.json").read_text())["layers"]] == [
        "conv2",
        "res2.conv2",
    ]


@pytest.mark.parametrize(
    "g, extra, needle",
    [
        ("f", [], "--g was trained on 40 of f's candidate points"),
        ("gbad", [], "overlaps g's training data"),
        ("wide", [], "differ in"),
        ("g", ["--layers", "conv1,blocks.0"], "valid layers: conv1, conv2, res1.conv1"),
        ("nothing", [], "no such encoder file"),
    ],
)
def test_localize_bad_input_is_one_line(encoders, tmp_path, capsys, g, extra, needle):
    code, _, err = run(
        [
            "ssl",
            "localize",
            "--f",
            str(encoders / "f"),
            "--g",
            str(encoders / g),
            *extra,
            "--out",
            str(tmp_path / "x"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "x").exists()


def test_prune_reports_every_rule(encoders, tmp_path, capsys):
    out = tmp_path / "pr"
    code, _, err = run(
        [
            "ssl",
            "prune",
            "--f",
            str(encoders / "f"),
            "--n-points",
            "40",
            "--n-probe",
            "60",
            "--fraction",
            "0.25",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert set(res["pruning"]) == {"top", "random", "bottom", "none"}
    assert all(0 <= v <= 1 for v in res["pruning"].values())


def test_demo_contract(tmp_path, capsys):
    out = tmp_path / "demo"
    code, _, err = run([*DEMO, "--out", str(out)], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    _contract(res["layers"])
    assert set(res["pruning"]) == {"top", "random", "bottom", "none"}
    assert all(isinstance(v, float) for v in res["pruning"].values())
    assert "supervised_classmem_mean" in res["layer_details"][0]
    assert set(res["finetune"]) == {"most", "last", "random"}
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in res["finetune"].values())
    assert res["setup"]["finetune_k"] == 2
    assert (out / "report.html").read_text().count("<img") == 3


def test_demo_bad_numbers_are_refused_before_work(tmp_path, capsys):
    code, _, err = run([*DEMO, "--prune-fraction", "1.5", "--out", str(tmp_path / "d")], capsys)
    assert code == 2 and "--prune-fraction" in err
    code, _, err = run([*DEMO, "--n-candidate", "1", "--out", str(tmp_path / "d")], capsys)
    assert code == 2 and "--n-candidate" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.gpu
def test_demo_on_cuda(tmp_path, capsys):
    import torch

    assert torch.cuda.is_available(), "the gpu mark promises a CUDA device"
    code, _, err = run([*DEMO, "--device", "cuda", "--out", str(tmp_path / "gpu")], capsys)
    assert code == 0, err
    _contract(json.loads((tmp_path / "gpu" / "results.json").read_text())["layers"])


@pytest.mark.slow
def test_the_default_demo(tmp_path, capsys):
    """The documented `rote ssl demo` (minutes on 2 cores): the contract, and the numbers docs/ssl.md quotes."""
    out = tmp_path / "full"
    code, _, err = run(["ssl", "demo", "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    _contract(res["layers"])
    assert set(res["pruning"]) == {"top", "random", "bottom", "none"}
    assert res["setup"]["n_candidate"] == 100 and res["n_points"] == 100


def test_grid_averages_the_demo_over_seeds(tmp_path, capsys):
    out = tmp_path / "grid"
    argv = ["ssl", "grid", "--seeds", "0,1", *DEMO[2:-1], "--out", str(out), "--quiet"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    points = [json.loads(p.read_text()) for p in sorted((out / "grid" / "points").glob("*/result.json"))]
    assert sorted(p["params"]["seed"] for p in points) == [0, 1]
    got = {m["metric"]: m for m in res["metrics"]}
    vals = [p["scalars"]["layermem"]["res2.conv2"] for p in points]
    assert got["layermem.res2.conv2"]["mean"] == pytest.approx(sum(vals) / 2)
    assert got["layermem.res2.conv2"]["std"] == pytest.approx(abs(vals[0] - vals[1]) / 2**0.5)
    assert got["pruning.top"]["n_seeds"] == 2
    assert got["finetune.most"]["n_seeds"] == 2
