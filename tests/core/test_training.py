"""rote.core.training: bit-identical resume (mid-epoch, epoch end, after SIGKILL), best weights, early stopping,
per-sample losses aligned under shuffling, checkpoint hygiene (stale temporaries, weights_only), NaN stop, RNG."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from rote.core import checkpoints as ck
from rote.core.errors import ConfigError, RoteError
from rote.core.training import Trainer, epoch_seed, fit
from rote_testing import kill_when_ready

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N, D = 37, 3  # 37 rows, batch 8: four full batches and one of 5


def dataset() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(N, generator=g)


def make(seed: int = 0, **kw) -> Trainer:
    """A small MLP with dropout (global RNG), input noise (the epoch generator), AdamW, a StepLR schedule."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x, y = dataset()

    def step(batch, state):
        xb, yb = (t.to(state.device) for t in batch)
        xb = xb + 0.01 * torch.randn(xb.shape, generator=state.generator, device=state.generator.device)
        per = (net(xb).squeeze(1) - yb) ** 2  # (B,)
        return {"loss": per.mean(), "mae": per.sqrt().mean(), "per_sample": per}

    opts = dict(
        optimizers={"opt": opt},
        schedulers={"sched": sched},
        data=(x, y),
        batch_size=8,
        epochs=4,
        seed=seed,
        record_per_sample="all",
    )
    opts.update(kw)
    return Trainer({"net": net}, step, **opts)


def weights(t: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in t.modules["net"].state_dict().items()}


def assert_same_run(a: Trainer, b: Trainer) -> None:
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [(h["epoch"], h["loss"], h["mae"]) for h in a.state.history] == [
        (h["epoch"], h["loss"], h["mae"]) for h in b.state.history
    ]
    assert (
        a.state.step == b.state.step
        and a.optimizers["opt"].param_groups[0]["lr"] == b.optimizers["opt"].param_groups[0]["lr"]
    )
    np.testing.assert_array_equal(a.state.per_sample, b.state.per_sample)


class Crash(Exception):
    pass


# ---------------------------------------------------------------------------------------------- resume


def test_resume_at_epoch_end_and_mid_epoch_is_bit_identical(tmp_path):
    full = make()
    full.fit()
    assert full.state.step == 20 and len(full.state.history) == 4 and full.state.per_sample.shape == (4, N)

    # epoch checkpoints; the process dies in epoch 3 after the checkpoint of epoch 2
    def crash_epoch(state, logs):
        if state.epoch == 3:
            raise Crash

    with pytest.raises(Crash):
        make(checkpoint_dir=tmp_path / "e", checkpoint_every=1, callbacks=[crash_epoch]).fit()
    assert ck.latest_checkpoint(tmp_path / "e").name == "epoch-000002.pt"
    resumed = make(checkpoint_dir=tmp_path / "e", checkpoint_every=1)
    resumed.fit()
    assert resumed.state.resumed_from.name == "epoch-000002.pt" and resumed.state.start_epoch == 2
    assert_same_run(full, resumed)

    # step checkpoints every 3 steps: the newest (step 12) lies inside epoch 3 (steps 11..15)
    class CrashStep:
        def on_step_end(self, state, out):
            if state.step == 14:
                raise Crash

    with pytest.raises(Crash):
        make(checkpoint_dir=tmp_path / "s", checkpoint_every=3, checkpoint_unit="step", callbacks=[CrashStep()]).fit()
    assert ck.latest_checkpoint(tmp_path / "s", prefix="step-").name == "step-000012.pt"
    resumed = make(checkpoint_dir=tmp_path / "s", checkpoint_every=3, checkpoint_unit="step")
    resumed.fit()
    assert resumed.state.start_step == 12 and resumed.state.start_epoch == 2
    assert_same_run(full, resumed)
    # a finished run resumed trains nothing more
    again = make(checkpoint_dir=tmp_path / "s", checkpoint_every=3, checkpoint_unit="step")
    again.fit()
    assert again.state.start_step == 20 and again.state.step == 20
    assert_same_run(full, again)


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    from core.test_training import make

    def slow(state, logs):
        if state.epoch == 3:  # checkpoints of epochs 1 and 2 are written; epoch 3 trained but not saved
            open({ready!r}, "w").close()
            time.sleep(60)

    make(checkpoint_dir={folder!r}, checkpoint_every=1, callbacks=[slow]).fit()
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_resume_after_sigkill_is_bit_identical(tmp_path):
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder, ready = tmp_path / "ck", tmp_path / "ready"
    kill_when_ready(_KILL_SCRIPT.format(tests=tests, ready=str(ready), folder=str(folder)), ready)
    assert sorted(p.name for p in folder.glob("*.pt")) == ["epoch-000001.pt", "epoch-000002.pt"]
    full = make()
    full.fit()
    resumed = make(checkpoint_dir=folder, checkpoint_every=1)
    resumed.fit()
    assert resumed.state.start_epoch == 2
    assert_same_run(full, resumed)


