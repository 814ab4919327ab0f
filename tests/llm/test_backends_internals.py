"""Backend internals for probes: hidden states per layer and site, streamed capture, interventions during scoring and
generation, weights fingerprints; checked against hand-written forward passes of the same modules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rote.core.errors import BackendError, ConfigError
from rote.core.hooks import project_out
from rote.llm.backends.hf import HFBackend
from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    model = build_model(TinyGPTConfig(block_size=64, n_layer=2, n_head=2, n_embd=32), seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(6.0)  # larger weights: greedy outputs depend on the prompt
    return TinyGPTBackend(model, name="tiny-test")


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """A tiny random Llama with a byte-level BPE tokenizer, saved and opened as a normal HF folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("hf-internals")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        ["In the beginning God created the heaven and the earth."] * 3,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"]),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(out)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    return HFBackend(out)


SEQS = [[5, 9, 33, 200, 7, 7, 41], [88, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]


def _tiny_manual(backend, seq):
    """Per layer (resid, attn, mlp) activations of one unpadded sequence, by running the blocks by hand."""
    m = backend.model
    x = torch.tensor([seq])
    with torch.no_grad():
        h = m.wte(x) + m.wpe(torch.arange(len(seq)))
        out = {}
        for i, blk in enumerate(m.blocks):
            a = blk.attn(blk.ln1(h))
            h = h + a
            f = blk.mlp(blk.ln2(h))
            h = h + f
            out[(i, "attn")], out[(i, "mlp")], out[(i, "resid")] = a[0].numpy(), f[0].numpy(), h[0].numpy()
    return out


def test_site_names_for_tiny_gpt_and_llama(tiny, hf):
    assert tiny.n_layers == 2 and hf.n_layers == 3
    assert tiny.site_module(1, "resid") == "blocks.1"
    assert tiny.site_module(0, "attn") == "blocks.0.attn"
    assert tiny.site_module(1, "mlp") == "blocks.1.mlp"
    assert hf.site_module(2, "resid") == "model.layers.2"
    assert hf.site_module(0, "attn") == "model.layers.0.self_attn"
    assert hf.site_module(1, "mlp") == "model.layers.1.mlp"
    assert list(tiny.site_modules(None, ["resid"])) == [(0, "resid"), (1, "resid")]


def test_unknown_layer_or_site_lists_the_valid_ones(tiny):
    with pytest.raises(ConfigError, match=r"`layers`: 2 is not a layer of tiny-test; valid layers: 0\.\.1"):
        tiny.site_module(2, "resid")
    with pytest.raises(ConfigError, match=r"`layers`: -1"):
        tiny.hidden_states([[1, 2]], layers=[-1])
    with pytest.raises(ConfigError, match="valid sites: resid, attn, mlp"):
        tiny.hidden_states([[1, 2]], layers=[0], sites=["ffn"])
    with pytest.raises(ConfigError, match="must not repeat"):
        tiny.site_modules([0, 0], ["resid"])


def test_hidden_states_match_a_hand_written_forward_with_padding(tiny):
    hs = tiny.hidden_states(SEQS, layers=None, sites=("resid", "attn", "mlp"), batch_size=2)
    assert set(hs) == {(la, s) for la in (0, 1) for s in ("resid", "attn", "mlp")}
    for i, seq in enumerate(SEQS):
        manual = _tiny_manual(tiny, seq)
        for key, acts in hs.items():
            assert acts[i].shape == (len(seq), 32) and acts[i].dtype == np.float32
            np.testing.assert_allclose(acts[i], manual[key], rtol=1e-4, atol=1e-4)


def test_hf_hidden_states_match_output_hidden_states(hf):
    seqs = [[5, 9, 33, 20, 7], [8, 3, 4]]
    hs = hf.hidden_states(seqs, layers=[0, 2], sites=["resid"], batch_size=2)
    for i, seq in enumerate(seqs):
        with torch.no_grad():
            ref = hf.model(torch.tensor([seq]), output_hidden_states=True).hidden_states
        # HF's hidden_states[k+1] is layer k's output, except the last, which has the final norm applied
        np.testing.assert_allclose(hs[(0, "resid")][i], ref[1][0].numpy(), rtol=1e-4, atol=1e-5)
        assert hs[(2, "resid")][i].shape == (len(seq), 32)


def test_capture_to_disk_rows_and_token_metadata(tiny, tmp_path):
    store = tiny.capture_hidden_states(
        SEQS, tmp_path / "acts", layers=[1], sites=["resid", "mlp"], batch_size=2, chunk_rows=4
    )
    names = tiny.site_modules([1], ["resid", "mlp"])
    hs = tiny.hidden_states(SEQS, layers=[1], sites=["resid", "mlp"])
    for key, name in names.items():
        assert store.n_chunks(name) == int(np.ceil(sum(map(len, SEQS)) / 4))  # streamed in chunks of 4 rows
        np.testing.assert_allclose(store.load(name), np.concatenate(hs[key]), rtol=1e-5, atol=1e-5)
    assert store.meta["weights_fingerprint"] == tiny.weights_fingerprint()
    assert store.meta["sites"] == {"1:resid": "blocks.1", "1:mlp": "blocks.1.mlp"}
    tok = pd.read_parquet(tmp_path / "acts" / "tokens.parquet")
    assert tok["seq"].tolist() == [i for i, s in enumerate(SEQS) for _ in s]
    assert tok["token"].tolist() == [t for s in SEQS for t in s]
    scores = tiny.score(SEQS)
    for i, seq in enumerate(SEQS):
        part = tok[tok["seq"] == i]
        np.testing.assert_allclose(part["next_logprob"].to_numpy()[:-1], scores[i].logprobs, atol=1e-5)
        assert np.isnan(part["next_logprob"].to_numpy()[-1]) and part["next_token"].to_numpy()[-1] == -1
        logits = tiny.model(torch.tensor([seq]))[0].detach()
        assert part["next_top1"].tolist() == (logits[:-1].argmax(-1) == torch.tensor(seq[1:])).tolist() + [False]


def test_intervention_edits_scoring_and_generation_and_is_removed(tiny):
    w = np.random.default_rng(0).normal(size=32)
    prompts = [[5, 9, 33, 200], [88, 3, 1]]
    plain_gen = tiny.generate(prompts, 6)
    plain_lp = tiny.score(SEQS)[0].logprobs
    with tiny.intervene({(0, "resid"): project_out(w, alpha=1.0)}):
        h = tiny.hidden_states(SEQS, layers=[0])[(0, "resid")]
        edited_lp = tiny.score(SEQS)[0].logprobs
        edited_gen = tiny.generate(prompts, 6)
    wu = w / np.linalg.norm(w)
    assert max(abs(a @ wu).max() for a in h) < 1e-4  # the captured residual is orthogonal to w
    assert not np.allclose(edited_lp, plain_lp)
    # greedy generation under the edit = step-by-step argmax of the edited full forward (no cache)
    with tiny.intervene({(0, "resid"): project_out(w, alpha=1.0)}):
        for p, g in zip(prompts, edited_gen):
            seq = list(p)
            for _ in range(6):
                seq.append(int(tiny.model(torch.tensor([seq]))[0, -1].argmax()))
            assert seq[len(p) :] == g
    # hooks are gone after the block; alpha = 0 changes nothing
    np.testing.assert_allclose(tiny.score(SEQS)[0].logprobs, plain_lp)
    with tiny.intervene({(1, "mlp"): project_out(w, alpha=0.0)}):
        assert tiny.generate(prompts, 6) == plain_gen
    with pytest.raises(ConfigError, match="valid layers"):
        with tiny.intervene({(7, "resid"): project_out(w)}):
            pass


def test_weights_fingerprint_changes_with_any_weight(tiny):
    a = TinyGPTBackend(build_model(TinyGPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=8), seed=1))
    b = TinyGPTBackend(build_model(TinyGPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=8), seed=1))
    assert a.weights_fingerprint() == b.weights_fingerprint() != tiny.weights_fingerprint()
    with torch.no_grad():
        b.model.blocks[0].mlp[0].bias[3] += 1e-3
    b._weights_fp = None
    assert a.weights_fingerprint() != b.weights_fingerprint()


