"""Numeric precision of the search: float32, or bf16 autocast where the hardware multiplies bf16 fast."""

from __future__ import annotations

import contextlib
from typing import ContextManager, Literal

import torch

from galm.config.schema import Precision


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix units (AMX tiles or AVX512-BF16); elsewhere bf16 is emulated
    and much slower than float32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_precision(precision: Precision, device: torch.device) -> Literal["float32", "bf16"]:
    """'auto' picks bf16 on GPUs that support it and on CPUs with native bf16 units, else float32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "float32"
    return "bf16" if cpu_has_fast_bf16() else "float32"


def autocast(precision: Literal["float32", "bf16"], device: torch.device) -> ContextManager[object]:
    """bf16 autocast for the forward passes (weights, optimiser state and losses stay float32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
