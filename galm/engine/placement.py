"""How a run executes on its device: input placement, memory layout and compilation.

None of these settings changes what is computed, only how fast: results agree with the plain
float32, contiguous, eager path up to float rounding (tests check the tolerance).
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

from galm.config.schema import ExecutionConfig

Module = TypeVar("Module", bound=nn.Module)


def uses_channels_last(config: ExecutionConfig, device: torch.device) -> bool:
    """Whether conv weights go NHWC on `device` ('auto': on CUDA, where cuDNN's NHWC kernels are faster)."""
    if config.channels_last == "auto":
        return device.type == "cuda"
    return config.channels_last == "on"


def place_module(module: Module, config: ExecutionConfig, device: torch.device) -> Module:
    """Move `module` to `device`, with its 4-d (conv) weights in NHWC memory when configured.

    Stacked per-attribute head weights are 5-d and are sliced per step; they stay as they are.
    """
    module.to(device)
    if uses_channels_last(config, device):
        with torch.no_grad():
            for param in module.parameters():
                if param.dim() == 4:
                    param.data = param.data.contiguous(memory_format=torch.channels_last)
    return module


def compile_module(module: Module, config: ExecutionConfig) -> Module:
    """torch.compile `module` in place when configured; `nn.Module.compile` keeps the parameter
    names, so checkpoints stay interchangeable with eager runs."""
    if config.compile:
        module.compile(backend=config.compile_backend)
    return module
