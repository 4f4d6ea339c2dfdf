"""BatchNorm whose batch statistics may span every process's shard of one minibatch (data-parallel runs).

A layer given a `moments` function (by :func:`share_batch_statistics`) asks it for the mean and
variance of its input; the function returns those of the whole global minibatch, or None when the
layer should use its own batch as PyTorch does (always, in a single process). The models stay free
of any process-group logic: the function comes from :mod:`galm.engine.distributed`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

# (x, dims) -> (mean, biased variance over dims, both float32; values per statistic), or None: use
# x's own batch.
BatchMoments = Callable[[torch.Tensor, tuple[int, ...]], tuple[torch.Tensor, torch.Tensor, int] | None]


class SharedStatistics:
    """A BatchNorm layer that can normalise with moments computed elsewhere (see module docstring)."""

    moments: BatchMoments | None = None


def share_batch_statistics(module: nn.Module, moments: BatchMoments | None) -> None:
    """Give every BatchNorm layer of `module` the `moments` function (None: each its own batch)."""
    for layer in module.modules():
        if isinstance(layer, SharedStatistics):
            layer.moments = moments


def unbiased(var: torch.Tensor, n: int) -> torch.Tensor:
    """The unbiased variance the running statistics keep, from a biased one over `n` values."""
    return var * (n / max(n - 1, 1))


class BatchNorm2d(SharedStatistics, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters and buffers) that can train on shared moments."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.moments(x, (0, 2, 3)) if self.moments is not None and self.training else None
        if shared is None:
            return super().forward(x)
        mean, var, n = shared
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - factor).add_(factor * mean.detach())
                self.running_var.mul_(1 - factor).add_(factor * unbiased(var.detach(), n))
        weight = self.weight if self.affine else torch.ones_like(mean)
        bias = self.bias if self.affine else torch.zeros_like(mean)
        return normalise_one(x, mean, var, weight, bias, self.eps).to(x.dtype)  # as batch_norm under autocast


def normalise_one(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor, eps: float) -> torch.Tensor:
    """(B, C, H, W) normalised with given per-channel moments, then scaled and shifted."""
    scale = weight * torch.rsqrt(var + eps)
    return x * scale[None, :, None, None] + (bias - mean * scale)[None, :, None, None]

