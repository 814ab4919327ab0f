"""Batched ICL networks against the authors' forward pass restated per model with plain torch, and vectorized
training against training each seed alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rote.core.errors import ConfigError
from rote.icl.models import ICLNet, MLPNet
from rote.icl.reference import reference_forward, train_reference
from rote.icl.task import BinaryTask
from rote.icl.train import train_icl, train_mlp


@pytest.mark.parametrize("kind", ["one_layer", "two_layer", "reddy"])
def test_batched_forward_matches_the_per_model_reference(kind):
    torch.manual_seed(0)
    n_out = 3 if kind == "reddy" else 1
    net = ICLNet(kind, [4, 9, 11], dim=12, hidden=16, n_out=n_out, content_dim=8)
    with torch.no_grad():  # perturb LayerNorm away from its identity init so the parity covers it
        if kind != "reddy":
            net.ln_w.add_(0.3 * torch.randn_like(net.ln_w))
            net.ln_b.add_(0.3 * torch.randn_like(net.ln_b))
    x = torch.randn(3, 5, 7, 12)
    out = net(x)
    for m in range(3):
        ref = reference_forward(kind, net.model_state(m), x[m])
        torch.testing.assert_close(out[m], ref, rtol=1e-4, atol=1e-5)
    shared = net(x[0])  # shared inputs broadcast over the models
    torch.testing.assert_close(shared[1], reference_forward(kind, net.model_state(1), x[0]), rtol=1e-4, atol=1e-5)


def test_a_seed_gives_the_same_model_whatever_trains_beside_it():
    a = ICLNet("one_layer", [3, 5], dim=10, hidden=8)
    b = ICLNet("one_layer", [5], dim=10, hidden=8)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa[1], pb[0]), name
    assert not torch.equal(a.out0_w[0], a.out0_w[1])


def test_param_groups_split_attention_and_mlp():
    net = ICLNet("two_layer", [0], dim=6, hidden=4)
    groups = {g["name"]: (g["weight_decay"], {id(p) for p in g["params"]}) for g in net.param_groups(0.3, 0.0)}
    names = {id(p): n for n, p in net.named_parameters()}
    assert {names[i] for i in groups["attention"][1]} == {"ln_w", "ln_b", "qkv1_w", "qkv2_w"}
    assert all(names[i].startswith(("mid", "out")) for i in groups["mlp"][1])
    assert groups["attention"][0] == 0.3 and groups["mlp"][0] == 0.0


def test_vectorized_training_equals_training_each_seed_alone():
    task = BinaryTask(K=16, N=4, D=8)
    kw = dict(steps=12, batch=16, lr=0.2, hidden=8, eval_every=6, eval_n=64, wd_attention=0.01)
    both = train_icl(task, [1, 2], **kw).history
    alone = train_icl(task, [2], **kw).history
    a = both[both.seed == 2].reset_index(drop=True)
    torch.testing.assert_close(
        torch.tensor(a["loss"].to_numpy()), torch.tensor(alone["loss"].to_numpy()), rtol=1e-4, atol=1e-5
    )
    assert (a["step"].to_numpy() == alone["step"].to_numpy()).all()


def test_training_is_deterministic_and_learns():
    task = BinaryTask(K=8, N=4, D=8)
    kw = dict(steps=40, batch=32, lr=0.5, hidden=16, eval_every=20, eval_n=128)
    r1, r2 = train_icl(task, [0], **kw), train_icl(task, [0], **kw)
    assert r1.history.equals(r2.history)
    # 8 classes are memorized fast: IWL accuracy (only memory helps) beats chance clearly
    assert r1.per_seed["iwl_acc"].iloc[0] > 0.8


def test_weight_decay_shrinks_only_its_group():
    """With lr * wd = 0.1 and a zero learning signal (lr tiny for the loss), the attention weights shrink by the
    decay factor, the MLP weights do not."""
    net = ICLNet("one_layer", [0], dim=6, hidden=4)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.SGD(net.param_groups(wd_attention=0.5, wd_mlp=0.0), lr=0.2)
    opt.zero_grad()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(net.qkv1_w, before["qkv1_w"] * 0.9)
    torch.testing.assert_close(net.out0_w, before["out0_w"])


def test_mlp_memorization_curve_and_integral():
    run = train_mlp(16, [0, 1], D=8, hidden=16, steps=30, batch=8, lr=0.5, log_every=10)
    c = run.curve[run.curve.seed == 0].sort_values("step")
    # I_K is the trapezoid integral of c1 over steps, recomputed by hand
    s, c1 = c.step.to_numpy(), c.c1.to_numpy()
    manual = sum((s[i + 1] - s[i]) * (c1[i] + c1[i + 1]) / 2 for i in range(len(s) - 1))
    assert abs(run.per_seed.set_index("seed").loc[0, "I_K"] - manual) < 1e-9
    # c1 at step 0 from an independent forward pass
    net = MLPNet([0], 8, 16)
    task = BinaryTask(K=16, N=2, D=8)
    z = net(task.means())[0, :, 0].detach()
    y = 2.0 * task.labels() - 1
    assert abs(float(torch.sigmoid(-y * z).mean()) - c1[0]) < 1e-6
    assert c1[-1] < c1[0]


@pytest.mark.parametrize("equalize", [False, True])
@pytest.mark.parametrize("kind", ["one_layer", "two_layer"])
def test_table_batches_equal_the_task_sampler_bit_for_bit(kind, equalize):
    """The training loop gathers tokens of all models from a per-class table (LayerNorm-ed for one_layer); they
    must be exactly the tokens `task.sample` draws from each seed's generator, so results do not change."""
    from rote.icl.train import _batch_drawer

    task = BinaryTask(K=64, N=8, equalize=equalize)
    net = ICLNet(kind, [0, 1], task.dim, hidden=8)
    x, y, normalized = _batch_drawer(task, net, [torch.Generator().manual_seed(s) for s in (0, 1)], 16, "cpu")()
    batches = [task.sample(16, torch.Generator().manual_seed(s)) for s in (0, 1)]
    ref = torch.stack([b.x for b in batches])
    assert normalized == (kind == "one_layer")
    assert torch.equal(x, F.layer_norm(ref, (task.dim,)) if normalized else ref)
    assert torch.equal(y, torch.stack([b.y for b in batches]))
    # and the model reads normalized tokens as it reads raw ones
    if normalized:
        torch.testing.assert_close(net(x, normalized=True), net(ref), rtol=0, atol=0)
    else:
        with pytest.raises(ConfigError, match="`normalized`"):
            net(x, normalized=True)


