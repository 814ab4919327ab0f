"""Memorization probes: labels against brute force and against greedy generation, the batched logistic probes
against scikit-learn, cross-validation by text, the study and the suppression sweep end to end on a tiny GPT, the
CLI contracts and its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rote_testing import run

from rote.core.errors import ConfigError, DataError
from rote.core.privacy import min_k_score, roc_auc
from rote.llm.probes import (
    LogisticProbes,
    MLPProbe,
    ProbeSet,
    cross_validate,
    extraction_rate,
    group_folds,
    match_on_loss,
    memorized_positions,
    perplexity,
    probe_study,
    repetition_positions,
    reproduced_windows,
    suppress,
    window_min_k,
)
from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model, load_model, train_tiny_gpt

torch.set_num_threads(1)

# ---------------------------------------------------------------------------------------------- labels


def _brute_memorized(top1, m):
    n = len(top1)
    return np.array([any(s <= p < s + m and all(top1[s : s + m]) for s in range(0, n - m + 1)) for p in range(n)])


def test_memorized_positions_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top1 = rng.random(int(rng.integers(0, 30))) < rng.random()
        for m in (1, 2, 3, 5):
            assert memorized_positions(top1, m).tolist() == _brute_memorized(top1, m).tolist()
    assert memorized_positions([True, True, False, True, True, True, False], 3).tolist() == [0, 0, 0, 1, 1, 1, 0]
    with pytest.raises(ConfigError, match="`min_run`"):
        memorized_positions([True], 0)


def test_a_memorized_run_is_what_greedy_decoding_reproduces():
    model = build_model(TinyGPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=32), seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(6.0)
    b = TinyGPTBackend(model)
    rng = np.random.default_rng(1)
    prompt = [int(t) for t in rng.integers(0, 256, 5)]
    seq = prompt + b.generate([prompt], 20)[0] + [int(t) for t in rng.integers(0, 256, 8)]
    logits = model(torch.tensor([seq]))[0].detach()
    top1 = np.append((logits[:-1].argmax(-1) == torch.tensor(seq[1:])).numpy(), False)
    mem = memorized_positions(top1, 6)
    assert mem[4:24].all()  # the generated span is a run of correct greedy predictions
    p = 0
    while p < len(mem):  # every run: greedy decoding from the tokens up to its start reproduces it
        if mem[p]:
            q = p
            while q < len(mem) and mem[q]:
                q += 1
            assert b.generate([seq[: p + 1]], q - p)[0] == seq[p + 1 : q + 1]
            p = q
        p += 1


def test_repetition_positions_against_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(100):
        toks = rng.integers(0, 3, int(rng.integers(0, 25))).tolist()
        for n in (1, 2, 3):
            want = [
                p + 1 < len(toks)
                and p + 2 - n >= 0
                and any(toks[s : s + n] == toks[p + 2 - n : p + 2] for s in range(0, p + 2 - n))
                for p in range(len(toks))
            ]
            assert repetition_positions(toks, n).tolist() == want
    assert repetition_positions([1, 2, 3, 1, 2, 3], 2).tolist() == [0, 0, 0, 1, 1, 0]


def test_match_on_loss_balances_each_bin():
    rng = np.random.default_rng(3)
    pos, neg = rng.exponential(0.5, 300), rng.exponential(2.0, 500)
    ip, ineg = match_on_loss(pos, neg, bins=5, seed=0)
    assert len(ip) == len(ineg) > 50 and len(set(ip)) == len(ip)
    edges = np.unique(np.quantile(np.r_[pos, neg], np.linspace(0, 1, 6)))
    hp = np.histogram(pos[ip], edges)[0]
    hn = np.histogram(neg[ineg], edges)[0]
    assert hp.tolist() == hn.tolist()
    assert abs(roc_auc(-np.r_[pos[ip], neg[ineg]], np.r_[np.ones(len(ip)), np.zeros(len(ineg))]) - 0.5) < 0.1
    again = match_on_loss(pos, neg, bins=5, seed=0)
    assert again[0].tolist() == ip.tolist() and again[1].tolist() == ineg.tolist()


def test_window_min_k_against_direct_computation():
    rng = np.random.default_rng(4)
    lp = -rng.exponential(1.0, 40)
    seq = np.repeat([0, 1, 2], [10, 25, 5])
    got = window_min_k(lp, seq, window=4, k=0.5)
    starts = {0: 0, 1: 10, 2: 35}
    for i in range(40):
        lo = max(starts[seq[i]], i - 3)
        assert got[i] == pytest.approx(min_k_score(lp[lo : i + 1], 0.5))


# ---------------------------------------------------------------------------------------------- probes


def test_logistic_probes_match_scikit_learn_for_every_problem():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 300, 6)) * np.array([1.0, 5.0, 0.1, 1, 1, 1])
    y = (x[0] @ np.array([1.0, 0.3, -4, 0, 0, 0]) + rng.normal(size=300) > 0).astype(float)
    x[1, :, 0] += 1.5 * y  # problem 1: signal along feature 0; problem 2: pure noise
    for C, direct_max in ((0.05, 384), (1.0, 1)):  # direct_max=1 forces Newton-CG
        probes = LogisticProbes(C, direct_max=direct_max).fit(x, y)
        for p in range(3):
            z = StandardScaler().fit_transform(x[p])
            sk = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(z, y)
            np.testing.assert_allclose(probes.coef_[p], sk.coef_[0], rtol=1e-4, atol=1e-6)
            assert probes.intercept_[p] == pytest.approx(sk.intercept_[0], rel=1e-4, abs=1e-6)
            np.testing.assert_allclose(probes.decision_function(x)[p], sk.decision_function(z), atol=1e-5)
    np.testing.assert_allclose(probes.direction(), probes.coef_ / x.std(axis=1), rtol=1e-6)


def test_logistic_probe_hand_case_one_feature():
    # one standardized feature, labels y = [0, 1], C = 1: by symmetry b = 0 and w solves w = 2 sigmoid(-w)
    x = np.array([[[-1.0], [1.0]]])
    probes = LogisticProbes(1.0).fit(x, np.array([0.0, 1.0]))
    w = probes.coef_[0, 0]
    assert w == pytest.approx(2 / (1 + np.exp(w)), abs=1e-9) and w == pytest.approx(0.67483, abs=1e-5)
    assert probes.intercept_[0] == pytest.approx(0.0, abs=1e-9)


def test_probe_errors_and_mlp_option():
    with pytest.raises(DataError, match="one class"):
        LogisticProbes().fit(np.zeros((1, 4, 2)), np.zeros(4))
    with pytest.raises(ConfigError, match="`C` must be > 0"):
        LogisticProbes(0.0).fit(np.zeros((1, 4, 2)), np.array([0, 1, 0, 1.0]))
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1, 120, 3))
    y = (x[0, :, 0] * x[0, :, 1] > 0).astype(float)  # XOR-like: no linear probe, an MLP can
    mlp = MLPProbe(hidden=16, epochs=150, lr=3e-2, seed=0).fit(x, y)
    assert roc_auc(mlp.decision_function(x)[0], y) > 0.9
    assert roc_auc(LogisticProbes().fit(x, y).decision_function(x)[0], y) < 0.7
    again = MLPProbe(hidden=16, epochs=150, lr=3e-2, seed=0).fit(x, y)
    np.testing.assert_array_equal(again.decision_function(x), mlp.decision_function(x))


def test_group_folds_keep_texts_together_and_cross_validate_finds_the_signal():
    groups = np.repeat(np.arange(12), 10)
    fold = group_folds(groups, 4, seed=0)
    assert all(len(set(fold[groups == g])) == 1 for g in range(12))
    assert np.bincount(fold).tolist() == [30, 30, 30, 30]
    with pytest.raises(DataError, match="fewer than `folds`"):
        group_folds(groups, 13)
    strata = groups < 3  # three texts of one kind: each of three folds gets one of them
    fold = group_folds(groups, 3, seed=1, strata=strata)
    assert sorted(fold[strata][::10].tolist()) == [0, 1, 2] and np.bincount(fold).tolist() == [40, 40, 40]
    rng = np.random.default_rng(7)
    y = np.repeat(np.arange(12) % 2 == 0, 10)
    x = rng.normal(size=(2, 120, 5))
    x[0, :, 2] += 2.0 * y  # signal only in problem 0
    _, metrics = cross_validate(x, y, groups, folds=4, seed=0)
    assert metrics.loc[0, "auc"] > 0.85 and metrics.loc[0, "acc"] > 0.75
    assert (metrics["auc_low"] <= metrics["auc"]).all() and (metrics["auc"] <= metrics["auc_high"]).all()
    assert abs(metrics.loc[1, "auc"] - 0.5) < 0.2


# ---------------------------------------------------------------------------------------------- end to end

NAMES = ["Amara", "Bastian", "Caelan", "Dagny", "Eero", "Goran", "Hiroko", "Ilse", "Jovan", "Kaisu", "Nuno", "Piet"]


def _secret(i: int) -> str:
    rng = np.random.default_rng(100 + i)
    return f"the code of {NAMES[i]} is {''.join(map(str, rng.integers(0, 10, 8)))} and the word is {NAMES[-1 - i]}."


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny GPT that saw secrets 0-5 thirty times each (plus filler), never secrets 6-11."""
    out = tmp_path_factory.mktemp("probe-tiny")
    members = [_secret(i) for i in range(6)]
    filler = [f"and the light was good on day {i} of the week." for i in range(40)]
    docs = filler + members * 30
    order = np.random.default_rng(0).permutation(len(docs))
    cfg = TinyGPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=32)
    train_tiny_gpt([docs[i] for i in order], cfg, steps=250, batch_size=16, lr=1e-2, seed=0, out_dir=out, warmup=10)
    backend = TinyGPTBackend(load_model(out / "model.pt"), name="probe-tiny")
    return backend, members, [_secret(i) for i in range(6, 12)]


