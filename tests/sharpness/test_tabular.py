"""Sharpness of rote's TabDDPM: the adapter's score is the Gaussian part's -eps / sigma, its Hessian matches the
autograd loop, the trajectory sampler reproduces TabDDPM's own sampler, and detection runs on audit labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

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
