"""FMT's branching network: the Table-1 layer stack (Conv-1..5, Fc-1, optional Fc-2) as a tree in
which each layer's branches serve disjoint groups of attributes, refined from bottom to top.

A :class:`BranchTree` is the plain structure (which attributes each branch of each layer serves);
a :class:`BranchingNetwork` is its model, with one copy of the layer per branch and one output
unit per attribute on top of its branch. Widening (:meth:`BranchingNetwork.widened`) splits one
branch into several, every new branch starting as a copy of the one it came from (Lu et al.).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from galm.config.schema import SpaceConfig
from galm.nn.trunk import ConvBlock, pool_to
from galm.space.search_space import Architecture

CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the stack: its size, skip inputs and the 2x2 poolings at or above it."""

    name: str
    in_features: int  # input channels of a conv layer (skips included), input width of an fc layer
    out_features: int
    kernel: int = 0  # 0 for a fully connected layer
    skips: tuple[str, ...] = ()
    poolings_above: int = 0  # p_l of the complexity cost: splitting lower layers costs more

    @property
    def is_conv(self) -> bool:
        return self.kernel > 0


def layer_stack(space: SpaceConfig, arch: Architecture) -> tuple[LayerSpec, ...]:
    """The trunk of `space` and the layers of head `arch` (bottom to top), without the output layer.

    Every conv block pools once after its convolution, so conv layer k has ``6 - k`` poolings at or
    above its weights; the fully connected layers have none.
    """
    c1, c2, c3 = space.trunk_channels
    k1, k2, k3 = space.trunk_kernels
    c4_in = c3 + sum(space.channels_of(s) for s in arch.conv4_skips)
    c5_in = space.conv4_channels + sum(space.channels_of(s) for s in arch.conv5_skips)
    layers = [
        LayerSpec("conv1", space.in_channels, c1, k1, poolings_above=5),
        LayerSpec("conv2", c1, c2, k2, poolings_above=4),
        LayerSpec("conv3", c2, c3, k3, poolings_above=3),
        LayerSpec("conv4", c4_in, space.conv4_channels, arch.conv4_kernel, arch.conv4_skips, 2),
        LayerSpec("conv5", c5_in, space.conv5_channels, arch.conv5_kernel, arch.conv5_skips, 1),
        LayerSpec("fc1", space.flat_features, arch.fc1_width),
    ]
    if arch.uses_fc2:
        layers.append(LayerSpec("fc2", arch.fc1_width, arch.fc2_width))
    return tuple(layers)


@dataclass(frozen=True)
class BranchTree:
    """Per layer (bottom to top), the attribute groups its branches serve.

    Each layer's groups partition the attributes, and every group is contained in one group of the
    layer below (branches only split going up), so each branch has one parent.
    """

    n_tasks: int
    groups: tuple[tuple[tuple[int, ...], ...], ...]

    def __post_init__(self) -> None:
        everything = list(range(self.n_tasks))
        for layer, groups in enumerate(self.groups):
            members = sorted(t for group in groups for t in group)
            if members != everything or any(not group for group in groups):
                raise ValueError(f"layer {layer}: branches must partition the {self.n_tasks} attributes, got {groups}")
            if layer and any(len({self.branch_of(layer - 1, t) for t in group}) != 1 for group in groups):
                raise ValueError(f"layer {layer}: a branch spans two branches of the layer below: {groups}")

    @classmethod
    def thin(cls, n_layers: int, n_tasks: int) -> BranchTree:
        """Every layer one branch shared by all attributes (FMT's starting point)."""
        if n_tasks < 1 or n_layers < 1:
            raise ValueError("a branch tree needs at least one layer and one attribute")
        return cls(n_tasks, tuple((tuple(range(n_tasks)),) for _ in range(n_layers)))

    @property
    def n_layers(self) -> int:
        return len(self.groups)

    def branch_of(self, layer: int, task: int) -> int:
        """Index of the branch of `layer` that serves attribute `task`."""
        for index, group in enumerate(self.groups[layer]):
            if task in group:
                return index
        raise ValueError(f"attribute {task} has no branch at layer {layer}")

    def parent(self, layer: int, branch: int) -> int:
        """The branch of the layer below that feeds `branch` of `layer` (layer > 0)."""
        return self.branch_of(layer - 1, self.groups[layer][branch][0])

    def children(self, layer: int, branch: int) -> list[tuple[int, ...]]:
        """What `branch` of `layer` feeds: the groups of its branches in the layer above, or its
        attributes one by one (their output units) when `layer` is the top one."""
        mine = set(self.groups[layer][branch])
        if layer + 1 == self.n_layers:
            return [(t,) for t in sorted(mine)]
        return [group for group in self.groups[layer + 1] if group[0] in mine]

    def split(self, layer: int, branch: int, clusters: Sequence[Sequence[int]]) -> BranchTree:
        """The tree with `branch` of `layer` replaced by one branch per cluster of its children
        (indices into :meth:`children`)."""
        children = self.children(layer, branch)
        flat = sorted(i for cluster in clusters for i in cluster)
        if flat != list(range(len(children))) or any(not cluster for cluster in clusters):
            raise ValueError(f"clusters {clusters} must partition the {len(children)} children of the branch")
        new = [tuple(sorted(t for i in cluster for t in children[i])) for cluster in clusters]
        groups = list(self.groups)
        row = list(groups[layer])
        groups[layer] = tuple(row[:branch] + sorted(new) + row[branch + 1:])
        return BranchTree(self.n_tasks, tuple(groups))

    def n_branches(self) -> int:
        return sum(len(groups) for groups in self.groups)

    def to_json(self, layer_names: Sequence[str], task_names: Sequence[str]) -> dict[str, Any]:
        """Layer name -> the attribute names of each branch."""
        return {name: [[task_names[t] for t in group] for group in groups]
                for name, groups in zip(layer_names, self.groups)}