@pytest.fixture(scope="module")
def study(trained):
    backend, members, controls = trained
    return probe_study(backend, members, controls, min_run=8, folds=3, sites=("resid", "mlp"), seed=0)


def test_probe_study_contract_and_baselines(trained, study):
    backend, members, controls = trained
    result, probes = study
    assert [(r["layer"], r["site"]) for r in result.layers] == [(0, "resid"), (0, "mlp"), (1, "resid"), (1, "mlp")]
    for r in result.layers:
        assert 0 <= r["auc"] <= 1 and 0 <= r["acc"] <= 1 and r["auc_low"] <= r["auc_high"]
    assert result.n_positive == result.n_negative > 20  # matched on loss: equal counts
    tok = result.tokens
    # the baselines are recomputable from the token table
    assert result.baselines["loss"] == pytest.approx(roc_auc(tok["logprob"], tok["label"]))
    assert result.baselines["min_k"] == pytest.approx(roc_auc(tok["min_k"], tok["label"]))
    assert set(tok.loc[tok["label"], "text"]) <= set(range(6)) and set(tok.loc[~tok["label"], "text"]) <= set(
        range(6, 12)
    )
    assert probes.model_fingerprint == backend.weights_fingerprint()
    assert probes.best == (result.best["layer"], result.best["site"])
    assert probes.direction(1, "resid").shape == (32,)


