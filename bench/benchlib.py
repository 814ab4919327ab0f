"""Helpers every benchmark shares: wall-clock timing, number formatting and the machine record.

The benchmarks run as scripts (`python bench/NAME.py`), so this folder is on sys.path and `import benchlib` works.
"""

from __future__ import annotations

import time
from typing import Any, Callable


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float, list[float]]:
    """fn()'s last value, its best wall time in seconds over `repeat` calls (time.perf_counter), and all times."""
    times, value = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return value, min(times), times


def fmt_s(x: float | None) -> str:
    """Seconds for a table cell: '12.3 s', '0.42 s', '16.3 ms'; '—' when not measured."""
    if x is None:
        return "—"
    if x >= 10:
        return f"{x:.1f} s"
    return f"{x:.2f} s" if x >= 0.1 else f"{x * 1e3:.1f} ms"


def fmt_ratio(base: float | None, ours: float | None) -> str:
    """base / ours as '238x' or '1.2x'; '—' when either is missing."""
    if base is None or ours is None:
        return "—"
    r = base / ours
    return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"


def machine_info(**extra: Any) -> dict[str, Any]:
    """rote.core.runs.machine_info() plus benchmark-specific entries (e.g. a peer library's version)."""
    from rote.core.runs import machine_info as _machine

    return {**_machine(), **extra}
