"""Training and sampling throughput of rote's TabDDPM against a plain, straightforward loop of the same model.

Run:  python bench/tabular_train.py            (full Adult, 32,561 rows; a few minutes on 2 cores)
      python bench/tabular_train.py --quick    (4,000 rows, 1 timed epoch, 2,000 sampled rows)

Cases (all on the same machine, in this one process, same model sizes: the "small" preset, T = 100):

- `rote TabDDPM`: `TabDDPM(preset="small").fit(...)`: one warm-up epoch, then `--epochs` timed epochs
  (`history_[i]["seconds"]`); rows per second = rows / seconds per epoch.
- `plain loop`: the same denoiser (`MLPDenoiser`), optimizer, schedule and loss, written the way research code
  usually is: a `torch.utils.data.DataLoader(TensorDataset(...), shuffle=True)` with default collation, and
  the multinomial part computed column by column in a Python loop (one-hot, log-space forward process,
  posterior, KL and decoder NLL per column, then summed), as the TabDDPM reference code does.
- Sampling: `model.sample(n)` against a reverse chain that loops over columns at every step (log-space
  posterior per column, Gumbel-max per column), from the same trained weights.
- TabSyn (small preset) seconds per VAE epoch and per diffusion epoch, and sampling rows/s (no baseline).

Check: on one batch with the same timesteps, noise and noisy categories, the plain per-column loss equals rote's
vectorized loss (printed as the absolute difference).
Prints a markdown table and writes bench/out/tabular_train.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch
import torch.nn.functional as F

from rote.data import dataset_schema, load_dataset
from rote.tabular.models import TabDDPM, TabSyn
from rote.tabular.models.base import linear_decay_lr
from rote.tabular.models.preprocess import TableCodec
from rote.tabular.models.tabddpm import MixedDiffusion, MLPDenoiser
from benchlib import fmt_s, machine_info  # noqa: E402  (bench/ is on sys.path)

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------- the plain loop


def _col_q_pred(d: MixedDiffusion, log_x: torch.Tensor, t: torch.Tensor, k: int) -> torch.Tensor:
    return torch.logaddexp(log_x + d.log_abar[t][:, None], d.log_1m_abar[t][:, None] - math.log(k))


def _col_step(d: MixedDiffusion, log_x: torch.Tensor, t: torch.Tensor, k: int) -> torch.Tensor:
    return torch.logaddexp(log_x + d.log_alpha[t][:, None], d.log_1m_alpha[t][:, None] - math.log(k))


def _col_posterior(d: MixedDiffusion, log_x0: torch.Tensor, log_xt: torch.Tensor, t: torch.Tensor, k: int):
    prev = _col_q_pred(d, log_x0, (t - 1).clamp(min=0), k)
    prev = torch.where((t == 0)[:, None], log_x0, prev)
    un = prev + _col_step(d, log_xt, t, k)
    return un - torch.logsumexp(un, dim=1, keepdim=True)


def _col_log_onehot(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.log(F.one_hot(x, k).float().clamp(min=1e-30))


def plain_loss(d: MixedDiffusion, net, x_num, x_cat, t, noise, x_cat_t):
    """TabDDPM's loss computed column by column (the per-column structure of the reference code)."""
    x_num_t = d.sqrt_abar[t][:, None] * x_num + d.sqrt_1m_abar[t][:, None] * noise
    onehots = [F.one_hot(x_cat_t[:, c], k).float() for c, k in enumerate(d.n_classes)]
    out = net(torch.cat([x_num_t, *onehots], dim=1), t)
    loss_num = F.mse_loss(out[:, : d.n_num], noise)
    per_row = torch.zeros(len(t))
    start = d.n_num
    for c, k in enumerate(d.n_classes):
        log_pred = torch.log_softmax(out[:, start : start + k], dim=1)
        start += k
        log_x0, log_xt = _col_log_onehot(x_cat[:, c], k), _col_log_onehot(x_cat_t[:, c], k)
        log_model = _col_posterior(d, log_pred, log_xt, t, k)
        log_true = _col_posterior(d, log_x0, log_xt, t, k)
        kl = (log_true.exp() * (log_true - log_model)).sum(1)
        nll = -(log_x0.exp() * log_model).sum(1)
        qT = _col_q_pred(d, log_x0, torch.full_like(t, d.T - 1), k)
        prior = (qT.exp() * (qT + math.log(k))).sum(1)
        per_row = per_row + torch.where(t == 0, nll, kl) * d.T + prior
    return loss_num + per_row.mean() / len(d.n_classes)


