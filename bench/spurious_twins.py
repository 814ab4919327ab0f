"""Speed of rote's stacked XRM twins against two separate models, and of the one-off vectorized MAT shift.

Run:  python bench/spurious_twins.py --profile       (the final table: 3 cases x threads 1 and 2, ~10 min quiet)
      python bench/spurious_twins.py --quick         (smoke run, under a minute)

What is timed (CPU, same seed, same data, same batches and same flip draws on both sides):
- rote: `rote.spurious.heldout.xrm_twins`, the library call the demo makes: one `StackedMLP(k=2)` (one forward
  for both twins on the shared batch; the first layer is one product x @ [W_a | W_b]^T, its weight gradient uses
  each twin's held-in rows only), one optimizer over both parameter sets (Adam: torch's fused kernel; SGD:
  `rote.core.training.stacked_optimizer`'s multi-tensor kernels), the XRM class-balanced loss, label flipping,
  the `Trainer`, and the final held-out / held-in logits of every sample.
- separate: the same XRM algorithm with two `rote.nets.MLP`s and two torch optimizers with their defaults (on CPU
  torch's per-tensor loop), in a plain loop (no Trainer): each twin predicts the whole batch (XRM needs its
  predictions on the other twin's half for the flips), takes its class-balanced loss on its own half and steps;
  then both predict every sample. The held-out logits of both sides are compared (`max diff`: the two are the same
  computation up to float rounding).
- separate, fused Adam: the same with torch's fused Adam (which rote's twins use), so that the ratio against it is
  what stacking alone buys (the one forward, the held-in-only backward, fewer operations).
Cases: the demo's twins (MLP 2352-256-256-2 on coloured Fashion-MNIST, 4,000 images, batch 128, Adam lr 1e-3,
15 epochs: the demo's settings), a small MLP 192-64-2 on coloured 8x8 digits (1,000 images, batch 32, Adam) and
the paper's linear toy (n = 1,000, d = 1,800, bias-free, full batch, SGD lr 1e-2: the toy's settings, 100 of its
1,000 steps), each with torch threads 1 and 2. Each (case, threads) runs `--repeat` rounds of all sides
interleaved; the table gives median wall seconds, the ratio of medians, and median process CPU seconds (all
threads). `--profile` adds torch.profiler's split of one demo epoch (matrix products, optimizer step, the rest).
- shift: `rote.spurious.mat.mat_shift` once over N samples, against recomputing it for every mini-batch of every
  epoch (the paper code's way) and against a Python loop over samples (Algorithm 1 written out).

Prints markdown tables and writes bench/out/spurious_twins.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rote.core.training import epoch_seed  # noqa: E402
from rote.data import halves_indices  # noqa: E402
from rote.nets import MLP  # noqa: E402
from rote.spurious.heldout import xrm_twins  # noqa: E402
from rote.spurious.mat import flip_probability, mat_shift  # noqa: E402

HERE = Path(__file__).resolve().parent
CASES = ("demo", "small", "toy")


def separate_xrm(train, *, hidden, bias, epochs, batch_size, optimizer, lr, seed=0, fused=None) -> torch.Tensor:
    """XRM with two separate networks and optimizers (the baseline); returns the (N, K) held-out logits.

    Same halves, initial weights, batch order and flip draws as `xrm_twins` (the Trainer's per-epoch generator)."""
    x, y, n, k_cls = train.x.reshape(len(train), -1), train.y, len(train), train.n_classes
    a_idx, b_idx = halves_indices(n, seed=seed, labels=y.numpy())
    assign = torch.zeros(n, dtype=torch.int64)
    assign[torch.as_tensor(b_idx)] = 1
    nets = [MLP(x.shape[1], hidden, k_cls, seed=seed + i) for i in range(2)]
    if not bias:  # the toy's bias-free model: biases 0 and frozen
        for net in nets:
            for m in net.modules():
                if isinstance(m, torch.nn.Linear):
                    with torch.no_grad():
                        m.bias.zero_()
                    m.bias.requires_grad_(False)
    make = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opts = [make([p for p in net.parameters() if p.requires_grad], lr=lr, fused=fused) for net in nets]
    y_dyn = y.clone()
    bs = batch_size or n
    for e in range(1, epochs + 1):
        gen = torch.Generator().manual_seed(epoch_seed(seed, e))
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            idx = torch.arange(n) if bs >= n else order[start : start + bs]
            xb, yb, ab = x[idx], y_dyn[idx], assign[idx]
            logits = []
            for j, (net, opt) in enumerate(zip(nets, opts)):
                out = net(xb)  # the whole batch: its held-in rows for the loss, the others for the flips
                mine = ab == j
                yj = yb[mine]
                ce = F.cross_entropy(out[mine], yj, reduction="none")
                loss = (ce / torch.bincount(yj, minlength=k_cls).to(ce.dtype)[yj]).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                logits.append(out.detach())
            probs = torch.softmax(torch.where((ab == 0).unsqueeze(1), logits[1], logits[0]), 1)  # held-out twin
            change = torch.rand(len(idx), generator=gen) < flip_probability(probs)
            y_dyn[idx[change]] = probs.argmax(1)[change]
    with torch.no_grad():
        both = torch.stack([net.eval()(x) for net in nets])  # (2, N, K), as xrm_twins predicts
    return both[1 - assign, torch.arange(n)]


def _cases(quick: bool):
    from rote.spurious.data import image_benchmark, linear_toy

    digits = image_benchmark("digits", n_train=1000, n_val=100, n_test=100, seed=0).train
    if quick:
        demo_data, demo_epochs = image_benchmark("digits", n_train=1000, n_val=100, n_test=100, seed=0).train, 1
    else:
        demo_data, demo_epochs = image_benchmark("fashion-mnist", n_train=4000, n_val=100, n_test=100, seed=0).train, 15
    toy = linear_toy(1000, 1800, seed=0).train
    adam = dict(bias=True, optimizer="adam", lr=1e-3)
    return [
        (
            f"demo MLP {demo_data.in_features}-256-256-2, batch 128, Adam, {demo_epochs} epochs",
            demo_data,
            dict(hidden=(256, 256), epochs=demo_epochs, batch_size=128, **adam),
        ),
        ("small MLP 192-64-2, batch 32, Adam, 2 epochs", digits, dict(hidden=(64,), epochs=2, batch_size=32, **adam)),
        (
            f"linear toy 1000 x 1800, full batch, SGD, {20 if quick else 100} steps",
            toy,
            dict(hidden=(), bias=False, epochs=20 if quick else 100, batch_size=None, optimizer="sgd", lr=1e-2),
        ),
    ]


def _clock(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench_twins(threads: list[int], repeat: int, quick: bool, which: list[str]) -> list[dict]:
    """Median wall and CPU seconds of each side per (case, threads); sides run interleaved, `repeat` rounds."""
    rows = []
    for key, (name, data, kw) in zip(CASES, _cases(quick)):
        if key not in which:
            continue
        sides = {
            "separate": lambda: separate_xrm(data, seed=0, **kw),
            "rote": lambda: xrm_twins(data, seed=0, **kw).train_logits,
        }
        if kw["optimizer"] == "adam":  # the same two models with torch's fused Adam: what stacking alone buys
            sides["separate_fused"] = lambda: separate_xrm(data, seed=0, fused=True, **kw)
        for t in threads:
            torch.set_num_threads(t)
            xrm_twins(data, seed=0, **dict(kw, epochs=1))  # warm-up: first calls set up kernels and caches
            separate_xrm(data, seed=0, **dict(kw, epochs=1))
            times: dict[str, list] = {k: [] for k in sides}
            held = {}
            for _ in range(repeat):  # interleaved: separate, rote, (separate fused,) separate, rote, ...
                for side, fn in sides.items():
                    held[side], w, c = _clock(fn)
                    times[side].append((w, c))
            row = {"case": name, "threads": t}
            for side, v in times.items():
                row[f"{side}_wall_s"] = statistics.median(w for w, _ in v)
                row[f"{side}_cpu_s"] = statistics.median(c for _, c in v)
            row["ratio_wall"] = row["separate_wall_s"] / row["rote_wall_s"]
            row["ratio_cpu"] = row["separate_cpu_s"] / row["rote_cpu_s"]
            if "separate_fused" in sides:
                row["ratio_wall_vs_fused"] = row["separate_fused_wall_s"] / row["rote_wall_s"]
            row["max_abs_diff_heldout_logits"] = float((held["separate"] - held["rote"]).abs().max())
            row["all_wall_s"] = {k: [w for w, _ in v] for k, v in times.items()}
            rows.append(row)
            vs_fused = f", vs separate fused {row['ratio_wall_vs_fused']:.2f}x" if "separate_fused" in sides else ""
            print(
                f"  {name}, {t} thread(s): separate / rote {row['ratio_wall']:.2f}x wall, {row['ratio_cpu']:.2f}x CPU"
                f"{vs_fused}",
                flush=True,
            )
    torch.set_num_threads(1)
    return rows


def profile_demo(quick: bool) -> dict:
    """Self CPU time of the demo case by operator family, for both sides (torch.profiler, one thread)."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    name, data, kw = _cases(quick)[0]
    kw = dict(kw, epochs=1)
    out = {}
    for side, fn in (("separate", lambda: separate_xrm(data, seed=0, **kw)), ("rote", lambda: xrm_twins(data, **kw))):
        fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        ev = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in ev)
        gemm = sum(
            e.self_cpu_time_total for e in ev if e.key in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
        )
        # the update's elementwise ops (sqrt, lerp_, ...) run inside Optimizer.step: its total time counts them
        update = sum(e.cpu_time_total for e in ev if e.key.startswith("Optimizer.step"))
        out[side] = {
            "total_s": total / 1e6,
            "matrix products": gemm / total,
            "optimizer step": update / total,
            "everything else": 1 - (gemm + update) / total,
        }
    return {"case": name.replace(", 15 epochs", ", 1 epoch"), "shares": out}


def phases_demo(quick: bool, epochs: int = 4) -> dict:
    """CPU ms per step of the stacked twins' step, by phase, on the demo case (one thread): the step of `xrm_twins`
    written out with timers (grouping rows by twin, the forward pass with `heldin`, the class-balanced loss, the
    flips, the backward pass, the fused Adam update), and the library call itself per step, so that what the
    `Trainer` adds per step shows as the difference."""
    from rote.spurious.heldout import make_optimizer
    from rote.spurious.models import StackedMLP

    torch.set_num_threads(1)
    name, data, kw = _cases(quick)[0]
    x, y, n, k_cls = data.x.reshape(len(data), -1), data.y, len(data), data.n_classes
    _, b_idx = halves_indices(n, seed=0, labels=y.numpy())
    assign = torch.zeros(n, dtype=torch.int64)
    assign[torch.as_tensor(b_idx)] = 1
    y_dyn, rows = y.clone(), torch.arange(n)
    # the library call's cost per step beyond its fixed costs (set-up, the final predictions of every row) and
    # first-call effects: a warm-up call, then (epochs) minus (1 epoch); measured before the written-out loop,
    # in a process that has run nothing else (a loop run first made the call read 2-3 ms per step slower)
    xrm_twins(data, seed=0, **dict(kw, epochs=1))
    c = time.process_time()
    xrm_twins(data, seed=0, **dict(kw, epochs=1))
    one = time.process_time() - c
    c = time.process_time()
    xrm_twins(data, seed=0, **dict(kw, epochs=epochs))
    per_epoch = -(-n // kw["batch_size"])
    call_ms = (time.process_time() - c - one) / ((epochs - 1) * per_epoch) * 1e3
    model = StackedMLP(x.shape[1], kw["hidden"], k_cls, k=2, seed=0)
    opt = make_optimizer(model.parameters(), "adam", kw["lr"], fused=True)
    gen = torch.Generator().manual_seed(0)
    t = dict.fromkeys(("group rows", "forward", "loss", "flips", "backward", "optimizer"), 0.0)
    bs, steps = kw["batch_size"], 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            c0 = time.process_time()
            idx = order[start : start + bs]
            o = torch.argsort(assign[idx], stable=True)
            idx = idx[o]
            sizes = torch.bincount(assign[idx], minlength=2).tolist()
            xb, yb, ab = x[idx], y_dyn[idx], assign[idx]
            c1 = time.process_time()
            logits = model(xb, heldin=sizes)
            c2 = time.process_time()
            cell = ab * k_cls + yb
            counts = torch.bincount(cell, minlength=2 * k_cls).to(logits.dtype)
            ar = rows[: len(idx)]
            loss = (F.cross_entropy(logits[ab, ar], yb, reduction="none") / counts[cell]).sum()
            c3 = time.process_time()
            with torch.no_grad():
                probs = torch.softmax(logits[1 - ab, ar], 1)
                change = torch.rand(len(idx), generator=gen)[o] < flip_probability(probs)
                y_dyn[idx[change]] = probs.argmax(1)[change]
            c4 = time.process_time()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            c5 = time.process_time()
            opt.step()
            c6 = time.process_time()
            for key, a, b in zip(t, (c0, c1, c2, c3, c4, c5), (c1, c2, c3, c4, c5, c6)):
                t[key] += b - a
            steps += 1
    ms = {k: v / steps * 1e3 for k, v in t.items()}
    return {
        "case": name.split(", 15 epochs")[0],
        "epochs": epochs,
        "ms_per_step": ms,
        "library_call_ms_per_step": call_ms,
    }


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


def bench_shift(n: int, epochs: int, repeat: int) -> tuple[dict, list]:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, 2, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    s_once, t_once, _ = timed(lambda: mat_shift(h, y, 0.1), max(repeat, 3))
    n_batches = epochs * math.ceil(n / 128)
    per = n // 128

    def per_batch():
        return [
            mat_shift(h[i % per * 128 : i % per * 128 + 128], y[i % per * 128 : i % per * 128 + 128], 0.1)
            for i in range(n_batches)
        ]

    _, t_per_batch, _ = timed(per_batch, 1)
    loop, t_loop, _ = timed(lambda: shift_loop(h.double().numpy(), y.numpy(), 0.1, 2), 1)
    res = {
        "n": n,
        "once_s": t_once,
        "per_batch_s": t_per_batch,
        "loop_s": t_loop,
        "max_abs_diff_loop": float(np.abs(loop - s_once.numpy()).max()),
    }
    rows = [
        (f"shift, per mini-batch each epoch ({epochs} epochs, n={n})", t_per_batch, t_once),
        (f"shift, Python loop over samples (n={n})", t_loop, t_once),
    ]
    return res, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", default="1,2", help="torch thread counts, comma-separated")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved runs of each side per case")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of the per-batch shift baseline")
    ap.add_argument("--cases", default=",".join(CASES), help=f"twin cases, comma-separated: {', '.join(CASES)}")
    ap.add_argument("--profile", action="store_true", help="also profile the demo case (one epoch, one thread)")
    ap.add_argument("--phases", action="store_true", help="only the demo's stacked step by phase (one thread)")
    args = ap.parse_args()
    if args.phases:
        ph = phases_demo(args.quick)
        total = sum(ph["ms_per_step"].values())
        print(f"{ph['case']}: stacked twins' step by phase, CPU ms per step ({ph['epochs']} epochs, one thread)")
        for k, v in ph["ms_per_step"].items():
            print(f"  {k:12s} {v:6.2f}  {v / total:5.1%}")
        print(f"  {'sum':12s} {total:6.2f}; the library call `xrm_twins` per step, fixed costs aside: "
              f"{ph['library_call_ms_per_step']:.2f}")  # fmt: skip
        return
    threads = [int(t) for t in args.threads.split(",")]
    repeat = 2 if args.quick else args.repeat
    cmd = "python bench/spurious_twins.py" + (" --quick" if args.quick else "")
    if args.threads != "1,2":
        cmd += f" --threads {args.threads}"
    if args.repeat != 5 and not args.quick:
        cmd += f" --repeat {args.repeat}"
    which = args.cases.split(",")
    if args.cases != ",".join(CASES):
        cmd += f" --cases {args.cases}"
    twins = bench_twins(threads, repeat, args.quick, which)
    shift, shift_rows = bench_shift(1000 if args.quick else 4000, args.epochs, repeat)
    prof = profile_demo(args.quick) if args.profile else None

    print(f"\nTwins (median of {repeat} interleaved runs each; CPU = process CPU seconds, all threads):\n")
    print(
        "| case | threads | separate | rote | ratio | separate, fused Adam | ratio | CPU s: separate, fused, rote "
        "| CPU ratio | max diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in twins:
        fused = r.get("separate_fused_wall_s")
        print(
            f"| {r['case']} | {r['threads']} | {fmt_s(r['separate_wall_s'])} | {fmt_s(r['rote_wall_s'])} | "
            f"**{fmt_ratio(r['separate_wall_s'], r['rote_wall_s'])}** | {fmt_s(fused)} | "
            f"{fmt_ratio(fused, r['rote_wall_s'])} | {fmt_s(r['separate_cpu_s'])}, "
            f"{fmt_s(r.get('separate_fused_cpu_s'))}, {fmt_s(r['rote_cpu_s'])} | "
            f"{fmt_ratio(r['separate_cpu_s'], r['rote_cpu_s'])} | {r['max_abs_diff_heldout_logits']:.1e} |"
        )
    print("\n| case | baseline | rote (`mat_shift` once) | ratio |\n|---|---|---|---|")
    for case, base, ours in shift_rows:
        print(f"| {case} | {fmt_s(base)} | {fmt_s(ours)} | {fmt_ratio(base, ours)} |")
    if prof is not None:
        print(f"\nProfile, {prof['case']}, one thread (share of self CPU time):\n")
        fams = [k for k in prof["shares"]["rote"] if k != "total_s"]
        print("| side | total | " + " | ".join(fams) + " |\n|---|---|" + "---|" * len(fams))
        for side, sh in prof["shares"].items():
            print(f"| {side} | {fmt_s(sh['total_s'])} | " + " | ".join(f"{sh[f]:.0%}" for f in fams) + " |")
    print(f"\ncommand: `{cmd}`" + (" --profile" if args.profile else ""))
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "spurious_twins.json").write_text(
        json.dumps(
            {
                "command": cmd,
                "repeat": repeat,
                "twins": twins,
                "shift": shift,
                "profile": prof,
                "machine": machine_info(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
