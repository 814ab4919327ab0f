"""The generator contract shared by rote's tabular generators, and the training loop they all use.

A generator is a scikit-learn style estimator: hyperparameters in `__init__` (stored unchanged), all work in
`fit(table, schema)`, which returns `self`; learned state ends in an underscore. The loop in
`TabularGenerator.fit` owns everything that is not model math: input validation, epochs, callbacks (early
stopping, memorization hooks), checkpoints and resume, progress, timing. A model supplies `_build`,
`_train_epoch` and `_sample_codes`.

Reproducibility: the randomness of epoch `e` (batch order, noise, timesteps, dropout) comes from a generator
seeded by `(seed, e)` alone, so training that resumes from the checkpoint after epoch `e` draws exactly what the
uninterrupted run draws, and checkpoints need no global RNG state. Nothing here touches global random state.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from rote.core.checkpoints import (
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from rote.core.device import resolve_device
from rote.core.errors import ConfigError
from rote.core.runs import progress_bar
from rote.data import TableSchema
from rote.tabular.models.preprocess import TableCodec

Callback = Callable[[int, "TabularGenerator", dict], "bool | None"]
"""`callback(epoch, model, logs) -> True to stop`. Called after each epoch (1-based); `logs` is that epoch's
history entry, so keys a callback adds to it are recorded in `model.history_` (and in checkpoints)."""

Progress = bool | Callable[[int], None]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch`'s random stream: a function of (seed, epoch) only."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0] & (2**63 - 1))


def _plain(obj: Any) -> Any:
    """History values as plain Python (checkpoints are read with weights_only=True, which refuses numpy)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def table_fingerprint(x_num: torch.Tensor, x_cat: torch.Tensor) -> str:
    """SHA-256 of the encoded training table: a resumed run must train on the same data."""
    h = hashlib.sha256()
    h.update(x_num.numpy().tobytes())
    h.update(x_cat.numpy().tobytes())
    return h.hexdigest()


