"""FMT and AMT, the deep multi-task baselines: their defining behaviour on constructed cases, and
their cells in an experiment grid."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from galm.baselines.deep.amt import AuxiliaryMultiTaskNetwork, correlation_groups
from galm.baselines.deep.fmt import FmtSettings, TaskAffinity, choose_grouping, design_tree, final_network
from galm.baselines.deep.tree import BranchingNetwork, BranchTree, layer_stack
from galm.config.schema import SpaceConfig, TrainConfig
from galm.data.domain import AttributeDomain
from galm.experiments.grid import run_experiment
from galm.experiments.spec import read_spec, spec_from_mapping
from galm.space import Architecture
from galm.training.train import evaluate_network, train_network

torch.set_num_threads(1)

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "experiments"
SPACE = SpaceConfig(resolution=32)
HEAD = Architecture.parse("c4k3s0-c5k3s0-f64-f64-o1")


def _opposite_tasks_domain(n: int = 192, seed: int = 0) -> AttributeDomain:
    """Attributes a, a_copy (the same labels) and b. Even images show a red square exactly when a
    holds, odd images a green square exactly when b holds; elsewhere a label is a coin flip the
    image says nothing about. So a and a_copy are easy and hard on the same images, a and b on
    opposite ones."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, (n, 32, 32, 3), dtype=np.uint8)
    odd = np.arange(n) % 2 == 1
    a = rng.integers(0, 2, n).astype(np.float32)
    b = rng.integers(0, 2, n).astype(np.float32)
    images[~odd & (a == 1), 4:28, 4:28, 0] = 255
    images[odd & (b == 1), 4:28, 4:28, 1] = 255
    classes = (np.arange(n) % 4).astype(np.int64)
    classes[n * 3 // 4:] += 4  # the test quarter: unseen classes
    index = np.arange(n)
    splits = {"train": index[: n * 5 // 8], "val": index[n * 5 // 8: n * 3 // 4], "test": index[n * 3 // 4:]}
    return AttributeDomain(name="opposite", labels=np.stack([a, a.copy(), b], 1),
                           attribute_names=["a", "a_copy", "b"], class_index=classes,
                           class_names=[f"c{i}" for i in range(8)], splits=splits, images=images)


# --------------------------------------------------------------------------- FMT


def test_task_affinity_counts_equally_easy_or_hard_examples():
    easy_hard = torch.tensor([0.1, 0.9, 0.1, 0.9, 0.2, 0.8])
    errors = torch.stack([easy_hard, easy_hard, 1 - easy_hard, torch.full((6,), float("nan"))], 1)
    affinity = TaskAffinity(4)
    affinity.update_errors(errors)
    matrix = affinity.matrix()
    assert matrix[0, 1] == 1.0  # agree on every example
    assert matrix[0, 2] == 0.0  # easy for one exactly where hard for the other
    assert matrix[0, 3] == 1.0  # never labelled together: no evidence to part them
    assert np.allclose(matrix, matrix.T)


def test_agreeing_tasks_share_a_branch_and_disagreeing_ones_split():
    affinity = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    decision = choose_grouping(affinity, [(0,), (1,), (2,)], poolings_above=0, complexity_weight=0.05)
    assert decision.grouping == [[0, 1], [2]]
    for candidate in decision.candidates:  # L(g_d) = J(g_d) + lambda (d - 1) 2^p
        assert candidate["complexity"] == pytest.approx(0.05 * (candidate["d"] - 1))
        assert candidate["loss"] == pytest.approx(candidate["separation"] + candidate["complexity"])
    assert [c["separation"] for c in decision.candidates] == pytest.approx([1.0, 0.0, 0.0])
    # Low in the network a branch costs 2^p times more: the same tasks stay in one branch.
    assert choose_grouping(affinity, [(0,), (1,), (2,)], poolings_above=5, complexity_weight=0.05).grouping == [[0, 1, 2]]


def test_widening_keeps_agreeing_tasks_together_and_parts_disagreeing_ones():
    domain = _opposite_tasks_domain()
    config = TrainConfig(epochs=1, batch_size=16, splits=("train", "val"))
    design = design_tree(domain, SPACE, HEAD, config, seed=0, settings=FmtSettings(round_epochs=2))
    tree = design.tree
    assert tree.groups[-1] == ((0, 1), (2,))  # the top layer: a with its copy, b alone
    for layer in range(tree.n_layers):
        assert tree.branch_of(layer, 0) == tree.branch_of(layer, 1)
    assert design.decisions[0].layer == "fc1" and design.decisions[0].grouping == [[0, 1], [2]]
    record = design.to_json(domain.attribute_names)
    assert record["branches"]["fc1"] == [["a", "a_copy"], ["b"]]
    assert final_network(design, SPACE, HEAD, 0, FmtSettings(retrain_from="widened")) is design.network
    net = final_network(design, SPACE, HEAD, seed=0)  # the designed tree from fresh weights
    assert net is not design.network and net.tree == design.tree
    train_network(net, domain, config, seed=0, splits=config.splits)
    report = evaluate_network(net, domain, "test")
    assert report.per_attribute_auc["a"] > 0.6 and report.per_attribute_auc["b"] > 0.6


def test_unlearnable_attributes_neither_part_nor_join_branches():
    domain = _opposite_tasks_domain()
    config = TrainConfig(epochs=1, batch_size=16, splits=("train", "val"))
    design = design_tree(domain, SPACE, HEAD, config, seed=0, settings=FmtSettings(round_epochs=2), excluded=["b"])
    assert design.tree.n_branches() == design.tree.n_layers  # b no longer disagrees: nothing splits
    assert len(design.decisions) == 1 and design.decisions[0].candidates[0]["separation"] == 0.0


@pytest.mark.parametrize("settings, message", [
    ({"round_epochs": 0}, "round_epochs"), ({"complexity_weight": -1.0}, "complexity_weight"),
    ({"retrain_from": "nowhere"}, "retrain_from"), ({"lowest_layer": "conv9"}, "lowest_layer"),
])
def test_bad_fmt_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        design_tree(_opposite_tasks_domain(32), SPACE, HEAD, TrainConfig(epochs=1), 0, settings=FmtSettings(**settings))


def test_widened_branches_start_as_copies():
    torch.manual_seed(0)
    arch = Architecture.parse("c4k3s12-c5k5s3-f64-f128-o2")  # skips and Fc-2 route through the tree too
    tree = BranchTree.thin(len(layer_stack(SPACE, arch)), 4)
    net = BranchingNetwork(tree, SPACE, arch).eval()
    images = torch.randn(5, 3, 32, 32)
    before = net(images)
    top = tree.n_layers - 1
    split = tree.split(top, 0, [[0, 3], [1], [2]]).split(top - 1, 0, [[0, 2], [1]])
    assert split.groups[top] == ((0, 3), (1,), (2,)) and split.groups[top - 1] == ((0, 2, 3), (1,))
    widened = net.widened(split).eval()
    assert sum(len(layer) for layer in widened.layers) == split.n_branches() == 10
    assert torch.allclose(widened(images), before, atol=1e-6)
    with pytest.raises(ValueError, match="partition"):
        tree.split(top, 0, [[0, 1], [1, 2, 3]])
    with pytest.raises(ValueError, match="spans two branches"):
        BranchTree(2, (((0,), (1,)), ((0, 1),)))


# --------------------------------------------------------------------------- AMT


def test_correlation_grouping_recovers_planted_groups():
    rng = np.random.default_rng(0)
    latent = rng.integers(0, 2, (400, 3))
    columns, planted = [], []
    for group in range(3):
        for _ in range(3):
            noisy = latent[:, group] ^ (rng.random(400) < 0.1)
            columns.append(noisy if rng.random() < 0.5 else 1 - noisy)  # negative correlation counts
            planted.append(group)
    order = rng.permutation(9)
    labels = np.stack(columns, 1)[:, order].astype(np.float64)
    labels[rng.random(labels.shape) < 0.05] = np.nan  # unknown labels are skipped pairwise
    groups = correlation_groups(labels, n_groups=3)
    expected = sorted(tuple(sorted(int(i) for i in np.flatnonzero(np.array(planted)[order] == g))) for g in range(3))
    assert sorted(groups) == expected
    assert len(correlation_groups(labels)) == 3  # round(sqrt(9)) groups by default


def test_auxiliary_network_feeds_every_groups_scores_into_every_prediction():
    torch.manual_seed(0)
    groups = [(0, 3), (1,), (2, 4)]
    arch = Architecture.parse("c4k3s0-c5k3s0-f64-f64-o1")
    net = AuxiliaryMultiTaskNetwork(groups, 5, SPACE, arch).eval()
    images = torch.randn(4, 3, 32, 32)
    scores = net.group_scores(images)
    assert [s.shape for s in scores] == [(4, 2), (4, 1), (4, 2)]
    plain = torch.cat(scores, 1)[:, [0, 2, 3, 1, 4]]  # scores back in attribute order
    assert torch.allclose(net(images), plain)  # AUX starts at zero: training begins as MCNN
    torch.nn.init.normal_(net.auxiliary.weight)
    # Ablation: removing one group's scores changes the final prediction of every attribute.
    for g in range(len(groups)):
        ablated = [torch.zeros_like(s) if i == g else s for i, s in enumerate(scores)]
        assert (net.combine(ablated) - net.combine(scores)).abs().min() > 0
    # Gradient: the loss of one attribute of group 0 reaches every group's branch through AUX...
    net.zero_grad()
    net(images)[:, 0].sum().backward()
    assert all(branch.fc3.weight.grad.abs().sum() > 0 for branch in net.branches)
    # ...and, without AUX (plain MCNN), only its own group's.
    mcnn = AuxiliaryMultiTaskNetwork(groups, 5, SPACE, arch, auxiliary=False).eval()
    mcnn(images)[:, 0].sum().backward()
    grads = [0 if b.fc3.weight.grad is None else float(b.fc3.weight.grad.abs().sum()) for b in mcnn.branches]
    assert grads[0] > 0 and grads[1] == 0 and grads[2] == 0


def test_groups_must_partition_the_attributes():
    with pytest.raises(ValueError, match="partition"):
        AuxiliaryMultiTaskNetwork([(0, 1), (1, 2)], 3, SPACE, HEAD)


# --------------------------------------------------------------------------- grid cells


def test_fmt_and_amt_cells_run_in_a_tiny_grid(tmp_path):
    data = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    data["methods"] = ["hand_designed", "fmt", "amt"]
    spec = spec_from_mapping(data)
    outcome = run_experiment(spec, tmp_path)
    assert outcome.count("done") == 6, outcome.status
    for scenario in ("sem1", "s1d2"):
        for method in ("fmt", "amt"):
            cell = tmp_path / "cells" / scenario / method / "seed0"
            results = json.loads((cell / "results.json").read_text())
            assert 0.0 <= results["mauc"] <= 1.0 and len(results["per_attribute_auc"]) == 4
            assert results["evaluations"] == 0 and results["seconds"] > 0
            assert results["architecture"] == spec.hand_designed
            assert results["domain"] == ("syn1" if scenario == "sem1" else "syn2")  # the target only
        tree = json.loads((tmp_path / "cells" / scenario / "fmt" / "seed0" / "fmt_tree.json").read_text())
        assert set(tree["branches"]) == {"conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2"}
        assert tree["decisions"][0]["layer"] == "fc2"
        groups = json.loads((tmp_path / "cells" / scenario / "amt" / "seed0" / "amt_groups.json").read_text())
        assert sorted(a for g in groups["groups"] for a in g) == sorted(groups["abs_label_correlation"])
    text = (tmp_path / "results.md").read_text()
    table2 = text.split("Table 2")[1].split("Table 3")[0]
    table3 = text.split("Table 3")[1].split("Efficiency")[0]
    for method in ("fmt", "amt"):
        assert f"| {method} |" in table2 and f"| {method} |" in table3
        assert f"{method} (" in table2 and f"{method} (" in table3  # the footnote on what galm changed


def test_checked_in_synthetic_spec_runs_fmt_and_amt():
    spec = read_spec(CONFIGS / "synthetic.yaml")
    assert {"fmt", "amt"} <= set(spec.methods)
