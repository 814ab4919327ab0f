"""TabDDPM (`rote.tabular.models.tabddpm`): the diffusion math against independent computations, training on
tables with known distributions, determinism, checkpoints and resume, callbacks, and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from rote.core.errors import BackendError, ConfigError, DataError
from rote.data import TableSchema, dataset_schema, load_dataset
from rote.tabular import audit
from rote.tabular.models import EarlyStopping, MemorizationHook, MixedDiffusion, TabDDPM
from rote.tabular.models.tabddpm import MLPDenoiser, cosine_betas
from rote_testing import kill_when_ready

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = dict(d_layers=(32, 32), dim_t=16, num_timesteps=20, batch_size=64)


def toy_table(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, TableSchema]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x": rng.normal(3.0, 2.0, n),
            "k": rng.integers(0, 100, n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5]),
            "y": rng.choice([0, 1], n),
        }
    )
    return df, TableSchema(("x", "k"), ("c", "y"), target="y")


def params_of(model: TabDDPM) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.denoiser_.state_dict().items()}


# ---------------------------------------------------------------------------------------------- schedule / math


def test_cosine_schedule_closed_form():
    T, s = 1000, 0.008
    betas = cosine_betas(T)
    f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
    abar = np.cumprod(1 - betas)
    unclipped = betas < 0.999
    assert unclipped[:-1].all()  # only the last steps can reach the clip
    np.testing.assert_allclose(abar[unclipped], (f[1:] / f[0])[unclipped], rtol=1e-10)
    assert np.all(np.diff(abar) < 0) and abar[-1] < 1e-4


def test_gaussian_forward_marginals_match_closed_form():
    d = MixedDiffusion(1, [], T=100)
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0 = torch.full((n, 1), 1.5)
    abar = np.cumprod(1 - cosine_betas(100))
    for i in (0, 30, 99):
        t = torch.full((n,), i, dtype=torch.long)
        xt = d.q_sample_num(x0, t, torch.randn((n, 1), generator=g)).numpy()[:, 0]
        assert xt.mean() == pytest.approx(np.sqrt(abar[i]) * 1.5, abs=0.01)
        assert xt.var() == pytest.approx(1 - abar[i], abs=0.01)


def _transition(beta: float, k: int) -> np.ndarray:
    """Q[i, j] = q(x_t = j | x_{t-1} = i) of one multinomial step, built by hand."""
    return (1 - beta) * np.eye(k) + beta / k * np.ones((k, k))


def test_multinomial_forward_marginals_match_matrix_products():
    sizes = [3, 2, 5]
    T = 30
    d = MixedDiffusion(0, sizes, T=T)
    betas = cosine_betas(T)
    x0 = torch.tensor([[2, 0, 4]])
    for i in (0, 7, 29):
        got = d.q_pred(d.log_onehot(x0), torch.tensor([i])).exp()[0]
        for c, k in enumerate(sizes):
            prod = np.linalg.multi_dot([np.eye(k)] + [_transition(b, k) for b in betas[: i + 1]])
            np.testing.assert_allclose(got[c, :k].numpy(), prod[x0[0, c].item()], atol=1e-5)
            assert torch.all(got[c, k:] == 0)  # padding never gets mass
    # sampling from it reproduces those probabilities
    g = torch.Generator().manual_seed(1)
    n = 100_000
    logp = d.q_pred(d.log_onehot(x0.expand(n, -1)), torch.full((n,), 7))
    codes = d.sample_categorical(logp, g)
    probs = logp[0].exp()
    for c, k in enumerate(sizes):
        freq = np.bincount(codes[:, c].numpy(), minlength=k) / n
        np.testing.assert_allclose(freq, probs[c, :k].numpy(), atol=0.006)


def test_multinomial_posterior_equals_brute_force_bayes():
    sizes = [3, 2]
    T = 12
    d = MixedDiffusion(0, sizes, T=T)
    betas = cosine_betas(T)
    for c, k in enumerate(sizes):
        for x0, xt, i in itertools.product(range(k), range(k), (0, 1, 5, 11)):
            # q(x_{t-1} = j | x_t, x_0) ∝ q(x_t | x_{t-1} = j) q(x_{t-1} = j | x_0), every term a matrix entry
            prev = (
                np.eye(k)[x0]
                if i == 0
                else np.linalg.multi_dot([np.eye(k)[x0][None]] + [_transition(b, k) for b in betas[:i]] + [np.eye(k)])[
                    0
                ]
            )
            lik = _transition(betas[i], k)[:, xt]
            want = prev * lik / np.sum(prev * lik)
            codes0 = torch.zeros((1, 2), dtype=torch.long)
            codes0[0, c] = x0
            codest = torch.zeros((1, 2), dtype=torch.long)
            codest[0, c] = xt
            got = d.q_posterior(d.log_onehot(codes0), d.log_onehot(codest), torch.tensor([i])).exp()[0, c, :k]
            np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_probability_space_loss_equals_the_log_space_route():
    """The training loss's KL / NLL per row against q_posterior and kl in log space, and the constant prior KL
    against kl_prior, on random logits and draws (every timestep, padded columns)."""
    sizes = [4, 1, 3]
    T = 16
    d = MixedDiffusion(0, sizes, T=T)
    g = torch.Generator().manual_seed(0)
    B = 64
    logits = torch.randn((B, sum(sizes)), generator=g) * 2
    x0 = torch.stack([torch.randint(0, k, (B,), generator=g) for k in sizes], 1)
    t = torch.arange(B) % T
    xt = d.q_sample_cat(x0, t, g)
    got = d.multinomial_loss_rows(logits, x0, xt, t)
    log_x0, log_xt = d.log_onehot(x0), d.log_onehot(xt)
    log_model = d.q_posterior(d.pad_logits(logits), log_xt, t)
    kl = d.kl(d.q_posterior(log_x0, log_xt, t), log_model)
    nll = -(log_x0.exp() * log_model).sum(dim=(1, 2))
    torch.testing.assert_close(got, torch.where(t == 0, nll, kl), atol=2e-4, rtol=1e-4)
    assert d.kl_prior_constant() == pytest.approx(d.kl_prior(log_x0).mean().item(), abs=1e-6)


def test_noisy_category_draws_follow_q_pred():
    d = MixedDiffusion(0, [3, 5], T=30)
    n = 100_000
    x0 = torch.tensor([[1, 4]]).expand(n, -1)
    for i in (0, 12, 29):
        codes = d.q_sample_cat(x0, torch.full((n,), i), torch.Generator().manual_seed(i))
        probs = d.q_pred(d.log_onehot(x0[:1]), torch.tensor([i])).exp()[0]
        for c, k in enumerate([3, 5]):
            np.testing.assert_allclose(
                np.bincount(codes[:, c].numpy(), minlength=k) / n, probs[c, :k].numpy(), atol=0.005
            )


def test_sampling_step_posterior_matches_log_space_posterior():
    d = MixedDiffusion(0, [4, 2, 3], T=50)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn((6, 9), generator=g)
    log_p0 = d.pad_logits(logits)
    xt = torch.tensor([[0, 1, 2], [3, 0, 0], [1, 1, 1], [2, 0, 2], [0, 0, 0], [3, 1, 1]])
    for i in (0, 1, 20, 49):
        a = d.posterior_probs_step(d.pad_logits(logits, log=False), xt, i)
        a = a / a.sum(-1, keepdim=True)
        b = d.q_posterior(log_p0, d.log_onehot(xt), torch.full((6,), i)).exp()
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_inverse_cdf_sampler_frequencies():
    d = MixedDiffusion(0, [3, 2], T=10)
    w = torch.tensor([[[2.0, 3.0, 5.0], [1.0, 3.0, 0.0]]]).expand(100_000, -1, -1)
    codes = d.sample_from_probs(w, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(np.bincount(codes[:, 0].numpy()) / 1e5, [0.2, 0.3, 0.5], atol=0.005)
    np.testing.assert_allclose(np.bincount(codes[:, 1].numpy()) / 1e5, [0.25, 0.75], atol=0.005)


def test_gaussian_reverse_step_mean_is_the_posterior_mean():
    T = 40
    d = MixedDiffusion(1, [], T=T)
    betas = cosine_betas(T)
    abar = np.cumprod(1 - betas)
    x0, i = 0.7, 10
    eps = 0.3
    xt = np.sqrt(abar[i]) * x0 + np.sqrt(1 - abar[i]) * eps
    want = (np.sqrt(abar[i - 1]) * betas[i] * x0 + np.sqrt(1 - betas[i]) * (1 - abar[i - 1]) * xt) / (1 - abar[i])
    n = 200_000
    g = torch.Generator().manual_seed(0)
    out = d.p_sample_num(torch.full((n, 1), xt, dtype=torch.float32), torch.full((n, 1), eps), torch.full((n,), i), g)
    assert out.mean().item() == pytest.approx(want, abs=2e-3)
    assert out.var().item() == pytest.approx(betas[i], rel=0.02)


def test_multinomial_loss_is_lowest_for_the_optimal_predictor():
    """One categorical column with prior pi: the true reverse step is q(x_{t-1} | x_t) ∝ q(x_{t-1}) q(x_t | x_{t-1})
    with q(x_{t-1}) = abar pi + (1 - abar)/K, which is exactly the posterior with x_0 replaced by pi. So the
    constant prediction pi minimizes the expected KL, below a uniform prediction, below the Bayes posterior
    p(x_0 | x_t) (which would count q(x_t | .) twice), below an inverted one."""
    d = MixedDiffusion(0, [3], T=10, cat_input="onehot")  # the Bayes predictor below reads a 0/1 input
    prior = torch.tensor([0.2, 0.3, 0.5])

    def bayes(inp, t, invert=False):
        abar = d.log_abar[t].exp()[:, None]
        post = prior * (abar * inp + (1 - abar) / 3)
        post = post / post.sum(1, keepdim=True)
        return torch.log((1 - post) / 2 if invert else post)

    x = torch.multinomial(prior, 50_000, replacement=True, generator=torch.Generator().manual_seed(0))[:, None]
    predictors = {
        "optimal": lambda inp, t: prior.log().expand(len(t), 3),
        "uniform": lambda inp, t: torch.zeros(len(t), 3),
        "bayes": bayes,
        "inverted": lambda inp, t: bayes(inp, t, invert=True),
    }
    losses = {
        name: d.loss(f, torch.zeros(len(x), 0), x, torch.Generator().manual_seed(1))[0].item()
        for name, f in predictors.items()
    }
    assert losses["optimal"] < losses["uniform"] < losses["bayes"] < losses["inverted"], losses


# ---------------------------------------------------------------------------------------------- training


def test_learns_a_simple_table():
    """One categorical column with proportions 0.2/0.3/0.5 and one N(3, 2) column. With the plain one-hot input
    25 epochs suffice; the reference's log one-hot input (inputs of -69) learns far slower (measured: category
    shares 0.01/0.49/0.50 after 25 epochs), which a unit test cannot afford."""
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame({"x": rng.normal(3.0, 2.0, n), "c": rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5])})
    schema = TableSchema(("x",), ("c",))
    model = TabDDPM(epochs=25, batch_size=256, d_layers=(128, 128), seed=0, cat_input="onehot")
    model.fit(df, schema, progress=False)
    s = model.sample(4000, seed=1)
    freq = s["c"].value_counts(normalize=True).reindex(["a", "b", "c"], fill_value=0.0).to_numpy()
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.04)
    assert s["x"].mean() == pytest.approx(3.0, abs=0.25)
    assert s["x"].std() == pytest.approx(2.0, rel=0.15)
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]


def test_same_seed_same_model_and_samples():
    df, schema = toy_table()
    a = TabDDPM(epochs=2, seed=3, **TINY).fit(df, schema, progress=False)
    b = TabDDPM(epochs=2, seed=3, **TINY).fit(df, schema, progress=False)
    c = TabDDPM(epochs=2, seed=4, **TINY).fit(df, schema, progress=False)
    for k, v in params_of(a).items():
        assert torch.equal(v, params_of(b)[k])
    assert any(not torch.equal(v, params_of(c)[k]) for k, v in params_of(a).items())
    pd.testing.assert_frame_equal(a.sample(200, seed=5), b.sample(200, seed=5))
    pd.testing.assert_frame_equal(a.sample(200, seed=5), a.sample(200, seed=5))
    assert not a.sample(200, seed=5).equals(a.sample(200, seed=6))


def test_sample_keeps_columns_order_and_dtypes_of_adult():
    adult = load_dataset("adult").iloc[:400]
    model = TabDDPM(epochs=1, **TINY).fit(adult, dataset_schema("adult"), progress=False)
    s = model.sample(50)
    assert list(s.columns) == list(adult.columns)
    assert s.dtypes.to_dict() == adult.dtypes.to_dict()
    for c in dataset_schema("adult").categorical:
        assert set(s[c]) <= set(adult[c])
    for c in dataset_schema("adult").numeric:
        assert s[c].between(adult[c].min(), adult[c].max()).all()


def test_fit_does_not_modify_input():
    df, schema = toy_table()
    before = df.copy(deep=True)
    TabDDPM(epochs=1, **TINY).fit(df, schema, progress=False)
    pd.testing.assert_frame_equal(df, before)


# ---------------------------------------------------------------------------------------------- checkpoints


class _Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_the_uninterrupted_result(tmp_path):
    df, schema = toy_table()
    full = TabDDPM(epochs=4, seed=1, **TINY).fit(df, schema, progress=False)

    def crash(epoch, model, logs):
        if epoch == 3:
            raise _Interrupt  # the process dies during epoch 3, after the checkpoint of epoch 2

    with pytest.raises(_Interrupt):
        TabDDPM(epochs=4, seed=1, **TINY).fit(
            df, schema, callbacks=[crash], checkpoint_dir=tmp_path, checkpoint_every=1, progress=False
        )
    assert sorted(p.name for p in tmp_path.glob("*.pt"))[-1] == "epoch-000002.pt"
    resumed = TabDDPM(epochs=4, seed=1, **TINY).fit(
        df, schema, checkpoint_dir=tmp_path, checkpoint_every=1, progress=False
    )
    assert resumed.n_epochs_trained_ == 4 and [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    for k, v in params_of(full).items():
        assert torch.equal(v, params_of(resumed)[k]), k
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]
    pd.testing.assert_frame_equal(full.sample(300, seed=2), resumed.sample(300, seed=2))


def test_resume_checks_parameters_and_data(tmp_path):
    df, schema = toy_table()
    TabDDPM(epochs=2, seed=1, **TINY).fit(df, schema, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="other parameters.*seed"):
        TabDDPM(epochs=2, seed=2, **TINY).fit(df, schema, checkpoint_dir=tmp_path, progress=False)
    other, _ = toy_table(seed=9)
    with pytest.raises(ConfigError, match="different table"):
        TabDDPM(epochs=2, seed=1, **TINY).fit(other, schema, checkpoint_dir=tmp_path, progress=False)
    # resume=False starts afresh, and a finished run resumed trains nothing more
    fresh = TabDDPM(epochs=2, seed=2, **TINY).fit(df, schema, checkpoint_dir=tmp_path, resume=False, progress=False)
    assert fresh.n_epochs_trained_ == 2


def test_save_load_round_trip(tmp_path):
    df, schema = toy_table()
    model = TabDDPM(epochs=2, seed=1, **TINY).fit(df, schema, progress=False)
    path = model.save(tmp_path / "model.pt")
    loaded = TabDDPM.load(path)
    pd.testing.assert_frame_equal(model.sample(100, seed=3), loaded.sample(100, seed=3))
    assert loaded.history_ == model.history_ and loaded.n_epochs_trained_ == 2


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path):
    bad = tmp_path / "epoch-000001.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError, match="epoch-000001.pt"):
        TabDDPM.load(bad)
    df, schema = toy_table()
    with pytest.raises(ConfigError, match="epoch-000001.pt"):
        TabDDPM(epochs=1, **TINY).fit(df, schema, checkpoint_dir=tmp_path, progress=False)
    # a pickle that would run code is refused, and the code does not run
    evil = tmp_path / "evil.pt"
    torch.save({"rote_checkpoint": {"kind": TabDDPM.kind}, "x": _Interrupt()}, evil)
    with pytest.raises(ConfigError, match="evil.pt"):
        TabDDPM.load(evil)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ConfigError, match="not a rote checkpoint"):
        TabDDPM.load(foreign)


# ---------------------------------------------------------------------------------------------- callbacks


def test_early_stopping_and_callback_logs(tmp_path):
    df, schema = toy_table()
    seen = []

    def record(epoch, model, logs):
        seen.append(epoch)
        logs["extra"] = np.float64(epoch * 2)  # numpy values are stored as plain floats

    stop = EarlyStopping(patience=2, min_delta=1e9)  # nothing improves by 1e9: stop after 1 + 2 epochs
    model = TabDDPM(epochs=10, **TINY).fit(
        df, schema, callbacks=[record, stop], checkpoint_dir=tmp_path, progress=False
    )
    assert seen == [1, 2, 3] and model.n_epochs_trained_ == 3 and model.stopped_early_
    assert [h["extra"] for h in model.history_] == [2.0, 4.0, 6.0] and type(model.history_[0]["extra"]) is float
    assert set(model.history_[0]) >= {"epoch", "loss", "seconds", "loss_gaussian", "loss_multinomial"}
    # a run that stopped early is finished: resuming trains no more epochs
    again = TabDDPM(epochs=10, **TINY).fit(df, schema, checkpoint_dir=tmp_path, progress=False)
    assert again.n_epochs_trained_ == 3
    with pytest.raises(ConfigError, match="monitor"):
        TabDDPM(epochs=1, **TINY).fit(df, schema, callbacks=[EarlyStopping(monitor="nope")], progress=False)


def test_progress_callable_is_advanced_per_epoch():
    df, schema = toy_table()
    ticks = []
    TabDDPM(epochs=3, **TINY).fit(df, schema, progress=ticks.append)
    assert ticks == [1, 1, 1]


def test_memorization_hook_records_the_audit_of_a_sample():
    df, schema = toy_table(n=200)
    hook = MemorizationHook(df, schema, every=2, n_samples=150, seed=7)
    model = TabDDPM(epochs=3, **TINY).fit(df, schema, callbacks=[hook], progress=False)
    assert [h["epoch"] for h in hook.history] == [2, 3]  # every 2 epochs, and after the last
    assert [h.get("memorization_ratio") is not None for h in model.history_] == [False, True, True]
    want = audit(df, model.sample(150, seed=7), schema=schema).memorization_ratio
    assert hook.history[-1]["memorization_ratio"] == pytest.approx(want)
    assert hook.to_frame().shape == (2, 3)


# ---------------------------------------------------------------------------------------------- bad input


def test_single_row_table_is_refused():
    df, schema = toy_table()
    with pytest.raises(DataError, match="at least 2 training rows"):
        TabDDPM(epochs=1, **TINY).fit(df.iloc[:1], schema, progress=False)


def test_one_class_target_and_class_of_one_row():
    """Documented behaviour: a generator models the joint table, so a one-class target is a constant column
    (every sample has that class) and a class with one row is kept (and rarely sampled)."""
    df, schema = toy_table()
    one = df.assign(y=1)
    s = TabDDPM(epochs=1, **TINY).fit(one, schema, progress=False).sample(100)
    assert (s["y"] == 1).all() and s["y"].dtype == one["y"].dtype
    rare = df.assign(y=0)
    rare.loc[5, "y"] = 1
    s = TabDDPM(epochs=2, **TINY).fit(rare, schema, progress=False).sample(300)
    assert set(s["y"]) <= {0, 1} and (s["y"] == 0).mean() > 0.5


def test_only_numeric_only_categorical_and_constant_columns():
    df, _ = toy_table()
    s = TabDDPM(epochs=1, **TINY).fit(df[["x", "k"]], TableSchema(("x", "k"), ()), progress=False).sample(20)
    assert list(s.columns) == ["x", "k"] and s["k"].dtype == np.int64
    s = TabDDPM(epochs=1, **TINY).fit(df[["c", "y"]], TableSchema((), ("c", "y")), progress=False).sample(20)
    assert list(s.columns) == ["c", "y"] and set(s["c"]) <= {"a", "b", "c"}
    const = df.assign(z=4.25, w="same")
    schema = TableSchema(("x", "k", "z"), ("c", "y", "w"))
    s = TabDDPM(epochs=1, **TINY).fit(const, schema, progress=False).sample(50)
    assert (s["z"] == 4.25).all() and (s["w"] == "same").all()


def test_bad_parameters():
    df, schema = toy_table()
    with pytest.raises(ConfigError, match="preset"):
        TabDDPM(preset="huge").fit(df, schema, progress=False)
    with pytest.raises(ConfigError, match="epochs"):
        TabDDPM(epochs=-1).fit(df, schema, progress=False)
    with pytest.raises(ConfigError, match="fit"):
        TabDDPM().sample(10)
    with pytest.raises(ConfigError, match="n="):
        TabDDPM(epochs=1, **TINY).fit(df, schema, progress=False).sample(0)


def test_device_argument():
    df, schema = toy_table()
    if torch.cuda.is_available():
        s = TabDDPM(epochs=1, device="cuda", **TINY).fit(df, schema, progress=False).sample(10)
        assert len(s) == 10
    else:
        with pytest.raises(BackendError, match="cuda"):
            TabDDPM(epochs=1, device="cuda", **TINY).fit(df, schema, progress=False)
    with pytest.raises(ConfigError, match="device"):
        TabDDPM(epochs=1, device="gpu-please", **TINY).fit(df, schema, progress=False)


def test_paper_preset_hyperparameters():
    cfg = TabDDPM(preset="paper").config()
    assert cfg["d_layers"] == (1024, 2048, 2048, 1024) and cfg["num_timesteps"] == 1000
    # the TabCutMix repository: MLPDiffusion's dim_t default 1024, adult.toml weight_decay 5e-4, best-loss weights
    assert cfg["dim_t"] == 1024 and cfg["weight_decay"] == 5e-4 and cfg["keep_best"] is True
    assert cfg["cat_input"] == "log_onehot" and TabDDPM().config()["cat_input"] == "log_onehot"
    assert cfg["batch_size"] == 4096 and cfg["steps"] == 100_000 and cfg["lr"] == pytest.approx(0.0018098, rel=1e-4)
    assert TabDDPM(preset="paper")._total_epochs(cfg, 32_561) == 12_500  # 8 steps per epoch


_KILL_SCRIPT = """
import sys, time, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from tabular.test_tabddpm import TINY, toy_table
from rote.tabular.models import TabDDPM