# ---------------------------------------------------------------------------------------------- seeds and RNG


def test_same_seed_same_run_other_seed_other_run_and_global_rng_untouched():
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    a, b, c = make(seed=1), make(seed=1), make(seed=2)
    for t in (a, b, c):
        t.fit()
    assert random.getstate() == before[0] and np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])
    assert_same_run(a, b)
    assert not torch.equal(weights(a)["0.weight"], weights(c)["0.weight"])
    assert epoch_seed(1, 2) == epoch_seed(1, 2) != epoch_seed(1, 3)
    # the global RNG inside an epoch is seeded from (seed + 1, epoch): dropout draws do not depend on the caller
    torch.manual_seed(999)
    d = make(seed=1)
    d.fit()
    assert_same_run(a, d)


def test_amp_is_off_on_cpu_and_changes_nothing():
    a, b = make(), make(amp=True)
    a.fit(), b.fit()
    assert b.state.amp is False and b.state.scaler is None
    assert_same_run(a, b)


# ---------------------------------------------------------------------------------------------- best, early stop


def scripted(values, **kw):
    """A trainer whose callback logs values[epoch - 1] as "score" and snapshots the weights of every epoch."""
    snaps = {}

    def log_score(state, logs):
        logs["score"] = np.float64(values[state.epoch - 1])  # numpy values are stored as plain floats
        snaps[state.epoch] = {k: v.clone() for k, v in state.modules["net"].state_dict().items()}

    t = make(epochs=len(values), callbacks=[log_score], **kw)
    return t, snaps


def test_early_stopping_patience_and_min_delta():
    # improvements need more than 0.1: 5 -> 4 is one; 4.5 and 3.95 are not; patience 2 stops after epoch 4
    t, _ = scripted([5.0, 4.0, 4.5, 3.95, 1.0, 0.5], monitor="score", min_delta=0.1, patience=2)
    st = t.fit()
    assert [h["epoch"] for h in st.history] == [1, 2, 3, 4] and st.stopped_early
    assert (st.best_value, st.best_epoch, st.wait) == (4.0, 2, 2)
    assert type(st.history[0]["score"]) is float
    t, _ = scripted([1.0, 3.0, 2.0, 2.5, 2.9], monitor="score", mode="max", patience=3)
    st = t.fit()
    assert len(st.history) == 5 and not st.stopped_early and (st.best_value, st.best_epoch) == (3.0, 2)


def test_keep_best_restores_the_best_weights_and_survives_resume(tmp_path):
    values = [3.0, 1.0, 2.0, 2.5]
    t, snaps = scripted(values, monitor="score", keep_best=True)
    t.fit()
    assert t.state.best_epoch == 2
    assert all(torch.equal(v, snaps[2][k]) for k, v in weights(t).items())

    def crash(state, logs):
        if state.epoch == 4:
            raise Crash

    t2, _ = scripted(values, monitor="score", keep_best=True, checkpoint_dir=tmp_path, checkpoint_every=1)
    t2.callbacks.append(crash)
    with pytest.raises(Crash):
        t2.fit()
    t3, _ = scripted(values, monitor="score", keep_best=True, checkpoint_dir=tmp_path, checkpoint_every=1)
    t3.fit()
    assert t3.state.start_epoch == 3 and t3.state.best_epoch == 2
    assert all(torch.equal(v, snaps[2][k]) for k, v in weights(t3).items())


