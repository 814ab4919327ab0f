"""Experiment grids: named axes, their cartesian product, and stable point ids.

A `Grid` is a few named axes (each a list of values) plus `fixed` parameters shared by every point. Its points are
the cartesian product of the axes in the order the axes were given (the last axis varies fastest). A point's id is
a hash of all its parameters (axes and fixed), so the same parameters get the same id in every run, whatever the
order of the axes or of the values: that id names the point's folder and lets a re-run skip finished points.

    grid = Grid({"augmentation": ["none", "tabcutmix"], "seed": [0, 1, 2]}, fixed={"dataset": "adult"})
    [p.id for p in grid.points()]     # 6 ids such as "3f9a0c1b2d4e"
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rote.core.errors import ConfigError
from rote.core.runs import read_json

ID_LENGTH = 12  # hex characters of SHA-256: 48 bits, collisions need ~16 million points


def _check_value(value: Any, where: str) -> Any:
    """Grid values must be JSON scalars (or lists of them), so that ids and config files are unambiguous."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {value!r} is not a finite number; use a finite value")
        return value
    if isinstance(value, (list, tuple)):
        return [_check_value(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _check_value(v, where) for k, v in value.items()}
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy scalar
        return _check_value(value.item(), where)
    raise ConfigError(
        f"{where}: {value!r} ({type(value).__name__}) is not a JSON scalar; grid values must be "
        "numbers, strings, booleans, null, or lists or mappings of them"
    )


def point_id(params: Mapping[str, Any]) -> str:
    """Stable id of a parameter set: the first 12 hex characters of SHA-256 of its canonical JSON (sorted keys).

    Independent of key order; `1` and `1.0` differ (they are different values in JSON)."""
    text = json.dumps({str(k): params[k] for k in params}, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True)
class Point:
    """One grid point: `params` (axes and fixed parameters) and its stable `id`."""

    id: str
    params: dict[str, Any] = field(hash=False)
    index: int = 0  # position in the grid's order

    def __getitem__(self, key: str) -> Any:
        return self.params[key]


class Grid:
    """Named axes -> values, and fixed parameters; `points()` is their cartesian product.

    axes: mapping name -> sequence of values (scalars or lists); a scalar is a one-value axis. Axis order is
        kept: the last axis varies fastest in `points()`.
    fixed: parameters shared by every point (part of the point ids, not axes of the table).
    """

    def __init__(self, axes: Mapping[str, Any], fixed: Mapping[str, Any] | None = None) -> None:
        if not isinstance(axes, Mapping):
            raise ConfigError(f"grid axes must be a mapping name -> list of values, got {type(axes).__name__}")
        self.axes: dict[str, list[Any]] = {}
        for name, values in axes.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"grid axis name {name!r}: axis names must be non-empty strings")
            vals = list(values) if isinstance(values, (list, tuple, range)) else [values]
            if not vals:
                raise ConfigError(f"grid axis '{name}' has no values; give at least one")
            vals = [_check_value(v, f"grid axis '{name}'") for v in vals]
            dups = [v for i, v in enumerate(vals) if v in vals[:i]]
            if dups:
                raise ConfigError(f"grid axis '{name}' lists {dups[0]!r} more than once; list each value once")
            self.axes[name] = vals
        self.fixed: dict[str, Any] = {}
        for name, value in (fixed or {}).items():
            if name in self.axes:
                raise ConfigError(f"grid parameter '{name}' is both an axis and fixed; give it in one place")
            self.fixed[str(name)] = _check_value(value, f"grid parameter '{name}'")

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.axes.values())

    def __repr__(self) -> str:
        return f"Grid(axes={self.axes!r}, fixed={self.fixed!r})"

    def points(self) -> list[Point]:
        """Every point in grid order; ids are unique because the parameter sets are."""
        names = list(self.axes)
        out = []
        for i, combo in enumerate(itertools.product(*(self.axes[n] for n in names))):
            params = {**self.fixed, **dict(zip(names, combo))}
            out.append(Point(point_id(params), params, i))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"axes": {k: list(v) for k, v in self.axes.items()}, "fixed": dict(self.fixed)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, name: str = "grid") -> Grid:
        """Inverse of `to_dict`: {"axes": {...}, "fixed": {...}}; `name` (e.g. the file) prefixes errors."""
        if not isinstance(d, Mapping) or "axes" not in d:
            raise ConfigError(
                f"{name}: a grid must be an object with an 'axes' mapping (and optional 'fixed'), "
                'e.g. {"axes": {"seed": [0, 1]}, "fixed": {"epochs": 50}}'
            )
        unknown = [k for k in d if k not in ("axes", "fixed")]
        if unknown:
            raise ConfigError(f"{name}: unknown keys {unknown}; a grid has only 'axes' and 'fixed'")
        try:
            return cls(d["axes"], d.get("fixed") or {})
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Grid:
        """A grid from a JSON or YAML file ({"axes": ..., "fixed": ...})."""
        return cls.from_dict(load_mapping(path), name=str(path))


def load_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON (.json) or YAML (.yaml / .yml) file holding one mapping, with errors naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: file not found; pass the path of a .json or .yaml grid file")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({' '.join(str(exc).split())})") from None
    elif p.suffix.lower() == ".json":
        data = read_json(p)
    else:
        raise ConfigError(f"{p}: unknown grid file type '{p.suffix}'; use .json, .yaml or .yml")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: must hold a mapping at the top level, got {type(data).__name__}")
    return data


def axis_values(values: Sequence[str] | None, cast: type, name: str) -> list[Any]:
    """Parse CLI axis values given as repeated options and/or comma-separated text ("0,1,2") into `cast`."""
    out: list[Any] = []
    for v in values or []:
        for part in str(v).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(cast(part))
            except ValueError:
                raise ConfigError(
                    f"--{name}: {part!r} is not a valid {cast.__name__}; give comma-separated values, e.g. --{name} 1,2"
                ) from None
    return out
