"""Extraction protocols on the n-gram fake model, with expected values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import ConfigError
from rote.llm.backends.base import Backend, Completion
from rote.llm.extraction import (
    restated_prefix_end,
    PROMPT_TEMPLATES,
    extract,
    extraction_risk,
    memorization_score,
    prompted_extraction,
    render_prompt,
)

from .conftest import NGramBackend

TRAIN = [
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty.",
    "Call me Ishmael. Some time back, never mind how long precisely, having little or no money in my purse.",
]


def test_copying_model_extracts_everything_with_hand_computed_probability():
    lam = 0.02
    b = NGramBackend(TRAIN, order=40, lam=lam)
    res = extract(b, TRAIN, prefix_tokens=(10, 30), suffix_tokens=40, n_samples=(1, 7), n_boot=200)
    rows = res.rows
    assert res.extraction_rate == {10: 1.0, 30: 1.0} and res.pythia_score == {10: 1.0, 30: 1.0}
    assert res.n_skipped == 0 and len(rows) == 4
    # one character per token: the whole 40-character suffix is the longest common substring
    assert (rows["lcsubstr_chars"] == 40).all() and (rows["lcsubstr_tokens"] == 40).all()
    assert (rows["generated_text"] == rows["suffix_text"]).all()
    # the suffix always starts at character max(k) = 30, whatever the prefix length
    assert rows["suffix_text"].tolist() == [t[30:70] for t in TRAIN for _ in (10, 30)]
    assert rows["prefix_text"].tolist() == [t[s:30] for t in TRAIN for s in (20, 0)]
    # each suffix character has probability (1 - lam) + lam / 256 under the copying model
    p_tok = (1 - lam) + lam / 256
    assert np.allclose(rows["logp_suffix"], 40 * math.log(p_tok))
    assert np.allclose(rows["risk_n7"], 1 - (1 - p_tok**40) ** 7)
    assert np.allclose(rows["risk_n1"], p_tok**40)
    assert res.groups["extraction_rate"].tolist() == [1.0, 1.0]


def test_alternating_model_matches_half_the_positions():
    # Trained on "abab...", the model continues any "a" with "b" and any "b" with "a". On the text "aaaa..." its
    # greedy continuation is "baba...": positions 2, 4, ... match, so the Pythia score is exactly 1/2, the first
    # token is wrong (prefix match 0) and the longest common substring is one character.
    b = NGramBackend(["ab" * 50], order=1, lam=0.0)
    res = extract(b, ["a" * 60], prefix_tokens=(10,), suffix_tokens=20, n_boot=0)
    r = res.rows.iloc[0]
    assert r["generated_text"] == "ba" * 10
    assert r["pythia_score"] == 0.5 and not r["exact_match"] and r["prefix_match_tokens"] == 0
    assert r["lcsubstr_chars"] == 1
    assert res.extraction_rate == {10: 0.0}
    # p("a" | "a") = 0 under this model, so the suffix probability is 0 and so is the risk
    assert r["logp_suffix"] == -np.inf and r["risk_n1000"] == 0.0
    assert memorization_score(b, ["a" * 60, "a" * 10], context=10, continuation=20).tolist()[0] == 0.5
    assert math.isnan(memorization_score(b, ["a" * 60, "a" * 10], context=10, continuation=20)[1])


def test_short_texts_are_skipped_and_counted_groups_and_errors():
    b = NGramBackend(TRAIN, order=40, lam=0.01)
    frame = pd.DataFrame({"id": ["a", "b", "short"], "text": [*TRAIN, "too short"], "kind": ["x", "y", "x"]})
    res = extract(b, frame, prefix_tokens=(20,), suffix_tokens=30, group="kind", n_boot=100)
    assert res.n_texts == 3 and res.n_skipped == 1 and res.rows["id"].tolist() == ["a", "b"]
    assert res.groups["group"].tolist() == ["x", "y"] and res.groups["n_texts"].tolist() == [1, 1]
    assert "1 skipped" in res.summary()
    with pytest.raises(ConfigError, match="all 1 texts are shorter than prefix 20 \\+ suffix 30"):
        extract(b, ["too short"], prefix_tokens=(20,), suffix_tokens=30)
    with pytest.raises(ConfigError, match="group column 'nope'"):
        extract(b, frame, group="nope")
    small = NGramBackend(TRAIN, max_length=64)
    with pytest.raises(ConfigError, match="exceed the model's context of 64"):
        extract(small, TRAIN, prefix_tokens=(50,), suffix_tokens=50)
    with pytest.raises(ConfigError, match="positive"):
        extract(b, TRAIN, prefix_tokens=(0,))


def test_extraction_risk_is_stable_for_tiny_probabilities():
    assert extraction_risk(math.log(0.5), 3) == pytest.approx(1 - 0.5**3)
    # p = 1e-20: the naive 1 - (1 - p)^n rounds to 0; the risk is n * p to first order
    assert extraction_risk(math.log(1e-20), 1000) == pytest.approx(1e-17, rel=1e-9)
    assert extraction_risk(0.0, 5) == 1.0
    with pytest.raises(ConfigError):
        extraction_risk(-1.0, 0)


class ChatEcho(Backend):
    """A text-only chat endpoint: answers by reciting a stored text after the prefix it is shown, refuses role-play."""

    name, tokenizer_fingerprint, supports_logprobs, supports_token_ids = "echo", "none", False, False

    def __init__(self, source: str):
        self.source = source

    def encode(self, texts):
        raise NotImplementedError

    def decode(self, ids):
        raise NotImplementedError

    def score(self, ids, **kw):
        raise NotImplementedError

    def generate(self, prompts, max_new_tokens, **kw):
        raise NotImplementedError

    def complete(self, prompts, max_new_tokens, *, greedy=True, seed=0):
        out = []
        for p in prompts:
            assert isinstance(p, list)  # text-only endpoints get chat messages
            content = p[-1]["content"]
            if "Archivist" in content:
                out.append(Completion("I'm sorry, I can't recite that.", True, "stop"))
                continue
            prefix = content.split("\n\n")[1]
            rest = self.source[len(prefix) :].lstrip()
            out.append(Completion(" ".join(rest.split()[:max_new_tokens]), False, "length"))
        return out


def test_prompted_extraction_counts_refusals_and_words():
    text = "It was the best of times, it was the worst of times, it was the age of wisdom."
    b = ChatEcho(text)
    res = prompted_extraction(
        b, [text], prefix_tokens=(3, 5), templates=("plain", "conversation", "roleplay"), max_new_tokens=4
    )
    assert res.prefix_unit == "words" and res.n_skipped == 0
    assert res.refusal_rate == {"plain": 0.0, "conversation": 0.0, "roleplay": 1.0}
    rows = res.rows.set_index(["template", "prefix_tokens"])
    assert rows.loc[("plain", 3), "prefix_text"] == "It was the"
    # the answer recites the next 4 words verbatim: the copied span is the whole answer
    answer = "best of times, it"
    assert rows.loc[("plain", 3), "generated_text"] == answer
    assert rows.loc[("plain", 3), "lcsubstr_chars"] == len(answer)
    assert rows.loc[("plain", 3), "rougeL_f"] == 1.0  # reference cut to the answer's 4 words
    assert rows.loc[("conversation", 5), "generated_text"] == "times, it was the"
    assert rows.loc[("roleplay", 3), "refused"] and not rows.loc[("plain", 3), "refused"]
    assert res.groups["refusal_rate"].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


def test_prompted_extraction_on_a_local_model_uses_tokens():
    b = NGramBackend(TRAIN, order=60, lam=0.0)
    res = prompted_extraction(b, TRAIN, prefix_tokens=(25, 50), templates=("none",), max_new_tokens=30)
    assert res.prefix_unit == "tokens"
    # a bare prefix continued by a copying model reproduces the next 30 characters
    assert (res.rows["lcsubstr_chars"] == 30).all()
    assert res.rows["generated_text"].tolist() == [t[k : k + 30] for t in TRAIN for k in (25, 50)]
    with pytest.raises(ConfigError, match="unknown prompt template"):
        prompted_extraction(b, TRAIN, templates=("poem",))


def test_templates_render_the_prefix_verbatim():
    msgs = render_prompt(PROMPT_TEMPLATES["conversation"], "In the {beginning}")
    assert len(msgs) == 3 and "In the {beginning}" in msgs[-1]["content"]
    assert all("{prefix}" in m["content"] for t in PROMPT_TEMPLATES.values() for m in t[-1:])


def test_text_only_backend_cannot_do_greedy_extraction():
    with pytest.raises(ConfigError, match="prompted"):
        extract(ChatEcho("x"), ["x"])


def test_report_highlights_the_copied_span_escaped():
    from rote.llm.report import LLMReport, extraction_report

    r = LLMReport("t")
    r.add_marked_text("span <1>", "ab<script>x</script>cd", 2, 8)
    html = r.render()
    assert "ab<mark>&lt;script&gt;</mark>x&lt;/script&gt;cd" in html and "span &lt;1&gt;" in html
    b = NGramBackend(TRAIN, order=40, lam=0.01)
    res = extract(b, TRAIN, prefix_tokens=(10,), suffix_tokens=40, n_boot=0)
    html = extraction_report(res, top=1)
    # the longest copy is the whole 40-character suffix of the first text (ties broken by id)
    assert f"<mark>{TRAIN[0][10:50]}</mark>" in html
    # one most-copied span, and every row of the per-text table marks its span in the true suffix and the generation
    assert html.count("<mark>") == 1 + 2 * len(res.rows)
    assert html.count(f"<mark>{TRAIN[0][10:50]}</mark>") == 3


class Restater(ChatEcho):
    """Restates the prefix it is shown, then recites the next words."""

    def complete(self, prompts, max_new_tokens, *, greedy=True, seed=0):
        out = []
        for p in prompts:
            prefix = p[-1]["content"].split("\n\n")[1]
            rest = self.source[len(prefix) :].lstrip()
            out.append(Completion(f"Sure: {prefix} {' '.join(rest.split()[:max_new_tokens])}", False, "length"))
        return out


def test_a_restated_prefix_is_left_out_of_the_comparison():
    # the source repeats itself, so a restated prefix would match the rest of the text verbatim
    text = (
        "Blessed are the poor in spirit for theirs is the kingdom of heaven. Blessed are the meek for they shall "
        "inherit the earth. Blessed are the poor in spirit for theirs is the kingdom of heaven."
    )
    b = Restater(text)
    res = prompted_extraction(b, [text], prefix_tokens=(13,), max_new_tokens=3)
    r = res.rows.iloc[0]
    prefix = "Blessed are the poor in spirit for theirs is the kingdom of heaven."
    assert r["prefix_text"] == prefix and r["echo_chars"] == len("Sure: ") + len(prefix)
    # only the continuation after the restated prefix counts: " Blessed are the"
    assert r["lcsubstr_chars"] == len(" Blessed are the")
    answer = r["generated_text"]
    assert (
        answer[r["lcsubstr_candidate_start"] : r["lcsubstr_candidate_start"] + r["lcsubstr_chars"]]
        == " Blessed are the"
    )
    whole = prompted_extraction(b, [text], prefix_tokens=(13,), max_new_tokens=3, strip_echo=0).rows.iloc[0]
    assert whole["echo_chars"] == 0 and whole["lcsubstr_chars"] > len(prefix)  # the echo matches the repetition


class PerfectRecall(ChatEcho):
    """An oracle with perfect recall of the 24 famous texts: answers with the true next 60 words after the prefix
    it is shown, optionally after restating the prefix."""

    def __init__(self, texts, restate: bool):
        self.texts, self.restate = texts, restate

    def complete(self, prompts, max_new_tokens, *, greedy=True, seed=0):
        out = []
        for p in prompts:
            prefix = p[-1]["content"].split("\n\n")[1]
            (source,) = [t for t in self.texts if " ".join(t.split()).startswith(prefix)]
            words = source.split()
            k = len(prefix.split())
            answer = " ".join(words[k : k + 60])
            if self.restate:
                answer = f"Here is the text:\n\n{prefix} {answer}"
            out.append(Completion(answer, False, "stop"))
        return out


@pytest.mark.parametrize("restate", [False, True])
def test_a_perfect_recall_oracle_counts_in_full(restate):
    from rote.llm.corpus import famous_texts

    texts = famous_texts()["text"].tolist()
    res = prompted_extraction(PerfectRecall(texts, restate), texts, prefix_tokens=(25, 50), max_new_tokens=60)
    assert len(res.rows) == 48
    expected = []
    for t in texts:
        w = t.split()
        expected += [len(" ".join(w[k : k + 60])) for k in (25, 50)]
    # every answer's whole continuation is a verbatim copy of the rest of the text, and counts in full
    assert res.rows["lcsubstr_chars"].tolist() == expected
    assert (res.rows["echo_chars"] > 0).all() if restate else (res.rows["echo_chars"] == 0).all()
    share = np.mean(np.asarray(expected) >= 160)
    assert res.rows["substantial_lcs"].mean() == pytest.approx(share) and share > 0.95
    assert not res.rows["refused"].any() and not res.rows["filtered"].any()


def test_restated_prefix_rule_by_hand():
    prefix = "We the People of the United States, in Order to form"
    ref = "a more perfect Union, establish Justice"
    assert restated_prefix_end("Sure! " + prefix + " a more", prefix, ref) == len("Sure! ") + len(prefix)
    # the continuation itself is never cut, even when it repeats a 20+ character span of the prefix mid-answer
    rep = "a more perfect Union, of the United States, in Order to grow"  # a text that repeats a clause
    assert restated_prefix_end("a more perfect Union, of the United States, in Order", prefix, rep) == 0
    # a shared span far into the answer is copying, not a restatement
    assert restated_prefix_end("x" * 100 + prefix, prefix, ref) == 0
    # a span from the middle of the prefix that also occurs in the continuation is not a restatement of it
    assert restated_prefix_end("People of the United States", prefix, ref + " People of the United States", 20) == 0
    # a restatement of the middle of the prefix, altered after a while, is one: the span is not continuation text
    # (SmolLM2's role-play answer to Matthew 5 restates verses 3-5 with "who" for "that")
    mid = "the People of the United States, in Order to"
    assert restated_prefix_end("Sure. " + mid + " make", prefix, ref) == len("Sure. ") + len(mid + " ")
    assert restated_prefix_end("Sure! " + prefix, prefix, ref, 0) == 0


def test_bos_option_in_extraction_and_exact_rate_intervals():
    b = NGramBackend(TRAIN, order=6, lam=0.2)
    b.bos_token_id = 1
    on = extract(b, TRAIN, prefix_tokens=(10,), suffix_tokens=12, bos="on", n_boot=0)
    off = extract(b, TRAIN, prefix_tokens=(10,), suffix_tokens=12, bos="off", n_boot=0)
    assert on.bos == "on" and on.start_ids == [1] and off.start_ids == []
    for i, text in enumerate(TRAIN):
        ids = [ord(c) for c in text]
        for start, res in (([1], on), ([], off)):
            seq = start + ids[:22]
            n0 = len(start) + 10
            lp = sum(np.log(b.dist(seq[:t])[seq[t]]) for t in range(n0, n0 + 12))
            assert res.rows["logp_suffix"].iloc[i] == pytest.approx(lp)
    g = off.groups.iloc[0]
    k, n = int(off.rows["exact_match"].sum()), len(off.rows)
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(method="exact")
    assert g["rate_low"] == pytest.approx(ci.low) and g["rate_high"] == pytest.approx(ci.high)
    assert g["rate_high"] > g["extraction_rate"] or g["extraction_rate"] == 1.0
