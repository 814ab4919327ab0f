"""Read and edit the activations of named modules of any torch module (rote's nets, the tiny GPT, Hugging Face
models), through forward hooks that are always removed again, also when the forward pass raises.

Names are those of `model.named_modules()` (`module_names(model)` lists them): "blocks.0", "res1.conv2",
"model.layers.3.self_attn". An unknown name is a `ConfigError` that lists the valid ones (close matches first).

A module's *activation* is its output; when the output is a tuple or list (HF attention layers return
`(attn_output, attn_weights)`) or a mapping, it is the first element, and edits replace that element only.

Capture (read):
    capture(model, ["blocks.0", "blocks.1"], x, reduce="mean")  -> {name: tensor}, one forward pass
    with record(model, names) as rec: ...any number of forward passes...; rec.cat()
    capture_to_disk(model, names, batches, out_dir, chunk_rows=4096) -> ActivationStore  (bounded memory)

Reductions, applied on the fly inside the hook, so the full activation is never kept:
    "none"     keep it as is, e.g. (B, C, H, W) or (B, T, C)
    "mean"     mean over space or tokens: (B, C, *spatial) -> (B, C) for 4-D and larger activations (conv maps,
               channel axis 1); (B, T, C) -> (B, C) for 3-D ones (token sequences, channel axis last); 2-D kept
    "last"     the last token of a sequence: (B, T, C) -> (B, C) (the next-token position of a causal LM)
    "flatten"  (B, *) -> (B, prod(*))
    callable   any f(tensor) -> tensor, e.g. `masked_mean(attention_mask)` for padded batches

Intervene (edit, during the forward pass, also inside `generate`):
    with intervene(model, {"model.layers.5": project_out(w), "blocks.1.mlp.1": zero_units([3, 7])}): model(x)
    edits: project_out(w) (h <- h - alpha (h.w) w, w unit norm), scale(factor[, units]), zero_units(units),
    add(v) (steering: h <- h + alpha v), or any callable tensor -> tensor of the same shape.
    The channel axis the edits act on is the same as for "mean": 1 for (B, C, H, W), last for (B, T, C) and (B, C);
    pass `dim=` to override.

Edits run before every other forward hook of their module, so captures of that module (rote's, or a HF model's
`output_hidden_states`) see the edited value. Nested `intervene` blocks on one module apply the inner edit first.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import math
import os
import queue
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Union
from urllib.parse import quote

import numpy as np
import torch
import torch.nn as nn

from rote.core.errors import ConfigError, DataError
from rote.core.runs import AtomicFile, atomic_write_json

__all__ = [
    "Reduce",
    "Edit",
    "module_names",
    "resolve_modules",
    "block_names",
    "channel_dim",
    "reduce_activation",
    "masked_mean",
    "primary",
    "Recording",
    "record",
    "capture",
    "usable_cores",
    "writer_thread_pays",
    "ActivationWriter",
    "ActivationStore",
    "capture_to_disk",
    "read_activations",
    "ProjectOut",
    "Scale",
    "ZeroUnits",
    "Add",
    "project_out",
    "scale",
    "zero_units",
    "add",
    "intervene",
]

Reduce = Union[str, Callable[[torch.Tensor], torch.Tensor]]
Edit = Callable[[torch.Tensor], torch.Tensor]
REDUCTIONS = ("none", "mean", "last", "flatten")
FORMAT = "rote-activations"
INDEX = "index.json"  # written last: a folder without it is an unfinished capture

# ---------------------------------------------------------------------------------------------- names


def module_names(model: nn.Module) -> list[str]:
    """Every named submodule of `model` (not the model itself), in registration order."""
    return [n for n, _ in model.named_modules() if n]


def _summarize(names: Sequence[str], limit: int = 40) -> str:
    """The names, or for long lists one line per pattern with numeric indices collapsed ('layers.{0..29}.mlp')."""
    if len(names) <= limit:
        return ", ".join(names)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)", "#", n), []).append(n)
    shown = []
    for pattern, members in groups.items():
        if len(members) == 1:
            shown.append(members[0])
            continue
        # each numeric position: its value when it never changes, else the range it takes ("layers.{0..29}.mlp")
        values = list(zip(*[re.findall(r"(?:^|\.)(\d+)(?=\.|$)", m) for m in members]))
        text = pattern
        for vals in values:
            ints = sorted({int(v) for v in vals})
            if len(ints) == 1:
                part = str(ints[0])
            elif ints[-1] - ints[0] + 1 == len(ints):  # contiguous
                part = f"{{{ints[0]}..{ints[-1]}}}"
            else:
                part = "{" + ",".join(map(str, ints[:4])) + (",..." if len(ints) > 4 else "") + "}"
            text = text.replace("#", part, 1)
        shown.append(text)
    text = ", ".join(shown[:limit])
    if len(shown) > limit:
        text += f", ... ({len(shown) - limit} more patterns)"
    return text


def resolve_modules(model: nn.Module, names: str | Sequence[str]) -> dict[str, nn.Module]:
    """{name: submodule} for each name, in the given order; ConfigError naming the unknown ones, close matches and
    the valid names when a name does not exist, or a name is repeated."""
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ConfigError("no module names given; pass at least one of rote.core.hooks.module_names(model)")
    if len(set(names)) != len(names):
        raise ConfigError(f"module names {names}: each name may appear only once")
    table = dict(model.named_modules())
    table.pop("", None)
    bad = [n for n in names if n not in table]
    if bad:
        valid = list(table)
        hints = []
        for b in bad:
            close = difflib.get_close_matches(b, valid, n=3, cutoff=0.6)
            hints.append(f"{b!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        raise ConfigError(
            f"unknown module name(s) in {type(model).__name__}: {'; '.join(hints)}. Valid names "
            f"({len(valid)}): {_summarize(valid)}"
        )
    return {n: table[n] for n in names}


def block_names(model: nn.Module) -> list[str]:
    """Names of the entries of the longest `nn.ModuleList` of `model`: the transformer blocks or decoder layers
    ("blocks.0", ... in the tiny GPT; "model.layers.0", ... in a HF Llama). Empty when there is none."""
    best, best_name = None, ""
    for name, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and (best is None or len(m) > len(best)):
            best, best_name = m, name
    if best is None:
        return []
    prefix = f"{best_name}." if best_name else ""
    return [f"{prefix}{i}" for i in range(len(best))]


# ---------------------------------------------------------------------------------------------- reductions


def channel_dim(t: torch.Tensor) -> int:
    """The channel (feature) axis of an activation: 1 for (B, C, *spatial) with 4 or more dims, else the last."""
    return 1 if t.dim() >= 4 else t.dim() - 1


def reduce_activation(t: torch.Tensor, reduce: Reduce) -> torch.Tensor:
    """Apply a reduction (see the module docstring) to one activation t (B, ...)."""
    if callable(reduce):
        return reduce(t)
    if reduce == "none":
        return t
    if reduce == "mean":
        if t.dim() >= 4:
            return t.mean(dim=tuple(range(2, t.dim())))  # (B, C, H, W) -> (B, C)
        return t.mean(dim=1) if t.dim() == 3 else t  # (B, T, C) -> (B, C)
    if reduce == "last":
        if t.dim() != 3:
            raise ConfigError(f"reduce='last' needs (B, T, C) token activations, got shape {tuple(t.shape)}")
        return t[:, -1]
    if reduce == "flatten":
        return t.flatten(1)
    raise ConfigError(f"reduce={reduce!r}; choose one of {REDUCTIONS} or pass a callable")


def _check_reduce(reduce: Reduce) -> None:
    if not callable(reduce) and reduce not in REDUCTIONS:
        raise ConfigError(f"reduce={reduce!r}; choose one of {REDUCTIONS} or pass a callable")


def masked_mean(mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A reduction: mean over the real tokens of a padded batch. mask: (B, T), 1 = real token, 0 = padding;
    the returned function maps (B, T, C) -> (B, C). Only for forward passes over exactly these T tokens."""

    def reduce(t: torch.Tensor) -> torch.Tensor:
        m = mask.to(device=t.device, dtype=t.dtype).unsqueeze(-1)  # (B, T, 1)
        return (t * m).sum(dim=1) / m.sum(dim=1).clamp_min(1)

    return reduce


