"""Short stand-alone training of many candidate heads per attribute at once, scored on validation.

GALM's heads are independent given the trunk, so K candidate heads for each of m attributes train
as one network of K·m heads on one shared trunk: the supernet's batched heads with every slot's
architecture fixed (slot ``k·m + j`` is candidate k of attribute j and learns attribute j's labels).
One trunk pass per batch serves every candidate, which makes re-scoring the top candidates of a
search by real training cheap. The scores rank candidates of the same attribute against each
other; they are not the retrained network's scores.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from galm.config.schema import ExecutionConfig, SpaceConfig, TrainConfig
from galm.data.domain import AttributeDomain
from galm.engine.augment import Augmentation
from galm.engine.batches import BatchOrder, sequential_batches
from galm.engine.inputs import DomainInputs
from galm.engine.placement import place_module
from galm.engine.progress import progress
from galm.nn.supernet import Supernet
from galm.space import Architecture
from galm.training.evaluate import pairwise_auc
from galm.training.losses import masked_bce
from galm.training.train import make_optimizer, split_indices


@torch.no_grad()
def _slot_scores(net: Supernet, inputs: DomainInputs, indices: np.ndarray, ids: torch.Tensor,
                 archs: list[Architecture], batch_size: int) -> np.ndarray:
    net.eval()
    scores = [net(inputs.images(batch), ids, archs).float().cpu() for batch in sequential_batches(indices, batch_size)]
    net.train()
    return torch.cat(scores).numpy()


def train_candidates(
    domain: AttributeDomain,
    candidates: Sequence[Sequence[Architecture]],
    space: SpaceConfig,
    config: TrainConfig,
    seed: int,
    device: torch.device | str = "cpu",
    splits: Sequence[str] = ("train",),
    score_split: str = "val",
    execution: ExecutionConfig | None = None,
) -> np.ndarray:
    """Validation ROC AUC (K, m) of every candidate after ``config.epochs`` of joint training.

    ``candidates[k][j]`` is the k-th candidate head of attribute j (m = the domain's attributes).
    NaN where an attribute does not vary on ``score_split``.
    """
    execution = execution or ExecutionConfig()
    device = torch.device(device)
    n_candidates, m = len(candidates), domain.n_attributes
    if any(len(row) != m for row in candidates):
        raise ValueError(f"every candidate set must hold one architecture per attribute ({m})")
    archs = [arch for row in candidates for arch in row]
    ids = torch.arange(len(archs), device=device)
    columns = torch.arange(m).repeat(n_candidates)
    torch.manual_seed(seed)
    net = place_module(Supernet(len(archs), space), execution, device).train()
    optimizer = make_optimizer(list(net.parameters()), config)
    order = BatchOrder(split_indices(domain, splits), config.batch_size, seed)
    augmentation = Augmentation(config.flip, config.crop_padding)
    augment_rng = torch.Generator().manual_seed(seed)
    inputs = DomainInputs(domain.images, domain.labels, device, execution.input_cache)
    with progress(total=config.epochs * order.batches_per_epoch, desc="candidates", unit="batch") as bar:
        for _ in range(config.epochs):
            for batch in order.epoch_batches():
                logits = net(inputs.images(batch, augmentation, augment_rng), ids, archs)
                # Each candidate gets its own head's gradient; the trunk the mean over candidates.
                loss = masked_bce(logits, inputs.labels(batch, columns)) / n_candidates
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bar.update(1)
    indices = domain.split(score_split)
    scores = _slot_scores(net, inputs, indices, ids, archs, config.eval_batch_size)
    labels = np.asarray(domain.labels[indices], dtype=np.float64)
    # Slots j, j+m, j+2m, ... are attribute j's candidates.
    return np.stack([pairwise_auc(scores[:, j::m], labels[:, j:j + 1])[0] for j in range(m)], axis=1)
