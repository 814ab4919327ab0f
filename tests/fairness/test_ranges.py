"""The metrics' ranges with three or more groups: rote's sum over classes of max - min across groups reaches
min(G, C) (SP), C (EOpp) and C min(G, C) (EOdds), not the two-group 2 and 2C; the normalised form divides by that
maximum. Checked by exhaustive search over every prediction vector of small populations."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from rote.fairness import equalized_odds, fairness_metrics, metric_maximum, statistical_parity
from rote.fairness.metrics import confusion_counts, encode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairness_oracle import metric_loop  # noqa: E402


def test_three_groups_each_predicting_one_class():
    y = [0, 1, 2] * 3
    g = ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    p = [0] * 3 + [1] * 3 + [2] * 3
    assert statistical_parity(y, p, sensitive_features=g) == pytest.approx(3.0)
    assert equalized_odds(y, p, sensitive_features=g) == pytest.approx(9.0)
    assert statistical_parity(y, p, sensitive_features=g, normalize=True) == pytest.approx(1.0)
    r = fairness_metrics(y, p, sensitive_features=g, small_group=0)
    assert r.maximum == {"sp": 3.0, "eopp": 3.0, "eodds": 9.0}
    assert r.normalized == pytest.approx({"sp": 1.0, "eopp": 1.0, "eodds": 1.0})


@pytest.mark.parametrize(
    "y, g",
    [
        ([0, 1, 2, 0, 1, 0], ["a", "a", "a", "b", "b", "c"]),  # 3 groups, 3 classes, class 2 in one group
        ([0, 1, 0, 1, 0, 1], ["a", "a", "b", "b", "c", "c"]),  # 3 groups, 2 classes
        ([0, 1, 2, 3, 0], ["a", "a", "b", "c", "d"]),  # 4 groups, 4 classes
        ([0, 1, 2, 0, 1, 2], ["a", "b", "a", "b", "a", "b"]),  # 2 groups, 3 classes
    ],
)
@pytest.mark.parametrize("agg", ["sum", "max", "mean"])
def test_maximum_is_the_exhaustive_maximum_over_all_predictions(y, g, agg):
    C = len(set(y))
    labels = list(range(C))
    counts = confusion_counts(encode(y, y, g))
    best = {m: 0.0 for m in ("sp", "eopp", "eodds")}
    for p in itertools.product(labels, repeat=len(y)):
        for m in best:
            v = metric_loop(y, list(p), g, [1.0] * len(y), labels, m, "between_groups", agg)
            best[m] = max(best[m], v if v is not None else 0.0)
    for m, v in best.items():
        assert metric_maximum(counts, m, agg) == pytest.approx(v, abs=1e-12), m


def test_normalized_values_lie_in_unit_interval_on_random_populations():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n, C, G = 50, int(rng.integers(2, 6)), int(rng.integers(2, 6))
        y = rng.integers(0, C, n)
        p = rng.integers(0, C, n)
        g = rng.integers(0, G, n)
        for method in ("between_groups", "to_overall"):
            r = fairness_metrics(y, p, sensitive_features=g, method=method, undefined="skip", small_group=0)
            for m in r.values:
                assert 0.0 <= r.normalized[m] <= 1.0 + 1e-12
