"""A real OpenAI-compatible HTTP server for tests: serves a local `Backend` on 127.0.0.1 (ephemeral port).

Endpoints: POST /v1/completions and /v1/chat/completions (OpenAI response shapes, with `logprobs` when asked;
/v1/completions also with `echo` (the prompt's tokens and log-probabilities before the answer's, with
`text_offset`) and vLLM's `prompt_logprobs`). Each request's `seed` drives its sampling, as llama.cpp and vLLM do.
Switches inject trouble into the next requests: `fail_next(n, status)` (e.g. 500 or 429 with Retry-After),
`hang_next(n, seconds)` (answer late, so a client with a shorter timeout gives up), `refuse_when(substring)`
(answer with a refusal), `filter_when(substring)` (an empty answer with finish_reason "content_filter"),
`error_when(substring)` (a 200 response carrying an error object), `require_key(key)` (401 without the right bearer
token), `chat_only(True)` (no /v1/completions: 404), `latency(seconds)` (every answer takes this long, for the
concurrency benchmark), `shift_echo(True)` (echoed prompt log-probabilities shifted by one token, as
llama-cpp-python returns them: abetlen/llama-cpp-python#1983). Every request is logged (path, JSON body,
headers) so tests can count calls and check what was sent.

    with OpenAIServer(backend) as server:
        client = OpenAIBackend("tiny", base_url=server.base_url, api_key_env=None)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rote.llm.backends.base import Backend, messages_to_text


class OpenAIServer:
    def __init__(self, backend: Backend, model: str = "tiny"):
        self.backend, self.model = backend, model
        self.log: list[dict[str, Any]] = []  # one entry per request received
        self._faults: list[tuple[str, Any]] = []  # queue of ("status", code) / ("hang", seconds)
        self._refuse: str | None = None
        self._filter: str | None = None
        self._error: str | None = None
        self._chat_only = False
        self._shift_echo = False
        self._latency = 0.0
        self._key: str | None = None
        self._lock = threading.Lock()
        self._release = threading.Event()  # set on stop so hanging handlers return at once
        self._httpd: ThreadingHTTPServer | None = None

    # switches ---------------------------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 500, *, after: int = 0) -> None:
        """Answer the `n` requests after the next `after` ones with HTTP `status` (429 carries Retry-After: 0)."""
        with self._lock:
            self._faults += [("ok", None)] * after + [("status", status)] * n

    def hang_next(self, n: int, seconds: float, *, after: int = 0) -> None:
        """Hold the `n` requests after the next `after` ones for `seconds` before answering."""
        with self._lock:
            self._faults += [("ok", None)] * after + [("hang", seconds)] * n

    def refuse_when(self, substring: str | None) -> None:
        self._refuse = substring

    def require_key(self, key: str | None) -> None:
        self._key = key

    def filter_when(self, substring: str | None) -> None:
        self._filter = substring

    def error_when(self, substring: str | None) -> None:
        self._error = substring

    def shift_echo(self, on: bool = True) -> None:
        """Echo each prompt token's log-probability under the distribution *after* it (and that distribution's
        top token), llama-cpp-python's off-by-one."""
        self._shift_echo = on

    def chat_only(self, on: bool = True) -> None:
        self._chat_only = on

    def latency(self, seconds: float) -> None:
        self._latency = seconds

    @property
    def n_answered(self) -> int:
        return sum(1 for r in self.log if r["status"] == 200)

    # lifecycle --------------------------------------------------------------------------------------
    def start(self) -> "OpenAIServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                entry = {"path": self.path, "body": body, "headers": dict(self.headers), "status": None}
                with server._lock:
                    server.log.append(entry)
                    fault = server._faults.pop(0) if server._faults else None
                if server._key is not None and self.headers.get("Authorization") != f"Bearer {server._key}":
                    # echo the bearer token like real APIs do, so tests see that the client scrubs it
                    got = self.headers.get("Authorization", "")
                    return self._send(entry, 401, {"error": {"message": f"Incorrect API key provided: {got}"}})
                if fault and fault[0] == "status":
                    extra = {"Retry-After": "0"} if fault[1] == 429 else {}
                    return self._send(entry, fault[1], {"error": {"message": f"injected {fault[1]}"}}, extra)
                if fault and fault[0] == "hang":
                    server._release.wait(fault[1])
                if server._latency:
                    server._release.wait(server._latency)
                text_in = json.dumps(body.get("prompt", body.get("messages", "")))
                if server._error is not None and server._error in text_in:
                    return self._send(entry, 200, {"error": {"message": "model overloaded, try again later"}})
                if self.path == "/v1/completions" and server._chat_only:
                    return self._send(entry, 404, {"error": {"message": "This is a chat model: use chat/completions"}})
                if self.path == "/v1/completions":
                    return self._send(entry, 200, server._answer(body, chat=False))
                if self.path == "/v1/chat/completions":
                    return self._send(entry, 200, server._answer(body, chat=True))
                return self._send(entry, 404, {"error": {"message": f"no route {self.path}"}})

            def _send(self, entry: dict, status: int, obj: Any, headers: dict | None = None) -> None:
                entry["status"] = status
                data = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client already gave up (timeout test)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # the model --------------------------------------------------------------------------------------
    def _top1(self, seq: list[int]) -> tuple[Any, Any]:
        """(argmax (T,), log-softmax (T, V)) of the next-token distribution after each position of `seq`."""
        import torch

        t = torch.tensor([seq], device=self.backend.device)
        pos = torch.arange(len(seq), device=t.device)[None]
        with torch.inference_mode():
            logits, _ = self.backend._forward(t, torch.ones_like(t), pos, None, False)
        lsm = logits[0].double().log_softmax(-1).cpu()
        return lsm.argmax(-1).numpy(), lsm.numpy()

    def _answer(self, body: dict[str, Any], chat: bool) -> dict[str, Any]:
        prompt = messages_to_text(body["messages"]) if chat else body["prompt"]
        greedy = float(body.get("temperature", 1.0)) == 0.0
        n = int(body.get("max_tokens", body.get("max_completion_tokens", 16)))
        echo = bool(body.get("echo")) and not chat
        want_lp = body.get("logprobs") is not None and body.get("logprobs") is not False
        with self._lock:  # one generation at a time: the backend is not thread-safe
            ids = self.backend.encode([prompt])[0]
            new = (
                self.backend.generate(
                    [ids],
                    n,
                    greedy=greedy,
                    temperature=float(body.get("temperature") or 1.0),
                    seed=int(body.get("seed", 0)),
                )[0]
                if n > 0
                else []
            )
            text = self.backend.decode([new])[0]
            full = self.backend.score([ids + new])[0].logprobs.tolist() if len(ids + new) > 1 else []
            lps = full[len(ids) - 1 :] if want_lp else None
            prompt_lps = [None, *full[: len(ids) - 1]]
            # top tokens need the model's logits: torch backends only (the n-gram test model sends none, like
            # servers that leave top_logprobs out)
            top = self._top1(ids + new) if want_lp and echo and hasattr(self.backend, "_forward") else None
        top_lps = None
        if top is not None:  # position i: the top token of the distribution that predicts token i (OpenAI's meaning)
            seq, (arg, lsm) = ids + new, top
            top_lps = [None] + [{chr(int(arg[i - 1])): float(lsm[i - 1, arg[i - 1]])} for i in range(1, len(seq))]
            if self._shift_echo:  # llama-cpp-python: token i scored by the distribution after token i
                prompt_lps = [None] + [float(lsm[i, ids[i]]) for i in range(1, len(ids))]
                top_lps = [None] + [{chr(int(arg[i])): float(lsm[i, arg[i]])} for i in range(1, len(seq))]
        finish = "length" if len(new) >= n else "stop"
        if self._refuse is not None and self._refuse in prompt:
            text, lps = "I'm sorry, but I can't help with reproducing copyrighted text.", None
        if self._filter is not None and self._filter in prompt:
            text, lps, finish = "", None, "content_filter"
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
            if lps is not None:
                choice["logprobs"] = {"content": [{"token": str(i), "logprob": lp} for i, lp in zip(new, lps)]}
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": (prompt + text) if echo else text, "finish_reason": finish, "logprobs": None}
            if want_lp:
                toks = [chr(i) for i in (ids + new if echo else new)]
                vals = (prompt_lps + (lps or [])) if echo else lps
                offsets = list(range(len(toks))) if echo else [len(prompt) + j for j in range(len(toks))]
                choice["logprobs"] = {"tokens": toks, "token_logprobs": vals, "text_offset": offsets}
                if top_lps is not None:
                    choice["logprobs"]["top_logprobs"] = top_lps
            if body.get("prompt_logprobs") is not None:
                choice["prompt_logprobs"] = [None] + [
                    {str(t): {"logprob": lp, "rank": 1, "decoded_token": chr(t)}}
                    for t, lp in zip(ids[1:], prompt_lps[1:])
                ]
            kind = "text_completion"
        return {
            "id": f"cmpl-{len(self.log)}",
            "object": kind,
            "model": self.model,
            "choices": [choice],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": len(new)},
        }
