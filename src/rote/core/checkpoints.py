"""Training checkpoints: atomic, stamped with their kind, and loaded without ever executing pickled code.

A checkpoint is one file holding a dict of tensors, plain Python values (numbers, strings, lists, dicts) and nested
dicts of those (model and optimizer state dicts, the epoch, the loss history, RNG states). It is written with
`torch.save` to a temporary file `.<name>.<pid>.<random>.tmp` in the same folder and renamed into place, so an
interrupted save never leaves a half-written checkpoint, and read with `torch.load(weights_only=True)`, which refuses
arbitrary pickled objects. A process killed during a save (SIGKILL, power loss) leaves its temporary file behind:
the next save into that folder, or `remove_stale_temporaries`, deletes it; it never matches a checkpoint name.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rote.core.errors import ConfigError

_STAMP = "rote_checkpoint"
_NAME = re.compile(r"^(?P<prefix>.*?)(?P<epoch>\d{6,})\.pt$")
_TMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.tmp$")  # what save_checkpoint writes before the rename
_OLD_TMP = re.compile(r"^\..+\.pt\.[^.]+\.tmp$")  # temporaries of rote versions that did not record the pid


def checkpoint_name(epoch: int, prefix: str = "epoch-") -> str:
    """File name of the checkpoint after `epoch`: 'epoch-000012.pt' (sorts by name = sorts by epoch)."""
    return f"{prefix}{int(epoch):06d}.pt"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], kind: str) -> Path:
    """Write `payload` atomically to `path`, stamped with `kind` (e.g. 'tabddpm') and the rote version."""
    import rote

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {_STAMP: {"kind": kind, "rote_version": rote.__version__}, **payload}
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own saves are synchronous: a temporary of ours not being written now is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's process) or cannot tell: leave its file alone
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of interrupted checkpoint saves in `folder`; returns the paths removed.

    A temporary is stale when the process that wrote it is gone (the pid is part of its name), so a save running
    in another live process is never disturbed. Temporaries never match a checkpoint name, so `latest_checkpoint`
    ignores them even before they are removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in folder.iterdir():
        m = _TMP.match(p.name)
        stale = (m is not None and not _pid_alive(int(m.group("pid")))) or (m is None and _OLD_TMP.match(p.name))
        if stale and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def load_checkpoint(path: str | os.PathLike, kind: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` for `kind`; the stamp is removed from the returned dict.

    Raises ConfigError naming the file when it is missing, corrupt, not a rote checkpoint, holds pickled objects
    other than tensors and plain values, or belongs to another kind of model.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found; pass the path of an existing checkpoint file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{path}: not a readable rote checkpoint (corrupt, truncated, or containing pickled "
            f"code, which rote never loads): {first}"
        ) from None
    stamp = data.get(_STAMP) if isinstance(data, dict) else None
    if not isinstance(stamp, dict) or "kind" not in stamp:
        raise ConfigError(f"{path}: not a rote checkpoint (no rote stamp); pass a checkpoint that rote wrote")
    if stamp["kind"] != kind:
        raise ConfigError(
            f"{path}: is a '{stamp['kind']}' checkpoint, expected '{kind}'; pass a checkpoint of the same model type"
        )
    return {k: v for k, v in data.items() if k != _STAMP}


def latest_checkpoint(folder: str | os.PathLike, prefix: str = "epoch-") -> Path | None:
    """The checkpoint in `folder` with the highest epoch number (by the `checkpoint_name` pattern), or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    best: tuple[int, Path] | None = None
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m and m.group("prefix") == prefix and p.is_file():
            e = int(m.group("epoch"))
            if best is None or e > best[0]:
                best = (e, p)
    return None if best is None else best[1]


def prune_checkpoints(folder: str | os.PathLike, keep: int = 2, prefix: str = "epoch-") -> None:
    """Delete all but the `keep` newest checkpoints in `folder` (never the newest)."""
    folder = Path(folder)
    found = sorted(
        (int(m.group("epoch")), p)
        for p in folder.iterdir()
        if (m := _NAME.match(p.name)) and m.group("prefix") == prefix
    )
    for _, p in found[: max(0, len(found) - max(1, keep))]:
        p.unlink(missing_ok=True)


def capture_rng_state(cuda_devices: Sequence[int] | None = None) -> dict[str, Any]:
    """Python, numpy (global), torch CPU and CUDA RNG states as checkpoint-safe values (tensors, ints, lists).

    cuda_devices: indices of the GPUs whose generators to capture; None = every GPU, but only once CUDA has been
    initialized in this process (capturing would otherwise initialize it).
    """
    np_state = np.random.get_state()
    state = {
        "python": _to_plain(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if cuda_devices is None:
        cuda_devices = range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []
    if cuda_devices:
        state["cuda"] = {str(int(i)): torch.cuda.get_rng_state(int(i)) for i in cuda_devices}
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state` (CUDA states are restored for the GPUs they were captured on)."""
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    for i, s in state.get("cuda", {}).items():
        torch.cuda.set_rng_state(s, int(i))


def _to_plain(obj: Any) -> Any:
    return [_to_plain(o) for o in obj] if isinstance(obj, (tuple, list)) else obj


def _to_tuple(obj: Any) -> Any:
    return tuple(_to_tuple(o) for o in obj) if isinstance(obj, list) else obj


__all__ = [
    "checkpoint_name",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "prune_checkpoints",
    "remove_stale_temporaries",
    "capture_rng_state",
    "restore_rng_state",
]
