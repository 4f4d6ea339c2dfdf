import numpy as np
import pytest
import torch

from galm.config.schema import SpaceConfig, SyntheticConfig, TrainConfig
from galm.data.synthetic import generate_domain
from galm.engine.batches import BatchOrder, images_to_tensor
from galm.nn.network import FixedNetwork
from galm.space.search_space import SearchSpace
from galm.training.evaluate import attribute_aucs
from galm.training.train import evaluate_network, predict, train_network


def test_batch_order_is_seeded_covers_each_epoch_and_resumes():
    order = BatchOrder(np.arange(10, 30), batch_size=6, seed=3)
    epoch = list(order.epoch_batches())
    assert len(epoch) == 3 and all(len(b) == 6 for b in epoch)
    assert len(np.unique(np.concatenate(epoch))) == 18
    again = BatchOrder(np.arange(10, 30), batch_size=6, seed=3)
    assert all((a == b).all() for a, b in zip(epoch, again.epoch_batches()))
    straight = BatchOrder(np.arange(20), 4, seed=1)
    expected = [straight.next() for _ in range(12)]
    first = BatchOrder(np.arange(20), 4, seed=1)
    head = [first.next() for _ in range(7)]
    resumed = BatchOrder(np.arange(20), 4, seed=0)
    resumed.load_state_dict(first.state_dict())
    got = head + [resumed.next() for _ in range(5)]
    assert all((a == b).all() for a, b in zip(expected, got))
    with pytest.raises(ValueError, match="empty"):
        BatchOrder(np.array([], dtype=np.int64), 4, seed=0)


def test_images_become_normalised_channels_first_tensors_in_nhwc_memory():
    images = np.random.default_rng(0).integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    tensor = images_to_tensor(images)
    assert tensor.shape == (4, 3, 8, 8) and tensor.dtype == torch.float32
    assert tensor.abs().max() <= 2.0
    assert tensor.is_contiguous(memory_format=torch.channels_last)


@pytest.fixture(scope="module")
def tiny_domain():
    config = SyntheticConfig(n_domains=1, classes_per_domain=8, images_per_class=24, resolution=32,
                             attributes_per_domain=6, seed=1)
    return generate_domain(config, 0)


def test_training_lowers_the_loss_and_beats_chance(tiny_domain):
    torch.manual_seed(0)
    space = SpaceConfig(resolution=32)
    net = FixedNetwork([SearchSpace(space).default()] * tiny_domain.n_attributes, space)
    history = train_network(net, tiny_domain, TrainConfig(epochs=6, batch_size=32, lr=3e-3), seed=0)
    assert history[-1]["loss"] < history[0]["loss"]
    report = evaluate_network(net, tiny_domain, "train")
    assert report.mauc > 0.8
    scores = predict(net, tiny_domain, "test")
    expected = attribute_aucs(scores, tiny_domain.labels[tiny_domain.split("test")], tiny_domain.attribute_names)
    assert report.n_attributes_scored >= 1
    assert evaluate_network(net, tiny_domain, "test").mauc == pytest.approx(expected.mauc)


def test_training_is_deterministic_for_a_seed(tiny_domain):
    space = SpaceConfig(resolution=32)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        net = FixedNetwork([SearchSpace(space).default()] * tiny_domain.n_attributes, space)
        train_network(net, tiny_domain, TrainConfig(epochs=1, batch_size=32), seed=5)
        outs.append(predict(net, tiny_domain, "val"))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_unknown_labels_do_not_move_a_head(tiny_domain):
    torch.manual_seed(0)
    space = SpaceConfig(resolution=32)
    labels = tiny_domain.labels.copy()
    labels[:, 0] = np.nan
    blind = type(tiny_domain)(**{**tiny_domain.__dict__, "labels": labels})
    net = FixedNetwork([SearchSpace(space).default()] * blind.n_attributes, space)
    before = [p.detach().clone() for p in net.heads[0].fc3.parameters()]
    train_network(net, blind, TrainConfig(epochs=1, batch_size=32, weight_decay=0.0), seed=0)
    after = list(net.heads[0].fc3.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after))
