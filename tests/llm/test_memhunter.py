"""MemHunter (rote.llm.memhunter) and the gradient path (rote.llm.backends.grad): scores against brute force and a
hand-computable n-gram model, the dataset test against scipy, generator training with exact resume, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from rote.core.errors import BackendError, ConfigError, DataError
from rote.llm.backends.grad import sequence_nll, torch_module
from rote.llm.corpus import make_canaries
from rote.llm.memhunter import (
    MemHunterConfig,
    PromptGenerator,
    build_prompt,
    comparability_warnings,
    cut_texts,
    dataset_test,
    detect_dataset,
    dominant_script,
    memorization_scores,
    prefix_baseline,
    first_extraction,
    queries_to_find,
    score_prompts,
)
from rote.llm.tinygpt import ByteTokenizer, TinyGPTBackend, TinyGPTConfig, build_model

SMALL = TinyGPTConfig(block_size=96, n_layer=1, n_head=2, n_embd=16)
CFG = MemHunterConfig(prefix_tokens=40, suffix_tokens=16, prompt_tokens=4, n_candidates=3, rounds=2, epochs=1)


def tiny(seed: int = 0, device: str = "cpu") -> TinyGPTBackend:
    return TinyGPTBackend(build_model(SMALL, seed), name=f"tiny{seed}", device=device)


def brute_lcs(a: list, b: list) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


@pytest.fixture(scope="module")
def canaries() -> list[str]:
    return make_canaries(24, seed=3)


@pytest.fixture
def copier(ngram, canaries):
    """A target that has memorized canaries 0..11 (an n-gram table that copies them), byte tokenizer."""
    return ngram(canaries[:12], order=40, lam=0.01, fingerprint=ByteTokenizer().fingerprint())


# ---------------------------------------------------------------------------------------------- gradient path


def test_sequence_nll_matches_score_and_has_gradients():
    b = tiny(1)
    ctx, tgt = [[5, 6, 7], [9]], [[8, 9], [10, 11, 12, 13]]
    nll = sequence_nll(b, ctx, tgt)
    ref = [-float(ts.logprobs[-len(t) :].sum()) for ts, t in zip(b.score([c + t for c, t in zip(ctx, tgt)]), tgt)]
    np.testing.assert_allclose(nll.detach().numpy(), ref, rtol=1e-5)
    np.testing.assert_allclose(sequence_nll(b, ctx, tgt, per_token=True).detach().numpy(), np.divide(ref, [2, 4]))
    nll.sum().backward()
    grads = [p.grad for p in torch_module(b).parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_grad_path_refuses_models_without_weights(ngram):
    with pytest.raises(BackendError, match="not a local torch model"):
        torch_module(ngram(["abc"]))
    with pytest.raises(BackendError, match="not a local torch model"):
        sequence_nll(ngram(["abc"]), [[1]], [[2]])
    with pytest.raises(BackendError, match="one per context"):
        sequence_nll(tiny(), [[1], [2]], [[3]])


# ---------------------------------------------------------------------------------------------- scoring


def test_build_prompt_placements_and_room():
    assert build_prompt([1, 2], [7, 8, 9], "before", None) == [7, 8, 9, 1, 2]
    assert build_prompt([1, 2], [7, 8, 9], "after", None) == [1, 2, 7, 8, 9]
    assert build_prompt([1, 2], [7, 8, 9], "before", 4) == [8, 9, 1, 2]  # keeps the end of q, next to the prefix
    assert build_prompt([1, 2], [7, 8, 9], "after", 3) == [1, 2, 7]


def test_scores_of_memorized_and_unseen_texts(copier, canaries):
    mem = memorization_scores(copier, canaries[:4], config=CFG)
    assert mem["exact_prefix"].all() and (mem["lcs_ratio_prefix"] == 1.0).all() and mem["memorized"].all()
    non = memorization_scores(copier, canaries[12:16], config=CFG)
    samples = cut_texts(copier, canaries[12:16], CFG)
    gens = copier.generate(samples.prefixes, CFG.suffix_tokens)
    expected = [brute_lcs(g, s) / CFG.suffix_tokens for g, s in zip(gens, samples.suffixes)]
    np.testing.assert_allclose(non["lcs_ratio_prefix"], expected)
    # the suffix NLL of a copied text is exactly -log((1 - lam) + lam / 256) per token (see conftest)
    sc = score_prompts(copier, samples.prefixes[:1], samples.suffixes[:1], extract=False)
    assert sc.lcs_ratio is None


def test_copier_suffix_nll_is_hand_computable(copier, canaries):
    s = cut_texts(copier, canaries[:2], CFG)
    sc = score_prompts(copier, s.prefixes, s.suffixes)
    np.testing.assert_allclose(sc.nll, -math.log(0.99 + 0.01 / 256))
    assert sc.exact.all()


def test_batched_scoring_equals_one_at_a_time(canaries):
    b = tiny(2)
    s = cut_texts(b, canaries[:6], CFG)
    prompts = [build_prompt(p, [65, 66], "before", None) for p in s.prefixes]
    batched = score_prompts(b, prompts, s.suffixes, batch_size=64)
    single = [score_prompts(b, [p], [x], batch_size=1) for p, x in zip(prompts, s.suffixes)]
    np.testing.assert_allclose(batched.nll, [x.nll[0] for x in single], rtol=1e-6)
    assert batched.generated == [x.generated[0] for x in single]


def test_cut_texts_skips_short_texts(copier):
    s = cut_texts(copier, ["x" * 60, "short", "y" * 56], CFG)
    assert s.index.tolist() == [0, 2] and s.skipped.tolist() == [1]
    assert [len(p) for p in s.prefixes] == [40, 40] and [len(x) for x in s.suffixes] == [16, 16]


def test_prefix_baseline_budget_only_adds(copier, canaries):
    s = cut_texts(copier, canaries[10:16], CFG)
    one = prefix_baseline(copier, s, CFG, budget=1)
    four = prefix_baseline(copier, s, CFG, budget=4, seed=1)
    np.testing.assert_array_equal(one["lcs_ratio"], four["lcs_ratio"])
    assert (four["best_lcs_ratio"] >= one["best_lcs_ratio"]).all()
    assert four["any_exact"][:2].all()  # canaries 10, 11 are memorized


# ---------------------------------------------------------------------------------------------- the test


def test_dataset_test_against_scipy_and_brute_force():
    rng = np.random.default_rng(0)
    s, r = rng.beta(3, 2, 30), rng.beta(2, 2, 40)
    res = dataset_test(s, r, alpha=0.05)
    ref = stats.mannwhitneyu(s, r, alternative="greater")
    assert res.statistic == pytest.approx(ref.statistic) and res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.effect == pytest.approx(np.mean([np.sign(a - b) for a in s for b in r]))
    assert res.effect_ci[0] < res.effect < res.effect_ci[1]
    assert res.reject == (res.p_value < 0.05)
    w = dataset_test(s, r, test="welch")
    assert w.p_value == pytest.approx(stats.ttest_ind(s, r, equal_var=False, alternative="greater").pvalue)


def test_dataset_test_hand_example():
    # suspect beats reference in 8 of 9 pairs and ties none: U = 8, delta = 7/9; exact one-sided p = 2/20
    res = dataset_test([0.9, 0.8, 0.5], [0.6, 0.1, 0.2])
    assert res.statistic == 8 and res.effect == pytest.approx(7 / 9)
    assert res.p_value == pytest.approx(2 / 20) and not res.reject
    assert dataset_test([1.0] * 3, [1.0] * 3, test="welch").p_value == 1.0


def test_dataset_test_bad_input():
    with pytest.raises(DataError, match="at least 2"):
        dataset_test([0.5], [0.1, 0.2])
    with pytest.raises(ConfigError, match="`test`"):
        dataset_test([0.5, 0.1], [0.1, 0.2], test="t")
    with pytest.raises(ConfigError, match="`alpha`"):
        dataset_test([0.5, 0.1], [0.1, 0.2], alpha=0)


# ---------------------------------------------------------------------------------------------- generator


def test_generator_fit_resumes_exactly(tmp_path, canaries):
    target = tiny(5)
    full = PromptGenerator(tiny(7), CFG, seed=3).fit(target, canaries[:6], checkpoint_dir=tmp_path / "a")
    half = PromptGenerator(tiny(7), dataclass_replace(CFG, rounds=1), seed=3)
    half.fit(target, canaries[:6], checkpoint_dir=tmp_path / "b")
    # a second run with rounds=2 over the same folder refuses the other settings, so copy the round file
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "round-000001.pt").write_bytes((tmp_path / "a" / "round-000001.pt").read_bytes())
    resumed = PromptGenerator(tiny(7), CFG, seed=3).fit(target, canaries[:6], checkpoint_dir=tmp_path / "c")
    for p, q in zip(torch_module(full.generator).parameters(), torch_module(resumed.generator).parameters()):
        assert torch.equal(p, q)
    assert resumed.history_[0]["round"] == 1 and len(resumed.history_) == 2
    assert [h["kept"] for h in full.history_] == [h["kept"] for h in resumed.history_]
    with pytest.raises(ConfigError, match="other settings"):
        PromptGenerator(tiny(7), CFG, seed=4).fit(target, canaries[:6], checkpoint_dir=tmp_path / "a")


def dataclass_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_generator_learns_kept_prompts(copier, canaries):
    """keep="best" with 3 rounds: the generator's NLL of its kept prompts falls (it is fine-tuned on them)."""
    cfg = dataclass_replace(CFG, rounds=3, keep="best", epochs=3, lr=3e-3)
    pg = PromptGenerator(tiny(8), cfg, seed=0).fit(copier, canaries[:6])
    losses = [h["finetune_loss"] for h in pg.history_]
    assert all(h["kept"] == 6 for h in pg.history_) and losses[-1] < losses[0]