def test_probe_set_round_trip_and_refusal_on_another_model(tmp_path, trained, study):
    _, probes = study
    probes.save(tmp_path)
    again = ProbeSet.load(tmp_path)
    assert again.model_fingerprint == probes.model_fingerprint and again.best == probes.best
    for key, v in probes.directions.items():
        np.testing.assert_array_equal(again.directions[key], v)
        np.testing.assert_array_equal(again.mean_diffs[key], probes.mean_diffs[key])
    other = TinyGPTBackend(build_model(TinyGPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=32), seed=9))
    with pytest.raises(ConfigError, match="was trained on model probe-tiny .* train a probe on this model"):
        suppress(other, again, ["x" * 80], ["held out"])
    with pytest.raises(ConfigError, match="holds no probe"):
        ProbeSet.load(tmp_path / "nothing")


def test_suppress_curve_against_independent_extraction(trained, study):
    backend, members, _ = trained
    _, probes = study
    held = ["and the light was good on day 99 of the month.", "the evening and the morning were the first day."]
    res = suppress(backend, probes, members, held, layers=[1], site="resid", alphas=(0, 1, 8), prefix=12, suffix=12)
    assert [(r["layer"], r["alpha"]) for r in res.curve] == [(1, 0.0), (1, 1.0), (1, 8.0)]
    ids = backend.encode(members)
    # alpha 0 is the unmodified model: count exact suffix reproductions by hand
    hits = [backend.generate([x[:12]], 12)[0] == x[12:24] for x in ids]
    assert res.curve[0]["extraction_rate"] == pytest.approx(np.mean(hits))
    nll = [-s.logprobs for s in backend.score(backend.encode(held))]
    assert res.curve[0]["heldout_ppl"] == pytest.approx(float(np.exp(np.concatenate(nll).mean())))
    from rote.core.hooks import project_out

    with backend.intervene({(1, "resid"): project_out(probes.direction(1, "resid"), alpha=8.0)}):
        assert res.curve[2]["extraction_rate"] == pytest.approx(extraction_rate(backend, ids, 12, 12))
        assert res.curve[2]["heldout_ppl"] == pytest.approx(perplexity(backend, backend.encode(held)))


