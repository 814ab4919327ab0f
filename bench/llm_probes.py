"""Speed of activation capture (forward hooks streaming every token's activations to disk) against the model's plain
forward pass, and of probe training over all layers at once against one layer at a time and scikit-learn, in the
same run.

Run:  python bench/llm_probes.py                          (a random tiny GPT; about 2 minutes)
      python bench/llm_probes.py --model smollm2 --quick  (SmolLM2-135M, 30 layers, 2048 tokens; 1000-token probes)
      python bench/llm_probes.py --model smollm2          (8192 tokens, 4000-token probes; ~25 min quiet)
      python bench/llm_probes.py --model smollm2 --capture-only   (the capture rows only: 8192 tokens in 4 batches,
                                                          so the background writer can overlap; ~15 min quiet)
      python bench/llm_probes.py --model smollm2 --probes-only    (the probe rows only: 30 x 4000 x 576; ~5 min)
      python bench/llm_probes.py --dtype-agreement        (no timing: probe AUC/acc with float16 against float32
                                                          capture, tiny GPT demo + SmolLM2; ~5 min)

What is timed (CPU; torch threads 1 and 2, `--threads`; scikit-learn/BLAS threads limited alike):
- capture: `Backend.capture_hidden_states` (hooks on every layer's residual, attention and MLP outputs through
  `rote.core.hooks.capture_to_disk`, rows streamed to .npy chunks and fsynced, plus per-token log-prob and top-1
  metadata) against the same batches through the backend's plain forward (`_forward`, logits of every position),
  in tokens per second. Overhead = capture / plain - 1 (the issue asks for under 30%). float32 and float16 rows
  (float16 is `rote llm probe`'s default), each with the background writer thread and with the synchronous writer;
  the capture table marks with * the writer that the default `background=None` picks at that thread count (the
  thread only when torch leaves a core free). Each capture's folder is deleted after its timing, outside it.
- probes: `rote.llm.probes.LogisticProbes` fitted on all P (layer, site) problems at once (blocks of problems
  fitted side by side on one thread each when torch has several) against the same class fitted on one problem at a
  time, against the all-at-once fit with its blocks in turn (`parallel=False`), and against scikit-learn's
  LogisticRegression (lbfgs, its defaults) looped over problems, on captured residual-stream activations with
  planted labels. The fits are checked to agree (AUC within 1e-3). Note: scikit-learn's default tolerance is far
  looser than rote's (gradient 1e-4 of the mean loss against 1e-7 of the initial gradient norm), so it stops
  earlier.
Every case is timed `--repeat` times (7 for tiny-random, whose captures take a third of a second, else 3), the
cases interleaved and rotated (A B C, B C A, ...), and the median is reported, wall
seconds and process CPU seconds (all threads). Prints a markdown table and writes bench/out/llm_probes.json
(bench/out/llm_probes-<model>[-quick][-capture|-probes].json for other models or options). With `--quick` all 2048
tokens are one batch, so there is nothing for the background writer to overlap but the last write.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from benchlib import fmt_ratio, fmt_s, machine_info  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rote.core.hooks import ActivationStore, writer_thread_pays  # noqa: E402
from rote.core.privacy import roc_auc  # noqa: E402
from rote.llm.backends.base import SITES  # noqa: E402
from rote.llm.probes import LogisticProbes  # noqa: E402

HERE = Path(__file__).resolve().parent


def open_model(spec: str):
    if spec == "tiny-random":
        from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model

        return TinyGPTBackend(build_model(TinyGPTConfig(block_size=256, n_layer=4, n_head=4, n_embd=192), seed=0))
    from rote.llm.backends.open import open_backend

    return open_backend(spec)


def interleaved(
    cases: dict[str, Callable[[], Any]], repeat: int, cleanup: Callable[[], None] | None = None
) -> tuple[dict[str, Any], dict[str, list]]:
    """Run every case `repeat` times, interleaved, the order rotated at each repeat (A B C, B C A, C A B: no case
    always follows the same one, e.g. scikit-learn's BLAS threads still spinning); returns ({name: last value},
    {name: [(wall s, cpu s), ...]}). cleanup: run after each case, outside the timing."""
    values, times = {}, {name: [] for name in cases}
    names = list(cases)
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = cases[name]
            t0, c0 = time.perf_counter(), time.process_time()
            values[name] = fn()
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
            if cleanup is not None:
                cleanup()
    return values, times


def med(ts: list, k: int) -> float:
    return statistics.median(t[k] for t in ts)


def bench_probe_fits(args, backend, ids, threads, rng, rows: list) -> None:
    """Append the probe-fit rows: all layers at once against a loop of one-layer fits and scikit-learn's loop."""
    from threadpoolctl import threadpool_limits

    n_layers = backend.n_layers
    # probes on real activations (residual stream of every layer), labels planted along a random direction mixed
    # with the layer's own features so that every problem is different but learnable
    torch.set_num_threads(threads[0])
    hs = backend.hidden_states(ids[: max(4, len(ids) // 2)], layers=None, sites=["resid"], batch_size=args.batch)
    feats = np.stack([np.concatenate(hs[(la, "resid")]) for la in range(n_layers)])  # (P, N, C)
    feats = feats[:, : 4000 if not args.quick else 1000]
    direction = rng.normal(size=feats.shape[2])
    z = (feats[-1] - feats[-1].mean(0)) / (feats[-1].std(0) + 1e-6) @ direction
    y = (z + rng.normal(scale=z.std(), size=len(z)) > 0).astype(float)
    from sklearn.linear_model import LogisticRegression  # imported before timing
    from sklearn.preprocessing import StandardScaler

    probe_cases = {
        "all at once": lambda: LogisticProbes(1.0).fit(feats, y),
        "all at once, blocks in turn": lambda: LogisticProbes(1.0, parallel=False).fit(feats, y),
        "one layer at a time": lambda: [LogisticProbes(1.0).fit(feats[p : p + 1], y) for p in range(n_layers)],
        "scikit-learn lbfgs loop": lambda: [
            LogisticRegression(C=1.0, max_iter=5000).fit(StandardScaler().fit_transform(feats[p]), y)
            for p in range(n_layers)
        ],
    }
    shape = f"{n_layers} problems x {feats.shape[1]} tokens x {feats.shape[2]} features"
    for t in threads:
        torch.set_num_threads(t)
        with threadpool_limits(limits=t):
            for fn in probe_cases.values():
                fn()  # warm-up (lazy imports: scipy.linalg)
            fits, times = interleaved(probe_cases, args.repeat)
        together, one, sk = fits["all at once"], fits["one layer at a time"], fits["scikit-learn lbfgs loop"]
        auc_all = [roc_auc(together.decision_function(feats)[p], y) for p in range(n_layers)]
        auc_one = [roc_auc(one[p].decision_function(feats[p : p + 1])[0], y) for p in range(n_layers)]
        auc_sk = [
            roc_auc(sk[p].decision_function(StandardScaler().fit_transform(feats[p])), y) for p in range(n_layers)
        ]
        assert np.allclose(auc_all, auc_one, atol=1e-3) and np.allclose(auc_all, auc_sk, atol=1e-3), (auc_all, auc_sk)
        for name in ("one layer at a time", "scikit-learn lbfgs loop", "all at once, blocks in turn"):
            rows.append(
                {
                    "case": f"probes all at once, {shape}",
                    "threads": t,
                    "baseline": name,
                    "baseline_s": med(times[name], 0),
                    "baseline_cpu_s": med(times[name], 1),
                    "rote_s": med(times["all at once"], 0),
                    "rote_cpu_s": med(times["all at once"], 1),
                    "repeats": args.repeat,
                }
            )


def bench_dtype_agreement(args) -> dict[str, Any]:
    """What float16 capture changes in the probes: `probe_study` twice on the same texts and tokens, activations
    stored as float32 and as float16, per-(layer, site) cross-validated AUC and accuracy compared. Models: the
    `probe-demo` tiny GPT (trained here, `--seed`, demo defaults) and SmolLM2-135M on famous against fresh texts
    (docs/probes.md's command, all three sites). Also the largest |activation| captured, against float16's 65504."""
    from rote.llm.backends.open import open_backend
    from rote.llm.corpus import famous_texts, fresh_texts
    from rote.llm.probes import probe_study, train_demo_model

    torch.set_num_threads(1)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rote-bench-dtype-") as tmp:
        backend, members, unseen, _, _ = train_demo_model(Path(tmp) / "model", seed=args.seed)
        famous = famous_texts()["text"].astype(str).tolist()
        studies = {
            "tiny GPT probe-demo": (backend, members, unseen, {"min_run": 16, "folds": 5}),
            "SmolLM2-135M famous vs fresh": (
                open_backend("smollm2"),
                famous,
                fresh_texts(len(famous), seed=args.seed),
                {"min_run": 8, "folds": 3},
            ),
        }
        for name, (bk, pos, ctrl, kw) in studies.items():
            res = {}
            for dt in ("float32", "float16"):
                acts = Path(tmp) / f"acts-{dt}"
                t0, c0 = time.perf_counter(), time.process_time()
                r, _ = probe_study(bk, pos, ctrl, capture_dtype=dt, seed=args.seed, activations_dir=acts, **kw)
                secs = (time.perf_counter() - t0, time.process_time() - c0)
                store = ActivationStore(acts)
                peak = max(float(np.abs(np.asarray(c, np.float32)).max()) for n in store.names for c in store.chunks(n))
                shutil.rmtree(acts)
                res[dt] = (r, secs, peak)
            (r32, s32, peak), (r16, s16, _) = res["float32"], res["float16"]
            assert r32.tokens[["text", "pos", "label"]].equals(r16.tokens[["text", "pos", "label"]])  # same tokens
            assert r32.baselines == r16.baselines  # the baselines read the logits only
            d_auc = [abs(a["auc"] - b["auc"]) for a, b in zip(r32.layers, r16.layers)]
            d_acc = [abs(a["acc"] - b["acc"]) for a, b in zip(r32.layers, r16.layers)]
            out[name] = {
                "problems": len(d_auc),
                "tokens": r32.n_positive + r32.n_negative,
                "max_abs_d_auc": max(d_auc),
                "mean_abs_d_auc": float(np.mean(d_auc)),
                "max_abs_d_acc": max(d_acc),
                "best_float32": r32.best,
                "best_float16": r16.best,
                "peak_abs_activation": peak,
                "seconds_float32": s32,
                "seconds_float16": s16,
                "layers": [
                    {
                        "layer": a["layer"],
                        "site": a["site"],
                        "auc32": a["auc"],
                        "auc16": b["auc"],
                        "acc32": a["acc"],
                        "acc16": b["acc"],
                    }
                    for a, b in zip(r32.layers, r16.layers)
                ],
            }
    print(f"float32 against float16 capture, same tokens, seed {args.seed}")
    print(
        "| model | (layer, site) problems | tokens | max abs dAUC | mean abs dAUC | max abs dacc | best (32 / 16) "
        "| peak abs activation | study wall s (CPU s), float32 / float16 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, o in out.items():
        b32, b16 = o["best_float32"], o["best_float16"]
        print(
            f"| {name} | {o['problems']} | {o['tokens']} | {o['max_abs_d_auc']:.2g} | {o['mean_abs_d_auc']:.2g} | "
            f"{o['max_abs_d_acc']:.2g} | {b32['layer']} {b32['site']} {b32['auc']:.4f} / {b16['layer']} "
            f"{b16['site']} {b16['auc']:.4f} | {o['peak_abs_activation']:,.0f} | "
            f"{o['seconds_float32'][0]:.1f} ({o['seconds_float32'][1]:.1f}) / "
            f"{o['seconds_float16'][0]:.1f} ({o['seconds_float16'][1]:.1f}) |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-random", help="tiny-random, smollm2, tiny:FOLDER or a HF folder")
    ap.add_argument("--texts", type=int, default=64, help="sequences to capture")
    ap.add_argument("--length", type=int, default=128, help="tokens per sequence")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repeats per case (default 7 for tiny-random, whose runs are short, else 3)",
    )
    ap.add_argument("--threads", default="1,2", help="torch thread counts to time, comma-separated")
    ap.add_argument("--quick", action="store_true", help="16 sequences, 1000-token probes, 1 repeat")
    ap.add_argument("--capture-only", action="store_true", help="time the capture only (no probe fits)")
    ap.add_argument("--probes-only", action="store_true", help="time the probe fits only (no capture)")
    ap.add_argument(
        "--dtype-agreement",
        action="store_true",
        help="no timing: probe AUC/acc with float32 against float16 capture (tiny GPT demo and SmolLM2)",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of --dtype-agreement's demo model and folds")
    args = ap.parse_args()
    if args.dtype_agreement:
        result = bench_dtype_agreement(args)
        (HERE / "out").mkdir(exist_ok=True)
        cmd = "python bench/llm_probes.py --dtype-agreement" + (f" --seed {args.seed}" if args.seed else "")
        print(f"command: {cmd}")
        (HERE / "out" / f"llm_probes-dtype-agreement-s{args.seed}.json").write_text(
            json.dumps({"studies": result, "command": cmd, "machine": machine_info(torch_threads=[1])}, indent=1)
        )
        return

    if args.repeat is None:  # a tiny-random capture takes a third of a second: more repeats steady its median
        args.repeat = 7 if args.model == "tiny-random" else 3
    if args.quick:
        args.texts, args.repeat = 16, 1
    threads = [int(t) for t in args.threads.split(",")]
    backend = open_model(args.model)
    rng = np.random.default_rng(0)
    from rote.data.text import load_kjv

    verses = load_kjv()["text"].astype(str).tolist()
    ids, i = [], 0
    while len(ids) < args.texts:  # real text, cut to exactly `length` tokens
        chunk = backend.encode([" ".join(verses[i : i + 8])])[0]
        i += 8
        if len(chunk) >= args.length:
            ids.append(chunk[: args.length])
    n_tokens = len(ids) * args.length
    batches = [ids[j : j + args.batch] for j in range(0, len(ids), args.batch)]
    n_layers = backend.n_layers

    def plain() -> None:
        with torch.inference_mode():
            for b in batches:
                x, mask, pos = backend._padded(b)
                backend._forward(x, mask, pos, None, False)

    scratch = Path(tempfile.mkdtemp(prefix="rote-bench-"))

    def capture(dtype: str, background: bool) -> Callable[[], None]:
        def run() -> None:
            backend.capture_hidden_states(
                ids,
                scratch / "acts",
                layers=None,
                sites=SITES,
                batch_size=args.batch,
                dtype=dtype,
                background=background,
            )

        return run

    rows = []
    capture_cases = {
        "plain forward": plain,
        "capture float32, background writer": capture("float32", True),
        "capture float32, synchronous writer": capture("float32", False),
        "capture float16, background writer": capture("float16", True),
        "capture float16, synchronous writer": capture("float16", False),
    }
    try:
        for t in threads if not args.probes_only else []:
            torch.set_num_threads(t)
            plain()  # warm-up at this thread count
            # each capture's folder is deleted after its timing (deleting is not capture; keeps the disk free)
            _, times = interleaved(capture_cases, args.repeat, lambda: shutil.rmtree(scratch / "acts", True))
            base = times["plain forward"]
            auto = "background" if writer_thread_pays() else "synchronous"  # what background=None picks here
            for name in list(capture_cases)[1:]:
                ts = times[name]
                rows.append(
                    {
                        "case": f"{name}: {n_layers} layers x 3 sites, {n_tokens} tokens ({args.model})",
                        "kind": name,
                        "default_writer": auto in name,
                        "threads": t,
                        "baseline": "plain forward",
                        "baseline_s": med(base, 0),
                        "baseline_cpu_s": med(base, 1),
                        "rote_s": med(ts, 0),
                        "rote_cpu_s": med(ts, 1),
                        "tokens_per_s_plain": n_tokens / med(base, 0),
                        "tokens_per_s_capture": n_tokens / med(ts, 0),
                        "overhead": med(ts, 0) / med(base, 0) - 1,
                        "repeats": args.repeat,
                    }
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    if not args.capture_only:
        bench_probe_fits(args, backend, ids, threads, rng, rows)
    cmd = "python bench/llm_probes.py" + (f" --model {args.model}" if args.model != "tiny-random" else "")
    cmd += " --quick" if args.quick else ""
    cmd += " --capture-only" if args.capture_only else ""
    cmd += " --probes-only" if args.probes_only else ""
    cmd += f" --threads {args.threads}" if args.threads != "1,2" else ""
    default_repeat = 7 if args.model == "tiny-random" else 3
    for opt, default in (("texts", 64), ("length", 128), ("batch", 16), ("repeat", default_repeat)):
        if not args.quick and getattr(args, opt) != default:
            cmd += f" --{opt} {getattr(args, opt)}"
    print(f"median of {args.repeat} interleaved repeats; wall s (process CPU s)")
    print("| case | threads | baseline | baseline s | rote s | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['threads']} | {r['baseline']} | {fmt_s(r['baseline_s'])} "
            f"({fmt_s(r['baseline_cpu_s'])}) | {fmt_s(r['rote_s'])} ({fmt_s(r['rote_cpu_s'])}) | "
            f"{fmt_ratio(r['baseline_s'], r['rote_s'])} |"
        )
    cap = [r for r in rows if "overhead" in r]
    if cap:  # the capture table: overhead over the plain forward, per thread count; * = the automatic writer
        kinds = list(dict.fromkeys(r["kind"] for r in cap))
        print(
            f"\ncapture overhead over the plain forward ({n_tokens} tokens, {args.model}; * = the writer that "
            "background=None picks at that thread count; target < 30%)"
        )
        print("| threads | plain forward | " + " | ".join(k.removeprefix("capture ") for k in kinds) + " |")
        print("|---|---|" + "---|" * len(kinds))
        for t in threads:
            rt = {r["kind"]: r for r in cap if r["threads"] == t}
            cells = [
                f"{100 * rt[k]['overhead']:+.0f}%{'*' if rt[k]['default_writer'] else ''} "
                f"({fmt_s(rt[k]['rote_s'])}, CPU {fmt_s(rt[k]['rote_cpu_s'])})"
                for k in kinds
            ]
            r0 = rt[kinds[0]]
            print(
                f"| {t} | {r0['tokens_per_s_plain']:,.0f} tokens/s ({fmt_s(r0['baseline_s'])}, CPU "
                f"{fmt_s(r0['baseline_cpu_s'])}) | " + " | ".join(cells) + " |"
            )
    print(f"command: {cmd}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    name = (
        "llm_probes" if args.model == "tiny-random" else f"llm_probes-{args.model.replace(':', '-').replace('/', '-')}"
    )
    name += "-quick" if args.quick else ""
    name += "-capture" if args.capture_only else ""
    name += "-probes" if args.probes_only else ""
    (out / f"{name}.json").write_text(
        json.dumps({"rows": rows, "command": cmd, "machine": machine_info(torch_threads=threads)}, indent=1)
    )


if __name__ == "__main__":
    main()