# ---------------------------------------------------------------------------------------------- detection


def test_detect_dataset_members_vs_nonmembers(ngram):
    texts = make_canaries(60, seed=11)
    target = ngram(texts[:20], order=40, lam=0.01, fingerprint=ByteTokenizer().fingerprint())
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        hit = detect_dataset(target, texts[:20], texts[20:40], config=CFG)
        miss = detect_dataset(target, texts[20:40], texts[40:60], config=CFG)
    assert hit.reject and hit.effect > 0.9 and hit.n_suspect == 20 and hit.p_value < 1e-6
    assert not miss.reject and miss.p_value > 0.05
    assert set(hit.rows["set"]) == {"suspect", "reference"} and len(hit.rows) == 40
    assert hit.to_dict()["effect_ci"][1] <= 1


def test_detect_dataset_with_generator_and_warnings(ngram, canaries):
    target = ngram(canaries[:16], order=40, lam=0.01)  # another tokenizer fingerprint than the tiny GPT's
    with pytest.warns(UserWarning) as record:
        res = detect_dataset(
            target, canaries[4:10], canaries[16:22], generator=tiny(9), train_texts=canaries[:4], config=CFG
        )
    text = " ".join(str(w.message) for w in record)
    assert "different tokenizers" in text and "power" in text
    assert len(res.generator_history) == 2 and "lcs_ratio_generator" in res.rows
    assert (res.rows["score"] >= res.rows["lcs_ratio_prefix"]).all()
    with pytest.raises(DataError, match="biases the test"):
        detect_dataset(
            target, canaries[4:10], canaries[16:22], generator=tiny(9), train_texts=canaries[4:6], config=CFG
        )
    with pytest.raises(DataError, match="in both"):
        detect_dataset(target, canaries[4:10], canaries[8:12], config=CFG)