def test_callbacks_stop_and_keep_state(tmp_path):
    class Counter:
        def __init__(self):
            self.calls, self.begun, self.ended = 0, 0, 0

        def on_train_begin(self, state):
            self.begun += 1

        def on_epoch_end(self, state, logs):
            self.calls += 1
            logs["calls"] = self.calls
            return state.epoch == 2  # ask to stop after epoch 2

        def on_train_end(self, state):
            self.ended += 1

        def state_dict(self):
            return {"calls": self.calls}

        def load_state_dict(self, d):
            self.calls = d["calls"]

    c = Counter()
    ticks = []
    st = make(callbacks=[c], checkpoint_dir=tmp_path, progress=ticks.append).fit()
    assert (c.calls, c.begun, c.ended) == (2, 1, 1) and st.stopped_early and ticks == [1, 1]
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["epoch-000002.pt"]  # the end is always saved
    # resuming a stopped run trains nothing; the callback's state comes back from the checkpoint
    c2 = Counter()
    st = make(callbacks=[c2], checkpoint_dir=tmp_path).fit()
    assert c2.calls == 2 and st.epoch == 2 and [h["calls"] for h in st.history] == [1, 2]
    # on_stop can veto a stop (a phase ends instead); request_stop from a step callback ends mid-epoch
    vetoed = make(callbacks=[lambda s, logs: True], on_stop=lambda s: False).fit()
    assert len(vetoed.history) == 4 and not vetoed.stopped_early

    class StopAt7:
        def on_step_end(self, state, out):
            if state.step == 7:
                state.request_stop()

    st = make(callbacks=[StopAt7()]).fit()
    assert st.step == 7 and [h["epoch"] for h in st.history] == [1, 2] and st.stopped_early


# ---------------------------------------------------------------------------------------------- per-sample


def test_per_sample_losses_are_aligned_with_dataset_indices_under_shuffling():
    values = torch.arange(N, dtype=torch.float32) * 10  # the "loss" of sample i is 10 i, whatever the order
    seen = []
    w = nn.Parameter(torch.zeros(()))

    def step(idx, state):
        seen.append(idx.clone())
        return {"loss": (w - 1) ** 2, "per_sample": values[idx] + 0 * w.detach()}

    st = fit(
        {"p": nn.ParameterList([w])},
        step,
        optimizers={"o": torch.optim.SGD([w], lr=0.1)},
        data=N,
        batch_size=8,
        epochs=3,
        record_per_sample="all",
    )
    assert st.per_sample.shape == (3, N) and st.per_sample.dtype == np.float32
    np.testing.assert_array_equal(st.per_sample, np.tile(values.numpy(), (3, 1)))
    first = torch.cat(seen[:5])
    assert sorted(first.tolist()) == list(range(N)) and first.tolist() != list(range(N))  # really shuffled
    assert torch.cat(seen[5:10]).tolist() != first.tolist()  # a new order each epoch
    # drop_last: the 5 rows of the short batch are not seen that epoch (NaN); "latest" keeps one row
    seen.clear()
    st = fit(
        {"p": nn.ParameterList([w])},
        step,
        optimizers={"o": torch.optim.SGD([w], lr=0.1)},
        data=N,
        batch_size=8,
        epochs=1,
        drop_last=True,
        record_per_sample="latest",
    )
    unseen = sorted(set(range(N)) - set(torch.cat(seen).tolist()))
    assert st.per_sample.shape == (N,) and len(unseen) == 5
    assert np.isnan(st.per_sample[unseen]).all() and np.isfinite(np.delete(st.per_sample, unseen)).all()


def test_a_map_style_dataset_trains_like_the_same_tensors():
    x, y = dataset()
    a = make()
    a.fit()
    b = make(data=[(x[i], y[i]) for i in range(N)])  # len + getitem, batches by default_collate
    b.fit()
    assert_same_run(a, b)
    seen = []
    c = make(
        data=[(x[i], y[i]) for i in range(N)],
        collate_fn=lambda items: (
            seen.append(len(items)) or (torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items]))
        ),
        epochs=1,
    )
    c.fit()
    assert seen == [8, 8, 8, 8, 5]


