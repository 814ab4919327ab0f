"""Local backends (Hugging Face folder and tiny GPT) against independent computations: the model's own unpadded
forward pass, Hugging Face `generate`, numpy brute force over the vocabulary, and sampling frequencies."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rote.cli.main import app
from rote.core.cli import run_app
from rote.core.errors import BackendError
from rote.llm import Completion, TokenScores, detect_refusal, open_backend
from rote.llm.backends.base import messages_to_text
from rote.llm.backends.hf import HFBackend
from rote.llm.backends.torch_lm import prompt_generator, sample_next
from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model

torch.set_num_threads(1)

CORPUS = [
    "In the beginning God created the heaven and the earth.",
    "And the earth was without form, and void.",
    "Four score and seven years ago our fathers brought forth on this continent a new nation.",
] * 5


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A tiny random Llama with a byte-level BPE tokenizer trained here, saved as a normal HF folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("hf")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=320,
            special_tokens=["<s>", "</s>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(out)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg)
        with torch.no_grad():  # larger weights than the default init so that greedy outputs vary by prompt
            for p in model.parameters():
                p.mul_(8.0)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def hf(hf_folder):
    return open_backend(str(hf_folder))


@pytest.fixture(scope="module")
def tiny():
    with torch.random.fork_rng(devices=[]):
        model = build_model(TinyGPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=32), seed=3)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(6.0)
    return TinyGPTBackend(model, name="tiny-test")


def _plain_logits(backend, seq):
    """(T, V) float64 logits of one unpadded sequence through the model's own forward."""
    with torch.no_grad():
        if isinstance(backend, HFBackend):
            return backend.model(torch.tensor([seq])).logits[0].double().numpy()
        return backend.model(torch.tensor([seq]))[0].double().numpy()


@pytest.mark.parametrize("which", ["hf", "tiny"])
def test_score_matches_unpadded_forward_and_brute_force_stats(which, request):
    b = request.getfixturevalue(which)
    seqs = b.encode(["In the beginning", "Four score and seven years ago our fathers", "x"])
    scores = b.score(seqs, batch_size=2, full_stats=True)
    assert len(scores) == 3 and all(isinstance(s, TokenScores) for s in scores)
    for seq, s in zip(seqs, scores):
        assert s.token_ids.dtype == np.int64 and s.token_ids.tolist() == seq
        assert s.logprobs.shape == s.mean_logprob.shape == s.std_logprob.shape == (len(seq) - 1,)
        logits = _plain_logits(b, seq)[:-1]  # (T-1, V): row t predicts token t+1
        logp = (
            logits
            - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
            - logits.max(1, keepdims=True)
        )
        np.testing.assert_allclose(s.logprobs, logp[np.arange(len(seq) - 1), seq[1:]], atol=2e-5)
        p = np.exp(logp)
        mean = np.array([sum(p[t, v] * logp[t, v] for v in range(p.shape[1])) for t in range(p.shape[0])])
        std = np.sqrt(np.array([np.sum(p[t] * (logp[t] - mean[t]) ** 2) for t in range(p.shape[0])]))
        np.testing.assert_allclose(s.mean_logprob, mean, atol=2e-5)
        np.testing.assert_allclose(s.std_logprob, std, atol=2e-5)
    plain = b.score(seqs, batch_size=1)
    assert plain[0].mean_logprob is None and plain[0].std_logprob is None
    np.testing.assert_allclose(plain[1].logprobs, scores[1].logprobs, atol=2e-5)


def test_hf_greedy_generation_matches_transformers_generate(hf):
    prompts = hf.encode(["In the beginning God", "Four", "And the earth was without form, and"])
    ours = hf.generate(prompts, 12, batch_size=3)
    for p, new in zip(prompts, ours):
        ref = hf.model.generate(
            torch.tensor([p]),
            attention_mask=torch.ones((1, len(p)), dtype=torch.long),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=hf.eos_token_id,
            pad_token_id=hf.pad_token_id,
        )[0, len(p) :].tolist()
        if hf.eos_token_id in ref:  # transformers returns the EOS (and pads after it); rote stops before it
            ref = ref[: ref.index(hf.eos_token_id)]
        assert new == ref
    assert len({tuple(x) for x in ours}) > 1  # the check means something only if outputs differ