def plain_noisy_categories(d: MixedDiffusion, x_cat, t, gen):
    cols = []
    for c, k in enumerate(d.n_classes):
        logp = _col_q_pred(d, _col_log_onehot(x_cat[:, c], k), t, k)
        u = torch.rand(logp.shape, generator=gen)
        cols.append((logp - torch.log(-torch.log(u.clamp_min(1e-30)))).argmax(1))
    return torch.stack(cols, dim=1)


def plain_train(x_num, x_cat, codec, cfg, epochs: int, seed: int) -> list[float]:
    """Seconds per epoch of the plain loop."""
    torch.manual_seed(seed)
    d = MixedDiffusion(x_num.shape[1], codec.n_classes, int(cfg["num_timesteps"]))
    net = MLPDenoiser(x_num.shape[1] + d.n_onehot, tuple(cfg["d_layers"]), int(cfg["dim_t"]))
    opt = torch.optim.AdamW(net.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x_num, x_cat), batch_size=int(cfg["batch_size"]), shuffle=True
    )
    gen = torch.Generator().manual_seed(seed)
    total_steps = (epochs + 1) * len(loader)
    step, times = 0, []
    for _ in range(epochs + 1):  # the first epoch is warm-up, as for rote
        start = time.perf_counter()
        for xn, xc in loader:
            for g in opt.param_groups:
                g["lr"] = linear_decay_lr(float(cfg["lr"]), step, total_steps)
            t = torch.randint(0, d.T, (len(xn),), generator=gen)
            noise = torch.randn(xn.shape, generator=gen)
            loss = plain_loss(d, net, xn, xc, t, noise, plain_noisy_categories(d, xc, t, gen))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        times.append(time.perf_counter() - start)
    return times[1:]


@torch.no_grad()
def plain_sample(model: TabDDPM, n: int, seed: int):
    d, net = model.diffusion_, model.denoiser_
    gen = torch.Generator().manual_seed(seed)
    x_num = torch.randn((n, d.n_num), generator=gen)
    x_cat = torch.stack([torch.randint(0, k, (n,), generator=gen) for k in d.n_classes], dim=1)
    for i in reversed(range(d.T)):
        t = torch.full((n,), i, dtype=torch.long)
        out = net(torch.cat([x_num, *[F.one_hot(x_cat[:, c], k).float() for c, k in enumerate(d.n_classes)]], 1), t)
        x_num = d.p_sample_num(x_num, out[:, : d.n_num], t, gen)
        start, cols = d.n_num, []
        for c, k in enumerate(d.n_classes):
            log_pred = torch.log_softmax(out[:, start : start + k], dim=1)
            start += k
            logp = _col_posterior(d, log_pred, _col_log_onehot(x_cat[:, c], k), t, k)
            u = torch.rand(logp.shape, generator=gen)
            cols.append((logp - torch.log(-torch.log(u.clamp_min(1e-30)))).argmax(1))
        x_cat = torch.stack(cols, dim=1)
    return model.codec_.decode(x_num, x_cat)


