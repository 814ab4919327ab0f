"""Sharpness of rote's TabDDPM: the adapter's score is the Gaussian part's -eps / sigma, its Hessian matches the
autograd loop, the trajectory sampler reproduces TabDDPM's own sampler, and detection runs on audit labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rote.core.errors import ConfigError
from rote.data import infer_schema
from rote.sharpness.measure import hessian, hessian_loop
from rote.sharpness.tabular import TabDDPMScore, sample_with_trajectory, score_tabddpm
from rote.tabular.models import TabDDPM

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(),
            "hours": rng.normal(40, 5, n),
            "w": rng.exponential(1.0, n),
            "job": rng.choice(["a", "b", "c"], n),
            "label": rng.choice(["x", "y"], n),
        }
    )
    schema = infer_schema(table, target="label")
    model = TabDDPM(epochs=3, batch_size=128, d_layers=(32, 32), dim_t=16, num_timesteps=20, seed=0)
    model.fit(table, schema, progress=False)
    return model, table


def test_adapter_score_and_hessian(fitted):
    model, _ = fitted
    diff = model.diffusion_
    x_cat = torch.tensor([[0, 1], [2, 0], [1, 1]])
    adapter = TabDDPMScore(model, x_cat)
    x = torch.randn(3, diff.n_num)
    t = torch.tensor([19, 5, 1])
    idx = torch.arange(3)
    inp = torch.cat([x, diff.onehot_flat(x_cat)], 1)
    want = -model.denoiser_(inp, t)[:, : diff.n_num] / diff.sqrt_1m_abar[t][:, None]
    torch.testing.assert_close(adapter.score(x, t, idx), want)
    torch.testing.assert_close(hessian(adapter, x, t, idx), hessian_loop(adapter, x, t, idx), rtol=1e-4, atol=1e-5)


def test_trajectory_sampler_reproduces_tabddpm_sampling(fitted):
    model, _ = fitted
    gen = torch.Generator().manual_seed(5)
    x_num, x_cat = model.diffusion_.sample(model.denoiser_, 16, gen)
    y_num, y_cat, states = sample_with_trajectory(model, 16, seed=5, record=(19, 1))
    torch.testing.assert_close(x_num, y_num)
    torch.testing.assert_close(x_cat, y_cat)
    assert set(states) == {19, 1}
    torch.testing.assert_close(
        states[19][0], torch.randn((16, model.diffusion_.n_num), generator=torch.Generator().manual_seed(5))
    )


def test_score_tabddpm_labels_with_the_audit(fitted):
    model, table = fitted
    result, synthetic = score_tabddpm(model, table, n=50, seed=0)
    assert len(synthetic) == 50 and list(synthetic.columns) == list(table.columns)
    from rote.tabular.audit import audit

    rows = audit(table, synthetic).rows
    np.testing.assert_array_equal(result.scores["memorized"], rows["memorized"])
    assert {"hs_norm2_t19", "neg_trace_t1", "n_below_t1"} <= set(result.scores)
    assert result.spectra["eigenvalue"].notna().all() and result.spectra["rank"].max() == model.diffusion_.n_num - 1


@pytest.fixture(scope="module")
def conditional():
    """A class-conditional TabDDPM (label column "label") whose label embedding is scaled up so that the label
    changes which ReLUs are active: H(x | y) and H(x | no class) then differ (see `test_relu_denoiser...`)."""
    rng = np.random.default_rng(1)
    n = 200
    lab = rng.choice(["x", "y"], n)
    table = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round() + 15 * (lab == "y"),
            "hours": rng.normal(40, 5, n),
            "job": rng.choice(["a", "b", "c"], n),
            "label": lab,
        }
    )
    schema = infer_schema(table, target="label")
    model = TabDDPM(
        epochs=2, batch_size=128, d_layers=(32, 32), dim_t=16, num_timesteps=20, seed=0, cond_column="label"
    )
    model.fit(table, schema, progress=False)
    with torch.no_grad():
        model.denoiser_.label_emb.weight.mul_(20.0)
    return model, table


def _row_score(model, z, onehot, t, label):
    """s(z | label) of one row from the raw denoiser: -eps_num / sigma_t."""
    diff = model.diffusion_
    eps = model.denoiser_(torch.cat([z[None], onehot], 1), torch.tensor([t]), torch.tensor([label]))
    return -eps[0, : diff.n_num] / float(diff.sqrt_1m_abar[t])


def _brute_delta(model, x, x_cat, y, t):
    """||(H_c - H_u) s_delta||^2 and ||s_delta|| per row from explicit per-row autograd Jacobians of the raw
    denoiser (no adapter, no forward mode)."""
    from functools import partial

    null = model.n_cond_classes_
    out_hs, out_wen = [], []
    for b in range(x.shape[0]):
        onehot = model.diffusion_.onehot_flat(x_cat[b : b + 1])
        s_c = partial(_row_score, model, onehot=onehot, t=t, label=int(y[b]))
        s_u = partial(_row_score, model, onehot=onehot, t=t, label=null)
        hc = torch.autograd.functional.jacobian(s_c, x[b])
        hu = torch.autograd.functional.jacobian(s_u, x[b])
        sd = (s_c(x[b]) - s_u(x[b])).detach()
        out_hs.append(float(((hc - hu) @ sd).pow(2).sum()))
        out_wen.append(float(sd.norm()))
    return np.array(out_hs), np.array(out_wen)


def test_conditional_delta_statistics_match_brute_force_autograd(conditional):
    from rote.sharpness.measure import delta_statistics, sharpness_statistics

    model, _ = conditional
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, model.diffusion_.n_num, generator=g)
    x_cat = torch.tensor([[0], [1], [2], [0], [1], [2]])
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    adapter = TabDDPMScore(model, x_cat, y)
    idx = torch.arange(6)
    assert adapter.conditional and adapter.null_condition(idx).tolist() == [-1, -2, -3, -4, -5, -6]
    for t in (19, 5):
        want_hs, want_wen = _brute_delta(model, x, x_cat, y, t)
        got = delta_statistics(adapter, x, t, idx)
        np.testing.assert_allclose(got["wen_delta_norm"], want_wen, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got["delta_hs_norm2"], want_hs, rtol=1e-4, atol=1e-9)
        assert (want_hs > 0).any()  # not a trivially zero comparison
    stats, _ = sharpness_statistics(adapter, x, 5, idx, spectrum_method="full")
    assert {"delta_hs_norm2", "wen_delta_norm", "hs_norm2"} <= set(stats)
    # the conditional Hessian of the adapter is the per-row autograd Jacobian of s(x | y)
    torch.testing.assert_close(hessian(adapter, x, 5, idx), hessian_loop(adapter, x, 5, idx), rtol=1e-4, atol=1e-5)


def test_relu_denoiser_hessian_depends_on_the_label_only_through_active_units(conditional):
    """TabDDPM's denoiser is a ReLU MLP with the label added before the first ReLU, so d eps / d x =
    W_head D_k W_k ... D_1 W_proj: the label changes H only by switching units on or off. Where the label's
    embedding is switched off (scaled to zero) H_delta is exactly 0 and so is the paper's statistic; Wen's
    ||s_delta|| is not (the embedding still shifts the output through the biases of the active pattern)."""
    from rote.sharpness.measure import delta_statistics

    model, _ = conditional
    x = torch.randn(4, model.diffusion_.n_num, generator=torch.Generator().manual_seed(0))
    adapter = TabDDPMScore(model, torch.zeros(4, 1, dtype=torch.long), torch.tensor([0, 1, 0, 1]))
    saved = model.denoiser_.label_emb.weight.detach().clone()
    try:
        with torch.no_grad():  # rows 0 and 1 ("no class" is row 2) equal: s_delta = 0 exactly
            model.denoiser_.label_emb.weight[:2] = model.denoiser_.label_emb.weight[2]
        got = delta_statistics(adapter, x, 5, torch.arange(4))
        assert (got["delta_hs_norm2"] == 0).all() and (got["wen_delta_norm"] == 0).all()
        with torch.no_grad():  # a tiny label effect: the same active units, so H_delta = 0 while s_delta != 0
            model.denoiser_.label_emb.weight[:2] += 1e-4
        got = delta_statistics(adapter, x, 5, torch.arange(4))
        assert (got["delta_hs_norm2"] == 0).all() and (got["wen_delta_norm"] > 0).all()
    finally:
        with torch.no_grad():
            model.denoiser_.label_emb.weight.copy_(saved)


def test_conditional_sampler_and_scoring(conditional):
    model, table = conditional
    x_num, x_cat = model._sample_codes(16, torch.Generator().manual_seed(5))
    y_num, y_cat, states = sample_with_trajectory(model, 16, seed=5, record=(19,))
    torch.testing.assert_close(x_num, y_num)
    torch.testing.assert_close(x_cat, y_cat)
    assert states[19][1].shape == (16, 1)  # the diffused columns only; the label is the condition
    result, synthetic = score_tabddpm(model, table, n=40, seed=0)
    assert result.paper_statistic == "delta_hs_norm2_t19" and list(synthetic.columns) == list(table.columns)
    assert {"delta_hs_norm2_t19", "wen_delta_norm_t1"} <= set(result.scores)
    labels = model.codec_.encode(synthetic)[1][:, model.cond_index_].numpy()
    np.testing.assert_array_equal(result.scores["class"], labels)
    with pytest.raises(ConfigError, match="`y`"):
        TabDDPMScore(model, torch.zeros(2, 1, dtype=torch.long))


TINY_TABULAR = ["--rows", "200", "--epochs", "1", "--timesteps", "5", "--samples", "30", "--quiet"]


def test_tabular_verb_writes_the_contract_and_score_rereads_its_model(tmp_path, capsys):
    import json

    from rote_testing import run

    out = tmp_path / "tab"
    code, _, err = run(["sharpness", "tabular", "--out", str(out), *TINY_TABULAR], capsys)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["paper_statistic"] == "delta_hs_norm2_t4" and res["config"]["cond_column"] == "income"
    assert {"delta_hs_norm2_t4", "wen_delta_norm_t4", "neg_trace_t1"} <= set(res["detection"])
    assert len(pd.read_parquet(out / "scores.parquet")) == 30 and (out / "report.html").is_file()
    train = tmp_path / "train.csv"
    from rote.data import load_dataset

    load_dataset("adult", "train").sample(n=200, random_state=0).reset_index(drop=True).to_csv(train, index=False)
    code, _, err = run(
        ["sharpness", "score", "--model", str(out / "model.pt"), "--train", str(train), "--samples", "12"]
        + ["--out", str(tmp_path / "sc"), "--quiet"],
        capsys,
    )
    assert code == 0, err
    assert "delta_hs_norm2_t4" in pd.read_parquet(tmp_path / "sc" / "scores.parquet")
    code, _, err = run(["sharpness", "tabular", "--out", str(tmp_path / "b"), "--cond-column", "age"], capsys)
    assert code == 2 and "--cond-column" in err and err.count("\n") == 1
    code, _, err = run(["sharpness", "tabular", "--out", str(tmp_path / "c"), "--cond-dropout", "1.5"], capsys)
    assert code == 2 and "--cond-dropout" in err
