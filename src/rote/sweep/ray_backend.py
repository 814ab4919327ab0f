"""Grid points as Ray tasks: the same points and the same records as local processes, on a cluster.

`address="local"` starts a Ray instance on this machine (no dashboard) and stops it afterwards; any other address
("auto", "ray://head:10001", "10.0.0.5:6379") connects to a running cluster. Each point is one task running
`rote.sweep.local.execute_point`; this process writes each point's results into the grid folder as the tasks
finish, so the folder lives on the machine that launched the grid (the `work/` scratch folder a point writes
during its run lives on whichever node ran it). Ray is an optional dependency: `pip install 'rote[ray]'`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rote.core.errors import BackendError, ConfigError


def import_ray() -> Any:
    """The `ray` module, or a BackendError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise BackendError(
            "`ray` needs the Ray package, which is not installed; install it with "
            "pip install 'rote[ray]' (or run without it to use local processes)"
        ) from None
    return ray


def run_ray(
    fn: Callable,
    tasks: list,
    *,
    execute: Callable,
    address: str,
    seed_axis: str | None,
    on_result: Callable[[Any, dict[str, Any]], None],
    advance: Callable[[int], None],
    num_cpus: int = 2,
) -> None:
    """Run `tasks` [(Point, work_dir)] as Ray tasks, each `execute(fn, params, work_dir, seed_axis)` (the caller's
    point runner, passed in so this module needs nothing from `rote.sweep.local`); calls `on_result(point, payload)`
    as each finishes."""
    if not isinstance(address, str) or not address:
        raise ConfigError(
            "`ray`: give 'local' to start Ray on this machine, or a cluster address such as ray://head:10001"
        )
    ray = import_ray()
    if not tasks:
        return
    started = False
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:300]
            raise BackendError(
                f"`ray` {address}: cannot start or reach Ray ({type(exc).__name__}: {reason}); "
                "check the address, or run without it"
            ) from None
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(execute)
        fn_ref = ray.put(fn)
        pending = {remote.remote(fn_ref, p.params, work, seed_axis): p for p, work in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                p = pending.pop(ref)
                try:
                    payload = ray.get(ref)
                except Exception as exc:  # the task's worker died (execute_point itself never raises)
                    payload = {
                        "status": "failed",
                        "error": f"Ray task failed: {type(exc).__name__}: {exc}",
                        "traceback": "",
                        "seconds": float("nan"),
                    }
                on_result(p, payload)
                advance(1)
    finally:
        if started:
            ray.shutdown()
