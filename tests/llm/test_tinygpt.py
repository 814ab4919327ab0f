"""rote's tiny GPT: the model's cached/padded decoding against its plain forward pass, training, resume, backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from rote_testing import kill_when_ready

from rote.core.errors import BackendError, ConfigError, DataError
from rote.llm import open_backend
from rote.llm.tinygpt import (
    ByteTokenizer,
    TinyGPT,
    TinyGPTBackend,
    TinyGPTConfig,
    build_model,
    load_model,
    train_tiny_gpt,
)

torch.set_num_threads(1)

SMALL = TinyGPTConfig(block_size=48, n_layer=2, n_head=2, n_embd=32)
TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    res = train_tiny_gpt(
        TEXT, SMALL, steps=150, batch_size=16, lr=1e-2, seed=0, out_dir=out, checkpoint_every=50, warmup=10
    )
    return out, res


def test_byte_tokenizer_round_trip_any_text():
    tok = ByteTokenizer()
    for text in ["", "plain ascii", "naïve café — ünïcödé ✓", "tab\tnew\nline"]:
        ids = tok.encode(text)
        assert ids == list(text.encode("utf-8"))
        assert tok.decode(ids) == text
    assert tok.decode([0xE2, 0x80]) == "\ufffd"  # a generation cut mid-character decodes, it does not raise


def test_config_validation():
    with pytest.raises(ConfigError, match="divisible"):
        TinyGPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ConfigError, match="n_layer"):
        TinyGPTConfig(n_layer=0)


def test_param_count_matches_formula():
    cfg = TinyGPTConfig()  # the default used for the KJV experiments
    m = TinyGPT(cfg)
    c, v, t, L = cfg.n_embd, cfg.vocab_size, cfg.block_size, cfg.n_layer
    per_block = 2 * 2 * c + (3 * c * c + 3 * c) + (c * c + c) + (4 * c * c + 4 * c) + (4 * c * c + c)
    assert m.n_params() == v * c + t * c + L * per_block + 2 * c  # head tied to the token embedding
    assert 1_000_000 <= m.n_params() <= 3_000_000


def test_cached_padded_step_equals_plain_forward():
    model = build_model(SMALL, seed=1).eval()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 256, n).tolist() for n in (7, 12, 3)]
    with torch.no_grad():
        plain = [model(torch.tensor([s]))[0] for s in seqs]  # (n, V) each, no padding, no cache
        # left-padded batch, prompt minus its last 2 tokens first, then the last 2 tokens one at a time via the cache
        t = max(len(s) for s in seqs)
        ids = torch.zeros((3, t), dtype=torch.long)
        mask = torch.zeros((3, t), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, t - len(s) :] = torch.tensor(s)
            mask[r, t - len(s) :] = 1
        pos = (mask.cumsum(1) - 1).clamp_min(0)
        logits, cache = model.step(ids[:, :-2], mask[:, :-2], pos[:, :-2], None)
        for r, s in enumerate(seqs):
            n = len(s) - 2
            if n > 0:
                torch.testing.assert_close(logits[r, t - 2 - n :], plain[r][:n], atol=1e-5, rtol=1e-4)
        for j in (2, 1):
            logits, cache = model.step(
                ids[:, t - j : t - j + 1], mask[:, : t - j + 1], pos[:, t - j : t - j + 1], cache
            )
            for r, s in enumerate(seqs):
                torch.testing.assert_close(logits[r, 0], plain[r][len(s) - j], atol=1e-5, rtol=1e-4)


def test_seed_fixes_initial_weights_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    a, b, c = build_model(SMALL, 0), build_model(SMALL, 0), build_model(SMALL, 1)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.wte.weight, c.wte.weight)


def test_training_lowers_loss_and_memorizes_repeated_text(trained):
    out, res = trained
    assert (out / "model.pt").is_file() and (out / "train_log.json").is_file()
    log = __import__("json").loads((out / "train_log.json").read_text())["step_loss"]
    assert log[0][1] > 4.0  # ~ln(256) = 5.5 at the start
    assert res.final_loss < 1.0
    backend = open_backend(f"tiny:{out}")
    new = backend.decode(backend.generate(backend.encode(["the cat sat on the "]), 20))[0]
    assert new == "mat. the dog sat on "  # the corpus is one sentence pair repeated: greedy decoding recites it


def test_same_seed_same_weights_and_resume_is_exact(tmp_path):
    kw = dict(steps=12, batch_size=4, lr=3e-3, warmup=3)
    a = train_tiny_gpt(TEXT, SMALL, seed=5, out_dir=tmp_path / "a", checkpoint_every=100, **kw)
    b = train_tiny_gpt(TEXT, SMALL, seed=5, out_dir=tmp_path / "b", checkpoint_every=100, **kw)
    ma, mb = load_model(a.out_dir / "model.pt"), load_model(b.out_dir / "model.pt")
    assert all(torch.equal(p, q) for p, q in zip(ma.parameters(), mb.parameters()))
    # interrupt after 9 steps (last checkpoint at 8), then resume: same weights as the uninterrupted run
    calls = []

    def interrupt(n):
        calls.append(n)
        if len(calls) == 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_tiny_gpt(TEXT, SMALL, seed=5, out_dir=tmp_path / "c", checkpoint_every=4, progress=interrupt, **kw)
    assert not (tmp_path / "c" / "model.pt").exists()
    c = train_tiny_gpt(TEXT, SMALL, seed=5, out_dir=tmp_path / "c", checkpoint_every=4, **kw)
    assert c.resumed_from == 8
    mc = load_model(c.out_dir / "model.pt")
    assert all(torch.equal(p, q) for p, q in zip(ma.parameters(), mc.parameters()))
    d = train_tiny_gpt(TEXT, SMALL, seed=6, out_dir=tmp_path / "d", checkpoint_every=100, **kw)
    assert not torch.equal(load_model(d.out_dir / "model.pt").wte.weight, ma.wte.weight)
    with pytest.raises(ConfigError, match="another config or seed"):
        train_tiny_gpt(TEXT, SMALL, seed=9, out_dir=tmp_path / "c", checkpoint_every=4, **kw)


def test_training_input_errors(tmp_path):
    with pytest.raises(DataError, match="fewer than one window"):
        train_tiny_gpt("short", SMALL, steps=1, out_dir=tmp_path)
    with pytest.raises(DataError, match="ids must lie"):
        train_tiny_gpt(np.arange(1000) % 300, SMALL, steps=1, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="steps"):
        train_tiny_gpt(TEXT, SMALL, steps=0, out_dir=tmp_path)
    assert not (tmp_path / "model.pt").exists()


def test_token_stream_and_list_inputs_train_the_same(tmp_path):
    texts = ["alpha beta gamma delta"] * 10
    a = train_tiny_gpt(texts, SMALL, steps=3, batch_size=2, seed=0, out_dir=tmp_path / "a", warmup=1)
    ids = np.frombuffer("\n".join(texts).encode(), dtype=np.uint8).astype(np.int64)
    b = train_tiny_gpt(ids, SMALL, steps=3, batch_size=2, seed=0, out_dir=tmp_path / "b", warmup=1)
    assert a.n_tokens == b.n_tokens == ids.size
    assert torch.equal(load_model(a.out_dir / "model.pt").wte.weight, load_model(b.out_dir / "model.pt").wte.weight)


def test_backend_load_errors(tmp_path, trained):
    with pytest.raises(BackendError, match="no such folder"):
        open_backend(f"tiny:{tmp_path / 'nope'}")
    with pytest.raises(BackendError, match="holds no tiny GPT"):
        open_backend(f"tiny:{tmp_path}")
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BackendError, match="junk.pt"):
        open_backend(f"tiny:{bad}")
    # a training checkpoint loads too (the newest one when model.pt is absent)
    ck = sorted((trained[0] / "checkpoints").glob("step-*.pt"))[-1]
    b = TinyGPTBackend.load(ck)
    assert b.max_length == SMALL.block_size and b.supports_token_ids and b.supports_logprobs
    assert b.describe()["config"] == dataclasses.asdict(SMALL)


def test_context_limit_is_a_clear_error(trained):
    b = open_backend(f"tiny:{trained[0]}")
    with pytest.raises(BackendError, match="exceed .* context of 48"):
        b.generate([[1] * 40], 10)
    with pytest.raises(BackendError, match="exceed"):
        b.score([[1] * 49])
    with pytest.raises(BackendError, match="token id 256"):
        b.score([[1, 256]])


_KILL_SCRIPT = """
import sys, time, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from llm.test_tinygpt import SMALL, TEXT
from rote.llm.tinygpt import train_tiny_gpt

