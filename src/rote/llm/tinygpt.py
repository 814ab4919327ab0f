"""rote's tiny GPT: a small byte-level causal transformer trained in minutes on a CPU, for ground-truth experiments.

Read top to bottom: the byte tokenizer, the config, the model (nanoGPT-style: learned positions, pre-norm blocks,
causal self-attention with a KV cache, tied embeddings), the training step (random windows of a token stream, AdamW,
cosine schedule) run by rote's one training loop `rote.core.training.Trainer` (atomic checkpoints, exact resume),
and the `Backend` wrapper that the extraction and membership protocols use (`open_backend("tiny:FOLDER")`).

Training folder layout (`out_dir`):
    model.pt                 the final weights + config + tokenizer (kind "tinygpt")
    checkpoints/step-000500.pt  full training state every `checkpoint_every` steps (kind "tinygpt-train")
    train_log.json           loss per logged step
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rote.core.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from rote.core.device import resolve_device
from rote.core.errors import BackendError, ConfigError, DataError
from rote.core.runs import atomic_write_json
from rote.core.training import Trainer
from rote.llm.backends.base import vocabulary_fingerprint
from rote.llm.backends.torch_lm import TorchLMBackend
from rote.nets.transformer import Block

MODEL_KIND = "tinygpt"
TRAIN_KIND = "tinygpt-train"
CKPT_PREFIX = "step-"

# ---------------------------------------------------------------------------------------------- tokenizer


class ByteTokenizer:
    """UTF-8 bytes as tokens: id = byte value (0..255). Lossless for any text; decoding invalid byte runs (a
    generation cut mid-character) gives U+FFFD."""

    vocab_size = 256
    kind = "bytes"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def fingerprint(self) -> str:
        return vocabulary_fingerprint([bytes([i]) for i in range(256)])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


# ---------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class TinyGPTConfig:
    """Shape of the model. Defaults give about 1.8M parameters (d=192, 4 layers); a few minutes of CPU training on
    a few MB of text memorizes 100x-repeated canaries."""

    vocab_size: int = 256
    block_size: int = 256  # longest sequence (prompt + generation) the model sees
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192

    def __post_init__(self) -> None:
        for f in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, f)) < 1:
                raise ConfigError(f"TinyGPTConfig.{f}={getattr(self, f)}: must be at least 1")
        if self.n_embd % self.n_head:
            raise ConfigError(f"TinyGPTConfig: n_embd={self.n_embd} must be divisible by n_head={self.n_head}")


class KVCache:
    """Keys and values of the tokens seen so far, preallocated to the context size so that decoding writes in
    place instead of concatenating. Per layer: k, v each (B, H, block_size, D); `length` columns are filled."""

    def __init__(self, cfg: "TinyGPTConfig", batch: int, device: torch.device, dtype: torch.dtype):
        shape = (batch, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
        self.k = [torch.empty(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [torch.empty(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.length = 0


class TinyGPT(nn.Module):
    """Decoder-only transformer. `forward(idx)` -> logits (B, T, V); see `step` for padded/cached decoding."""

    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.wte.weight  # tied input/output embeddings
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Training forward: idx (B, T) int64, T <= block_size -> logits (B, T, V)."""
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))  # (B, T, C)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))

    def step(
        self,
        idx: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: KVCache | None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, KVCache]:
        """Decoding forward with padding and a KV cache.

        idx: (B, T) new tokens; attention_mask: (B, S) 1 = real token, 0 = padding, over cached + new tokens;
        position_ids: (B, T); cache: the keys/values of the S - T earlier tokens, or None to start one.
        Returns logits (B, T, V) (or (B, 1, V) with last_only) and the cache, extended in place by the T tokens.
        """
        b, t = idx.shape
        s = attention_mask.shape[1]
        if cache is None:
            cache = KVCache(self.cfg, b, idx.device, self.wte.weight.dtype)
        if cache.length != s - t or s > self.cfg.block_size:
            raise ValueError(f"cache holds {cache.length} tokens, mask says {s - t}; context is {self.cfg.block_size}")
        q_abs = torch.arange(s - t, s, device=idx.device)  # absolute column of each query
        k_abs = torch.arange(s, device=idx.device)
        causal = k_abs.unsqueeze(0) <= q_abs.unsqueeze(1)  # (T, S)
        allowed = causal.unsqueeze(0) & attention_mask.bool().unsqueeze(1)  # (B, T, S)
        # a padding query would see no key at all (softmax of nothing = NaN); let every query see itself
        allowed = (allowed | (k_abs.unsqueeze(0) == q_abs.unsqueeze(1)).unsqueeze(0)).unsqueeze(1)  # (B, 1, T, S)
        x = self.wte(idx) + self.wpe(position_ids)  # (B, T, C)
        for i, blk in enumerate(self.blocks):
            x = blk(x, allowed, (cache.k[i], cache.v[i], cache.length))
        cache.length = s
        if last_only:
            x = x[:, -1:]
        return self.head(self.ln_f(x)), cache


