"""Verbatim overlap between a generated text and a true text: the measurements of LLM memorization studies.

Every function works on two kinds of input, with the same code:

- `str`: compared character by character (Unicode code points) by the sequence measures, or split into words by
  `tokenizer` (default `default_tokenizer`) by the word measures (ROUGE-L, BLEU, n-gram overlap);
- token sequences: a 1-D list, tuple, numpy array or torch tensor of integer token ids (or a list of string
  tokens), compared item by item.

Both inputs of a call must be of the same kind (a `str` is never silently compared with token ids: tokenize it
first). Pair functions take `(candidate, reference)`: the model's generation first, the true text second; the
symmetric measures (substring, subsequence, edit distance) say `(a, b)`.

Measures (n = len(a), m = len(b); w = 64-bit machine words):

- `longest_common_substring`: the longest contiguous run shared by both, with its start in each (so reports can
  highlight the copied span). A suffix automaton of `a` (Blumer et al. 1985) scanned by `b`: O(n + m) time,
  O(n) states. `SubstringIndex` keeps the automaton to scan many candidates against one reference.
- `lcs_length`: longest common subsequence, bit-parallel (Allison & Dix 1986; Crochemore et al. 2001) on Python
  integers: O(n m / w).
- `rouge_l`: ROUGE-L precision, recall and F1 as `rouge-score` defines them (LCS of word tokens; F = 2PR/(P+R)).
- `ngram_overlap`: clipped n-gram precision/recall/F1 (as `rouge-score`'s ROUGE-N).
- `bleu`: sentence BLEU (Papineni et al. 2002) with brevity penalty, n = 1..4, uniform weights, smoothing
  "add1" by default (Lin & Och 2004; see `bleu`).
- `edit_distance` / `normalized_edit_distance`: Levenshtein distance, bit-parallel (Myers 1999, in Hyyrö's
  2001 formulation for whole-string distance): O(n m / w); normalized by max(n, m).
- `prefix_match_length`, `exact_match`, `pythia_score`: exact suffix matching of a continuation against the true
  suffix: the number of leading units equal, whether the whole suffix is reproduced (Carlini et al. 2022's
  k-extractability), and the fraction of positions equal (Biderman et al. 2023's memorization score).
- Named criteria for "substantial copying": `SUBSTANTIAL_COPY_CHARS` = 160 and `APPROX_MEMORIZATION_BLEU` = 0.75.
- `overlap_table`: all of the above for many (candidate, reference) pairs, one row per pair.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError

__all__ = [
    "APPROX_MEMORIZATION_BLEU",
    "SUBSTANTIAL_COPY_CHARS",
    "BLEU_SMOOTHINGS",
    "CommonSubstring",
    "CopyingCriteria",
    "PRF",
    "SubstringIndex",
    "approximately_memorized",
    "bleu",
    "copies_160_chars",
    "default_tokenizer",
    "edit_distance",
    "exact_match",
    "lcs_length",
    "longest_common_substring",
    "ngram_overlap",
    "normalized_edit_distance",
    "overlap_table",
    "prefix_match_length",
    "pythia_score",
    "rouge_l",
]

# Text or tokens: a str (characters), or a 1-D sequence of int token ids / str tokens.
TextOrTokens = Union[str, Sequence[int], Sequence[str], np.ndarray]
Tokenizer = Callable[[str], Sequence[Any]]

# ---------------------------------------------------------------------------------------------- criteria

SUBSTANTIAL_COPY_CHARS = 160
"""Characters of shared text that count as substantial copying: the 160-character rule of the German Copyright
Service Provider Act (UrhDaG §10), as used for LLM outputs by Mueller et al., AIES 2024 (arXiv:2405.18492). The
rule speaks of fuzzy matches; rote applies it to the exact longest common substring, which is stricter."""

APPROX_MEMORIZATION_BLEU = 0.75
"""Sentence BLEU at or above which a generation counts as approximately memorized (Ippolito et al. 2022,
"Preventing verbatim memorization in language models gives a false sense of privacy", as used by the Hugging
Face StarCoder memorization demo). Which BLEU smoothing they used is not documented; rote's default is "add1"."""