def test_manual_optimization_and_step_schedulers_match_the_automatic_loop():
    def run(manual: bool):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = nn.Linear(D, 1)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / (1 + k))  # per step
        x, y = dataset()

        def step(batch, state):
            loss = ((net(batch[0]).squeeze(1) - batch[1]) ** 2).mean()
            if manual:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
                opt.step()
            return {"loss": loss}

        return fit(
            {"net": net},
            step,
            optimizers={} if manual else {"o": opt},
            schedulers={"s": sched},
            scheduler_interval="step",
            data=(x, y),
            batch_size=8,
            epochs=2,
            manual_optimization=manual,
            grad_clip=None if manual else 0.5,
        )

    a, b = run(False), run(True)
    assert a.step == b.step == 10 and [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.optimizers["o"].param_groups[0]["lr"] == pytest.approx(0.05 / 11)
    assert all(torch.equal(p, q) for p, q in zip(a.modules["net"].parameters(), b.modules["net"].parameters()))


def test_step_budget_without_data_and_explicit_indices():
    w = nn.Parameter(torch.zeros(()))
    draws = []

    def step(_, state):
        i = torch.randint(0, 10, (4,), generator=state.generator)
        draws.append(i)
        return {"loss": (w - 2) ** 2, "per_sample": i.float(), "indices": i}

    gen = torch.Generator().manual_seed(3)
    st = fit(
        {"p": nn.ParameterList([w])},
        step,
        optimizers={"o": torch.optim.SGD([w], lr=0.1)},
        steps=6,
        generator=gen,
        record_per_sample="latest",
        n_samples=10,
    )
    want = torch.Generator().manual_seed(3)
    assert all(torch.equal(d, torch.randint(0, 10, (4,), generator=want)) for d in draws)
    assert st.step == 6 and len(st.history) == 1  # one epoch: the whole step budget
    hit = torch.cat(draws).unique()
    np.testing.assert_array_equal(st.per_sample[hit.numpy()], hit.float().numpy())


# ---------------------------------------------------------------------------------------------- checkpoints


def test_stale_temporaries_are_removed_and_never_taken_for_checkpoints(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free now: a save it was doing was killed
    stale = tmp_path / f".epoch-000003.pt.{dead.pid}.k2j4h5g6.tmp"
    stale.write_bytes(b"half a checkpoint")
    legacy = tmp_path / ".epoch-000004.pt.abcd1234.tmp"  # written before the pid was part of the name
    legacy.write_bytes(b"half")
    live = tmp_path / f".epoch-000005.pt.{os.getppid()}.zzzz9999.tmp"  # a live process saving right now
    live.write_bytes(b"in progress")
    first = make(epochs=2, checkpoint_dir=tmp_path, checkpoint_every=1)
    # resume cleans up before looking for checkpoints; the temporaries name epochs 3 to 5 but are ignored
    assert ck.latest_checkpoint(tmp_path) is None
    first.fit()
    assert not stale.exists() and not legacy.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["epoch-000001.pt", "epoch-000002.pt"]
    stale.write_bytes(b"again")
    assert ck.latest_checkpoint(tmp_path).name == "epoch-000002.pt"
    assert ck.remove_stale_temporaries(tmp_path) == [stale] and live.exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned_marker",))


def test_resume_refuses_code_carrying_foreign_and_mismatched_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"rote_checkpoint": {"kind": "rote.train"}, "x": _Evil()}, tmp_path / "epoch-000003.pt")
    with pytest.raises(ConfigError, match="epoch-000003.pt: not a readable rote checkpoint"):
        make(checkpoint_dir=tmp_path).fit()
    assert not (tmp_path / "pwned_marker").exists()
    (tmp_path / "epoch-000003.pt").unlink()
    make(epochs=1, checkpoint_dir=tmp_path, kind="other").fit()
    with pytest.raises(ConfigError, match="is a 'other' checkpoint, expected 'rote.train'"):
        make(checkpoint_dir=tmp_path).fit()
    (tmp_path / "epoch-000001.pt").unlink()
    make(epochs=1, checkpoint_dir=tmp_path, meta={"lr": 0.1}).fit()
    with pytest.raises(ConfigError, match=r"other settings \(lr=0.1 there, 0.2 here\)"):
        make(checkpoint_dir=tmp_path, meta={"lr": 0.2}).fit()
    with pytest.raises(ConfigError, match="does not fit this training run"):
        make(checkpoint_dir=tmp_path, meta={"lr": 0.1}, seed=4).fit()
    st = make(checkpoint_dir=tmp_path, meta={"lr": 0.2}, resume=False).fit()
    assert st.resumed_from is None and st.epoch == 4


