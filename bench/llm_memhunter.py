"""Speed of MemHunter's candidate scoring batched across candidates and texts against one-at-a-time scoring.

Run:  python bench/llm_memhunter.py            (64 texts x 8 candidates)
      python bench/llm_memhunter.py --quick    (16 texts x 4 candidates)

Case: rote's TinyGPT (default config, 1.9M parameters, seeded random weights; speed does not depend on training) as
the target. Each (text, candidate prompt) pair is scored as in a generator training round: the target's NLL of the
true 32-byte suffix given prompt + 32-byte prefix (one forward pass) and the greedy 32-byte continuation with its
LCSS ratio (`rote.llm.memhunter.score_prompts`). Baseline: one `score_prompts` call per pair (batch_size=1);
rote: one call for all pairs, batch_size=64. Both are measured in the same run on the same pairs; the NLLs and
continuations are checked to agree. Texts are canaries (`make_canaries`), candidate prompts seeded random bytes.
Prints a markdown table and writes bench/out/llm_memhunter.json.
"""

from __future__ import annotations

import argparse
import datetime
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


def main() -> None:
    import torch

    from rote.llm.corpus import make_canaries
    from rote.llm.memhunter import MemHunterConfig, build_prompt, cut_texts, score_prompts
    from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n_texts, k = (16, 4) if args.quick else (64, 8)
    target = TinyGPTBackend(build_model(TinyGPTConfig(), 0))
    cfg = MemHunterConfig(prefix_tokens=32, suffix_tokens=32, prompt_tokens=16)
    s = cut_texts(target, make_canaries(n_texts, seed=0), cfg)
    rng = np.random.default_rng(0)
    prompts, suffixes = [], []
    for i in range(len(s)):
        for _ in range(k):
            q = rng.integers(32, 127, cfg.prompt_tokens).tolist()
            prompts.append(build_prompt(s.prefixes[i], q, "before", None))
            suffixes.append(s.suffixes[i])

    def one_at_a_time():
        return [score_prompts(target, [p], [x], batch_size=1) for p, x in zip(prompts, suffixes)]

    def batched():
        return score_prompts(target, prompts, suffixes, batch_size=64)

    single, t_single, _ = timed(one_at_a_time)
    many, t_batched, _ = timed(batched, repeat=2)
    nll_diff = float(np.max(np.abs(many.nll - np.array([x.nll[0] for x in single]))))
    same = sum(a == b.generated[0] for a, b in zip(many.generated, single))
    rows = [
        {
            "case": f"tiny GPT, {len(prompts)} pairs ({len(s)} texts x {k} candidates)",
            "one_at_a_time_s": t_single,
            "batched_s": t_batched,
            "ratio": t_single / t_batched,
            "max_nll_diff": nll_diff,
            "same_continuations": f"{same}/{len(prompts)}",
        }
    ]
    cmd = "python bench/llm_memhunter.py" + (" --quick" if args.quick else "")
    print("| case | one at a time | batched (64) | ratio | max NLL diff | same continuations |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {fmt_s(r['one_at_a_time_s'])} | {fmt_s(r['batched_s'])} | "
            f"{fmt_ratio(r['one_at_a_time_s'], r['batched_s'])} | {r['max_nll_diff']:.1e} | {r['same_continuations']} |"
        )
    print(f"\ncommand: {cmd} (torch threads: {args.threads})")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "llm_memhunter.json").write_text(
        json.dumps(
            {
                "command": cmd,
                "rows": rows,
                "machine": machine_info(torch_threads=args.threads),
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