def _layer_module(spec: LayerSpec) -> nn.Module:
    if spec.is_conv:
        return ConvBlock(spec.in_features, spec.out_features, spec.kernel)
    return nn.Sequential(nn.Linear(spec.in_features, spec.out_features), nn.ReLU())


class BranchingNetwork(nn.Module):
    """The model of a :class:`BranchTree`: images -> logits (B, n_tasks)."""

    def __init__(self, tree: BranchTree, space: SpaceConfig, arch: Architecture) -> None:
        super().__init__()
        self.specs = layer_stack(space, arch)
        if tree.n_layers != len(self.specs):
            raise ValueError(f"the tree has {tree.n_layers} layers, the stack of {arch} has {len(self.specs)}")
        self.tree = tree
        self.space = space
        self.arch = arch
        self.layers = nn.ModuleList(
            nn.ModuleList(_layer_module(spec) for _ in groups) for spec, groups in zip(self.specs, tree.groups))
        self.outputs = nn.ModuleList(nn.Linear(self.specs[-1].out_features, 1) for _ in range(tree.n_tasks))
        index = {spec.name: i for i, spec in enumerate(self.specs)}
        # Per layer and branch: the (layer, branch) of its main input and of each skip input.
        self._inputs = [[(tree.parent(l, b) if l else 0,
                          [(index[s], tree.branch_of(index[s], group[0])) for s in spec.skips])
                         for b, group in enumerate(groups)]
                        for l, (spec, groups) in enumerate(zip(self.specs, tree.groups))]
        self._top = [tree.branch_of(tree.n_layers - 1, t) for t in range(tree.n_tasks)]

    def _input(self, outputs: list[list[torch.Tensor]], images: torch.Tensor, layer: int, branch: int) -> torch.Tensor:
        parent, skips = self._inputs[layer][branch]
        x = images if layer == 0 else outputs[layer - 1][parent]
        if skips:
            x = torch.cat([x, *(pool_to(outputs[l][b], x.shape[-1]) for l, b in skips)], 1)
        return x if self.specs[layer].is_conv else x.flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        outputs: list[list[torch.Tensor]] = []
        for layer, branches in enumerate(self.layers):
            outputs.append([module(self._input(outputs, images, layer, b)) for b, module in enumerate(branches)])
        top = outputs[-1]
        return torch.cat([head(top[self._top[t]]) for t, head in enumerate(self.outputs)], 1)

    @torch.no_grad()
    def widened(self, tree: BranchTree) -> BranchingNetwork:
        """A network of `tree` (this tree with branches split) whose every branch starts as a copy of
        the branch of this network that served its attributes."""
        new = BranchingNetwork(tree, self.space, self.arch).to(next(self.parameters()).device)
        for layer, groups in enumerate(tree.groups):
            for branch, group in enumerate(groups):
                source = self.layers[layer][self.tree.branch_of(layer, group[0])]
                new.layers[layer][branch].load_state_dict(source.state_dict())
        new.outputs.load_state_dict(self.outputs.state_dict())
        return new
