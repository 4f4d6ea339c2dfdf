import torch

from galm.config.schema import SpaceConfig
from galm.engine.precision import autocast, resolve_precision
from galm.nn.supernet import Supernet
from galm.search.phases import run_search
from galm.space.search_space import SearchSpace

# bf16 keeps 8 bits of mantissa: logits of a freshly initialised supernet agree to about 1e-2 relative.
BF16_TOLERANCE = dict(rtol=0.05, atol=0.05)


def test_explicit_precisions_are_kept_and_auto_picks_float32_or_bf16():
    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) in ("float32", "bf16")


def test_bf16_supernet_matches_float32_within_tolerance():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = SearchSpace(SpaceConfig(resolution=32))
    net = Supernet(3, space.config).eval()
    images = torch.randn(4, 3, 32, 32)
    archs = [space.decode([1] * 10), space.default(), space.decode([0, 1, 1, 0, 1, 0, 1, 2, 1, 1])]
    with torch.no_grad():
        reference = net(images, [0, 1, 2], archs)
        with autocast("bf16", torch.device("cpu")):
            low = net(images, [0, 1, 2], archs)
    assert not torch.equal(low.float(), reference)  # the convolutions and matmuls did run in bf16
    torch.testing.assert_close(low.float(), reference, **BF16_TOLERANCE)


def test_search_runs_in_bf16():
    from galm.config.reader import read_config
    from galm.data.sources import config_domain
    from galm.search.jobs import build_search

    config = read_config(None, [
        "space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.classes_per_domain=6",
        "data.synthetic.images_per_class=8", "data.synthetic.attributes_per_domain=3",
        "data.synthetic.n_domains=1", "search.episodes=1", "search.shared_steps=1", "search.controller_steps=1",
        "search.batch_size=8", "search.controller_attributes_per_step=0", "search.precision=bf16",
    ])
    search = build_search(config, config_domain(config), torch.device("cpu"))
    assert search.precision == "bf16"
    run_search(search)
    assert search.shared_step == 1 and search.controller_step == 1
    assert all(p.dtype == torch.float32 for p in search.supernet.parameters())