def hang(epoch, model, logs):
    if epoch == 3:  # epochs 1 and 2 are checkpointed; epoch 3 is trained but not saved
        open({ready!r}, "w").close()
        time.sleep(60)

df, schema = toy_table()
TabDDPM(epochs=4, seed=1, **TINY).fit(df, schema, callbacks=[hang], checkpoint_dir={folder!r}, checkpoint_every=1,
                                      progress=False)
"""


def test_resume_after_sigkill_gives_the_uninterrupted_result(tmp_path):
    from pathlib import Path

    tests = str(Path(__file__).resolve().parents[1])
    folder, ready = tmp_path / "ck", tmp_path / "ready"
    kill_when_ready(_KILL_SCRIPT.format(tests=tests, ready=str(ready), folder=str(folder)), ready)
    assert sorted(p.name for p in folder.glob("*.pt")) == ["epoch-000001.pt", "epoch-000002.pt"]
    df, schema = toy_table()
    full = TabDDPM(epochs=4, seed=1, **TINY).fit(df, schema, progress=False)
    resumed = TabDDPM(epochs=4, seed=1, **TINY).fit(
        df, schema, checkpoint_dir=folder, checkpoint_every=1, progress=False
    )
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    for k, v in params_of(full).items():
        assert torch.equal(v, params_of(resumed)[k]), k
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]
    pd.testing.assert_frame_equal(full.sample(100, seed=2), resumed.sample(100, seed=2))
    # the final training checkpoint is also a model file
    pd.testing.assert_frame_equal(
        TabDDPM.load(folder / "epoch-000004.pt").sample(100, seed=2), resumed.sample(100, seed=2)
    )


# ---------------------------------------------------------------------------------------------- reference parity


def _reference_mlp_diffusion(net, x, t):
    """The TabCutMix/tab-ddpm `MLPDiffusion.forward` restated with `net`'s weights: proj(x) + time_embed(emb(t)),
    then rtdl MLP blocks Linear -> ReLU -> Dropout and a linear head. emb: [cos(t f), sin(t f)],
    f_i = exp(-ln(10000) i / half)."""
    half = net.dim_t // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    lin = lambda m, v: v @ m.weight.T + m.bias  # noqa: E731
    emb = lin(net.time_mlp[2], F.silu(lin(net.time_mlp[0], emb)))
    h = lin(net.proj, x) + emb
    for m in net.blocks:
        if isinstance(m, torch.nn.Linear):
            h = torch.relu(lin(m, h))
    return lin(net.head, h)


def _reference_mixed_loss(net, sizes, T, x_num, x_cat, t, noise, x_cat_t):
    """tab-ddpm `GaussianMultinomialDiffusion.mixed_loss` restated (log space, flat one-hot layout, per-column
    slices), for given timesteps, Gaussian noise and noisy categories: returns (loss_multi, loss_gauss)."""
    s = 0.008
    f = lambda u: np.cos((u / T + s) / (1 + s) * np.pi / 2) ** 2  # noqa: E731
    betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)])
    log_alpha = np.log(1.0 - betas)
    log_cum = np.cumsum(log_alpha)
    tt = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    log_alpha_t, log_cum_t = tt(log_alpha), tt(log_cum)
    log_1m_alpha, log_1m_cum = tt(np.log(1 - np.exp(log_alpha) + 1e-40)), tt(np.log(1 - np.exp(log_cum) + 1e-40))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    log_k = torch.cat([torch.full((k,), math.log(k)) for k in sizes])[None]

    def log_onehot(codes):
        oh = torch.cat([F.one_hot(codes[:, i], k) for i, k in enumerate(sizes)], 1).float()
        return torch.log(oh.clamp(min=1e-30))

    def sliced_lse(v):
        return torch.cat(
            [torch.logsumexp(v[:, a:b], 1, keepdim=True).expand(-1, b - a) for a, b in zip(offsets[:-1], offsets[1:])],
            1,
        )

    def q_pred(lx, tv):
        return torch.logaddexp(lx + log_cum_t[tv][:, None], log_1m_cum[tv][:, None] - log_k)

    def q_posterior(lx0, lxt, tv):
        prev = q_pred(lx0, (tv - 1).clamp(min=0))
        prev = torch.where((tv == 0)[:, None], lx0, prev)
        un = prev + torch.logaddexp(lxt + log_alpha_t[tv][:, None], log_1m_alpha[tv][:, None] - log_k)
        return un - sliced_lse(un)

    abar = torch.exp(log_cum_t[t])[:, None]
    x_num_t = abar.sqrt() * x_num + (1 - abar).sqrt() * noise
    lx0, lxt = log_onehot(x_cat), log_onehot(x_cat_t)
    out = _reference_mlp_diffusion(net, torch.cat([x_num_t, lxt], 1), t)
    n_num = x_num.shape[1]
    loss_gauss = ((noise - out[:, :n_num]) ** 2).mean()
    logits = out[:, n_num:]
    log_recon = logits - sliced_lse(logits)
    log_true, log_model = q_posterior(lx0, lxt, t), q_posterior(log_recon, lxt, t)
    kl = (log_true.exp() * (log_true - log_model)).sum(1)
    nll = -(lx0.exp() * log_model).sum(1)
    lq = q_pred(lx0, torch.full_like(t, T - 1))
    kl_prior = (lq.exp() * (lq + log_k)).sum(1)
    vb = torch.where(t == 0, nll, kl)
    loss_multi = (vb * T + kl_prior) / len(sizes)
    return loss_multi.mean(), loss_gauss


def test_parity_with_the_reference_forward_pass_and_loss():
    """One training batch on tiny data with a fixed seed: the denoiser's output on the reference's input
    [x_num_t, log one-hot(x_cat_t)] and both loss terms equal the restated reference code."""
    df, schema = toy_table(64)
    model = TabDDPM(epochs=0, **TINY, seed=3).fit(df, schema, progress=False)
    d, net = model.diffusion_, model.denoiser_
    x_num, x_cat = model.codec_.encode(df)
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, d.T, (len(df),), generator=g)
    t[:3] = torch.tensor([0, 1, d.T - 1])  # the decoder NLL branch and both ends of the chain
    noise = torch.randn(x_num.shape, generator=g)
    x_cat_t = d.q_sample_cat(x_cat, t, g)
    with torch.no_grad():
        inp = d.denoiser_input(d.q_sample_num(x_num, t, noise), x_cat_t)
        np.testing.assert_allclose(inp[:, x_num.shape[1] :].unique().numpy(), [math.log(1e-30), 0.0], rtol=1e-6)
        torch.testing.assert_close(net(inp, t), _reference_mlp_diffusion(net, inp, t), atol=1e-5, rtol=1e-5)
        total, l_num, l_cat = d.loss_given(net, x_num, x_cat, t, noise, x_cat_t)
        ref_multi, ref_gauss = _reference_mixed_loss(net, d.n_classes, d.T, x_num, x_cat, t, noise, x_cat_t)
    assert l_num.item() == pytest.approx(ref_gauss.item(), rel=1e-5)
    assert l_cat.item() == pytest.approx(ref_multi.item(), rel=1e-4)
    assert total.item() == pytest.approx((ref_multi + ref_gauss).item(), rel=1e-4)


def test_onehot_input_is_a_named_option_and_bad_values_are_refused():
    df, schema = toy_table(64)
    m = TabDDPM(epochs=0, **TINY, cat_input="onehot").fit(df, schema, progress=False)
    inp = m.diffusion_.onehot_flat(torch.tensor([[1, 0]]))
    assert inp.tolist() == [[0.0, 1.0, 0.0, 1.0, 0.0]]
    with pytest.raises(ConfigError, match="`cat_input`"):
        TabDDPM(cat_input="log").config()
    for T in (0, -1, 2.5):
        with pytest.raises(ConfigError, match=r"`num_timesteps`.*--timesteps"):
            TabDDPM(num_timesteps=T).config()


def test_keep_best_samples_from_the_lowest_loss_epoch():
    """keep_best: after training the denoiser holds the weights of the epoch with the lowest logged loss."""
    df, schema = toy_table(128)
    seen: dict[int, dict] = {}

    def record(epoch, model, logs):
        seen[epoch] = (logs["loss"], params_of(model))

    m = TabDDPM(epochs=6, **TINY, lr=0.05, keep_best=True, seed=1).fit(df, schema, callbacks=[record], progress=False)
    best = min(seen, key=lambda e: seen[e][0])
    assert best != max(seen)  # a high lr makes the last epoch not the best one here, so the test can tell
    for k, v in params_of(m).items():
        torch.testing.assert_close(v, seen[best][1][k], atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------- class conditioning


def _reference_conditional_forward(net, x, t, y):
    """tab-ddpm `MLPDiffusion.forward` with `is_y_cond`: emb = time_embed(emb(t)) + silu(label_emb(y)), restated."""
    half = net.dim_t // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    lin = lambda m, v: v @ m.weight.T + m.bias  # noqa: E731
    emb = lin(net.time_mlp[2], F.silu(lin(net.time_mlp[0], emb))) + F.silu(net.label_emb.weight[y])
    h = lin(net.proj, x) + emb
    for m in net.blocks:
        if isinstance(m, torch.nn.Linear):
            h = torch.relu(lin(m, h))
    return lin(net.head, h)


def test_conditioning_is_off_by_default_and_adds_nothing():
    """Default: no conditioning parameters in the model's parameters (model files and resume checks unchanged),
    no label embedding. With `cond_column` the label column leaves the diffusion; a denoiser with classes draws
    the same initial weights for its other layers (the embedding is made last)."""
    df, schema = toy_table(64)
    plain = TabDDPM(epochs=0, **TINY, seed=3).fit(df, schema, progress=False)
    assert "cond_column" not in plain.get_params() and "cond_dropout" not in plain.config()
    assert not plain.conditional and not hasattr(plain.denoiser_, "label_emb")
    cond = TabDDPM(epochs=0, **TINY, seed=3, cond_column="y").fit(df, schema, progress=False)
    assert cond.conditional and cond.config()["cond_dropout"] == 0.1
    assert cond.diffusion_.n_classes == [3] and plain.diffusion_.n_classes == [3, 2]
    assert cond.denoiser_.label_emb.weight.shape == (3, 16)  # classes 0, 1 and "no class"
    torch.manual_seed(0)
    a = MLPDenoiser(7, (16, 16), 8).state_dict()
    torch.manual_seed(0)
    b = MLPDenoiser(7, (16, 16), 8, num_classes=2).state_dict()
    assert set(b) - set(a) == {"label_emb.weight"} and all(torch.equal(v, b[k]) for k, v in a.items())


def test_conditional_forward_pass_matches_the_reference():
    df, schema = toy_table(64)
    m = TabDDPM(epochs=0, **TINY, seed=2, cond_column="y").fit(df, schema, progress=False)
    net = m.denoiser_
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, net.proj.in_features, generator=g)
    t = torch.tensor([0, 1, 5, 9, 19, 19])
    y = torch.tensor([0, 1, 2, 0, 1, 2])  # 2 = "no class"
    with torch.no_grad():
        torch.testing.assert_close(net(x, t, y), _reference_conditional_forward(net, x, t, y), atol=1e-5, rtol=1e-5)
        with pytest.raises(ConfigError, match="`y`"):
            TabDDPM(epochs=0, **TINY).fit(df, schema, progress=False).denoiser_(x[:, :5], t, y)


def test_label_dropout_rate_and_class_frequencies():
    """The denoiser sees "no class" for a share cond_dropout of training rows (binomial bounds); sampled labels
    follow the training table's class frequencies; both are saved with the model."""
    rng = np.random.default_rng(1)
    df, schema = toy_table(400)
    seen = []
    m = TabDDPM(epochs=0, **TINY, seed=0, cond_column="c", cond_dropout=0.3).fit(df, schema, progress=False)
    forward = m.denoiser_.forward

    def spy(x, t, y=None):
        seen.append(y.clone())
        return forward(x, t, y)

    m.denoiser_.forward = spy
    m._x_num, m._x_cat = m.codec_.encode(df)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        m._train_step(torch.as_tensor(rng.choice(400, 64, replace=False)), type("S", (), {"generator": gen})())
    y = torch.cat(seen)
    share = float((y == 3).float().mean())
    assert abs(share - 0.3) < 3 * math.sqrt(0.3 * 0.7 / len(y)), share
    want = df["c"].value_counts().reindex(["a", "b", "c"]).to_numpy()
    assert m.class_counts_.tolist() == want.tolist()
    draws = m.draw_classes(40_000, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(np.bincount(draws.numpy(), minlength=3) / 40_000, want / want.sum(), atol=0.01)


def test_conditional_model_learns_class_dependent_numerics_and_round_trips(tmp_path):
    """x ~ N(-2, 0.5) for class a, N(+2, 0.5) for class b: sampled rows put x on their label's side, and a saved
    and loaded model samples the same rows."""
    rng = np.random.default_rng(0)
    n = 1000
    lab = rng.choice(["a", "b"], n)
    df = pd.DataFrame({"x": np.where(lab == "a", -2.0, 2.0) + rng.normal(0, 0.5, n), "lab": lab})
    schema = TableSchema(("x",), ("lab",), target="lab")
    m = TabDDPM(
        epochs=30, batch_size=128, d_layers=(64, 64), dim_t=32, num_timesteps=20, lr=5e-3, seed=0, cond_column="lab"
    ).fit(df, schema, progress=False)
    s = m.sample(600, seed=1)
    assert list(s.columns) == ["x", "lab"]
    assert s["lab"].value_counts(normalize=True)["a"] == pytest.approx((lab == "a").mean(), abs=0.06)
    assert (np.sign(s["x"]) == np.where(s["lab"] == "a", -1, 1)).mean() > 0.9
    loaded = TabDDPM.load(m.save(tmp_path / "m.pt"))
    assert loaded.conditional and loaded.class_counts_.tolist() == m.class_counts_.tolist()
    pd.testing.assert_frame_equal(m.sample(50, seed=4), loaded.sample(50, seed=4))


def test_conditioning_bad_values():
    df, schema = toy_table(64)
    with pytest.raises(ConfigError, match="`cond_column`.*'c', 'y'"):
        TabDDPM(epochs=0, **TINY, cond_column="x").fit(df, schema, progress=False)
    for p in (1.0, -0.1, "a"):
        with pytest.raises(ConfigError, match="`cond_dropout`"):
            TabDDPM(cond_column="y", cond_dropout=p).config()
    with pytest.raises(ConfigError, match="`cond_dropout` needs `cond_column`"):
        TabDDPM(cond_dropout=0.1).config()