def test_keep_checkpoints_prunes_old_ones(tmp_path):
    make(checkpoint_dir=tmp_path, checkpoint_every=1, keep_checkpoints=2).fit()
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["epoch-000003.pt", "epoch-000004.pt"]


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(idx, state):
        loss = net(torch.ones(len(idx), 2)).pow(2).mean()
        return {"loss": loss * float("nan") if state.epoch == 3 else loss}

    with pytest.raises(RoteError, match=r"training diverged: loss is nan in epoch 3 .*epoch-000002.pt"):
        fit(
            {"net": net},
            step,
            optimizers={"o": opt},
            data=10,
            batch_size=5,
            epochs=5,
            checkpoint_dir=tmp_path,
            checkpoint_every=1,
        )
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["epoch-000001.pt", "epoch-000002.pt"]
    good = ck.load_checkpoint(tmp_path / "epoch-000002.pt", "rote.train")
    assert all(torch.isfinite(v).all() for v in good["modules"]["net"].values())


def test_bad_arguments_are_config_errors():
    net = nn.Linear(1, 1)
    opt = {"o": torch.optim.SGD(net.parameters(), lr=0.1)}
    step = lambda b, s: {"loss": net(torch.ones(1, 1)).sum()}  # noqa: E731
    cases = [
        (dict(data=4, batch_size=0, epochs=1), "batch_size=0"),
        (dict(data=4, batch_size=2), "budget"),
        (dict(data=4, epochs=1), "batch_size is required"),
        (dict(data=4, batch_size=2, epochs=-1), "epochs=-1"),
        (dict(data=4, batch_size=2, epochs=1, patience=2), "need monitor"),
        (dict(data=4, batch_size=2, epochs=1, mode="up"), "mode='up'"),
        (dict(data=4, batch_size=8, epochs=1, drop_last=True), "leaves no batch"),
        (dict(data=None, epochs=1), "without data"),
        (dict(data=None, steps=2, record_per_sample="all"), "n_samples"),
        (dict(data=object(), batch_size=2, epochs=1), "not usable"),
        (dict(data=4, batch_size=2, epochs=1, checkpoint_unit="hour"), "checkpoint_unit"),
        (dict(data=4, batch_size=2, epochs=1, device="gpu-please"), "device"),
    ]
    for kw, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            Trainer({"net": net}, step, optimizers=opt, **kw)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt["o"])
    with pytest.raises(ConfigError, match="ReduceLROnPlateau"):
        Trainer(
            {"net": net},
            step,
            optimizers=opt,
            schedulers={"p": plateau},
            scheduler_interval="step",
            data=4,
            batch_size=2,
            epochs=1,
        )
    with pytest.raises(ConfigError, match="optimizers is empty"):
        Trainer({"net": net}, step, data=4, batch_size=2, epochs=1)
    with pytest.raises(ConfigError, match="modules"):
        Trainer({}, step, optimizers=opt, data=4, batch_size=2, epochs=1)
    with pytest.raises(ConfigError, match="monitor='val' is not logged"):
        Trainer({"net": net}, step, optimizers=opt, data=4, batch_size=2, epochs=1, monitor="val").fit()
    with pytest.raises(ConfigError, match="requires grad"):
        Trainer(
            {"net": net}, lambda b, s: {"loss": torch.tensor(1.0)}, optimizers=opt, data=4, batch_size=2, epochs=1
        ).fit()


@pytest.mark.gpu  # `make test-gpu` on a machine with a CUDA GPU; deselected by `make test`
def test_cuda_amp_and_resume_is_bit_identical(tmp_path):
    full = make(device="cuda", amp=True)
    full.fit()
    assert full.state.amp and full.state.scaler is not None
    assert next(full.modules["net"].parameters()).device.type == "cuda"

    class CrashStep:
        def on_step_end(self, state, out):
            if state.step == 14:
                raise Crash

    kw = dict(device="cuda", amp=True, checkpoint_dir=tmp_path, checkpoint_every=3, checkpoint_unit="step")
    with pytest.raises(Crash):
        make(callbacks=[CrashStep()], **kw).fit()
    resumed = make(**kw)
    resumed.fit()
    assert resumed.state.start_step == 12
    assert_same_run(full, resumed)
