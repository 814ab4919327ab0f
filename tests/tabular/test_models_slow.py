"""Paper-scale behaviour of the generators on embedded Adult (`make test-slow`; minutes on 2 cores)."""

from __future__ import annotations

import pytest
import torch

from rote.data import dataset_schema, load_dataset, validate_table
from rote.tabular.models import MemorizationHook, TabDDPM, TabSyn

pytestmark = pytest.mark.slow
SCHEMA = dataset_schema("adult")


def _subset(n: int) -> "object":
    return load_dataset("adult").sample(n, random_state=0).reset_index(drop=True)


def test_tabddpm_memorization_rises_with_epochs():
    """Fang et al. Fig. 2: the memorization ratio grows with training epochs (one run, hook every 100 epochs).

    With the reference's log one-hot input (issue 18) the rise comes later than with the old one-hot input, which
    rose within 150 epochs: measured 3.3, 2.4, 1.1, 2.1, 8.1, 10.4% at epochs 100-600 (flat 6.0, 6.0, 5.7% at
    50-150)."""
    torch.set_num_threads(1)
    train = _subset(3000)
    hook = MemorizationHook(train, SCHEMA, every=100, seed=0)
    TabDDPM(preset="small", epochs=600, seed=0).fit(train, SCHEMA, callbacks=[hook], progress=False)
    curve = [h["memorization_ratio"] for h in hook.history]
    assert [h["epoch"] for h in hook.history] == [100, 200, 300, 400, 500, 600]
    assert curve[-1] > curve[0], curve


def test_tabsyn_reproduces_adult_marginals():
    torch.set_num_threads(1)
    train = _subset(5000)
    model = TabSyn(preset="small", vae_epochs=40, epochs=60, seed=0).fit(train, SCHEMA, progress=False)
    synthetic = validate_table(model.sample(5000, seed=1), SCHEMA)
    clean = validate_table(train, SCHEMA)
    for col in ("sex", "income", "relationship"):
        real = clean[col].value_counts(normalize=True)
        fake = synthetic[col].value_counts(normalize=True).reindex(real.index, fill_value=0.0)
        assert 0.5 * (real - fake).abs().sum() < 0.1, col  # total variation distance
    assert abs(synthetic["age"].median() - clean["age"].median()) <= 4
