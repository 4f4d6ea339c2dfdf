import copy
import random

import pytest
import torch

from galm.config.schema import SpaceConfig
from galm.nn.supernet import Supernet
from galm.space.search_space import Architecture, SearchSpace
from galm.training.losses import masked_bce


def _images(batch: int, resolution: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


def test_output_shapes_for_every_architecture_at_64():
    torch.manual_seed(0)
    space = SearchSpace()
    chunk = 48
    net = Supernet(chunk, space.config)
    images = _images(2)
    archs = list(space.enumerate())
    with torch.no_grad():
        for start in range(0, len(archs), chunk):
            part = archs[start:start + chunk]
            out = net(images, list(range(len(part))), part)
            assert out.shape == (2, len(part))
            assert torch.isfinite(out).all()


def test_224_resolution_builds_and_runs():
    torch.manual_seed(0)
    space = SearchSpace(SpaceConfig(resolution=224))
    archs = [Architecture(("conv1", "conv2"), 5, ("conv1", "conv2", "conv3"), 5, 256, 128, "fc2"),
             space.default()]
    net = Supernet(2, space.config)
    out = net(_images(2, 224), [0, 1], archs)
    assert out.shape == (2, 2)
    assert space.config.flat_features == 16 * 7 * 7


def _grads(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in net.named_parameters()}


def test_same_parameters_serve_different_architectures():
    torch.manual_seed(0)
    net = Supernet(2, SpaceConfig())
    names_before = [n for n, _ in net.named_parameters()]
    a = Architecture((), 3, (), 3, 64, 64, "fc1")
    b = Architecture(("conv1",), 3, ("conv3",), 3, 128, 64, "fc2")
    net(_images(2), [0], [a]).sum().backward()
    grad_a = _grads(net)
    net.zero_grad(set_to_none=True)
    net(_images(2), [0], [b]).sum().backward()
    grad_b = _grads(net)
    assert [n for n, _ in net.named_parameters()] == names_before
    shared = "heads.conv4.weight.k3_conv3"
    assert grad_a[shared][0].abs().sum() > 0 and grad_b[shared][0].abs().sum() > 0
    # Fc-1's first 64 rows are shared by the 64- and 128-wide candidates.
    assert grad_a["heads.fc1_weight"][0, :64].abs().sum() > 0
    assert grad_b["heads.fc1_weight"][0, :64].abs().sum() > 0


def test_unchosen_candidates_receive_zero_gradient():
    torch.manual_seed(0)
    net = Supernet(3, SpaceConfig())
    arch = Architecture(("conv2",), 3, ("conv1",), 5, 64, 128, "fc1")
    net(_images(4), [1], [arch]).sum().backward()
    g = _grads(net)
    zero = [
        "heads.conv4.weight.k5_conv3", "heads.conv4.weight.k5_conv1", "heads.conv4.weight.k5_conv2",
        "heads.conv4.weight.k3_conv1", "heads.conv5.weight.k3_conv4", "heads.conv5.weight.k5_conv2",
        "heads.conv5.weight.k5_conv3", "heads.fc2_weight", "heads.fc2_bias",
        "heads.fc3_weight.fc2", "heads.fc3_bias.fc2", "heads.conv4.bn.k5.weight",
    ]
    for name in zero:
        assert g[name].abs().sum() == 0, name
    used = ["heads.conv4.weight.k3_conv3", "heads.conv4.weight.k3_conv2", "heads.conv5.weight.k5_conv4",
            "heads.conv5.weight.k5_conv1", "heads.fc3_weight.fc1", "trunk.conv1.conv.weight"]
    for name in used:
        assert g[name].abs().sum() > 0, name
    assert g["heads.fc1_weight"][1, 64:].abs().sum() == 0
    assert g["heads.fc1_weight"][1, :64].abs().sum() > 0
    # Other attributes' heads are untouched.
    for name, grad in g.items():
        if name.startswith("heads.") and grad.dim() >= 1 and grad.shape[0] == 3:
            assert grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0, name


@pytest.mark.parametrize("training", [True, False])
def test_batched_heads_equal_one_attribute_at_a_time(training):
    torch.manual_seed(0)
    space = SearchSpace()
    rng = random.Random(3)
    n = 10
    batched = Supernet(n, space.config)
    reference = copy.deepcopy(batched)
    reference.head_mode = "per_attribute"
    batched.train(training)
    reference.train(training)
    ids = rng.sample(range(n), 8)
    archs = [space.sample(rng) for _ in ids]
    images = _images(6)
    labels = torch.randint(0, 2, (6, len(ids))).float()
    labels[0, 2] = float("nan")
    out_b = batched(images, ids, archs)
    out_r = reference(images, ids, archs)
    torch.testing.assert_close(out_b, out_r, rtol=1e-4, atol=1e-5)
    if training:
        masked_bce(out_b, labels).backward()
        masked_bce(out_r, labels).backward()
        for (name, p_b), (_, p_r) in zip(batched.named_parameters(), reference.named_parameters()):
            if p_b.grad is None:
                assert p_r.grad is None, name
                continue
            torch.testing.assert_close(p_b.grad, p_r.grad, rtol=1e-3, atol=1e-5, msg=name)
    for (name, b_b), (_, b_r) in zip(batched.named_buffers(), reference.named_buffers()):
        torch.testing.assert_close(b_b, b_r, rtol=1e-4, atol=1e-6, msg=name)


def test_forward_rejects_bad_pairs():
    net = Supernet(2, SpaceConfig())
    arch = SearchSpace().default()
    with pytest.raises(ValueError, match="distinct"):
        net(_images(2), [0, 0], [arch, arch])
    with pytest.raises(ValueError, match="architectures"):
        net(_images(2), [0, 1], [arch])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        net(_images(2), [2], [arch])
    with pytest.raises(ValueError, match="head_mode"):
        Supernet(2, head_mode="loop")


def test_masked_bce_ignores_nan_labels():
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.3], [-0.2, 1.5]], requires_grad=True)
    labels = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [float("nan"), float("nan")]])
    loss = masked_bce(logits, labels)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(logits[:2, 0], labels[:2, 0]) + bce(logits[1:2, 1], labels[1:2, 1])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert logits.grad[0, 1] == 0 and logits.grad[2, 0] == 0 and logits.grad[2, 1] == 0
    assert logits.grad[0, 0] != 0
    all_unknown = masked_bce(torch.zeros(2, 1), torch.full((2, 1), float("nan")))
    assert all_unknown.item() == 0.0


@pytest.mark.parametrize("head_mode", ["batched", "per_attribute"])
def test_batch_statistics_in_eval_mode_match_training_mode_and_leave_running_stats(head_mode):
    torch.manual_seed(0)
    space = SpaceConfig(resolution=32)
    net = Supernet(3, space, head_mode=head_mode)
    rng = random.Random(0)
    archs = [SearchSpace(space).sample(rng) for _ in range(3)]
    images = torch.randn(16, 3, 32, 32)
    ids = torch.arange(3)
    net.train()
    net(images, ids, archs)  # give the running statistics something to hold
    net.trunk.eval()  # the trunk keeps its running statistics in both passes
    running = {k: v.clone() for k, v in net.heads.state_dict().items() if "running" in k}
    trained = copy.deepcopy(net)
    trained.heads.train()
    expected = trained(images, ids, archs)
    net.eval()
    net.use_batch_statistics(True)
    got = net(images, ids, archs)
    net.use_batch_statistics(False)
    assert torch.allclose(got, expected, atol=1e-5)
    for key, value in net.heads.state_dict().items():
        if "running" in key:
            assert torch.equal(value, running[key]), key
    assert not torch.allclose(net(images, ids, archs), expected, atol=1e-4)  # running statistics again
