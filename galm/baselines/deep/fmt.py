"""FMT (Lu, Kumar, Zhai, Cheng, Javidi, Feris, CVPR 2017, "Fully-adaptive feature sharing in
multi-task networks"; GALM's ref. 25): a thin network shared by all attributes, widened greedily
from the top, layer by layer, into a tree whose branches group attributes that are alike.

What it optimises. Training an attribute network yields, per example n and attribute i, an error
e_i^n = |sigmoid(logit) - y|; the example is hard for i when e_i^n exceeds the attribute's mean
error over the training images (s_i^n = 1), easy otherwise. The task affinity is the probability that
two attributes find an example equally easy or hard,

    A(i, j) = P(s_i = s_j) = E_n[ s_i^n s_j^n + (1 - s_i^n)(1 - s_j^n) ],

and between two branches k, l serving attribute sets S_k, S_l (complete-linkage style)

    A_b(k, l) = 1/2 ( mean_{i in S_k} min_{j in S_l} A(i, j) + mean_{j in S_l} min_{i in S_k} A(i, j) ).

At the active layer l (the highest layer still shared by all attributes), the c branches it feeds
are clustered into d groups g_d (d = 1..c, agglomerative: merge the two groups of highest A_b),
and the layer is split into d* branches, one per group, with

    d* = argmin_d  L_l(g_d) = J(g_d) + lambda * (d - 1) * 2^{p_l},
    J(g_d) = 1/d sum_{groups G} ( 1 - mean_{k in G} min_{k' in G, k' != k} A_b(k, k') )   (0 for |G| = 1),

where p_l counts the 2x2 poolings at or above layer l (a split of a lower layer copies larger
feature maps) and lambda = :attr:`FmtSettings.complexity_weight`. The new branches start as copies
of the old one, training goes on for a round, the active layer moves one down, and widening stops
when d* = 1 (or at :attr:`FmtSettings.lowest_layer`). The final tree is then trained. (The
paper's text is not held here; A, A_b and the criterion follow its description of them.)

Where galm departs from Lu et al., and why:

* The thin network is the Table-1 stack (the trunk and one head of the spec's ``hand_designed``
  shape, shared by all attributes), trained from random weights: nothing pretrained can be
  downloaded here, so the paper's thin VGG-16 initialised by SOMP from ImageNet weights is out of
  reach, and Table-1 layers keep FMT comparable with galm's own networks on small images.
* The affinity is measured after each round of training, by one pass of the current network (in
  evaluation mode) over the training images, rather than as the paper's moving average over the
  round's minibatches: with galm's short rounds, the early minibatches of a round would dominate
  an average and blur the easy/hard split of tasks the network has since learned.
* The groupings g_d come from agglomerative clustering on A_b (one nested family for every d)
  rather than the paper's spectral-style grouping; the criterion that picks d is the paper's, with
  its two weights (alpha, L_0) folded into one, lambda.
* The widening rounds (``round_epochs`` each, at most one per layer) train on the retraining
  splits before the retraining budget, as GALM's search precedes its retraining; nothing is
  scored on validation data, so a cell counts no architecture evaluations. Attributes the
  training split cannot teach get affinity 1 to every other (their easy/hard split is noise).
* The widened tree is retrained from scratch with galm's retraining budget (``retrain_from``
  ``'scratch'``, as galm's own searched networks are); ``'widened'`` keeps the widening's weights,
  as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Collection, Literal, Sequence

import numpy as np
import torch

from galm.baselines.deep.tree import BranchingNetwork, BranchTree, layer_stack
from galm.config.schema import ExecutionConfig, SpaceConfig, TrainConfig
from galm.data.domain import AttributeDomain
from galm.engine.batches import images_to_tensor, sequential_batches
from galm.space.search_space import Architecture
from galm.training.train import split_indices, train_network


@dataclass(frozen=True)
class FmtSettings:
    """The widening procedure's settings."""

    # lambda of the criterion: the cost of one more branch at a layer with no pooling above it.
    complexity_weight: float = 0.05
    # Training epochs (on the retraining splits) before each widening decision.
    round_epochs: int = 1
    # The lowest layer that may be split (the procedure goes no further down).
    lowest_layer: str = "conv1"
    # The final tree: trained from fresh weights ('scratch') or from the widening's ('widened').
    retrain_from: Literal["scratch", "widened"] = "scratch"

    def __post_init__(self) -> None:
        if not self.complexity_weight >= 0:
            raise ValueError(f"complexity_weight must be >= 0, got {self.complexity_weight}")
        if self.round_epochs < 1:
            raise ValueError(f"round_epochs must be >= 1, got {self.round_epochs}")
        if self.retrain_from not in ("scratch", "widened"):
            raise ValueError(f"retrain_from must be 'scratch' or 'widened', got {self.retrain_from!r}")


