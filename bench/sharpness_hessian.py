"""Vectorized sharpness statistics against a per-sample autograd loop, and Arnoldi against full spectra.

Run:  python bench/sharpness_hessian.py            (batch 256; a few minutes on 2 CPU cores)
      python bench/sharpness_hessian.py --quick    (batch 64, smaller dimensions; smoke run)

Part 1 (same model, same samples, baseline measured in the same run): for a batch of 256 samples of the toy MLP
denoiser (d = 2) and of an MLP score on d = 32, the full Hessian, ||s||^2 and ||H s||^2 of every sample
  - baseline: a Python loop over samples of `torch.autograd.functional.jacobian` (Hessian) and of
    `torch.autograd.functional.jvp` (H s), one call per sample;
  - rote: `rote.sharpness.hessian` (vmap over basis directions of one batched jvp) and `hvp` (one batched jvp).
  Target: >= 10x at batch 256. Both give the same numbers (checked).
Part 2: for growing dimension d, the 10 leading eigenvalues of 8 samples' H by Arnoldi (m = 30 Hessian-vector
  products) against the full spectrum (d jvps for H, then eigvals): the crossover dimension is printed
  (the largest-|lambda| Ritz value is checked against the full spectrum).

Prints a markdown table (case, baseline s, rote s, ratio) and writes bench/out/sharpness_hessian.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402

from rote.sharpness import DDPM, hessian, hessian_loop, hvp, leading_eigenvalues, spectrum  # noqa: E402
from rote.sharpness.measure import crossover_dimension  # noqa: E402


class MLPScore(torch.nn.Module):
    num_timesteps = 1000
    conditional = False

    def __init__(self, d: int, width: int = 128):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d + 1, width),
            torch.nn.SiLU(),
            torch.nn.Linear(width, width),
            torch.nn.SiLU(),
            torch.nn.Linear(width, d),
        )

    def score(self, x, t, c=None):
        return self.net(torch.cat([x, t[:, None].float() / 1000], 1))


def loop_hs(model, x, t):
    out = []
    for b in range(x.shape[0]):
        f = lambda z, b=b: model.score(z[None], t[b : b + 1])[0]  # noqa: E731
        s = f(x[b]).detach()
        out.append(torch.autograd.functional.jvp(f, x[b], s)[1])
    return torch.stack(out)


def part1(batch: int) -> list[dict]:
    rows = []
    toy = DDPM(2, net="mlp", net_args=dict(hidden=128, depth=4), T=500, seed=0)
    for name, model, d in (("toy DDPM (d=2)", toy, 2), ("MLP score (d=32)", MLPScore(32), 32)):
        x = torch.randn(batch, d, generator=torch.Generator().manual_seed(0))
        t = torch.full((batch,), 1, dtype=torch.long)
        h_ref, base_h, _ = timed(lambda: hessian_loop(model, x, t))
        h, ours_h, _ = timed(lambda: hessian(model, x, t), repeat=3)
        torch.testing.assert_close(h, h_ref, rtol=1e-4, atol=1e-4)
        s = model.score(x, t).detach()
        hs_ref, base_v, _ = timed(lambda: loop_hs(model, x, t))
        (_, hs), ours_v, _ = timed(lambda: hvp(model, x, t, s), repeat=3)
        torch.testing.assert_close(hs, hs_ref, rtol=1e-4, atol=1e-4)
        rows.append({"case": f"{name}: Hessians of {batch} samples", "baseline_s": base_h, "rote_s": ours_h})
        rows.append({"case": f"{name}: H s of {batch} samples", "baseline_s": base_v, "rote_s": ours_v})
    return rows


def part2(dims: list[int]) -> tuple[list[dict], int | None]:
    rows, full_t, arn_t = [], {}, {}
    for d in dims:
        model = MLPScore(d, width=max(64, d // 2))
        x = torch.randn(8, d, generator=torch.Generator().manual_seed(1))
        t = torch.full((8,), 1, dtype=torch.long)
        ev_full, tf, _ = timed(lambda: spectrum(hessian(model, x, t, chunk_size=64)))
        ev_arn, ta, _ = timed(lambda: leading_eigenvalues(model, x, t, k=10, m=30))
        top_full = torch.gather(ev_full, 1, torch.argsort(ev_full.abs(), 1, descending=True))[:, :1]
        err = float(((ev_arn[:, :1] - top_full).abs() / top_full.abs().clamp_min(1e-6)).max())
        full_t[d], arn_t[d] = tf, ta
        rows.append(
            {"case": f"d={d}: 10 leading eigenvalues (8 samples)", "baseline_s": tf, "rote_s": ta, "top1_rel_err": err}
        )
    return rows, crossover_dimension(full_t, arn_t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "sharpness_hessian.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = _dt.datetime.now(_dt.timezone.utc)
    batch = 64 if args.quick else 256
    dims = [16, 64, 256] if args.quick else [16, 64, 256, 512, 1024]
    rows = part1(batch)
    rows2, cross = part2(dims)
    command = "python bench/sharpness_hessian.py" + (" --quick" if args.quick else "")
    print(f"\ncommand: {command}\ndate: {started.isoformat(timespec='seconds')}  (1 torch thread; shared machine)")
    print("\n| case | baseline | baseline s | rote s | ratio |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | per-sample autograd loop | {fmt_s(r['baseline_s'])} | {fmt_s(r['rote_s'])} | "
            f"{fmt_ratio(r['baseline_s'], r['rote_s'])} |"
        )
    for r in rows2:
        print(
            f"| {r['case']} (largest-|λ| rel. err {r['top1_rel_err']:.1e}) | full spectrum | "
            f"{fmt_s(r['baseline_s'])} | "
            f"{fmt_s(r['rote_s'])} | {fmt_ratio(r['baseline_s'], r['rote_s'])} |"
        )
    print(f"\ncrossover: Arnoldi (m = 30) is faster than the full spectrum from d = {cross}")
    ratios = [r["baseline_s"] / r["rote_s"] for r in rows]
    print(f"target >= 10x at batch {batch}: {'met' if min(ratios) >= 10 else 'NOT met'} (min {min(ratios):.1f}x)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "date": started.isoformat(),
                "vectorized": rows,
                "arnoldi": rows2,
                "crossover_dim": cross,
                "machine": machine_info(),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
