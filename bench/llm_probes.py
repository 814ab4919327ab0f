"""Speed of activation capture (forward hooks streaming every token's activations to disk) against the model's plain
forward pass, and of probe training over all layers at once against one layer at a time, in the same run.

Run:  python bench/llm_probes.py                  (about a minute on 2 busy cores; a random tiny GPT)
      python bench/llm_probes.py --model smollm2  (SmolLM2-135M, 30 layers; a few minutes)
      python bench/llm_probes.py --quick          (smoke run)

What is timed (CPU, one torch thread, best of `--repeat` runs):
- capture: `Backend.capture_hidden_states` (hooks on every layer's residual, attention and MLP outputs through
  `rote.core.hooks.capture_to_disk`, rows streamed to .npy chunks, plus per-token log-prob and top-1 metadata)
  against the same batches through the backend's plain forward (`_forward`, logits of every position), in tokens
  per second. The overhead is capture / plain - 1 (the issue asks for under 30%). Each capture writes a new folder;
  deleting them is left out of the timing.
- probes: `rote.llm.probes.LogisticProbes` fitted on all P (layer, site) problems at once (batched Newton) against
  the same class fitted on one problem at a time, and against scikit-learn's LogisticRegression (lbfgs) looped over
  problems, on captured activations with planted labels. The three fits are checked to agree (AUC within 1e-3).

Prints a markdown table (case, baseline s, rote s, ratio, command) and writes bench/out/llm_probes.json.
Timings on a machine shared with other jobs are inflated and noisy; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-random", help="tiny-random, smollm2, tiny:FOLDER or a HF folder")
    ap.add_argument("--texts", type=int, default=64, help="sequences to capture")
    ap.add_argument("--length", type=int, default=128, help="tokens per sequence")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.texts, args.repeat = 16, 1
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

    def plain() -> None:
        with torch.inference_mode():
            for b in batches:
                x, mask, pos = backend._padded(b)
                backend._forward(x, mask, pos, None, False)

    scratch = tempfile.TemporaryDirectory()  # removed at the end, not inside the timing: deleting is not capture
    n_captures = [0]

    def capture(dtype: str) -> None:
        n_captures[0] += 1
        backend.capture_hidden_states(
            ids,
            Path(scratch.name) / f"acts-{n_captures[0]}",
            layers=None,
            sites=SITES,
            batch_size=args.batch,
            dtype=dtype,
        )

    plain()  # warm-up
    _, t_plain, _ = timed(plain, args.repeat)
    n_layers = backend.n_layers
    rows = []
    for dtype in ("float32", "float16"):
        _, t_cap, _ = timed(lambda: capture(dtype), args.repeat)
        rows.append(
            {
                "case": f"capture {n_layers} layers x 3 sites, {n_tokens} tokens, {dtype} ({args.model})",
                "baseline": "plain forward",
                "baseline_s": t_plain,
                "rote_s": t_cap,
                "tokens_per_s_plain": n_tokens / t_plain,
                "tokens_per_s_capture": n_tokens / t_cap,
                "overhead": t_cap / t_plain - 1,
            }
        )
    scratch.cleanup()
    # probes on real activations (residual stream of every layer), labels planted along a random direction mixed
    # with the layer's own features so that every problem is different but learnable
    hs = backend.hidden_states(ids[: max(4, len(ids) // 2)], layers=None, sites=["resid"], batch_size=args.batch)
    feats = np.stack([np.concatenate(hs[(la, "resid")]) for la in range(n_layers)])  # (P, N, C)
    feats = feats[:, : 4000 if not args.quick else 1000]
    direction = rng.normal(size=feats.shape[2])
    z = (feats[-1] - feats[-1].mean(0)) / (feats[-1].std(0) + 1e-6) @ direction
    y = (z + rng.normal(scale=z.std(), size=len(z)) > 0).astype(float)
    together, t_all, _ = timed(lambda: LogisticProbes(1.0).fit(feats, y), args.repeat)
    one, t_one, _ = timed(lambda: [LogisticProbes(1.0).fit(feats[p : p + 1], y) for p in range(n_layers)], args.repeat)

    from sklearn.linear_model import LogisticRegression  # imported before timing
    from sklearn.preprocessing import StandardScaler

    def sklearn_loop():
        return [
            LogisticRegression(C=1.0, max_iter=5000).fit(StandardScaler().fit_transform(feats[p]), y)
            for p in range(n_layers)
        ]

    sk, t_sk, _ = timed(sklearn_loop, args.repeat)
    auc_all = [roc_auc(together.decision_function(feats)[p], y) for p in range(n_layers)]
    auc_one = [roc_auc(one[p].decision_function(feats[p : p + 1])[0], y) for p in range(n_layers)]

    auc_sk = [roc_auc(sk[p].decision_function(StandardScaler().fit_transform(feats[p])), y) for p in range(n_layers)]
    assert np.allclose(auc_all, auc_one, atol=1e-3) and np.allclose(auc_all, auc_sk, atol=1e-3), (auc_all, auc_sk)
    shape = f"{n_layers} problems x {feats.shape[1]} tokens x {feats.shape[2]} features"
    rows.append(
        {"case": f"probes, {shape}", "baseline": "same, one layer at a time", "baseline_s": t_one, "rote_s": t_all}
    )
    rows.append(
        {"case": f"probes, {shape}", "baseline": "scikit-learn lbfgs loop", "baseline_s": t_sk, "rote_s": t_all}
    )
    cmd = "python bench/llm_probes.py" + (f" --model {args.model}" if args.model != "tiny-random" else "")
    cmd += " --quick" if args.quick else ""
    print("| case | baseline | baseline s | rote s | ratio | command |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['baseline']} | {fmt_s(r['baseline_s'])} | {fmt_s(r['rote_s'])} | "
            f"{fmt_ratio(r['baseline_s'], r['rote_s'])} | `{cmd}` |"
        )
    for r0 in rows[:2]:
        print(
            f"{r0['case']}: {r0['tokens_per_s_capture']:,.0f} tokens/s with hooks vs "
            f"{r0['tokens_per_s_plain']:,.0f} plain; overhead {100 * r0['overhead']:.0f}% (target < 30%)"
        )
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "llm_probes.json").write_text(
        json.dumps({"rows": rows, "command": cmd, "machine": machine_info()}, indent=1)
    )


if __name__ == "__main__":
    main()
