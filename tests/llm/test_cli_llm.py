"""`rote llm` end to end on a tiny GPT trained in seconds, and bad inputs (exit 2 naming the file and line)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from rote.cli.main import main
from rote_testing import run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny GPT (1 layer, width 32) trained for 30 steps on a small text with planted canaries."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("tiny")
    corpus = tmp / "corpus.txt"
    corpus.write_text(
        "\n\n".join(
            f"Verse {i}: and the light was good, and the evening and the morning were day {i}." for i in range(60)
        ),
        encoding="utf-8",
    )
    out = tmp / "run"
    try:
        main(
            [
                "llm",
                "train-tiny",
                "--corpus",
                str(corpus),
                "--out",
                str(out),
                "--canaries",
                "1,5",
                "--per-count",
                "3",
                "--steps",
                "30",
                "--batch-size",
                "8",
                "--block-size",
                "128",
                "--layers",
                "1",
                "--d-model",
                "32",
                "--heads",
                "2",
                "--prefix-tokens",
                "10,30",
                "--suffix-tokens",
                "20",
                "--n-boot",
                "50",
                "--quiet",
            ]
        )
    except SystemExit as exc:  # pragma: no cover - a failure here shows in every test below
        assert not exc.code
    return out


def test_train_tiny_writes_a_complete_run(tiny_run):
    for name in (
        "model.pt",
        "config.json",
        "results.json",
        "canaries.jsonl",
        "extraction.parquet",
        "extraction_groups.parquet",
        "membership.parquet",
        "membership_by_repeats.parquet",
        "extraction_rate.png",
        "report.html",
        "train_log.json",
    ):
        assert (tiny_run / name).is_file(), name
    results = json.loads((tiny_run / "results.json").read_text())
    assert results["n_canaries"] == 9 and results["train"]["steps"] == 30
    assert set(results["extraction_rate"]) == {"0", "1", "5"}
    assert set(results["membership_auc"]) == {"1", "5"}
    canaries = pd.read_json(tiny_run / "canaries.jsonl", lines=True)
    assert canaries["repeats"].tolist() == [1, 1, 1, 5, 5, 5, 0, 0, 0]
    ext = pd.read_parquet(tiny_run / "extraction.parquet")
    assert len(ext) == 9 * 2 and set(ext["prefix_tokens"]) == {10, 30}
    html = (tiny_run / "report.html").read_text()
    assert "<mark>" in html and "Tiny GPT with planted canaries" in html and "<script" not in html
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["command"] == "rote llm train-tiny" and config["options"]["layers"] == 1


def test_extract_and_membership_on_the_trained_model(tiny_run, tmp_path, capsys):
    data = tiny_run / "canaries.jsonl"
    out = tmp_path / "ext"
    code, stdout, err = run(
        [
            "llm",
            "extract",
            "--model",
            f"tiny:{tiny_run}",
            "--data",
            str(data),
            "--out",
            str(out),
            "--prefix-tokens",
            "10,40",
            "--suffix-tokens",
            "25",
            "--group",
            "repeats",
            "--n-boot",
            "20",
        ],
        capsys,
    )
    assert code == 0, err
    assert "prefix   40 tokens" in stdout and "report:" in stdout
    rows = pd.read_parquet(out / "rows.parquet")
    assert len(rows) == 18 and set(rows["group"]) == {0, 1, 5}
    assert rows["suffix_text"].str.len().eq(25).all()  # 25 byte tokens of ASCII text
    groups = pd.read_parquet(out / "groups.parquet")
    assert set(groups["prefix_tokens"]) == {10, 40}
    assert (out / "report.html").read_text().count("<mark>") == 10  # --top 10 spans
    code, _, err = run(
        ["llm", "extract", "--model", f"tiny:{tiny_run}", "--data", str(data), "--out", str(out)], capsys
    )
    assert code == 2 and "already holds a finished run" in err

    mem = pd.read_json(data, lines=True)
    members, nonmembers = tmp_path / "m.jsonl", tmp_path / "n.jsonl"
    mem[mem["member"]][["id", "text"]].to_json(members, orient="records", lines=True)
    mem[~mem["member"]][["id", "text"]].to_json(nonmembers, orient="records", lines=True)
    out2 = tmp_path / "mem"
    code, stdout, err = run(
        [
            "llm",
            "membership",
            "--model",
            f"tiny:{tiny_run}",
            "--members",
            str(members),
            "--nonmembers",
            str(nonmembers),
            "--out",
            str(out2),
            "--n-boot",
            "20",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out2 / "results.json").read_text())
    assert (
        res["n_members"] == 6
        and res["n_nonmembers"] == 3
        and set(res["metrics"]) == {"loss", "zlib", "min_k", "min_k_plus_plus"}
    )
    rows = pd.read_parquet(out2 / "rows.parquet")
    assert rows["member"].tolist() == [True] * 6 + [False] * 3
    for name in ("roc.png", "scores.png", "report.html", "config.json"):
        assert (out2 / name).is_file()
    # prompted extraction on a local model: the bare-prefix template, prefixes in tokens
    out3 = tmp_path / "prompted"
    code, stdout, err = run(
        [
            "llm",
            "extract",
            "--model",
            f"tiny:{tiny_run}",
            "--data",
            str(data),
            "--out",
            str(out3),
            "--prompted",
            "--templates",
            "none",
            "--prefix-tokens",
            "25,50",
            "--max-new-tokens",
            "20",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    rows = pd.read_parquet(out3 / "rows.parquet")
    assert len(rows) == 9 * 2 and set(rows["template"]) == {"none"}
    assert rows["generated_text"].str.len().le(20).all()


def test_bad_inputs_exit_2_naming_file_and_line(tiny_run, tmp_path, capsys):
    model = f"tiny:{tiny_run}"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    code, _, err = run(["llm", "extract", "--model", model, "--data", str(bad), "--out", str(tmp_path / "o1")], capsys)
    assert code == 2 and "bad.jsonl, line 2: not UTF-8" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": "fine"}\n{"text": ""}\n')
    code, _, err = run(
        [
            "llm",
            "membership",
            "--model",
            model,
            "--members",
            str(empty),
            "--nonmembers",
            str(empty),
            "--out",
            str(tmp_path / "o2"),
        ],
        capsys,
    )
    assert code == 2 and "empty.jsonl, line 2: empty text" in err
    short = tmp_path / "short.jsonl"
    short.write_text('{"text": "much too short"}\n')
    code, _, err = run(
        ["llm", "extract", "--model", model, "--data", str(short), "--out", str(tmp_path / "o3")], capsys
    )
    assert code == 2 and "shorter than prefix 50 + suffix 50 tokens" in err
    code, _, err = run(
        [
            "llm",
            "extract",
            "--model",
            model,
            "--data",
            str(short),
            "--out",
            str(tmp_path / "o4"),
            "--prefix-tokens",
            "ten",
        ],
        capsys,
    )
    assert code == 2 and "--prefix-tokens 'ten'" in err
    code, _, err = run(
        [
            "llm",
            "extract",
            "--model",
            model,
            "--data",
            str(short),
            "--out",
            str(tmp_path / "o5"),
            "--prefix-tokens",
            "100",
            "--suffix-tokens",
            "100",
        ],
        capsys,
    )
    assert code == 2 and "exceed the model's context of 128 tokens" in err
    code, _, err = run(
        [
            "llm",
            "extract",
            "--model",
            "tiny:" + str(tmp_path / "nothing"),
            "--data",
            str(short),
            "--out",
            str(tmp_path / "o6"),
        ],
        capsys,
    )
    assert code == 2 and "no such folder" in err
    code, _, err = run(
        ["llm", "extract", "--model", model, "--data", str(short), "--out", str(tmp_path / "o7"), "--group", "kind"],
        capsys,
    )
    assert code == 2 and "--group 'kind'" in err
    code, _, err = run(["llm", "train-tiny", "--out", str(tmp_path / "o8"), "--canaries", "1,x"], capsys)
    assert code == 2 and "--canaries '1,x'" in err
    code, _, err = run(
        [
            "llm",
            "membership",
            "--model",
            model,
            "--members",
            str(short),
            "--nonmembers",
            str(short),
            "--out",
            str(tmp_path / "o9"),
            "--fprs",
            "2",
        ],
        capsys,
    )
    assert code == 2 and "(0, 1)" in err


def test_prompted_study_over_http_keeps_the_key_secret_and_resumes(tmp_path, capsys, monkeypatch):
    from .conftest import NGramBackend
    from .openai_server import OpenAIServer

    texts = [
        "Four score and seven years ago our fathers brought forth on this continent a new nation, conceived "
        "in Liberty, and dedicated to the proposition that all men are created equal.",
        "We the People of the United States, in Order to form a more perfect Union, establish Justice, insure "
        "domestic Tranquility, provide for the common defence.",
    ]
    data = tmp_path / "articles.jsonl"
    data.write_text("\n".join(json.dumps({"id": f"a{i}", "text": t}) for i, t in enumerate(texts)) + "\n")
    secret = "sk-test-0123456789abcdef"
    argv = [
        "llm",
        "extract",
        "--model",
        "openai:tiny",
        "--data",
        str(data),
        "--prompted",
        "--templates",
        "plain,roleplay",
        "--prefix-tokens",
        "5,10",
        "--max-new-tokens",
        "12",
        "--api-key-env",
        "ROTE_TEST_KEY",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--max-retries",
        "0",
        "--quiet",
    ]
    with OpenAIServer(NGramBackend(texts, order=20)) as server:
        argv[argv.index("--api-key-env") - 0 : argv.index("--api-key-env")] = ["--base-url", server.base_url]
        server.require_key(secret)
        server.refuse_when("Archivist")
        # no key in the environment: a clear message, exit 2, no request sent
        monkeypatch.delenv("ROTE_TEST_KEY", raising=False)
        code, _, err = run([*argv, "--out", str(tmp_path / "r")], capsys)
        assert code == 2 and "environment variable ROTE_TEST_KEY is not set" in err and not server.log
        monkeypatch.setenv("ROTE_TEST_KEY", secret)
        # the endpoint fails after 3 answers: the run stops with exit 2 and the answers so far are cached
        server.fail_next(1, 500, after=3)
        code, _, err = run([*argv, "--out", str(tmp_path / "r")], capsys)
        assert code == 2 and "rerun to resume" in err
        assert not (tmp_path / "r" / "results.json").exists()
        n_before = server.n_answered
        code, out, err = run([*argv, "--out", str(tmp_path / "r")], capsys)
        assert code == 0, err
        assert server.n_answered == n_before + 8 - 3  # only the answers not cached were asked for again
    rows = pd.read_parquet(tmp_path / "r" / "rows.parquet")
    assert len(rows) == 2 * 2 * 2 and rows["cached"].sum() == 3
    assert rows.groupby("template")["refused"].mean().to_dict() == {"plain": 0.0, "roleplay": 1.0}
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["prefix_unit"] == "words" and results["refusal_rate"]["roleplay"] == 1.0
    # the key is nowhere in what rote wrote (run folder and response cache); its variable's name is recorded
    for f in [*(tmp_path / "r").rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
    assert json.loads((tmp_path / "r" / "config.json").read_text())["options"]["api_key_env"] == "ROTE_TEST_KEY"


def test_sample_texts_writes_famous_and_fresh_sets(tmp_path, capsys):
    out = tmp_path / "texts.jsonl"
    code, stdout, _ = run(["llm", "sample-texts", "--out", str(out), "--fresh", "5", "--seed", "1"], capsys)
    assert code == 0 and "29 texts (24 famous, 5 fresh)" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["set"] for r in rows] == ["famous"] * 24 + ["fresh"] * 5
    assert rows[-1]["id"] == "fresh-004" and rows[0]["id"] == "kjv-genesis-1"
    code, _, err = run(["llm", "sample-texts", "--out", str(out)], capsys)
    assert code == 2 and "exists" in err