@dataclass(frozen=True)
class CopyingCriteria:
    """Thresholds for "substantial copying" in reports (defaults: the two named criteria above).

    min_chars: longest common substring, in characters, at or above which a text copies (160).
    min_bleu: sentence BLEU at or above which a text is approximately memorized (0.75).
    """

    min_chars: int = SUBSTANTIAL_COPY_CHARS
    min_bleu: float = APPROX_MEMORIZATION_BLEU

    def __post_init__(self) -> None:
        if not (isinstance(self.min_chars, (int, np.integer)) and self.min_chars >= 1):
            raise ConfigError(f"CopyingCriteria: min_chars must be an integer >= 1, got {self.min_chars!r}")
        if not (0.0 < float(self.min_bleu) <= 1.0):
            raise ConfigError(f"CopyingCriteria: min_bleu must be in (0, 1], got {self.min_bleu!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"min_chars": int(self.min_chars), "min_bleu": float(self.min_bleu)}


# ---------------------------------------------------------------------------------------------- input handling

_WORD_RE = re.compile(r"[^\W_]+")


def default_tokenizer(text: str) -> list[str]:
    """Lower-case words: maximal runs of Unicode letters and digits (everything else separates words).

    On ASCII text this is exactly `rouge-score`'s default tokenizer (lower-case, non-[a-z0-9] runs are
    separators, no stemming); on other scripts it keeps letters that `rouge-score` would drop (é, ß, 漢).
    """
    if not isinstance(text, str):
        raise DataError(f"default_tokenizer: expected a str, got {type(text).__name__}")
    return _WORD_RE.findall(text.lower())


def _units(x: Any, name: str) -> tuple[str | list, str]:
    """(units, kind) of one input: a str stays a str (kind "chars"); a token sequence becomes a list of ints
    ("ids") or of strs ("tokens"); an empty sequence is kind "empty" (compatible with either token kind)."""
    if isinstance(x, str):
        return x, "chars"
    if isinstance(x, (bytes, bytearray)):
        raise DataError(f"{name}: got bytes; decode it to str first (e.g. data.decode('utf-8'))")
    if x is None or isinstance(x, (int, float, np.generic)):
        raise DataError(f"{name}: expected a str or a 1-D sequence of token ids, got {type(x).__name__}")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, possibly on a GPU (no torch import here)
        x = x.detach().cpu().numpy()
    if isinstance(x, (list, tuple)):
        if not x:
            return [], "empty"
        # fast paths; np.asarray would silently turn ["a", 3] into strs
        if all(type(t) is int for t in x):
            return list(x), "ids"
        if all(type(t) is str for t in x):
            return list(x), "tokens"
        arr = np.empty(len(x), dtype=object)
        arr[:] = x
    else:
        try:
            arr = x if isinstance(x, np.ndarray) else np.asarray(x)
        except ValueError:
            raise DataError(
                f"{name}: not a flat sequence (ragged nesting?); pass a str or a 1-D list of token ids"
            ) from None
    if arr.ndim != 1:
        raise DataError(
            f"{name}: token sequences must be 1-D, got shape {arr.shape}; pass one sequence per call "
            "(overlap_table takes many)"
        )
    if arr.size == 0:
        return [], "empty"
    if arr.dtype.kind in "iu":
        return arr.tolist(), "ids"
    if arr.dtype.kind in "UT":
        return arr.tolist(), "tokens"
    if arr.dtype.kind == "O":
        items = arr.tolist()
        kinds = [_item_kind(t) for t in items]
        if kinds[0] is not None and all(k == kinds[0] for k in kinds):
            return ([int(t) for t in items] if kinds[0] == "ids" else items), kinds[0]
        bad = next(i for i, k in enumerate(kinds) if k is None or k != kinds[0])
        raise DataError(
            f"{name}: item {bad} is {items[bad]!r} ({type(items[bad]).__name__}); a token sequence "
            "holds only int ids or only str tokens"
        )
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise DataError(
            f"{name}: item {int(np.flatnonzero(np.isnan(arr))[0])} is missing (NaN); token sequences "
            "cannot have gaps: drop or fill it"
        )
    raise DataError(
        f"{name}: token sequences must hold integers (or str tokens), got dtype {arr.dtype}; "
        "convert ids with np.asarray(x, dtype=np.int64)"
    )


def _item_kind(t: Any) -> str | None:
    if isinstance(t, str):
        return "tokens"
    if isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_)):
        return "ids"
    return None