def test_backends_without_internals_refuse_with_one_clear_error():
    from rote.llm.backends.openai import OpenAIBackend

    http_like = OpenAIBackend("some-model", base_url="http://127.0.0.1:9/v1", api_key_env=None)
    assert not http_like.supports_internals
    for call in (
        lambda: http_like.hidden_states([[1, 2]], [0]),
        lambda: http_like.capture_hidden_states([[1, 2]], "x"),
        lambda: http_like.intervene({}),
        lambda: http_like.weights_fingerprint(),
        lambda: http_like.n_layers,
    ):
        with pytest.raises(BackendError, match="internal activations.*use a local model"):
            call()


@pytest.mark.gpu
def test_hidden_states_and_interventions_on_cuda_match_cpu(tiny):
    gpu = TinyGPTBackend(tiny.model, name="tiny-gpu", device="cuda")
    try:
        h_gpu = gpu.hidden_states(SEQS, layers=[1], sites=["resid", "attn"])
        w = np.ones(32)
        with gpu.intervene({(1, "resid"): project_out(w)}):
            g_gpu = gpu.generate([[5, 9, 33]], 5)
    finally:
        tiny.model.to("cpu")
    h_cpu = tiny.hidden_states(SEQS, layers=[1], sites=["resid", "attn"])
    for k in h_cpu:
        np.testing.assert_allclose(h_gpu[k][0], h_cpu[k][0], atol=1e-3)
    with tiny.intervene({(1, "resid"): project_out(w)}):
        assert tiny.generate([[5, 9, 33]], 5) == g_gpu
