"""Speed of rote's vectorized LiRA and of shadow models trained in parallel processes, each against its baseline in
the same run.

Run:  python bench/adversarial_lira.py            (a few minutes on 2 busy cores)
      python bench/adversarial_lira.py --quick    (smoke run, under a minute)

What is timed (CPU, best of `--repeat` runs):
- LiRA: `rote.core.privacy.lira_scores` (online and offline, per-example Gaussian fits as masked sums over all
  examples, shadow models and augmentations at once) against a Python loop over examples calling
  `rote.core.privacy.lira_score_one` (the paper's formula for one example, the test oracle), on synthetic
  statistics of n examples x m shadow models x A augmentations. Both are checked to agree to 1e-9.
- shadow models: `rote.adversarial.shadow.train_models` training m small CNNs (PGD-AT, Fashion-MNIST or digits)
  in `--workers` worker processes with one torch thread each, against the same grid with workers=0 (one after
  another in this process, one torch thread). On 2 cores the best possible ratio is 2x.

Prints a markdown table (case, baseline s, rote s, ratio, command) and writes bench/out/adversarial_lira.json.
Timings on a machine shared with other jobs are inflated and noisy; the ratios are what to compare.

      python bench/adversarial_lira.py --demem-seeds 0 1 2 3 --out runs/demem-seeds

is not a speed test: the paired multi-seed comparison PGD-AT vs PGD-AT + DeMem. For each seed, the demo's
settings (`rote.adversarial.experiment.DEMO`) with only those two runs (`run_experiment(runs=["pgd_at",
"pgd_at_demem"], seed=s)`, out DIR/seed-<s>; a seed changes the data subset, the membership design and every
model's seed, and both runs share them); then per metric the mean over seeds of the paired difference DeMem -
PGD-AT with its Student-t 95% interval (`rote.core.stats.paired_difference_interval`). Finished models are reused,
so DIR/seed-0 may be a `rote adversarial demo` folder. Writes bench/out/adversarial_demem_seeds.json.

      python bench/adversarial_lira.py --demem-seeds 0 1 2 3 4 5 6 7 --regime leaky

is the same comparison in the regime where PGD-AT leaks (`rote.adversarial.experiment.LEAKY`: 500 pool images,
width-16 CNN, 40 epochs, 16 models per run; DeMem's settings checked on tuning seed 100, never on 0-7): about
8 CPU-minutes per seed; out runs/demem-seeds-leaky, writes bench/out/adversarial_demem_leaky.json (after every
seed, so an interrupted run keeps its finished seeds; rerunning reuses every finished model). Both modes also
give, per seed, the TPR differences with a 95% bootstrap over pool images (`within_seed_bootstrap`).
"""

from __future__ import annotations

import argparse
import json
import shutil
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

from rote.core.privacy import lira_score_one, lira_scores  # noqa: E402

HERE = Path(__file__).resolve().parent


def lira_loop(target, stats, mask, online):
    """The baseline: one example at a time, the paper's per-example fit."""
    out = np.full(len(target), np.nan)
    for i in range(len(target)):
        inn, outs = stats[mask[:, i], i], stats[~mask[:, i], i]
        if len(outs) < 2 or (online and len(inn) < 2):
            continue
        out[i] = lira_score_one(target[i], inn, outs, online=online)
    return out


def bench_lira(n: int, m: int, a: int, repeat: int) -> list[dict]:
    rng = np.random.default_rng(0)
    mask = rng.random((m, n)) < 0.5
    base = rng.normal(size=(n, 1))
    stats = base + mask[:, :, None] + rng.normal(scale=0.7, size=(m, n, a))
    target = base + rng.normal(scale=0.7, size=(n, a))
    rows = []
    lira_score_one(target[0], stats[:2, 0], stats[2:4, 0])  # warm-up: scipy's import is not the loop's cost
    for online in (True, False):
        ref, t_loop, _ = timed(lambda: lira_loop(target, stats, mask, online), repeat=1)
        got, t_vec, _ = timed(lambda: lira_scores(target, stats, mask, online=online).scores, repeat=repeat)
        ok = np.allclose(np.nan_to_num(ref), np.nan_to_num(got), rtol=1e-9, atol=1e-9)
        if not ok:
            raise SystemExit("vectorized LiRA disagrees with the per-example loop")
        rows.append(
            {
                "case": f"LiRA {'online' if online else 'offline'}, n={n}, m={m}, A={a}",
                "baseline_s": t_loop,
                "rote_s": t_vec,
                "agree": ok,
            }
        )
    return rows