def _pair(a: Any, b: Any, names: tuple[str, str], tokenizer: Tokenizer | None = None) -> tuple[Any, Any]:
    """Both inputs as units of one kind; strs go through `tokenizer` first when it is given."""
    if tokenizer is not None:
        a = tokenizer(a) if isinstance(a, str) else a
        b = tokenizer(b) if isinstance(b, str) else b
    ua, ka = _units(a, names[0])
    ub, kb = _units(b, names[1])
    if ka != kb and "empty" not in (ka, kb):
        raise DataError(
            f"{names[0]} is {_KIND_WORDS[ka]} but {names[1]} is {_KIND_WORDS[kb]}; compare like with "
            "like (tokenize the text with the same tokenizer, or decode the ids)"
        )
    if "chars" in (ka, kb) and "empty" in (ka, kb):
        raise DataError(
            f"{names[0]} is {_KIND_WORDS[ka]} but {names[1]} is {_KIND_WORDS[kb]}; pass '' for an empty text"
        )
    return ua, ub


_KIND_WORDS = {
    "chars": "a str",
    "ids": "a sequence of int token ids",
    "tokens": "a sequence of str tokens",
    "empty": "an empty token sequence",
}


# ------------------------------------------------------------------------------------------- longest common substring


@dataclass(frozen=True)
class CommonSubstring:
    """A longest common substring: `a[start_a : start_a + length] == b[start_b : start_b + length]`.

    length: units (characters of a str, items of a token sequence); 0 when nothing is shared, and then both starts
        are 0 (an empty span).
    start_a, start_b: 0-based start in each input. Among several longest common substrings, the one that starts
        earliest in `b` is reported, at its earliest occurrence in `a`.
    """

    length: int
    start_a: int
    start_b: int

    @property
    def span_a(self) -> slice:
        return slice(self.start_a, self.start_a + self.length)

    @property
    def span_b(self) -> slice:
        return slice(self.start_b, self.start_b + self.length)

    def to_dict(self) -> dict[str, int]:
        return {"length": self.length, "start_a": self.start_a, "start_b": self.start_b}


class SubstringIndex:
    """A suffix automaton of one text (or token sequence), to find its longest common substring with others.

    Build once per reference, then `longest_match(query)` for each candidate: O(len(text)) to build,
    O(len(query)) per query, about 2 * len(text) states (each a dict of out-transitions; memory grows with the
    text, roughly 0.3-0.5 kB per unit, so index texts up to a few MB).

    An automaton state stands for a set of substrings that share their end positions in the text; `first[s]` is
    the end of their first occurrence, which gives the start position of a match without storing the text.
    """

    def __init__(self, text: TextOrTokens):
        units, kind = _units(text, "text")
        self._build(units, kind)

    @classmethod
    def _from_units(cls, units: str | list, kind: str) -> SubstringIndex:
        """An index of input already converted by `_units` (skips a second conversion)."""
        index = cls.__new__(cls)
        index._build(units, kind)
        return index

    def _build(self, units: str | list, kind: str) -> None:
        self.kind = kind
        self.n = len(units)
        nxt: list[dict] = [{}]
        link = [-1]
        length = [0]
        first = [-1]
        last = 0
        for i, c in enumerate(units):
            cur = len(length)
            nxt.append({})
            length.append(length[last] + 1)
            first.append(i)
            link.append(0)
            p = last
            while p != -1 and c not in nxt[p]:
                nxt[p][c] = cur
                p = link[p]
            if p != -1:
                q = nxt[p][c]
                if length[p] + 1 == length[q]:
                    link[cur] = q
                else:  # split q: the clone keeps the shorter strings, which now also end at i
                    clone = len(length)
                    nxt.append(nxt[q].copy())
                    length.append(length[p] + 1)
                    first.append(first[q])
                    link.append(link[q])
                    while p != -1 and nxt[p].get(c) == q:
                        nxt[p][c] = clone
                        p = link[p]
                    link[q] = clone
                    link[cur] = clone
            last = cur
        self._next, self._link, self._length, self._first = nxt, link, length, first

    @property
    def n_states(self) -> int:
        return len(self._length)

    def longest_match(self, query: TextOrTokens) -> CommonSubstring:
        """The longest common substring of the indexed text (`a`) and `query` (`b`); see `CommonSubstring`."""
        units, kind = _units(query, "query")
        if kind != self.kind and "empty" not in (kind, self.kind):
            raise DataError(
                f"query is {_KIND_WORDS[kind]} but the indexed text is {_KIND_WORDS[self.kind]}; compare like with like"
            )
        if "chars" in (kind, self.kind) and "empty" in (kind, self.kind):
            raise DataError("an empty token sequence cannot be compared with a str; pass '' for an empty text")
        return self._scan(units)

    def _scan(self, units: str | list) -> CommonSubstring:
        nxt, link, length = self._next, self._link, self._length
        state, cur_len = 0, 0
        best, best_end, best_state = 0, -1, 0
        for j, c in enumerate(units):
            t = nxt[state].get(c)
            if t is None:
                # follow suffix links to the longest suffix of the current match that can be extended by c
                while state != -1 and c not in nxt[state]:
                    state = link[state]
                if state == -1:
                    state, cur_len = 0, 0
                    continue
                cur_len = length[state] + 1
                t = nxt[state][c]
            else:
                cur_len += 1
            state = t
            if cur_len > best:  # strict: keeps the earliest end in the query among equally long matches
                best, best_end, best_state = cur_len, j, state
        if best == 0:
            return CommonSubstring(0, 0, 0)
        return CommonSubstring(best, self._first[best_state] - best + 1, best_end - best + 1)


