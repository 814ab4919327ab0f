"""Verbatim-overlap measures (`rote.core.text`) against brute force, textbook DPs, rouge-score and NLTK."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_score import rouge_scorer
from rouge_score import tokenize as rouge_tokenize

from rote.core.errors import ConfigError, DataError
from rote.core.text import (
    APPROX_MEMORIZATION_BLEU,
    SUBSTANTIAL_COPY_CHARS,
    CommonSubstring,
    CopyingCriteria,
    SubstringIndex,
    approximately_memorized,
    bleu,
    copies_160_chars,
    default_tokenizer,
    edit_distance,
    exact_match,
    lcs_length,
    longest_common_substring,
    ngram_overlap,
    normalized_edit_distance,
    overlap_table,
    prefix_match_length,
    pythia_score,
    rouge_l,
)

# ---------------------------------------------------------------------------------------------- oracles


def brute_lcsubstr(a, b) -> tuple[int, int, int]:
    """(length, start_a, start_b) by trying every start pair, in order of start_b then start_a; the first
    strictly longest run wins (the tie rule rote documents)."""
    best = (0, 0, 0)
    for sb in range(len(b)):
        for sa in range(len(a)):
            k = 0
            while sa + k < len(a) and sb + k < len(b) and a[sa + k] == b[sb + k]:
                k += 1
            if k > best[0]:
                best = (k, sa, sb)
    return best


def dp_lcs(a, b) -> int:
    """Textbook O(nm) longest-common-subsequence table."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def dp_levenshtein(a, b) -> int:
    """Textbook Wagner-Fischer table."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# small alphabets force repeats; the unicode one mixes accents, combining marks, CJK and astral-plane emoji
ALPHABETS = ["ab", "abc ", "aé\u0301漢😀b"]
texts = st.sampled_from(ALPHABETS).flatmap(
    lambda alpha: st.tuples(st.text(alphabet=alpha, max_size=30), st.text(alphabet=alpha, max_size=30))
)
id_lists = st.tuples(st.lists(st.integers(0, 3), max_size=30), st.lists(st.integers(0, 3), max_size=30))
big_ids = st.tuples(st.lists(st.integers(0, 50_256), max_size=20), st.lists(st.integers(0, 50_256), max_size=20))
pairs = st.one_of(texts, id_lists, big_ids)


# ------------------------------------------------------------------------------------------- longest common substring


@settings(max_examples=300, deadline=None)
@given(pairs)
def test_longest_common_substring_equals_brute_force(pair):
    a, b = pair
    got = longest_common_substring(a, b)
    assert (got.length, got.start_a, got.start_b) == brute_lcsubstr(a, b)
    assert a[got.span_a] == b[got.span_b]
    # numpy arrays of ids give the same answer as lists
    if not isinstance(a, str):
        arr = longest_common_substring(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int32))
        assert arr == got


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abc", max_size=40), st.lists(st.text(alphabet="abc", max_size=15), max_size=5))
def test_substring_index_reused_for_many_queries(text, queries):
    index = SubstringIndex(text)
    if len(text) >= 2:  # a suffix automaton has at most 2n - 1 states
        assert index.n_states <= 2 * len(text) - 1
    for q in queries:
        assert index.longest_match(q) == longest_common_substring(text, q)


def test_longest_common_substring_hand_examples_and_tokens():
    assert longest_common_substring("xabcdy", "zzabcdq") == CommonSubstring(4, 1, 2)
    assert longest_common_substring("", "abc") == CommonSubstring(0, 0, 0)
    assert longest_common_substring("abc", "xyz").length == 0
    # ties: earliest in b, then the first occurrence in a
    assert longest_common_substring("cdab", "abcd") == CommonSubstring(2, 2, 0)
    assert longest_common_substring("aaaa", "aa") == CommonSubstring(2, 0, 0)
    # token ids and str tokens
    assert longest_common_substring([5, 7, 7, 9, 1], [0, 7, 9, 1, 4]) == CommonSubstring(3, 2, 1)
    words = "to be or not to be".split()
    assert longest_common_substring(words, "not to be that".split()) == CommonSubstring(3, 3, 0)
    # astral-plane characters count as one character each
    hit = longest_common_substring("x😀😀y", "😀😀")
    assert hit == CommonSubstring(2, 1, 0)


def test_longest_common_substring_is_linear_on_10k():
    """10 kB random texts with a planted 500-character copy: the right span, found quickly (a loose bound;
    speed is measured in bench/text_overlap.py)."""
    rng = random.Random(3)
    a = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(10_000))
    b = (
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(4_000))
        + a[6_000:6_500]
        + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(5_500))
    )
    got = longest_common_substring(a, b)
    # the planted copy may extend by chance matches at its ends, never shrink
    assert got.length >= 500 and got.start_b <= 4_000 and a[got.span_a] == b[got.span_b]
    assert a[6_000:6_500] in a[got.span_a]


# ---------------------------------------------------------------------------------------------- LCS, edit distance


@settings(max_examples=300, deadline=None)
@given(pairs)
def test_lcs_and_edit_distance_equal_textbook_dp(pair):
    a, b = pair
    assert lcs_length(a, b) == dp_lcs(a, b) == lcs_length(b, a)
    d = dp_levenshtein(a, b)
    assert edit_distance(a, b) == d == edit_distance(b, a)
    longest = max(len(a), len(b))
    assert normalized_edit_distance(a, b) == (d / longest if longest else 0.0)


def test_lcs_and_edit_distance_long_inputs_cross_word_boundaries():
    """Inputs longer than 64 units (several machine words in the bit-parallel kernels)."""
    rng = random.Random(1)
    for n, m in [(65, 64), (200, 130), (300, 1), (129, 129)]:
        a = [rng.randrange(4) for _ in range(n)]
        b = [rng.randrange(4) for _ in range(m)]
        assert lcs_length(a, b) == dp_lcs(a, b)
        assert edit_distance(a, b) == dp_levenshtein(a, b)


def test_edit_distance_hand_examples():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3 and edit_distance("", "") == 0
    assert normalized_edit_distance("kitten", "sitting") == pytest.approx(3 / 7)
    assert normalized_edit_distance("", "") == 0.0 and normalized_edit_distance("a", "") == 1.0
    assert lcs_length("AGGTAB", "GXTXAYB") == 4


# ---------------------------------------------------------------------------------------------- ROUGE-L, n-grams


_SCORER = rouge_scorer.RougeScorer(["rougeL", "rouge1", "rouge2"], use_stemmer=False)
ascii_text = st.text(alphabet="abcAB c,.'!-0 1\n\t", max_size=60)


@settings(max_examples=300, deadline=None)
@given(ascii_text, ascii_text)
def test_rouge_l_and_ngrams_equal_rouge_score_on_ascii(cand, ref):
    want = _SCORER.score(ref, cand)  # rouge-score: score(target, prediction)
    got = rouge_l(cand, ref)
    assert got.precision == pytest.approx(want["rougeL"].precision, abs=1e-12)
    assert got.recall == pytest.approx(want["rougeL"].recall, abs=1e-12)
    assert got.fmeasure == pytest.approx(want["rougeL"].fmeasure, abs=1e-12)
    for n, key in ((1, "rouge1"), (2, "rouge2")):
        g = ngram_overlap(cand, ref, n)
        assert (g.precision, g.recall, g.fmeasure) == pytest.approx(tuple(want[key]), abs=1e-12)
    assert default_tokenizer(cand) == rouge_tokenize.tokenize(cand, None)


def test_rouge_l_on_real_sentences_and_token_ids():
    ref = "In the beginning God created the heaven and the earth. And the earth was without form, and void."
    cand = "In the beginning, God made the heavens and the Earth; the earth was empty and void!"
    want = _SCORER.score(ref, cand)["rougeL"]
    assert tuple(rouge_l(cand, ref).to_dict().values()) == pytest.approx(tuple(want), abs=1e-12)
    # hand-worked: LCS of [1,2,3,4] and [1,3,5,4] is [1,3,4]; P = 3/4, R = 3/4
    got = rouge_l([1, 2, 3, 4], [1, 3, 5, 4])
    assert (got.precision, got.recall, got.fmeasure) == pytest.approx((0.75, 0.75, 0.75))
    assert rouge_l("", "abc").fmeasure == 0.0 and rouge_l("!!!", "...").fmeasure == 0.0


@settings(max_examples=150, deadline=None)
@given(id_lists, st.integers(1, 4))
def test_ngram_overlap_equals_brute_force_on_ids(pair, n):
    cand, ref = pair
    grams_c = [tuple(cand[i : i + n]) for i in range(len(cand) - n + 1)]
    grams_r = [tuple(ref[i : i + n]) for i in range(len(ref) - n + 1)]
    pool = list(grams_r)
    hits = 0
    for g in grams_c:  # clip by consuming reference n-grams one at a time
        if g in pool:
            pool.remove(g)
            hits += 1
    got = ngram_overlap(cand, ref, n)
    p = hits / len(grams_c) if grams_c else 0.0
    r = hits / len(grams_r) if grams_r else 0.0
    assert (got.precision, got.recall) == pytest.approx((p, r))
    assert got.fmeasure == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)


def test_unicode_words_are_kept_by_default_tokenizer():
    assert default_tokenizer("Straße, ÉTÉ—漢字 x_y 42") == ["straße", "été", "漢字", "x", "y", "42"]
    assert rouge_l("Straße été", "straße ete").fmeasure == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------- BLEU


def _nltk(cand, ref, method):
    return sentence_bleu([ref], cand, smoothing_function=getattr(SmoothingFunction(epsilon=0.1), method))


words = st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "a"]), max_size=14)


@settings(max_examples=150, deadline=None)
@given(words, words)
def test_bleu_equals_nltk(cand, ref):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NLTK warns about zero counts without smoothing
        n1 = _nltk(cand, ref, "method1")
        n0 = _nltk(cand, ref, "method0")
        n2 = _nltk(cand, ref, "method2")
    assert bleu(cand, ref, smoothing="floor") == pytest.approx(n1, rel=1e-12, abs=1e-15)
    # NLTK's unsmoothed BLEU puts float_info.min (not 0) in for a zero precision: ~1e-77 instead of 0
    assert bleu(cand, ref, smoothing="none") == pytest.approx(n0, rel=1e-12, abs=1e-60)
    if len(cand) >= 4:  # shorter candidates: NLTK counts max(1, 0) n-grams (documented difference)
        assert bleu(cand, ref) == pytest.approx(n2, rel=1e-12, abs=1e-15)


def test_bleu_hand_worked():
    # identical texts -> 1; no shared unigram -> 0; empty candidate -> 0
    assert bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert bleu("dog runs", "the cat sat") == 0.0 and bleu("", "x") == 0.0 and bleu("", "") == 0.0
    # candidate [a, b, c] vs reference [a, b, d, e]: p1 = 2/3; add1: p2 = (1+1)/(2+1), p3 = (0+1)/(1+1),
    # p4 = (0+1)/(0+1); BP = exp(1 - 4/3)
    want = math.exp(1 - 4 / 3) * (2 / 3 * 2 / 3 * 1 / 2 * 1) ** 0.25
    assert bleu([1, 2, 3], [1, 2, 4, 5]) == pytest.approx(want)
    # unsmoothed: no 3-gram match -> 0; max_n=2 -> BP * sqrt(p1 p2) with p2 = 1/2
    assert bleu([1, 2, 3], [1, 2, 4, 5], smoothing="none") == 0.0
    assert bleu([1, 2, 3], [1, 2, 4, 5], smoothing="none", max_n=2) == pytest.approx(
        math.exp(1 - 4 / 3) * math.sqrt(2 / 3 * 1 / 2)
    )
    # strs go through the tokenizer; tokenizer=None gives character BLEU
    assert bleu("The CAT, sat.", "the cat sat") == pytest.approx(1.0)
    assert bleu("abcd", "abcd", tokenizer=None) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- exact suffix match


@settings(max_examples=200, deadline=None)
@given(pairs)
def test_prefix_match_and_pythia_equal_loops(pair):
    cand, ref = pair
    k = 0
    while k < min(len(cand), len(ref)) and cand[k] == ref[k]:
        k += 1
    assert prefix_match_length(cand, ref) == k
    if len(ref) == 0:
        with pytest.raises(DataError, match="reference is empty"):
            pythia_score(cand, ref)
        return
    same = sum(cand[i] == ref[i] for i in range(min(len(cand), len(ref))))
    assert pythia_score(cand, ref) == same / len(ref)
    assert exact_match(cand, ref) == (list(cand[: len(ref)]) == list(ref))


def test_pythia_score_matches_eval_memorization_formula():
    """Pythia's `(true == gen[:, 32:64]).float().mean(-1)` on a batch of token-id rows."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, 50, size=(20, 32))
    gen = np.where(rng.random((20, 32)) < 0.7, true, rng.integers(0, 50, size=(20, 32)))
    want = (true == gen).astype(np.float32).mean(-1)
    got = [pythia_score(g, t) for g, t in zip(gen, true)]
    assert np.allclose(got, want)
    assert pythia_score([1, 2], [1, 2, 3, 4]) == 0.5  # missing positions count as mismatches
    assert prefix_match_length("abcX", "abcdef") == 3 and exact_match("abcdefgh", "abcdef")


