"""Process set-up for a run: which device, how many CPU threads."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available, else the CPU; other names are passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available on this machine")
    return device


def configure_threads(threads: int) -> None:
    """Set torch's CPU thread count (0 leaves torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