def bench_shadows(n_models: int, workers: int, data: str, n_pool: int, epochs: int) -> dict:
    from rote.adversarial.experiment import DEMO, load_images, method_configs
    from rote.adversarial.shadow import membership_design, train_models

    o = dict(DEMO, data=data, n_pool=n_pool, n_test=100, epochs=epochs)
    cfg = {"pgd_at": method_configs(o, ["pgd_at"])["pgd_at"].to_dict()}
    px, py, tx, ty, classes = load_images(data, n_pool, 100, seed=0)
    times = {}
    for w in (0, workers):
        tmp = Path(tempfile.mkdtemp(prefix="rote-bench-"))
        try:
            path = tmp / "data.npz"
            np.savez(
                path,
                pool_x=px.numpy(),
                pool_y=py.numpy(),
                test_x=tx.numpy(),
                test_y=ty.numpy(),
                mask=membership_design(n_pool, n_models, 0),
                n_classes=len(classes),
            )
            torch.set_num_threads(1)
            _, t, _ = timed(
                lambda: train_models(
                    cfg,
                    path,
                    n_models,
                    tmp / "grid",
                    eval_attack={"eps": 0.1, "step_size": 0.025, "steps": 5},
                    augmentations=("identity", "hflip"),
                    workers=w,
                    quiet=True,
                )
            )
            times[w] = t
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "case": f"{n_models} PGD-AT shadow models ({data}, {n_pool // 2} images, {epochs} epochs), "
        f"{workers} processes vs sequential",
        "baseline_s": times[0],
        "rote_s": times[workers],
    }


def demem_seeds(seeds: list[int], out: Path, workers: int, regime: str = "demo", on_seed=None) -> dict:
    """Run the paired comparison seed after seed; `on_seed(summary)` after each (a partial run keeps its seeds)."""
    from rote.adversarial.experiment import DEMO, LEAKY, run_experiment

    options = LEAKY if regime == "leaky" else DEMO
    per_seed: dict[int, dict] = {}
    boot: dict[int, dict] = {}
    res: dict = {}
    for s in seeds:
        r = run_experiment(
            options, out / f"seed-{s}", runs=["pgd_at", "pgd_at_demem"], seed=s, workers=workers, n_boot=0
        )
        per_seed[s] = r.runs
        print(f"seed {s}: " + ", ".join(f"{k} {v['tpr_at_0.1pct_fpr']:.4f}" for k, v in r.runs.items()), flush=True)
        boot[s] = within_seed_bootstrap(out / f"seed-{s}", options, s)
        print(f"seed {s}, DeMem - PGD-AT, 95% bootstrap over images: {boot[s]}", flush=True)
        res = {
            "regime": regime,
            "options": dict(options),
            "seeds": list(per_seed),
            "per_seed": {str(k): v for k, v in per_seed.items()},
            "rows": demem_rows(per_seed) if len(per_seed) >= 2 else [],
            "within_seed_bootstrap": {str(k): v for k, v in boot.items()},
        }
        if on_seed is not None:
            on_seed(res)
    n = len(per_seed)
    print(f"| metric | PGD-AT | + DeMem | DeMem - PGD-AT [95% t, {n} paired seeds] | relative | seeds DeMem lower |")
    print("|---|---|---|---|---|---|")
    for r in res["rows"]:
        print(
            f"| {r['metric']} | {r['pgd_at_mean']:.4f} | {r['pgd_at_demem_mean']:.4f} | "
            f"{r['difference']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}] | {r['relative']:+.1%} | "
            f"{r['seeds_demem_lower']} of {n} |"
        )
    return res


