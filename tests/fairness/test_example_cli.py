"""`rote fairness example` (formerly `python -m rote.fairness.examples`): the worked example as a verb with the exit
contract; its predictions feed the other verbs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rote_testing import run
import rote.fairness.examples as examples


def test_example_verb_writes_a_run_whose_numbers_match_the_library(tmp_path, capsys):
    out = tmp_path / "ex"
    argv = ["fairness", "example", "--task", "income", "--group", "sex", "--rows", "300", "--test-rows", "200"]
    argv += ["--max-iter", "5", "--threads", "1", "--tol", "0.01", "--out", str(out)]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    table = pd.read_parquet(out / "table.parquet").set_index("metric")
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == "income" and res["info"]["n_train"] == 300 and res["info"]["n_test"] == 200
    assert "| equal opportunity |" in stdout
    assert (out / "report.html").is_file()
    # the test-split predictions feed `rote fairness metrics`, whose numbers are the table's test_before
    preds = out / "predictions.parquet"
    code, _, err = run(
        ["fairness", "metrics", "--data", str(preds), "--group", "sex", "--out", str(tmp_path / "m")], capsys
    )
    assert code == 0, err
    m = json.loads((tmp_path / "m" / "results.json").read_text())
    for metric in ("sp", "eopp", "eodds"):
        assert m["values"][metric] == pytest.approx(table.loc[metric, "test_before"], abs=1e-12)
    assert m["accuracy"] == pytest.approx(res["info"]["test_accuracy"])
    assert code == 0, err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--task", "height"], "--task"),
        (["--group", "age"], "--group"),
        (["--rows", "3"], "--rows must be >= 10, got 3"),
        (["--weight", "-1"], "--weight must be > 0, got -1"),
        (["--threads", "0"], "--threads must be >= 1"),
    ],
)
def test_example_bad_input_exits_2_with_one_line(tmp_path, capsys, args, needle):
    code, _, err = run(["fairness", "example", *args, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert needle in err, err
    assert not (tmp_path / "o").exists()


def test_the_second_command_line_is_gone():
    assert not hasattr(examples, "main") and "argparse" not in open(examples.__file__).read()