class TabularGenerator(ABC):
    """Base class: `fit(table, schema)` then `sample(n, seed)`; `save(path)` / `load(path)`.

    Learned state: `codec_` (encoders), `history_` (one dict per epoch: epoch, loss, seconds, ...),
    `n_epochs_trained_`, and the model's modules.
    """

    kind: ClassVar[str] = "generator"
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """The `__init__` arguments as given (scikit-learn convention)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def config(self) -> dict[str, Any]:
        """Hyperparameters in effect: the preset's values, overridden by every parameter not left at None."""
        preset = self.get_params().get("preset")
        if preset not in self.presets:
            raise ConfigError(f"{type(self).__name__}: preset={preset!r} is unknown; choose one of "
                              f"{', '.join(map(repr, self.presets))}")
        cfg = dict(self.presets[preset])
        cfg.update({k: v for k, v in self.get_params().items() if v is not None})
        for key in ("epochs", "batch_size"):
            if key in cfg and cfg[key] is not None and (isinstance(cfg[key], bool) or int(cfg[key]) != cfg[key]
                                                        or cfg[key] < (0 if key == "epochs" else 1)):
                raise ConfigError(f"{type(self).__name__}: {key}={cfg[key]!r} must be a whole number "
                                  f"{'>= 0' if key == 'epochs' else '>= 1'}")
        if cfg.get("lr") is not None and not float(cfg["lr"]) > 0:
            raise ConfigError(f"{type(self).__name__}: lr={cfg['lr']!r} must be > 0, e.g. 1e-3")
        return cfg

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "codec_"):
            raise ConfigError(f"{type(self).__name__}: call fit(table, schema) before {what}")

    # ------------------------------------------------------------------ what a model supplies
    @abstractmethod
    def _build(self, cfg: dict[str, Any], codec: TableCodec, n_rows: int, device: torch.device) -> None:
        """Create the modules and optimizers (seeded from cfg['seed'])."""

    @abstractmethod
    def _modules(self) -> dict[str, torch.nn.Module]:
        """Named modules whose state dicts are saved."""

    def _optimizers(self) -> dict[str, Any]:
        """Named objects with state_dict/load_state_dict saved in training checkpoints (optimizers, schedulers)."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        """Model-specific plain values to save (e.g. latent statistics); inverse of `_load_extra_state`."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    @abstractmethod
    def _total_epochs(self, cfg: dict[str, Any], n_rows: int) -> int:
        """Epochs a full fit runs (before early stopping)."""

    @abstractmethod
    def _train_epoch(self, epoch: int, x_num: torch.Tensor, x_cat: torch.Tensor, gen: torch.Generator) -> dict:
        """One epoch over (n, n_num) / (n, n_cat) tensors on the device; returns logs ({"loss": float, ...})."""

    @abstractmethod
    def _sample_codes(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, n_num) normal scores and (n, n_cat) codes."""

    def ready_to_sample(self) -> bool:
        """Whether `sample` makes sense now (TabSyn: only once its diffusion phase has started)."""
        return hasattr(self, "codec_")

    def _on_stop(self, epoch: int) -> bool:
        """A callback asked to stop after `epoch`; return True to end training (TabSyn ends a phase instead)."""
        return True

    # ------------------------------------------------------------------ fit
    def fit(self, table: pd.DataFrame, schema: TableSchema, *, callbacks: Sequence[Callback] = (),
            checkpoint_dir: str | Path | None = None, checkpoint_every: int | None = None, resume: bool = True,
            progress: Progress = True) -> TabularGenerator:
        """Train on `table` (any dtypes `validate_table` accepts; it is not modified).

        callbacks: called after every epoch with (epoch, model, logs); a True return stops training.
        checkpoint_dir: write `epoch-NNNNNN.pt` there every `checkpoint_every` epochs (default: only at the end)
            and when training stops; with `resume=True` a fit starts from the newest checkpoint there, which must
            come from the same parameters and table (else ConfigError), and continues to the same result an
            uninterrupted run gives.
        progress: True draws a progress bar over epochs; False draws nothing; a callable gets `advance(1)` per
            epoch (for callers that own a bar).
        """
        cfg = self.config()
        if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or int(checkpoint_every) < 1):
            raise ConfigError(f"checkpoint_every={checkpoint_every!r}: must be a whole number >= 1 (epochs)")
        if not isinstance(schema, TableSchema):
            raise ConfigError(f"schema must be a TableSchema, got {type(schema).__name__}; "
                              "build one with rote.data.infer_schema or dataset_schema")
        device = resolve_device(cfg["device"])
        name = str(table.attrs.get("source", "train")) if isinstance(table, pd.DataFrame) else "train"
        codec = TableCodec().fit(table, schema, name=name)
        x_num, x_cat = codec.encode(table, name=name)
        fingerprint = table_fingerprint(x_num, x_cat)
        n_rows = len(x_num)
        self.codec_ = codec
        self._build(cfg, codec, n_rows, device)
        self.history_: list[dict] = []
        self.n_epochs_trained_ = 0
        self.stopped_early_ = False
        folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if folder is not None and resume and (latest := latest_checkpoint(folder)) is not None:
            self._resume_from(latest, fingerprint)
        x_num, x_cat = x_num.to(device), x_cat.to(device)
        remaining = 0 if self.stopped_early_ else max(0, self._total_epochs(cfg, n_rows) - self.n_epochs_trained_)

        def run(advance: Callable[[int], None]) -> None:
            while not self.stopped_early_:
                total = self._total_epochs(cfg, n_rows)  # TabSyn's shrinks when its VAE phase ends early
                self._last_epoch = total  # read by callbacks that also act after the final epoch
                if self.n_epochs_trained_ >= total:
                    break
                epoch = self.n_epochs_trained_ + 1
                gen = torch.Generator(device=device).manual_seed(epoch_seed(cfg["seed"], epoch))
                start = time.perf_counter()
                # dropout draws from the global torch RNG: fork it, seeded per epoch, and leave it as it was
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    torch.manual_seed(epoch_seed(cfg["seed"] + 1, epoch))
                    logs = self._train_epoch(epoch, x_num, x_cat, gen)
                logs = {"epoch": epoch, **_plain(logs), "seconds": time.perf_counter() - start}
                self.history_.append(logs)
                self.n_epochs_trained_ = epoch
                stop = False
                for cb in callbacks:
                    stop = bool(cb(epoch, self, logs)) or stop
                logs.update(_plain(dict(logs)))  # what callbacks added, as plain values
                end = stop and self._on_stop(epoch)
                total = self._total_epochs(cfg, n_rows)
                self.stopped_early_ = bool(end and epoch < total)
                last = end or epoch >= total
                if folder is not None and (last or (checkpoint_every and epoch % int(checkpoint_every) == 0)):
                    self._save_training(folder / checkpoint_name(epoch), fingerprint)
                advance(1)
                if end:
                    break

        if callable(progress):
            run(progress)
        else:
            with progress_bar(remaining, f"training {type(self).__name__}", quiet=not progress) as advance:
                run(advance)
        for m in self._modules().values():
            m.eval()
        return self

    # ------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict[str, Any]:
        return {
            "params": _plain(self.get_params()),
            "codec": self.codec_.state_dict(),
            "modules": {k: m.state_dict() for k, m in self._modules().items()},
            "extra": self._extra_state(),
            "history": _plain(self.history_),
            "epoch": int(self.n_epochs_trained_),
            "stopped_early": bool(self.stopped_early_),
        }

    def _save_training(self, path: Path, fingerprint: str) -> None:
        payload = self._payload()
        payload["optimizers"] = {k: o.state_dict() for k, o in self._optimizers().items()}
        payload["data_sha256"] = fingerprint
        save_checkpoint(path, payload, kind=self.kind)

    def _resume_from(self, path: Path, fingerprint: str) -> None:
        state = load_checkpoint(path, self.kind)
        try:
            saved = state["params"]
            ours = _plain(self.get_params())
            differ = sorted(k for k in set(saved) | set(ours) if k != "device" and saved.get(k) != ours.get(k))
            if differ:
                shown = ", ".join(f"{k}={saved.get(k)!r} there, {ours.get(k)!r} here" for k in differ[:4])
                raise ConfigError(f"{path}: checkpoint was written with other parameters ({shown}); resume with "
                                  "the same parameters, pass resume=False, or use another checkpoint folder")
            if state["data_sha256"] != fingerprint:
                raise ConfigError(f"{path}: checkpoint was trained on a different table; resume with the same "
                                  "training table, pass resume=False, or use another checkpoint folder")
            self._load_payload(state, optimizers=True)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"{path}: checkpoint content does not fit {type(self).__name__} ({exc}); "
                              "pass resume=False or use another checkpoint folder") from None

    def _load_payload(self, state: dict[str, Any], *, optimizers: bool) -> None:
        modules = self._modules()
        for k, sd in state["modules"].items():
            modules[k].load_state_dict(sd)
        if optimizers:
            objs = self._optimizers()
            for k, sd in state["optimizers"].items():
                objs[k].load_state_dict(sd)
        self._load_extra_state(state["extra"])
        self.history_ = [dict(h) for h in state["history"]]
        self.n_epochs_trained_ = int(state["epoch"])
        self.stopped_early_ = bool(state.get("stopped_early", False))

    def save(self, path: str | Path) -> Path:
        """Write the fitted model (parameters, encoders, weights, history) to one checkpoint file, atomically."""
        self._check_fitted("save(path)")
        return save_checkpoint(Path(path), self._payload(), kind=self.kind)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> TabularGenerator:
        """Read a model written by `save` (or a training checkpoint); never executes pickled code.

        ConfigError when the file is missing, corrupt, or holds another kind of model.
        """
        state = load_checkpoint(Path(path), cls.kind)
        try:
            params = dict(state["params"])
            if device is not None:
                params["device"] = device
            model = cls(**params)
            cfg = model.config()
            model.codec_ = TableCodec.from_state_dict(state["codec"])
            n_rows = int(state["extra"].get("n_rows", 0)) if isinstance(state.get("extra"), dict) else 0
            model._build(cfg, model.codec_, n_rows, resolve_device(cfg["device"]))
            model._load_payload(state, optimizers=False)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"{path}: checkpoint content does not fit {cls.__name__} ({exc}); pass a file "
                              f"written by {cls.__name__}.save") from None
        for m in model._modules().values():
            m.eval()
        return model

    # ------------------------------------------------------------------ sample
    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """(n rows) a synthetic table with the training table's columns, order and dtypes. Same seed, same rows."""
        self._check_fitted("sample(n)")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"sample: n={n!r} must be a whole number >= 1")
        if not self.ready_to_sample():
            raise ConfigError(f"{type(self).__name__}: not trained far enough to sample; fit it first")
        device = next(iter(self._modules().values())).parameters().__next__().device
        gen = torch.Generator(device=device).manual_seed(int(seed))
        batch = int(self.config().get("sample_batch_size", 10_000))
        nums, cats = [], []
        modules = self._modules()
        modes = {k: m.training for k, m in modules.items()}
        for m in modules.values():
            m.eval()
        try:
            with torch.no_grad():
                for start in range(0, int(n), batch):
                    xn, xc = self._sample_codes(min(batch, int(n) - start), gen)
                    nums.append(xn.cpu())
                    cats.append(xc.cpu())
        finally:
            for k, m in modules.items():
                m.train(modes[k])
        return self.codec_.decode(torch.cat(nums), torch.cat(cats))


def linear_decay_lr(base_lr: float, step: int, total_steps: int) -> float:
    """TabDDPM's schedule: lr falls linearly from base_lr to 0 over the whole run."""
    return base_lr * max(0.0, 1.0 - step / max(1, total_steps))


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    return max(1, math.ceil(n_rows / batch_size))
