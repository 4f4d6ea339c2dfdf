"""The weight-sharing supernet Ω: the shared trunk plus one head per attribute holding every candidate.

ENAS-style sharing: a head's Conv-4 and Conv-5 keep one weight block per (kernel, input source),
so a skip connection selects a block and an architecture selects blocks, never copies; Fc widths
share the leading rows of one matrix of the widest size. Many attributes' heads run as batched
tensor operations: Conv-4 of all attributes with the same kernel is one convolution with their
output channels stacked (a convolution over concatenated inputs is the sum of convolutions over
each input block, so each skip source adds one convolution over just the attributes that chose
it); Conv-5 is a grouped convolution; Fc layers are batched matrix products grouped by widths.
The per-attribute path (:meth:`SharedHeads.forward_one`) is the paper-faithful reference.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Hashable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from galm.config.schema import HeadMode, SpaceConfig
from galm.nn.batch_norm import SharedStatistics, normalise_one, unbiased
from galm.nn.trunk import Trunk, TrunkFeatures, pool_to
from galm.space.search_space import (
    CONV4_SKIP_SOURCES,
    CONV5_SKIP_SOURCES,
    FC3_INPUTS,
    Architecture,
)


def _group(keys: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    """Positions of equal keys, in first-seen order (deterministic)."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for position, key in enumerate(keys):
        groups[key].append(position)
    return dict(groups)