@pytest.mark.parametrize("which", ["hf", "tiny"])
def test_greedy_matches_step_by_step_argmax_without_cache(which, request):
    b = request.getfixturevalue(which)
    b.eos_token_id, eos = None, b.eos_token_id
    try:
        prompts = b.encode(["In the", "Four score and seven", "And the earth"])
        out = b.generate(prompts, 8, batch_size=2)
        for p, new in zip(prompts, out):
            seq = list(p)
            for _ in range(8):  # oracle: full forward of the growing sequence, argmax of the last row
                seq.append(int(_plain_logits(b, seq)[-1].argmax()))
            assert new == seq[len(p) :]
    finally:
        b.eos_token_id = eos


@pytest.mark.parametrize("which", ["hf", "tiny"])
def test_generation_stops_at_eos_and_drops_it(which, request):
    b = request.getfixturevalue(which)
    b.eos_token_id, eos = None, b.eos_token_id
    try:
        prompts = b.encode(["In the beginning", "Four"])
        full = b.generate(prompts, 10)
        stop = next(t for t in full[0][2:] if t not in full[0][:2])  # a token first emitted at position >= 2
        b.eos_token_id = stop
        cut = b.generate(prompts, 10)
        assert cut[0] == full[0][: full[0].index(stop)]
        assert cut[1] == (full[1][: full[1].index(stop)] if stop in full[1] else full[1])
    finally:
        b.eos_token_id = eos


@pytest.mark.parametrize("which", ["hf", "tiny"])
def test_sampling_is_seeded_per_prompt_and_batch_size_free(which, request):
    b = request.getfixturevalue(which)
    b.eos_token_id, eos = None, b.eos_token_id
    try:
        prompts = b.encode(["In the", "Four score", "And the earth was", "x"])
        a = b.generate(prompts, 10, greedy=False, seed=7, batch_size=4)
        assert all(len(x) == 10 for x in a)
        assert b.generate(prompts, 10, greedy=False, seed=7, batch_size=1) == a
        assert b.generate(prompts, 10, greedy=False, seed=8) != a
        assert b.generate(prompts, 10, greedy=False, top_k=1, seed=3) == b.generate(prompts, 10)
    finally:
        b.eos_token_id = eos


def test_sample_next_frequencies_match_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]]).repeat(4000, 1)
    gens = [prompt_generator(0, i, torch.device("cpu")) for i in range(4000)]
    draws = sample_next(logits, greedy=False, temperature=2.0, top_k=None, generators=gens).numpy()
    expected = np.exp(logits[0].numpy() / 2.0) / np.exp(logits[0].numpy() / 2.0).sum()
    freq = np.bincount(draws, minlength=5) / 4000
    assert np.abs(freq - expected).max() < 0.03  # 4000 draws: sd of each frequency < 0.008
    gens = [prompt_generator(0, i, torch.device("cpu")) for i in range(4000)]
    top2 = sample_next(logits, greedy=False, temperature=1.0, top_k=2, generators=gens).numpy()
    assert set(top2.tolist()) == {0, 1}
    assert abs((top2 == 0).mean() - np.e / (np.e + 1)) < 0.03


def test_generate_input_errors(tiny):
    with pytest.raises(BackendError, match="prompt 1: is empty"):
        tiny.generate([[1], []], 3)
    with pytest.raises(BackendError, match="token id -1"):
        tiny.generate([[1, -1]], 3)
    with pytest.raises(BackendError, match="temperature"):
        tiny.generate([[1]], 3, greedy=False, temperature=0)
    with pytest.raises(BackendError, match="top_k"):
        tiny.generate([[1]], 3, greedy=False, top_k=0)
    with pytest.raises(BackendError, match="max_new_tokens"):
        tiny.generate([[1]], -1)
    with pytest.raises(BackendError, match="sequence 0: is empty"):
        tiny.score([[]])
    assert tiny.generate([[1, 2]], 0) == [[]]
    assert tiny.generate([], 5) == [] and tiny.score([]) == []


