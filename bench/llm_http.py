"""Speed of the new LLM measurement paths against their baselines, measured in the same run.

Run:  python bench/llm_http.py            (64 prompts per HTTP case, n = 2,000 scores for the AUC interval)
      python bench/llm_http.py --quick    (smoke run)

Cases:

- `HTTP concurrency`: 64 prompted completions against the local OpenAI-compatible test server
  (tests/llm/openai_server.py, a real HTTP server on 127.0.0.1 serving a seeded random tiny GPT) with 100 ms of
  added latency per answer, as a remote endpoint has: `concurrency=1` (one request at a time, rote's old behaviour)
  vs `concurrency=8`. Both must return the same answers in the same order.
- `AUC interval`: rote.core.stats.auc_ci (DeLong, O(n log n)) vs the 1,000-replicate stratified percentile bootstrap
  of the AUC that rote used before (`bootstrap_ci(roc_auc, ..., strata=labels)`), n scores of two Gaussians.

Prints a markdown table of times and ratios and writes bench/out/llm_http.json.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HERE = Path(__file__).resolve().parent


def _server_class():
    spec = importlib.util.spec_from_file_location("rote_bench_server", HERE.parent / "tests/llm/openai_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.OpenAIServer


def bench_http(n_prompts: int, latency: float, workers: int) -> dict:
    import torch

    from rote.llm import open_backend
    from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model

    torch.set_num_threads(1)
    model = TinyGPTBackend(build_model(TinyGPTConfig(block_size=64, n_layer=1, n_head=2, n_embd=32), seed=0))
    prompts = [f"Verse {i}: and the evening and the morning were" for i in range(n_prompts)]
    with _server_class()(model) as server:
        server.latency(latency)

        def client(c):
            return open_backend("openai:tiny", base_url=server.base_url, api_key_env=None, cache=False, concurrency=c)

        serial, t_serial, _ = timed(lambda: [o.text for o in client(1).complete(prompts, 4)])
        par, t_par, _ = timed(lambda: [o.text for o in client(workers).complete(prompts, 4)])
    assert serial == par, "concurrent answers differ from serial ones"
    return {
        "case": f"HTTP concurrency ({n_prompts} prompts, {latency * 1e3:.0f} ms latency)",
        "baseline": "concurrency=1",
        "ours": f"concurrency={workers}",
        "baseline_s": t_serial,
        "ours_s": t_par,
        "same_output": True,
    }


def bench_auc(n: int) -> dict:
    from rote.core.privacy import roc_auc
    from rote.core.stats import auc_ci, bootstrap_ci

    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(1, 1, n // 2), rng.normal(0, 1, n // 2)]
    y = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    boot, t_boot, _ = timed(lambda: bootstrap_ci(roc_auc, s, y, n_boot=1000, seed=0, strata=y))
    dl, t_dl, _ = timed(lambda: auc_ci(s[y], s[~y]), repeat=3)
    return {
        "case": f"AUC interval (n = {n:,})",
        "baseline": "bootstrap, 1,000 replicates",
        "ours": "DeLong",
        "baseline_s": t_boot,
        "ours_s": t_dl,
        "baseline_interval": [boot.low, boot.high],
        "ours_interval": [dl.low, dl.high],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rows = [
        bench_http(16 if args.quick else 64, 0.1, 8),
        bench_auc(400 if args.quick else 2000),
    ]
    print("| case | baseline | rote | baseline time | rote time | speed-up |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['baseline']} | {r['ours']} | {fmt_s(r['baseline_s'])} | {fmt_s(r['ours_s'])} | "
            f"{fmt_ratio(r['baseline_s'], r['ours_s'])} |"
        )
    out = HERE / "out" / "llm_http.json"
    out.parent.mkdir(exist_ok=True)
    record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "machine": machine_info(), "rows": rows}
    out.write_text(json.dumps(record, indent=2, default=float))
    print(f"written {out}")


if __name__ == "__main__":
    main()