# ---------------------------------------------------------------------------------------------- outputs


def primary(output: Any) -> torch.Tensor:
    """The activation of a module output: the tensor itself, or the first element of a tuple, list or mapping."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, Mapping) and output:
        first = next(iter(output.values()))
        if isinstance(first, torch.Tensor):
            return first
    raise ConfigError(
        f"module output of type {type(output).__name__} holds no tensor first; hook a submodule that returns a tensor"
    )


def _replace_primary(output: Any, new: torch.Tensor) -> Any:
    if isinstance(output, torch.Tensor):
        return new
    if isinstance(output, tuple):
        # namedtuples rebuild from fields; plain tuples from an iterable
        return type(output)(new, *output[1:]) if hasattr(output, "_fields") else (new, *output[1:])
    if isinstance(output, list):
        return [new, *output[1:]]
    key = next(iter(output.keys()))
    output[key] = new  # HF ModelOutput also updates the attribute
    return output


# ---------------------------------------------------------------------------------------------- capture


class Recording:
    """What `record` collected: `calls[name]` is the list of reduced activations, one per call of that module
    (one per forward pass, or per decoding step during generation), on `device`, detached unless asked not to."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.calls: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}

    def cat(self, dim: int = 0) -> dict[str, torch.Tensor]:
        """{name: the calls concatenated along `dim`} (0: batches of rows; 1: decoding steps of a generation)."""
        out = {}
        for n in self.names:
            if not self.calls[n]:
                raise ConfigError(f"module {n!r} was never called during the recording (is it on the forward path?)")
            out[n] = self.calls[n][0] if len(self.calls[n]) == 1 else torch.cat(self.calls[n], dim=dim)
        return out

    def clear(self) -> None:
        for n in self.names:
            self.calls[n].clear()


