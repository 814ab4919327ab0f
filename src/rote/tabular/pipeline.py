"""The one sequence every tabular training command runs: augment -> hook -> fit -> curve -> sample -> audit.

`rote tabular train`, each point of `rote tabular experiment` and `rote demo` call these functions, so a change to
how a generator is trained or audited happens in one place:

1. `augment_table`: the training rows, plus round(ratio x n) new rows from an augmenter (originals first);
2. `train_generator`: a `MemorizationHook` that audits rows sampled every `every` epochs against the ORIGINAL
   training rows, the generator fitted on the (augmented) table with checkpoints (a rerun resumes), and the
   memorization-versus-epoch curve read back from the model's history (which a resumed fit restores);
3. `sample_and_audit`: as many synthetic rows as asked, audited against the original training rows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from rote.core.errors import ConfigError
from rote.data import TableSchema

GENERATORS = ("tabddpm", "tabsyn", "ijf")
AUGMENTATIONS = ("none", "tabcutmix", "tabcutmixplus", "mixup", "smote", "ijf")


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"`{name}` {value!r} is unknown; choose among {', '.join(allowed)}")


def augment_table(
    table: pd.DataFrame,
    schema: TableSchema,
    augmentation: str,
    *,
    ratio: float = 0.3,
    seed: int = 0,
    mode: str | None = None,
) -> tuple[pd.DataFrame, Any]:
    """(table with round(ratio x n) augmented rows appended after the originals, fitted augmenter or None).
    `augmentation` is one of `AUGMENTATIONS`; `mode` (paper | code) applies to tabcutmix and tabcutmixplus."""
    check_choice("augmentation", augmentation, AUGMENTATIONS)
    if augmentation == "none":
        return table, None
    from rote.tabular.augment import AUGMENTERS

    kwargs: dict[str, Any] = {"ratio": ratio, "seed": seed}
    if mode is not None:
        if augmentation not in ("tabcutmix", "tabcutmixplus"):
            raise ConfigError("`mode` applies to the tabcutmix and tabcutmixplus augmentations only")
        kwargs["mode"] = mode
    aug = AUGMENTERS[augmentation](**kwargs).fit(table, schema)
    return aug.augment(table), aug


NUM_NAN_POLICIES = ("error", "mean")


def impute_numeric(
    table: pd.DataFrame, schema: TableSchema, policy: str = "error"
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """(table, {column: {"n": cells filled, "mean": value}}): missing numeric cells filled with the column mean of
    the present cells (TabDDPM's `num_nan_policy = "mean"`, which the TabCutMix configs use), or, with policy
    "error", the table unchanged (validation later refuses missing cells). The input is not modified."""
    if policy not in NUM_NAN_POLICIES:
        raise ConfigError(f"`num_nan_policy` {policy!r} is unknown; choose among {', '.join(NUM_NAN_POLICIES)}")
    if policy == "error":
        return table, {}
    out = table.copy()
    out.attrs = dict(table.attrs)
    filled: dict[str, dict[str, float]] = {}
    for col in schema.numeric:
        values = pd.to_numeric(out[col], errors="coerce")
        missing = values.isna() & out[col].isna()
        if not missing.any():
            continue
        if missing.all():
            raise ConfigError(f"column `{col}`: every cell is missing, so it has no mean; drop the column")
        mean = float(values[~missing].mean())
        out[col] = values.where(~missing, mean)
        filled[col] = {"n": int(missing.sum()), "mean": mean}
    return out, filled


def make_generator(
    generator: str,
    *,
    preset: str = "small",
    epochs: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    options: Mapping[str, Any] | None = None,
):
    """An unfitted generator: TabDDPM, TabSyn (with `preset`, `epochs` and extra constructor `options`) or the
    independent-column baseline (`ijf`)."""
    check_choice("generator", generator, GENERATORS)
    if generator == "ijf":
        from rote.tabular.baseline import IndependentColumnSampler

        return IndependentColumnSampler(numeric="gaussian", seed=seed)
    if generator == "tabsyn":
        from rote.tabular.models import TabSyn as cls
    else:
        from rote.tabular.models import TabDDPM as cls
    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(options or {}).items()}  # JSON has no tuples
    try:
        return cls(preset=preset, epochs=epochs, seed=seed, device=device, **opts)
    except TypeError as exc:
        raise ConfigError(
            f"generator options {sorted(opts)}: not all are parameters of {cls.__name__} ({exc})"
        ) from None


@dataclass
class TrainedGenerator:
    """A fitted generator with what its training produced.

    fit_table: the rows it was fitted on (originals first); n_original: how many of them are original rows;
    curve: (epoch, memorization_ratio, n_samples) from the memorization checks (empty without checks);
    history: per-epoch numeric training records (loss, memorization checks, ...); train_seconds: wall time of `fit`."""

    generator: Any
    fit_table: pd.DataFrame
    n_original: int
    curve: pd.DataFrame
    history: pd.DataFrame
    train_seconds: float


def _curve(history: list[dict[str, Any]], n_default: int) -> pd.DataFrame:
    marks = [h for h in history if h.get("memorization_ratio") is not None]
    return pd.DataFrame(
        {
            "epoch": pd.Series([int(h["epoch"]) for h in marks], dtype="int64"),
            "memorization_ratio": pd.Series([float(h["memorization_ratio"]) for h in marks], dtype="float64"),
            "n_samples": pd.Series([int(h.get("memorization_n_samples", n_default)) for h in marks], dtype="int64"),
        }
    )


def train_generator(
    train: pd.DataFrame,
    schema: TableSchema,
    generator: Any,
    *,
    fit_table: pd.DataFrame | None = None,
    every: int = 0,
    hook_samples: int | None = None,
    distance: str = "tabcutmix",
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    progress: bool | Callable[[int], None] = False,
    validation: pd.DataFrame | None = None,
) -> TrainedGenerator:
    """Fit `generator` (from `make_generator`) on `fit_table` (default: `train`), checking memorization of
    `hook_samples` sampled rows against the original `train` rows every `every` epochs (0: no checks).
    Checkpoints go to `checkpoint_dir` every `checkpoint_every` epochs (default: `every`); a rerun resumes.
    validation: a real held-out table for TabSyn's VAE schedules (ignored by the other generators)."""
    if every < 0:
        raise ConfigError(f"`every` must be 0 (no checks) or more, got {every}")
    fit_table = train if fit_table is None else fit_table
    start = time.perf_counter()
    from rote.tabular.baseline import IndependentColumnSampler

    if isinstance(generator, IndependentColumnSampler):  # no epochs: nothing to check or checkpoint
        generator.fit(fit_table, schema)
        history: list[dict[str, Any]] = []
    else:
        from rote.tabular.models import MemorizationHook

        hooks = (
            [MemorizationHook(train, schema, every=every, n_samples=hook_samples, distance=distance, seed=seed)]
            if every
            else []
        )
        from rote.tabular.models import TabSyn

        extra = {"validation": validation} if isinstance(generator, TabSyn) and validation is not None else {}
        generator.fit(
            fit_table,
            schema,
            **extra,
            callbacks=hooks,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every if checkpoint_every is not None else (every or None),
            progress=progress,
        )
        history = list(getattr(generator, "history_", []) or [])
    seconds = time.perf_counter() - start
    frame = pd.DataFrame(history)
    keep = [c for c in frame.columns if frame[c].map(lambda v: v is None or isinstance(v, (int, float))).all()]
    return TrainedGenerator(
        generator=generator,
        fit_table=fit_table,
        n_original=len(train),
        curve=_curve(history, len(train)),
        history=frame[keep],
        train_seconds=seconds,
    )


def sample_and_audit(
    trained: TrainedGenerator | Any,
    train: pd.DataFrame,
    schema: TableSchema,
    n: int,
    *,
    seed: int = 0,
    distance: str = "tabcutmix",
    holdout: pd.DataFrame | None = None,
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
):
    """(synthetic rows, `AuditResult`): `n` rows sampled with `seed`, audited against the original `train`."""
    from rote.tabular.audit import audit

    gen = trained.generator if isinstance(trained, TrainedGenerator) else trained
    synthetic = gen.sample(n, seed=seed)
    kwargs: dict[str, Any] = {"progress": progress} if progress is not None else {}
    return synthetic, audit(
        train, synthetic, holdout=holdout, schema=schema, distance=distance, device=device, **kwargs
    )
