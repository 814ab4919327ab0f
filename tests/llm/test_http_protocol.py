"""HTTP measurements that mean what they say, against the real local server (tests/llm/openai_server.py) serving a
tiny GPT: the cache key holds the endpoint, sampled prompts get their own seeds, plain continuation and scoring go
through /v1/completions (echo + logprobs, vLLM's prompt_logprobs) and agree with the local model, output filtering
is counted apart from refusals, error objects in 200 responses show the server's message, keyless servers, and
concurrent requests under the rate limit."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rote.core.errors import BackendError, ConfigError
from rote.llm import open_backend
from rote.llm.backends.openai import prompt_seed
from rote.llm.extraction import extract, prompted_extraction
from rote.llm.membership import membership_inference

from .conftest import NGramBackend

torch.set_num_threads(1)

_spec = importlib.util.spec_from_file_location("rote_tests_openai_server", Path(__file__).with_name("openai_server.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
OpenAIServer = _mod.OpenAIServer

TEXTS = [
    "In the beginning God created the heaven and the earth. And the earth was without form, and void.",
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty.",
    "We the People of the United States, in Order to form a more perfect Union, establish Justice, insure domestic.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.",
]


@pytest.fixture(scope="module")
def model():
    # a character n-gram model that has memorized TEXTS (greedy copies them; samples stray with probability ~0.3
    # per character), so text round trips are exact and samples differ
    return NGramBackend(TEXTS, order=12, lam=0.3, name="served")


@pytest.fixture()
def server(model):
    with OpenAIServer(model, model="tiny") as s:
        yield s


def client(server, tmp_path, **kw):
    kw.setdefault("api_key_env", None)
    kw.setdefault("backoff", 0.01)
    return open_backend("openai:tiny", base_url=server.base_url, cache_dir=str(tmp_path / "cache"), **kw)


def test_cache_key_holds_the_endpoint(model, tmp_path):
    with OpenAIServer(model) as a, OpenAIServer(model) as b:
        client(a, tmp_path).complete(TEXTS[:2], 4)
        assert a.n_answered == 2
        # a second server with the same model name: its own requests, not the first server's answers
        out = client(b, tmp_path).complete(TEXTS[:2], 4)
        assert b.n_answered == 2 and not any(o.cached for o in out)
        again = client(b, tmp_path).complete(TEXTS[:2], 4)
        assert all(o.cached for o in again) and b.n_answered == 2
        # every parameter that changes the answer is in the key: max_completion_tokens vs max_tokens
        client(b, tmp_path, max_tokens_field="max_completion_tokens").complete(TEXTS[:1], 4)
        assert b.n_answered == 3 and b.log[-1]["body"]["max_completion_tokens"] == 4
        assert "max_tokens" not in b.log[-1]["body"]


@pytest.mark.parametrize("cache", [True, False])
def test_sampled_prompts_get_their_own_seeds(server, tmp_path, cache):
    c = client(server, tmp_path, cache=cache, temperature=1.0)
    out = c.complete([TEXTS[0]] * 4, 12, greedy=False, seed=3)
    seeds = [r["body"]["seed"] for r in server.log]
    assert seeds == [prompt_seed(3, i) for i in range(4)] and len(set(seeds)) == 4
    assert len({o.text for o in out}) == 4  # four samples, four different answers
    again = client(server, tmp_path, cache=cache).complete([TEXTS[0]] * 4, 12, greedy=False, seed=3)
    assert [o.text for o in again] == [o.text for o in out]  # same seed, same samples
    assert all(o.cached for o in again) == cache
    other = client(server, tmp_path, cache=cache).complete([TEXTS[0]] * 4, 12, greedy=False, seed=4)
    assert [o.text for o in other] != [o.text for o in out]
    # greedy requests send the seed as given
    client(server, tmp_path, cache=cache).complete(TEXTS[:2], 3, seed=9)
    assert [r["body"]["seed"] for r in server.log[-2:]] == [9, 9]


def test_plain_continuation_over_http_equals_the_local_model(server, model, tmp_path):
    c = client(server, tmp_path, tokenizer=model)
    assert c.supports_token_ids and c.supports_logprobs
    remote = extract(c, TEXTS, prefix_tokens=(20, 40), suffix_tokens=16, n_boot=0)
    local = extract(model, TEXTS, prefix_tokens=(20, 40), suffix_tokens=16, n_boot=0)
    assert {r["path"] for r in server.log} == {"/v1/completions"}
    assert remote.rows["generated_text"].tolist() == local.rows["generated_text"].tolist()
    # p(suffix) from echo + logprobs equals the local forward pass
    np.testing.assert_allclose(remote.rows["logp_suffix"], local.rows["logp_suffix"], atol=1e-6)
    # sampled continuations: one seed per sample, counted
    s = extract(c, TEXTS, prefix_tokens=(40,), suffix_tokens=8, n_sampled=3, n_boot=0, seed=1)
    assert (s.rows["sampled_exact"] <= 3).all() and s.n_sampled == 3
    sent = [r["body"]["seed"] for r in server.log if r["body"].get("temperature")]
    assert len(sent) == 3 * len(TEXTS) and len(set(sent)) >= len(TEXTS)


@pytest.mark.parametrize("vllm", [False, True])
def test_scores_over_http_agree_with_the_local_model(server, model, tmp_path, vllm):
    c = client(server, tmp_path, tokenizer=model, prompt_logprobs=vllm)
    ids = model.encode(TEXTS)
    remote, local = c.score(ids), model.score(ids)
    for r, loc in zip(remote, local):
        np.testing.assert_allclose(r.logprobs, loc.logprobs, atol=1e-6)
    body = server.log[0]["body"]
    assert body.get("prompt_logprobs") == 0 if vllm else (body["echo"] is True and body["logprobs"] == 1)
    mem_r = membership_inference(c, TEXTS[:2], TEXTS[2:], n_boot=0)
    mem_l = membership_inference(model, TEXTS[:2], TEXTS[2:], n_boot=0)
    for a in ("loss", "zlib", "min_k"):
        assert mem_r.metrics[a]["auc"] == mem_l.metrics[a]["auc"]
        np.testing.assert_allclose(mem_r.rows[a], mem_l.rows[a], atol=1e-9)
    assert "min_k_plus_plus" not in mem_r.attacks and "min_k_plus_plus" in mem_r.unavailable


def test_endpoints_that_cannot_score_or_continue_say_so(server, model, tmp_path):
    server.chat_only(True)
    c = client(server, tmp_path, tokenizer=model)
    with pytest.raises(BackendError, match="HTTP 404.*use chat/completions"):
        extract(c, TEXTS, prefix_tokens=(20,), suffix_tokens=8, n_boot=0)
    with pytest.raises(BackendError, match="plain continuation needs /v1/completions"):
        client(server, tmp_path, tokenizer=model, api="chat").generate([[65, 66]], 3)
    with pytest.raises(ConfigError, match="greedy extraction needs token ids.*--tokenizer"):
        extract(client(server, tmp_path), TEXTS)
    server.chat_only(False)
    c2 = client(server, tmp_path, tokenizer=model, logprobs=False)
    # a server that answers echo without log-probabilities
    data = {"choices": [{"text": "x", "logprobs": None}]}
    with pytest.raises(BackendError, match="cannot score given text"):
        c2._prompt_logprobs(data, "abc")


def test_filtered_answers_are_counted_apart_from_refusals(server, tmp_path):
    server.filter_when("four")  # "Four score": lower-case 'four' never occurs -> use the prompt text below
    server.filter_when("Four score")
    server.refuse_when("People")
    c = client(server, tmp_path)
    res = prompted_extraction(c, TEXTS, prefix_tokens=(5,), templates=("plain",), max_new_tokens=8, n_boot=0)
    rows = res.rows.set_index("id")
    assert rows.loc["t1", "filtered"] and not rows.loc["t1", "refused"]
    assert rows.loc["t1", "finish_reason"] == "content_filter"
    assert rows.loc["t2", "refused"] and not rows.loc["t2", "filtered"]
    assert res.filtered_rate == {"plain": 0.25} and res.refusal_rate == {"plain": 0.25}
    g = res.groups.iloc[0]
    assert g["filtered_rate"] == 0.25 and g["filtered_high"] > 0.25 and g["refusal_low"] < 0.25


def test_a_200_error_object_shows_the_servers_message(server, tmp_path):
    server.error_when("beginning")
    with pytest.raises(BackendError, match="the server answered with an error: model overloaded"):
        client(server, tmp_path).complete([TEXTS[0]], 4)


def test_keyless_server_sends_no_authorization(server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    c = client(server, tmp_path, api_key_env="none")
    c.complete([TEXTS[0]], 2)
    assert "Authorization" not in server.log[0]["headers"] and c.describe()["api_key_env"] is None
    with pytest.raises(BackendError, match="OPENAI_API_KEY is not set"):
        client(server, tmp_path, api_key_env="OPENAI_API_KEY")


def test_concurrency_keeps_order_and_the_rate_limit(server, model, tmp_path):
    prompts = [t[:30] for t in TEXTS] * 2
    serial = client(server, tmp_path, cache=False).complete(prompts, 4)
    server.latency(0.15)
    t0 = time.monotonic()
    out = client(server, tmp_path, cache=False, concurrency=4).complete(prompts, 4)
    wall = time.monotonic() - t0
    assert [o.text for o in out] == [o.text for o in serial]
    assert wall < 8 * 0.15 * 0.75  # overlapping requests, not one after another
    server.latency(0.0)
    t0 = time.monotonic()
    client(server, tmp_path, cache=False, concurrency=4, requests_per_second=20).complete(prompts, 2)
    assert time.monotonic() - t0 >= 7 / 20  # 8 requests at most 20/s, even with 4 in flight
    with pytest.raises(BackendError, match="`concurrency` must be >= 1"):
        client(server, tmp_path, concurrency=0)
    with pytest.raises(BackendError, match="`timeout` must be > 0"):
        client(server, tmp_path, timeout=-1)