# ---------------------------------------------------------------------------------------------- criteria


def test_copying_criteria():
    assert SUBSTANTIAL_COPY_CHARS == 160 and APPROX_MEMORIZATION_BLEU == 0.75
    rng = random.Random(7)
    article = "".join(rng.choice("abcdefgh ") for _ in range(600))
    assert copies_160_chars("intro " + article[100:260] + " outro", article)  # exactly 160 shared
    assert not copies_160_chars("intro " + article[100:259] + "#", article)  # 159
    assert approximately_memorized(article[:300], article[:300])
    assert not approximately_memorized("completely different words here", article)
    with pytest.raises(ConfigError, match="min_chars"):
        CopyingCriteria(min_chars=0)
    with pytest.raises(DataError, match="pass both texts as str"):
        copies_160_chars([1, 2], [1, 2])


# ---------------------------------------------------------------------------------------------- batch


def test_overlap_table_equals_single_functions():
    rng = random.Random(11)
    vocab = "the of and to in a is that for it as with was on be by".split()
    refs = [" ".join(rng.choice(vocab) for _ in range(rng.randrange(0, 60))) for _ in range(6)]
    cands = [
        r[: len(r) // 2] + " Some Novel words." if i % 2 else " ".join(rng.choice(vocab) for _ in range(30))
        for i, r in enumerate(refs)
    ]
    refs[1] = " ".join(rng.choice(vocab) for _ in range(100))
    cands[0], refs[0] = refs[1][:200], refs[1]  # a long verbatim copy
    refs[3] = refs[1]  # a repeated reference (indexed once)
    calls = []
    frame = overlap_table(cands, refs, progress=calls.append)
    assert len(frame) == 6 and calls == [1] * 6
    assert frame.attrs["token_unit"] == "words (tokenizer)"
    for i, (c, r) in enumerate(zip(cands, refs)):
        row = frame.iloc[i]
        sub = longest_common_substring(r, c)
        assert (row.lcsubstr_chars, row.lcsubstr_reference_start, row.lcsubstr_candidate_start) == (
            sub.length,
            sub.start_a,
            sub.start_b,
        )
        wc, wr = default_tokenizer(c), default_tokenizer(r)
        assert row.lcs_tokens == lcs_length(wc, wr) and row.candidate_tokens == len(wc)
        assert row.lcsubstr_tokens == longest_common_substring(wr, wc).length
        if wr:
            assert row.lcsubstr_tokens_ratio == row.lcsubstr_tokens / len(wr)
        assert row.rougeL_f == pytest.approx(rouge_l(c, r).fmeasure)
        assert row.bleu == pytest.approx(bleu(c, r))
        assert row.edit_distance_chars == edit_distance(c, r)
        assert row.norm_edit_distance_chars == pytest.approx(normalized_edit_distance(c, r))
        assert row.prefix_match_tokens == prefix_match_length(wc, wr)
        if wr:
            assert row.pythia_score == pythia_score(wc, wr) and row.exact_match == exact_match(wc, wr)
        else:
            assert math.isnan(row.pythia_score) and not row.exact_match
        assert row.substantial_lcs == (sub.length >= 160) and row.substantial_bleu == (row.bleu >= 0.75)
        assert row.substantial == (row.substantial_lcs or row.substantial_bleu)
    assert frame.lcsubstr_chars.iloc[0] == 200 and frame.substantial_lcs.iloc[0]
    # a tiny index cache (evicting on every new reference) gives the same table
    import rote.core.text as text_module

    old = text_module.INDEX_CACHE_CHARS
    text_module.INDEX_CACHE_CHARS = 10
    try:
        pd.testing.assert_frame_equal(overlap_table(cands, refs), frame)
    finally:
        text_module.INDEX_CACHE_CHARS = old


def test_overlap_table_with_token_ids_and_bad_input():
    cands, refs = ["a b c", "x y"], ["a b c d", "x z"]
    frame = overlap_table(
        cands,
        refs,
        candidate_tokens=[[1, 2, 3], np.array([7, 8])],
        reference_tokens=[[1, 2, 3, 4], [7, 9]],
        criteria=CopyingCriteria(min_chars=3),
    )
    assert frame.prefix_match_tokens.tolist() == [3, 1] and frame.pythia_score.tolist() == [0.75, 0.5]
    assert frame.substantial_lcs.tolist() == [True, False] and frame.attrs["token_unit"] == "token ids"
    # pandas 3 string columns are accepted; a missing value is named by row
    ok = overlap_table(pd.Series(cands, dtype="str"), pd.Series(refs, dtype="str"))
    assert ok.lcsubstr_chars.tolist() == [5, 2]  # "a b c" and "x "
    with pytest.raises(DataError, match="references: row 1 is missing"):
        overlap_table(cands, pd.Series(["a", None], dtype="str"))
    with pytest.raises(DataError, match="2 candidates but 1 references"):
        overlap_table(cands, refs[:1])
    with pytest.raises(ConfigError, match="both candidate_tokens and reference_tokens"):
        overlap_table(cands, refs, candidate_tokens=[[1], [2]])
    with pytest.raises(DataError, match=r"candidate_tokens\[1\]"):
        overlap_table(cands, refs, candidate_tokens=[[1], [0.5]], reference_tokens=[[1], [2]])
    empty = overlap_table([], [])
    assert len(empty) == 0 and empty.lcsubstr_chars.dtype == np.int64 and empty.bleu.dtype == np.float64
    assert empty.substantial.dtype == bool


def test_bad_inputs_name_the_argument_and_fix():
    with pytest.raises(DataError, match="a is a str but b is a sequence of int token ids"):
        longest_common_substring("abc", [1, 2])
    with pytest.raises(DataError, match="decode it to str"):
        lcs_length(b"abc", "abc")
    with pytest.raises(DataError, match="must be 1-D"):
        edit_distance(np.zeros((2, 2), dtype=int), [1])
    with pytest.raises(DataError, match=r"candidate: item 0 is 0.5 \(float\)"):
        rouge_l([0.5, 1.5], [1, 2])
    with pytest.raises(DataError, match="dtype float64"):
        rouge_l(np.array([0.5, 1.5]), [1, 2])
    with pytest.raises(DataError, match="item 0 is True"):
        pythia_score([True, 2], [1, 2])
    with pytest.raises(DataError, match="pass '' for an empty text"):
        longest_common_substring("abc", [])
    with pytest.raises(DataError, match="item 1"):
        lcs_length(["a", 3], ["a"])
    with pytest.raises(ConfigError, match="smoothing must be one of"):
        bleu("a", "a", smoothing="magic")
    with pytest.raises(ConfigError, match="n must be"):
        ngram_overlap("a", "a", 0)
    with pytest.raises(DataError, match="indexed text is a str"):
        SubstringIndex("abc").longest_match([1, 2])
    # an empty token sequence is compatible with either token kind
    assert lcs_length([], ["a"]) == 0 and edit_distance([], [1, 2]) == 2
    assert Counter(default_tokenizer("A a")) == Counter({"a": 2})


def test_pandas_and_numpy_token_containers():
    assert lcs_length(pd.Series(["a", "b", "c"], dtype="str"), ["a", "c"]) == 2
    assert edit_distance(pd.Series([1, 2, 3]), np.array([1, 3], dtype=np.uint16)) == 1
    import torch

    assert longest_common_substring(torch.tensor([5, 6, 7]), [0, 6, 7]) == CommonSubstring(2, 1, 1)
    with pytest.raises(DataError, match="a: item 1 is missing"):
        lcs_length(pd.array([1, None], dtype="Int64"), [1])


# ---------------------------------------------------------------------------------------------- scale (slow)


def _numpy_rows(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    """(longest common substring, LCS, Levenshtein) with numpy-vectorized rows of the three textbook DPs."""
    m = len(b)
    sub_prev = np.zeros(m + 1, np.int64)
    lcs_prev = np.zeros(m + 1, np.int64)
    lev_prev = np.arange(m + 1, dtype=np.int64)
    j = np.arange(m + 1, dtype=np.int64)
    best = 0
    for i, x in enumerate(a, 1):
        eq = b == x
        sub = np.zeros(m + 1, np.int64)
        sub[1:] = (sub_prev[:-1] + 1) * eq
        best = max(best, int(sub.max()))
        lcs = np.zeros(m + 1, np.int64)  # LCS rows are non-decreasing: cur[j] = max_{k<=j} of the diagonal/up terms
        lcs[1:] = np.maximum.accumulate(np.maximum(lcs_prev[1:], (lcs_prev[:-1] + 1) * eq))
        t = np.empty(m + 1, np.int64)  # Levenshtein: insertions are a running minimum of (t[k] - k) + j
        t[0] = i
        t[1:] = np.minimum(lev_prev[1:] + 1, lev_prev[:-1] + ~eq)
        lev = np.minimum.accumulate(t - j) + j
        sub_prev, lcs_prev, lev_prev = sub, lcs, lev
    return best, int(lcs_prev[-1]), int(lev_prev[-1])


@pytest.mark.slow
def test_kernels_at_scale_equal_numpy_dps():
    """3,000 x 3,000 units (chars, then 20-symbol token ids), with planted copies: all three kernels equal the
    vectorized DPs."""
    rng = np.random.default_rng(0)
    for alphabet in (4, 20):
        a = rng.integers(0, alphabet, 3_000)
        b = rng.integers(0, alphabet, 3_000)
        b[1_000:1_400] = a[2_000:2_400]
        want = _numpy_rows(a, b)
        sub = longest_common_substring(a, b)
        assert (sub.length, lcs_length(a, b), edit_distance(a, b)) == want
        text_a, text_b = "".join(chr(97 + v) for v in a), "".join(chr(97 + v) for v in b)
        assert longest_common_substring(text_a, text_b) == sub
