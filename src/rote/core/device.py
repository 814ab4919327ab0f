"""Torch device selection, one place for every domain: `--device cpu|cuda|cuda:N|mps`."""

from __future__ import annotations

import torch

from rote.core.errors import BackendError, ConfigError


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch.device from a name, with a clear error when it is not a device name or names an accelerator this
    machine does not have (rote never falls back silently: a run asked for a GPU should not quietly take hours)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"`device` {device}: not a torch device name; use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendError(f"`device` {device}: no CUDA GPU is available on this machine; use `device` cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendError(
                f"`device` {device}: only {torch.cuda.device_count()} GPU(s) here; use cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1}"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BackendError(f"`device` {device}: MPS is not available on this machine; use `device` cpu")
    return dev
