"""The shared trunk (Conv-1..3 of Table 1) and the conv block every layer of the space uses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from galm.config.schema import SpaceConfig
from galm.nn.batch_norm import BatchNorm2d


class ConvBlock(nn.Module):
    """conv -> ReLU -> 2x2 max-pool (stride 2) -> BatchNorm, as the paper orders them."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)
        self.bn = BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.max_pool2d(F.relu(self.conv(x)), 2))


@dataclass
class TrunkFeatures:
    """Outputs of the shared layers, the inputs (and skip sources) of every head."""

    conv1: torch.Tensor
    conv2: torch.Tensor
    conv3: torch.Tensor

    def layer(self, name: str) -> torch.Tensor:
        return {"conv1": self.conv1, "conv2": self.conv2, "conv3": self.conv3}[name]


def pool_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Max-pool a skip source down to the consuming layer's resolution."""
    factor = x.shape[-1] // size
    if factor * size != x.shape[-1]:
        raise ValueError(f"cannot pool a {x.shape[-1]}-pixel map to {size} pixels")
    return x if factor == 1 else F.max_pool2d(x, factor)


class Trunk(nn.Module):
    """Conv-1 (7x7/16), Conv-2 (3x3/32), Conv-3 (3x3/64) shared by all attributes."""

    def __init__(self, space: SpaceConfig) -> None:
        super().__init__()
        c1, c2, c3 = space.trunk_channels
        k1, k2, k3 = space.trunk_kernels
        self.conv1 = ConvBlock(space.in_channels, c1, k1)
        self.conv2 = ConvBlock(c1, c2, k2)
        self.conv3 = ConvBlock(c2, c3, k3)

    def forward(self, images: torch.Tensor) -> TrunkFeatures:
        f1 = self.conv1(images)
        f2 = self.conv2(f1)
        f3 = self.conv3(f2)
        return TrunkFeatures(f1, f2, f3)
