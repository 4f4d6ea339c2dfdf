import pytest
import torch

from galm.config.reader import read_config
from galm.config.schema import ExecutionConfig, SpaceConfig
from galm.config.typed import ConfigError
from galm.data.sources import config_domain
from galm.engine.placement import place_module, uses_channels_last
from galm.nn.supernet import Supernet
from galm.search.jobs import build_search
from galm.search.phases import shared_step
from galm.space.search_space import SearchSpace
from tests.support import TINY_SEARCH

TINY = [*TINY_SEARCH, "search.shared_steps=2", "search.precision=float32"]


def test_channels_last_is_on_for_cuda_only_by_default():
    config = ExecutionConfig()
    assert uses_channels_last(config, torch.device("cuda")) and not uses_channels_last(config, torch.device("cpu"))
    assert uses_channels_last(ExecutionConfig(channels_last="on"), torch.device("cpu"))
    with pytest.raises(ConfigError, match="execution.channels_last"):
        read_config(None, ["execution.channels_last=yes"])


def test_channels_last_supernet_gives_the_same_logits_and_gradients(single_thread):
    space = SearchSpace(SpaceConfig(resolution=32))
    archs = [space.decode([1] * 10), space.default(), space.decode([0, 1, 1, 0, 1, 0, 1, 2, 1, 1])]
    images = torch.randn(4, 3, 32, 32)
    results = []
    for layout in ("off", "on"):
        torch.manual_seed(0)
        net = place_module(Supernet(3, space.config), ExecutionConfig(channels_last=layout), torch.device("cpu"))
        conv = next(p for p in net.trunk.parameters() if p.dim() == 4)
        assert conv.is_contiguous(memory_format=torch.channels_last) == (layout == "on")
        logits = net(images, [0, 1, 2], archs)
        logits.sum().backward()
        results.append((logits.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-4, atol=1e-5)
    assert len(results[0][1]) == len(results[1][1])
    for a, b in zip(results[0][1], results[1][1]):  # another summation order: rounding-level differences
        assert (b - a).norm() <= 1e-4 * a.norm() + 1e-8


def test_compiled_trunk_search_matches_eager_and_keeps_checkpoint_names():
    """torch.compile with the 'eager' backend traces the trunk with dynamo but needs no C compiler."""
    runs = []
    for compile_ in (False, True):
        config = read_config(None, [*TINY, f"execution.compile={str(compile_).lower()}",
                                    "execution.compile_backend=eager"])
        search = build_search(config, config_domain(config), torch.device("cpu"))
        losses = [shared_step(search) for _ in range(2)]
        runs.append((losses, search.state_dict()["supernet"]))
    assert runs[0][1].keys() == runs[1][1].keys()
    for a, b in zip(runs[0][0], runs[1][0]):
        assert a == pytest.approx(b, rel=1e-5)
