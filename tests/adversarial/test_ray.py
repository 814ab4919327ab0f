"""`--ray ADDRESS` for the shadow models: the same grid of models trained as Ray tasks on a local Ray instance
gives exactly the arrays of the in-process run (training is deterministic on CPU). ray is a test dependency
(pyproject [test]): a missing ray fails here, it is not skipped."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rote.adversarial.experiment import DEMO, load_images, method_configs
from rote.adversarial.shadow import membership_design, train_models
from rote.adversarial.train import AttackConfig


@pytest.mark.slow  # about 60 s of wall time on a loaded 2-core machine, nearly all of it Ray's start-up
def test_shadow_models_on_local_ray_equal_the_local_run(tmp_path):
    import ray

    o = {**DEMO, "epochs": 1, "width": 4, "hidden": 16}
    configs = {k: c.to_dict() for k, c in method_configs(o, ["pgd_at_demem", "pgd_at_dpsgd"]).items()}
    px, py, tx, ty, classes = load_images("digits", 24, 10, seed=0)
    mask = membership_design(24, 4, seed=0)
    data = tmp_path / "data.npz"
    np.savez(data, pool_x=px.numpy(), pool_y=py.numpy(), test_x=tx.numpy(), test_y=ty.numpy(), mask=mask, n_classes=10)
    kw = {
        "seed": 0,
        "eval_attack": dataclasses.asdict(AttackConfig(0.1, 0.05, 2)),
        "augmentations": ("identity", "hflip"),
        "quiet": True,
    }
    local = train_models(configs, data, 4, tmp_path / "local", workers=0, **kw)
    on_ray = train_models(configs, data, 4, tmp_path / "ray", ray="local", **kw)
    assert not ray.is_initialized()  # the instance rote started is stopped again
    for name in configs:
        a, b = local[name], on_ray[name]
        np.testing.assert_array_equal(a.stats, b.stats)
        np.testing.assert_array_equal(a.correct, b.correct)
        np.testing.assert_array_equal(a.risk, b.risk)
        np.testing.assert_array_equal(a.natural, b.natural)
        np.testing.assert_array_equal(a.robust, b.robust)
        assert a.stats.shape == (4, 24, 2) and (~np.isnan(a.risk)).sum(0).tolist() == [2] * 24
