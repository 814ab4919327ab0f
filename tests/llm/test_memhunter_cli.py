"""`rote llm detect-dataset` and `rote llm memhunter-demo`: the results.json contract, warnings, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rote.data.text import write_texts
from rote.llm.corpus import make_canaries
from rote.llm.tinygpt import TinyGPTConfig, build_model, save_model
from rote_testing import run

CONTRACT = {"p_value", "reject", "alpha", "effect", "effect_ci", "n_suspect", "n_reference"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("mh")
    for name, seed in (("target", 0), ("generator", 1)):
        save_model(
            build_model(TinyGPTConfig(block_size=96, n_layer=1, n_head=2, n_embd=16), seed), tmp / name / "model.pt"
        )
    texts = make_canaries(24, seed=5)
    for name, part in (("suspect", texts[:8]), ("reference", texts[8:16]), ("train", texts[16:20])):
        write_texts(tmp / f"{name}.jsonl", part)
    write_texts(tmp / "short.jsonl", ["tiny text"] * 3 + texts[20:21])
    write_texts(tmp / "russian.jsonl", ["Съешь же ещё этих мягких французских булок, да выпей чаю. " * 3] * 8)
    return {k: tmp / k for k in ("target", "generator")} | {
        k: tmp / f"{k}.jsonl" for k in ("suspect", "reference", "train", "short", "russian")
    }


def base(files, out) -> list[str]:
    return [
        "llm", "detect-dataset", "--model", f"tiny:{files['target']}", "--suspect", str(files["suspect"]),
        "--reference", str(files["reference"]), "--out", str(out), "--prefix-tokens", "40", "--suffix-tokens", "16",
    ]  # fmt: skip


def test_detect_dataset_contract(files, tmp_path, capsys):
    code, out, err = run(base(files, tmp_path / "a"), capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert CONTRACT <= set(res)
    assert res["n_suspect"] == 8 and res["n_reference"] == 8 and res["alpha"] == 0.05
    assert isinstance(res["reject"], bool) and res["reject"] == (res["p_value"] < 0.05)
    assert len(res["effect_ci"]) == 2 and res["effect_ci"][0] <= res["effect"] <= res["effect_ci"][1]
    assert "power" in err  # 8 + 8 texts: too few for delta 0.3 at power 0.8, warned
    assert (tmp_path / "a" / "report.html").is_file() and (tmp_path / "a" / "rows.parquet").is_file()


def test_detect_dataset_with_generator_training(files, tmp_path, capsys):
    argv = base(files, tmp_path / "g") + [
        "--generator", f"tiny:{files['generator']}", "--generator-train", str(files["train"]), "--rounds", "1",
        "--candidates", "2", "--prompts", "2", "--prompt-tokens", "4", "--quiet",
    ]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "g" / "results.json").read_text())
    assert len(res["generator_history"]) == 1
    assert (tmp_path / "g" / "checkpoints" / "round-000001.pt").is_file()


def test_detect_dataset_warns_on_other_language_and_lengths(files, tmp_path, capsys):
    argv = base(files, tmp_path / "w")
    argv[argv.index("--reference") + 1] = str(files["russian"])
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert "languages" in err and "length" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "openai:gpt-4o"], "token ids"),
        (["--generator-train", "{train}"], "needs --generator"),
        (["--alpha", "1.5"], "--alpha"),
        (["--placement", "middle"], "--placement"),
        (["--test", "ks"], "--test"),
    ],
)
def test_detect_dataset_bad_input(files, tmp_path, capsys, extra, message):
    argv = base(files, tmp_path / "bad") + [e.replace("{train}", str(files["train"])) for e in extra]
    code, _, err = run(argv, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()


def test_detect_dataset_too_short_texts(files, tmp_path, capsys):
    argv = base(files, tmp_path / "s")
    argv[argv.index("--suspect") + 1] = str(files["short"])
    code, _, err = run(argv, capsys)
    assert code == 2 and "at least 2 scored texts" in err, err


def test_memhunter_demo_contract(tmp_path, capsys):
    argv = [
        "llm", "memhunter-demo", "--out", str(tmp_path / "d"), "--texts", "6", "--repeats", "2", "--base-texts", "20",
        "--steps", "10", "--d-model", "16", "--layers", "1", "--sizes", "3,6", "--repetitions", "5", "--budget", "2",
        "--rounds", "1", "--quiet",
    ]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "d" / "results.json").read_text())
    assert 0 <= res["fpr"] <= 1 and 0 <= res["tpr"] <= 1 and res["n_per_set"] == 6 and res["repetitions"] == 5
    assert set(res["extraction"]) == {"generator", "prefix_baseline"}
    assert all(0 <= v <= 1 for v in res["extraction"].values())
    assert (tmp_path / "d" / "with" / "model.pt").is_file() and (tmp_path / "d" / "report.html").is_file()


@pytest.mark.slow
def test_memhunter_demo_default_settings(tmp_path, capsys):
    """The docs' run (seed 0): the test keeps its level without the dataset and has power with it."""
    code, _, err = run(["llm", "memhunter-demo", "--out", str(tmp_path / "demo"), "--quiet"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert res["fpr"] <= 0.08 and res["tpr"] >= 0.8, res