@contextlib.contextmanager
def _hooked(
    modules: Mapping[str, nn.Module], make_hook: Callable[[str], Callable], prepend: bool = False
) -> Iterator[None]:
    handles = []
    try:
        for name, mod in modules.items():
            handles.append(mod.register_forward_hook(make_hook(name), prepend=prepend))
        yield
    finally:  # also on exceptions and KeyboardInterrupt: a forgotten hook would silently edit later runs
        for h in handles:
            h.remove()


@contextlib.contextmanager
def record(
    model: nn.Module,
    names: str | Sequence[str],
    *,
    reduce: Reduce = "none",
    device: str | torch.device | None = "cpu",
    dtype: torch.dtype | None = None,
    detach: bool = True,
    sink: Callable[[str, torch.Tensor], None] | None = None,
) -> Iterator[Recording]:
    """Record the activations of `names` over every forward pass run inside the block.

    reduce: applied in the hook (see the module docstring). device: where to keep them ("cpu" by default, so a GPU
    run does not fill GPU memory; None = where they were computed). dtype: cast to it (None = unchanged).
    detach: cut them from the autograd graph (False keeps gradients flowing, e.g. for attribution).
    sink: if given, called as sink(name, tensor) for each call instead of storing it (streaming).
    """
    modules = resolve_modules(model, names)
    _check_reduce(reduce)
    rec = Recording(list(modules))

    def make_hook(name: str) -> Callable:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            t = primary(output)
            if detach:
                t = t.detach()
            t = reduce_activation(t, reduce)
            if device is not None or dtype is not None:
                t = t.to(device=device, dtype=dtype)
            if sink is not None:
                sink(name, t)
            else:
                rec.calls[name].append(t)

        return hook

    with _hooked(modules, make_hook):
        yield rec


def _run(model: nn.Module, inputs: Any) -> Any:
    """One forward pass: inputs is a zero-argument callable (run as is), a mapping (model(**inputs)), a tuple or
    list (model(*inputs)) or anything else (model(inputs))."""
    if callable(inputs) and not isinstance(inputs, (torch.Tensor, nn.Module)):
        return inputs()
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def capture(
    model: nn.Module,
    names: str | Sequence[str],
    inputs: Any,
    *,
    reduce: Reduce = "none",
    device: str | torch.device | None = "cpu",
    dtype: torch.dtype | None = None,
    detach: bool = True,
    return_output: bool = False,
) -> dict[str, torch.Tensor] | tuple[dict[str, torch.Tensor], Any]:
    """Activations of `names` in one forward pass of `model`.

    inputs: a tensor (model(inputs)), a dict (model(**inputs), e.g. a HF tokenizer's output), a tuple (model(*inputs))
        or a zero-argument callable that runs the model however it needs (`lambda: net.features(x)`).
    reduce, device, dtype, detach: as in `record`. Runs under torch.no_grad() when detach is True. The model's
        train/eval mode is left as it is (call model.eval() first for BatchNorm/dropout-free activations).
    Returns {name: (B, ...) tensor}; a module called several times in the pass (a shared ReLU, say) gives its calls
    concatenated along dim 0. With return_output: ({...}, the model's output).
    """
    grad = contextlib.nullcontext() if not detach else torch.no_grad()
    with record(model, names, reduce=reduce, device=device, dtype=dtype, detach=detach) as rec, grad:
        out = _run(model, inputs)
    acts = rec.cat(dim=0)
    return (acts, out) if return_output else acts


# ---------------------------------------------------------------------------------------------- disk


