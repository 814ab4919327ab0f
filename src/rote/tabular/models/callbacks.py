"""Per-epoch callbacks: early stopping on a logged value, and the memorization hook.

A callback is any `callable(epoch, model, logs) -> bool | None`; True asks training to stop. `logs` is the
epoch's entry of `model.history_`, so what a callback writes into it is kept with the model and its checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rote.core.errors import ConfigError
from rote.data import TableSchema
from rote.tabular.audit import DEFAULT_THRESHOLD, audit


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    The decision is computed from `model.history_` alone (the best value so far and when it was reached), so it
    survives an interrupted and resumed fit. With TabSyn, whose history has a VAE phase and a diffusion phase,
    only entries of the current phase count: a stop during the VAE phase ends that phase.
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, monitor: str = "loss") -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"EarlyStopping: patience={patience!r} must be a whole number >= 1 (epochs)")
        if not min_delta >= 0:
            raise ConfigError(f"EarlyStopping: min_delta={min_delta!r} must be >= 0")
        self.patience, self.min_delta, self.monitor = patience, float(min_delta), monitor

    def __call__(self, epoch: int, model: Any, logs: dict) -> bool:
        if self.monitor not in logs:
            raise ConfigError(
                f"EarlyStopping: monitor={self.monitor!r} is not logged; logged values are {', '.join(sorted(logs))}"
            )
        phase = logs.get("phase")
        values = [h[self.monitor] for h in model.history_ if h.get("phase") == phase and self.monitor in h]
        best, since = math.inf, 0
        for v in values:
            if v < best - self.min_delta:
                best, since = v, 0
            else:
                since += 1
        return since >= self.patience


class MemorizationHook:
    """Every `every` epochs (and after the last one): sample, audit against `train`, record the ratio.

    Appends {"epoch", "memorization_ratio", "n_samples"} to `self.history` and writes `memorization_ratio` and
    `memorization_n_samples` into the epoch's logs (so `model.history_` holds the memorization-vs-epoch curve of
    one training run). n_samples: rows generated per check, default len(train) as in the paper. distance:
    the audit distance (see `rote.tabular.audit`). Epochs where the model cannot sample yet (TabSyn's VAE
    phase) are skipped. Sampling uses its own seed, so the hook does not change training.
    """

    def __init__(
        self,
        train: pd.DataFrame,
        schema: TableSchema,
        every: int = 10,
        n_samples: int | None = None,
        distance: str = "tabcutmix",
        seed: int = 0,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"MemorizationHook: every={every!r} must be a whole number >= 1 (epochs)")
        if n_samples is not None and (isinstance(n_samples, bool) or int(n_samples) < 1):
            raise ConfigError(f"MemorizationHook: n_samples={n_samples!r} must be >= 1 or None (= len(train))")
        self.train, self.schema, self.every = train, schema, every
        self.n_samples = len(train) if n_samples is None else int(n_samples)
        self.distance, self.seed, self.threshold = distance, seed, threshold
        self.history: list[dict] = []

    def _due(self, epoch: int, model: Any) -> bool:
        last = getattr(model, "_last_epoch", None)
        local = epoch - getattr(model, "_sampling_epoch_offset", 0)  # TabSyn counts diffusion epochs
        return local >= 1 and (local % self.every == 0 or epoch == last)

    def __call__(self, epoch: int, model: Any, logs: dict) -> None:
        if not model.ready_to_sample() or not self._due(epoch, model):
            return None
        synthetic = model.sample(self.n_samples, seed=self.seed)
        result = audit(self.train, synthetic, schema=self.schema, distance=self.distance, threshold=self.threshold)
        entry = {"epoch": epoch, "memorization_ratio": result.memorization_ratio, "n_samples": self.n_samples}
        self.history.append(entry)
        logs["memorization_ratio"] = result.memorization_ratio
        logs["memorization_n_samples"] = self.n_samples
        return None

    def to_frame(self) -> pd.DataFrame:
        """The curve recorded so far: columns epoch, memorization_ratio, n_samples."""
        return pd.DataFrame(self.history, columns=["epoch", "memorization_ratio", "n_samples"])