def longest_common_substring(a: TextOrTokens, b: TextOrTokens) -> CommonSubstring:
    """Longest contiguous run shared by `a` and `b` (characters of strs, or items of token sequences).

    Linear time: a suffix automaton of `a` scanned by `b`, O(len(a) + len(b)); building costs two to three times as
    much per unit as scanning, so put the shorter input first when speed matters (the result is the same up to
    the tie rule in `CommonSubstring`). Returns length and start in each input.
    """
    ua, ub = _pair(a, b, ("a", "b"))
    return SubstringIndex._from_units(ua, "chars" if isinstance(ua, str) else "ids")._scan(ub)


# ---------------------------------------------------------------------------------------------- subsequence / edit


def _bitmasks(units: Sequence) -> dict:
    """{unit: int whose bit i is set where units[i] == unit}."""
    masks: dict = {}
    for i, c in enumerate(units):
        masks[c] = masks.get(c, 0) | (1 << i)
    return masks


def _lcs_units(a: Sequence, b: Sequence) -> int:
    if len(a) < len(b):  # bits over the longer input, Python-level loop over the shorter
        a, b = b, a
    n = len(a)
    if n == 0 or len(b) == 0:
        return 0
    masks = _bitmasks(a)
    full = (1 << n) - 1
    v = full  # zero bits of v count the LCS of a and the prefix of b read so far
    for c in b:
        m = masks.get(c)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return n - v.bit_count()


def lcs_length(a: TextOrTokens, b: TextOrTokens) -> int:
    """Length of the longest common subsequence of `a` and `b` (units need not be contiguous).

    Bit-parallel row update V' = (V + (V & M_c)) | (V & ~M_c) (Crochemore et al. 2001) on Python integers of
    max(len) bits, min(len) iterations: O(len(a) len(b) / 64).
    """
    ua, ub = _pair(a, b, ("a", "b"))
    return _lcs_units(ua, ub)


def _levenshtein_units(a: Sequence, b: Sequence) -> int:
    if len(a) < len(b):
        a, b = b, a
    m = len(a)
    if len(b) == 0:
        return m
    peq = _bitmasks(a)
    full = (1 << m) - 1
    high = 1 << (m - 1)
    pv, mv, score = full, 0, m  # vertical +1/-1 deltas of the current DP column; score = D[m][j]
    for c in b:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        # shifting in a 1: row 0 of the DP is D[0][j] = j, a +1 horizontal step in every column
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score


def edit_distance(a: TextOrTokens, b: TextOrTokens) -> int:
    """Levenshtein distance (insertions, deletions, substitutions, each cost 1) between `a` and `b`.

    Bit-parallel (Myers 1999; Hyyrö 2001 for the distance between whole strings): O(len(a) len(b) / 64).
    """
    ua, ub = _pair(a, b, ("a", "b"))
    return _levenshtein_units(ua, ub)


def normalized_edit_distance(a: TextOrTokens, b: TextOrTokens) -> float:
    """Levenshtein distance / max(len(a), len(b)), in [0, 1]; 0.0 when both are empty (identical)."""
    ua, ub = _pair(a, b, ("a", "b"))
    longest = max(len(ua), len(ub))
    return 0.0 if longest == 0 else _levenshtein_units(ua, ub) / longest


