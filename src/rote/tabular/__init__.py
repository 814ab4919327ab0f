"""Tabular memorization: the distance-ratio audit of synthetic tables, encoders and baseline generators."""

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

__all__ = [
    "DEFAULT_THRESHOLD", "AuditResult", "audit", "distance_ratio", "mem_auc_exact", "mem_auc_grid",
    "memorization_ratio", "memorization_ratio_at", "IndependentColumnSampler", "plant_copies", "encode_tables",
]