def _to_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(t, np.ndarray):
        return t
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
        t = t.float()
    return t.numpy()


def _numpy_dtype(t: torch.Tensor | np.ndarray) -> np.dtype:
    """The dtype `_to_numpy(t)` will have, without converting t (a GPU tensor is copied later, off the caller)."""
    if isinstance(t, np.ndarray):
        return t.dtype
    return np.dtype(np.float32) if t.dtype == torch.bfloat16 else torch.empty(0, dtype=t.dtype).numpy().dtype


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The .npy (version 1.0) header that np.save writes for a C-ordered array of `dtype` and `shape`."""
    bio = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(bio, header)
    return bio.getvalue()


class _OpenChunk:
    """A chunk file being filled: the temporary file, its rows so far and the length of the header reserved at its
    start (the header of a full chunk; rewritten in place, or the file rebuilt, if the chunk ends short)."""

    def __init__(self, path: Path, header: bytes):
        self.file = AtomicFile(path)
        self.file.fh.write(header)
        self.header_len = len(header)
        self.rows = 0


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity masks
        return os.cpu_count() or 1


def writer_thread_pays() -> bool:
    """Whether a background writer thread has a core of its own: torch's intra-op threads < `usable_cores()`.
    Without a free core the thread only competes with the forward pass (SmolLM2-135M capture on 2 cores, 2 torch
    threads: +33% over a plain forward with the thread, +21% without; docs/probes.md, Speed)."""
    return torch.get_num_threads() < usable_cores()


COMMIT_THREADS = 8
"""Chunk commits (fsync + rename) in flight at once in an `ActivationWriter`."""


class ActivationWriter:
    """Write rows of activations per module to `out_dir` in chunks of `chunk_rows` rows. Rows go straight into the
    module's open chunk file (a temporary file, renamed into place when the chunk is full or at `close`), so no rows
    are held in memory between `add` calls.

    background: True writes on a separate thread, so that writing overlaps the caller's next forward pass; `add`
    then only queues the rows, and blocks while more than `queue_bytes` bytes wait (memory stays bounded). None
    decides by `writer_thread_pays()` (a thread only when torch leaves a core free); the choice is in
    `self.background`. Either way, finished chunks are fsynced and renamed by committer threads (`COMMIT_THREADS`
    at once). The files are byte for byte those of the synchronous writer. An error on the writer thread (a full
    disk, say) is raised in the caller by the next `add` or by `close`; rows queued after it are dropped. The
    queued tensors are read later, so the caller must not edit them in place after `add` (copy them if it might).

    Folder format (version 1):
        out_dir/index.json                   written last, by `close`: {"format": "rote-activations", "version": 1,
                                             "chunk_rows": N, "meta": {...}, "modules": {name: {"dir", "dtype",
                                             "shape" (per row), "rows", "chunks": [{"file", "rows"}, ...]}}}
        out_dir/<name>/chunk-000000.npy      (rows, *shape) numpy arrays, row i of chunk k = overall row k * N + i;
                                             every chunk has N rows except the last. <name> is the module name,
                                             URL-quoted if it holds characters other than letters, digits, . _ -
    Every file is written atomically (temporary file + rename), so readers never see a partial chunk, and a folder
    without index.json is an unfinished capture. Rows keep the order in which they were added.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        chunk_rows: int = 4096,
        *,
        overwrite: bool = False,
        meta: Mapping[str, Any] | None = None,
        background: bool | None = False,
        queue_bytes: int = 256 << 20,
    ):
        if int(chunk_rows) < 1:
            raise ConfigError(f"chunk_rows={chunk_rows}: must be at least 1")
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and any(self.out_dir.iterdir()):
            if not overwrite:
                raise ConfigError(f"{self.out_dir}: exists and is not empty; pass overwrite=True or another folder")
            if not (self.out_dir / INDEX).is_file() and not any(self.out_dir.glob("*/chunk-*.npy")):
                raise ConfigError(f"{self.out_dir}: not an activation folder; refusing to overwrite it")
            shutil.rmtree(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.chunk_rows = int(chunk_rows)
        self.meta = dict(meta or {})
        self._modules: dict[str, dict[str, Any]] = {}
        self._open: dict[str, _OpenChunk] = {}
        self.closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._committer: ThreadPoolExecutor | None = None  # the fsync + rename threads (`_commit_later`)
        self.background = writer_thread_pays() if background is None else bool(background)
        if self.background:
            self._queue: queue.SimpleQueue[tuple[str, Any, int] | None] = queue.SimpleQueue()
            self._queue_bytes = max(1, int(queue_bytes))
            self._queued = 0  # bytes queued and not yet written
            self._room = threading.Condition()
            self._thread = threading.Thread(target=self._drain, name=f"rote-activations:{self.out_dir.name}")
            self._thread.daemon = True  # an abandoned writer must not keep the interpreter alive
            self._thread.start()

    def add(self, name: str, rows: torch.Tensor | np.ndarray) -> None:
        """Append rows (n, *shape) of module `name`; with `background`, queue them for the writer thread."""
        if self.closed:
            raise ConfigError(f"{self.out_dir}: the writer is closed")
        self._raise_writer_error()
        if rows.ndim == 0:
            raise DataError(f"{name}: activations need a leading row axis, got a scalar")
        dtype = _numpy_dtype(rows)
        info = self._modules.get(name)
        if info is None:
            info = {
                "dir": quote(name, safe="._-"),
                "dtype": dtype.str,
                "shape": list(rows.shape[1:]),
                "rows": 0,
                "chunks": [],
            }
            self._modules[name] = info
        elif list(rows.shape[1:]) != info["shape"] or dtype.str != info["dtype"]:
            raise DataError(
                f"{name}: rows of shape {tuple(rows.shape[1:])} {dtype} after {tuple(info['shape'])} "
                f"{np.dtype(info['dtype'])}; every batch must give the same per-row shape (pad "
                "sequences to one length, or use a reduction such as reduce='mean')"
            )
        if self._thread is None:
            self._write_rows(name, _to_numpy(rows))
            return
        size = int(rows.numel() * rows.element_size()) if isinstance(rows, torch.Tensor) else int(rows.nbytes)
        with self._room:
            # one item larger than the whole budget still goes through, alone
            while self._queued and self._queued + size > self._queue_bytes and self._error is None:
                self._room.wait()
            self._queued += size
        self._queue.put((name, rows, size))
        self._raise_writer_error()

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        """The writer thread: write queued rows in order until the None sentinel; after an error, drop the rest
        (still freeing their room, so that a blocked `add` wakes up and raises the error)."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, rows, size = item
            try:
                if self._error is None:
                    self._write_rows(name, _to_numpy(rows))
            except BaseException as exc:  # surfaced in the caller by `add` / `close`
                self._error = exc
            finally:
                del rows, item  # free the batch before waiting for the next one
                with self._room:
                    self._queued -= size
                    self._room.notify_all()

    def _write_rows(self, name: str, a: np.ndarray) -> None:
        """Append a's rows to the module's open chunk file, committing every chunk that fills up."""
        info = self._modules[name]
        start = 0
        while start < a.shape[0]:
            chunk = self._open.get(name)
            if chunk is None:
                path = self.out_dir / info["dir"] / f"chunk-{len(info['chunks']):06d}.npy"
                header = _npy_header(a.dtype, (self.chunk_rows, *info["shape"]))
                chunk = self._open[name] = _OpenChunk(path, header)
            take = min(self.chunk_rows - chunk.rows, a.shape[0] - start)
            piece = a[start : start + take]
            if piece.size:  # an empty row shape has no buffer to write (and memoryview refuses it)
                chunk.file.fh.write(memoryview(np.ascontiguousarray(piece)).cast("B"))
            chunk.rows += take
            start += take
            if chunk.rows == self.chunk_rows:
                self._commit(name)

    def _commit(self, name: str) -> None:
        """Finish the module's open chunk: the header of its real row count, then fsync + rename."""
        chunk = self._open.pop(name)
        info = self._modules[name]
        if chunk.rows != self.chunk_rows:  # a short last chunk: its header differs from the one reserved
            header = _npy_header(np.dtype(info["dtype"]), (chunk.rows, *info["shape"]))
            fh = chunk.file.fh
            if len(header) == chunk.header_len:  # the usual case (headers are padded to 64 bytes)
                fh.seek(0)
                fh.write(header)
            else:  # the row count changed the padded length: rebuild the file behind the right header
                rebuilt = AtomicFile(chunk.file.path)
                try:
                    rebuilt.fh.write(header)
                    fh.flush()
                    fh.seek(chunk.header_len)
                    shutil.copyfileobj(fh, rebuilt.fh, 1 << 22)
                except BaseException:
                    rebuilt.abort()
                    chunk.file.abort()
                    raise
                chunk.file.abort()
                chunk.file = rebuilt
        self._commit_later(chunk.file)
        file = chunk.file.path.name
        info["chunks"].append({"file": file, "rows": chunk.rows})
        info["rows"] += chunk.rows

    def _commit_later(self, file: AtomicFile) -> None:
        """Hand a finished chunk file to the committer threads, which flush, fsync and rename it: an fsync waits on
        the disk (about a quarter of the synchronous writer's cost in a SmolLM2 capture profile), not on a core,
        so the forward pass (or the background writer) goes on meanwhile. Up to `COMMIT_THREADS` fsyncs are in
        flight at once, so the last chunk of every module, all finished by `close`, wait on the disk together
        rather than one after another. close() waits for every commit before it writes the index; an error is
        raised by the next `add` or by `close`, as the background writer's are."""
        self._pool().submit(self._commit_one, file)

    def _pool(self) -> ThreadPoolExecutor:
        if self._committer is None:
            self._committer = ThreadPoolExecutor(
                COMMIT_THREADS, thread_name_prefix=f"rote-activations-commit:{self.out_dir.name}"
            )
        return self._committer

    def _commit_one(self, file: AtomicFile) -> None:
        try:
            if self._error is None:
                file.commit()
            else:
                file.abort()
        except BaseException as exc:  # surfaced in the caller by `add` / `close`
            file.abort()  # no temporary file left behind (a failed commit has usually removed it already)
            if self._error is None:
                self._error = exc

    def _stop_thread(self) -> None:
        """Let the writer thread write what is queued, then the committer commit what it holds; both end."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._committer is not None:
            self._committer.shutdown(wait=True)
            self._committer = None

    def close(self) -> "ActivationStore":
        """Write the remaining rows and index.json; returns a reader of the folder."""
        if not self.closed:
            self._stop_thread()
            if self._error is not None:
                self.abort()
                raise self._error
            for name in list(self._open):
                self._commit(name)
            self._stop_thread()  # every chunk committed before the index names it
            if self._error is not None:
                self.abort()
                raise self._error
            atomic_write_json(
                self.out_dir / INDEX,
                {
                    "format": FORMAT,
                    "version": 1,
                    "chunk_rows": self.chunk_rows,
                    "meta": self.meta,
                    "modules": self._modules,
                },
            )
            self.closed = True
        return ActivationStore(self.out_dir)

    def abort(self) -> None:
        """Stop without index.json (the folder stays marked unfinished): let the writer thread write what is queued
        (as the synchronous writer would have), then remove the chunk files still open. Finished chunks stay."""
        self._stop_thread()
        for chunk in self._open.values():
            chunk.file.abort()
        self._open.clear()
        self.closed = True

    def __enter__(self) -> "ActivationWriter":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()  # on an error, no index.json: the folder stays marked unfinished


class ActivationStore:
    """Reader of an `ActivationWriter` folder. `store.names`, `store.rows(name)`, `store.shape(name)` (per row),
    `store.chunks(name)` (iterate (rows, *shape) arrays, memory-mapped), `store.load(name)` / `store[name]`
    (all rows as one array), `store.meta`."""

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        path = self.out_dir / INDEX
        if not path.is_file():
            raise DataError(f"{self.out_dir}: no {INDEX}; not an activation folder, or a capture that did not finish")
        index = json.loads(path.read_text(encoding="utf-8"))
        if index.get("format") != FORMAT or index.get("version") != 1:
            raise DataError(
                f"{path}: not a rote activation index (format {index.get('format')!r}, "
                f"version {index.get('version')!r})"
            )
        self.index = index
        self.chunk_rows = int(index["chunk_rows"])
        self.meta = index.get("meta", {})
        self._modules = index["modules"]
        self.names = list(self._modules)

    def _info(self, name: str) -> dict[str, Any]:
        if name not in self._modules:
            raise ConfigError(f"{self.out_dir}: no activations for {name!r}; stored: {', '.join(self.names)}")
        return self._modules[name]

    def rows(self, name: str) -> int:
        return int(self._info(name)["rows"])

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._info(name)["shape"])

    def n_chunks(self, name: str) -> int:
        return len(self._info(name)["chunks"])

    def chunks(self, name: str, *, mmap: bool = True) -> Iterator[np.ndarray]:
        info = self._info(name)
        for c in info["chunks"]:
            a = np.load(self.out_dir / info["dir"] / c["file"], mmap_mode="r" if mmap else None, allow_pickle=False)
            if a.shape[0] != c["rows"]:
                raise DataError(f"{self.out_dir / info['dir'] / c['file']}: {a.shape[0]} rows, index says {c['rows']}")
            yield a

    def load(self, name: str) -> np.ndarray:
        info = self._info(name)
        parts = list(self.chunks(name, mmap=True))
        if not parts:
            return np.empty((0, *info["shape"]), dtype=np.dtype(info["dtype"]))
        return np.concatenate(parts)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.load(name)


def read_activations(out_dir: str | os.PathLike, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """{name: all rows} of an activation folder (all stored modules by default)."""
    store = ActivationStore(out_dir)
    return {n: store.load(n) for n in (store.names if names is None else names)}


def _default_forward(model: nn.Module, batch: Any) -> Any:
    """A batch from a DataLoader: a tensor, a dict of model inputs, or a tuple/list whose first element is the input
    ((x, y) pairs)."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def capture_to_disk(
    model: nn.Module,
    names: str | Sequence[str],
    batches: Iterable[Any],
    out_dir: str | os.PathLike,
    *,
    reduce: Reduce = "mean",
    chunk_rows: int = 4096,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    dtype: torch.dtype | None = None,
    overwrite: bool = False,
    meta: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    background: bool | None = None,
) -> ActivationStore:
    """Stream the activations of `names` over many batches into `out_dir` (format: `ActivationWriter`), with memory
    bounded by one batch plus the writer's queue (`ActivationWriter`'s `queue_bytes`).

    batches: any iterable (a DataLoader); forward(model, batch) runs one pass (default: tensors -> model(x),
        dicts -> model(**batch), (x, y, ...) -> model(x)). reduce: as in `capture` ("mean" by default: (B, C) rows).
    Row i of a module is sample i of the concatenated batches. meta: JSON-able facts stored in the index (the
    model, the dataset). progress: called with 1 after each batch. Runs under torch.no_grad().
    background: write on a thread of its own, overlapping the next batch's forward pass (same files; see
    `ActivationWriter`); None (the default) uses the thread only when torch's threads leave a core free for it
    (`writer_thread_pays`), False writes inside the forward pass. The hooked tensors are queued as they are, so a
    `reduce` that returns a view of an output the model later edits in place (reduce="none" on an in-place ReLU,
    say) needs background=False (or a copy in `reduce`).
    """
    resolve_modules(model, names)  # bad names or reductions fail before anything is written
    _check_reduce(reduce)
    how = reduce if isinstance(reduce, str) else getattr(reduce, "__name__", "custom")
    writer = ActivationWriter(
        out_dir, chunk_rows, overwrite=overwrite, meta={"reduce": how, **dict(meta or {})}, background=background
    )
    fwd = forward or _default_forward
    with writer, record(model, names, reduce=reduce, dtype=dtype, sink=writer.add), torch.no_grad():
        for batch in batches:
            fwd(model, batch)
            if progress is not None:
                progress(1)
    return ActivationStore(writer.out_dir)


