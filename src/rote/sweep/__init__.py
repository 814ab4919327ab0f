"""Experiment grids for every rote domain: local processes by default, Ray tasks with `ray="local"` or an address.

from rote.sweep import Grid, run_grid
result = run_grid(train_and_audit, Grid({"seed": [0, 1, 2], "epochs": [10, 50]}), "runs/grid", workers=2)
result.table                     # one row per point: axes, status, scalar results
result.aggregate(["mem_ratio"])  # mean and std over the seed axis
"""

from rote.sweep.grid import Grid, Point, axis_values, load_mapping, point_id
from rote.sweep.local import SweepResult, execute_point, point_dir, run_grid

__all__ = [
    "Grid",
    "Point",
    "SweepResult",
    "axis_values",
    "execute_point",
    "load_mapping",
    "point_dir",
    "point_id",
    "run_grid",
]
