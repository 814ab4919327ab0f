"""Any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, llama.cpp server, ...) behind the `Backend` interface.

Text in, text out: `complete` sends plain prompts to `/completions` and chats to `/chat/completions`. Built on the
standard library only (urllib), with what a long study needs:

- the API key is read from an environment variable whose *name* is configured (default OPENAI_API_KEY); the key is
  sent in the Authorization header and nowhere else: not in `name`, `describe()`, cache keys, cache rows or errors;
- retries with exponential backoff on HTTP 429, 5xx, timeouts and dropped connections (honouring Retry-After);
- a client-side rate limit (requests per second) and a per-request timeout;
- an on-disk response cache (SQLite, one committed transaction per response) keyed by the base URL, model,
  endpoint and every request parameter that changes the answer (prompt, length, temperature, seed, logprobs, echo),
  so a study that stops half-way resumes without paying for answers it already has, and a second server with the
  same model name never reuses the first one's answers;
- sampled completions seeded per prompt (from `seed` and the prompt's position, as the local backends do), so n
  samples of one prompt are n different draws; greedy requests send `seed` unchanged;
- `concurrency` requests in flight at once, with the rate limit kept across them;
- refusal detection by configurable phrases, and the endpoint's refusal field where it has one; output filtering
  (finish_reason "content_filter" or an empty answer) flagged apart (`Completion.filtered`);
- a 200 response carrying an error object raises the server's message;
- log-probabilities of the generated tokens when the endpoint returns them (`logprobs=True`);
- with a local `tokenizer` (a Hugging Face folder of the same model): token-level `generate` (plain continuation
  of base models through `/v1/completions`) and `score` (log-probabilities of given text through
  `/v1/completions` with `echo` + `logprobs`, or vLLM's `prompt_logprobs`), where the server offers them; a
  server that does not gets a clear error.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    is_filtered,
    vocabulary_fingerprint,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY = "none"
"""`api_key_env` value (CLI `--api-key-env none`) for servers that need no key: no Authorization header is sent."""


def prompt_seed(seed: int, index: int) -> int:
    """The seed sent with sampled prompt number `index` (a 31-bit int, as servers accept)."""
    digest = hashlib.sha256(f"rote-http-sample:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP API.

    model: the model name the endpoint expects.
    base_url: API root such as "https://api.openai.com/v1" or "http://127.0.0.1:8000/v1" (default
        $ROTE_OPENAI_BASE_URL, else OpenAI's).
    api_key_env: name of the environment variable holding the key (None or "none": send no key, for local
        servers).
    api: "auto" (str prompt -> /completions, chat -> /chat/completions), "chat" (str prompts sent as one user
        message) or "completions".
    temperature: used when `complete(greedy=False)`; greedy sends temperature 0.
    timeout: seconds per request; max_retries: retries after the first attempt; backoff: first wait in seconds,
        doubled each retry up to max_backoff; requests_per_second: client-side rate limit (None = unlimited).
    cache: keep responses in `<cache root>/http/responses.sqlite` (or `cache_path`); False disables it.
    logprobs: ask for log-probabilities of the generated tokens (Completion.logprobs).
    tokenizer: a local Backend whose tokenizer gives `encode`/`decode`, a token-level `generate` (through
        /v1/completions, round trip through text) and `score` (echo + logprobs); without it those methods raise
        BackendError. With it, `supports_token_ids` and `supports_logprobs` are True (scoring is then tried on the
        endpoint and fails clearly where it is not offered).
    max_tokens_field: "max_tokens" or "max_completion_tokens" (OpenAI's reasoning models accept only the latter).
    concurrency: requests in flight at once (threads; the rate limit and retries apply to each).
    prompt_logprobs: ask for vLLM's `prompt_logprobs` instead of the OpenAI `echo` + `logprobs` when scoring.
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
        max_tokens_field: str = "max_tokens",
        concurrency: int = 1,
        prompt_logprobs: bool = False,
    ):
        if api not in ("auto", "chat", "completions"):
            raise BackendError(f"api={api!r}: use 'auto', 'chat' or 'completions'")
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise BackendError(
                f"`max_tokens_field` must be 'max_tokens' or 'max_completion_tokens', got {max_tokens_field!r}"
            )
        if not isinstance(concurrency, int) or concurrency < 1:
            raise BackendError(f"`concurrency` must be >= 1, got {concurrency}")
        if not timeout > 0:
            raise BackendError(f"`timeout` must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise BackendError(f"`max_retries` must be >= 0, got {max_retries}")
        if not temperature > 0:
            raise BackendError(f"`temperature` must be > 0, got {temperature}")
        if api_key_env is not None and api_key_env.strip().lower() == NO_KEY:
            api_key_env = None
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
        self.max_tokens_field = max_tokens_field
        self.concurrency = concurrency
        self.prompt_logprobs = bool(prompt_logprobs)
        if tokenizer is not None:
            self.supports_token_ids = True
            self.supports_logprobs = True
            self.eos_token_id = tokenizer.eos_token_id
            self.bos_token_id = tokenizer.bos_token_id
            self.auto_start_ids = ()  # the server adds what its own tokenizer adds
        self._lock = threading.Lock()
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
            if what == "score":
                raise BackendError(
                    f"{self.name}: HTTP endpoints do not return log-probabilities of given text without a local "
                    "tokenizer; pass the served model's tokenizer folder (--tokenizer) to score through "
                    "/v1/completions echo + logprobs, or use a local model (a folder, 'smollm2' or 'tiny:FOLDER')"
                )
            raise BackendError(
                f"{self.name}: an HTTP endpoint works on text, so {what} needs a local tokenizer; "
                "open it with tokenizer=open_backend('smollm2') or a Hugging Face folder (--tokenizer), or use "
                "complete()"
            )
        return self.tokenizer

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self._need_tokenizer("encode").encode(texts)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self._need_tokenizer("decode").decode(ids)

    def score(
        self, ids: list[list[int]], *, batch_size: int = 16, full_stats: bool = False, progress: bool = False
    ) -> list[TokenScores]:
        """Log-probabilities of given text from the endpoint: `/v1/completions` with `echo` and `logprobs` (or vLLM's
        `prompt_logprobs`), one request per text (cached). The server tokenizes the text itself: its scored tokens
        must number len(ids) - 1 (or len(ids) when it put its own start token first, which is then dropped),
        otherwise the local tokenizer is not the served model's and this raises. `mean_logprob`/`std_logprob`
        (min-k%++) are not available over HTTP."""
        tok = self._need_tokenizer("score")
        texts = tok.decode(ids)
        out: list[TokenScores] = []
        agree_here = agree_next = 0  # echo alignment evidence over all texts (see the check at the end)
        for i, (seq, text) in enumerate(zip(ids, texts)):
            body: dict[str, Any] = {"prompt": text, "model": self.model, "temperature": 0.0, "seed": 0}
            body[self.max_tokens_field] = 1
            if self.prompt_logprobs:
                body["prompt_logprobs"] = 0
            else:  # logprobs=1: the top token of each position, to check that the echo is aligned (below)
                body.update(echo=True, logprobs=1)
            data = self._cached_post("completions", body, raw=True)
            lps = self._prompt_logprobs(data, text)
            aligned, shifted = _echo_alignment(data, text)
            agree_here += aligned
            agree_next += shifted
            need = len(seq) - 1
            if len(lps) == need + 1:
                lps = lps[1:]
            if len(lps) != need:
                raise BackendError(
                    f"{self.name}: the endpoint scored {len(lps)} tokens of text {i}, the local tokenizer has "
                    f"{need} after the first; pass the tokenizer of the served model (--tokenizer)"
                )
            out.append(TokenScores(np.asarray(seq, dtype=np.int64), np.asarray(lps, dtype=np.float64)))
        # Under OpenAI's meaning the top token at position i predicts token i, so on real text it often *is* token
        # i. llama-cpp-python instead reports each token under the distribution after it (abetlen/llama-cpp-python
        # #1983): its top token then matches token i + 1. Such scores are wrong (on SmolLM2 they correlated -0.83
        # with the true loss), and they cannot be repaired from the response, so refuse them.
        if agree_next >= 8 and agree_next > 2 * agree_here:
            raise _scoring_unavailable(
                f"{self._url('completions')}: the echoed prompt log-probabilities are shifted by one token (the top "
                f"token at a position matched the next token {agree_next} times, the token itself {agree_here} "
                "times), as llama-cpp-python's server returns them (abetlen/llama-cpp-python#1983); they cannot "
                "score text: use a local model (hf:DIR, smollm2) or a server with correct echo logprobs (vLLM)"
            )
        return out

    def _prompt_logprobs(self, data: dict[str, Any], text: str) -> list[float]:
        """Scored prompt tokens (the first, unscored one left out) from an echo or prompt_logprobs response."""
        choice = (data.get("choices") or [{}])[0]
        pl = choice.get("prompt_logprobs")
        if pl is not None:  # vLLM: [None, {token_id: {"logprob": ...}}, ...] with the prompt token's entry
            vals = []
            for entry in pl[1:]:
                if not isinstance(entry, dict) or not entry:
                    raise BackendError(f"{self._url('completions')}: unreadable prompt_logprobs entry {entry!r:.80}")
                first = next(iter(entry.values()))
                vals.append(float(first["logprob"] if isinstance(first, dict) else first))
            return vals
        lp = choice.get("logprobs") or {}
        toks, vals, offs = lp.get("tokens"), lp.get("token_logprobs"), lp.get("text_offset")
        if not vals:
            raise BackendError(
                f"{self._url('completions')}: the endpoint returned no log-probabilities of the prompt (echo with "
                "logprobs); it cannot score given text, so loss-based attacks need a local model (vLLM: pass "
                "prompt_logprobs=True)"
            )
        n = len(vals)
        if offs is not None and len(offs) == n:  # keep the tokens that start inside the prompt text
            n = sum(1 for o in offs if o < len(text))
        elif toks is not None:
            covered, n = 0, 0
            while n < len(toks) and covered < len(text):
                covered += len(toks[n])
                n += 1
        return [float(v) for v in vals[1:n]]

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
        """Token-level plain continuation through `/v1/completions` (a round trip through text; needs `tokenizer`);
        the endpoint may tokenize differently, so the result is cut to `max_new_tokens` local tokens. Sampled
        prompts are seeded per prompt (`prompt_seed`). Raises where the endpoint offers no /v1/completions."""
        tok = self._need_tokenizer("generate")
        if self.api == "chat":
            raise BackendError(
                f"{self.name}: plain continuation needs /v1/completions, but api='chat'; use api='auto' or "
                "'completions', or prompted extraction (--prompted) for chat-only endpoints"
            )
        if not greedy and not temperature > 0:
            raise BackendError(f"`temperature` must be > 0, got {temperature}")
        texts = tok.decode(prompts)
        done = self.complete(
            texts,
            max_new_tokens,
            greedy=greedy,
            seed=seed,
            progress=progress,
            temperature=None if greedy else temperature,
        )
        return [ids[:max_new_tokens] for ids in tok.encode([c.text for c in done])]

    # ------------------------------------------------------------------------------------------- text level

    def complete(
        self,
        prompts: list[Prompt],
        max_new_tokens: int,
        *,
        greedy: bool = True,
        seed: int = 0,
        progress: bool = False,
        temperature: float | None = None,
    ) -> list[Completion]:
        """One completion per prompt (`concurrency` requests at once, answers in prompt order). Sampled prompts
        (greedy=False) are sent with their own seed `prompt_seed(seed, index)`, so repeated prompts give
        independent samples; greedy ones with `seed`."""
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise BackendError(f"max_new_tokens={max_new_tokens!r}: must be a whole number >= 1")
        out: list[Completion | None] = [None] * len(prompts)
        with progress_bar(len(prompts), f"querying {self.name}", quiet=not progress) as advance:
            if self.concurrency == 1 or len(prompts) < 2:
                for i, p in enumerate(prompts):
                    out[i] = self._complete_one(p, i, max_new_tokens, greedy, seed, temperature)
                    advance(1)
            else:
                with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                    futures = [
                        pool.submit(self._complete_one, p, i, max_new_tokens, greedy, seed, temperature)
                        for i, p in enumerate(prompts)
                    ]
                    for i, f in enumerate(futures):
                        out[i] = f.result()
                        advance(1)
        return out  # type: ignore[return-value]

    def request_params(
        self,
        prompt: Prompt,
        index: int,
        max_new_tokens: int,
        greedy: bool,
        seed: int,
        temperature: float | None = None,
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
            seed=int(seed) if greedy else prompt_seed(seed, index),
            temperature=0.0 if greedy else float(temperature or self.temperature),
        )
        body[self.max_tokens_field] = int(max_new_tokens)
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

    def cache_key(self, endpoint: str, body: dict[str, Any]) -> str:
        """The cache key of a request: base URL, model, endpoint and the whole body (every parameter that changes
        the answer; never the key)."""
        return ResponseCache.key(self.model, f"{self.base_url}/{endpoint}", body)

    def _cached_post(self, endpoint: str, body: dict[str, Any], *, raw: bool = False) -> tuple[dict[str, Any], bool]:
        key = self.cache_key(endpoint, body)
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            return hit if raw else (hit, True)
        data = self._post(endpoint, body)
        _raise_error_object(data, self._url(endpoint), self._clean)
        kept = _prune(data) if raw else self._parse(endpoint, data)
        if self.cache is not None:
            self.cache.put(key, self.model, endpoint, kept)
        return kept if raw else (kept, False)

    def _complete_one(
        self, prompt: Prompt, index: int, max_new_tokens: int, greedy: bool, seed: int, temperature: float | None = None
    ) -> Completion:
        endpoint, body = self.request_params(prompt, index, max_new_tokens, greedy, seed, temperature)
        parsed, was_cached = self._cached_post(endpoint, body)
        text = parsed["text"]
        lp = parsed.get("logprobs")
        finish = str(parsed.get("finish_reason") or "unknown")
        filtered = is_filtered(text, finish)
        return Completion(
            text=text,
            refused=not filtered and (bool(parsed.get("refused")) or detect_refusal(text, self.refusal_phrases)),
            finish_reason=finish,
            cached=was_cached,
            logprobs=None if lp is None else np.asarray(lp, dtype=np.float64),
            filtered=filtered,
        )

    def _parse(self, endpoint: str, data: Any) -> dict[str, Any]:
        """The parts of a response rote keeps: text, finish reason, refusal flag, token log-probabilities."""
        _raise_error_object(data, self._url(endpoint), self._clean)
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
            with self._lock:
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
        with self._lock:  # reserve the next slot, then sleep outside the lock
            now = time.monotonic()
            slot = max(now, self._next_request)
            self._next_request = slot + 1.0 / self.requests_per_second
        if slot > now:
            time.sleep(slot - now)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": self.base_url,
            "api": self.api,
            "api_key_env": self.api_key_env,
            "temperature": self.temperature,
            "max_tokens_field": self.max_tokens_field,
            "concurrency": self.concurrency,
            "tokenizer": None if self.tokenizer is None else self.tokenizer.name,
            "cache": None if self.cache is None else str(self.cache.path),
        }


def _scoring_unavailable(message: str) -> BackendError:
    """A BackendError marking an endpoint that generates but cannot score: extraction goes on without p(suffix)."""
    exc = BackendError(message)
    exc.scoring_unavailable = True  # type: ignore[attr-defined]
    return exc


def _echo_alignment(data: dict[str, Any], text: str) -> tuple[int, int]:
    """(positions whose top token is the prompt token itself, positions whose top token is the next prompt token)
    in an echo response with `top_logprobs`; (0, 0) when the server sent none (nothing to check)."""
    lp = ((data.get("choices") or [{}])[0] or {}).get("logprobs") or {}
    toks, tops, offs = lp.get("tokens"), lp.get("top_logprobs"), lp.get("text_offset")
    if not toks or not tops or len(tops) != len(toks):
        return 0, 0
    n = sum(1 for o in offs if o < len(text)) if offs is not None and len(offs) == len(toks) else len(toks)
    here = nxt = 0
    for i in range(1, n):
        top = tops[i]
        if not isinstance(top, dict) or not top:
            continue
        best = max(top, key=lambda k: top[k])
        here += best == toks[i]
        nxt += i + 1 < n and best == toks[i + 1]
    return here, nxt


def _raise_error_object(data: Any, url: str, clean: Any) -> None:
    """A 200 response whose body is an error object (some servers do this) raises the server's message."""
    if isinstance(data, dict) and data.get("error") and not data.get("choices"):
        err = data["error"]
        msg = err.get("message") if isinstance(err, dict) else str(err)
        raise BackendError(clean(f"{url}: the server answered with an error: {str(msg or err)[:300]}"))


def _prune(data: Any) -> dict[str, Any]:
    """What the cache keeps of a scoring response: the first choice's log-probabilities."""
    choice = (data.get("choices") or [{}])[0] if isinstance(data, dict) else {}
    keep = {k: choice[k] for k in ("logprobs", "prompt_logprobs") if k in choice}
    return {"choices": [keep]}


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
