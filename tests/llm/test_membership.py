"""Text membership inference: per-text scores against direct computations, AUC against scikit-learn, and errors."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from rote.core.errors import ConfigError
from rote.llm.membership import ATTACKS, check_same_tokenizer, membership_inference, membership_scores

from .conftest import NGramBackend

MEMBERS = [
    "Four score and seven years ago our fathers brought forth on this continent a new nation.",
    "We the People of the United States, in Order to form a more perfect Union, establish Justice.",
    "In the beginning God created the heaven and the earth. And the earth was without form.",
    "Call me Ishmael. Some time back, never mind how long precisely, having little money.",
]
NONMEMBERS = [
    "On 12 May 2027 the council of Velmora voted to build a glass footbridge by the harbour.",
    "Quilla Rasmussen won the Saltmere marathon in two hours and nineteen minutes last spring.",
    "Scientists in Tyrwick found that a heat-pump network cut energy use by a third in a year.",
]


def test_scores_match_a_direct_computation():
    b = NGramBackend(MEMBERS, order=8, lam=0.05)
    texts = MEMBERS[:2] + NONMEMBERS[:1]
    s = membership_scores(b, texts, k=0.25)
    assert list(s.columns) == ["n_tokens", "truncated", *ATTACKS[:4]]
    for i, text in enumerate(texts):
        ids = [ord(c) for c in text]
        # log p(x_t | x_<t) straight from the fake model's distribution (the first character is not scored)
        lp = np.array([np.log(b.dist(ids[:t])[ids[t]]) for t in range(1, len(ids))])
        assert s["n_tokens"][i] == len(text) - 1
        assert s["loss"][i] == pytest.approx(lp.mean())
        assert s["zlib"][i] == pytest.approx(lp.mean() / len(zlib.compress(text.encode())))
        m = int(len(lp) * 0.25)
        assert s["min_k"][i] == pytest.approx(np.sort(lp)[:m].mean())
        # min-k%++: standardize by the mean and std of log p(z) under the next-token distribution
        z = []
        for t in range(1, len(ids)):
            p = b.dist(ids[:t])
            mu = (p * np.log(p)).sum()
            sd = np.sqrt((p * np.log(p) ** 2).sum() - mu**2)
            z.append((np.log(p[ids[t]]) - mu) / sd)
        assert s["min_k_plus_plus"][i] == pytest.approx(np.sort(z)[:m].mean())


def test_members_of_a_copying_model_are_separated_and_auc_matches_sklearn():
    b = NGramBackend(MEMBERS, order=10, lam=0.05)
    res = membership_inference(b, MEMBERS, NONMEMBERS, n_boot=200, seed=3)
    assert res.n_members == 4 and res.n_nonmembers == 3 and res.attacks == list(ATTACKS[:4])
    y = res.rows["member"].to_numpy()
    for a in res.attacks:
        assert res.metrics[a]["auc"] == pytest.approx(roc_auc_score(y, res.rows[a]))
        iv = res.metrics[a]["auc_interval"]
        assert iv["low"] <= res.metrics[a]["auc"] <= iv["high"]
    assert res.metrics["loss"]["auc"] == 1.0  # memorized texts have near-zero loss, fresh ones do not
    assert res.rows["id"].tolist()[:2] == ["member-0", "member-1"]
    again = membership_inference(b, MEMBERS, NONMEMBERS, n_boot=200, seed=3)
    assert again.metrics == res.metrics  # same seed, same intervals


def test_reference_attack_and_tokenizer_mismatch():
    target = NGramBackend(MEMBERS, order=10, lam=0.05)
    ref = NGramBackend(MEMBERS[:1] + NONMEMBERS, order=3, lam=0.05, name="ref")
    res = membership_inference(target, MEMBERS, NONMEMBERS, reference=ref, n_boot=0)
    assert "reference" in res.attacks and res.reference_model == "ref"
    direct = membership_scores(target, MEMBERS)["loss"] - membership_scores(ref, MEMBERS)["loss"]
    assert np.allclose(res.rows["reference"][:4], direct)
    other = NGramBackend(MEMBERS, name="other", fingerprint="bpe-50k")
    with pytest.raises(ConfigError, match="different tokenizer.*bpe-50k vs chars-256"):
        check_same_tokenizer(target, other)
    with pytest.raises(ConfigError, match="different tokenizer"):
        membership_inference(target, MEMBERS, NONMEMBERS, reference=other)


def test_bad_membership_inputs():
    b = NGramBackend(MEMBERS)
    with pytest.raises(ConfigError, match="text 1 .* fewer than two tokens"):
        membership_scores(b, ["fine text", "x"])
    with pytest.raises(ConfigError, match="no nonmember texts"):
        membership_inference(b, MEMBERS, [])
    with pytest.raises(ConfigError, match="`k` .* must be in"):
        membership_scores(b, MEMBERS, k=0)
    b.supports_logprobs = False
    with pytest.raises(ConfigError, match="needs token log-probabilities"):
        membership_scores(b, MEMBERS)


def test_long_texts_are_cut_to_the_context():
    b = NGramBackend(MEMBERS, max_length=20)
    s = membership_scores(b, [MEMBERS[0], "short text"])
    assert s["truncated"].tolist() == [True, False] and s["n_tokens"].tolist() == [19, 9]


def test_bos_is_one_explicit_option():
    b = NGramBackend(MEMBERS, order=8, lam=0.05)
    b.bos_token_id, b.auto_start_ids = 1, ()
    text = MEMBERS[0]
    ids = [ord(c) for c in text]
    off = membership_scores(b, [text], bos="off")
    on = membership_scores(b, [text], bos="on")
    auto = membership_scores(b, [text], bos="auto")
    assert off["n_tokens"][0] == len(text) - 1 and on["n_tokens"][0] == len(text)
    assert auto["loss"][0] == off["loss"][0]  # auto = what the tokenizer adds: nothing here
    seq = [1, *ids]  # with BOS: the first character is scored too, after the BOS
    lp = np.array([np.log(b.dist(seq[:t])[seq[t]]) for t in range(1, len(seq))])
    assert on["loss"][0] == pytest.approx(lp.mean())
    b.auto_start_ids = (1,)
    assert membership_scores(b, [text], bos="auto")["loss"][0] == pytest.approx(lp.mean())
    res = membership_inference(b, MEMBERS, NONMEMBERS, bos="on", n_boot=0)
    assert res.bos == "on" and res.start_ids == [1]
    with pytest.raises(ConfigError, match="`bos` must be one of auto, on, off"):
        membership_scores(b, [text], bos="yes")
    b.bos_token_id = None
    with pytest.raises(ConfigError, match="has no BOS token"):
        membership_scores(b, [text], bos="on")


def test_recall_and_neighbourhood_against_direct_computations():
    b = NGramBackend(MEMBERS, order=8, lam=0.05)

    def lps(text, prefix=""):
        ids = [ord(c) for c in prefix + text]
        out = np.array([np.log(b.dist(ids[:t])[ids[t]]) for t in range(1, len(ids))])
        return out[-(len(text) - 1) :]  # the text's own tokens after its first

    res = membership_inference(b, MEMBERS, NONMEMBERS, recall_shots=1, n_neighbours=3, n_boot=0, seed=2)
    assert res.n_nonmembers == 2 and {"recall", "neighbourhood"} <= set(res.attacks)
    prefix = NONMEMBERS[0].rstrip() + "\n\n"
    r = res.rows.set_index("id")
    for i, text in enumerate(MEMBERS):
        expected = lps(text, prefix).mean() / lps(text).mean()
        assert r.loc[f"member-{i}", "recall"] == pytest.approx(expected)
    from rote.llm.membership import neighbours

    scored = MEMBERS + NONMEMBERS[1:]  # the texts evaluated (the ReCaLL shot is left out); their words are the pool
    nb = neighbours(scored, 3, seed=2)
    assert len(nb) == 6 and all(len(v) == 3 and all(x != scored[i] for x in v) for i, v in enumerate(nb))
    assert nb == neighbours(scored, 3, seed=2) and nb != neighbours(scored, 3, seed=3)
    full = [np.array([np.log(b.dist([ord(c) for c in t][:j])[ord(t[j])]) for j in range(1, len(t))]) for t in nb[0]]
    own = np.array(
        [np.log(b.dist([ord(c) for c in MEMBERS[0]][:j])[ord(MEMBERS[0][j])]) for j in range(1, len(MEMBERS[0]))]
    )
    assert r.loc["member-0", "neighbourhood"] == pytest.approx(own.mean() - np.mean([f.mean() for f in full]))
    # the model memorized the members: their perturbed copies are much less likely, so the attack separates them
    assert res.metrics["neighbourhood"]["auc"] == 1.0


def test_ngram_overlap_measures_distribution_shift():
    from rote.llm.corpus import famous_texts, fresh_texts
    from rote.llm.membership import ngram_overlap

    # by hand: word bigrams; "a b c" vs "a b d": the member shares "a b" with the non-member
    o = ngram_overlap(["a b c", "x y z"], ["a b d", "p q r"], n=2, blind_n=2)
    assert o["nonmember_in_members"] == pytest.approx(1 / 4) and o["member_in_nonmembers"] == pytest.approx(1 / 4)
    famous = famous_texts()["text"].tolist()
    shifted = ngram_overlap(famous, fresh_texts(24, seed=0))
    assert shifted["blind_auc"] > 0.95  # the two sets can be told apart without any model
    rng = np.random.default_rng(0)
    order = rng.permutation(len(famous))
    same = ngram_overlap([famous[i] for i in order[:12]], [famous[i] for i in order[12:]])
    assert same["blind_auc_low"] < 0.5 < same["blind_auc_high"]  # two halves of one set: no detectable shift
