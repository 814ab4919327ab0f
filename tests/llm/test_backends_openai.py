"""The OpenAI-compatible HTTP backend against a real local server (tests/llm/openai_server.py) serving a tiny GPT:
texts, chat, log-probabilities, retries, timeouts and resume from the cache, refusals, rate limit, and that the API
key never reaches a file."""

from __future__ import annotations

import importlib.util
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rote.core.errors import BackendError
from rote.core.runs import RunFolder
from rote.llm import open_backend
from rote.llm.backends.base import messages_to_text
from rote.llm.backends.openai import OpenAIBackend
from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model

torch.set_num_threads(1)

_spec = importlib.util.spec_from_file_location("rote_tests_openai_server", Path(__file__).with_name("openai_server.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
OpenAIServer = _mod.OpenAIServer

KEY = "sk-rote-test-7f3a9c1e5b2d4680-SECRET"
PROMPTS = [
    "In the beginning",
    "Four score and seven years ago",
    "We the People of the United States",
    "Call me",
    "It was the best of times",
]


@pytest.fixture(scope="module")
def model():
    return TinyGPTBackend(
        build_model(TinyGPTConfig(block_size=96, n_layer=2, n_head=2, n_embd=32), seed=11), name="served"
    )


@pytest.fixture()
def server(model):
    with OpenAIServer(model, model="tiny") as s:
        yield s


def client(server, tmp_path, **kw):
    kw.setdefault("api_key_env", None)
    kw.setdefault("backoff", 0.01)
    return open_backend("openai:tiny", base_url=server.base_url, cache_dir=str(tmp_path / "cache"), **kw)


def local_text(model, prompt, n):
    return model.decode(model.generate(model.encode([prompt]), n))[0]


def test_completions_and_chat_return_the_model_text_and_cache(server, model, tmp_path):
    c = client(server, tmp_path)
    assert isinstance(c, OpenAIBackend) and c.name == "openai:tiny"
    assert not c.supports_token_ids and not c.supports_logprobs
    chat = [{"role": "user", "content": "Recite the preamble"}]
    out = c.complete(PROMPTS[:2] + [chat], 12)
    assert [o.text for o in out[:2]] == [local_text(model, p, 12) for p in PROMPTS[:2]]
    assert out[2].text == local_text(model, messages_to_text(chat), 12)
    assert [r["path"] for r in server.log] == ["/v1/completions"] * 2 + ["/v1/chat/completions"]
    body = server.log[0]["body"]
    assert body == {"prompt": PROMPTS[0], "model": "tiny", "max_tokens": 12, "seed": 0, "temperature": 0.0}
    assert all(o.finish_reason == "length" and not o.cached and not o.refused for o in out)
    again = c.complete(PROMPTS[:2] + [chat], 12)
    assert [o.text for o in again] == [o.text for o in out] and all(o.cached for o in again)
    assert len(server.log) == 3  # nothing paid twice
    # a different parameter is a different request
    c.complete(PROMPTS[:1], 5)
    assert len(server.log) == 4


def test_api_modes(server, model, tmp_path):
    c = client(server, tmp_path, api="chat", system_prompt="Be exact.")
    out = c.complete(["Call me"], 6)
    assert server.log[-1]["path"] == "/v1/chat/completions"
    msgs = [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "Call me"}]
    assert server.log[-1]["body"]["messages"] == msgs
    assert out[0].text == local_text(model, messages_to_text(msgs), 6)
    with pytest.raises(BackendError, match="needs api='chat'"):
        client(server, tmp_path, api="completions").complete([[{"role": "user", "content": "x"}]], 3)
    with pytest.raises(BackendError, match="api="):
        client(server, tmp_path, api="grpc")


def test_logprobs_match_the_local_model(server, model, tmp_path):
    c = client(server, tmp_path, logprobs=True)
    for prompt in ([{"role": "user", "content": "Genesis"}], "In the beginning"):
        got = c.complete([prompt], 8)[0]
        text = messages_to_text(prompt) if isinstance(prompt, list) else prompt
        ids = model.encode([text])[0]
        new = model.generate([ids], 8)[0]
        expected = model.score([ids + new])[0].logprobs[len(ids) - 1 :]
        np.testing.assert_allclose(got.logprobs, expected, atol=1e-6)
    assert c.complete(["In the beginning"], 8)[0].cached  # logprobs come back from the cache too
    np.testing.assert_allclose(c.complete(["In the beginning"], 8)[0].logprobs, expected, atol=1e-6)


@pytest.mark.parametrize("status", [500, 429, 503])
def test_retries_after_injected_errors(server, model, tmp_path, status):
    c = client(server, tmp_path)
    server.fail_next(2, status)
    out = c.complete(["In the beginning"], 6)
    assert out[0].text == local_text(model, "In the beginning", 6)
    assert [r["status"] for r in server.log] == [status, status, 200]
    assert c.n_requests == 3


def test_gives_up_with_a_clear_error_and_keeps_earlier_answers(server, tmp_path):
    c = client(server, tmp_path, max_retries=2)
    server.fail_next(3, 502, after=1)
    with pytest.raises(BackendError, match=r"gave up after 3 attempts \(HTTP 502.*rerun to resume"):
        c.complete(PROMPTS[:2], 4)
    assert len(c.cache) == 1


def test_timeout_midway_then_resume_from_cache_loses_nothing(server, model, tmp_path):
    reference = [local_text(model, p, 10) for p in PROMPTS]
    c = client(server, tmp_path, timeout=0.3, max_retries=1)
    server.hang_next(2, 3.0, after=2)  # the 3rd prompt's request and its retry both hang
    with pytest.raises(BackendError, match="no answer within 0.3 s"):
        c.complete(PROMPTS, 10)
    assert len(c.cache) == 2
    answered_before = server.n_answered
    # the study is rerun (new client, same cache): the first two come from the cache, the rest are fetched
    c2 = client(server, tmp_path, timeout=5)
    out = c2.complete(PROMPTS, 10)
    assert [o.text for o in out] == reference
    assert [o.cached for o in out] == [True, True, False, False, False]
    new_answers = [r for r in server.log[len(server.log) - 3 :]]
    assert [r["body"]["prompt"] for r in new_answers] == PROMPTS[2:]
    assert server.n_answered >= answered_before + 3


def test_connection_refused_is_retried_then_reported(model, tmp_path):
    s = OpenAIServer(model).start()
    url = s.base_url
    s.stop()
    c = open_backend(
        "openai:tiny", base_url=url, api_key_env=None, cache_dir=str(tmp_path), max_retries=1, backoff=0.01
    )
    with pytest.raises(BackendError, match="connection failed"):
        c.complete(["x"], 2)
    assert c.n_requests == 2


def test_refusals_are_detected(server, tmp_path):
    server.refuse_when("New York Times")
    c = client(server, tmp_path)
    out = c.complete(["Here is the start of a New York Times article:", "In the beginning"], 5)
    assert out[0].refused and "can't" in out[0].text
    assert not out[1].refused
    custom = client(server, tmp_path, refusal_phrases=["beginning"], cache=False)
    assert not custom.complete(["Here is the start of a New York Times article:"], 5)[0].refused


def test_rate_limit_spaces_requests(server, tmp_path):
    c = client(server, tmp_path, requests_per_second=20, cache=False)
    t0 = time.monotonic()
    c.complete(PROMPTS, 2)
    assert time.monotonic() - t0 >= 4 / 20  # 5 requests at most 20/s: at least 4 gaps of 50 ms
    with pytest.raises(BackendError, match="requests_per_second"):
        client(server, tmp_path, requests_per_second=0)


def test_missing_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("ROTE_TEST_KEY", raising=False)
    with pytest.raises(BackendError, match="environment variable ROTE_TEST_KEY is not set"):
        open_backend("openai:gpt-4o", api_key_env="ROTE_TEST_KEY", cache_dir=str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        open_backend("openai:gpt-4o", cache_dir=str(tmp_path))
    with pytest.raises(BackendError, match="names no model"):
        open_backend("openai:")


def test_key_is_sent_but_never_written_anywhere(server, model, tmp_path, monkeypatch):
    monkeypatch.setenv("ROTE_TEST_KEY", KEY)
    server.require_key(KEY)
    c = client(server, tmp_path, api_key_env="ROTE_TEST_KEY", logprobs=True)
    out = c.complete(PROMPTS[:2] + [[{"role": "user", "content": "hi"}]], 6)
    assert server.log[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert out[0].text == local_text(model, PROMPTS[0], 6)
    # a rejected key: the server echoes it, the error message must not
    monkeypatch.setenv("ROTE_TEST_KEY", KEY + "-wrong")
    bad = client(server, tmp_path, api_key_env="ROTE_TEST_KEY")
    with pytest.raises(BackendError) as err:
        bad.complete(["Call me"], 3)
    assert "401" in str(err.value) and "ROTE_TEST_KEY" in str(err.value) and KEY not in str(err.value)
    # everything rote would write about this backend: the run config, describe(), the cache
    run = RunFolder(tmp_path / "run")
    run.write_config("llm extract", {"model": c.name, "backend": c.describe(), "error": str(err.value)})
    c.cache.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in files) and any(p.name == "config.json" for p in files)
    for p in files:
        assert KEY.encode() not in p.read_bytes(), p
    assert KEY not in repr(c.describe()) and KEY not in c.name
    rows = sqlite3.connect(tmp_path / "cache" / "http" / "responses.sqlite").execute("SELECT * FROM responses")
    assert len(rows.fetchall()) == 3


def test_token_level_methods_need_a_tokenizer(server, model, tmp_path):
    c = client(server, tmp_path)
    for call in (lambda: c.encode(["x"]), lambda: c.decode([[1]]), lambda: c.generate([[1]], 2)):
        with pytest.raises(BackendError, match="needs a local tokenizer"):
            call()
    with pytest.raises(BackendError, match="do not return log-probabilities"):
        c.score([[1, 2]])
    t = client(server, tmp_path, tokenizer=model)
    assert t.encode(["abc"]) == [[97, 98, 99]] and t.tokenizer_fingerprint == model.tokenizer_fingerprint
    ids = model.encode(["In the beginning"])
    # a round trip through text: the endpoint's text re-encoded locally (random bytes may not survive UTF-8)
    text = local_text(model, "In the beginning", 6)
    assert t.generate(ids, 6) == [model.encode([text])[0][:6]]


def test_bad_base_url_and_corrupt_cache(tmp_path):
    with pytest.raises(BackendError, match="must start with http"):
        open_backend("openai:m", base_url="localhost:8000", api_key_env=None, cache_dir=str(tmp_path))
    bad = tmp_path / "http" / "responses.sqlite"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(BackendError, match="not a usable response cache"):
        open_backend("openai:m", base_url="http://127.0.0.1:9/v1", api_key_env=None, cache_dir=str(tmp_path))


class _Counting(TinyGPTBackend):
    """A memoryless model that predicts byte b + 1 after byte b: on "abc...z" every next token is its top token,
    so the echo alignment check has evidence either way."""

    def _forward(self, input_ids, attention_mask, position_ids, cache, last_only):
        ids = input_ids[:, -1:] if last_only else input_ids
        return torch.nn.functional.one_hot((ids + 1) % 256, 256).double() * 8.0, None


def test_echo_scores_are_checked_for_llama_cpp_pythons_off_by_one(tmp_path):
    counting = _Counting(build_model(TinyGPTConfig(block_size=96, n_layer=1, n_head=1, n_embd=8), seed=0))
    ids = counting.encode(["abcdefghijklmnopqrstuvwxyz", "klmnopqrstuvwx"])
    with OpenAIServer(counting, model="tiny") as s:
        c = open_backend(
            "openai:tiny", base_url=s.base_url, api_key_env=None, tokenizer=counting, cache_dir=str(tmp_path)
        )
        got = c.score(ids)
        for g, want in zip(got, counting.score(ids)):
            np.testing.assert_allclose(g.logprobs, want.logprobs, rtol=1e-6)
        assert s.log[0]["body"]["logprobs"] == 1 and s.log[0]["body"]["echo"] is True
        s.shift_echo(True)
        c2 = open_backend(
            "openai:tiny", base_url=s.base_url, api_key_env=None, tokenizer=counting, cache_dir=str(tmp_path / "b")
        )
        with pytest.raises(
            BackendError, match=r"shifted by one token .*matched the next token 36 times, the token itself 0"
        ):
            c2.score(ids)


def test_extraction_goes_on_without_p_suffix_where_the_echo_is_shifted(tmp_path):
    from rote.llm.extraction import extract

    counting = _Counting(build_model(TinyGPTConfig(block_size=96, n_layer=1, n_head=1, n_embd=8), seed=0))
    texts = ["abcdefghijklmnopqrstuvwxyz0123", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"]
    with OpenAIServer(counting, model="tiny") as s:
        s.shift_echo(True)
        c = open_backend(
            "openai:tiny", base_url=s.base_url, api_key_env=None, tokenizer=counting, cache_dir=str(tmp_path)
        )
        with pytest.warns(UserWarning, match="p\\(suffix\\) and extraction risk not measured: .*shifted by one token"):
            res = extract(c, texts, prefix_tokens=(10,), suffix_tokens=8, n_boot=0)
    assert res.rows["exact_match"].tolist() == [True, True]  # b + 1 after b: both suffixes continue their prefix
    assert res.rows["logp_suffix"].isna().all()
