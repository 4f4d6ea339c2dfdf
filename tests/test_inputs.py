import numpy as np
import pytest
import torch

from galm.config.reader import read_config
from galm.config.typed import ConfigError
from galm.data.sources import config_domain
from galm.engine.augment import Augmentation
from galm.engine.batches import BatchOrder
from galm.engine.inputs import DomainInputs, resolve_input_cache
from galm.search.jobs import build_search
from galm.search.phases import shared_step
from tests.support import TINY_SEARCH

TINY = [*TINY_SEARCH, "search.shared_steps=3", "search.crop_padding=2"]


def _arrays():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(20, 6, 6, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, size=(20, 3)).astype(np.float32)
    labels[0, 1] = np.nan
    return images, labels


def test_cached_and_streamed_inputs_yield_the_same_batches_for_the_same_seed():
    images, labels = _arrays()
    cached = DomainInputs(images, labels, "cpu", cache="device")
    streamed = DomainInputs(images, labels, "cpu", cache="stream")
    assert cached.cached and not streamed.cached
    aug = Augmentation(flip=True, crop_padding=2)
    generators = [torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)]
    order = BatchOrder(np.arange(20), 6, seed=0)
    columns = torch.tensor([2, 0])
    for _ in range(5):
        batch = order.next()
        a = cached.images(batch, aug, generators[0])
        b = streamed.images(batch, aug, generators[1])
        assert a.shape == (6, 3, 6, 6)
        assert torch.equal(a, b)
        torch.testing.assert_close(cached.labels(batch, columns), streamed.labels(batch, columns), equal_nan=True)
    np.testing.assert_array_equal(streamed.labels(np.array([0]))[0].numpy(), labels[0])


def test_inputs_reject_mismatched_labels_and_unknown_cache_modes():
    images, labels = _arrays()
    with pytest.raises(ValueError, match="20 images but 19 label rows"):
        DomainInputs(images, labels[:19])
    with pytest.raises(ValueError, match="input_cache"):
        resolve_input_cache("gpu", 10, torch.device("cpu"))
    with pytest.raises(ConfigError, match="execution.input_cache"):
        read_config(None, ["execution.input_cache=gpu"])
    assert resolve_input_cache("auto", 10, torch.device("cpu")) is False


def test_search_on_cached_inputs_equals_search_on_streamed_inputs():
    results = []
    for cache in ("device", "stream"):
        config = read_config(None, [*TINY, f"execution.input_cache={cache}"])
        search = build_search(config, config_domain(config), torch.device("cpu"))
        assert search.inputs.cached == (cache == "device")
        losses = [shared_step(search) for _ in range(3)]
        results.append((losses, search.supernet.state_dict()))
    assert results[0][0] == results[1][0]
    for key, value in results[0][1].items():
        assert torch.equal(value, results[1][1][key]), key