def _conv_init(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
    """He-uniform initialisation for a stack of per-attribute conv or linear weights."""
    bound = math.sqrt(6.0 / fan_in)
    return torch.empty(shape).uniform_(-bound, bound)


class _HeadBatchNorm(SharedStatistics, nn.Module):
    """BatchNorm parameters and running statistics for one layer of every attribute's head."""

    def __init__(self, n_attributes: int, channels: int, momentum: float, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(n_attributes, channels))
        self.bias = nn.Parameter(torch.zeros(n_attributes, channels))
        self.register_buffer("running_mean", torch.zeros(n_attributes, channels))
        self.register_buffer("running_var", torch.ones(n_attributes, channels))
        # In eval mode, normalise with the batch's own statistics (without updating the running ones):
        # a candidate's statistics differ from the running mix of every architecture trained so far.
        self.batch_statistics = False

    def forward_batched(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Normalise x of shape (B, g, C, H, W), one attribute per g, updating their statistics."""
        if self.training or self.batch_statistics:
            shared = self.moments(x, (0, 3, 4)) if self.moments is not None else None
            if shared is None:
                mean = x.mean(dim=(0, 3, 4))
                var = x.var(dim=(0, 3, 4), unbiased=False)
                n = x.shape[0] * x.shape[3] * x.shape[4]
            else:  # rounded to x's precision, as x.mean and x.var above give them
                mean, var, n = shared[0].to(x.dtype), shared[1].to(x.dtype), shared[2]
        if self.training:
            with torch.no_grad():
                m = self.momentum
                self.running_mean.index_copy_(0, ids, (1 - m) * self.running_mean[ids] + m * mean)
                self.running_var.index_copy_(0, ids, (1 - m) * self.running_var[ids] + m * unbiased(var, n))
        elif not self.batch_statistics:
            mean, var = self.running_mean[ids], self.running_var[ids]
        scale = self.weight[ids] * torch.rsqrt(var + self.eps)
        shift = self.bias[ids] - mean * scale
        return x * scale[None, :, :, None, None] + shift[None, :, :, None, None]

    def forward_one(self, x: torch.Tensor, attribute: int) -> torch.Tensor:
        """Normalise x of shape (B, C, H, W) for one attribute with PyTorch's own batch_norm."""
        frozen_batch = self.batch_statistics and not self.training
        shared = self.moments(x, (0, 2, 3)) if self.moments is not None and (self.training or frozen_batch) else None
        if shared is not None:
            mean, var, n = shared
            if self.training:
                with torch.no_grad():
                    m = self.momentum
                    self.running_mean[attribute].mul_(1 - m).add_(m * mean.detach())
                    self.running_var[attribute].mul_(1 - m).add_(m * unbiased(var.detach(), n))
            return normalise_one(x, mean, var, self.weight[attribute], self.bias[attribute], self.eps).to(x.dtype)
        return F.batch_norm(
            x,
            None if frozen_batch else self.running_mean[attribute],
            None if frozen_batch else self.running_var[attribute],
            self.weight[attribute],
            self.bias[attribute],
            training=self.training or frozen_batch,
            momentum=self.momentum,
            eps=self.eps,
        )


class _SharedConv(nn.Module):
    """One searched conv layer of every head: a weight block per (kernel, input source)."""

    def __init__(
        self,
        n_attributes: int,
        sources: dict[str, int],
        out_channels: int,
        kernels: Sequence[int],
        bn_momentum: float,
    ) -> None:
        super().__init__()
        self.sources = dict(sources)
        self.out_channels = out_channels
        self.kernels = tuple(kernels)
        fan_in_scale = sum(sources.values())
        self.weight = nn.ParameterDict()
        self.bias = nn.ParameterDict()
        self.bn = nn.ModuleDict()
        for k in self.kernels:
            for source, channels in sources.items():
                shape = (n_attributes, out_channels, channels, k, k)
                self.weight[f"k{k}_{source}"] = nn.Parameter(_conv_init(shape, fan_in_scale * k * k))
            self.bias[f"k{k}"] = nn.Parameter(torch.zeros(n_attributes, out_channels))
            self.bn[f"k{k}"] = _HeadBatchNorm(n_attributes, out_channels, bn_momentum)

    def block(self, kernel: int, source: str) -> nn.Parameter:
        return self.weight[f"k{kernel}_{source}"]

    def forward_one(
        self, inputs: dict[str, torch.Tensor], attribute: int, kernel: int, sources: Sequence[str]
    ) -> torch.Tensor:
        """Reference path: concatenate the chosen inputs and their weight blocks, one convolution."""
        x = torch.cat([inputs[s] for s in sources], dim=1)
        w = torch.cat([self.block(kernel, s)[attribute] for s in sources], dim=1)
        y = F.conv2d(x, w, self.bias[f"k{kernel}"][attribute], padding=kernel // 2)
        y = F.max_pool2d(F.relu(y), 2)
        return self.bn[f"k{kernel}"].forward_one(y, attribute)

    def forward_group(
        self,
        main: torch.Tensor,
        shared_inputs: dict[str, torch.Tensor],
        ids: torch.Tensor,
        kernel: int,
        main_source: str,
        skip_choices: Sequence[Sequence[str]],
        main_is_per_attribute: bool,
    ) -> torch.Tensor:
        """Batched path for g attributes that chose `kernel`; returns (B, g, C_out, H/2, W/2).

        `main` is either one tensor shared by all attributes (B, C, H, W) or, for Conv-5, each
        attribute's own Conv-4 output stacked as (B, g*C, H, W) and convolved group-wise.
        """
        g, c_out, pad = ids.numel(), self.out_channels, kernel // 2
        w_main = self.block(kernel, main_source)[ids]
        w_main = w_main.reshape(g * c_out, *w_main.shape[2:])
        bias = self.bias[f"k{kernel}"][ids].reshape(-1)
        y = F.conv2d(main, w_main, bias, padding=pad, groups=g if main_is_per_attribute else 1)
        batch, _, h, w = y.shape
        y = y.view(batch, g, c_out, h, w)
        for source, x in shared_inputs.items():
            chosen = [j for j, skips in enumerate(skip_choices) if source in skips]
            if not chosen:
                continue
            rows = torch.tensor(chosen, dtype=torch.long, device=ids.device)
            w_skip = self.block(kernel, source)[ids[rows]]
            w_skip = w_skip.reshape(len(chosen) * c_out, *w_skip.shape[2:])
            extra = F.conv2d(x, w_skip, padding=pad).view(batch, len(chosen), c_out, h, w)
            y = y.index_add(1, rows, extra)
        y = F.max_pool2d(F.relu(y.view(batch, g * c_out, h, w)), 2)
        y = y.view(batch, g, c_out, h // 2, w // 2)
        return self.bn[f"k{kernel}"].forward_batched(y, ids)


class SharedHeads(nn.Module):
    """Every attribute's head with all candidates of Table 1 (Conv-4, Conv-5, Fc-1..3)."""

    def __init__(self, n_attributes: int, space: SpaceConfig, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.n_attributes = n_attributes
        self.space = space
        channels = {layer: space.channels_of(layer) for layer in ("conv1", "conv2", "conv3", "conv4")}
        conv4_sources = {"conv3": channels["conv3"], **{s: channels[s] for s in CONV4_SKIP_SOURCES}}
        conv5_sources = {"conv4": channels["conv4"], **{s: channels[s] for s in CONV5_SKIP_SOURCES}}
        self.conv4 = _SharedConv(n_attributes, conv4_sources, space.conv4_channels, space.conv4_kernels, bn_momentum)
        self.conv5 = _SharedConv(n_attributes, conv5_sources, space.conv5_channels, space.conv5_kernels, bn_momentum)
        width, features = space.max_width, space.flat_features
        self.fc1_weight = nn.Parameter(_conv_init((n_attributes, width, features), features))
        self.fc1_bias = nn.Parameter(torch.zeros(n_attributes, width))
        self.fc2_weight = nn.Parameter(_conv_init((n_attributes, width, width), width))
        self.fc2_bias = nn.Parameter(torch.zeros(n_attributes, width))
        self.fc3_weight = nn.ParameterDict(
            {src: nn.Parameter(_conv_init((n_attributes, width), width) / math.sqrt(2)) for src in FC3_INPUTS}
        )
        self.fc3_bias = nn.ParameterDict({src: nn.Parameter(torch.zeros(n_attributes)) for src in FC3_INPUTS})

    # ----------------------------------------------------------------- shared inputs
    def _skip_inputs(self, features: TrunkFeatures) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Trunk outputs pooled once to Conv-4's and Conv-5's input resolutions."""
        r4_in = self.space.resolution_after("conv3")
        r5_in = self.space.resolution_after("conv4")
        conv4_inputs = {s: pool_to(features.layer(s), r4_in) for s in CONV4_SKIP_SOURCES}
        conv5_inputs = {s: pool_to(features.layer(s), r5_in) for s in CONV5_SKIP_SOURCES}
        return conv4_inputs, conv5_inputs

    # ----------------------------------------------------------------- reference path
    def forward_one(self, features: TrunkFeatures, attribute: int, arch: Architecture) -> torch.Tensor:
        """Logits (B,) of one attribute's head: the paper-faithful, one-attribute path."""
        conv4_inputs, conv5_inputs = self._skip_inputs(features)
        x4 = self.conv4.forward_one(
            {"conv3": features.conv3, **conv4_inputs}, attribute, arch.conv4_kernel, ("conv3", *arch.conv4_skips)
        )
        x5 = self.conv5.forward_one(
            {"conv4": x4, **conv5_inputs}, attribute, arch.conv5_kernel, ("conv4", *arch.conv5_skips)
        )
        w1, w2 = arch.fc1_width, arch.fc2_width
        h = F.relu(F.linear(x5.flatten(1), self.fc1_weight[attribute, :w1], self.fc1_bias[attribute, :w1]))
        if arch.uses_fc2:
            h = F.relu(F.linear(h, self.fc2_weight[attribute, :w2, :w1], self.fc2_bias[attribute, :w2]))
        width = h.shape[1]
        src = arch.fc3_input
        return h @ self.fc3_weight[src][attribute, :width] + self.fc3_bias[src][attribute]

    # ----------------------------------------------------------------- batched path
    def forward(
        self, features: TrunkFeatures, attribute_ids: torch.Tensor, archs: Sequence[Architecture]
    ) -> torch.Tensor:
        """Logits (B, m) of m distinct attributes' heads, run as batched operations."""
        m = len(archs)
        conv4_inputs, conv5_inputs = self._skip_inputs(features)
        x4 = self._conv_layer(
            self.conv4, features.conv3, conv4_inputs, attribute_ids, archs, "conv3", per_attribute_main=False
        )
        x5 = self._conv_layer(
            self.conv5, x4, conv5_inputs, attribute_ids, archs, "conv4", per_attribute_main=True
        )
        flat = x5.flatten(2)  # (B, m, F)
        keys = [(a.fc1_width, a.fc2_width if a.uses_fc2 else 0, a.fc3_input) for a in archs]
        parts, order = [], []
        for (w1, w2, src), positions in _group(keys).items():
            rows = torch.tensor(positions, dtype=torch.long, device=attribute_ids.device)
            ids = attribute_ids[rows]
            h = flat[:, rows].transpose(0, 1)  # (g, B, F)
            h = F.relu(torch.baddbmm(self.fc1_bias[ids, None, :w1], h, self.fc1_weight[ids, :w1].transpose(1, 2)))
            if w2:
                w2_t = self.fc2_weight[ids, :w2, :w1].transpose(1, 2)
                h = F.relu(torch.baddbmm(self.fc2_bias[ids, None, :w2], h, w2_t))
            width = h.shape[-1]
            out = (h * self.fc3_weight[src][ids, None, :width]).sum(-1) + self.fc3_bias[src][ids, None]
            parts.append(out.transpose(0, 1))
            order.extend(positions)
        logits = torch.cat(parts, dim=1)
        inverse = torch.empty(m, dtype=torch.long, device=logits.device)
        inverse[torch.tensor(order, device=logits.device)] = torch.arange(m, device=logits.device)
        return logits[:, inverse]

    def _conv_layer(
        self,
        layer: _SharedConv,
        main: torch.Tensor,
        shared_inputs: dict[str, torch.Tensor],
        attribute_ids: torch.Tensor,
        archs: Sequence[Architecture],
        main_source: str,
        per_attribute_main: bool,
    ) -> torch.Tensor:
        """One searched conv layer for m attributes grouped by kernel; returns (B, m, C, H, W).

        `main` is the input every attribute shares (B, C, H, W) or, when `per_attribute_main`,
        each attribute's own input stacked as (B, m, C, H, W).
        """
        is_conv4 = main_source == "conv3"
        kernels = [a.conv4_kernel if is_conv4 else a.conv5_kernel for a in archs]
        parts, order = [], []
        for kernel, positions in _group(kernels).items():
            rows = torch.tensor(positions, dtype=torch.long, device=attribute_ids.device)
            group_main = main[:, rows].flatten(1, 2) if per_attribute_main else main
            skips = [(archs[p].conv4_skips if is_conv4 else archs[p].conv5_skips) for p in positions]
            parts.append(
                layer.forward_group(
                    group_main, shared_inputs, attribute_ids[rows], kernel, main_source, skips, per_attribute_main
                )
            )
            order.extend(positions)
        out = torch.cat(parts, dim=1)
        if order == sorted(order):
            return out
        inverse = torch.empty(len(order), dtype=torch.long, device=out.device)
        inverse[torch.tensor(order, device=out.device)] = torch.arange(len(order), device=out.device)
        return out[:, inverse]


class Supernet(nn.Module):
    """Shared trunk + weight-sharing heads; one trunk pass serves every sampled head of a step."""

    def use_batch_statistics(self, enabled: bool) -> None:
        """In eval mode, let the heads' BatchNorm use each batch's statistics (the trunk keeps its
        running ones): how a search can score a candidate whose statistics the running mix lacks."""
        for module in self.heads.modules():
            if isinstance(module, _HeadBatchNorm):
                module.batch_statistics = enabled

    def __init__(
        self,
        n_attributes: int,
        space: SpaceConfig | None = None,
        head_mode: HeadMode = "batched",
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if head_mode not in ("batched", "per_attribute"):
            raise ValueError(f"head_mode must be 'batched' or 'per_attribute', got {head_mode!r}")
        self.space = space or SpaceConfig()
        self.head_mode: HeadMode = head_mode
        self.trunk = Trunk(self.space)
        self.heads = SharedHeads(n_attributes, self.space, bn_momentum)

    @property
    def n_attributes(self) -> int:
        return self.heads.n_attributes

    def forward(
        self, images: torch.Tensor, attribute_ids: Sequence[int] | torch.Tensor, archs: Sequence[Architecture]
    ) -> torch.Tensor:
        """Logits (B, m) for the given (attribute, architecture) pairs on one batch of images."""
        ids = torch.as_tensor(attribute_ids, dtype=torch.long, device=images.device).reshape(-1)
        if ids.numel() != len(archs):
            raise ValueError(f"{ids.numel()} attribute ids but {len(archs)} architectures")
        if ids.numel() == 0:
            raise ValueError("at least one (attribute, architecture) pair is needed")
        if torch.unique(ids).numel() != ids.numel():
            raise ValueError("attribute ids of one step must be distinct")
        if int(ids.min()) < 0 or int(ids.max()) >= self.n_attributes:
            raise ValueError(f"attribute ids must lie in [0, {self.n_attributes}), got {ids.tolist()}")
        features = self.trunk(images)
        if self.head_mode == "per_attribute":
            return torch.stack(
                [self.heads.forward_one(features, int(a), arch) for a, arch in zip(ids.tolist(), archs)], dim=1
            )
        return self.heads(features, ids, archs)