# ---------------------------------------------------------------------------------------------- ROUGE-L, n-grams, BLEU


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 (harmonic mean; 0 when both are 0), each in [0, 1]."""

    precision: float
    recall: float
    fmeasure: float

    def to_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "fmeasure": self.fmeasure}


def _prf(hits: int, n_candidate: int, n_reference: int) -> PRF:
    p = hits / n_candidate if n_candidate else 0.0
    r = hits / n_reference if n_reference else 0.0
    return PRF(p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0)


def rouge_l(
    candidate: TextOrTokens, reference: TextOrTokens, *, tokenizer: Tokenizer | None = default_tokenizer
) -> PRF:
    """ROUGE-L (Lin 2004) as `rouge-score` computes `rougeL`: LCS of the word tokens, precision = LCS /
    len(candidate), recall = LCS / len(reference), F1; all 0 when either side has no tokens.

    Strs are split by `tokenizer` (default: `default_tokenizer`, equal to rouge-score's default on ASCII);
    token sequences are used as they are. `tokenizer=None` compares strs character by character.
    Note the argument order: rouge-score's `score(target, prediction)` is `rouge_l(prediction, target)`.
    """
    uc, ur = _pair(candidate, reference, ("candidate", "reference"), tokenizer)
    return _prf(_lcs_units(uc, ur), len(uc), len(ur))


def _ngram_counts(units: Sequence, n: int) -> Counter:
    if isinstance(units, str):
        return Counter(units[i : i + n] for i in range(len(units) - n + 1))
    return Counter(tuple(units[i : i + n]) for i in range(len(units) - n + 1))


def ngram_overlap(
    candidate: TextOrTokens, reference: TextOrTokens, n: int = 1, *, tokenizer: Tokenizer | None = default_tokenizer
) -> PRF:
    """Clipped n-gram overlap: hits = sum over n-grams g of min(count_candidate(g), count_reference(g));
    precision = hits / (candidate n-grams), recall = hits / (reference n-grams), F1 (as rouge-score's ROUGE-N).

    Strs are split by `tokenizer` (`None`: character n-grams); 0 where a side has no n-grams.
    """
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ConfigError(f"ngram_overlap: n must be an integer >= 1, got {n!r}")
    uc, ur = _pair(candidate, reference, ("candidate", "reference"), tokenizer)
    cc, cr = _ngram_counts(uc, n), _ngram_counts(ur, n)
    hits = sum(min(k, cr[g]) for g, k in cc.items())
    return _prf(hits, max(len(uc) - n + 1, 0), max(len(ur) - n + 1, 0))


BLEU_SMOOTHINGS = ("add1", "floor", "none")


def bleu(
    candidate: TextOrTokens,
    reference: TextOrTokens,
    *,
    max_n: int = 4,
    smoothing: str = "add1",
    epsilon: float = 0.1,
    tokenizer: Tokenizer | None = default_tokenizer,
) -> float:
    """Sentence BLEU of `candidate` against one `reference` (Papineni et al. 2002), in [0, 1].

    BLEU = BP * exp(mean over n = 1..max_n of log p_n), with p_n the clipped n-gram precision (matches m_n over
    the candidate's t_n n-grams) and brevity penalty BP = 1 if c > r else exp(1 - r / c) for candidate length c
    and reference length r (BP = 0 for an empty candidate, so BLEU is 0 then, even against an empty reference).

    Smoothing of the precisions (a single sentence often has no 4-gram match, which would make BLEU 0):
      - "add1" (default): Lin & Och (2004): p_n = (m_n + 1) / (t_n + 1) for n >= 2, p_1 unsmoothed. This is
        Chen & Cherry (2014)'s method 2 and NLTK's `SmoothingFunction().method2`, except when the candidate is
        shorter than n words: NLTK then uses t_n = 1 (p_n = 1/2), rote the formula as written (p_n = 1).
      - "floor": p_n = epsilon / t_n where m_n = 0 (Chen & Cherry's method 1, NLTK's `method1`).
      - "none": plain BLEU; 0 as soon as some p_n is 0.
    In every case BLEU is 0 when no unigram matches (as NLTK). Strs are split by `tokenizer` (`None`:
    characters).
    """
    if smoothing not in BLEU_SMOOTHINGS:
        raise ConfigError(f"bleu: smoothing must be one of {', '.join(BLEU_SMOOTHINGS)}; got {smoothing!r}")
    if not (isinstance(max_n, (int, np.integer)) and max_n >= 1):
        raise ConfigError(f"bleu: max_n must be an integer >= 1, got {max_n!r}")
    if smoothing == "floor" and not epsilon > 0:
        raise ConfigError(f"bleu: epsilon must be > 0 for smoothing='floor', got {epsilon!r}")
    uc, ur = _pair(candidate, reference, ("candidate", "reference"), tokenizer)
    c, r = len(uc), len(ur)
    if c == 0:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        cc, cr = _ngram_counts(uc, n), _ngram_counts(ur, n)
        matches = sum(min(k, cr[g]) for g, k in cc.items())
        total = max(c - n + 1, 0)
        if n == 1 and matches == 0:
            return 0.0
        if smoothing == "add1" and n >= 2:
            p = (matches + 1) / (total + 1)
        elif matches == 0:
            if smoothing == "none":
                return 0.0
            p = epsilon / max(total, 1)  # NLTK's method1 divides by max(1, t_n)
        else:
            p = matches / total
        log_sum += math.log(p)
    bp = 1.0 if c > r else math.exp(1.0 - r / c)
    return bp * math.exp(log_sum / max_n)


# ---------------------------------------------------------------------------------------------- exact suffix match


def _first_mismatch(uc: Sequence, ur: Sequence) -> int:
    """Index of the first position where the two differ, or min(len) when one is a prefix of the other."""
    k = min(len(uc), len(ur))
    if isinstance(uc, str):  # C-speed comparison of code points for long texts
        a = np.frombuffer(uc[:k].encode("utf-32-le"), np.uint32)
        b = np.frombuffer(ur[:k].encode("utf-32-le"), np.uint32)
        diff = np.flatnonzero(a != b)
        return int(diff[0]) if diff.size else k
    return next((i for i in range(k) if uc[i] != ur[i]), k)


def prefix_match_length(candidate: TextOrTokens, reference: TextOrTokens) -> int:
    """Number of leading units of `candidate` equal to `reference` (0 if the first differs): how far a greedy
    continuation reproduces the true suffix before its first mistake. At most min(len) units."""
    uc, ur = _pair(candidate, reference, ("candidate", "reference"))
    return _first_mismatch(uc, ur)


def exact_match(candidate: TextOrTokens, reference: TextOrTokens) -> bool:
    """True when the candidate starts with the whole reference (the suffix is extracted exactly; Carlini et al.
    2022's k-extractability with a greedy continuation, and lm-extraction-benchmark's all-50-tokens rule).
    Extra candidate units after the reference are ignored. An empty reference is undefined (DataError)."""
    uc, ur = _pair(candidate, reference, ("candidate", "reference"))
    if len(ur) == 0:
        raise DataError("reference is empty: there is no suffix to extract; skip texts shorter than prefix + suffix")
    return _first_mismatch(uc, ur) == len(ur)


def _positions_equal(uc: Sequence, ur: Sequence) -> int:
    return sum(1 for x, y in zip(uc, ur) if x == y)


def pythia_score(candidate: TextOrTokens, reference: TextOrTokens) -> float:
    """Fraction of the reference's positions where the candidate has the same unit (Biderman et al. 2023's
    memorization score: `(true == generated[:, 32:64]).mean(-1)` for a 32-token suffix), in [0, 1].

    Positions are compared one to one, not only up to the first mistake; positions beyond the candidate's end
    count as mismatches and candidate units beyond the reference's end are ignored. An empty reference is
    undefined (DataError)."""
    uc, ur = _pair(candidate, reference, ("candidate", "reference"))
    if len(ur) == 0:
        raise DataError(
            "reference is empty: the Pythia score is a fraction of its positions; skip texts shorter "
            "than prefix + suffix"
        )
    return _positions_equal(uc, ur) / len(ur)


def copies_160_chars(candidate: str, reference: str, *, min_chars: int = SUBSTANTIAL_COPY_CHARS) -> bool:
    """True when candidate and reference share a verbatim run of at least `min_chars` characters (160 by
    default; see `SUBSTANTIAL_COPY_CHARS`)."""
    if not (isinstance(candidate, str) and isinstance(reference, str)):
        raise DataError("copies_160_chars counts characters: pass both texts as str (decode token ids first)")
    return longest_common_substring(candidate, reference).length >= min_chars


def approximately_memorized(
    candidate: TextOrTokens, reference: TextOrTokens, *, min_bleu: float = APPROX_MEMORIZATION_BLEU, **bleu_kwargs: Any
) -> bool:
    """True when sentence BLEU (`bleu`, "add1" smoothing unless given) is at least `min_bleu` (0.75 by default;
    see `APPROX_MEMORIZATION_BLEU`)."""
    return bleu(candidate, reference, **bleu_kwargs) >= min_bleu


# ---------------------------------------------------------------------------------------------- many pairs

INDEX_CACHE_CHARS = 200_000  # overlap_table keeps suffix automata of up to this many reference characters
OVERLAP_COLUMNS = {  # column -> dtype of overlap_table's frame
    **dict.fromkeys(
        (
            "candidate_chars",
            "reference_chars",
            "lcsubstr_chars",
            "lcsubstr_candidate_start",
            "lcsubstr_reference_start",
            "candidate_tokens",
            "reference_tokens",
            "lcsubstr_tokens",
            "lcsubstr_tokens_candidate_start",
            "lcsubstr_tokens_reference_start",
        ),
        "int64",
    ),
    "lcsubstr_tokens_ratio": "float64",
    "lcs_tokens": "int64",
    "prefix_match_tokens": "int64",
    "pythia_score": "float64",
    "exact_match": "bool",
    **dict.fromkeys(("rougeL_precision", "rougeL_recall", "rougeL_f", "bleu"), "float64"),
    "edit_distance_chars": "int64",
    "norm_edit_distance_chars": "float64",
    **dict.fromkeys(("substantial_lcs", "substantial_bleu", "substantial"), "bool"),
}


def _check_texts(values: Sequence[Any], name: str) -> list[str]:
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, str):
            what = (
                "missing (NA)"
                if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA
                else f"a {type(v).__name__}"
            )
            raise DataError(f"{name}: row {i} is {what}, not a str; fill or drop it (use '' for an empty text)")
        out.append(v)
    return out


def overlap_table(
    candidates: Sequence[str],
    references: Sequence[str],
    *,
    candidate_tokens: Sequence[TextOrTokens] | None = None,
    reference_tokens: Sequence[TextOrTokens] | None = None,
    tokenizer: Tokenizer = default_tokenizer,
    bleu_smoothing: str = "add1",
    criteria: CopyingCriteria = CopyingCriteria(),
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Every overlap measure for many (candidate, reference) text pairs, one row per pair (in input order).

    candidates, references: (n_pairs,) strs, the generations and the true texts.
    candidate_tokens, reference_tokens: optional (n_pairs,) token-id sequences of the same texts (e.g. from the
        model's tokenizer). Given, the token measures use them; otherwise they use `tokenizer`'s words. Give both
        or neither.
    progress: called with 1 after each pair (e.g. the `advance` of `rote.core.runs.progress_bar`).

    Columns (counts are ints, lengths and positions in characters or tokens as named):
      candidate_chars, reference_chars; lcsubstr_chars with lcsubstr_candidate_start / _reference_start (the span
      to highlight); candidate_tokens, reference_tokens (token or word counts); lcsubstr_tokens with its starts
      and lcsubstr_tokens_ratio = lcsubstr_tokens / reference_tokens (MemHunter's LCSS ratio; NaN for an empty
      reference);
      lcs_tokens (longest common subsequence); prefix_match_tokens, pythia_score and exact_match (candidate
      vs the reference's leading tokens; pythia_score is NaN and exact_match False where the reference has no
      tokens); rougeL_precision/recall/f and bleu (on `tokenizer`'s words, always); edit_distance_chars,
      norm_edit_distance_chars; substantial_lcs (lcsubstr_chars >= criteria.min_chars), substantial_bleu
      (bleu >= criteria.min_bleu) and substantial (either). `frame.attrs` records the token unit and criteria.

    A reference that occurs in several pairs (one article, many prefix lengths) is indexed once while the indexed
    references stay under INDEX_CACHE_CHARS characters in all.
    """
    cands = _check_texts(candidates, "candidates")
    refs = _check_texts(references, "references")
    if len(cands) != len(refs):
        raise DataError(
            f"overlap_table: {len(cands)} candidates but {len(refs)} references; pass one reference per candidate"
        )
    if (candidate_tokens is None) != (reference_tokens is None):
        raise ConfigError("overlap_table: give both candidate_tokens and reference_tokens, or neither")
    if candidate_tokens is not None:
        if len(candidate_tokens) != len(cands) or len(reference_tokens) != len(cands):
            raise DataError(
                f"overlap_table: {len(cands)} texts but {len(candidate_tokens)} candidate_tokens and "
                f"{len(reference_tokens)} reference_tokens; pass one token sequence per text"
            )
    if bleu_smoothing not in BLEU_SMOOTHINGS:
        raise ConfigError(
            f"overlap_table: bleu_smoothing must be one of {', '.join(BLEU_SMOOTHINGS)}; got {bleu_smoothing!r}"
        )
    char_index: dict[str, SubstringIndex] = {}  # insertion-ordered: the oldest is evicted first
    indexed_chars = 0
    rows = []
    for i, (cand, ref) in enumerate(zip(cands, refs)):
        words_c, words_r = _pair(
            tokenizer(cand), tokenizer(ref), (f"tokenizer(candidates[{i}])", f"tokenizer(references[{i}])")
        )
        if candidate_tokens is not None:
            tc, tr = candidate_tokens[i], reference_tokens[i]
            try:
                tc, tr = _pair(tc, tr, (f"candidate_tokens[{i}]", f"reference_tokens[{i}]"))
            except DataError as exc:
                raise DataError(f"overlap_table: {exc}") from None
        else:
            tc, tr = words_c, words_r
        if ref not in char_index:
            # an index takes roughly 0.4 kB per character: keep at most INDEX_CACHE_CHARS of references
            while char_index and indexed_chars + len(ref) > INDEX_CACHE_CHARS:
                indexed_chars -= char_index.pop(next(iter(char_index))).n
            char_index[ref] = SubstringIndex(ref)
            indexed_chars += len(ref)
        sub = char_index[ref].longest_match(cand)  # a = reference, b = candidate
        sub_t = longest_common_substring(tr, tc)
        pm = _first_mismatch(tc, tr)
        b = bleu(words_c, words_r, smoothing=bleu_smoothing, tokenizer=None)
        ed = _levenshtein_units(cand, ref)
        rl = _prf(_lcs_units(words_c, words_r), len(words_c), len(words_r))
        rows.append(
            {
                "candidate_chars": len(cand),
                "reference_chars": len(ref),
                "lcsubstr_chars": sub.length,
                "lcsubstr_candidate_start": sub.start_b,
                "lcsubstr_reference_start": sub.start_a,
                "candidate_tokens": len(tc),
                "reference_tokens": len(tr),
                "lcsubstr_tokens": sub_t.length,
                "lcsubstr_tokens_candidate_start": sub_t.start_b,
                "lcsubstr_tokens_reference_start": sub_t.start_a,
                "lcsubstr_tokens_ratio": sub_t.length / len(tr) if len(tr) else math.nan,
                "lcs_tokens": _lcs_units(tc, tr),
                "prefix_match_tokens": pm,
                "pythia_score": _positions_equal(tc, tr) / len(tr) if len(tr) else math.nan,
                "exact_match": bool(len(tr) > 0 and pm == len(tr)),
                "rougeL_precision": rl.precision,
                "rougeL_recall": rl.recall,
                "rougeL_f": rl.fmeasure,
                "bleu": b,
                "edit_distance_chars": ed,
                "norm_edit_distance_chars": ed / max(len(cand), len(ref)) if (cand or ref) else 0.0,
                "substantial_lcs": sub.length >= criteria.min_chars,
                "substantial_bleu": b >= criteria.min_bleu,
            }
        )
        rows[-1]["substantial"] = rows[-1]["substantial_lcs"] or rows[-1]["substantial_bleu"]
        if progress is not None:
            progress(1)
    frame = pd.DataFrame(rows, columns=list(OVERLAP_COLUMNS)).astype(OVERLAP_COLUMNS)  # typed even when empty
    frame.attrs["token_unit"] = "token ids" if candidate_tokens is not None else "words (tokenizer)"
    frame.attrs["criteria"] = criteria.to_dict()
    frame.attrs["bleu_smoothing"] = bleu_smoothing
    return frame