# ---------------------------------------------------------------------------------------------- interventions


def _axis(t: torch.Tensor, dim: int | None) -> int:
    return channel_dim(t) if dim is None else dim % t.dim()


def _vector_along(v: torch.Tensor, t: torch.Tensor, axis: int) -> torch.Tensor:
    """v (C,) shaped to broadcast along `axis` of t, on t's device and dtype."""
    if v.dim() != 1 or v.shape[0] != t.shape[axis]:
        raise ConfigError(
            f"edit vector of shape {tuple(v.shape)} does not fit axis {axis} of an activation of "
            f"shape {tuple(t.shape)} (it needs ({t.shape[axis]},))"
        )
    shape = [1] * t.dim()
    shape[axis] = -1
    return v.to(device=t.device, dtype=t.dtype).view(shape)


class ProjectOut:
    """h <- h - alpha (h . w) w along the channel axis, w = direction / |direction| (unless normalize=False).
    alpha = 1 removes the component along w (the result is orthogonal to w); 0 changes nothing."""

    def __init__(
        self,
        direction: torch.Tensor | np.ndarray | Sequence[float],
        *,
        alpha: float = 1.0,
        dim: int | None = None,
        normalize: bool = True,
    ):
        w = torch.as_tensor(np.asarray(direction) if not isinstance(direction, torch.Tensor) else direction)
        w = w.detach().to(torch.float64 if w.dtype == torch.float64 else torch.float32).flatten()
        if normalize:
            norm = float(w.norm())
            if not math.isfinite(norm) or norm == 0:
                raise ConfigError("project_out: the direction has zero (or non-finite) norm")
            w = w / norm
        self.w, self.alpha, self.dim = w, float(alpha), dim

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        axis = _axis(t, self.dim)
        w = _vector_along(self.w, t, axis)
        coef = (t * w).sum(dim=axis, keepdim=True)  # (.., 1, ..): h . w
        return t - self.alpha * coef * w

    def __repr__(self) -> str:
        return f"project_out(dim={self.w.shape[0]}, alpha={self.alpha})"


