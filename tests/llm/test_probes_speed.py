"""The fast paths behind bench/llm_probes.py: the background activation writer (same bytes as np.save and as the
synchronous writer, bounded queue, writer errors raised in the caller, no partial files) and the blocked,
preconditioned Newton fit of `LogisticProbes` (the same optimum whatever the block size or solver path)."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import torch

import rote.core.hooks as H
from rote.core.runs import AtomicFile
from rote.llm.backends.base import SITES
from rote.llm.probes import LogisticProbes
from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model

torch.set_num_threads(1)


def _npy_bytes(a: np.ndarray) -> bytes:
    bio = io.BytesIO()
    np.save(bio, a)
    return bio.getvalue()


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- writer


def test_atomic_file_commit_and_abort(tmp_path):
    f = AtomicFile(tmp_path / "sub" / "a.bin")
    f.fh.write(b"hello ")
    f.fh.write(b"world")
    assert not (tmp_path / "sub" / "a.bin").exists()  # nothing visible before the commit
    f.commit()
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"hello world"
    g = AtomicFile(tmp_path / "sub" / "a.bin")
    g.fh.write(b"partial")
    g.abort()
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"hello world"  # the old file stays whole
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.bin"]  # no temporary file left


@pytest.mark.parametrize("background", [False, True])
def test_writer_chunks_are_np_save_bytes(tmp_path, background):
    rng = np.random.default_rng(1)
    rows = [rng.normal(size=(n, 3, 2)).astype(np.float32) for n in (5, 0, 9, 1, 12, 2)]
    out = tmp_path / "w"
    with H.ActivationWriter(out, chunk_rows=7, background=background, queue_bytes=64) as w:
        for r in rows:
            w.add("m", torch.from_numpy(r) if background else r)
            w.add("n", r[:, 0, :1].astype(np.float16))
    allm, alln = np.concatenate(rows), np.concatenate([r[:, 0, :1] for r in rows]).astype(np.float16)
    files = _files(out)
    for name, full in (("m", allm), ("n", alln)):
        for k in range(int(np.ceil(len(full) / 7))):  # every chunk is byte for byte np.save of its rows
            assert files[f"{name}/chunk-{k:06d}.npy"] == _npy_bytes(full[7 * k : 7 * k + 7])
    index = json.loads(files["index.json"])
    assert index["modules"]["m"]["rows"] == 29 and [c["rows"] for c in index["modules"]["m"]["chunks"]] == [7] * 4 + [1]
    assert not any(name.endswith(".tmp") for name in files)


def test_writer_short_last_chunk_whose_header_changes_length(tmp_path, monkeypatch):
    # numpy pads the header so the row count can grow in place (its length does not depend on the row count), so
    # the reserved header is normally rewritten in place; a header of another length must rebuild the file
    assert len(H._npy_header(np.dtype("<f4"), (10**9, 3))) == len(H._npy_header(np.dtype("<f4"), (1, 3)))
    real = H._npy_header

    def longer_when_short(dtype, shape):
        header = real(dtype, shape)
        if shape[0] == 10:
            return header
        # still a valid .npy 1.0 header, 64-byte aligned: 64 more spaces of padding, and the length field to match
        text = header[10:-1] + b" " * 64 + b"\n"
        return header[:8] + len(text).to_bytes(2, "little") + text

    monkeypatch.setattr(H, "_npy_header", longer_when_short)
    a = np.arange(13 * 3, dtype=np.float32).reshape(13, 3)
    for background in (False, True):
        out = tmp_path / f"w{background}"
        with H.ActivationWriter(out, chunk_rows=10, background=background) as w:
            w.add("m", a[:4])
            w.add("m", a[4:])
        assert (out / "m" / "chunk-000000.npy").read_bytes() == _npy_bytes(a[:10])
        last = (out / "m" / "chunk-000001.npy").read_bytes()
        assert last == longer_when_short(np.dtype("<f4"), (3, 3)) + a[10:].tobytes()
        np.testing.assert_array_equal(H.read_activations(out)["m"], a)
        assert not list(out.rglob("*.tmp"))


def test_background_writer_queue_is_bounded(tmp_path, monkeypatch):
    slow = H.ActivationWriter._write_rows

    def write_slowly(self, name, a):
        time.sleep(0.01)
        slow(self, name, a)

    monkeypatch.setattr(H.ActivationWriter, "_write_rows", write_slowly)
    row = np.ones((4, 8), np.float32)  # 128 bytes per add
    seen = []
    with H.ActivationWriter(tmp_path / "w", chunk_rows=6, background=True, queue_bytes=300) as w:
        for _ in range(12):
            w.add("m", row)
            seen.append(w._queued)
    assert max(seen) <= 300 and max(seen) >= 128  # adds waited for room instead of piling up
    np.testing.assert_array_equal(H.read_activations(tmp_path / "w")["m"], np.ones((48, 8), np.float32))


def test_background_writer_error_surfaces_in_the_caller(tmp_path, monkeypatch):
    real = H.ActivationWriter._write_rows
    calls = []

    def fail_third(self, name, a):
        calls.append(name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(self, name, a)

    monkeypatch.setattr(H.ActivationWriter, "_write_rows", fail_third)
    out = tmp_path / "w"
    _assert_error_surfaces(H.ActivationWriter(out, chunk_rows=3, background=True), 2, "No space left")
    with pytest.raises(H.DataError, match="did not finish"):
        H.ActivationStore(out)


def _assert_error_surfaces(w, rows: int, match: str) -> None:
    """A writer error raised off the caller's thread shows up at a later `add` (or at `close`); abort leaves no
    index.json and no temporary file."""
    with pytest.raises(OSError, match=match):
        for _ in range(50):
            w.add("m", np.zeros((rows, 4), np.float32))
            time.sleep(0.002)
        w.close()
    w.abort()
    assert not (w.out_dir / "index.json").exists() and not list(w.out_dir.rglob("*.tmp"))


@pytest.mark.parametrize("background", [False, True])
def test_writers_commit_off_the_caller_thread_and_surface_commit_errors(tmp_path, monkeypatch, background):
    import threading

    real = AtomicFile.commit
    where, fail_at = [], [None]

    def commit(self):
        where.append(threading.current_thread().name)
        if len(where) == fail_at[0]:
            raise OSError(5, "Input/output error")
        return real(self)

    monkeypatch.setattr(AtomicFile, "commit", commit)
    ok = tmp_path / "ok"
    with H.ActivationWriter(ok, chunk_rows=3, background=background) as w:
        w.add("m", np.arange(6 * 4, dtype=np.float32).reshape(6, 4))  # two full chunks
        w.add("m", np.ones((1, 4), np.float32))  # a short last chunk, committed by close
    # fsync + rename on the committer threads, never on the caller's (nor on the background writer's)
    assert all(n.startswith("rote-activations-commit:ok") for n in where[:3]), where
    assert where[3:] == ["MainThread"], where  # index.json, written by close after every chunk
    np.testing.assert_array_equal(H.read_activations(ok)["m"][:6], np.arange(24, dtype=np.float32).reshape(6, 4))
    fail_at[0] = len(where) + 2  # the second chunk of the next writer
    _assert_error_surfaces(H.ActivationWriter(tmp_path / "w", chunk_rows=3, background=background), 3, "Input/output")


def test_chunk_commits_wait_on_the_disk_together(tmp_path, monkeypatch):
    """The last chunks of several modules, all finished by close, are committed concurrently: each commit here
    waits until three are in flight at once (a one-thread committer would time out)."""
    import threading

    real, meet = AtomicFile.commit, threading.Barrier(3, timeout=10)

    def commit(self):
        if self.path.suffix == ".npy":
            meet.wait()
        return real(self)

    monkeypatch.setattr(AtomicFile, "commit", commit)
    for background in (False, True):
        out = tmp_path / f"bg{background}"
        with H.ActivationWriter(out, chunk_rows=8, background=background) as w:
            for name in ("a", "b", "c"):
                w.add(name, np.full((5, 2), ord(name), np.float32))
        assert {n: a[:, 0].tolist() for n, a in H.read_activations(out).items()} == {
            n: [float(ord(n))] * 5 for n in "abc"
        }


def test_capture_background_and_synchronous_files_identical(tmp_path):
    backend = TinyGPTBackend(build_model(TinyGPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=16), seed=3))
    rng = np.random.default_rng(0)
    ids = [rng.integers(0, 256, size=n).tolist() for n in (20, 9, 31, 20, 5)]  # padding in some batches
    stores = {}
    for background in (True, False):
        stores[background] = backend.capture_hidden_states(
            ids, tmp_path / str(background), sites=SITES, batch_size=2, chunk_rows=16, background=background
        )
    a, b = _files(tmp_path / "True"), _files(tmp_path / "False")
    assert (
        a.keys() == b.keys() and len([k for k in a if k.endswith(".npy")]) == 6 * 6
    )  # 6 modules x ceil(85 tokens / 16) chunks
    assert all(a[k] == b[k] for k in a if k.endswith(".npy") or k == "index.json")
    hs = backend.hidden_states(ids, sites=SITES)
    for (la, si), name in backend.site_modules(None, SITES).items():
        np.testing.assert_allclose(stores[True].load(name), np.concatenate(hs[(la, si)]), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- the fit


def _problems(seed: int = 0):
    """6 problems of 400 rows: signal strengths from none to near-separable (they converge at different steps),
    and anisotropic, correlated features (an ill-conditioned Hessian, as activations give)."""
    rng = np.random.default_rng(seed)
    n, c = 400, 40
    mix = rng.normal(size=(c, c)) * np.logspace(0, -2, c)
    base = rng.normal(size=(n, c)) @ mix
    y = (base @ rng.normal(size=c) + rng.normal(size=n) > 0).astype(float)
    x = np.stack(
        [base + s * np.outer(y - 0.5, rng.normal(size=c)) + rng.normal(size=(n, c)) * 0.3 for s in (0, 0.5, 1, 2, 4, 8)]
    )
    return x * rng.uniform(0.5, 20, size=c) + 3.0, y


def test_fit_same_optimum_whatever_block_or_solver():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _problems()
    ref = LogisticProbes(1.0, direct_max=1_000, block_bytes=1 << 40).fit(x, y)  # exact Newton, one batch
    for kw in (
        {"direct_max": 1},
        {"direct_max": 1, "block_bytes": 1},
        {"block_bytes": 1},
        {"direct_max": 1, "block_bytes": 1 << 40},
    ):
        got = LogisticProbes(1.0, **kw).fit(x, y)
        np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-4, atol=1e-5)  # both stop at tol = 1e-7
        # the intercept of the near-separable problems is the least determined: both stop at tol, ~1e-5 apart
        np.testing.assert_allclose(got.intercept_, ref.intercept_, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got.decision_function(x), ref.decision_function(x), atol=1e-4)
        np.testing.assert_allclose(got.mean_, x.mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose(got.scale_, x.std(axis=1), rtol=1e-10)
    for p in (0, 5):  # and scikit-learn's optimum, solved tightly (no signal; near-separable)
        sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=100_000).fit(StandardScaler().fit_transform(x[p]), y)
        np.testing.assert_allclose(ref.coef_[p], sk.coef_[0], rtol=1e-4, atol=1e-5)
    # the float32 input is converted block by block, to the same result as float64 input rounded alike
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(
        LogisticProbes(1.0, direct_max=1).fit(x32, y).coef_,
        LogisticProbes(1.0, direct_max=1).fit(x32.astype(np.float64), y).coef_,
        rtol=1e-12,
        atol=1e-14,
    )


def test_pcg_preconditioned_by_a_stale_factor_solves_the_system():
    from rote.llm.probes import _batched_pcg, _cholesky_solve, _hessian_factor

    rng = np.random.default_rng(2)
    Z = torch.as_tensor(rng.normal(size=(3, 200, 12)) * np.logspace(0, -1.5, 12))
    d_old, d_new = torch.full((3, 200), 0.25), torch.as_tensor(rng.uniform(0.01, 0.25, size=(3, 200)))
    reg = torch.ones(12, dtype=torch.float64)
    Hn = torch.einsum("pnc,pn,pnd->pcd", Z, d_new, Z) + torch.diag(reg)
    U = _hessian_factor(Z.float(), d_old, reg)  # the Hessian of an earlier step
    Ho = torch.einsum("pnc,pn,pnd->pcd", Z, d_old, Z) + torch.diag(reg)
    np.testing.assert_allclose((U.mT @ U).numpy(), Ho.numpy(), rtol=1e-5, atol=1e-4)  # H = U^T U
    b = torch.as_tensor(rng.normal(size=(3, 12)))
    b[1] = 0.0  # a converged problem: zero right-hand side, zero solution
    x, steps = _batched_pcg(
        lambda v: (Hn @ v.unsqueeze(2)).squeeze(2), b, lambda r: _cholesky_solve(U, r), 50, torch.full((3,), 1e-10)
    )
    np.testing.assert_allclose(
        x.numpy(), torch.linalg.solve(Hn, b.unsqueeze(2)).squeeze(2).numpy(), rtol=1e-7, atol=1e-9
    )
    assert bool((x[1] == 0).all()) and 1 <= steps <= 13  # CG ends within the dimension (12, plus rounding)


# ---------------------------------------------------------------------------------------------- writer choice, float16


def test_background_writer_only_when_torch_leaves_a_core_free(tmp_path, monkeypatch):
    import os

    if hasattr(os, "sched_getaffinity"):
        assert H.usable_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setattr(H, "usable_cores", lambda: 2)
    for threads, pays in ((1, True), (2, False), (3, False)):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        assert H.writer_thread_pays() is pays
        w = H.ActivationWriter(tmp_path / f"auto{threads}", background=None)
        assert w.background is pays and (w._thread is not None) is pays
        w.close()
        for explicit in (True, False):  # an explicit choice wins over the rule
            w = H.ActivationWriter(tmp_path / f"w{threads}{explicit}", background=explicit)
            assert w.background is explicit
            w.close()
    # capture_to_disk and the backends' captures default to the rule
    seen = []

    class Spy(H.ActivationWriter):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            seen.append(self.background)

    monkeypatch.setattr(H, "ActivationWriter", Spy)
    backend = TinyGPTBackend(build_model(TinyGPTConfig(block_size=32, n_layer=1, n_head=2, n_embd=8), seed=0))
    for threads, pays in ((1, True), (2, False)):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        backend.capture_hidden_states([[1, 2, 3, 4]], tmp_path / f"cap{threads}")
        assert seen[-1] is pays


def test_float16_capture_is_float32_rounded_and_refuses_overflow(tmp_path):
    from rote.llm.backends.torch_lm import Float16Overflow

    backend = TinyGPTBackend(build_model(TinyGPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=16), seed=3))
    rng = np.random.default_rng(1)
    ids = [rng.integers(0, 256, size=n).tolist() for n in (20, 9, 31)]
    s32 = backend.capture_hidden_states(ids, tmp_path / "f32", sites=SITES, batch_size=2)
    s16 = backend.capture_hidden_states(ids, tmp_path / "f16", sites=SITES, batch_size=2, dtype="float16")
    for name in s32.names:  # the float16 rows are the float32 rows rounded (numpy's cast), nothing else
        a16 = s16.load(name)
        assert a16.dtype == np.float16
        np.testing.assert_array_equal(a16, s32.load(name).astype(np.float16))
    # embeddings scaled past float16's range (65504): refused with the fix, and no folder (nor inf) left behind
    with torch.no_grad():
        backend.model.wte.weight.mul_(1e7)
    big = backend.capture_hidden_states(ids, tmp_path / "big32", sites=["resid"], batch_size=2)
    peak = max(float(np.abs(big.load(n)).max()) for n in big.names)
    assert np.isfinite(peak) and peak > 65504
    with pytest.raises(Float16Overflow, match=r"exceeds float16's largest value 65504; capture with `dtype` float32"):
        backend.capture_hidden_states(ids, tmp_path / "big16", sites=["resid"], batch_size=2, dtype="float16")
    assert not (tmp_path / "big16").exists()
    assert issubclass(Float16Overflow, H.DataError)


def test_parallel_blocks_same_optimum_one_thread_each_and_threads_restored():
    from rote.llm.probes import _map_one_thread_each

    x, y = _problems(1)
    torch.set_num_threads(2)
    try:
        seen = _map_one_thread_each(lambda i: (i, torch.get_num_threads()), range(5), 2)
        assert seen == [(i, 1) for i in range(5)]  # in order, each on one torch thread
        assert torch.get_num_threads() == 2  # restored
        for kw in ({}, {"direct_max": 1}, {"block_bytes": 1 << 40}):  # one problem per block, or 3 per worker
            par = LogisticProbes(1.0, **kw).fit(x, y)
            seq = LogisticProbes(1.0, parallel=False, **kw).fit(x, y)
            np.testing.assert_allclose(par.coef_, seq.coef_, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(par.intercept_, seq.intercept_, rtol=1e-4, atol=1e-6)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_next_token_stats_against_log_softmax():
    from rote.llm.backends.torch_lm import next_token_stats

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 37, 50, generator=g) * 4
    logits[:, :, 7] = logits.amax(-1)  # ties with the max: the first maximal index wins, as with argmax
    ids = torch.randint(0, 50, (3, 37), generator=g)
    ids[0, 1:] = logits[0, :-1].argmax(-1)  # a row of hits
    ref = torch.log_softmax(logits.double(), -1)[:, :-1].gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
    for rows in (1, 5, 16, 64, None):  # chunks that divide the 37 positions and some that do not; auto
        lp, top1 = next_token_stats(logits, ids, rows=rows)
        assert lp.shape == top1.shape == (3, 36)
        np.testing.assert_allclose(lp.numpy(), ref.numpy(), atol=1e-5)
        assert torch.equal(top1, logits[:, :-1].argmax(-1) == ids[:, 1:]) and bool(top1[0].all())
    lp16, _ = next_token_stats(logits.half(), ids)  # half logits: computed in float32
    np.testing.assert_allclose(lp16.numpy(), ref.numpy(), atol=0.05)
