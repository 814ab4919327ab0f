"""Result objects: frozen dataclasses whose scalars go to results.json and whose tables go to Parquet.

A domain result subclasses `Result` and marks its per-sample tables with `table_field("rows")`; everything else
that is not a table and not marked `internal_field()` is a scalar result. Then `to_dict()` gives what
results.json holds, `tables()` the frames, `save(run)` writes both atomically, and `summary()` a short text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from rote.core.runs import RunFolder

_KIND = "rote_kind"


def table_field(name: str) -> Any:
    """A DataFrame field written to `<name>.parquet` by `Result.save` (not part of `to_dict`)."""
    return dataclasses.field(repr=False, compare=False, metadata={_KIND: "table", "file": f"{name}.parquet"})


def internal_field() -> Any:
    """A field kept for reports and follow-up analysis but neither serialized nor compared (e.g. input tables)."""
    return dataclasses.field(repr=False, compare=False, metadata={_KIND: "internal"})


@dataclasses.dataclass(frozen=True)
class Result:
    """Base class of rote's result objects (frozen dataclasses)."""

    def to_dict(self) -> dict[str, Any]:
        """Scalar results (plain JSON-able values; objects with `to_dict` are converted)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.metadata.get(_KIND) in ("table", "internal"):
                continue
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out

    def tables(self) -> dict[str, pd.DataFrame]:
        """Per-sample tables by file name (e.g. {"rows.parquet": frame})."""
        return {
            f.metadata["file"]: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.metadata.get(_KIND) == "table"
        }

    def to_frame(self) -> pd.DataFrame:
        """The first (main) per-sample table, copied."""
        frames = list(self.tables().values())
        if not frames:
            raise TypeError(f"{type(self).__name__} has no per-sample table")
        return frames[0].copy()

    def summary(self) -> str:
        """A few lines for a terminal; subclasses say more."""
        return "\n".join(f"{k}: {v}" for k, v in self.to_dict().items() if not isinstance(v, (dict, list)))

    def save(self, run: RunFolder, extra: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write every table as Parquet, then results.json (scalars plus `extra`; written last because it marks
        a finished run), each atomically; returns the paths keyed by file stem."""
        paths = {file.removesuffix(".parquet"): run.write_parquet(file, frame) for file, frame in self.tables().items()}
        paths["results"] = run.write_json("results.json", {**self.to_dict(), **(extra or {})})
        return paths