calls = []
def hang(n):
    calls.append(n)
    if len(calls) == 9:  # steps 4 and 8 are checkpointed; step 9 is trained but not saved
        open({ready!r}, "w").close()
        time.sleep(60)

train_tiny_gpt(TEXT, SMALL, steps=12, batch_size=4, lr=3e-3, warmup=3, seed=5, out_dir={out!r}, checkpoint_every=4,
               log_every=2, progress=hang)
"""


def test_resume_after_sigkill_gives_the_uninterrupted_weights_and_log(tmp_path):
    import json
    from pathlib import Path

    tests = str(Path(__file__).resolve().parents[1])
    out, ready = tmp_path / "killed", tmp_path / "ready"
    kill_when_ready(_KILL_SCRIPT.format(tests=tests, ready=str(ready), out=str(out)), ready)
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["step-000004.pt", "step-000008.pt"]
    assert not (out / "model.pt").exists()
    kw = dict(steps=12, batch_size=4, lr=3e-3, warmup=3, seed=5, checkpoint_every=4, log_every=2)
    full = train_tiny_gpt(TEXT, SMALL, out_dir=tmp_path / "full", **kw)
    resumed = train_tiny_gpt(TEXT, SMALL, out_dir=out, **kw)
    assert resumed.resumed_from == 8 and resumed.final_loss == full.final_loss
    ma, mb = load_model(full.out_dir / "model.pt"), load_model(out / "model.pt")
    assert all(torch.equal(p, q) for p, q in zip(ma.parameters(), mb.parameters()))
    log = lambda d: json.loads((d / "train_log.json").read_text())["step_loss"]  # noqa: E731
    assert log(out) == log(full.out_dir) and [s for s, _ in log(out)] == [1, 3, 5, 7, 9, 11, 12]
