"""Speed of rote's vectorized multi-seed ICL training against training the same models one after another, on one
and on two torch threads, and of a sweep with parallel worker processes against one worker.

Run:  python bench/icl_vectorized.py            (the final table: 16 models, H = 128 / N = 8 and the paper's
                                                 H = 512 / N = 20, 60 steps, 1 and 2 threads, 3 interleaved
                                                 repeats each: a few minutes on 2 idle cores, then the sweep)
      python bench/icl_vectorized.py --no-sweep  (the training table only)
      python bench/icl_vectorized.py --profile   (where a step's time goes: draw / forward / backward / optimizer /
                                                 evaluation per step, one model against 16, whole-step wall
                                                 times on 1 and 2 threads, and the top operators)
      python bench/icl_vectorized.py --quick     (smoke run: 4 models, H = 64, 1 repeat, under a minute)

What is timed (CPU, the binary task of Nguyen and Reddy, K = 1024, batch 128, SGD lr 0.01, one evaluation of
3 x 256 sequences at the start and one at the end, as `train_icl` does with eval_every = steps):
- `textbook` (the baseline a user without rote has): `rote.icl.reference.train_reference(task, s)` for each of
  the M seeds in turn: `task.sample` batches, the authors' forward pass (every token projected to q, k, v, causal
  attention at every position), torch's SGD, the same two evaluations.
- `sequential`: `train_icl(task, [s])` for each seed in turn: rote's single-model path, which already has the
  rearranged one-layer forward (only the query's row; LayerNorm folded) and the table-gathered batches, so the
  ratio against it is what stacking the models buys, nothing else.
- `vectorized`: one `train_icl(task, seeds)` call training all M models at once on batched parameters.
All three compute the same models (tests/icl/test_models.py checks that the curves agree), so the ratios are pure
speed. Each repeat runs textbook, sequential and vectorized back to back (ABCABC...), so all see the same machine
load; the table gives medians over the repeats of wall seconds and of process CPU seconds (`time.process_time`,
all threads).
Throughput is training sequences per second summed over the models (M * steps * batch / wall seconds).
On two threads the CPU time also counts the threads' busy-waiting, so wall time is the measure there; the
"2 cores" verdicts compare the vectorized run on 2 threads with the faster setting (1 or 2 threads) of each
one-after-another baseline.

Prints markdown tables and writes bench/out/icl_vectorized.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HERE = Path(__file__).resolve().parent
BATCH = 128


def _clock(fn) -> tuple[float, float]:
    """(wall s, process CPU s) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def compare(hidden: int, n: int, models: int, steps: int, repeats: int, threads: int, device: str) -> dict:
    """Median wall and CPU seconds of the sequential and the vectorized run, interleaved `repeats` times."""
    import torch

    from rote.icl.reference import train_reference
    from rote.icl.task import BinaryTask
    from rote.icl.train import train_icl

    torch.set_num_threads(threads)
    task = BinaryTask(K=1024, N=n)
    seeds = list(range(models))
    kw = dict(steps=steps, hidden=hidden, eval_every=steps, eval_n=256, lr=0.01, batch=BATCH, device=device)
    train_icl(task, seeds[:2], **{**kw, "steps": 2})  # warm-up: first-use imports, allocations, thread pool
    ref_kw = dict(steps=steps, hidden=hidden, lr=0.01, batch=BATCH)

    def textbook() -> None:
        for s in seeds:  # the eval sets are built per model, as each train_icl call builds them
            train_reference(task, s, eval_sets=task.eval_sets(256), **ref_kw)

    tb, seq, vec = [], [], []
    for _ in range(repeats):
        tb.append(_clock(textbook))
        seq.append(_clock(lambda: [train_icl(task, [s], **kw) for s in seeds]))
        vec.append(_clock(lambda: train_icl(task, seeds, **kw)))
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    row = {
        "case": f"{models} models, H={hidden}, N={n}, {steps} steps",
        "hidden": hidden,
        "N": n,
        "threads": threads,
        "repeats": repeats,
        "textbook_s": med(tb, 0),
        "textbook_cpu_s": med(tb, 1),
        "baseline_s": med(seq, 0),
        "rote_s": med(vec, 0),
        "baseline_cpu_s": med(seq, 1),
        "rote_cpu_s": med(vec, 1),
        "textbook_all": tb,
        "baseline_all": seq,
        "rote_all": vec,
    }
    print(f"{row['case']}, {threads} thread(s): textbook {row['textbook_s']:.2f} s, "
          f"sequential {row['baseline_s']:.2f} s, vectorized {row['rote_s']:.2f} s", file=sys.stderr)  # fmt: skip
    seqs = models * steps * BATCH
    row["baseline_seq_per_s"], row["rote_seq_per_s"] = seqs / row["baseline_s"], seqs / row["rote_s"]
    return row