def test_reproduced_windows_are_what_generate_reproduces(trained, study):
    backend, members, controls = trained
    texts = members + controls  # only the memorized half holds windows
    ids = backend.encode(texts)
    wins = reproduced_windows(backend, ids, 8, 8)
    assert wins
    # every window is a piece of one text, and greedy decoding from its 8-token prefix reproduces its suffix
    assert all(any(w == x[i : i + 16] for x in ids for i in range(len(x) - 15)) for w in wins)
    assert [g for g in backend.generate([w[:8] for w in wins], 8)] == [w[8:] for w in wins]
    # brute force over every window position: the windows whose suffix generate reproduces from the window's own
    # prefix; the function's are among them (it also asks for a hit given the whole text before)
    found = {tuple(w) for w in wins}
    good = set()
    for x in ids:
        cand = [x[p + 1 - 8 : p + 9] for p in range(7, len(x) - 8)]
        good |= {tuple(c) for c, g in zip(cand, backend.generate([c[:8] for c in cand], 8)) if g == c[8:]}
    assert found <= good
    res = suppress(
        backend, study[1], texts, ["held out text"], layers=[1], alphas=(0,), prefix=8, suffix=8, windows=True
    )
    assert res.n_memorized_texts == len(wins) and res.baseline["extraction_rate"] == 1.0
    with pytest.raises(DataError, match="reproduces no run of 40 tokens"):  # 40 tokens span unseen random digits
        suppress(backend, study[1], controls, ["held out"], layers=[1], alphas=(0,), prefix=8, suffix=40, windows=True)


