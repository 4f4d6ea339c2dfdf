"""The fixed multi-attribute network: the shared trunk plus, per attribute, only its chosen ops.

This is the model that is retrained from scratch, evaluated and exported. It is a different
class from the supernet (as in DARTS): plain ``nn.Conv2d``/``nn.Linear`` layers sized for the
chosen architecture, no candidates, no masks.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from galm.config.schema import SpaceConfig
from galm.nn.supernet import Supernet
from galm.nn.trunk import ConvBlock, Trunk, TrunkFeatures, pool_to
from galm.space.search_space import Architecture


class AttributeHead(nn.Module):
    """Conv-4, Conv-5, Fc-1, optional Fc-2 and Fc-3 of one attribute, as chosen.

    ``outputs`` > 1 makes Fc-3 score several attributes at once (a head shared by a group, as the
    multi-task baselines use); ``forward`` then returns (B, outputs) instead of (B,).
    """

    def __init__(self, arch: Architecture, space: SpaceConfig, outputs: int = 1) -> None:
        super().__init__()
        self.arch = arch
        self.space = space
        self.outputs = outputs
        c4_in = space.channels_of("conv3") + sum(space.channels_of(s) for s in arch.conv4_skips)
        c5_in = space.conv4_channels + sum(space.channels_of(s) for s in arch.conv5_skips)
        self.conv4 = ConvBlock(c4_in, space.conv4_channels, arch.conv4_kernel)
        self.conv5 = ConvBlock(c5_in, space.conv5_channels, arch.conv5_kernel)
        self.fc1 = nn.Linear(space.flat_features, arch.fc1_width)
        self.fc2 = nn.Linear(arch.fc1_width, arch.fc2_width) if arch.uses_fc2 else None
        self.fc3 = nn.Linear(arch.fc2_width if arch.uses_fc2 else arch.fc1_width, outputs)

    def forward(self, features: TrunkFeatures) -> torch.Tensor:
        r4_in = self.space.resolution_after("conv3")
        r5_in = self.space.resolution_after("conv4")
        x = torch.cat([features.conv3, *(pool_to(features.layer(s), r4_in) for s in self.arch.conv4_skips)], 1)
        x = self.conv4(x)
        x = torch.cat([x, *(pool_to(features.layer(s), r5_in) for s in self.arch.conv5_skips)], 1)
        h = F.relu(self.fc1(self.conv5(x).flatten(1)))
        if self.fc2 is not None:
            h = F.relu(self.fc2(h))
        logits = self.fc3(h)
        return logits.squeeze(1) if self.outputs == 1 else logits


class FixedNetwork(nn.Module):
    """Trunk + one chosen head per attribute; ``forward`` returns logits (B, n_attributes)."""

    def __init__(
        self, architectures: Sequence[Architecture], space: SpaceConfig | None = None
    ) -> None:
        super().__init__()
        if not architectures:
            raise ValueError("a fixed network needs at least one attribute architecture")
        self.space = space or SpaceConfig()
        self.architectures = tuple(architectures)
        self.trunk = Trunk(self.space)
        self.heads = nn.ModuleList(AttributeHead(arch, self.space) for arch in self.architectures)

    @property
    def n_attributes(self) -> int:
        return len(self.heads)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.trunk(images)
        return torch.stack([head(features) for head in self.heads], dim=1)

    @torch.no_grad()
    def load_from_supernet(self, supernet: Supernet, attribute_ids: Sequence[int]) -> None:
        """Copy the shared weights of each attribute's chosen ops (fine-tuning from the search)."""
        if len(attribute_ids) != self.n_attributes:
            raise ValueError(f"{len(attribute_ids)} attribute ids for {self.n_attributes} heads")
        self.trunk.load_state_dict(supernet.trunk.state_dict())
        shared = supernet.heads
        for head, a in zip(self.heads, attribute_ids):
            arch = head.arch
            for block, layer, kernel, main, skips in (
                (head.conv4, shared.conv4, arch.conv4_kernel, "conv3", arch.conv4_skips),
                (head.conv5, shared.conv5, arch.conv5_kernel, "conv4", arch.conv5_skips),
            ):
                block.conv.weight.copy_(torch.cat([layer.block(kernel, s)[a] for s in (main, *skips)], 1))
                block.conv.bias.copy_(layer.bias[f"k{kernel}"][a])
                bn = layer.bn[f"k{kernel}"]
                block.bn.weight.copy_(bn.weight[a])
                block.bn.bias.copy_(bn.bias[a])
                block.bn.running_mean.copy_(bn.running_mean[a])
                block.bn.running_var.copy_(bn.running_var[a])
            w1, w2 = arch.fc1_width, arch.fc2_width
            head.fc1.weight.copy_(shared.fc1_weight[a, :w1])
            head.fc1.bias.copy_(shared.fc1_bias[a, :w1])
            if head.fc2 is not None:
                head.fc2.weight.copy_(shared.fc2_weight[a, :w2, :w1])
                head.fc2.bias.copy_(shared.fc2_bias[a, :w2])
            width = head.fc3.in_features
            head.fc3.weight.copy_(shared.fc3_weight[arch.fc3_input][a, :width][None])
            head.fc3.bias.copy_(shared.fc3_bias[arch.fc3_input][a][None])

