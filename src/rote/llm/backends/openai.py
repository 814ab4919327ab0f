"""Any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, llama.cpp server, ...) behind the `Backend` interface.

Text in, text out: `complete` sends plain prompts to `/completions` and chats to `/chat/completions`. Built on the
standard library only (urllib), with what a long study needs:

- the API key is read from an environment variable whose *name* is configured (default OPENAI_API_KEY); the key is
  sent in the Authorization header and nowhere else: not in `name`, `describe()`, cache keys, cache rows or errors;
- retries with exponential backoff on HTTP 429, 5xx, timeouts and dropped connections (honouring Retry-After);
- a client-side rate limit (requests per second) and a per-request timeout;
- an on-disk response cache (SQLite, one committed transaction per response) keyed by the model, endpoint, prompt
  and sampling parameters, so a study that stops half-way resumes without paying for answers it already has;
- refusal detection by configurable phrases, and the endpoint's refusal field where it has one;
- log-probabilities of the generated tokens when the endpoint returns them (`logprobs=True`).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from rote.core.errors import BackendError
from rote.core.runs import progress_bar
from rote.llm.backends.cache import ResponseCache
from rote.llm.backends.base import (
    DEFAULT_REFUSAL_PHRASES,
    Backend,
    Completion,
    Prompt,
    TokenScores,
    cache_root,
    check_chat,
    detect_refusal,
    vocabulary_fingerprint,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP API.

    model: the model name the endpoint expects.
    base_url: API root such as "https://api.openai.com/v1" or "http://127.0.0.1:8000/v1" (default
        $ROTE_OPENAI_BASE_URL, else OpenAI's).
    api_key_env: name of the environment variable holding the key (None: send no key, for local servers).
    api: "auto" (str prompt -> /completions, chat -> /chat/completions), "chat" (str prompts sent as one user
        message) or "completions".
    temperature: used when `complete(greedy=False)`; greedy sends temperature 0.
    timeout: seconds per request; max_retries: retries after the first attempt; backoff: first wait in seconds,
        doubled each retry up to max_backoff; requests_per_second: client-side rate limit (None = unlimited).
    cache: keep responses in `<cache root>/http/responses.sqlite` (or `cache_path`); False disables it.
    logprobs: ask for log-probabilities of the generated tokens (Completion.logprobs).
    tokenizer: a local Backend whose tokenizer gives `encode`/`decode` (and a token-level `generate` by round trip
        through text); without it those methods raise BackendError.
    """

    supports_logprobs = False
    supports_token_ids = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        api: str = "auto",
        temperature: float = 1.0,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        requests_per_second: float | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        cache_path: str | os.PathLike | None = None,
        logprobs: bool = False,
        refusal_phrases: tuple[str, ...] | list[str] | None = None,
        system_prompt: str | None = None,
        tokenizer: Backend | None = None,
    ):
        if api not in ("auto", "chat", "completions"):
            raise BackendError(f"api={api!r}: use 'auto', 'chat' or 'completions'")
        self.model = model
        self.base_url = (base_url or os.environ.get("ROTE_OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise BackendError(
                f"base URL {self.base_url!r}: must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)"
            )
        self.api_key_env = api_key_env
        self._key: str | None = None
        if api_key_env:
            key = os.environ.get(api_key_env, "")
            if not key.strip():
                raise BackendError(
                    f"environment variable {api_key_env} is not set; export your API key in it "
                    f"(`export {api_key_env}=...`); rote reads keys only from the environment and "
                    "never writes them"
                )
            self._key = key.strip()
        self.api = api
        self.temperature = float(temperature)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        if requests_per_second is not None and not requests_per_second > 0:
            raise BackendError(f"requests_per_second={requests_per_second}: must be > 0 (or None for no limit)")
        self.requests_per_second = requests_per_second
        self.logprobs = bool(logprobs)
        self.system_prompt = system_prompt
        if refusal_phrases is not None:
            self.refusal_phrases = tuple(refusal_phrases)
        self.tokenizer = tokenizer
        self.name = f"openai:{model}"
        self.tokenizer_fingerprint = (
            tokenizer.tokenizer_fingerprint if tokenizer is not None else vocabulary_fingerprint([f"http-text:{model}"])
        )
        self.max_length = None
        self.cache = None
        if cache:
            self.cache = ResponseCache(cache_path or cache_root(cache_dir) / "http" / "responses.sqlite")
        self._next_request = 0.0
        self.n_requests = 0  # HTTP requests sent (attempts, including failed ones)

    # ------------------------------------------------------------------------------------------- token level

    def _need_tokenizer(self, what: str) -> Backend:
        if self.tokenizer is None:
            raise BackendError(
                f"{self.name}: an HTTP endpoint works on text, so {what} needs a local tokenizer; "
                "open it with tokenizer=open_backend('smollm2') (or use complete())"
            )
        return self.tokenizer

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self._need_tokenizer("encode").encode(texts)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self._need_tokenizer("decode").decode(ids)

    def score(
        self, ids: list[list[int]], *, batch_size: int = 16, full_stats: bool = False, progress: bool = False
    ) -> list[TokenScores]:
        raise BackendError(
            f"{self.name}: HTTP endpoints do not return log-probabilities of given text; use a local "
            "model (a folder, 'smollm2' or 'tiny:FOLDER') for loss-based measurements"
        )

    def generate(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        *,
        greedy: bool = True,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
        batch_size: int = 32,
        progress: bool = False,
    ) -> list[list[int]]:
        """Token-level generation by round trip through text (needs `tokenizer`); the endpoint may tokenize
        differently, so the result is cut to `max_new_tokens` local tokens."""
        tok = self._need_tokenizer("generate")
        texts = tok.decode(prompts)
        done = self.complete(texts, max_new_tokens, greedy=greedy, seed=seed, progress=progress)
        return [ids[:max_new_tokens] for ids in tok.encode([c.text for c in done])]

    # ------------------------------------------------------------------------------------------- text level

    def complete(
        self, prompts: list[Prompt], max_new_tokens: int, *, greedy: bool = True, seed: int = 0, progress: bool = False
    ) -> list[Completion]:
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise BackendError(f"max_new_tokens={max_new_tokens!r}: must be a whole number >= 1")
        out = []
        with progress_bar(len(prompts), f"querying {self.name}", quiet=not progress) as advance:
            for i, p in enumerate(prompts):
                out.append(self._complete_one(p, i, max_new_tokens, greedy, seed))
                advance(1)
        return out

    def request_params(
        self, prompt: Prompt, index: int, max_new_tokens: int, greedy: bool, seed: int
    ) -> tuple[str, dict[str, Any]]:
        """(endpoint, JSON body) for one prompt; the body never holds the key, so it doubles as the cache key."""
        if isinstance(prompt, str):
            if self.api == "chat":
                endpoint, body = (
                    "chat/completions",
                    {"messages": self._with_system([{"role": "user", "content": prompt}])},
                )
            else:
                endpoint, body = "completions", {"prompt": prompt}
        else:
            check_chat(prompt, f"prompt {index}")
            if self.api == "completions":
                raise BackendError(f"prompt {index}: a chat prompt needs api='chat' or 'auto', not 'completions'")
            endpoint, body = "chat/completions", {"messages": self._with_system(prompt)}
        body.update(
            model=self.model,
            max_tokens=int(max_new_tokens),
            seed=int(seed),
            temperature=0.0 if greedy else self.temperature,
        )
        if self.logprobs:
            if endpoint == "completions":
                body["logprobs"] = 1
            else:
                body["logprobs"] = True
        return endpoint, body

    def _with_system(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        if self.system_prompt and not (messages and messages[0].get("role") == "system"):
            return [{"role": "system", "content": self.system_prompt}, *messages]
        return list(messages)

    def _complete_one(self, prompt: Prompt, index: int, max_new_tokens: int, greedy: bool, seed: int) -> Completion:
        endpoint, body = self.request_params(prompt, index, max_new_tokens, greedy, seed)
        key = ResponseCache.key(self.model, endpoint, body)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is None:
            parsed = self._parse(endpoint, self._post(endpoint, body))
            if self.cache is not None:
                self.cache.put(key, self.model, endpoint, parsed)
        else:
            parsed = cached
        text = parsed["text"]
        lp = parsed.get("logprobs")
        return Completion(
            text=text,
            refused=bool(parsed.get("refused")) or detect_refusal(text, self.refusal_phrases),
            finish_reason=str(parsed.get("finish_reason") or "unknown"),
            cached=cached is not None,
            logprobs=None if lp is None else np.asarray(lp, dtype=np.float64),
        )

    def _parse(self, endpoint: str, data: Any) -> dict[str, Any]:
        """The parts of a response rote keeps: text, finish reason, refusal flag, token log-probabilities."""
        try:
            choice = data["choices"][0]
            if endpoint == "completions":
                text = choice["text"]
                raw = (choice.get("logprobs") or {}).get("token_logprobs")
                refused = False
            else:
                msg = choice["message"]
                refusal = msg.get("refusal")
                text = msg.get("content") or refusal or ""
                refused = bool(refusal)
                raw = [t["logprob"] for t in ((choice.get("logprobs") or {}).get("content") or [])] or None
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendError(
                self._clean(
                    f"{self._url(endpoint)}: unexpected response shape ({exc!r}); is this "
                    "an OpenAI-compatible endpoint?"
                )
            ) from None
        return {
            "text": text,
            "finish_reason": choice.get("finish_reason"),
            "refused": refused,
            "logprobs": None if raw is None else [float(x) for x in raw],
        }

    # ------------------------------------------------------------------------------------------- HTTP

    def _url(self, endpoint: str) -> str:
        return f"{self.base_url}/{endpoint}"

    def _clean(self, text: str) -> str:
        """Remove the key from any text that could reach an error message or a log."""
        return text.replace(self._key, "***") if self._key else text

    def _post(self, endpoint: str, body: dict[str, Any]) -> Any:
        url = self._url(endpoint)
        payload = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            self._wait_rate_limit()
            retry_after = None
            self.n_requests += 1
            try:
                req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                try:
                    return json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    raise BackendError(
                        f"{url}: the response is not JSON; is this an OpenAI-compatible endpoint?"
                    ) from None
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code not in _RETRY_STATUS:
                    hint = {
                        401: f"the key in ${self.api_key_env} was rejected; check it",
                        403: "the key lacks access to this model",
                        404: f"no such endpoint or model {self.model!r}; check the base URL and model name",
                    }
                    raise BackendError(
                        self._clean(
                            f"{url}: HTTP {exc.code} {detail}" + (f" ({hint[exc.code]})" if exc.code in hint else "")
                        )
                    ) from None
                last = f"HTTP {exc.code} {detail}"
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            except (TimeoutError, socket.timeout):
                last = f"no answer within {self.timeout:g} s"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"connection failed ({reason})"
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    last = f"no answer within {self.timeout:g} s"
            if attempt < self.max_retries:
                wait = min(self.max_backoff, self.backoff * 2**attempt)
                time.sleep(max(wait, retry_after or 0.0))  # a server's Retry-After wins when longer
        where = f"; answers so far are cached in {self.cache.path}, rerun to resume" if self.cache is not None else ""
        raise BackendError(self._clean(f"{url}: gave up after {self.max_retries + 1} attempts ({last}){where}"))

    def _wait_rate_limit(self) -> None:
        if self.requests_per_second is None:
            return
        now = time.monotonic()
        if now < self._next_request:
            time.sleep(self._next_request - now)
            now = self._next_request
        self._next_request = now + 1.0 / self.requests_per_second

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": self.base_url,
            "api": self.api,
            "api_key_env": self.api_key_env,
            "temperature": self.temperature,
            "cache": None if self.cache is None else str(self.cache.path),
        }


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """Short reason from an HTTP error: the API's error message when the body has one."""
    try:
        body = exc.read().decode("utf-8", errors="replace")
    except Exception:  # the body is optional; a broken one must not hide the status
        body = ""
    try:
        msg = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        msg = body.strip()
    return f"{exc.reason}: {msg[:200]}" if msg else str(exc.reason)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(float(value), 300.0)
    except ValueError:
        return None


__all__ = ["OpenAIBackend", "ResponseCache", "DEFAULT_BASE_URL", "DEFAULT_REFUSAL_PHRASES"]