def test_capture_chunks_are_byte_for_byte_np_save(tmp_path, trained):
    backend, members, _ = trained
    ids = backend.encode(members)
    store = backend.capture_hidden_states(ids, tmp_path / "a", layers=[1], sites=["resid"], chunk_rows=50)
    name = store.names[0]
    hs = np.concatenate(backend.hidden_states(ids, layers=[1], sites=["resid"])[(1, "resid")])
    np.testing.assert_array_equal(store.load(name), hs)  # the captured values are the plain forward's
    info = store.index["modules"][name]
    start = 0
    for c in info["chunks"]:
        import io

        bio = io.BytesIO()
        np.save(bio, hs[start : start + c["rows"]], allow_pickle=False)
        assert (tmp_path / "a" / info["dir"] / c["file"]).read_bytes() == bio.getvalue()
        start += c["rows"]
    assert start == len(hs) and len(info["chunks"]) == -(-len(hs) // 50)


def test_study_bad_inputs(trained):
    backend, members, controls = trained
    with pytest.raises(ConfigError, match=r"valid layers: 0\.\.1"):
        probe_study(backend, members, controls, layers=[5])
    with pytest.raises(ConfigError, match="valid sites: resid, attn, mlp"):
        probe_study(backend, members, controls, sites=["residual"])
    with pytest.raises(DataError, match=r"`positives`: 1 text\(s\) .* too short to label"):
        probe_study(backend, members + ["short"], controls, min_run=8)
    with pytest.raises(DataError, match="no token of the positive texts is memorized"):
        probe_study(backend, controls, members, min_run=40, folds=2)


def test_repetition_task_runs(trained):
    backend, members, controls = trained
    texts = [c + " " + c for c in controls]
    result, _ = probe_study(backend, texts, [], task="repetition", ngram=6, folds=3, sites=("resid",), layers=[1])
    assert result.task == "repetition" and result.n_positive > 0 and len(result.layers) == 1


def test_float16_capture_that_would_overflow_is_redone_in_float32(trained, study, monkeypatch):
    import rote.llm.backends.torch_lm as torch_lm

    backend, members, controls = trained
    kw = {"min_run": 8, "folds": 3, "sites": ("resid", "mlp"), "seed": 0}
    assert study[0].settings["capture_dtype"] == "float16"  # the default
    f32, _ = probe_study(backend, members, controls, capture_dtype="float32", **kw)
    assert f32.settings["capture_dtype"] == "float32"
    assert f32.tokens[["text", "pos", "label"]].equals(study[0].tokens[["text", "pos", "label"]])  # same tokens
    for a, b in zip(f32.layers, study[0].layers):  # float16 rows move the probes by rounding only
        assert abs(a["auc"] - b["auc"]) < 5e-3 and abs(a["acc"] - b["acc"]) < 5e-3
    monkeypatch.setattr(torch_lm, "FLOAT16_MAX", 0.5)  # every activation "overflows"
    with pytest.warns(UserWarning, match="exceeds float16's largest value.*capturing again in float32"):
        result, _ = probe_study(backend, members, controls, **kw)
    assert result.settings["capture_dtype"] == "float32"
    assert result.layers == f32.layers  # exactly the float32 study
    with pytest.raises(ConfigError, match="`capture_dtype` 'int8'"):
        probe_study(backend, members, controls, capture_dtype="int8")


# ---------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, trained):
    """The trained tiny GPT as a train-tiny style folder with a canaries.jsonl."""
    from rote.data.text import write_texts
    from rote.llm.tinygpt import save_model

    backend, members, controls = trained
    folder = tmp_path_factory.mktemp("tiny-folder")
    save_model(backend.model, folder / "model.pt")
    write_texts(folder / "canaries.jsonl", members + controls, extra={"repeats": [30] * 6 + [0] * 6})
    return folder


def test_cli_probe_then_suppress(tmp_path, tiny_folder, capsys):
    model = f"tiny:{tiny_folder}"
    argv = ["llm", "probe", "--model", model, "--out", str(tmp_path / "p"), "--min-run", "8", "--folds", "3"]
    code, out, err = run(argv + ["--sites", "resid", "--quiet"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "p" / "results.json").read_text())
    assert {"layer", "site", "auc", "acc"} <= set(res["layers"][0]) and set(res["baselines"]) == {"loss", "min_k"}
    assert (tmp_path / "p" / "report.html").is_file() and (tmp_path / "p" / "per_layer.png").is_file()
    argv = ["llm", "suppress", "--model", model, "--probe", str(tmp_path / "p"), "--out", str(tmp_path / "s")]
    code, out, err = run(argv + ["--alphas", "0,2", "--prefix", "12", "--suffix", "12", "--quiet"], capsys)
    assert code == 0, err
    curve = json.loads((tmp_path / "s" / "results.json").read_text())["curve"]
    assert {(r["layer"], r["alpha"]) for r in curve} == {(0, 0.0), (0, 2.0), (1, 0.0), (1, 2.0)}
    assert all({"extraction_rate", "heldout_ppl"} <= set(r) for r in curve)


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path, tiny_folder, capsys):
    model = f"tiny:{tiny_folder}"
    code, out, err = run(["llm", "probe", "--model", model, "--out", str(tmp_path / "a"), "--layers", "7"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--layers" in err and "valid layers: 0..1" in err
    assert not (tmp_path / "a").exists()
    code, _, err = run(["llm", "probe", "--model", model, "--out", str(tmp_path / "b"), "--sites", "ffn"], capsys)
    assert code == 2 and "valid sites: resid, attn, mlp" in err
    code, _, err = run(
        ["llm", "probe", "--model", model, "--out", str(tmp_path / "c"), "--capture-dtype", "int8"], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "--capture-dtype 'int8': use float16 or float32" in err
    assert not (tmp_path / "c").exists()
    # a probe trained on another model is refused
    other = tmp_path / "other"
    from rote.llm.tinygpt import save_model

    save_model(build_model(TinyGPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=32), seed=5), other / "model.pt")
    code, _, err = run(
        [
            "llm",
            "probe",
            "--model",
            model,
            "--out",
            str(tmp_path / "p"),
            "--min-run",
            "8",
            "--folds",
            "3",
            "--sites",
            "resid",
            "--layers",
            "1",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    code, _, err = run(
        ["llm", "suppress", "--model", f"tiny:{other}", "--probe", str(tmp_path / "p"), "--out", str(tmp_path / "s")],
        capsys,
    )
    assert code == 2 and err.count("\n") == 1 and "was trained on model" in err
    code, _, err = run(
        ["llm", "suppress", "--model", model, "--probe", str(tmp_path / "nope"), "--out", str(tmp_path / "s2")], capsys
    )
    assert code == 2 and "--probe" in err and "holds no probe" in err


@pytest.mark.gpu
def test_cli_probe_and_suppress_on_cuda_match_cpu(tmp_path, tiny_folder, capsys):
    model = f"tiny:{tiny_folder}"
    common = ["--min-run", "8", "--folds", "3", "--sites", "resid", "--quiet"]
    for dev in ("cpu", "cuda"):
        code, _, err = run(
            ["llm", "probe", "--model", model, "--out", str(tmp_path / f"p-{dev}"), "--device", dev] + common, capsys
        )
        assert code == 0, err
        code, _, err = run(
            [
                "llm",
                "suppress",
                "--model",
                model,
                "--probe",
                str(tmp_path / f"p-{dev}"),
                "--out",
                str(tmp_path / f"s-{dev}"),
                "--device",
                dev,
                "--prefix",
                "12",
                "--suffix",
                "12",
                "--alphas",
                "0,1",
                "--quiet",
            ],
            capsys,
        )
        assert code == 0, err
    cpu, gpu = (json.loads((tmp_path / f"p-{d}" / "results.json").read_text()) for d in ("cpu", "cuda"))
    assert cpu["baselines"]["loss"] == pytest.approx(gpu["baselines"]["loss"], abs=0.02)
    assert [r["auc"] for r in cpu["layers"]] == pytest.approx([r["auc"] for r in gpu["layers"]], abs=0.05)
    c_cpu, c_gpu = (json.loads((tmp_path / f"s-{d}" / "results.json").read_text())["curve"] for d in ("cpu", "cuda"))
    assert [r["extraction_rate"] for r in c_cpu] == pytest.approx([r["extraction_rate"] for r in c_gpu], abs=0.2)