# ---------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainResult:
    """What `train_tiny_gpt` did. final_loss: mean training loss of the last (up to) 20 steps, in nats per byte
    (a resumed run counts the steps before the interruption too); seconds: wall time of this call; resumed_from:
    the checkpoint step training continued from, if any."""

    out_dir: Path
    steps: int
    final_loss: float
    n_params: int
    n_tokens: int
    seconds: float
    resumed_from: int | None


def _token_stream(data: Any, tokenizer: ByteTokenizer, separator: str) -> np.ndarray:
    """(N,) uint8/int64 token stream from a text, a list of texts (joined with `separator`) or token ids."""
    if isinstance(data, str):
        return np.frombuffer(data.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    if isinstance(data, np.ndarray):
        if data.ndim != 1 or not np.issubdtype(data.dtype, np.integer):
            raise DataError(f"token stream: expected a 1-D integer array, got shape {data.shape} dtype {data.dtype}")
        return data.astype(np.int64)
    if isinstance(data, (list, tuple)):
        if data and all(isinstance(x, str) for x in data):
            return np.frombuffer(separator.join(data).encode("utf-8"), dtype=np.uint8).astype(np.int64)
        if all(isinstance(x, (int, np.integer)) for x in data):
            return np.asarray(data, dtype=np.int64)
    raise DataError("training data: pass a text, a list of texts or a 1-D array of token ids")


def train_tiny_gpt(
    data: str | list[str] | np.ndarray,
    config: TinyGPTConfig | None = None,
    *,
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    out_dir: str | os.PathLike,
    checkpoint_every: int = 500,
    resume: bool = True,
    warmup: int = 100,
    weight_decay: float = 0.0,
    separator: str = "\n",
    device: str = "cpu",
    log_every: int = 50,
    keep_checkpoints: int = 2,
    progress: bool | Callable[[int], None] = False,
) -> TrainResult:
    """Train a tiny GPT on random windows of a token stream; writes `out_dir/model.pt` and checkpoints.

    data: one text, a list of texts (joined with `separator`, so a text repeated 100 times in the list is seen as
        100 copies) or a 1-D array of byte ids (0..255).
    steps: optimizer steps; each sees `batch_size` windows of `config.block_size` + 1 tokens drawn uniformly.
    lr: peak AdamW learning rate, with `warmup` linear steps then cosine decay to lr/10.
    weight_decay: AdamW decay on matrices (0 by default: memorization is the point).
    checkpoint_every: steps between full training-state checkpoints in `out_dir/checkpoints/`; with `resume`, the
        newest one is picked up and training continues exactly (same windows, same weights as an uninterrupted run,
        when the other arguments are the same; a larger `steps` extends training with a stretched schedule).
    progress: True for a progress bar, or a callable advanced by one per step.
    Same seed and data -> the same weights on CPU.
    """
    cfg = config or TinyGPTConfig()
    tok = ByteTokenizer()
    if cfg.vocab_size != tok.vocab_size:
        raise ConfigError(f"TinyGPTConfig.vocab_size={cfg.vocab_size}: the byte tokenizer needs 256")
    for name, v in (("steps", steps), ("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
        if int(v) < 1:
            raise ConfigError(f"{name}={v}: must be at least 1")
    if not lr > 0:
        raise ConfigError(f"lr={lr}: must be > 0")
    stream = _token_stream(data, tok, separator)
    if stream.size and (stream.min() < 0 or stream.max() >= cfg.vocab_size):
        raise DataError(f"token stream: ids must lie in 0..{cfg.vocab_size - 1}")
    if stream.size < cfg.block_size + 1:
        raise DataError(
            f"training data: {stream.size} tokens, fewer than one window of block_size+1 = "
            f"{cfg.block_size + 1}; give more text or a smaller block_size"
        )
    out = Path(out_dir)
    dev = resolve_device(device)
    model = build_model(cfg, seed).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    data_t = torch.from_numpy(stream)
    span = torch.arange(cfg.block_size + 1)
    n_windows = stream.size - cfg.block_size

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    def step_fn(_: None, state: Any) -> dict[str, torch.Tensor]:
        starts = torch.randint(0, n_windows, (batch_size,), generator=state.generator)  # the run's one stream
        win = data_t[starts.unsqueeze(1) + span].to(dev)  # (B, T+1)
        x, y = win[:, :-1], win[:, 1:]
        for g in opt.param_groups:
            g["lr"] = lr_at(state.step)
        logits = model(x)  # (B, T, V)
        return {"loss": F.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1))}

    def check_resume(path: Path, state: dict) -> None:
        if state.get("config") != dataclasses.asdict(cfg) or state.get("seed") != int(seed):
            raise ConfigError(f"{path}: was trained with another config or seed; pass resume=False or another out_dir")
        if int(state.get("stream_len", -1)) != int(stream.size):
            raise ConfigError(
                f"{path}: was trained on {state.get('stream_len')} tokens, this data has {stream.size}; "
                "pass the same data, resume=False, or another out_dir"
            )

    steplog = _StepLog(log_every, steps)
    t0 = time.perf_counter()
    state = Trainer(
        {"model": model},
        step_fn,
        optimizers={"optimizer": opt},
        data=None,
        steps=steps,
        seed=int(seed),
        generator=torch.Generator().manual_seed(int(seed)),  # draws the training windows; saved in checkpoints
        device=dev,
        grad_clip=1.0,
        callbacks=[steplog],
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=checkpoint_every,
        checkpoint_unit="step",
        keep_checkpoints=keep_checkpoints,
        resume=resume,
        kind=TRAIN_KIND,
        payload=lambda st: {"config": dataclasses.asdict(cfg), "seed": int(seed), "stream_len": int(stream.size)},
        check_resume=check_resume,
        progress=progress,
        description="training tiny GPT",
    ).fit()
    resumed_from = state.start_step if state.resumed_from is not None else None
    save_model(model, out / "model.pt")
    log, recent = steplog.log, steplog.recent
    atomic_write_json(
        out / "train_log.json",
        {
            "step_loss": log,
            "config": dataclasses.asdict(cfg),
            "seed": seed,
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "n_params": model.n_params(),
            "n_tokens": int(stream.size),
        },
    )
    final = float(np.mean(recent)) if recent else (float(log[-1][1]) if log else float("nan"))
    return TrainResult(out, steps, final, model.n_params(), int(stream.size), time.perf_counter() - t0, resumed_from)


class _StepLog:
    """Training-loop callback: the loss every `log_every` steps (and at the last) and of the last 20 steps;
    checkpointed with the run, so a resumed run reports what the uninterrupted one would."""

    def __init__(self, log_every: int, steps: int) -> None:
        self.log_every, self.steps = log_every, steps
        self.log: list[list] = []  # [step, loss] pairs
        self.recent: list[float] = []

    def on_step_end(self, state: Any, out: dict) -> None:
        loss = float(out["loss"].detach())
        self.recent = self.recent[-19:] + [loss]
        done = state.step  # steps finished, this one included
        if (done - 1) % self.log_every == 0 or done == self.steps:
            self.log.append([done, loss])

    def state_dict(self) -> dict[str, Any]:
        return {"log": self.log, "recent": self.recent}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.log, self.recent = [list(x) for x in state["log"]], list(state["recent"])


def build_model(cfg: TinyGPTConfig, seed: int) -> TinyGPT:
    """A freshly initialized TinyGPT; the seed fixes the weights and the global torch RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return TinyGPT(cfg)


def save_model(model: TinyGPT, path: str | os.PathLike) -> Path:
    """Write final weights, config and tokenizer as one checkpoint of kind "tinygpt"."""
    return save_checkpoint(
        path,
        {"config": dataclasses.asdict(model.cfg), "tokenizer": ByteTokenizer().to_dict(), "model": model.state_dict()},
        MODEL_KIND,
    )


def load_model(path: str | os.PathLike, device: str = "cpu") -> TinyGPT:
    """Read `model.pt` (or a training checkpoint) into an eval-mode TinyGPT; a checkpoint with the right stamp but
    wrong contents (missing or bogus config, wrong weights, a tokenizer of another kind) is a one-line ConfigError."""
    p = Path(path)
    try:
        state = load_checkpoint(p, MODEL_KIND, map_location=device)
    except ConfigError as exc:
        if "expected" not in str(exc):
            raise
        state = load_checkpoint(p, TRAIN_KIND, map_location=device)
    hint = "retrain it with `rote llm train-tiny` or pass the folder it wrote"
    if not isinstance(state, dict):
        raise ConfigError(f"{p}: not a tiny GPT checkpoint (holds a {type(state).__name__}); {hint}")
    tok = state.get("tokenizer", {"kind": "bytes"})
    if not isinstance(tok, dict) or tok.get("kind") != "bytes":
        kind = tok.get("kind") if isinstance(tok, dict) else type(tok).__name__
        raise ConfigError(f"{p}: unknown tokenizer {kind!r}; this rote reads byte-level tiny GPTs")
    cfg_raw = state.get("config")
    if not isinstance(cfg_raw, dict):
        raise ConfigError(f"{p}: the checkpoint holds no model config; {hint}")
    try:
        cfg = TinyGPTConfig(**cfg_raw)
        model = TinyGPT(cfg)
    except (TypeError, ValueError, ConfigError, RuntimeError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ConfigError(f"{p}: the checkpoint's model config is not valid ({first}); {hint}") from None
    modules = state.get("modules")
    weights = (
        state.get("model") if "model" in state else (modules or {}).get("model") if isinstance(modules, dict) else None
    )
    if not isinstance(weights, dict):
        raise ConfigError(f"{p}: the checkpoint holds no model weights; {hint}")
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{p}: the weights do not fit the checkpoint's config ({first}); {hint}") from None
    return model.to(device).eval()


# ---------------------------------------------------------------------------------------------- backend


class TinyGPTBackend(TorchLMBackend):
    """A trained tiny GPT behind the `Backend` interface (byte tokens, no special tokens, no EOS)."""

    def __init__(self, model: TinyGPT, *, name: str = "tinygpt", device: str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = ByteTokenizer()
        self.name = name
        self.tokenizer_fingerprint = self.tokenizer.fingerprint()
        self.vocab_size = model.cfg.vocab_size
        self.max_length = model.cfg.block_size
        self.pad_token_id = 0
        self.eos_token_id = None
        self.bos_token_id = None

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu", name: str | None = None) -> "TinyGPTBackend":
        """Open a training folder (its model.pt, else its newest checkpoint) or a checkpoint file."""
        p = Path(path).expanduser()
        if p.is_dir():
            f = p / "model.pt"
            if not f.is_file():
                f = latest_checkpoint(p / "checkpoints", prefix=CKPT_PREFIX) or f
            if not f.is_file():
                raise BackendError(
                    f"{p}: holds no tiny GPT (no model.pt, no checkpoints/); train one with "
                    "`rote llm train-tiny` or pass the folder it wrote"
                )
        elif p.is_file():
            f = p
        else:
            raise BackendError(f"tiny:{path}: no such folder or file; pass the folder `rote llm train-tiny` wrote")
        try:
            model = load_model(f, device)
        except ConfigError as exc:
            raise BackendError(str(exc)) from None
        return cls(model, name=name or f"tinygpt:{p.name}", device=device)

    def encode(self, texts: list[str]) -> list[list[int]]:
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise BackendError("encode: pass a list of strings")
        return [self.tokenizer.encode(t) for t in texts]

    def decode(self, ids: list[list[int]]) -> list[str]:
        return [self.tokenizer.decode([int(t) for t in s]) for s in ids]

    def _forward(self, input_ids, attention_mask, position_ids, cache, last_only):
        return self.model.step(input_ids, attention_mask, position_ids, cache, last_only)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "config": dataclasses.asdict(self.model.cfg), "n_params": self.model.n_params()}
