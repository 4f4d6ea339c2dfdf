import random

import pytest
import torch

from galm.config.schema import SpaceConfig
from galm.nn.network import FixedNetwork
from galm.nn.supernet import Supernet
from galm.space.search_space import SearchSpace


def test_fixed_network_has_only_chosen_ops_and_right_shapes():
    torch.manual_seed(0)
    space = SearchSpace()
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(5)]
    net = FixedNetwork(archs, space.config)
    out = net(torch.randn(3, 3, 64, 64))
    assert out.shape == (3, 5)
    for head, arch in zip(net.heads, archs):
        expected_in = 64 + sum({"conv1": 16, "conv2": 32}[s] for s in arch.conv4_skips)
        assert head.conv4.conv.in_channels == expected_in
        assert head.conv4.conv.kernel_size == (arch.conv4_kernel,) * 2
        assert head.fc1.out_features == arch.fc1_width
        assert (head.fc2 is not None) == arch.uses_fc2
    # A fixed network is much smaller than the supernet holding every candidate.
    n_fixed = sum(p.numel() for p in net.parameters())
    n_super = sum(p.numel() for p in Supernet(5, space.config).parameters())
    assert n_fixed < n_super / 2


def test_fixed_network_loaded_from_supernet_reproduces_its_heads():
    torch.manual_seed(0)
    space = SearchSpace()
    rng = random.Random(5)
    supernet = Supernet(6, space.config)
    images = torch.randn(4, 3, 64, 64)
    supernet.train()
    ids = [4, 1, 2]
    archs = [space.sample(rng) for _ in ids]
    supernet(images, ids, archs)  # move BN running statistics away from their initial values
    supernet.eval()
    fixed = FixedNetwork(archs, space.config)
    fixed.load_from_supernet(supernet, ids)
    fixed.eval()
    with torch.no_grad():
        torch.testing.assert_close(fixed(images), supernet(images, ids, archs), rtol=1e-4, atol=1e-5)


def test_fixed_network_needs_architectures():
    with pytest.raises(ValueError):
        FixedNetwork([], SpaceConfig())