class Scale:
    """h <- factor * h, on all channels or only on `units` of the channel axis."""

    def __init__(self, factor: float, units: Sequence[int] | torch.Tensor | None = None, *, dim: int | None = None):
        self.factor, self.dim = float(factor), dim
        self.units = None if units is None else torch.as_tensor(units, dtype=torch.long).flatten()

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if self.units is None:
            return t * self.factor
        axis = _axis(t, self.dim)
        n = t.shape[axis]
        if self.units.numel() and (int(self.units.min()) < -n or int(self.units.max()) >= n):
            raise ConfigError(f"units {self.units.tolist()}: the activation has {n} channels on axis {axis}")
        gain = torch.ones(n, device=t.device, dtype=t.dtype)
        gain[self.units.to(t.device)] = self.factor
        return t * _vector_along(gain, t, axis)

    def __repr__(self) -> str:
        return f"scale({self.factor}, units={None if self.units is None else self.units.tolist()})"


class ZeroUnits(Scale):
    """h[..., units, ...] <- 0 on the channel axis (units = channels of a conv map, neurons, residual dims)."""

    def __init__(self, units: Sequence[int] | torch.Tensor, *, dim: int | None = None):
        super().__init__(0.0, units, dim=dim)

    def __repr__(self) -> str:
        return f"zero_units({self.units.tolist()})"


