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
            "--compare",
            "5,0",
            "--n-boot",
            "20",
        ],
        capsys,
    )
    assert code == 0, err
    assert "prefix   40 tokens" in stdout and "report:" in stdout
    # the group comparison, in results.json, comparisons.parquet and the summary, against scipy on the rows
    from scipy import stats as sst

    res = json.loads((out / "results.json").read_text())
    comp = pd.read_parquet(out / "comparisons.parquet")
    assert len(res["comparison"]) == len(comp) == 4  # 2 prefix lengths x (lcsubstr_chars, logp_suffix)
    assert "Cliff's delta" in stdout
    rows_ = pd.read_parquet(out / "rows.parquet")
    c = comp[(comp["prefix_tokens"] == 40) & (comp["metric"] == "logp_suffix")].iloc[0]
    x = rows_[(rows_["group"] == 5) & (rows_["prefix_tokens"] == 40)]["logp_suffix"]
    y = rows_[(rows_["group"] == 0) & (rows_["prefix_tokens"] == 40)]["logp_suffix"]
    assert c["name_x"] == "5" and c["mann_whitney_p"] == pytest.approx(sst.mannwhitneyu(x, y).pvalue)
    rows = pd.read_parquet(out / "rows.parquet")
    assert len(rows) == 18 and set(rows["group"]) == {0, 1, 5}
    assert rows["suffix_text"].str.len().eq(25).all()  # 25 byte tokens of ASCII text
    groups = pd.read_parquet(out / "groups.parquet")
    assert set(groups["prefix_tokens"]) == {10, 40}
    # --top 10 spans, and the per-text table marks the copied span in the true continuation and the generation
    assert (out / "report.html").read_text().count("<mark>") == 10 + 2 * 18
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
    assert res["bos"] == "auto" and res["start_ids"] == [] and 0 <= res["overlap"]["blind_auc"] <= 1
    # 3 non-members cannot resolve 10% FPR: flagged, and said so in the summary
    assert res["metrics"]["loss"]["tpr_at_0.1_fpr_resolved"] is False
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
    opts = json.loads((tmp_path / "r" / "config.json").read_text())["options"]
    assert opts["api_key_env"] == "ROTE_TEST_KEY" and opts["prompted"] is True and opts["protocol"] == "prompted"
    assert opts["prefix_unit"] == "words" and not rows["filtered"].any()


def test_sample_texts_writes_famous_and_fresh_sets(tmp_path, capsys):
    out = tmp_path / "texts.jsonl"
    code, stdout, _ = run(["llm", "sample-texts", "--out", str(out), "--fresh", "5", "--seed", "1"], capsys)
    assert code == 0 and "29 texts (24 famous, 5 fresh)" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["set"] for r in rows] == ["famous"] * 24 + ["fresh"] * 5
    assert rows[-1]["id"] == "fresh-004" and rows[0]["id"] == "kjv-genesis-1"
    code, _, err = run(["llm", "sample-texts", "--out", str(out)], capsys)
    assert code == 2 and "exists" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--timeout", "-1"], "--timeout must be > 0, got -1"),
        (["--n-boot", "-1"], "--n-boot must be >= 0, got -1"),
        (["--top", "-1"], "--top must be >= 0, got -1"),
        (["--bos", "maybe"], "--bos must be one of auto, on, off"),
        (["--prompted", "--suffix-tokens", "32"], "--suffix-tokens applies only without --prompted"),
        (["--prompted", "--n-samples", "4"], "--n-samples applies only without --prompted"),
        (["--templates", "plain"], "--templates applies only with --prompted"),
        (["--compare", "a,b"], "--compare takes two values of --group"),
        (["--n-sampled", "2", "--temperature", "0"], "--temperature must be > 0"),
    ],
)
def test_extract_bad_options_are_one_line(tiny_run, tmp_path, capsys, extra, message):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "' + "and the evening and the morning were the first day " * 4 + '"}\n')
    argv = ["llm", "extract", "--model", f"tiny:{tiny_run}", "--data", str(data), "--out", str(tmp_path / "o")]
    code, _, err = run([*argv, *extra], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_cli_other_bad_inputs(tiny_run, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "and the evening and the morning were the first day"}\n')
    code, _, err = run(
        ["llm", "extract", "--model", "openai:m", "--data", str(data), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "needs the served model's tokenizer" in err and "--tokenizer" in err
    argv = ["llm", "membership", "--model", f"tiny:{tiny_run}", "--members", str(data), "--nonmembers", str(data)]
    for extra, message in (
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--n-boot", "-5"], "--n-boot must be >= 0"),
        (["--recall-shots", "-1"], "--recall-shots must be >= 0"),
        (["--recall-shots", "1"], "--recall-shots 1 leaves no non-member"),
        (["--base-url", "http://x/v1"], "--base-url apply to 'openai:MODEL' models only"),
    ):
        code, _, err = run([*argv, "--out", str(tmp_path / "m"), *extra], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)
        assert not (tmp_path / "m").exists()
    code, _, err = run(["llm", "train-tiny", "--out", str(tmp_path / "t"), "--block-size", "32"], capsys)
    assert code == 2 and "exceed --block-size 32" in err and not (tmp_path / "t").exists()
    code, _, err = run(["llm", "train-tiny", "--out", str(tmp_path / "t"), "--checkpoint-every", "0"], capsys)
    assert code == 2 and "--checkpoint-every must be >= 1" in err
    code, _, err = run(["llm", "train-tiny", "--out", str(tmp_path / "t"), "--device", "cuda:7"], capsys)
    assert code == 2 and err.startswith("error: --device cuda:7") and not (tmp_path / "t").exists()


def test_plain_continuation_over_http_from_the_cli(tiny_run, tmp_path, capsys):
    from rote.llm import open_backend

    from .openai_server import OpenAIServer

    data = tmp_path / "d.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"text": f"Verse {i}: and the light was good, and the evening and the morning were day {i}."})
            for i in range(4)
        )
        + "\n"
    )
    common = ["--data", str(data), "--prefix-tokens", "20", "--suffix-tokens", "12", "--n-boot", "0", "--quiet"]
    local_out, http_out = tmp_path / "local", tmp_path / "http"
    code, _, err = run(["llm", "extract", "--model", f"tiny:{tiny_run}", *common, "--out", str(local_out)], capsys)
    assert code == 0, err
    with OpenAIServer(open_backend(f"tiny:{tiny_run}")) as server:
        argv = ["llm", "extract", "--model", "openai:tiny", "--base-url", server.base_url, "--api-key-env", "none"]
        argv += ["--tokenizer", f"tiny:{tiny_run}", "--cache-dir", str(tmp_path / "cache"), "--n-sampled", "2"]
        code, _, err = run([*argv, *common, "--out", str(http_out)], capsys)
        assert code == 0, err
        assert all("Authorization" not in r["headers"] for r in server.log)
        assert {r["path"] for r in server.log} == {"/v1/completions"}
    loc, rem = pd.read_parquet(local_out / "rows.parquet"), pd.read_parquet(http_out / "rows.parquet")
    assert rem["exact_match"].tolist() == loc["exact_match"].tolist()
    assert rem["lcsubstr_chars"].tolist() == loc["lcsubstr_chars"].tolist()
    assert (rem["logp_suffix"] - loc["logp_suffix"]).abs().max() < 1e-6
    opts = json.loads((http_out / "config.json").read_text())["options"]
    assert opts["prompted"] is False and opts["protocol"] == "continuation" and opts["n_sampled"] == 2
    assert opts["bos"] == "auto" and opts["api_key_env"] == "none"
