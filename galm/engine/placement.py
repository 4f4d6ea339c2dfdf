"""How a run executes on its device: input placement, memory layout and compilation.

None of these settings changes what is computed, only how fast: results agree with the plain
float32, contiguous, eager path up to float rounding (tests check the tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
from torch import nn

from galm.engine.inputs import INPUT_CACHES, InputCache

Switch = Literal["auto", "on", "off"]
SWITCHES = ("auto", "on", "off")
Module = TypeVar("Module", bound=nn.Module)


@dataclass(frozen=True)
class ExecutionConfig:
    """Device-side speed settings for search and retraining."""

    # Where the uint8 images live: 'device' copies the whole domain to the device once, 'stream' reads
    # each batch from the memory-mapped cache, 'auto' caches on a GPU when the domain fits easily.
    input_cache: InputCache = "auto"
    # NHWC conv weights ('auto': on CUDA, where cuDNN's NHWC kernels are faster). Input batches are
    # NHWC in memory already: they are gathered as (B, H, W, 3) and permuted, not copied.
    channels_last: Switch = "auto"
    # torch.compile the shared trunk (search) and the fixed network (retraining).
    compile: bool = False
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        if self.input_cache not in INPUT_CACHES:
            raise ValueError(f"execution.input_cache must be one of {INPUT_CACHES}, got {self.input_cache!r}")
        if self.channels_last not in SWITCHES:
            raise ValueError(f"execution.channels_last must be one of {SWITCHES}, got {self.channels_last!r}")

    def uses_channels_last(self, device: torch.device) -> bool:
        if self.channels_last == "auto":
            return device.type == "cuda"
        return self.channels_last == "on"


def place_module(module: Module, config: ExecutionConfig, device: torch.device) -> Module:
    """Move `module` to `device`, with its 4-d (conv) weights in NHWC memory when configured.

    Stacked per-attribute head weights are 5-d and are sliced per step; they stay as they are.
    """
    module.to(device)
    if config.uses_channels_last(device):
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
