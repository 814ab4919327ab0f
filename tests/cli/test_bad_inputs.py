"""One table of bad inputs over every verb: each row must exit 2 with exactly one line on stderr (`error: ...`),
print nothing else, leave no half-made run folder, and change no input. A new verb adds its rows here.

The per-domain test files check the wording of domain errors in detail (columns, rows, files); this table checks
the contract every verb shares: unusable `--out` folders, parser errors, bad values, and grids whose points fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rote_testing import run, sha


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    n = 40
    tab = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.normal(size=n) * 10,
            "c": rng.choice(["a", "b"], n),
            "label": rng.choice(["p", "q"], n),
        }
    )
    tab.to_csv(d / "train.csv", index=False)
    tab.sample(frac=1.0, random_state=1).to_csv(d / "synthetic.csv", index=False)
    fair = pd.DataFrame(
        {
            "label": rng.choice(["a", "b"], 60),
            "prediction": rng.choice(["a", "b"], 60),
            "sex": rng.choice(["f", "m"], 60),
            "mem": rng.random(60) < 0.2,
            "after": rng.choice(["a", "b"], 60),
        }
    )
    fair.to_csv(d / "preds.csv", index=False)
    (d / "texts.jsonl").write_text(
        "".join(f'{{"text": "text number {i} is long enough to score"}}\n' for i in range(4))
    )
    (d / "a_file").write_text("not a folder\n")
    import torch

    from rote.sharpness import DDPM

    DDPM(2, net="mlp", net_args=dict(hidden=8, depth=2), T=20).save(d / "ddpm.pt", train=torch.randn(30, 2))
    scores = {"sample": range(8), "class": [0, 1] * 4, "memorized": [True, False] * 4, "hs_norm2_t1": np.arange(8.0)}
    pd.DataFrame(scores).to_parquet(d / "scores.parquet")
    from rote.icl.experiment import run_sweep, sweep_grids

    g, _ = sweep_grids(["8", "32"], [4], [0], steps=2, hidden=8, eval_every=2, eval_n=32, batch=8)
    run_sweep(d / "icl_sweep", g, workers=0, quiet=True)  # a finished sweep folder for `rote icl analyze`
    from rote.cli.main import main

    try:  # a finished `rote adversarial train` folder for `rote adversarial evaluate`
        main(
            ["adversarial", "train", "--data", "digits", "--n-train", "40", "--n-test", "20", "--epochs", "1"]
            + ["--method", "standard", "--out", str(d / "advrun"), "--quiet"]
        )
    except SystemExit as exc:
        assert not exc.code, exc.code
    return {p.stem: p for p in d.iterdir()} | {"dir": d}


# One row per verb that writes a run folder: (verb, the smallest valid argv without --out, a numeric option or None).
# "{train}", "{synthetic}", "{preds}", "{texts}" stand for the module's input files. A new verb adds its row here.
# fmt: off
VERBS: list[tuple[str, list[str], str | None]] = [
    ("tabular audit", ["tabular", "audit", "--train", "{train}", "--synthetic", "{synthetic}"], "--block-mb"),
    ("tabular train", ["tabular", "train", "--train", "{train}", "--generator", "ijf"], "--seed"),
    ("tabular augment", ["tabular", "augment", "--train", "{train}", "--target", "label"], "--ratio"),
    ("tabular quality", ["tabular", "quality", "--train", "{train}", "--synthetic", "{synthetic}"], "--seed"),
    ("tabular experiment", ["tabular", "experiment", "--dataset", "{train}", "--target", "label", "--generator", "ijf"], "--workers"),
    ("llm extract", ["llm", "extract", "--model", "tiny:/nonexistent", "--data", "{texts}"], "--seed"),
    ("llm membership", ["llm", "membership", "--model", "tiny:/nonexistent", "--members", "{texts}", "--nonmembers", "{texts}"], "--k"),
    ("llm train-tiny", ["llm", "train-tiny", "--corpus", "{texts}"], "--steps"),
    ("llm probe", ["llm", "probe", "--model", "tiny:/nonexistent"], "--c"),
    ("llm suppress", ["llm", "suppress", "--model", "tiny:/nonexistent", "--probe", "{dir}"], "--prefix"),
    ("llm probe-demo", ["llm", "probe-demo"], "--steps"),
    ("llm probe-grid", ["llm", "probe-grid", "--seeds", "0", "--steps", "80", "--per-count", "4", "--max-texts", "40", "--layers", "1", "--min-run", "4", "--alphas", "0,1"], "--steps"),
    ("llm detect-dataset", ["llm", "detect-dataset", "--model", "tiny:/nonexistent", "--suspect", "{texts}", "--reference", "{texts}"], "--alpha"),
    ("llm memhunter-grid", ["llm", "memhunter-grid", "--seeds", "0", "--texts", "6", "--repeats", "2", "--base-texts", "20", "--steps", "10", "--d-model", "16", "--layers", "1", "--sizes", "3", "--repetitions", "5", "--budget", "2", "--rounds", "1", "--search-budget", "6"], "--steps"),
    ("llm memhunter-demo", ["llm", "memhunter-demo", "--texts", "6", "--repeats", "2", "--base-texts", "20", "--steps", "10", "--d-model", "16", "--layers", "1", "--sizes", "3", "--repetitions", "5", "--budget", "2", "--rounds", "1", "--search-budget", "6"], "--steps"),
    ("fairness metrics", ["fairness", "metrics", "--data", "{preds}", "--group", "sex"], "--n-boot"),
    ("fairness memorization", ["fairness", "memorization", "--data", "{preds}", "--group", "sex", "--memorized", "mem"], None),
    ("fairness bound", ["fairness", "bound", "--data", "{preds}", "--group", "sex"], "--tol"),
    ("fairness audit", ["fairness", "audit", "--data", "{preds}", "--group", "sex", "--before", "prediction", "--after", "after", "--memorized", "mem"], "--threshold"),
    ("fairness example", ["fairness", "example", "--rows", "50", "--test-rows", "50", "--max-iter", "2"], "--tol"),
    ("sharpness toy", ["sharpness", "toy", "--epochs", "1", "--generations", "10", "--steps", "4"], "--epochs"),
    ("sharpness mnist", ["sharpness", "mnist", "--epochs", "1", "--generations-per-class", "2", "--steps", "4"], "--guidance"),
    ("sharpness mnist fashion", ["sharpness", "mnist", "--dataset", "fashion-mnist", "--epochs", "1", "--generations-per-class", "2", "--steps", "4", "--duplicates", "3"], "--epochs"),
    ("sharpness score", ["sharpness", "score", "--model", "{ddpm}", "--samples", "4", "--steps", "4"], "--samples"),
    ("sharpness eval", ["sharpness", "eval", "--scores", "{scores}"], "--group-size"),
    ("sharpness grid", ["sharpness", "grid", "--seeds", "0", "--epochs", "1", "--generations", "10", "--steps", "2"], "--epochs"),
    ("sharpness tabular", ["sharpness", "tabular", "--rows", "200", "--epochs", "1", "--timesteps", "5", "--samples", "20"], "--cond-dropout"),
    ("spurious toy", ["spurious", "toy", "--n", "20", "--d", "4", "--epochs", "1"], "--temperature"),
    ("spurious demo", ["spurious", "demo", "--dataset", "digits", "--n-train", "40", "--epochs", "1"], "--temperature"),
    ("spurious train", ["spurious", "train", "--data", "colored-digits", "--n-train", "40", "--n-val", "40", "--n-test", "40", "--epochs", "1"], "--temperature"),
    ("icl train", ["icl", "train", "--K", "8", "--N", "4", "--steps", "2", "--hidden", "8", "--eval-n", "32"], "--steps"),
    ("icl sweep", ["icl", "sweep", "--K", "8", "--N", "4", "--seeds", "0", "--steps", "2", "--hidden", "8", "--eval-n", "32"], "--steps"),
    ("icl memorize", ["icl", "memorize", "--K", "8,16", "--steps", "2", "--hidden", "8"], "--steps"),
    ("icl analyze", ["icl", "analyze", "{icl_sweep}"], "--n-boot"),
    ("ssl train", ["ssl", "train", "--data", "digits", "--width", "2", "--epochs", "1", "--n-candidate", "40", "--n-independent", "40", "--n-shared", "100", "--batch-size", "64"], "--epochs"),
    ("ssl localize", ["ssl", "localize", "--f", "/nonexistent/f.pt", "--g", "/nonexistent/g.pt"], "--n-points"),
    ("ssl prune", ["ssl", "prune", "--f", "/nonexistent/f.pt"], "--fraction"),
    ("ssl finetune", ["ssl", "finetune", "--f", "/nonexistent/f.pt", "--localize", "/nonexistent/loc"], "--k"),
    ("ssl demo", ["ssl", "demo", "--data", "digits", "--width", "2", "--epochs", "1", "--supervised-epochs", "1", "--n-shared", "100", "--n-candidate", "40", "--n-independent", "40", "--n-probe", "60"], "--epochs"),
    ("ssl grid", ["ssl", "grid", "--seeds", "0", "--data", "digits", "--width", "2", "--epochs", "1", "--supervised-epochs", "1", "--n-shared", "100", "--n-candidate", "40", "--n-independent", "40", "--n-probe", "60"], "--epochs"),
    ("adversarial demo", ["adversarial", "demo", "--data", "digits", "--n-pool", "40", "--n-test", "20", "--n-models", "4", "--epochs", "1", "--runs", "standard", "--workers", "0"], "--eps"),
    ("adversarial train", ["adversarial", "train", "--data", "digits", "--n-train", "40", "--n-test", "20", "--epochs", "1", "--method", "standard"], "--eps"),
    ("adversarial evaluate", ["adversarial", "evaluate", "--run", "{advrun}"], "--eps"),
    ("icl demo", ["icl", "demo"], "--steps"),
    ("demo", ["demo"], "--epochs"),
]
# fmt: on
RUN_VERBS = [v for v, _, _ in VERBS]
NUMBER_OPTION = {v: opt for v, _, opt in VERBS if opt is not None}


def _verbs(i: dict[str, Path]) -> dict[str, list[str]]:
    """The argv of every verb in VERBS with the input files filled in."""
    names = {k: str(v) for k, v in i.items()}
    return {verb: [a.format(**names) if a.startswith("{") else a for a in argv] for verb, argv, _ in VERBS}


FILE_VERBS = {
    "tabular schema": lambda i: ["tabular", "schema", "--data", str(i["train"])],
    "llm sample-texts": lambda i: ["llm", "sample-texts"],
}


def _check(code: int, out: str, err: str, needle: str) -> None:
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("error: "), err  # one line, nothing before it
    assert needle in err, err
    assert "Traceback" not in out + err


def _read_only(folder: Path, monkeypatch) -> None:
    """A folder this process cannot write in. Root ignores permission bits, so as root the refusal the kernel would
    give a normal user (or a read-only mount) is simulated at the one place rote probes it."""
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    import rote.core.runs as runs

    real = runs.tempfile.mkstemp

    def refuse(*args, dir=None, **kw):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(runs.tempfile, "mkstemp", refuse)


CASES = [
    "out_is_file",
    "out_under_file",
    "results_is_folder",
    "read_only",
    "finished_run",
    "unknown_option",
    "bad_number",
]


@pytest.mark.parametrize(
    "verb, case", [(v, c) for c in CASES for v in RUN_VERBS if c != "bad_number" or v in NUMBER_OPTION]
)
def test_every_verb_refuses_bad_input_with_one_line(verb, case, inputs, tmp_path, capsys, monkeypatch):
    argv = _verbs(inputs)[verb]
    before = {k: sha(p) for k, p in inputs.items() if p.is_file()}
    out = tmp_path / "run"
    if case == "out_is_file":
        out.write_text("a user's file\n")
        needle = "is a file"
    elif case == "out_under_file":
        out = inputs["a_file"] / "run"
        needle = "is a file"
    elif case == "results_is_folder":
        (out / "results.json").mkdir(parents=True)
        needle = "results.json there is a folder"
    elif case == "read_only":
        _read_only(out, monkeypatch)
        needle = "cannot write"
    elif case == "finished_run":
        out.mkdir()
        (out / "results.json").write_text("{}\n")
        needle = "--force"
    elif case == "unknown_option":
        argv = [*argv, "--no-such-option"]
        needle = "No such option: --no-such-option"
    else:
        argv = [*argv, NUMBER_OPTION[verb], "zero"]
        needle = "Invalid value for '" + NUMBER_OPTION[verb]
    code, stdout, err = run([*argv, "--out", str(out), "--quiet"], capsys)
    _check(code, stdout, err, needle)
    assert {k: sha(p) for k, p in inputs.items() if p.is_file()} == before  # inputs untouched
    if case == "out_is_file":
        assert out.read_text() == "a user's file\n"
    if case in ("results_is_folder", "finished_run", "read_only"):
        assert sorted(p.name for p in out.iterdir()) == (["results.json"] if case != "read_only" else [])
    if case in ("unknown_option", "bad_number"):
        assert not out.exists()  # refused before any work


@pytest.mark.parametrize("verb", sorted(FILE_VERBS))
def test_file_writing_verbs_refuse_unusable_paths(verb, inputs, capsys):
    argv = FILE_VERBS[verb](inputs)
    code, stdout, err = run([*argv, "--out", str(inputs["a_file"] / "x.json"), "--quiet", "--force"], capsys)
    _check(code, stdout, err, "a_file")
    code, stdout, err = run([*argv, "--out", str(inputs["a_file"]), "--quiet"], capsys)
    _check(code, stdout, err, "exists")


def test_a_grid_whose_points_all_fail_on_bad_input_exits_2(inputs, tmp_path, capsys):
    out = tmp_path / "exp"
    code, stdout, err = run(
        [
            "tabular",
            "experiment",
            "--dataset",
            str(inputs["dir"] / "missing.csv"),
            "--generator",
            "ijf",
            "--seeds",
            "0,1",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    _check(code, stdout, err, "2 of 2 grid points failed on bad input")
    assert "missing.csv" in err
    import json

    res = json.loads((out / "results.json").read_text())  # the summary names the failures
    assert res["n_failed"] == 2 and res["n_bad_input"] == 2 and res["status"] == 2


def test_library_errors_name_the_flags_of_the_command(inputs, tmp_path, capsys):
    # rote.tabular.audit raises "`threshold` must be ..."; the CLI names its flag
    code, stdout, err = run(
        [
            "tabular",
            "audit",
            "--train",
            str(inputs["train"]),
            "--synthetic",
            str(inputs["synthetic"]),
            "--threshold",
            "2",
            "--out",
            str(tmp_path / "r"),
        ],
        capsys,
    )
    _check(code, stdout, err, "--threshold must be in (0, 1]")
    assert not (tmp_path / "r").exists()  # a failed run leaves no folder behind


def test_quiet_prints_nothing_on_success(inputs, tmp_path, capsys):
    for argv in (
        ["tabular", "audit", "--train", str(inputs["train"]), "--synthetic", str(inputs["synthetic"])],
        ["fairness", "metrics", "--data", str(inputs["preds"]), "--group", "sex"],
        ["tabular", "train", "--train", str(inputs["train"]), "--generator", "ijf"],
        ["tabular", "augment", "--train", str(inputs["train"]), "--target", "label", "--no-ood"],
    ):
        out = tmp_path / argv[1]
        code, stdout, err = run([*argv, "--out", str(out), "--quiet"], capsys)
        assert (code, stdout, err) == (0, "", ""), argv
        assert (out / "results.json").is_file()


@pytest.mark.parametrize("verb", ["tabular train", "llm train-tiny"])
def test_a_corrupt_checkpoint_to_resume_from_is_refused(verb, inputs, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "epoch-000001.pt").write_bytes(b"not a checkpoint")
    (out / "checkpoints" / "step-00000001.pt").write_bytes(b"not a checkpoint")
    argv = {
        "tabular train": [
            "tabular",
            "train",
            "--train",
            str(inputs["train"]),
            "--generator",
            "tabddpm",
            "--epochs",
            "2",
            "--timesteps",
            "10",
        ],
        "llm train-tiny": [
            "llm",
            "train-tiny",
            "--corpus",
            str(inputs["texts"]),
            "--steps",
            "2",
            "--per-count",
            "1",
            "--canaries",
            "1",
        ],
    }[verb]
    code, stdout, err = run([*argv, "--out", str(out), "--quiet"], capsys)
    _check(code, stdout, err, ".pt")
    assert not (out / "results.json").exists()
    assert (out / "checkpoints" / "epoch-000001.pt").read_bytes() == b"not a checkpoint"  # never overwritten


def test_a_model_checkpoint_of_the_wrong_kind_is_refused(inputs, tmp_path, capsys):
    bogus = tmp_path / "model"
    bogus.mkdir()
    (bogus / "model.pt").write_bytes(b"garbage")
    code, stdout, err = run(
        [
            "llm",
            "extract",
            "--model",
            f"tiny:{bogus}",
            "--data",
            str(inputs["texts"]),
            "--out",
            str(tmp_path / "r"),
            "--quiet",
        ],
        capsys,
    )
    _check(code, stdout, err, "model.pt")