class TaskAffinity:
    """Counts of how often two attributes find an example equally easy or hard."""

    def __init__(self, n_tasks: int) -> None:
        self.agree = np.zeros((n_tasks, n_tasks))
        self.count = np.zeros((n_tasks, n_tasks))

    def update_errors(self, errors: torch.Tensor) -> None:
        """Add examples' errors (N, T), NaN where the label is unknown; each attribute's examples are
        hard above its mean error over these examples, easy at or below it."""
        errors = errors.detach().double().cpu()
        known = ~torch.isnan(errors)
        filled = torch.where(known, errors, torch.zeros_like(errors))
        mean = filled.sum(0) / known.sum(0).clamp(min=1)
        hard = ((filled > mean) & known).double()
        easy = ((filled <= mean) & known).double()
        both = known.double()
        self.agree += (hard.T @ hard + easy.T @ easy).numpy()
        self.count += (both.T @ both).numpy()

    def matrix(self) -> np.ndarray:
        """A(i, j); 1 where two attributes were never labelled together (no evidence to part them)."""
        affinity = np.divide(self.agree, self.count, out=np.ones_like(self.agree), where=self.count > 0)
        np.fill_diagonal(affinity, 1.0)
        return affinity


@torch.no_grad()
def measure_affinity(net: torch.nn.Module, domain: AttributeDomain, splits: Sequence[str],
                     device: torch.device | str = "cpu", batch_size: int = 256) -> np.ndarray:
    """A(i, j) of `net` (in evaluation mode) over the images of `splits`: errors |sigmoid - y|,
    each attribute's examples split into easy and hard at its mean error over those images."""
    net.to(device).eval()
    rows = split_indices(domain, splits)
    errors = torch.cat([
        (torch.sigmoid(net(images_to_tensor(domain.images[batch], device)).float()).cpu()
         - torch.from_numpy(np.asarray(domain.labels[batch], dtype=np.float32))).abs()
        for batch in sequential_batches(rows, batch_size)])
    affinity = TaskAffinity(domain.n_attributes)
    affinity.update_errors(errors)
    return affinity.matrix()


def branch_affinity(task_affinity: np.ndarray, branches: Sequence[Sequence[int]]) -> np.ndarray:
    """A_b(k, l) between branches serving the given attribute sets (see the module docstring)."""
    c = len(branches)
    result = np.ones((c, c))
    for k in range(c):
        for m in range(k + 1, c):
            block = task_affinity[np.ix_(list(branches[k]), list(branches[m]))]
            result[k, m] = result[m, k] = 0.5 * (block.min(1).mean() + block.min(0).mean())
    return result


def candidate_groupings(affinity: np.ndarray) -> list[list[list[int]]]:
    """Groupings of the c branches into d = 1..c groups (index d - 1), each from the next by merging
    the two groups of highest affinity (the affinity of merged groups is A_b of their unions)."""
    c = affinity.shape[0]
    groups: list[list[int]] = [[k] for k in range(c)]
    found = [[list(g) for g in groups]]
    while len(groups) > 1:
        best, pair = -np.inf, (0, 1)
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                block = affinity[np.ix_(groups[a], groups[b])]
                score = 0.5 * (block.min(1).mean() + block.min(0).mean())
                if score > best + 1e-12:
                    best, pair = score, (a, b)
        a, b = pair
        groups = [g for i, g in enumerate(groups) if i not in pair] + [sorted(groups[a] + groups[b])]
        groups.sort()
        found.append([list(g) for g in groups])
    return found[::-1]


def separation(affinity: np.ndarray, grouping: Sequence[Sequence[int]]) -> float:
    """J(g_d): how dissimilar the branches put together are (0 when every group is one branch)."""
    costs = []
    for group in grouping:
        if len(group) == 1:
            costs.append(0.0)
            continue
        block = affinity[np.ix_(list(group), list(group))].copy()
        np.fill_diagonal(block, np.inf)
        costs.append(1.0 - float(block.min(1).mean()))
    return float(np.mean(costs))