def profile(hidden: int, n: int, models: int, reps: int = 12) -> dict:
    """CPU ms per training step in each phase (draw, forward, backward, optimizer; evaluation: one pass over the
    three 256-sequence sets) for one model and for `models` at once, one thread, medians over `reps` steps; and
    the stacked step's top operators by self CPU time (torch.profiler)."""
    import torch

    from rote.icl.models import ICLNet
    from rote.icl.task import BinaryTask
    from rote.icl.train import _batch_drawer, _evaluate, _optimizer, loss_and_correct

    torch.set_num_threads(1)
    task = BinaryTask(K=1024, N=n)
    sets = task.eval_sets(256)

    def setup(m: int):
        net = ICLNet("one_layer", list(range(m)), task.dim, hidden=hidden)
        opt = _optimizer(net, 1e-10, 1e-10, 0.01)  # what train_icl builds
        draw = _batch_drawer(task, net, [torch.Generator().manual_seed(s) for s in range(m)], BATCH, "cpu")
        return net, opt, draw

    def phases(m: int) -> dict[str, float]:
        net, opt, draw = setup(m)
        t: dict[str, list[float]] = {k: [] for k in ("draw", "forward", "backward", "optimizer", "evaluation")}
        for i in range(reps + 2):
            c = time.process_time()
            x, y, normalized = draw()
            c1 = time.process_time()
            per_model = loss_and_correct(net(x, normalized=normalized), y)[0].mean(1)
            c2 = time.process_time()
            opt.zero_grad(set_to_none=True)
            per_model.sum().backward()
            c3 = time.process_time()
            opt.step()
            c4 = time.process_time()
            if i >= 2:  # the first two steps allocate
                for k, v in zip(t, (c1 - c, c2 - c1, c3 - c2, c4 - c3)):
                    t[k].append(v * 1e3)
            if i < 3:
                c = time.process_time()
                _evaluate(net, sets, chunk=max(1, 4096 // m))
                t["evaluation"].append((time.process_time() - c) * 1e3)
        return {k: statistics.median(v) for k, v in t.items()}

    def step_times(m: int, threads: int, n_steps: int = 30) -> dict[str, float]:
        """Wall ms of whole training steps on `threads` threads: the fastest (what the machine can do when no other
        job takes a core in that step: robust to load) and the median."""
        torch.set_num_threads(threads)
        net, opt, draw = setup(m)
        times = []
        for i in range(n_steps + 3):
            t0 = time.perf_counter()
            x, y, normalized = draw()
            per_model = loss_and_correct(net(x, normalized=normalized), y)[0].mean(1)
            opt.zero_grad(set_to_none=True)
            per_model.sum().backward()
            opt.step()
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1e3)
        torch.set_num_threads(1)
        return {"min_ms": min(times), "median_ms": statistics.median(times)}

    steps_wall = {
        f"{t} thread(s)": {"1 model": step_times(1, t), f"{models} models": step_times(models, t)} for t in (1, 2)
    }
    one, many = phases(1), phases(models)
    net, opt, draw = setup(models)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(5):
            x, y, normalized = draw()
            loss = loss_and_correct(net(x, normalized=normalized), y)[0].mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    averages = prof.key_averages(group_by_input_shape=True)
    ops = sorted(((e.self_cpu_time_total / 5e3, e.key, str(e.input_shapes)) for e in averages), reverse=True)
    total = sum(o[0] for o in ops)
    return {
        "hidden": hidden,
        "N": n,
        "models": models,
        "step_wall_ms": steps_wall,
        "one_model_ms": one,
        "stacked_ms": many,
        "top_ops": [{"op": k, "shapes": s[:80], "ms_per_step": v, "share": v / total} for v, k, s in ops[:12]],
    }


def _print_profile(p: dict) -> None:
    m = p["models"]
    print(f"\n### H = {p['hidden']}, N = {p['N']}: CPU ms per step, one thread (evaluation: one pass, 3 x 256 seqs)")
    print(f"| phase | 1 model | x {m} | {m} models at once | ratio |\n|---|---|---|---|---|")
    for k, v in p["one_model_ms"].items():
        w = p["stacked_ms"][k]
        print(f"| {k} | {v:.2f} | {v * m:.2f} | {w:.2f} | {v * m / w:.2f}x |")
    one = sum(v for k, v in p["one_model_ms"].items() if k != "evaluation")
    many = sum(v for k, v in p["stacked_ms"].items() if k != "evaluation")
    print(f"| training step | {one:.2f} | {one * m:.2f} | {many:.2f} | {one * m / many:.2f}x |")
    print(f"\nwhole training steps, wall ms (fastest / median of 30); ratio = {m} x (1 model) / ({m} models):")
    for t, d in p["step_wall_ms"].items():
        a, b = d["1 model"], d[f"{m} models"]
        fast, mid = m * a["min_ms"] / b["min_ms"], m * a["median_ms"] / b["median_ms"]
        print(f"  {t}: 1 model {a['min_ms']:.2f} / {a['median_ms']:.2f}, {m} models {b['min_ms']:.2f} / "
              f"{b['median_ms']:.2f}; ratio {fast:.2f}x / {mid:.2f}x")  # fmt: skip
    print(f"\ntop operators of the {m}-model step (self CPU, share of the profiled step):")
    for o in p["top_ops"][:8]:
        print(f"  {o['share']:5.1%} {o['ms_per_step']:6.2f} ms  {o['op']} {o['shapes']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="128:8,512:20", help="H:N pairs, comma-separated")
    ap.add_argument("--threads", default="1,2", help="torch thread counts, comma-separated")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-sweep", action="store_true", help="time only the training, not the sweep")
    ap.add_argument("--profile", action="store_true", help="print where the time goes instead of the table")
    args = ap.parse_args()
    if args.quick:
        args.models, args.steps, args.repeats, args.cases, args.no_sweep = 4, 20, 1, "64:8", True
    cases = [tuple(int(v) for v in c.split(":")) for c in args.cases.split(",")]
    if args.profile:
        profs = [profile(h, n, args.models) for h, n in cases]
        for p in profs:
            _print_profile(p)
        _write({"profile": profs})
        return
    threads = [int(t) for t in args.threads.split(",")]
    rows = [
        compare(h, n, args.models, args.steps, args.repeats, t, args.device) for h, n in cases for t in threads
    ]  # fmt: skip
    cmd = "python bench/icl_vectorized.py" + (" --quick" if args.quick else "")
    for r in rows:
        r["command"] = cmd
    if not args.no_sweep:
        rows.append(_sweep(args.steps, min(h for h, _ in cases)) | {"command": cmd})
    _report(rows)


def _sweep(steps: int, hidden: int) -> dict:
    import torch

    from rote.icl.experiment import run_sweep, sweep_grids

    torch.set_num_threads(1)
    icl_grid, _ = sweep_grids(
        ["256", "1024"], [8, 16], [0, 1, 2, 3], steps=steps, hidden=hidden, eval_every=steps, eval_n=256, lr=0.1,
    )  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="rote_icl_bench_"))
    try:
        _, t_w1, _ = timed(lambda: run_sweep(tmp / "w1", icl_grid, workers=1, quiet=True))
        _, t_w2, _ = timed(lambda: run_sweep(tmp / "w2", icl_grid, workers=2, quiet=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"case": f"sweep, 4 points x 4 seeds, H={hidden}: 1 worker vs 2 workers", "baseline_s": t_w1, "rote_s": t_w2}


def _report(rows: list[dict]) -> None:
    print("| case | threads | textbook loop (wall / CPU) | rote, one at a time (wall / CPU) | vectorized (wall / CPU) "
          "| ratio vs textbook | ratio vs one at a time | seq/s (one at a time -> vectorized) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "threads" not in r:
            continue
        print(f"| {r['case']} | {r['threads']} | {fmt_s(r['textbook_s'])} / {fmt_s(r['textbook_cpu_s'])} | "
              f"{fmt_s(r['baseline_s'])} / {fmt_s(r['baseline_cpu_s'])} | "
              f"{fmt_s(r['rote_s'])} / {fmt_s(r['rote_cpu_s'])} | **{fmt_ratio(r['textbook_s'], r['rote_s'])}** | "
              f"**{fmt_ratio(r['baseline_s'], r['rote_s'])}** | "
              f"{r['baseline_seq_per_s']:.0f} -> {r['rote_seq_per_s']:.0f} |")  # fmt: skip
    print("\n'On 2 cores' (vectorized on 2 threads against each baseline's faster setting, 1 or 2 threads; wall):")
    for case in dict.fromkeys(r["case"] for r in rows if "threads" in r):
        by_t = {r["threads"]: r for r in rows if r.get("case") == case}
        if 2 in by_t:
            best_tb = min(r["textbook_s"] for r in by_t.values())
            best = min(r["baseline_s"] for r in by_t.values())
            vec = by_t[2]["rote_s"]
            print(f"  {case}: {best_tb / vec:.2f}x against the textbook loop, {best / vec:.2f}x against rote one "
                  "model at a time (target 4x)")  # fmt: skip
    for r in rows:
        if "threads" not in r:
            print(f"\n{r['case']}: {fmt_s(r['baseline_s'])} vs {fmt_s(r['rote_s'])} "
                  f"({fmt_ratio(r['baseline_s'], r['rote_s'])})")  # fmt: skip
    _write({"rows": rows})


def _write(payload: dict) -> None:
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    name = "icl_vectorized_profile.json" if "profile" in payload else "icl_vectorized.json"
    (out / name).write_text(json.dumps({**payload, "machine": machine_info(load_average=os.getloadavg())}, indent=2))


if __name__ == "__main__":
    main()
