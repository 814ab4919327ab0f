"""Tabular memorization: the distance-ratio audit of synthetic tables, diffusion generators (TabDDPM, TabSyn),
augmentations against memorization (TabCutMix, TabCutMixPlus and the paper's baselines) and quality metrics."""

from __future__ import annotations

import importlib
from typing import Any

from rote.tabular.audit import (
    DEFAULT_THRESHOLD,
    AuditResult,
    audit,
    distance_ratio,
    mem_auc_exact,
    mem_auc_grid,
    memorization_ratio,
    memorization_ratio_at,
)
from rote.tabular.baseline import IndependentColumnSampler, plant_copies
from rote.tabular.encode import encode_tables

# The generators import torch (seconds); they load on first use so `rote tabular audit` starts fast.
_LAZY = {
    "TabDDPM": "rote.tabular.models",
    "TabSyn": "rote.tabular.models",
    "MemorizationHook": "rote.tabular.models",
    "EarlyStopping": "rote.tabular.models",
    "TabCutMix": "rote.tabular.augment",
    "TabCutMixPlus": "rote.tabular.augment",
    "Mixup": "rote.tabular.augment",
    "SMOTEAugmenter": "rote.tabular.augment",
    "IJFAugmenter": "rote.tabular.augment",
    "ood_rate": "rote.tabular.augment",
    "association_matrix": "rote.tabular.association",
    "cluster_columns": "rote.tabular.association",
    "quality_report": "rote.tabular.quality",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rote.tabular' has no attribute {name!r}")


__all__ = [
    "DEFAULT_THRESHOLD",
    "AuditResult",
    "audit",
    "distance_ratio",
    "mem_auc_exact",
    "mem_auc_grid",
    "memorization_ratio",
    "memorization_ratio_at",
    "IndependentColumnSampler",
    "plant_copies",
    "encode_tables",
    *_LAZY,
]
