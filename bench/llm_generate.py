"""Speed of rote's batched KV-cache generation against one-text-at-a-time generation, same model, same texts.

Run:  python bench/llm_generate.py            (tiny GPT, an HF GPT-2 of the same shape, and SmolLM2-135M)
      python bench/llm_generate.py --quick    (smoke run: fewer texts, no SmolLM2)

Cases (greedy decoding, CPU, prompts are the first bytes/tokens of KJV verses, `bible` from Debian's bible-kjv,
or seeded synthetic sentences where it is not installed):

- `tiny GPT (rote)`: rote's TinyGPT (default config, 1.9M parameters, seeded random weights; speed does not depend
  on training) through `TinyGPTBackend.generate`: batch_size=1 (one text at a time, still with the KV cache) vs
  batch_size=32.
- `tiny GPT-2 (HF)`: a Hugging Face `GPT2LMHeadModel` of the same shape (4 layers, d=192, 4 heads, byte
  vocabulary, random weights): `model.generate` called once per text vs rote's `HFBackend.generate` at
  batch_size=1 and 32 on the same saved model.
- `SmolLM2-135M`: the shipped pretrained model (`open_backend("smollm2")`), fewer texts: `model.generate` per
  text vs rote at batch_size=1 and 32.

Every case also checks that the batched outputs equal the one-at-a-time outputs token for token (left padding
may change float rounding, so a rare near-tie could flip; the count is reported). Prints a markdown table of times
and ratios and writes bench/out/llm_generate.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from benchlib import machine_info, timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HERE = Path(__file__).resolve().parent


def load_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    """n verse texts (seeded sample of KJV verses, verse ids stripped), or synthetic sentences without `bible`."""
    rng = np.random.default_rng(seed)
    try:
        out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
        verses = [line.split(" ", 1)[1] for line in out.splitlines() if " " in line and len(line) > 120]
        pick = rng.choice(len(verses), n, replace=False)
        return [verses[i] for i in pick], "KJV verses longer than 120 characters (bible-kjv)"
    except (OSError, subprocess.CalledProcessError):
        words = "the of and to in that he shall unto for his a lord they be is him not them it with all".split()
        return [" ".join(rng.choice(words, 40)) for _ in range(n)], "synthetic sentences (bible-kjv not installed)"


def hf_generate_each(model, prompts: list[list[int]], n_new: int, eos: int | None, pad: int) -> list[list[int]]:
    """The one-text-at-a-time baseline: transformers' `generate` once per prompt (greedy, KV cache on)."""
    import torch

    out = []
    for p in prompts:
        ids = torch.tensor([p])
        g = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n_new,
            min_new_tokens=n_new,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=pad,
        )
        out.append(g[0, len(p) :].tolist())
    return out


def agree(a: list[list[int]], b: list[list[int]]) -> int:
    return sum(x == y for x, y in zip(a, b))


def case_tiny(texts, args) -> list[dict]:
    from rote.llm.tinygpt import TinyGPTBackend, TinyGPTConfig, build_model

    backend = TinyGPTBackend(build_model(TinyGPTConfig(), seed=0), name="tinygpt")
    prompts = [p[: args.prompt_bytes] for p in backend.encode(texts[: args.n_tiny])]
    n_new = args.new_tokens
    backend.generate(prompts[:2], 4)  # warm-up
    one, t_one, _ = timed(lambda: backend.generate(prompts, n_new, batch_size=1), args.repeat)
    bat, t_bat, _ = timed(lambda: backend.generate(prompts, n_new, batch_size=args.batch), args.repeat)
    n = len(prompts)
    return [
        {
            "model": "tiny GPT (rote, 1.9M params)",
            "texts": n,
            "prompt_tokens": args.prompt_bytes,
            "new_tokens": n_new,
            "baseline": "rote batch_size=1",
            "baseline_s": t_one,
            "rote": f"rote batch_size={args.batch}",
            "rote_s": t_bat,
            "identical": agree(one, bat),
            "tokens_per_s": n * n_new / t_bat,
        }
    ]