class Add:
    """h <- h + alpha v along the channel axis (activation steering)."""

    def __init__(
        self, vector: torch.Tensor | np.ndarray | Sequence[float], *, alpha: float = 1.0, dim: int | None = None
    ):
        v = torch.as_tensor(np.asarray(vector) if not isinstance(vector, torch.Tensor) else vector)
        self.v, self.alpha, self.dim = v.detach().flatten(), float(alpha), dim

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t + self.alpha * _vector_along(self.v, t, _axis(t, self.dim))

    def __repr__(self) -> str:
        return f"add(dim={self.v.shape[0]}, alpha={self.alpha})"


def project_out(direction: Any, *, alpha: float = 1.0, dim: int | None = None, normalize: bool = True) -> ProjectOut:
    """Edit h <- h - alpha (h.w) w (see `ProjectOut`). direction: (C,)."""
    return ProjectOut(direction, alpha=alpha, dim=dim, normalize=normalize)


def scale(factor: float, units: Sequence[int] | torch.Tensor | None = None, *, dim: int | None = None) -> Scale:
    """Edit h <- factor h, optionally only on `units` (see `Scale`)."""
    return Scale(factor, units, dim=dim)


def zero_units(units: Sequence[int] | torch.Tensor, *, dim: int | None = None) -> ZeroUnits:
    """Edit: set channels `units` to 0 (see `ZeroUnits`)."""
    return ZeroUnits(units, dim=dim)