def within_seed_bootstrap(seed_dir: Path, options: dict, seed: int, n_boot: int = 1000) -> dict[str, dict]:
    """The DeMem - PGD-AT difference of one seed's TPRs at 0.1% and 1% FPR with a 95% percentile bootstrap over
    pool images (`rote.core.stats.bootstrap_ci`): a replicate redraws the images, each with all its (model, image)
    pairs under both runs (same images, same membership design), and pools them into one ROC per run. It measures
    the attack's sampling noise over images within one seed, not the variation between seeds (the t-interval)."""
    import dataclasses

    from rote.adversarial.experiment import method_configs
    from rote.adversarial.shadow import train_models
    from rote.adversarial.train import AttackConfig
    from rote.core.privacy import lira_leave_one_out, tpr_at_fpr
    from rote.core.stats import bootstrap_ci

    configs = method_configs(options, ["pgd_at", "pgd_at_demem"])
    sets = train_models(  # every model is finished: this only loads the grid's arrays
        {k: c.to_dict() for k, c in configs.items()},
        seed_dir / "grid" / "data.npz",
        int(options["n_models"]),
        seed_dir / "grid",
        seed=seed,
        eval_attack=dataclasses.asdict(AttackConfig(options["eps"], options["eval_step_size"], options["eval_steps"])),
        augmentations=tuple(options["augmentations"]),
        workers=0,
        quiet=True,
    )
    per_image = {}
    for name, ms in sets.items():
        mask = ~np.isnan(ms.risk)
        scores, labels, bad, _ = lira_leave_one_out(ms.stats, mask, online=True, fix_variance=True, min_models=1)
        if bad:
            raise SystemExit(f"seed {seed}: {bad} pairs excluded; the per-image bootstrap needs every pair")
        m, n = mask.shape
        per_image[name] = (scores.reshape(m, n).T, labels.reshape(m, n).T)  # (n images, m models)
    (sa, la), (sb, lb) = per_image["pgd_at"], per_image["pgd_at_demem"]
    assert np.array_equal(la, lb)
    out = {}
    for fpr in (0.001, 0.01):

        def diff(a, b, lab, fpr=fpr):
            return tpr_at_fpr(b.ravel(), lab.ravel(), fpr) - tpr_at_fpr(a.ravel(), lab.ravel(), fpr)

        iv = bootstrap_ci(diff, sa, sb, la, n_boot=n_boot, seed=seed)
        out[f"tpr_at_{fpr * 100:g}pct_fpr"] = iv.to_dict()
    return out


def demem_rows(per_seed: dict[int, dict]) -> list[dict]:
    """Per contract metric: means, the paired difference DeMem - PGD-AT with its 95% Student-t interval
    (`rote.core.stats.paired_difference_interval`), the difference relative to PGD-AT's mean, and in how many
    seeds DeMem was lower."""
    from rote.adversarial.experiment import CONTRACT
    from rote.core.stats import paired_difference_interval

    seeds = list(per_seed)
    rows = []
    for k in CONTRACT:
        a = [per_seed[s]["pgd_at"][k] for s in seeds]
        b = [per_seed[s]["pgd_at_demem"][k] for s in seeds]
        iv = paired_difference_interval(b, a)
        rows.append(
            {
                "metric": k,
                "pgd_at_mean": float(np.mean(a)),
                "pgd_at_demem_mean": float(np.mean(b)),
                "difference": iv.estimate,
                "low": iv.low,
                "high": iv.high,
                "relative": float(iv.estimate / np.mean(a)) if np.mean(a) else float("nan"),
                "seeds_demem_lower": int(sum(y < x for x, y in zip(a, b))),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--demem-seeds", type=int, nargs="+", help="run the paired DeMem comparison on these seeds")
    ap.add_argument("--out", type=Path, help="folder of the --demem-seeds runs (default runs/demem-seeds[-leaky])")
    ap.add_argument(
        "--regime",
        choices=("demo", "leaky"),
        default="demo",
        help="--demem-seeds settings: the demo's (DEMO) or the leaky regime (LEAKY: 500 images, width 16, 16 models)",
    )
    args = ap.parse_args()
    if args.demem_seeds:
        leaky = args.regime == "leaky"
        out = args.out or Path("runs/demem-seeds-leaky" if leaky else "runs/demem-seeds")
        cmd = f"python bench/adversarial_lira.py --demem-seeds {' '.join(map(str, args.demem_seeds))} --out {out}" + (
            " --regime leaky" if leaky else ""
        )
        name = "adversarial_demem_leaky.json" if leaky else "adversarial_demem_seeds.json"
        (HERE / "out").mkdir(exist_ok=True)

        def write(res: dict) -> None:
            (HERE / "out" / name).write_text(
                json.dumps({"command": cmd, **res, "machine": machine_info()}, indent=2, default=str)
            )

        demem_seeds(args.demem_seeds, out, args.workers, args.regime, on_seed=write)
        return
    cmd = "python bench/adversarial_lira.py" + (" --quick" if args.quick else "")
    if args.quick:
        rows = bench_lira(500, 16, 2, args.repeat)
        rows.append(bench_shadows(4, args.workers, "digits", 200, 2))
    else:
        rows = bench_lira(5000, 32, 2, args.repeat)
        rows.append(bench_shadows(8, args.workers, "fashion-mnist", 1000, 5))
    print("| case | baseline | rote | ratio | command |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {fmt_s(r['baseline_s'])} | {fmt_s(r['rote_s'])} | "
            f"{fmt_ratio(r['baseline_s'], r['rote_s'])} | `{cmd}` |"
        )
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "adversarial_lira.json").write_text(
        json.dumps({"command": cmd, "rows": rows, "machine": machine_info()}, indent=2, default=str)
    )


if __name__ == "__main__":
    main()
