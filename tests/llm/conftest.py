"""A fake language model for protocol tests: a character n-gram table with known, hand-computable probabilities.

`NGramBackend(texts, order, lam)`: tokens are characters (id = code point, vocabulary 0..255). The next-token
distribution after a context is (1 - lam) * empirical next-character frequencies after the longest suffix of the
context (up to `order` characters) seen in the training texts, plus lam / 256 on every token. With a large order
and unique contexts it copies its training texts exactly, so greedy extraction of a training text succeeds and
the probability of each true suffix token is exactly (1 - lam) + lam / 256.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from rote.llm.backends.base import Backend, TokenScores

V = 256


class NGramBackend(Backend):
    supports_logprobs = True
    supports_token_ids = True

    def __init__(
        self,
        texts: list[str],
        order: int = 12,
        lam: float = 0.01,
        name: str = "ngram",
        fingerprint: str = "chars-256",
        max_length: int | None = None,
        eos: int | None = None,
    ):
        self.name, self.tokenizer_fingerprint, self.order, self.lam = name, fingerprint, order, lam
        self.max_length, self.eos_token_id = max_length, eos
        self.table: dict[str, Counter] = defaultdict(Counter)
        for text in texts:
            for i, ch in enumerate(text):
                for n in range(0, order + 1):
                    if i - n < 0:
                        break
                    self.table[text[i - n : i]][ch] += 1
        self.n_generate_calls = 0

    def encode(self, texts):
        return [[min(ord(c), V - 1) for c in t] for t in texts]

    def decode(self, ids):
        return ["".join(chr(i) for i in seq) for seq in ids]

    def dist(self, context: list[int]) -> np.ndarray:
        """(V,) next-token probabilities after `context`."""
        ctx = "".join(chr(i) for i in context)
        p = np.full(V, self.lam / V)
        for n in range(min(self.order, len(ctx)), -1, -1):
            counts = self.table.get(ctx[len(ctx) - n :] if n else "")
            if counts:
                total = sum(counts.values())
                for ch, c in counts.items():
                    p[ord(ch)] += (1 - self.lam) * c / total
                return p
        return np.full(V, 1.0 / V)

    def score(self, ids, *, batch_size=16, full_stats=False, progress=False):
        out = []
        for seq in ids:
            lp, mu, sd = [], [], []
            for t in range(1, len(seq)):
                p = self.dist(seq[:t])
                with np.errstate(divide="ignore"):
                    logp = np.log(p)
                lp.append(logp[seq[t]])
                nz = p > 0  # 0 * log 0 = 0
                m = float((p[nz] * logp[nz]).sum())
                mu.append(m)
                sd.append(float(np.sqrt(max((p[nz] * logp[nz] ** 2).sum() - m**2, 0.0))))
            out.append(
                TokenScores(
                    np.asarray(seq, np.int64),
                    np.asarray(lp, np.float64),
                    np.asarray(mu) if full_stats else None,
                    np.asarray(sd) if full_stats else None,
                )
            )
        return out

    def generate(
        self,
        prompts,
        max_new_tokens,
        *,
        greedy=True,
        temperature=1.0,
        top_k=None,
        seed=0,
        batch_size=32,
        progress=False,
    ):
        self.n_generate_calls += 1
        out = []
        for j, prompt in enumerate(prompts):
            rng = np.random.default_rng([seed, j])
            seq, new = list(prompt), []
            for _ in range(max_new_tokens):
                p = self.dist(seq)
                tok = int(np.argmax(p)) if greedy else int(rng.choice(V, p=p / p.sum()))
                if self.eos_token_id is not None and tok == self.eos_token_id:
                    break
                seq.append(tok)
                new.append(tok)
            out.append(new)
        return out


@pytest.fixture
def ngram():
    return NGramBackend