def loss_check(x_num, x_cat, codec, cfg) -> float:
    """|plain per-column loss - rote vectorized loss| on one batch with the same draws (t, noise, noisy codes)."""
    torch.manual_seed(0)
    d = MixedDiffusion(x_num.shape[1], codec.n_classes, int(cfg["num_timesteps"]))
    net = MLPDenoiser(x_num.shape[1] + d.n_onehot, tuple(cfg["d_layers"]), int(cfg["dim_t"]))
    xn, xc = x_num[:512], x_cat[:512]
    g = torch.Generator().manual_seed(5)
    t = torch.randint(0, d.T, (len(xn),), generator=g)
    noise = torch.randn((len(xn), d.n_num), generator=g)
    x_cat_t = d.q_sample_cat(xc, t, g)
    rote_loss = d.loss_given(net, xn, xc, t, noise, x_cat_t)[0].item()
    return abs(plain_loss(d, net, xn, xc, t, noise, x_cat_t).item() - rote_loss)


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="4,000 rows, 1 timed epoch, 2,000 sampled rows")
    p.add_argument("--epochs", type=int, default=None, help="timed epochs per training case (default 3; --quick 1)")
    p.add_argument("--sample-rows", type=int, default=None, help="rows sampled (default 10,000; --quick 2,000)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--skip-tabsyn", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "out" / "tabular_train.json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 4_000 if args.quick else 32_561
    epochs = args.epochs or (1 if args.quick else 3)
    n_sample = args.sample_rows or (2_000 if args.quick else 10_000)
    command = "python bench/tabular_train.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    started = datetime.datetime.now().astimezone()

    adult = load_dataset("adult").iloc[:n].reset_index(drop=True)
    schema = dataset_schema("adult")
    cfg = TabDDPM(preset="small").config()
    codec = TableCodec().fit(adult, schema)
    x_num, x_cat = codec.encode(adult)

    diff = loss_check(x_num, x_cat, codec, cfg)
    model = TabDDPM(preset="small", epochs=epochs + 1, seed=0).fit(adult, schema, progress=False)
    rote_epoch = float(np.median([h["seconds"] for h in model.history_[1:]]))
    plain_epoch = float(np.median(plain_train(x_num, x_cat, codec, cfg, epochs, seed=0)))

    t0 = time.perf_counter()
    model.sample(n_sample, seed=0)
    rote_sample = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain_sample(model, n_sample, seed=0)
    plain_sample_s = time.perf_counter() - t0

    rows = [
        {
            "case": f"TabDDPM small, train one epoch ({n:,} rows, batch {cfg['batch_size']})",
            "baseline_s": plain_epoch,
            "rote_s": rote_epoch,
            "rote_rows_per_s": n / rote_epoch,
            "baseline_rows_per_s": n / plain_epoch,
        },
        {
            "case": f"TabDDPM small, sample {n_sample:,} rows (T = {cfg['num_timesteps']})",
            "baseline_s": plain_sample_s,
            "rote_s": rote_sample,
            "rote_rows_per_s": n_sample / rote_sample,
            "baseline_rows_per_s": n_sample / plain_sample_s,
        },
    ]
    if not args.skip_tabsyn:
        syn = TabSyn(preset="small", vae_epochs=2, epochs=2, seed=0).fit(adult, schema, progress=False)
        vae_s = float(syn.history_[1]["seconds"])
        dif_s = float(syn.history_[3]["seconds"])
        t0 = time.perf_counter()
        syn.sample(n_sample, seed=0)
        syn_sample = time.perf_counter() - t0
        rows += [
            {
                "case": f"TabSyn small, VAE epoch ({n:,} rows)",
                "baseline_s": None,
                "rote_s": vae_s,
                "rote_rows_per_s": n / vae_s,
                "baseline_rows_per_s": None,
            },
            {
                "case": f"TabSyn small, diffusion epoch ({n:,} rows)",
                "baseline_s": None,
                "rote_s": dif_s,
                "rote_rows_per_s": n / dif_s,
                "baseline_rows_per_s": None,
            },
            {
                "case": f"TabSyn small, sample {n_sample:,} rows (50 Heun steps)",
                "baseline_s": None,
                "rote_s": syn_sample,
                "rote_rows_per_s": n_sample / syn_sample,
                "baseline_rows_per_s": None,
            },
        ]

    info = machine_info()
    print(f"\ncommand: {command}")
    print(f"date: {started.isoformat(timespec='seconds')}")
    print(
        f"machine: {info['cores']} cores ({info['cpu']}), torch {info['torch']} with {info['torch_threads']} "
        f"threads, 1-min load average at the end {info['load_average_1min']}"
    )
    print(f"data: Adult train, first {n:,} rows; {epochs} timed epoch(s) after one warm-up epoch (median)\n")
    print("| case | plain loop | rote | ratio (plain / rote) | rote rows/s | plain rows/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = "—" if r["baseline_s"] is None else f"{r['baseline_s'] / r['rote_s']:.1f}x"
        plain_rate = "—" if r["baseline_rows_per_s"] is None else f"{r['baseline_rows_per_s']:,.0f}"
        print(
            f"| {r['case']} | {fmt_s(r['baseline_s'])} | {fmt_s(r['rote_s'])} | {ratio} | "
            f"{r['rote_rows_per_s']:,.0f} | {plain_rate} |"
        )
    print(f"\ncheck: |plain per-column loss - rote loss| on one 512-row batch with shared draws = {diff:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "date": started.isoformat(timespec="seconds"),
                "machine": info,
                "n": n,
                "epochs": epochs,
                "sample_rows": n_sample,
                "table": rows,
                "loss_check_abs_diff": diff,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0 if diff < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
