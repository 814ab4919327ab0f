"""Run folders, seeding, config capture, atomic writes and progress bars.

A run folder holds everything one command produced: `config.json` (enough to rerun it), `results.json`,
per-sample tables (`*.parquet`), plots (`*.png`), `report.html` and, for training, `checkpoints/`.
Every file is written atomically (temporary file in the same folder, then `os.replace`), so an interrupted
run never leaves a half-written result, and a run never writes over one of its own inputs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from rote.core.errors import ConfigError, DataError

# ---------------------------------------------------------------------------------------------- atomic writes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicFile:
    """The open-ended form of `atomic_write_stream`, for a file filled across many calls: `fh` is a temporary file
    beside `path` (opened "w+b", so it can be read back); `commit()` flushes, fsyncs and renames it over `path`;
    `abort()` closes and removes it. Readers see the old file or the whole new one, never a partial one."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results should be as readable as any file
            self.fh: BinaryIO = os.fdopen(fd, "w+b")
        except BaseException:
            os.close(fd)
            os.unlink(self.tmp)
            raise

    def commit(self) -> Path:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def atomic_write_stream(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(fh)` on a temporary file beside `path`, fsync it and rename it over `path`: readers see the old
    file or the whole new one, never a partial one (for writers that stream pieces rather than hold one bytes)."""
    f = AtomicFile(path)
    try:
        write(f.fh)
    except BaseException:
        f.abort()
        raise
    return f.commit()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically: readers see the old file or the whole new one, never a partial one."""
    return atomic_write_stream(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text version of `atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def to_json_text(obj: Any) -> str:
    """JSON with numpy scalars/arrays converted; NaN and infinities written as null (strict JSON)."""
    return json.dumps(_nan_to_none(obj), indent=2, default=_json_default, allow_nan=False) + "\n"


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, float) or isinstance(obj, np.floating):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, dict):
        return {str(k): _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented strict JSON, atomically."""
    return atomic_write_text(path, to_json_text(obj))


def atomic_write_parquet(path: str | os.PathLike, frame: Any) -> Path:
    """Write a pandas DataFrame to Parquet atomically (index dropped)."""
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------- seeding


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed (or the Generator itself); never touches global random state."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ConfigError("a seed is required (pass an integer, e.g. seed=0)")
    return np.random.default_rng(int(seed))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy's legacy global state and torch. Only CLI entry points call this."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


# ---------------------------------------------------------------------------------------------- run folders


def file_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """Path, size and SHA-256 of an input file, recorded in config.json so a rerun can check its inputs."""
    p = Path(path)
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": h.hexdigest()}


def environment_info() -> dict[str, str]:
    """Versions that decide numerical results, recorded with every run."""
    import rote

    info = {"rote": rote.__version__, "python": platform.python_version(), "platform": platform.platform()}
    for mod in ("numpy", "pandas", "torch", "sklearn"):
        m = sys.modules.get(mod)
        if m is None:
            with contextlib.suppress(ImportError):
                m = __import__(mod)
        if m is not None:
            info[mod] = getattr(m, "__version__", "?")
    return info


def machine_info() -> dict[str, Any]:
    """The machine a benchmark or run measured on: CPU model, usable cores, torch threads, load average and the
    library versions of `environment_info` (benchmarks record it beside their timings)."""
    cpu = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    info: dict[str, Any] = {"cpu": cpu, "cores": cores, **environment_info()}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    with contextlib.suppress(OSError, AttributeError):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    return info


_ACTIVE: list["RunFolder"] = []
"""Run folders opened and not yet finished in this process; the CLI's error path marks them failed."""

STATUS_OK, STATUS_BAD_INPUT, STATUS_INTERNAL = 0, 2, 1
"""Exit statuses of every command: success, bad input (a one-line reason), internal error."""


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_writable_folder(folder: Path, shown: Path) -> None:
    """Create and delete a probe file in `folder`: the only reliable check (root ignores permission bits, and a
    read-only mount refuses whoever asks)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".rote-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"`out` {shown}: cannot write in {folder} ({exc.strerror or exc}); choose a writable folder"
        ) from None


class RunFolder:
    """One folder per run: `config.json`, tables (`*.parquet`), plots (`*.png`), `report.html`, `results.json`.

    Everything about `path` is checked when the object is made, before any work: it must be (or become) a folder
    that this process can write in, must not hold a finished run (`results.json`) unless `force=True`, and names
    that a run writes (`results.json`, `config.json`, `report.html`) must not be folders. Nothing is created until
    the first write. `finish` writes a run's files with results.json last (results.json marks a finished run);
    `abort` removes a folder this run created and left unfinished, or marks a pre-existing one `FAILED`, so a
    failed run never looks finished. A file that is one of the run's `inputs` is never written.
    """

    RESERVED = ("config.json", "results.json", "report.html")

    def __init__(self, path: str | os.PathLike, *, force: bool = False, inputs: Sequence[str | os.PathLike] = ()):
        self.path = Path(path)
        self.force = force
        self._inputs = {Path(p).resolve() for p in inputs if p is not None}
        self._created = False
        self._started = False
        self.finished = False
        existing = _nearest_existing(self.path)
        if existing == self.path:
            if not self.path.is_dir():
                raise ConfigError(f"`out` {self.path}: exists and is a file, not a folder; choose a folder path")
        elif not existing.is_dir():
            raise ConfigError(
                f"`out` {self.path}: {existing} is a file, so no folder can be made under it; choose another path"
            )
        for name in self.RESERVED:
            if (self.path / name).is_dir():
                raise ConfigError(
                    f"`out` {self.path}: {name} there is a folder, where the run writes a file; choose another folder"
                )
        if (self.path / "results.json").exists() and not force:
            raise ConfigError(
                f"`out` {self.path}: already holds a finished run (results.json); "
                "choose another folder or pass `force` to replace its results"
            )
        if self.path.resolve() in self._inputs:
            raise ConfigError(f"`out` {self.path}: is one of this run's inputs; choose another folder")
        _check_writable_folder(existing, self.path)
        _ACTIVE.append(self)

    # ---------------------------------------------------------------------------------------- lifecycle

    def _start(self) -> None:
        """Create the folder on the first write; a forced rerun drops the old results.json first, so the folder
        never looks finished while it holds a mix of old and new files."""
        if self._started:
            return
        if not self.path.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            self._created = True
        if self.force:
            with contextlib.suppress(FileNotFoundError):
                (self.path / "results.json").unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.path / "FAILED").unlink()
        self._started = True

    def abort(self, reason: str) -> None:
        """The run failed: remove the folder if this run made it and it holds no checkpoints (nothing to resume),
        else leave a `FAILED` file with the reason (results.json is never written by a failed run)."""
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self.finished or not self._started or not self.path.is_dir():
            return
        resumable = any((self.path / "checkpoints").glob("*")) if (self.path / "checkpoints").is_dir() else False
        resumable = resumable or any(self.path.glob("grid/points/*"))
        if self._created and not resumable:
            import shutil

            shutil.rmtree(self.path, ignore_errors=True)
            return
        with contextlib.suppress(OSError):
            atomic_write_text(self.path / "FAILED", reason.rstrip() + "\n")

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and not self.finished:
            self.abort(f"{type(exc).__name__}: {exc}")

    # ---------------------------------------------------------------------------------------- files

    def file(self, name: str) -> Path:
        """Path of an output file inside the run (the folder is made on first use); refuses names that would
        overwrite an input."""
        p = self.path / name
        if p.resolve() in self._inputs:
            raise ConfigError(
                f"{p}: is one of this run's inputs; rote never overwrites inputs, choose another out folder"
            )
        self._start()
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_json(self.file(name), obj)

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.file(name), text)

    def write_bytes(self, name: str, data: bytes) -> Path:
        return atomic_write_bytes(self.file(name), data)

    def write_parquet(self, name: str, frame: Any) -> Path:
        return atomic_write_parquet(self.file(name), frame)

    def config(
        self,
        command: str,
        options: dict[str, Any],
        inputs: dict[str, str | os.PathLike | None] | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """What config.json holds: the command, every option, fingerprints of input files, seed, versions, time."""
        return {
            "command": command,
            "options": options,
            "inputs": {
                k: file_fingerprint(v) for k, v in (inputs or {}).items() if v is not None and Path(v).is_file()
            },
            "seed": seed,
            "environment": environment_info(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def write_config(
        self,
        command: str,
        options: dict[str, Any],
        inputs: dict[str, str | os.PathLike | None] | None = None,
        seed: int | None = None,
    ) -> Path:
        """Write config.json now (long runs do, before training, so an interrupted run records how it started)."""
        return self.write_json("config.json", self.config(command, options, inputs, seed))

    def finish(
        self,
        result: Any,
        *,
        command: str,
        options: dict[str, Any],
        inputs: dict[str, str | os.PathLike | None] | None = None,
        seed: int | None = None,
        tables: Mapping[str, Any] | None = None,
        plots: Mapping[str, bytes] | None = None,
        files: Mapping[str, bytes | str] | None = None,
        report: Callable[[dict[str, Any]], str] | None = None,
        extra: Mapping[str, Any] | None = None,
        summary: str | None = None,
        quiet: bool = False,
        status: int = STATUS_OK,
        reason: str | None = None,
        sweeps: Any = None,
    ) -> int:
        """Write everything a run leaves behind and return its exit status; the one way every command ends.

        In order: config.json (`command`, `options`, fingerprints of `inputs`, `seed`); the result's own tables
        (`Result.tables()`) and `tables` as Parquet; `plots` (name -> PNG bytes, written as `name.png`); other
        `files` (name -> bytes or text); report.html from `report(config)`; and, last, results.json (the result's
        `to_dict()`, or the mapping itself, plus `extra`). Then prints `summary` (default: `result.summary()`)
        and the report's path unless `quiet`. `status` 2 with a one-line `reason` (printed to stderr as
        `error: ...`, also when quiet) says that part of the run failed on bad input; the files are still written.
        `sweeps`: a `rote.sweep` result, or several (None entries skipped), for grid verbs: when `status` is 0 the
        first of them with a failed point sets `status` and `reason` through its `exit_status()` (2: bad input).
        """
        if status == STATUS_OK and sweeps is not None:
            for sweep in sweeps if isinstance(sweeps, (list, tuple)) else (sweeps,):
                if sweep is not None:
                    status, reason = sweep.exit_status()
                    if status != STATUS_OK:
                        break
        config = self.config(command, options, inputs, seed)
        self.write_json("config.json", config)
        own_tables = result.tables() if hasattr(result, "tables") and callable(result.tables) else {}
        for name, frame in {**own_tables, **dict(tables or {})}.items():
            self.write_parquet(name if name.endswith(".parquet") else f"{name}.parquet", frame)
        for name, png in (plots or {}).items():
            self.write_bytes(name if name.endswith(".png") else f"{name}.png", png)
        for name, data in (files or {}).items():
            (self.write_text if isinstance(data, str) else self.write_bytes)(name, data)
        if report is not None:
            self.write_text("report.html", report(config))
        scalars = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        self.write_json("results.json", {**scalars, **dict(extra or {})})
        self.finished = True
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if not quiet:
            text = summary if summary is not None else (result.summary() if hasattr(result, "summary") else "")
            if text:
                print(text)
            if report is not None:
                print(f"report: {self.path / 'report.html'}")
        if status != STATUS_OK and reason:
            print(f"error: {' '.join(reason.split())}", file=sys.stderr)
        return status


def abort_active_runs(reason: str) -> None:
    """Mark every unfinished run of this process failed (the CLI's error path calls this)."""
    for run in list(_ACTIVE):
        run.abort(reason)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by rote, with a clear error when it is missing or corrupt."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not valid JSON ({exc}); was it written by rote?") from None


# ---------------------------------------------------------------------------------------------- progress


ProgressCallback = Callable[[int], None]


@contextlib.contextmanager
def progress_bar(total: int, description: str, *, quiet: bool = False) -> Iterator[ProgressCallback]:
    """A rich progress bar as a context manager; yields `advance(n)`. With `quiet=True` it draws nothing.

    Library code takes an optional `progress: Callable[[int], None]` and calls it; only the CLI and demo open bars.
    """
    if quiet or total <= 0:
        yield lambda n=1: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def track(items: Iterable[Any], total: int, description: str, *, quiet: bool = False) -> Iterator[Any]:
    """Iterate with a progress bar (the one helper for loops in CLI code)."""
    with progress_bar(total, description, quiet=quiet) as advance:
        for item in items:
            yield item
            advance(1)
