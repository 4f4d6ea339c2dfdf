"""Run under torchrun by ``tests/test_distributed.py``: the sharded phase-1 and phase-2 steps and a
sharded training epoch against one process on the whole minibatches (shards of 5 and 5 images, and
in float64 of 5 and 4), and a synchronised BatchNorm layer on uneven shards, forward and backward.

Every rank runs the data-parallel search; rank 0 also runs a single-process copy of it (built with
the same seed) and prints one JSON line with the largest differences. The shared weights are
trained by plain SGD here, because Adam's first steps turn float rounding in gradients that are
zero but for rounding (a bias before a BatchNorm) into full learning-rate steps.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Iterator

import torch

from galm.config import read_config
from galm.data.sources import config_domain
from galm.engine import distributed, inputs
from galm.nn.batch_norm import BatchNorm2d, share_batch_statistics
from galm.nn.network import FixedNetwork
from galm.search.jobs import build_search
from galm.search.phases import controller_step, minibatch_rewards, shared_step
from galm.space import SearchSpace
from galm.training.train import train_network

SETTINGS = [
    "space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.classes_per_domain=6",
    "data.synthetic.images_per_class=10", "data.synthetic.attributes_per_domain=4", "data.synthetic.n_domains=1",
    "search.batch_size=10", "search.attributes_per_step=0", "search.controller_attributes_per_step=0",
    "search.precision=float32", "threads=1", "device=cpu",
    "train.epochs=1", "train.batch_size=10", "train.optimizer=sgd",
]
STEPS = 1  # later steps: see test_distributed.py (rounding reaches ReLU and max-pool ties)


def build(config, domain, parallel: distributed.DataParallel):
    """A search with `parallel` as its data-parallel job, its shared weights trained by SGD."""
    previous, distributed._current = distributed._current, parallel
    try:
        state = build_search(config, domain, torch.device("cpu"))
    finally:
        distributed._current = previous
    state.shared_optimizer = torch.optim.SGD(state.supernet.parameters(), lr=0.05)
    return state


def largest_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """The largest difference between two modules' parameters and buffers."""
    return max(float((x.float() - y.float()).abs().max()) for x, y in zip(a.state_dict().values(),
                                                                              b.state_dict().values()))


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Models built and fed in float64: rounding no longer flips ReLU/max-pool ties, so uneven
    shards can be held to rounding tolerance too."""
    convert = inputs.images_to_tensor
    torch.set_default_dtype(torch.float64)
    inputs.images_to_tensor = lambda images, device="cpu": convert(images, device).double()
    try:
        yield
    finally:
        torch.set_default_dtype(torch.float32)
        inputs.images_to_tensor = convert


def compare(overrides: list[str]) -> dict[str, float]:
    config = read_config(None, [*SETTINGS, *overrides])
    domain = config_domain(config)
    parallel = distributed.current()
    sharded = build(config, domain, parallel)
    single = build(config, domain, distributed.DataParallel()) if parallel.is_main else None
    losses, rewards, weights = 0.0, 0.0, 0.0
    for _ in range(STEPS):
        loss = shared_step(sharded)
        if single is not None:
            losses = max(losses, abs(loss - shared_step(single)))
            weights = max(weights, largest_difference(sharded.supernet, single.supernet))
        ids = sharded.active_ids()
        with torch.no_grad():  # other heads than the controller's next sample, the same on both
            archs = sharded.decode(sharded.controller.sample(ids, generator=torch.Generator().manual_seed(len(ids))))
        reward = minibatch_rewards(sharded, ids, archs)
        if single is not None:
            rewards = max(rewards, float((reward - minibatch_rewards(single, ids, archs)).abs().max()))
        stats = controller_step(sharded)
        if single is not None:
            reference = controller_step(single)
            rewards = max(rewards, abs(stats.get("reward", 0.0) - reference.get("reward", 0.0)))
    result = {"loss": losses, "weights": weights, "rewards": rewards}
    if single is not None:
        result["controller"] = largest_difference(sharded.controller, single.controller)
    return result


def compare_training() -> float:
    """The largest weight difference after one epoch of fixed-network training, sharded against not."""
    config = read_config(None, SETTINGS)
    domain = config_domain(config)
    archs = [SearchSpace(config.space).default()] * domain.n_attributes
    torch.manual_seed(0)
    sharded = FixedNetwork(archs, config.space)
    train_network(sharded, domain, config.train, 0)
    if not distributed.current().is_main:
        return 0.0
    torch.manual_seed(0)
    single = FixedNetwork(archs, config.space)
    previous, distributed._current = distributed._current, distributed.DataParallel()
    try:
        train_network(single, domain, config.train, 0)
    finally:
        distributed._current = previous
    return largest_difference(sharded, single)


def compare_batch_norm() -> float:
    """The largest difference of a synchronised BatchNorm2d on uneven shards from one on the whole
    batch: outputs, input gradients, parameter gradients and running statistics."""
    parallel = distributed.current()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(9, 3, 5, 5, generator=generator) * 3 + 1
    weights = torch.randn(9, 3, 5, 5, generator=generator)
    sharded, whole = BatchNorm2d(3), BatchNorm2d(3)
    share_batch_statistics(sharded, parallel.moments)
    rows = parallel.shard(len(x))
    shard = x[rows].clone().requires_grad_(True)
    with parallel.sharded_step():
        y = sharded(shard)
    (y * weights[rows]).sum().backward()
    parallel.sum_gradients(sharded.parameters(), torch.zeros(()))
    full = x.clone().requires_grad_(True)
    reference = whole(full)
    (reference * weights).sum().backward()
    pairs = [(y, reference[rows]), (shard.grad, full.grad[rows]), (sharded.weight.grad, whole.weight.grad),
             (sharded.bias.grad, whole.bias.grad), (sharded.running_var, whole.running_var)]
    return max(float((a - b).abs().max()) for a, b in pairs)


def main() -> int:
    distributed.join(torch.device("cpu"), checks=True)
    report = {
        "accuracy": compare([]),
        "auc_batch_bn": compare(["search.reward=auc", "search.reward_bn=batch", "search.head_mode=per_attribute"]),
    }
    with float64():  # shards of 5 and 4 images
        report["uneven_float64"] = compare(["search.batch_size=9"])
    report |= {
        "training": compare_training(),
        "batch_norm": compare_batch_norm(),
    }
    if distributed.current().is_main:
        print("RESULT " + json.dumps(report), flush=True)
    distributed.leave()
    return 0


if __name__ == "__main__":
    sys.exit(main())
