"""Training and evaluating a fixed multi-attribute network on a domain's splits."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from galm.config.schema import ExecutionConfig, TrainConfig
from galm.data.domain import AttributeDomain
from galm.engine import distributed
from galm.engine.augment import Augmentation
from galm.engine.batches import BatchOrder, images_to_tensor, sequential_batches
from galm.engine.inputs import DomainInputs
from galm.engine.placement import compile_module, place_module
from galm.engine.progress import progress
from galm.nn.batch_norm import share_batch_statistics
from galm.training.evaluate import AucReport, attribute_aucs
from galm.training.losses import known_counts, masked_bce


def make_optimizer(params: Sequence[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD with momentum, as configured."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def split_indices(domain: AttributeDomain, splits: Sequence[str]) -> np.ndarray:
    """Union of the named splits' image indices, sorted."""
    return np.unique(np.concatenate([domain.split(name) for name in splits]))


def train_network(
    net: torch.nn.Module,
    domain: AttributeDomain,
    config: TrainConfig,
    seed: int,
    splits: Sequence[str] = ("train",),
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    execution: ExecutionConfig | None = None,
) -> list[dict[str, float]]:
    """Train `net` (images -> logits for every attribute of the domain) with masked BCE.

    Returns one record per epoch (mean loss); `on_epoch` receives the same records as they come.
    """
    execution = execution or ExecutionConfig()
    device = torch.device(device)
    compile_module(place_module(net, execution, device), execution).train()
    optimizer = make_optimizer(list(net.parameters()), config)
    order = BatchOrder(split_indices(domain, splits), config.batch_size, seed)
    augmentation = Augmentation(config.flip, config.crop_padding)
    augment_rng = torch.Generator().manual_seed(seed)
    inputs = DomainInputs(domain.images, domain.labels, device, execution.input_cache)
    parallel = distributed.current()  # under torchrun: each rank trains on its shard of every batch
    if parallel.is_parallel:
        share_batch_statistics(net, parallel.moments)
        parallel.shard(order.batch_size)  # fails now when the batch cannot be split
    history = []
    total = config.epochs * order.batches_per_epoch
    with progress(total=total, desc="train", unit="batch") as bar:
        for epoch in range(config.epochs):
            losses = []
            for batch in order.epoch_batches():
                if parallel.is_parallel:
                    loss = _shard_loss(net, inputs, batch, parallel.shard(len(batch)), augmentation, augment_rng,
                                       parallel)
                else:
                    loss = masked_bce(net(inputs.images(batch, augmentation, augment_rng)), inputs.labels(batch))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                losses.append(parallel.sum_gradients(net.parameters(), loss))
                optimizer.step()
                bar.update(1)
            record = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            history.append(record)
            if on_epoch is not None:
                on_epoch(epoch + 1, record)
    return history


def _shard_loss(
    net: torch.nn.Module, inputs: DomainInputs, batch: np.ndarray, rows: slice, augmentation: Augmentation,
    augment_rng: torch.Generator, parallel: distributed.DataParallel,
) -> torch.Tensor:
    """This rank's part of the loss of global minibatch `batch`: its shard `rows` through `net`, with
    BatchNorm moments over every shard, normalised by the whole minibatch's known labels."""
    labels = inputs.labels(batch)
    with parallel.sharded_step():
        logits = net(inputs.images(batch, augmentation, augment_rng, rows))
    return masked_bce(logits, labels[rows], known_counts(labels))


@torch.no_grad()
def predict(
    net: torch.nn.Module,
    domain: AttributeDomain,
    split: str,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Sigmoid scores (N_split, A) of `net` in evaluation mode (BatchNorm statistics fixed)."""
    net.to(device).eval()
    indices = domain.split(split)
    scores = [
        torch.sigmoid(net(images_to_tensor(domain.images[batch], device))).float().cpu()
        for batch in sequential_batches(indices, batch_size)
    ]
    return torch.cat(scores).numpy()


def evaluate_network(
    net: torch.nn.Module,
    domain: AttributeDomain,
    split: str = "test",
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    excluded: Mapping[str, str] | None = None,
) -> AucReport:
    """Per-attribute ROC AUC and mAUC of `net` on one split of the domain (`excluded`: attributes
    the training split could not teach, left out of mAUC)."""
    scores = predict(net, domain, split, batch_size, device)
    labels = domain.labels[domain.split(split)]
    return attribute_aucs(scores, labels, domain.attribute_names, split=split, excluded=excluded)