def case_hf_tiny(texts, args, tmp: Path) -> list[dict]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    from rote.llm.backends.hf import HFBackend

    folder = tmp / "hf-tiny-gpt2"
    vocab = {chr(i) if chr(i).isprintable() and i < 128 else f"<0x{i:02X}>": i for i in range(256)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<0x00>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<0x00>").save_pretrained(folder)
    cfg = GPT2Config(
        vocab_size=256, n_positions=256, n_embd=192, n_layer=4, n_head=4, bos_token_id=None, eos_token_id=None
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        GPT2LMHeadModel(cfg).save_pretrained(folder)
    backend = HFBackend(folder, name="hf-tiny-gpt2")
    backend.eos_token_id = None
    prompts = [[ord(c) % 256 for c in t[: args.prompt_bytes]] for t in texts[: args.n_tiny]]
    n_new = args.new_tokens
    model = backend.model
    hf_generate_each(model, prompts[:2], 4, None, 0)  # warm-up
    base, t_hf, _ = timed(lambda: hf_generate_each(model, prompts, n_new, None, 0), args.repeat)
    one, t_one, _ = timed(lambda: backend.generate(prompts, n_new, batch_size=1), args.repeat)
    bat, t_bat, _ = timed(lambda: backend.generate(prompts, n_new, batch_size=args.batch), args.repeat)
    n = len(prompts)
    common = {
        "model": f"tiny GPT-2 (HF, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params)",
        "texts": n,
        "prompt_tokens": args.prompt_bytes,
        "new_tokens": n_new,
    }
    return [
        {
            **common,
            "baseline": "HF model.generate per text",
            "baseline_s": t_hf,
            "rote": f"rote batch_size={args.batch}",
            "rote_s": t_bat,
            "identical": agree(base, bat),
            "tokens_per_s": n * n_new / t_bat,
        },
        {
            **common,
            "baseline": "rote batch_size=1",
            "baseline_s": t_one,
            "rote": f"rote batch_size={args.batch}",
            "rote_s": t_bat,
            "identical": agree(one, bat),
            "tokens_per_s": n * n_new / t_bat,
        },
        {
            **common,
            "baseline": "HF model.generate per text",
            "baseline_s": t_hf,
            "rote": "rote batch_size=1",
            "rote_s": t_one,
            "identical": agree(base, one),
            "tokens_per_s": n * n_new / t_one,
        },
    ]


def case_smollm2(texts, args) -> list[dict]:
    from rote.llm import open_backend

    backend = open_backend("smollm2")
    backend.eos_token_id = None  # exactly new_tokens per text, as in the baseline (min_new_tokens)
    prompts = [p[: args.smol_prompt_tokens] for p in backend.encode(texts[: args.n_smol])]
    n_new = args.smol_new_tokens
    model = backend.model
    hf_generate_each(model, prompts[:1], 2, None, backend.pad_token_id)  # warm-up
    base, t_hf, _ = timed(lambda: hf_generate_each(model, prompts, n_new, None, backend.pad_token_id), 1)
    one, t_one, _ = timed(lambda: backend.generate(prompts, n_new, batch_size=1), 1)
    bat, t_bat, _ = timed(lambda: backend.generate(prompts, n_new, batch_size=args.batch), 1)
    n = len(prompts)
    common = {
        "model": "SmolLM2-135M-Instruct (float32)",
        "texts": n,
        "prompt_tokens": args.smol_prompt_tokens,
        "new_tokens": n_new,
    }
    return [
        {
            **common,
            "baseline": "HF model.generate per text",
            "baseline_s": t_hf,
            "rote": f"rote batch_size={args.batch}",
            "rote_s": t_bat,
            "identical": agree(base, bat),
            "tokens_per_s": n * n_new / t_bat,
        },
        {
            **common,
            "baseline": "rote batch_size=1",
            "baseline_s": t_one,
            "rote": f"rote batch_size={args.batch}",
            "rote_s": t_bat,
            "identical": agree(one, bat),
            "tokens_per_s": n * n_new / t_bat,
        },
    ]


def render(rows: list[dict]) -> str:
    lines = [
        "| model | texts x new tokens | baseline | baseline time | rote | rote time | ratio | identical outputs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['texts']} x {r['new_tokens']} | {r['baseline']} | {r['baseline_s']:.2f} s "
            f"| {r['rote']} | {r['rote_s']:.2f} s | {r['baseline_s'] / r['rote_s']:.1f}x "
            f"| {r['identical']}/{r['texts']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 32 texts, 16 new tokens, no SmolLM2")
    p.add_argument("--n-tiny", type=int, default=256, help="texts for the tiny models (default 256)")
    p.add_argument("--n-smol", type=int, default=32, help="texts for SmolLM2 (default 32)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--prompt-bytes", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--smol-prompt-tokens", type=int, default=32)
    p.add_argument("--smol-new-tokens", type=int, default=32)
    p.add_argument("--no-smollm2", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--repeat", type=int, default=1, help="best of this many timings per tiny case")
    p.add_argument("--out", type=Path, default=HERE / "out" / "llm_generate.json")
    args = p.parse_args(argv)
    if args.quick:
        args.n_tiny, args.new_tokens, args.no_smollm2 = 32, 16, True
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python bench/llm_generate.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    started = datetime.datetime.now().astimezone()
    texts, source = load_texts(max(args.n_tiny, args.n_smol))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="rote-bench-") as d:
        print("  tiny GPT ...", file=sys.stderr, flush=True)
        rows += case_tiny(texts, args)
        print("  tiny GPT-2 (HF) ...", file=sys.stderr, flush=True)
        rows += case_hf_tiny(texts, args, Path(d))
        if not args.no_smollm2:
            print("  SmolLM2 ...", file=sys.stderr, flush=True)
            rows += case_smollm2(texts, args)
    import transformers

    info = machine_info(transformers=transformers.__version__)
    print(f"\ncommand: {command}")
    print(f"date: {started.isoformat(timespec='seconds')}")
    print(
        f"machine: {info['cores']} cores ({info['cpu']}), torch {info['torch']} with {info['torch_threads']} "
        f"threads, transformers {info['transformers']}, load average {info.get('load_average_1min')}"
    )
    print(f"texts: {source}; greedy decoding\n")
    print(render(rows))
    tiny = rows[0]["baseline_s"] / rows[0]["rote_s"]
    hf_tiny = rows[1]["baseline_s"] / rows[1]["rote_s"]
    targets = {
        "tiny_gpt_batch32_vs_batch1_at_least_5x": tiny >= 5,
        "hf_tiny_gpt2_batch32_vs_hf_generate_at_least_5x": hf_tiny >= 5,
    }
    print("targets: " + ", ".join(f"{k}={'met' if v else 'NOT met'}" for k, v in targets.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "date": started.isoformat(timespec="seconds"),
                "machine": info,
                "texts": source,
                "rows": rows,
                "targets": targets,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
