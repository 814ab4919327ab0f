"""Multi-class additive fairness metrics, memorization effects, minimum memorized mass and a gaming audit.

Implements Pepin, Igel & Selvan, "When Can Memorization Improve Fairness?" (arXiv 2412.09254); definitions and
derivations in docs/fairness.md.
"""

from rote.fairness.audit import GamingAudit, memorization_gaming_audit
from rote.fairness.bounds import (
    MemorizationBounds,
    MinimumMass,
    closed_form_bounds,
    eodds_exact,
    eodds_ratio_condition,
    eopp_exact,
    lowest_reachable_bias,
    memorization_bounds,
    memorized_set,
    min_mass_from_counts,
    minimum_memorized_mass,
    select_rows,
    sp_lower_bound,
    sp_upper_bound_paper,
    sp_upper_bound_rows,
)
from rote.fairness.memorization import MemorizationEffect, decomposition, memorization_effect
from rote.fairness.metrics import (
    FairnessMetrics,
    FairnessWarning,
    class_gaps,
    confusion_counts,
    encode,
    equal_opportunity,
    equalized_odds,
    fairness_metrics,
    metric_maximum,
    parity_ratio,
    statistical_parity,
)

__all__ = [
    "FairnessMetrics",
    "FairnessWarning",
    "MemorizationBounds",
    "GamingAudit",
    "MemorizationEffect",
    "MinimumMass",
    "class_gaps",
    "closed_form_bounds",
    "confusion_counts",
    "decomposition",
    "encode",
    "eodds_exact",
    "eodds_ratio_condition",
    "eopp_exact",
    "equal_opportunity",
    "equalized_odds",
    "fairness_metrics",
    "lowest_reachable_bias",
    "memorization_bounds",
    "memorization_effect",
    "memorization_gaming_audit",
    "memorized_set",
    "metric_maximum",
    "min_mass_from_counts",
    "minimum_memorized_mass",
    "parity_ratio",
    "select_rows",
    "sp_lower_bound",
    "sp_upper_bound_paper",
    "sp_upper_bound_rows",
    "statistical_parity",
]
