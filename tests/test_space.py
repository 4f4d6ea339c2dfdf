import json
import random

import pytest

from galm.config.schema import SpaceConfig
from galm.space.search_space import Architecture, SearchSpace


def test_space_has_2304_architectures_per_attribute():
    space = SearchSpace()
    assert len(space) == 2304
    archs = list(space.enumerate())
    assert len(archs) == 2304
    assert len(set(archs)) == 2304
    assert len({a.short() for a in archs}) == 2304


def test_every_architecture_round_trips_through_json_string_and_actions():
    space = SearchSpace()
    for arch in space.enumerate():
        assert Architecture.from_json(json.loads(json.dumps(arch.to_json()))) == arch
        assert Architecture.parse(arch.short()) == arch
        assert space.decode(space.encode(arch)) == arch


def test_decisions_are_the_table_1_choices():
    space = SearchSpace()
    sizes = dict((d.name, d.size) for d in space.decisions)
    assert sizes == {
        "conv4_skip_conv1": 2, "conv4_skip_conv2": 2, "conv4_kernel": 2,
        "conv5_skip_conv1": 2, "conv5_skip_conv2": 2, "conv5_skip_conv3": 2, "conv5_kernel": 2,
        "fc1_width": 3, "fc2_width": 3, "fc3_input": 2,
    }
    configs = 2 * 2 * 3 * 3
    skip_patterns = 4 * 8 * 2
    assert configs * skip_patterns == len(space)


def test_short_form_is_stable():
    arch = Architecture(("conv2", "conv1"), 5, ("conv3",), 3, 128, 64, "fc2")
    assert arch.conv4_skips == ("conv1", "conv2")
    assert arch.short() == "c4k5s12-c5k3s3-f128-f64-o2"
    assert SearchSpace().default().short() == "c4k3s0-c5k3s0-f64-f64-o1"


def test_sampling_is_seeded_and_covers_choices():
    space = SearchSpace()
    a = [space.sample(random.Random(1)) for _ in range(3)]
    b = [space.sample(random.Random(1)) for _ in range(3)]
    assert a == b
    rng = random.Random(0)
    seen = {space.sample(rng).fc1_width for _ in range(200)}
    assert seen == {64, 128, 256}


def test_bad_architectures_and_configs_are_clear_errors():
    with pytest.raises(ValueError, match="conv4_skips"):
        Architecture(("conv3",))
    with pytest.raises(ValueError, match="fc3_input"):
        Architecture(fc3_input="fc9")
    with pytest.raises(ValueError, match="missing"):
        Architecture.from_json({"conv4_kernel": 3})
    with pytest.raises(ValueError, match="not an architecture string"):
        Architecture.parse("c4k3")
    with pytest.raises(ValueError, match="fc1_width"):
        SearchSpace().encode(Architecture(fc1_width=100))
    with pytest.raises(ValueError, match="multiple of 32"):
        SpaceConfig(resolution=48)


def test_configured_space_changes_choices():
    space = SearchSpace(SpaceConfig(fc_widths=(32, 64), conv4_kernels=(3,)))
    assert len(space) == 2 * 2 * 1 * 2 * 2 * 2 * 2 * 2 * 2 * 2
    assert all(a.fc1_width in (32, 64) for a in space.enumerate())
