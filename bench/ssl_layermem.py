"""Speed of rote's one-pass LayerMem / UnitMem over all layers against one pass per layer, as the reference code runs.

Run:  python bench/ssl_layermem.py            (a few minutes on 2 busy cores)
      python bench/ssl_layermem.py --quick    (smoke run, seconds)

What is timed (CPU, one torch thread, best of `--repeat` (1), the same encoders, points and seed):
- LayerMem of the 8 layers of a ResNet9 (`--width`, default 16; Fashion-MNIST test images, 28 px, 1 channel) for
  `--points` candidates x 5 views, f and g:
  * reference schedule: one pass per layer and per point (batch = one point's original + 5 views), as
    sprintml/LocalizingMemorizationInSSL's `layer_mem.py` (a truncated model per layer, batch size 1);
  * per-layer passes, batched: one pass per layer over batches of 64 points;
  * rote: `rote.ssl.scores.layermem`, all layers read by hooks in ONE pass per batch of 64 points.
  Per-layer batched and rote give identical scores (checked, max |diff| printed); the reference schedule draws
  its views per point, so its scores differ by the augmentation draws only.
- UnitMem of the same 8 layers (10 views per point): one `unitmem` call per layer against one call for all.
- Augmentation: `simclr_augment` on the whole batch of views against a Python loop over images.

Prints a markdown table (case, baseline s, rote s, ratio, command) and writes bench/out/ssl_layermem.json.
Timings on a machine shared with other jobs are inflated and noisy; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from benchlib import fmt_ratio, fmt_s, machine_info, timed  # noqa: E402  (bench/ is on sys.path)

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rote.data.augment import simclr_augment  # noqa: E402
from rote.data.image_loaders import load_fashion_mnist  # noqa: E402
from rote.nets import ResNet9  # noqa: E402
from rote.ssl.scores import layermem, unitmem  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    n = 12 if args.quick else args.points
    width = 8 if args.quick else args.width
    repeat = 1 if args.quick else args.repeat
    cmd = "python bench/ssl_layermem.py" + (" --quick" if args.quick else "")
    x = load_fashion_mnist("test").subset(range(n)).float().images
    f = ResNet9(1, None, width=width, projection_dim=64, seed=0).eval()
    g = ResNet9(1, None, width=width, projection_dim=64, seed=1).eval()
    layers = f.layer_names()
    rows, results = [], {}

    layermem(f, g, x[:2], layers[:1], n_aug=1)  # warm-up
    ref, t_ref, _ = timed(lambda: layermem(f, g, x, layers, n_aug=5, batch_size=1, single_pass=False), repeat)
    per, t_per, _ = timed(lambda: layermem(f, g, x, layers, n_aug=5, batch_size=64, single_pass=False), repeat)
    one, t_one, _ = timed(lambda: layermem(f, g, x, layers, n_aug=5, batch_size=64), repeat)
    diff = float((one.raw - per.raw).abs().max().max())
    results["layermem"] = {
        "reference_s": t_ref,
        "per_layer_batched_s": t_per,
        "rote_s": t_one,
        "ratio_reference": t_ref / t_one,
        "ratio_per_layer": t_per / t_one,
        "max_abs_diff_per_layer": diff,
        "points": n,
        "layers": len(layers),
        "width": width,
    }
    rows.append((f"LayerMem, 8 layers, {n} points x 5 views: reference schedule (per layer, per point)", t_ref, t_one))
    rows.append((f"LayerMem, 8 layers, {n} points x 5 views: per-layer passes, batched", t_per, t_one))

    def per_layer_units():
        return [unitmem(f, x, [name], n_aug=10) for name in layers]

    u_per, t_uper, _ = timed(per_layer_units, repeat)
    u_one, t_uone, _ = timed(lambda: unitmem(f, x, layers, n_aug=10), repeat)
    udiff = max(float(abs(u_one.values[nm] - u.values[nm]).max()) for nm, u in zip(layers, u_per))
    results["unitmem"] = {"per_layer_s": t_uper, "rote_s": t_uone, "ratio": t_uper / t_uone, "max_abs_diff": udiff}
    rows.append((f"UnitMem, 8 layers, {n} points x 10 views: per-layer passes", t_uper, t_uone))

    views = x.repeat(10, 1, 1, 1)

    def loop():
        gen = torch.Generator().manual_seed(0)
        return [simclr_augment(v[None], generator=gen) for v in views]

    _, t_loop, _ = timed(loop, repeat)
    _, t_batch, _ = timed(lambda: simclr_augment(views, generator=torch.Generator().manual_seed(0)), repeat)
    results["augment"] = {"per_image_s": t_loop, "batched_s": t_batch, "ratio": t_loop / t_batch, "images": len(views)}
    rows.append((f"SimCLR augmentation of {len(views)} views: per image vs batched", t_loop, t_batch))

    print("| case | baseline | rote | ratio | command |")
    print("|---|---|---|---|---|")
    for name, base, ours in rows:
        print(f"| {name} | {fmt_s(base)} | {fmt_s(ours)} | {fmt_ratio(base, ours)} | `{cmd}` |")
    print(f"\nper-layer vs one-pass LayerMem: max |diff| = {diff:.3g}; UnitMem: {udiff:.3g}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "ssl_layermem.json").write_text(
        json.dumps({"command": cmd, "results": results, "machine": machine_info()}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