def add(vector: Any, *, alpha: float = 1.0, dim: int | None = None) -> Add:
    """Edit h <- h + alpha v (see `Add`). vector: (C,)."""
    return Add(vector, alpha=alpha, dim=dim)


@contextlib.contextmanager
def intervene(model: nn.Module, edits: Mapping[str, Edit | Sequence[Edit]]) -> Iterator[None]:
    """Inside the block, every forward pass of `model` replaces the activation of each named module by
    edit(activation) (several edits for one module run in the given order). Works with any forward: plain calls,
    `generate`, a training step (edits are differentiable). The hooks are removed on exit, also on errors.
    """
    if not edits:
        raise ConfigError("intervene: no edits given")
    modules = resolve_modules(model, list(edits))
    plan: dict[str, list[Edit]] = {}
    for name, e in edits.items():
        chain = list(e) if isinstance(e, (list, tuple)) else [e]
        if not chain or not all(callable(f) for f in chain):
            raise ConfigError(f"intervene: the edit for {name!r} must be a callable tensor -> tensor (or a list)")
        plan[name] = chain

    def make_hook(name: str) -> Callable:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            t = primary(output)
            new = t
            for f in plan[name]:
                new = f(new)
            if new.shape != t.shape:
                raise ConfigError(
                    f"intervene: the edit for {name!r} changed the shape {tuple(t.shape)} to {tuple(new.shape)}"
                )
            return _replace_primary(output, new)

        return hook

    with _hooked(modules, make_hook, prepend=True):  # edit before any other hook reads the output
        yield
