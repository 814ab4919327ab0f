"""Speed of rote's batched XRM twins and of the one-off vectorized MAT shift, each against its baseline in the same run.

Run:  python bench/spurious_twins.py            (about 2 minutes on 2 busy cores)
      python bench/spurious_twins.py --quick    (smoke run, a few seconds)

What is timed (CPU, one torch thread, best of `--repeat` runs, same seed, same batches):
- twins, batched: `rote.spurious.models.StackedMLP(k=2)` (two parameter sets, one forward: the first layer is one
  matrix product for both twins, the others one `bmm`), one optimizer (rote's `make_optimizer`, i.e.
  `rote.core.training.stacked_optimizer`: multi-tensor kernels), the XRM class-balanced held-in loss.
- twins, separate: two `rote.nets.MLP`s with the same initial weights and two optimizers, each predicting the
  whole batch (XRM needs each twin's predictions on the other twin's half) with its loss on its own half.
  Cases: the paper's linear toy (n = 1,000, d = 1,800, full batch, SGD), a small MLP 192-64-2 on coloured 8x8
  digits (batch 32, Adam) and the demo's MLP 2352-256-256-2 on coloured Fashion-MNIST (batch 128, Adam),
  `--steps` steps each. The two are checked to give the same held-out logits
  (to 1e-4) on the linear case.
- shift: `rote.spurious.mat.mat_shift` once over N training samples, against the paper code's way (the shift
  recomputed for every mini-batch of every epoch: `--epochs` x N / 128 calls) and against a Python loop over
  samples (Algorithm 1 written out).

Prints a markdown table (case, baseline s, rote s, ratio, command) and writes bench/out/spurious_twins.json.
Timings on a machine shared with other jobs are inflated and noisy; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rote.data import halves_indices  # noqa: E402
from rote.nets import MLP  # noqa: E402
from rote.spurious.heldout import make_optimizer  # noqa: E402
from rote.spurious.mat import mat_shift  # noqa: E402
from rote.spurious.models import StackedMLP  # noqa: E402

HERE = Path(__file__).resolve().parent


def _opt(params, kind: str, lr: float):
    return torch.optim.SGD(params, lr=lr) if kind == "sgd" else torch.optim.Adam(params, lr=lr)


def batched(x, y, assign, hidden, bias, kind, lr, batches, k_cls=2):
    model = StackedMLP(x.shape[1], hidden, k_cls, k=2, bias=bias, seed=0)
    opt = make_optimizer(model.parameters(), kind, lr)  # rote's: multi-tensor update of the stacked twins
    rows = torch.arange(len(x))
    for idx in batches:
        xb, yb, ab = (x, y, assign) if idx is None else (x[idx], y[idx], assign[idx])
        logits = model(xb)
        cell = ab * k_cls + yb
        counts = torch.bincount(cell, minlength=2 * k_cls).to(logits.dtype)
        ce = F.cross_entropy(logits[ab, rows[: len(yb)]], yb, reduction="none")
        loss = (ce / counts[cell]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model


def separate(x, y, assign, hidden, bias, kind, lr, batches, k_cls=2):
    nets = [MLP(x.shape[1], hidden, k_cls, seed=i) for i in range(2)]
    if not bias:
        with torch.no_grad():
            for n in nets:
                for m in n.modules():
                    if isinstance(m, torch.nn.Linear):
                        m.bias.zero_()
                        m.bias.requires_grad_(False)
    opts = [_opt([p for p in n.parameters() if p.requires_grad], kind, lr) for n in nets]
    for idx in batches:
        xb, yb, ab = (x, y, assign) if idx is None else (x[idx], y[idx], assign[idx])
        for j, (net, opt) in enumerate(zip(nets, opts)):
            mine = ab == j
            logits = net(xb)  # XRM: each twin predicts the whole batch (the other half's held-out predictions)
            yj = yb[mine]
            ce = F.cross_entropy(logits[mine], yj, reduction="none")
            counts = torch.bincount(yj, minlength=k_cls).to(ce.dtype)
            loss = (ce / counts[yj]).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return nets


def shift_loop(h: np.ndarray, y: np.ndarray, tau: float, k: int) -> np.ndarray:
    n = len(y)
    out = np.zeros((n, k))
    p = [[math.exp(v / tau) for v in row] for row in h]
    p = [[v / sum(row) for v in row] for row in p]
    joint = [[0.0] * k for _ in range(k)]
    for i in range(n):
        for kk in range(k):
            joint[y[i]][kk] += p[i][kk] / n
    col = [sum(joint[c][kk] for c in range(k)) for kk in range(k)]
    for i in range(n):
        for c in range(k):
            out[i, c] = math.log(sum(p[i][kk] * joint[c][kk] / col[kk] for kk in range(k)) + 1e-6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    steps = 20 if args.quick else args.steps
    repeat = 1 if args.quick else args.repeat
    cmd = "python bench/spurious_twins.py" + (" --quick" if args.quick else "")
    rows, results = [], {}

    # linear toy: full batch, SGD
    from rote.spurious.data import image_benchmark, linear_toy

    toy = linear_toy(1000, 1800, seed=0).train
    a_idx, b_idx = halves_indices(len(toy), seed=0, labels=toy.y.numpy())
    assign = torch.zeros(len(toy), dtype=torch.int64)
    assign[torch.as_tensor(b_idx)] = 1
    full = [None] * steps
    batched(toy.x, toy.y, assign, (), False, "sgd", 1e-2, full[:2])  # warm-up: first calls set up kernels
    separate(toy.x, toy.y, assign, (), False, "sgd", 1e-2, full[:2])
    m_b, t_b, _ = timed(lambda: batched(toy.x, toy.y, assign, (), False, "sgd", 1e-2, full), repeat)
    m_s, t_s, _ = timed(lambda: separate(toy.x, toy.y, assign, (), False, "sgd", 1e-2, full), repeat)
    with torch.no_grad():
        lb = m_b(toy.x)
        ls = torch.stack([n(toy.x) for n in m_s])
    diff = float((lb - ls).abs().max())
    results["twins_linear_toy"] = {"separate_s": t_s, "batched_s": t_b, "ratio": t_s / t_b, "max_abs_diff": diff}
    rows.append(("twins, linear toy (1000 x 1800, full batch)", t_s, t_b))

    # MLPs on coloured images, Adam: a small one (overhead-bound) and the demo's (compute-bound)
    cases = [
        ("digits", 1000, (64,), 32),
        ("digits" if args.quick else "fashion-mnist", 1000 if args.quick else 4000, (256, 256), 128),
    ]
    for source, n_img, hidden, bs in cases:
        data = image_benchmark(source, n_train=n_img, n_val=100, n_test=100, seed=0).train
        x = data.x.reshape(len(data), -1)
        a_idx, b_idx = halves_indices(len(data), seed=0, labels=data.y.numpy())
        assign = torch.zeros(len(data), dtype=torch.int64)
        assign[torch.as_tensor(b_idx)] = 1
        g = torch.Generator().manual_seed(0)
        batches = [torch.randint(0, len(data), (bs,), generator=g) for _ in range(steps)]
        batched(x, data.y, assign, hidden, True, "adam", 1e-3, batches[:2])  # warm-up
        separate(x, data.y, assign, hidden, True, "adam", 1e-3, batches[:2])
        _, t_b2, _ = timed(lambda: batched(x, data.y, assign, hidden, True, "adam", 1e-3, batches), repeat)
        _, t_s2, _ = timed(lambda: separate(x, data.y, assign, hidden, True, "adam", 1e-3, batches), repeat)
        name = f"MLP {x.shape[1]}-{'-'.join(map(str, hidden))}-2 batch {bs}"
        results[f"twins_{name}"] = {"separate_s": t_s2, "batched_s": t_b2, "ratio": t_s2 / t_b2}
        rows.append((f"twins, {name} ({source})", t_s2, t_b2))
    g = torch.Generator().manual_seed(0)

    # the shift: once, vectorized, against per-batch recomputation and a Python loop
    n = 4000 if not args.quick else 1000
    h = torch.randn(n, 2, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    s_once, t_once, _ = timed(lambda: mat_shift(h, y, 0.1), max(repeat, 3))
    n_batches = args.epochs * math.ceil(n / 128)
    _, t_per_batch, _ = timed(
        lambda: [
            mat_shift(
                h[i % (n // 128) * 128 : i % (n // 128) * 128 + 128],
                y[i % (n // 128) * 128 : i % (n // 128) * 128 + 128],
                0.1,
            )
            for i in range(n_batches)
        ],
        1,
    )
    loop, t_loop, _ = timed(lambda: shift_loop(h.double().numpy(), y.numpy(), 0.1, 2), 1)
    results["shift"] = {
        "n": n,
        "once_s": t_once,
        "per_batch_s": t_per_batch,
        "loop_s": t_loop,
        "max_abs_diff_loop": float(np.abs(loop - s_once.numpy()).max()),
    }
    rows.append((f"shift, per mini-batch each epoch ({args.epochs} epochs, n={n})", t_per_batch, t_once))
    rows.append((f"shift, Python loop over samples (n={n})", t_loop, t_once))

    print("| case | baseline | rote | ratio | command |")
    print("|---|---|---|---|---|")
    for case, base, ours in rows:
        print(f"| {case} | {fmt_s(base)} | {fmt_s(ours)} | {fmt_ratio(base, ours)} | `{cmd}` |")
    print(f"\nlinear toy: max |batched - separate| logits after {steps} steps = {diff:.2e}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "spurious_twins.json").write_text(
        json.dumps({"command": cmd, "steps": steps, "results": results, "machine": machine_info()}, indent=2)
    )


if __name__ == "__main__":
    main()
