"""Where memorization lives in self-supervised vision encoders: SSLMem, LayerMem, UnitMem, ClassMem.

Implements Wang, Dziedzic, Backes, Boenisch, "Localizing Memorization in SSL Vision Encoders" (NeurIPS 2024) and the
SSLMem score of Wang et al., "Memorization in Self-Supervised Learning Improves Downstream Generalization" (ICLR
2024). Modules: `scores` (the scores, pure functions on torch modules), `train` (SimCLR / supervised training, the
shared / candidate / independent split, encoder files), `prune` (pruning by UnitMem, linear probe), `finetune`
(fine-tuning the most-memorizing versus the last layers), `experiment`
(the pipelines of `rote ssl localize` and `rote ssl demo`), `report`, `cli`. See docs/ssl.md.

    from rote.ssl import layermem, unitmem
    lm = layermem(f, g, candidates)          # f trained with the candidates, g without; (N, C, H, W) in [0, 1]
    lm.table()                               # LayerMem and delta-LayerMem per layer
    unitmem(f, candidates).table()           # UnitMem per layer

Names are imported on first use, so `import rote.ssl` (and the CLI's start-up) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    **{
        n: "rote.ssl.scores"
        for n in (
            "OUTPUT",
            "LayerMem",
            "UnitMem",
            "breakdown",
            "classmem",
            "layer_consistency",
            "layermem",
            "selectivity",
            "sslmem",
            "unitmem",
            "unitmem_sslmem_ttest",
        )
    },
    **{
        n: "rote.ssl.train"
        for n in (
            "Splits",
            "build_encoder",
            "load_encoder",
            "make_splits",
            "nt_xent",
            "save_encoder",
            "train_simclr",
            "train_supervised",
        )
    },
    **{n: "rote.ssl.prune" for n in ("linear_probe", "pruned_copy", "pruning_curve")},
    **{
        n: "rote.ssl.finetune"
        for n in ("FinetuneResult", "choose_layers", "compare_finetuning", "finetune", "layer_scores", "read_localize")
    },
    **{n: "rote.ssl.experiment" for n in ("SSLResult", "downstream_data", "localize", "run_demo")},
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rote.ssl' has no attribute {name!r}")


__all__ = sorted(_LAZY)
