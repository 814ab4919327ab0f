"""The generator contract shared by rote's tabular generators, on top of rote's one training loop.

A generator is a scikit-learn style estimator: hyperparameters in `__init__` (stored unchanged), all work in
`fit(table, schema)`, which returns `self`; learned state ends in an underscore. `TabularGenerator.fit` validates
and encodes the table, then hands the loop to `rote.core.training.Trainer`, which owns epochs, shuffling,
optimizer steps, callbacks (early stopping, memorization hooks), checkpoints and resume, every random state,
progress and device. A model supplies `_build`, `_train_step` (one batch) and `_sample_codes`, and optionally
`_epoch_begin` / `_epoch_end` (TabSyn switches phases there).

Reproducibility: the randomness of epoch `e` (batch order, noise, timesteps, dropout) comes from generators
seeded by `(seed, e)` alone (`rote.core.training.epoch_seed`), so training that resumes from the checkpoint after
epoch `e` draws exactly what the uninterrupted run draws. The caller's global random state is left as it was.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from rote.core.checkpoints import load_checkpoint, save_checkpoint
from rote.core.device import resolve_device
from rote.core.errors import ConfigError
from rote.core.training import Trainer, TrainState, epoch_seed  # noqa: F401  (epoch_seed: re-exported)
from rote.core.training import plain as _plain
from rote.data import TableSchema
from rote.tabular.models.preprocess import TableCodec

Callback = Callable[[int, "TabularGenerator", dict], "bool | None"]
"""`callback(epoch, model, logs) -> True to stop`. Called after each epoch (1-based); `logs` is that epoch's
history entry, so keys a callback adds to it are recorded in `model.history_` (and in checkpoints)."""

Progress = bool | Callable[[int], None]


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
            raise ConfigError(
                f"{type(self).__name__}: preset={preset!r} is unknown; choose one of "
                f"{', '.join(map(repr, self.presets))}"
            )
        cfg = dict(self.presets[preset])
        cfg.update({k: v for k, v in self.get_params().items() if v is not None})
        for key in ("epochs", "batch_size"):
            if (
                key in cfg
                and cfg[key] is not None
                and (
                    isinstance(cfg[key], bool) or int(cfg[key]) != cfg[key] or cfg[key] < (0 if key == "epochs" else 1)
                )
            ):
                raise ConfigError(
                    f"{type(self).__name__}: {key}={cfg[key]!r} must be a whole number "
                    f"{'>= 0' if key == 'epochs' else '>= 1'}"
                )
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

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers: the loop steps them (all, or `state.active_optimizers`) and checkpoints them."""
        return {}

    def _schedulers(self) -> dict[str, Any]:
        """Named schedulers the model steps itself (in `_train_step` / `_epoch_end`); checkpointed by the loop."""
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
    def _train_step(self, idx: torch.Tensor, state: TrainState) -> dict[str, torch.Tensor]:
        """One batch: idx (B,) row indices into `self._x_num` (n, n_num) / `self._x_cat` (n, n_cat) on the device.
        Draw all noise from `state.generator`. Returns {"loss": scalar tensor (backpropagated), other scalars}."""

    def _epoch_begin(self, state: TrainState) -> None:
        """Before epoch `state.epoch` (modules are in train mode); must not draw random numbers."""

    def _epoch_end(self, epoch: int, logs: dict) -> None:
        """After the epoch's batches; `logs` holds the batch-size weighted means of what `_train_step` returned
        and can be extended (learning rate, phase)."""

    @abstractmethod
    def _sample_codes(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, n_num) normal scores and (n, n_cat) codes."""

    def ready_to_sample(self) -> bool:
        """Whether `sample` makes sense now (TabSyn: only once its diffusion phase has started)."""
        return hasattr(self, "codec_")

    def _trainer_options(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """Extra `Trainer` arguments (e.g. monitor/keep_best to sample from the best-loss weights)."""
        return {}

    def _on_stop(self, epoch: int) -> bool:
        """A callback asked to stop after `epoch`; return True to end training (TabSyn ends a phase instead)."""
        return True

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        table: pd.DataFrame,
        schema: TableSchema,
        *,
        callbacks: Sequence[Callback] = (),
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume: bool = True,
        progress: Progress = True,
    ) -> TabularGenerator:
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
            raise ConfigError(
                f"schema must be a TableSchema, got {type(schema).__name__}; "
                "build one with rote.data.infer_schema or dataset_schema"
            )
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
        self._x_num, self._x_cat = x_num.to(device), x_cat.to(device)
        trainer = Trainer(
            self._modules(),
            self._train_step,
            optimizers=self._optimizers(),
            schedulers=self._schedulers(),
            scheduler_interval=None,
            data=n_rows,
            batch_size=int(cfg["batch_size"]),
            epochs=lambda: self._total_epochs(cfg, n_rows),  # TabSyn's shrinks when its VAE phase ends early
            seed=int(cfg["seed"]),
            device=device,
            callbacks=[_TabularLoop(self, cfg, n_rows, callbacks)],
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            resume=resume,
            kind=self.kind,
            payload=lambda st: {
                **self._payload_extra(),
                "data_sha256": fingerprint,
                "stopped_early": bool(st.stopped_early),
            },
            check_resume=lambda path, ck: self._check_resume(path, ck, fingerprint),
            load_payload=lambda path, ck: self._load_extra_state(ck["extra"]),
            on_stop=lambda st: self._on_stop(st.epoch),
            progress=progress,
            **self._trainer_options(cfg),
            description=f"training {type(self).__name__}",
        )
        try:
            state = trainer.fit()
        finally:
            del self._x_num, self._x_cat
        self.history_ = state.history
        self.n_epochs_trained_ = state.epoch
        self.stopped_early_ = state.stopped_early
        return self

    # ------------------------------------------------------------------ checkpoints
    def _payload_extra(self) -> dict[str, Any]:
        """What a model file holds besides weights and history (training checkpoints hold it too)."""
        return {"params": _plain(self.get_params()), "codec": self.codec_.state_dict(), "extra": self._extra_state()}

    def _payload(self) -> dict[str, Any]:
        return {
            **self._payload_extra(),
            "modules": {k: m.state_dict() for k, m in self._modules().items()},
            "history": _plain(self.history_),
            "epoch": int(self.n_epochs_trained_),
            "stopped_early": bool(self.stopped_early_),
        }

    def _check_resume(self, path: Path, state: dict[str, Any], fingerprint: str) -> None:
        """A checkpoint must come from the same parameters (the device aside) and the same table."""
        try:
            saved = state["params"]
            ours = _plain(self.get_params())
            differ = sorted(k for k in set(saved) | set(ours) if k != "device" and saved.get(k) != ours.get(k))
            same_data = state["data_sha256"] == fingerprint
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{path}: checkpoint content does not fit {type(self).__name__} ({exc}); "
                "pass resume=False or use another checkpoint folder"
            ) from None
        if differ:
            shown = ", ".join(f"{k}={saved.get(k)!r} there, {ours.get(k)!r} here" for k in differ[:4])
            raise ConfigError(
                f"{path}: checkpoint was written with other parameters ({shown}); resume with "
                "the same parameters, pass resume=False, or use another checkpoint folder"
            )
        if not same_data:
            raise ConfigError(
                f"{path}: checkpoint was trained on a different table; resume with the same "
                "training table, pass resume=False, or use another checkpoint folder"
            )

    def _load_payload(self, state: dict[str, Any]) -> None:
        modules = self._modules()
        for k, sd in state["modules"].items():
            modules[k].load_state_dict(sd)
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
            model._load_payload(state)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"{path}: checkpoint content does not fit {cls.__name__} ({exc}); pass a file "
                f"written by {cls.__name__}.save"
            ) from None
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


class _TabularLoop:
    """The Trainer callback that keeps a generator's learned state in step with the loop and calls the tabular
    callbacks `cb(epoch, model, logs)` after the model's own epoch end."""

    def __init__(
        self, model: TabularGenerator, cfg: dict[str, Any], n_rows: int, callbacks: Sequence[Callback]
    ) -> None:
        self.model, self.cfg, self.n_rows, self.callbacks = model, cfg, n_rows, list(callbacks)

    def on_train_begin(self, state: TrainState) -> None:
        m = self.model
        m.history_ = state.history  # the same list: callbacks read model.history_ while training runs
        m.n_epochs_trained_ = state.epoch
        m.stopped_early_ = state.stopped_early
        m._last_epoch = m._total_epochs(self.cfg, self.n_rows)

    def on_epoch_begin(self, state: TrainState) -> None:
        self.model._last_epoch = self.model._total_epochs(self.cfg, self.n_rows)  # read by MemorizationHook
        self.model._epoch_begin(state)

    def on_epoch_end(self, state: TrainState, logs: dict) -> bool:
        m = self.model
        m.n_epochs_trained_ = state.epoch
        m._epoch_end(state.epoch, logs)
        logs.update(_plain(dict(logs)))
        stop = False
        for cb in self.callbacks:
            stop = bool(cb(state.epoch, m, logs)) or stop
        return stop


def linear_decay_lr(base_lr: float, step: int, total_steps: int) -> float:
    """TabDDPM's schedule: lr falls linearly from base_lr to 0 over the whole run."""
    return base_lr * max(0.0, 1.0 - step / max(1, total_steps))


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    return max(1, math.ceil(n_rows / batch_size))
