"""Speed of rote's vectorized multi-seed ICL training against training the same models one after another, and of
a sweep with parallel worker processes against one worker.

Run:  python bench/icl_vectorized.py            (16 models, N = 20, paper widths: about 5 minutes on 2 idle cores)
      python bench/icl_vectorized.py --quick    (smoke run: 4 models, small widths, under a minute)

What is timed (torch on one thread, CPU, the binary task of Nguyen and Reddy, K = 1024, batch 128):
- `sequential` (the baseline): `train_icl(task, [s])` for each of the M seeds in turn, `--steps` SGD steps each.
- `vectorized`: one `train_icl(task, seeds)` call training all M models at once on batched parameters. Both
  compute the same models (tests/icl/test_models.py checks that the curves agree), so the ratio is pure speed.
  Throughput is training sequences per second summed over the models (M * steps * batch / seconds).
- `sweep`: `run_sweep` over a 4-point grid (K x N, 4 seeds each) with 1 worker process, then with 2.

Prints a markdown table (case, baseline s, rote s, ratio, command) and writes bench/out/icl_vectorized.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--N", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-sweep", action="store_true", help="time only the vectorized training, not the sweep")
    args = ap.parse_args()
    if args.quick:
        args.models, args.steps, args.hidden = 4, 20, 64

    import torch

    torch.set_num_threads(1)
    from rote.icl.experiment import run_sweep, sweep_grids
    from rote.icl.task import BinaryTask
    from rote.icl.train import train_icl

    task = BinaryTask(K=1024, N=args.N)
    seeds = list(range(args.models))
    kw = dict(steps=args.steps, hidden=args.hidden, eval_every=args.steps, eval_n=256, lr=0.01, device=args.device)
    train_icl(task, [0], **{**kw, "steps": 2})  # warm-up: first-use imports and allocations
    # CPU time of this process as well as wall time: on a shared machine the wall clock also counts other jobs
    c0 = time.process_time()
    _, t_seq, _ = timed(lambda: [train_icl(task, [s], **kw) for s in seeds])
    c1 = time.process_time()
    _, t_vec, _ = timed(lambda: train_icl(task, seeds, **kw))
    c2 = time.process_time()
    seqs = args.models * args.steps * 128
    cmd = "python bench/icl_vectorized.py" + (" --quick" if args.quick else f" --hidden {args.hidden} --N {args.N}")
    rows = [
        {
            "case": f"{args.models} models, N={args.N}, H={args.hidden}, {args.steps} steps",
            "baseline_s": t_seq,
            "rote_s": t_vec,
            "baseline_seq_per_s": seqs / t_seq,
            "rote_seq_per_s": seqs / t_vec,
            "baseline_cpu_s": c1 - c0,
            "rote_cpu_s": c2 - c1,
            "command": cmd + f" --models {args.models} --steps {args.steps}",
        }
    ]
    if args.no_sweep:
        _report(rows)
        return
    icl_grid, _ = sweep_grids(
        ["256", "1024"], [8, 16], [0, 1, 2, 3], steps=args.steps, hidden=min(args.hidden, 128), eval_every=args.steps,
        eval_n=256, lr=0.1,
    )  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="rote_icl_bench_"))
    try:
        _, t_w1, _ = timed(lambda: run_sweep(tmp / "w1", icl_grid, workers=1, quiet=True))
        _, t_w2, _ = timed(lambda: run_sweep(tmp / "w2", icl_grid, workers=2, quiet=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows.append(
        {
            "case": "sweep, 4 points x 4 seeds: 1 worker vs 2 workers",
            "baseline_s": t_w1,
            "rote_s": t_w2,
            "command": rows[0]["command"],
        }
    )
    _report(rows)


def _report(rows: list[dict]) -> None:
    print("| case | baseline | rote | ratio | command |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {fmt_s(r['baseline_s'])} | {fmt_s(r['rote_s'])} | "
              f"{fmt_ratio(r['baseline_s'], r['rote_s'])} | `{r['command']}` |")  # fmt: skip
    r = rows[0]
    print(f"\nthroughput: sequential {r['baseline_seq_per_s']:.0f} seq/s, vectorized {r['rote_seq_per_s']:.0f} seq/s")
    print(f"CPU time: sequential {r['baseline_cpu_s']:.2f} s, vectorized {r['rote_cpu_s']:.2f} s, "
          f"ratio {r['baseline_cpu_s'] / r['rote_cpu_s']:.2f}x")  # fmt: skip
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "icl_vectorized.json").write_text(json.dumps({"rows": rows, "machine": machine_info()}, indent=2))


if __name__ == "__main__":
    main()