def test_complete_plain_and_chat(tiny, hf):
    out = tiny.complete(["In the beginning", [{"role": "user", "content": "Recite Genesis"}]], 6)
    assert all(isinstance(c, Completion) and not c.cached for c in out)
    assert out[0].text == tiny.decode(tiny.generate(tiny.encode(["In the beginning"]), 6))[0]
    chat_ids = tiny.encode([messages_to_text([{"role": "user", "content": "Recite Genesis"}])])
    assert out[1].text == tiny.decode(tiny.generate(chat_ids, 6))[0]
    assert out[0].finish_reason == "length"
    with pytest.raises(BackendError, match="prompt 0, message 0"):
        tiny.complete([[{"role": "user"}]], 3)
    assert hf.complete(["Four score"], 4)[0].text == hf.decode(hf.generate(hf.encode(["Four score"]), 4))[0]


def test_refusal_detection():
    assert detect_refusal("I\u2019m sorry, but I can\u2019t provide that.")
    assert detect_refusal("This text is COPYRIGHTED material.")
    assert not detect_refusal("In the beginning God created the heaven")
    assert detect_refusal("nope", ["NOPE"]) and not detect_refusal("I can't", ["nope"])


def test_hf_encode_decode_and_fingerprints(hf, hf_folder, tiny):
    ids = hf.encode(["In the beginning God created"])
    assert hf.decode(ids) == ["In the beginning God created"]
    assert hf.bos_token_id not in ids[0]  # no special tokens added
    again = HFBackend(hf_folder)
    assert again.tokenizer_fingerprint == hf.tokenizer_fingerprint != tiny.tokenizer_fingerprint
    assert hf.describe()["n_params"] > 0 and json.dumps(hf.describe())


def test_open_backend_errors(tmp_path, monkeypatch):
    with pytest.raises(BackendError, match="cannot be reached offline"):
        open_backend("HuggingFaceTB/SmolLM2-135M")
    with pytest.raises(BackendError, match="no such model folder"):
        open_backend(str(tmp_path / "missing"))
    with pytest.raises(BackendError, match="no config.json"):
        open_backend(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(BackendError, match="cannot load a causal language model"):
        open_backend(str(tmp_path))
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(BackendError, match="is a file"):
        open_backend(str(f))
    with pytest.raises(BackendError, match="empty"):
        open_backend("  ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendError, match="no CUDA GPU"):
        open_backend(str(tmp_path), device="cuda")


@pytest.mark.gpu
def test_hf_on_gpu_matches_cpu(hf_folder):
    cpu, gpu = HFBackend(hf_folder), HFBackend(hf_folder, device="cuda")
    prompts = cpu.encode(["In the beginning God", "Four score"])
    assert gpu.generate(prompts, 8) == cpu.generate(prompts, 8)
    np.testing.assert_allclose(gpu.score(prompts)[0].logprobs, cpu.score(prompts)[0].logprobs, atol=1e-3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prompts=st.lists(st.lists(st.integers(0, 255), min_size=1, max_size=20), min_size=1, max_size=6),
    batch_size=st.integers(1, 6),
    n_new=st.integers(0, 6),
)
def test_batched_greedy_equals_one_at_a_time_for_any_lengths(tiny, prompts, batch_size, n_new):
    # left padding, the mask and position ids must make a prompt's continuation independent of its batch mates
    batched = tiny.generate(prompts, n_new, batch_size=batch_size)
    assert batched == [tiny.generate([p], n_new)[0] for p in prompts]
    assert all(len(x) == n_new for x in batched)
    scored = tiny.score(prompts, batch_size=batch_size)
    for p, s in zip(prompts, scored):
        # float32 sums reduce in a different order in a padded batch: agree to float32 precision, not bitwise
        np.testing.assert_allclose(s.logprobs, tiny.score([p])[0].logprobs, rtol=1e-5, atol=1e-4)


def test_hf_folder_with_a_pickle_payload_is_refused_without_running_it(hf_folder, tmp_path, capsys):
    folder = tmp_path / "pickled"
    shutil.copytree(hf_folder, folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"model.embed_tokens.weight": Payload()}))
    with pytest.raises(BackendError, match="cannot load"):
        open_backend(str(folder))
    assert not marker.exists()  # the payload never ran
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"text": "In the beginning God created the heaven and the earth."}\n')
    argv = ["llm", "membership", "--model", str(folder), "--members", str(texts), "--nonmembers", str(texts)]
    code = run_app(app, [*argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and not marker.exists()


def test_hf_folder_with_garbage_safetensors(hf_folder, tmp_path):
    folder = tmp_path / "garbage"
    shutil.copytree(hf_folder, folder)
    (folder / "model.safetensors").write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(BackendError, match="cannot load"):
        open_backend(str(folder))
