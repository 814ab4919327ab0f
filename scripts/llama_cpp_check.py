"""The documented check of rote's HTTP backend against llama-cpp-python's server (docs/llm.md, "HTTP endpoints: a
check against llama.cpp"): plain continuation through /v1/completions against the local float32 SmolLM2,
per-sample seeds, prompted extraction over chat, and membership scoring through echo + logprobs.

    python -m llama_cpp.server --model "$GGUF" --model_alias smollm2 --logits_all true --n_ctx 2048 --port 8765 &
    python scripts/llama_cpp_check.py --base-url http://127.0.0.1:8765/v1 --out llama_check.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings

import numpy as np

from rote.core.errors import BackendError
from rote.llm import open_backend
from rote.llm.corpus import famous_texts, fresh_texts
from rote.llm.extraction import extract, prompted_extraction
from rote.llm.membership import membership_inference


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:8765/v1")
    ap.add_argument("--texts", type=int, default=12, help="famous texts to extract from")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    local = open_backend("smollm2")
    cache = tempfile.mkdtemp(prefix="rote-llama-check-")
    http = open_backend("openai:smollm2", base_url=args.base_url, api_key_env="none", tokenizer=local, cache_dir=cache)
    texts = famous_texts()["text"].tolist()[: args.texts]
    out: dict = {}
    t = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rh = extract(http, texts, prefix_tokens=(32,), suffix_tokens=32, n_boot=0)
    out["extract_warnings"] = [str(w.message) for w in caught]
    rl = extract(local, texts, prefix_tokens=(32,), suffix_tokens=32, n_boot=0)
    ph, pl = rh.rows["pythia_score"].to_numpy(), rl.rows["pythia_score"].to_numpy()
    out["pythia_mean_http"], out["pythia_mean_local"] = float(ph.mean()), float(pl.mean())
    out["pythia_corr"] = float(np.corrcoef(ph, pl)[0, 1])
    out["exact_http"], out["exact_local"] = int(rh.rows["exact_match"].sum()), int(rl.rows["exact_match"].sum())
    samples = http.complete([texts[0][:80]] * 8, 24, greedy=False, seed=1)
    out["distinct_of_8_samples"] = len({o.text for o in samples})
    pr = prompted_extraction(http, texts[:4], prefix_tokens=(25,), max_new_tokens=48, n_boot=0)
    out["prompted_rows"], out["prompted_refused"] = len(pr.rows), int(pr.rows["refused"].sum())
    try:
        membership_inference(http, texts, fresh_texts(12, seed=0), n_boot=0)
        out["membership"] = "scored"
    except BackendError as exc:
        out["membership"] = str(exc)
    out["seconds"] = round(time.time() - t, 1)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