def test_training_equals_a_plain_per_model_loop():
    """train_icl (table-gathered tokens, batched index draws, folded LayerNorm, fused SGD) against the textbook loop
    for each seed alone (`train_reference`: `task.sample` batches, the authors' forward pass, torch's SGD with the
    two weight-decay groups). The evaluation losses before and after training must agree to float rounding."""
    task = BinaryTask(K=32, N=6, D=8)
    kw = dict(steps=15, batch=16, lr=0.3, hidden=8, wd_attention=0.02, wd_mlp=0.001)
    seeds = [4, 7]
    hist = train_icl(task, seeds, eval_every=15, eval_n=64, **kw).history
    sets = task.eval_sets(64)
    for s in seeds:
        _, evals = train_reference(task, s, eval_sets=sets, **kw)
        assert sorted(evals) == [0, 15]
        for step, res in evals.items():
            h = hist[(hist.seed == s) & (hist.step == step)].set_index("set")
            for name, (acc, loss) in res.items():
                assert h.loc[name, "loss"] == pytest.approx(loss, rel=1e-4, abs=1e-6)
                assert h.loc[name, "accuracy"] == pytest.approx(acc, abs=1 / 64 + 1e-9)
        assert evals[15]["icl"][1] != pytest.approx(evals[0]["icl"][1])  # it trained