@dataclass(frozen=True)
class WideningDecision:
    """One widening step: the layer, every candidate's criterion and the grouping chosen."""

    layer: str
    children: list[list[int]]  # attribute indices of each branch the layer feeds
    candidates: list[dict[str, float]]  # d, separation J, complexity, loss L
    grouping: list[list[int]]  # the chosen groups (indices into children)

    def to_json(self, task_names: Sequence[str]) -> dict[str, Any]:
        return {"layer": self.layer, "branches": len(self.grouping), "candidates": self.candidates,
                "groups": [[task_names[t] for k in group for t in self.children[k]] for group in self.grouping]}


def choose_grouping(
    task_affinity: np.ndarray, children: Sequence[Sequence[int]], poolings_above: int, complexity_weight: float,
    layer: str = "",
) -> WideningDecision:
    """The grouping of `children` (attribute sets) minimising J(g_d) + lambda (d - 1) 2^{p_l}."""
    affinity = branch_affinity(task_affinity, children)
    candidates, best = [], (np.inf, [list(range(len(children)))])
    for d, grouping in enumerate(candidate_groupings(affinity), start=1):
        cost = complexity_weight * (d - 1) * 2.0 ** poolings_above
        sep = separation(affinity, grouping)
        candidates.append({"d": d, "separation": sep, "complexity": cost, "loss": sep + cost})
        if sep + cost < best[0] - 1e-12:
            best = (sep + cost, grouping)
    return WideningDecision(layer, [list(c) for c in children], candidates, best[1])


@dataclass
class FmtDesign:
    """What the widening found: the tree, each decision, and the network it trained."""

    tree: BranchTree
    decisions: list[WideningDecision]
    network: BranchingNetwork
    layer_names: tuple[str, ...]

    def to_json(self, task_names: Sequence[str]) -> dict[str, Any]:
        return {"branches": self.tree.to_json(self.layer_names, task_names), "n_branches": self.tree.n_branches(),
                "decisions": [d.to_json(task_names) for d in self.decisions]}


def design_tree(
    domain: AttributeDomain, space: SpaceConfig, arch: Architecture, config: TrainConfig, seed: int,
    device: torch.device | str = "cpu", settings: FmtSettings | None = None,
    execution: ExecutionConfig | None = None, on_round: Callable[[int, dict[str, float]], None] | None = None,
    excluded: Collection[str] = (),
) -> FmtDesign:
    """Widen the thin network of `arch`'s stack top-down on `config.splits`, one round of
    `settings.round_epochs` epochs of training before each decision.

    `excluded` attributes (those the training split cannot teach) have affinity 1 to every other:
    their easy/hard split is noise, so it neither parts nor joins branches.
    """
    settings = settings or FmtSettings()
    specs = layer_stack(space, arch)
    names = tuple(spec.name for spec in specs)
    if settings.lowest_layer not in names:
        raise ValueError(f"lowest_layer must be one of {list(names)}, got {settings.lowest_layer!r}")
    torch.manual_seed(seed)
    tree = BranchTree.thin(len(specs), domain.n_attributes)
    net = BranchingNetwork(tree, space, arch)
    round_config = replace(config, epochs=settings.round_epochs)
    decisions: list[WideningDecision] = []
    unlearnable = [i for i, name in enumerate(domain.attribute_names) if name in set(excluded)]
    for step, layer in enumerate(range(len(specs) - 1, names.index(settings.lowest_layer) - 1, -1)):
        history = train_network(net, domain, round_config, seed + step, splits=config.splits, device=device,
                                execution=execution)
        affinity = measure_affinity(net, domain, config.splits, device, config.eval_batch_size)
        affinity[unlearnable, :] = affinity[:, unlearnable] = 1.0
        decision = choose_grouping(affinity, tree.children(layer, 0), specs[layer].poolings_above,
                                   settings.complexity_weight, names[layer])
        decisions.append(decision)
        if on_round is not None:
            on_round(step + 1, {"loss": history[-1]["loss"], "branches": len(decision.grouping),
                                "layer": float(layer)})
        if len(decision.grouping) == 1:
            break
        tree = tree.split(layer, 0, decision.grouping)
        net = net.widened(tree)
    return FmtDesign(tree, decisions, net, names)


def final_network(design: FmtDesign, space: SpaceConfig, arch: Architecture, seed: int,
                  settings: FmtSettings | None = None) -> BranchingNetwork:
    """The network the retraining budget trains: fresh weights of the designed tree, or the widening's."""
    settings = settings or FmtSettings()
    if settings.retrain_from == "widened":
        return design.network
    torch.manual_seed(seed)
    return BranchingNetwork(design.tree, space, arch)