def test_comparability_warnings():
    en = ["The quick brown fox jumps over the lazy dog"] * 5
    ru = ["Съешь же ещё этих мягких французских булок"] * 5
    assert dominant_script(ru[0]) == "CYRILLIC" and dominant_script("123") == "NONE"
    notes = comparability_warnings(en, ru, [10] * 5, [10] * 5)
    assert len(notes) == 1 and "languages" in notes[0]
    notes = comparability_warnings(en, en, [10, 11, 12, 13, 14], [50, 60, 70, 80, 90])
    assert len(notes) == 1 and "length" in notes[0]
    assert comparability_warnings(en, en, [10] * 5, [10] * 5) == []


def test_config_validation():
    with pytest.raises(ConfigError, match="`placement`"):
        MemHunterConfig(placement="middle")
    with pytest.raises(ConfigError, match="`tau`"):
        MemHunterConfig(tau=0)
    with pytest.raises(ConfigError, match="`prompt_tokens`"):
        MemHunterConfig(prompt_tokens=0)


@pytest.mark.gpu
def test_generator_and_scores_on_gpu(canaries):
    cpu_t, gpu_t = tiny(5), tiny(5, device="cuda")
    cpu = memorization_scores(cpu_t, canaries[:4], config=CFG)
    gpu = memorization_scores(gpu_t, canaries[:4], config=CFG)
    np.testing.assert_allclose(gpu["lcs_ratio_prefix"], cpu["lcs_ratio_prefix"])
    pg = PromptGenerator(tiny(7, device="cuda"), CFG).fit(gpu_t, canaries[:4])
    assert len(pg.history_) == 2


def test_queries_to_find_hand_example():
    # texts found at candidates 1, 3, never, 2 (budget 3). Step 1: 4 generations, 1 found; step 2: 3 more (7), 2
    # found; step 3: 2 more (9), 3 found.
    f = np.array([1, 3, 0, 2])
    assert [queries_to_find(f, n) for n in (0, 1, 2, 3, 4)] == [0, 4, 7, 9, None]


def test_first_extraction_order(copier, canaries):
    s = cut_texts(copier, canaries[:2] + canaries[14:15], CFG)
    junk = [ord(c) for c in "zzzz zzzz zzzz zzzz zzzz zzzz zzzz zzzz zzzz zzzz"]
    # "after" placement: junk after the prefix breaks the copy, an empty prompt keeps it
    cfg = dataclass_replace(CFG, placement="after")
    cands = [[junk, [], junk], [[], junk], [junk, []]]
    np.testing.assert_array_equal(first_extraction(copier, s, cands, cfg), [2, 1, 0])
