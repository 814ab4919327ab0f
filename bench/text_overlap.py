"""Speed of rote's longest-common-substring kernel (`rote.core.text`) against dynamic-programming baselines.

Run:  python bench/text_overlap.py            (about 1-2 minutes on 2 cores)
      python bench/text_overlap.py --quick    (smoke run: 2 kB texts)

Cases (seeded, built here; no download):

- `english_copy`: a 10,000-character English-like text (words drawn from a Zipf distribution over a fixed
  2,000-word vocabulary, with punctuation) against a second such text with a 500-character span of the first
  pasted into its middle: the memorization-study case (a generation that copies part of an article).
- `english_unrelated`: two independent English-like texts of 10,000 characters (only chance matches).
- `token_ids_copy`: 2,500 vs 2,500 token ids (about 10 kB of text at ~4 characters per token; ids drawn from
  a Zipf distribution over a 50,257-id vocabulary) with a planted 120-token copy.
- `repetitive`: "ab" repeated to 10,000 characters against the same repeated to 9,999 characters (every cell
  of the DP table extends a match; the suffix automaton's longest suffix-link chains).

Implementations, all returning the length of the longest common substring (and a position):

- `rote`: `rote.core.text.longest_common_substring` (suffix automaton of a, scanned by b; O(n + m)), best of
  `--repeat` calls; its two phases (`SubstringIndex(a)` build, `longest_match(b)` scan) are timed separately.
- `python_dp`: the textbook O(n m) dynamic programme in pure Python with two rolling rows (L[i][j] = L[i-1][j-1]
  + 1 where a[i] == b[j], else 0; the answer is the largest entry).
- `numpy_dp`: the same recurrence with each row computed by numpy in one vectorized step (a stronger
  baseline: n Python iterations instead of n m).
- `difflib`: the standard library's `SequenceMatcher(None, a, b, autojunk=False).find_longest_match()` (pure
  Python; the junk heuristic is off because it changes the answer on texts over 200 characters).

Every baseline's length is checked against rote's, and every reported span against the inputs.
Prints a markdown table and writes bench/out/text_overlap.json.
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import json
import sys
import tracemalloc
from pathlib import Path

import numpy as np

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rote.core.text import SubstringIndex, longest_common_substring
from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402  (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 50  # issue 5: at least 50x faster than the DP baseline on 10 kB texts

# ---------------------------------------------------------------------------------------------- data


def english_like(n_chars: int, rng: np.random.Generator, vocab: list[str]) -> str:
    """About n_chars characters of words drawn from a Zipf law over `vocab`, with commas and full stops."""
    ranks = np.arange(1, len(vocab) + 1)
    p = 1.0 / ranks
    p /= p.sum()
    out: list[str] = []
    size = 0
    start = True
    while size < n_chars:
        w = vocab[rng.choice(len(vocab), p=p)]
        w = w.capitalize() if start else w
        r = rng.random()
        w += "." if r < 0.06 else "," if r < 0.12 else ""
        start = w.endswith(".")
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n_chars]


def make_vocab(rng: np.random.Generator, size: int = 2000) -> list[str]:
    syllables = [
        "the",
        "an",
        "or",
        "ing",
        "ed",
        "re",
        "con",
        "ver",
        "sa",
        "lo",
        "mi",
        "tu",
        "pe",
        "ka",
        "di",
        "en",
        "al",
        "is",
        "ter",
        "ly",
        "on",
        "ma",
        "ge",
        "ri",
        "st",
        "ho",
        "un",
        "be",
        "we",
        "ch",
    ]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables, size=rng.integers(1, 4))))
    return sorted(words, key=lambda w: (len(w), w))  # short words get the frequent ranks, as in real text


def plant(base, copy_from, length: int, rng: np.random.Generator):
    """`base` with `length` units of `copy_from` (from a random start) pasted into its middle, same total size."""
    start = int(rng.integers(0, len(copy_from) - length))
    mid = (len(base) - length) // 2
    span = copy_from[start : start + length]
    if isinstance(base, str):
        return base[:mid] + span + base[mid + length :]
    return np.concatenate([base[:mid], span, base[mid + length :]])


def make_cases(n: int, seed: int = 0) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    vocab = make_vocab(rng)
    a = english_like(n, rng, vocab)
    b = plant(english_like(n, rng, vocab), a, n // 20, rng)
    c = english_like(n, rng, vocab)
    n_tok = n // 4
    z = np.minimum(rng.zipf(1.2, size=2 * n_tok), 50_257) - 1
    ta = z[:n_tok].astype(np.int64)
    tb = plant(z[n_tok:].astype(np.int64), ta, max(n_tok // 20, 10), rng)
    rep_a = ("ab" * (n // 2 + 1))[:n]
    rep_b = ("ab" * (n // 2 + 1))[1:n]  # starts with "b": offset by one
    return {
        "english_copy": (a, b, f"English-like text, {len(a):,} vs {len(b):,} chars, {n // 20}-char copy"),
        "english_unrelated": (a, c, f"English-like text, {len(a):,} vs {len(c):,} chars, independent"),
        "token_ids_copy": (ta, tb, f"token ids, {len(ta):,} vs {len(tb):,} tokens, {max(n_tok // 20, 10)}-token copy"),
        "repetitive": (rep_a, rep_b, f"'abab...', {len(rep_a):,} vs {len(rep_b):,} chars"),
    }


# ---------------------------------------------------------------------------------------------- baselines


def python_dp(a, b) -> tuple[int, int, int]:
    """Textbook O(n m) longest-common-substring DP, pure Python, two rolling rows. (length, start_a, start_b)."""
    a = a if isinstance(a, str) else a.tolist()
    b = b if isinstance(b, str) else b.tolist()
    m = len(b)
    prev = [0] * (m + 1)
    best, end_a, end_b = 0, 0, 0
    for i, x in enumerate(a):
        cur = [0] * (m + 1)
        for j in range(m):
            if x == b[j]:
                v = prev[j] + 1
                cur[j + 1] = v
                if v > best:
                    best, end_a, end_b = v, i + 1, j + 1
        prev = cur
    return best, end_a - best, end_b - best


def _codes(x) -> np.ndarray:
    return np.frombuffer(x.encode("utf-32-le"), np.uint32).astype(np.int64) if isinstance(x, str) else np.asarray(x)


def numpy_dp(a, b) -> tuple[int, int, int]:
    """The same DP with each row as one vectorized numpy step: row_i[1:] = (row_{i-1}[:-1] + 1) * (b == a[i])."""
    xa, xb = _codes(a), _codes(b)
    m = len(xb)
    prev = np.zeros(m + 1, dtype=np.int32)
    cur = np.zeros(m + 1, dtype=np.int32)
    best, end_a, end_b = 0, 0, 0
    for i in range(len(xa)):
        np.multiply(prev[:-1] + 1, xb == xa[i], out=cur[1:])
        j = int(cur.argmax())
        if cur[j] > best:
            best, end_a, end_b = int(cur[j]), i + 1, j
        prev, cur = cur, prev
    return best, end_a - best, end_b - best


def difflib_lcs(a, b) -> tuple[int, int, int]:
    """difflib.SequenceMatcher(autojunk=False).find_longest_match over the whole of both inputs."""
    a = a if isinstance(a, str) else a.tolist()
    b = b if isinstance(b, str) else b.tolist()
    match = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size, match.a, match.b


def rote_lcs(a, b) -> tuple[int, int, int]:
    hit = longest_common_substring(a, b)
    return hit.length, hit.start_a, hit.start_b


IMPLEMENTATIONS = {"rote": rote_lcs, "python_dp": python_dp, "numpy_dp": numpy_dp, "difflib": difflib_lcs}

# ---------------------------------------------------------------------------------------------- timing


def span_ok(a, b, length: int, sa: int, sb: int) -> bool:
    sa_, sb_ = a[sa : sa + length], b[sb : sb + length]
    return len(sa_) == length and (sa_ == sb_ if isinstance(a, str) else bool(np.array_equal(sa_, sb_)))


def run_case(name: str, a, b, label: str, args: argparse.Namespace) -> dict:
    res: dict = {"case": name, "label": label, "n": len(a), "m": len(b)}
    value, res["rote_s"], res["rote_times"] = timed(lambda: rote_lcs(a, b), args.repeat)
    res["length"], res["start_a"], res["start_b"] = value
    _, res["rote_build_s"], _ = timed(lambda: SubstringIndex(a), args.repeat)
    index = SubstringIndex(a)
    _, res["rote_scan_s"], _ = timed(lambda: index.longest_match(b), args.repeat)
    res["automaton_states"] = index.n_states
    tracemalloc.start()
    SubstringIndex(a)
    res["rote_index_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    checks = {"rote_span_ok": span_ok(a, b, *value)}
    for impl in ("python_dp", "numpy_dp", "difflib"):
        if impl in args.skip:
            continue
        print(f"  {name}: {impl} ...", file=sys.stderr, flush=True)
        v, res[f"{impl}_s"], _ = timed(lambda: IMPLEMENTATIONS[impl](a, b), args.baseline_repeat)
        res[f"{impl}_length"] = v[0]
        checks[f"{impl}_length_equal"] = v[0] == res["length"]
        checks[f"{impl}_span_ok"] = span_ok(a, b, *v)
    res["checks"] = checks
    res["passed"] = all(checks.values())
    return res


# ---------------------------------------------------------------------------------------------- report


def render(results: list[dict]) -> str:
    lines = [
        "| case | LCSubstring | rote (build + scan) | python DP | ratio | numpy row DP | ratio | difflib | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rote_s = r["rote_s"]
        lines.append(
            f"| {r['label']} | {r['length']:,} | {fmt_s(rote_s)} ({fmt_s(r['rote_build_s'])} + "
            f"{fmt_s(r['rote_scan_s'])}) | {fmt_s(r.get('python_dp_s'))} | {fmt_ratio(r.get('python_dp_s'), rote_s)} "
            f"| {fmt_s(r.get('numpy_dp_s'))} | {fmt_ratio(r.get('numpy_dp_s'), rote_s)} | {fmt_s(r.get('difflib_s'))} "
            f"| {fmt_ratio(r.get('difflib_s'), rote_s)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run on 2,000-character texts")
    p.add_argument("--n", type=int, default=None, help="characters per text (default 10,000; --quick 2,000)")
    p.add_argument("--repeat", type=int, default=20, help="rote: best of this many calls (default 20)")
    p.add_argument("--baseline-repeat", type=int, default=1, help="baselines: best of this many calls (default 1)")
    p.add_argument(
        "--skip", nargs="*", default=[], choices=["python_dp", "numpy_dp", "difflib"], help="baselines to leave out"
    )
    p.add_argument("--out", type=Path, default=HERE / "out" / "text_overlap.json")
    args = p.parse_args(argv)
    if args.n is None:
        args.n = 2_000 if args.quick else 10_000

    command = "python bench/text_overlap.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    started = datetime.datetime.now().astimezone()
    info = machine_info()
    results = [run_case(name, a, b, label, args) for name, (a, b, label) in make_cases(args.n).items()]

    print(f"\ncommand: {command}")
    print(f"date: {started.isoformat(timespec='seconds')}")
    print(f"machine: {info['cores']} cores ({info['cpu']}), numpy {info['numpy']}, Python {info['python']}")
    print(
        f"rote: best of {args.repeat} calls; baselines: best of {args.baseline_repeat}; ratio = baseline / rote "
        "end-to-end time (input checks + automaton build + scan)\n"
    )
    print(render(results))
    for r in results:
        print(
            f"{r['case']}: {r['automaton_states']:,} automaton states, index peak {r['rote_index_peak_mib']:.1f} MiB "
            f"(tracemalloc); checks: " + ", ".join(f"{k}={v}" for k, v in r["checks"].items())
        )
    targets = {}
    if not args.quick and args.n >= 10_000 and "python_dp" not in args.skip:
        targets = {
            f"{r['case']}_at_least_{TARGET_RATIO}x_python_dp": r["python_dp_s"] / r["rote_s"] >= TARGET_RATIO
            for r in results
            if r["case"] != "token_ids_copy"
        }
        print("targets: " + ", ".join(f"{k}={'met' if v else 'NOT met'}" for k, v in targets.items()))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "date": started.isoformat(timespec="seconds"),
                "machine": info,
                "n": args.n,
                "repeat": args.repeat,
                "baseline_repeat": args.baseline_repeat,
                "cases": results,
                "targets": targets,
            },
            indent=2,
            default=float,
        )
    )
    print(f"wrote {args.out}")
    failed = [r["case"] for r in results if not r["passed"]]
    if failed:
        print(f"EXACTNESS CHECK FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
