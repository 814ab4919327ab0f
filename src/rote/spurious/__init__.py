"""Memorization-aware training (MAT) against spurious correlations (Bayat et al., ICLR 2025).

    from rote.spurious import image_benchmark, compare_methods
    result = compare_methods(image_benchmark("fashion-mnist", agreement=0.95), methods=["erm", "mat", "groupdro"])
    result.methods["mat"]["worst_group_acc"]

Pieces: `xrm_twins` / `kfold_heldout` (held-out predictions), `mat_shift` (the logit shift), `train_classifier`
(erm, mat, gb_erm, groupdro), `group_accuracy` / `heldin_heldout` (metrics), `linear_toy`, `regression_toy`,
`image_benchmark`, `load_waterbirds`, `load_celeba` (data), `run_linear_toy`, `run_regression_toy` (the paper's
synthetic experiments). Names are imported on first use, so `import rote.spurious` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "GroupedData": "rote.spurious.data",
    "Splits": "rote.spurious.data",
    "linear_toy": "rote.spurious.data",
    "regression_toy": "rote.spurious.data",
    "colored_images": "rote.spurious.data",
    "image_benchmark": "rote.spurious.data",
    "load_waterbirds": "rote.spurious.data",
    "load_celeba": "rote.spurious.data",
    "mat_shift": "rote.spurious.mat",
    "mat_loss": "rote.spurious.mat",
    "class_balanced_loss": "rote.spurious.mat",
    "flip_probability": "rote.spurious.mat",
    "GroupDRO": "rote.spurious.mat",
    "StackedMLP": "rote.spurious.models",
    "HeldOut": "rote.spurious.heldout",
    "xrm_twins": "rote.spurious.heldout",
    "kfold_heldout": "rote.spurious.heldout",
    "select_by_flip_rate": "rote.spurious.heldout",
    "inferred_groups": "rote.spurious.heldout",
    "group_accuracy": "rote.spurious.metrics",
    "heldin_heldout": "rote.spurious.metrics",
    "train_classifier": "rote.spurious.train",
    "Trained": "rote.spurious.train",
    "SpuriousResult": "rote.spurious.pipeline",
    "RegressionResult": "rote.spurious.pipeline",
    "TrainConfig": "rote.spurious.pipeline",
    "compare_methods": "rote.spurious.pipeline",
    "run_linear_toy": "rote.spurious.pipeline",
    "run_regression_toy": "rote.spurious.pipeline",
    "SpuriousRun": "rote.spurious.experiment",
    "run_seeds": "rote.spurious.experiment",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rote.spurious' has no attribute {name!r}")


__all__ = list(_LAZY)
