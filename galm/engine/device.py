"""Which torch device a run uses (its CPU threads: :mod:`galm.engine.threads`)."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available, else the CPU; other names must exist on this machine.

    A ValueError naming the ``device`` setting says what is missing, so a command can resolve its
    device before it creates a run directory.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device: {name!r} is not a torch device (use auto, cpu, cuda, cuda:N or mps)") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {name!r} was requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device: {name!r} was requested but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {name!r} was requested but MPS is not available on this machine")
    return device
