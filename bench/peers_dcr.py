"""rote's Gower DCR against SDMetrics' (`calculate_dcr`, `DCROverfittingProtection`) on the embedded Adult data.

Run in an environment that has SDMetrics besides rote (SDMetrics 0.32 pins pandas < 3, so use a separate venv):

    python -m venv /tmp/peer && /tmp/peer/bin/pip install torch==2.13.0 && /tmp/peer/bin/pip install sdmetrics -e .
    /tmp/peer/bin/python bench/peers_dcr.py                 # 2,000 synthetic rows (about 2 minutes)
    /tmp/peer/bin/python bench/peers_dcr.py --n-synthetic 500

Data: Adult train (32,561 rows) and test (16,281, the holdout); synthetic rows from rote's
IndependentColumnSampler(seed=0) with 5% of them exact copies of training rows (`plant_copies`, seed=1).

What is compared, per synthetic row: the distance to the closest training row and to the closest holdout row.
SDMetrics scales each numeric column by the range of the table it searches (train ranges for the train DCR,
holdout ranges for the holdout DCR); rote's audit scales both by the training ranges, so that the two distances
are measured on one scale. The check reproduces SDMetrics' convention with `GowerDistance(ranges=...)` and must
agree to float rounding; rote's own convention is reported beside it. Times are wall-clock seconds of each
library's DCR computation on the same rows, in this process, and their ratio.

Writes bench/out/peers_dcr.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    import rote  # noqa: F401
except ImportError:  # running from a checkout without rote installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-synthetic", type=int, default=2000)
    p.add_argument("--out", type=Path, default=HERE / "out" / "peers_dcr.json")
    args = p.parse_args(argv)

    try:
        import sdmetrics
        from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr
    except ImportError:
        raise SystemExit("SDMetrics is not installed here; see this script's docstring for a separate venv") from None
    import pandas as pd

    from rote.core.neighbors import GowerDistance, knn
    from rote.data import dataset_schema, load_dataset, validate_table
    from rote.tabular import IndependentColumnSampler, audit, plant_copies
    from rote.tabular.encode import encode_tables

    schema = dataset_schema("adult")
    train, holdout = load_dataset("adult", "train"), load_dataset("adult", "test")
    n = args.n_synthetic
    synthetic = IndependentColumnSampler(seed=0).fit(train, schema).sample(n)
    synthetic, _ = plant_copies(synthetic, train, n // 20, 0, schema=schema, seed=1)
    tables = [validate_table(t, schema) for t in (train, synthetic, holdout)]
    metadata = {
        "columns": {c: {"sdtype": "numerical" if c in schema.numeric else "categorical"} for c in schema.columns}
    }

    t0 = time.perf_counter()
    sd_train = calculate_dcr(dataset=tables[1], reference_dataset=tables[0], metadata=metadata).to_numpy()
    sd_hold = calculate_dcr(dataset=tables[1], reference_dataset=tables[2], metadata=metadata).to_numpy()
    sd_s = time.perf_counter() - t0

    (tr_m, sy_m, ho_m), _ = encode_tables(tables, schema)
    t0 = time.perf_counter()
    rt_train = knn(sy_m, tr_m, k=1, distance=GowerDistance()).distances[:, 0]  # ranges from train
    rt_hold_sd = knn(sy_m, ho_m, k=1, distance=GowerDistance()).distances[:, 0]  # ranges from holdout, as SDMetrics
    rote_s = time.perf_counter() - t0
    res = audit(tables[0], tables[1], holdout=tables[2], schema=schema, distance="gower")

    def share(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(a < b))

    diff_train = float(np.max(np.abs(sd_train - rt_train)))
    diff_hold = float(np.max(np.abs(sd_hold - rt_hold_sd)))
    sd_share, rt_share_sd = share(sd_train, sd_hold), share(rt_train, rt_hold_sd)
    out = {
        "command": "python bench/peers_dcr.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "sdmetrics": sdmetrics.__version__,
        "pandas": pd.__version__,
        "n_synthetic": n,
        "n_train": len(tables[0]),
        "n_holdout": len(tables[2]),
        "max_abs_diff_dcr_train": diff_train,
        "max_abs_diff_dcr_holdout_sdmetrics_convention": diff_hold,
        "share_closer_to_train": {
            "sdmetrics": sd_share,
            "rote_sdmetrics_convention": rt_share_sd,
            "rote_audit_train_ranges": res.dcr["share_closer_to_train"],
        },
        "dcr_overfitting_protection_score": {
            "sdmetrics_formula_on_sdmetrics_dcr": min(2 * (1 - sd_share), 1.0),
            "on_rote_dcr": min(2 * (1 - rt_share_sd), 1.0),
        },
        "seconds": {"sdmetrics_calculate_dcr_x2": sd_s, "rote_knn_x2": rote_s, "ratio": sd_s / rote_s},
    }
    ok = diff_train < 1e-9 and diff_hold < 1e-9 and sd_share == rt_share_sd
    out["passed"] = ok
    print(
        f"SDMetrics {sdmetrics.__version__}, pandas {pd.__version__}: {n:,} synthetic rows vs "
        f"{len(tables[0]):,} train / {len(tables[2]):,} holdout rows"
    )
    print(
        f"per-row DCR, max |SDMetrics - rote|: train {diff_train:.2e}, holdout {diff_hold:.2e} "
        "(holdout scaled by holdout ranges, SDMetrics' convention)"
    )
    print(
        f"share closer to train: SDMetrics {sd_share:.4f}, rote (same convention) {rt_share_sd:.4f}, "
        f"rote audit (train ranges for both) {res.dcr['share_closer_to_train']:.4f}"
    )
    print(f"time for both DCRs: SDMetrics {sd_s:.1f} s, rote {rote_s:.2f} s ({sd_s / rote_s:.0f}x)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    if not ok:
        print("MISMATCH between SDMetrics and rote", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
