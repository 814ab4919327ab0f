"""The fairness-by-memorization audit: memorization-driven reductions are flagged, genuine ones are not."""

from __future__ import annotations

import numpy as np
import pytest

from rote.core.errors import ConfigError, DataError
from rote.fairness import memorization_gaming_audit, memorized_set, minimum_memorized_mass, statistical_parity


def _population(seed=0, n=2000):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    g = rng.choice(["a", "b"], n)
    wrong = np.where(g == "a", 0, rng.integers(0, 3, n))  # group a's errors all say class 0
    p = np.where(rng.random(n) < np.where(g == "a", 0.6, 0.85), y, wrong)
    return y, p, g


def test_memorized_fix_is_flagged_and_vanishes_on_holdout():
    y, p, g = _population(0)
    res, S = memorized_set(y, p, sensitive_features=g, metric="eopp", integral=True, tol=0.01)
    after = np.where(S, y, p)  # model B = A plus memorized rows
    hy, hp, hg = _population(1)  # held-out rows: B memorized nothing there, so it predicts like A
    audit = memorization_gaming_audit(
        y,
        p,
        after,
        sensitive_features=g,
        memorized=S,
        holdout=dict(y_true=hy, pred_before=hp, pred_after=hp, sensitive_features=hg),
    )
    v = audit.values["eopp"]
    assert "eopp" in audit.flagged and v["explained"] == pytest.approx(1.0)
    assert v["counterfactual"] == pytest.approx(v["before"])
    assert v["after"] <= 0.03 and v["reduction"] > 0.2
    assert v["holdout_reduction"] == pytest.approx(0.0)
    assert audit.p_memorized == pytest.approx(S.mean())
    exact = minimum_memorized_mass(y, p, sensitive_features=g, metric="eopp")  # zero gap, LP
    assert v["min_mass_p"] == pytest.approx(exact.p_memorized) and exact.p_memorized >= res.p_memorized


def test_genuine_improvement_is_not_flagged():
    y, p, g = _population(2)
    rng = np.random.default_rng(3)
    # B fixes group a's errors on rows it did not memorize; its memorized rows are random correct rows
    fix = (g == "a") & (p != y) & (rng.random(len(y)) < 0.6)
    after = np.where(fix, y, p)
    memorized = (~fix) & (rng.random(len(y)) < 0.1)
    audit = memorization_gaming_audit(y, p, after, sensitive_features=g, memorized=memorized)
    assert audit.flagged == []
    for v in audit.values.values():
        assert v["before"] - v["after"] == pytest.approx(v["reduction"])
        if v["reduction"] > 0:
            assert v["explained"] == pytest.approx(0.0)
    # an independent check of one number: B's SP on the unmemorized rows only
    keep = ~memorized
    assert audit.values["sp"]["after_unmemorized"] == pytest.approx(
        statistical_parity(y[keep], after[keep], sensitive_features=g[keep])
    )


def test_partial_explanation_and_threshold():
    y, p, g = _population(4)
    res, S = memorized_set(y, p, sensitive_features=g, metric="eopp", integral=True, tol=0.01)
    rng = np.random.default_rng(5)
    half = S & (rng.random(len(y)) < 0.5)  # only half of the memorized fixes are declared memorized
    after = np.where(S, y, p)
    audit = memorization_gaming_audit(
        y, p, after, sensitive_features=g, memorized=half, metrics=["eopp"], threshold=0.9
    )
    v = audit.values["eopp"]
    assert 0.2 < v["explained"] < 0.8 and audit.flagged == []
    loose = memorization_gaming_audit(
        y, p, after, sensitive_features=g, memorized=half, metrics=["eopp"], threshold=0.2
    )
    assert loose.flagged == ["eopp"]


def test_audit_bad_input():
    y, p, g = [0, 1, 1, 0], [0, 1, 0, 0], ["a", "a", "b", "b"]
    with pytest.raises(DataError, match=r"pred_after: prediction 5 at row 2"):
        memorization_gaming_audit(y, p, [0, 5, 0, 0], sensitive_features=g, memorized=[0, 0, 0, 0])
    with pytest.raises(ConfigError, match="threshold"):
        memorization_gaming_audit(y, p, p, sensitive_features=g, memorized=[0, 0, 0, 0], threshold=0)
    with pytest.raises(ConfigError, match="holdout: missing"):
        memorization_gaming_audit(y, p, p, sensitive_features=g, memorized=[0, 0, 0, 0], holdout={"y_true": y})


def test_audit_has_one_undefined_semantics_and_lists_what_it_leaves_out():
    from rote.core.errors import DataError
    from rote.fairness import memorization_gaming_audit

    # group "m" has no rows of class "c": raise by default (naming it), skip lists the cell it leaves out
    y = np.array(["a", "b", "c", "a", "b", "c", "a", "b"])
    g = np.array(["f", "f", "f", "f", "m", "m", "m", "m"])
    g[5] = "f"  # now class "c" appears only in group f
    before = np.array(["a", "a", "c", "a", "b", "b", "a", "a"])
    after = y.copy()
    mem = np.array([False, True, False, False, True, False, False, True])
    with pytest.raises(DataError, match="'m'"):
        memorization_gaming_audit(y, before, after, sensitive_features=g, memorized=mem, metrics=["eopp"])
    res = memorization_gaming_audit(
        y, before, after, sensitive_features=g, memorized=mem, metrics=["eopp"], undefined="skip"
    )
    assert res.empty_cells["eopp"] == [
        {"group": "m", "class": "c", "treatment": "class left out of the aggregate (fewer than two groups have it)"}
    ]
    assert "empty cell: group m, class c" in res.summary()
    assert res.to_dict()["empty_cells"]["eopp"][0]["class"] == "c"
    # the skipped aggregate equals the metric's own skip semantics on the same predictions
    from rote.fairness import equal_opportunity

    assert res.values["eopp"]["before"] == pytest.approx(
        equal_opportunity(y, before, sensitive_features=g, undefined="skip")
    )
    with pytest.raises(ConfigError, match="`undefined`"):
        memorization_gaming_audit(y, before, after, sensitive_features=g, memorized=mem, undefined="zero")
