"""Group metrics: average, worst-group and per-group accuracy; held-in versus held-out accuracy per group.

Signatures follow fairlearn's: arrays in, plain numbers or dicts out. A group with no examples has no accuracy;
it is left out of `per_group_acc` and of the worst group, and `group_accuracy` says so in `empty_groups`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rote.core.errors import DataError

__all__ = ["group_accuracy", "heldin_heldout"]


def _np(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def group_accuracy(
    y_true: Any, y_pred: Any, *, groups: Any, group_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """avg_acc (over samples), worst_group_acc (min over groups with examples), per_group_acc {name: acc},
    group_sizes {name: n} and empty_groups (names of groups without examples).

    y_true, y_pred, groups: (N,) ints; group_names: name of every group index (default: the index as text).
    """
    yt, yp, g = _np(y_true).astype(np.int64), _np(y_pred).astype(np.int64), _np(groups).astype(np.int64)
    if not (yt.shape == yp.shape == g.shape) or yt.ndim != 1:
        raise DataError(f"`y_true`, `y_pred` and `groups` must be (N,) arrays, got {yt.shape}, {yp.shape}, {g.shape}")
    if len(yt) == 0:
        raise DataError("`y_true` is empty; accuracy is undefined")
    n_groups = len(group_names) if group_names is not None else int(g.max()) + 1
    names = list(group_names) if group_names is not None else [str(i) for i in range(n_groups)]
    right = (yt == yp).astype(np.float64)
    counts = np.bincount(g, minlength=n_groups)
    hits = np.bincount(g, weights=right, minlength=n_groups)
    per = {names[i]: float(hits[i] / counts[i]) for i in range(n_groups) if counts[i] > 0}
    return {
        "avg_acc": float(right.mean()),
        "worst_group_acc": float(min(per.values())),
        "per_group_acc": per,
        "group_sizes": {names[i]: int(counts[i]) for i in range(n_groups)},
        "empty_groups": [names[i] for i in range(n_groups) if counts[i] == 0],
    }


def heldin_heldout(heldin: dict[str, Any], heldout: dict[str, Any], minority: Sequence[str] = ()) -> dict[str, Any]:
    """Per group: held-in accuracy (on the samples the model trained on), held-out accuracy (fresh samples of the
    same group) and their gap, from two `group_accuracy` results. A large gap in a minority group means the
    model fits those training samples without a rule that carries over: it memorized them.

    Returns {"per_group": {name: {"heldin", "heldout", "gap"}}, "minority_gap": mean gap over `minority` groups
    present in both, "majority_gap": mean gap over the others}.
    """
    names = [n for n in heldin["per_group_acc"] if n in heldout["per_group_acc"]]
    per = {
        n: {
            "heldin": heldin["per_group_acc"][n],
            "heldout": heldout["per_group_acc"][n],
            "gap": heldin["per_group_acc"][n] - heldout["per_group_acc"][n],
        }
        for n in names
    }
    mino = [per[n]["gap"] for n in names if n in set(minority)]
    majo = [per[n]["gap"] for n in names if n not in set(minority)]
    return {
        "per_group": per,
        "minority_gap": float(np.mean(mino)) if mino else float("nan"),
        "majority_gap": float(np.mean(majo)) if majo else float("nan"),
    }
