"""report.html of every fairness result: renders, escapes user text, deterministic, shows infeasible reasons."""

from __future__ import annotations

import numpy as np

from rote.fairness import (
    fairness_metrics,
    memorization_effect,
    memorization_gaming_audit,
    min_mass_from_counts,
    minimum_memorized_mass,
)
from rote.fairness.report import fairness_report


def _data():
    rng = np.random.default_rng(0)
    n = 300
    y = rng.choice(["a", "b", "<c>"], n)
    g = rng.choice(["<script>x</script>", "grp & co"], n)
    p = np.where(rng.random(n) < 0.7, y, "a")
    return y, p, g, rng.random(n) < 0.1


def test_reports_render_escape_and_are_deterministic():
    y, p, g, mem = _data()
    results = [
        fairness_metrics(y, p, sensitive_features=g, n_boot=20),
        memorization_effect(y, p, sensitive_features=g, memorized=mem),
        memorization_gaming_audit(y, p, np.where(mem, y, p), sensitive_features=g, memorized=mem),
        [minimum_memorized_mass(y, p, sensitive_features=g, metric=m) for m in ("sp", "eopp", "eodds")],
    ]
    for i, r in enumerate(results):
        html, png = fairness_report(r, title="t <b>", config={"k": "<v>"})
        again, png2 = fairness_report(r, title="t <b>", config={"k": "<v>"})
        assert html == again and png == png2 and png.startswith(b"\x89PNG")
        assert "<script" not in html and "t &lt;b&gt;" in html and "&lt;v&gt;" in html
        if i < 2:  # the metrics and memorization reports list groups and classes
            assert "&lt;script&gt;x&lt;/script&gt;" in html and "&lt;c&gt;" in html


def test_bound_report_shows_reason_and_reachable_bias():
    counts = np.array([[[6, 2, 2], [3, 7, 0], [0, 0, 10]], [[8, 1, 1], [0, 7, 3], [0, 0, 10]]], float)
    capped = min_mass_from_counts(counts, "eodds", model="paper", max_rate=0.9)
    html, _ = fairness_report([capped], title="bound")
    assert "ratio condition fails" in html and "lowest reachable bias" in html
    assert capped.reachable_bias is not None and 0 < capped.reachable_bias < capped.bias_before
