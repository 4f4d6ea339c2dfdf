"""Short stand-alone training of many candidate heads per attribute at once, scored on validation.

GALM's heads are independent given the trunk, so K candidate heads for each of m attributes train
as one network of K·m heads on one shared trunk: the supernet's batched heads with every slot's
architecture fixed (slot ``k·m + j`` is candidate k of attribute j and learns attribute j's labels).
One trunk pass per batch serves every candidate, which makes re-scoring the top candidates of a
search by real training cheap; :func:`cross_validated_candidates` scores them by k-fold
cross-validation instead of on one small validation split. The scores rank candidates of the same
attribute against each other; they are not the retrained network's scores.
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
    scored = domain.split(score_split)
    scores = _train_and_score(domain, candidates, space, config, seed, device, split_indices(domain, splits),
                              scored, execution)
    return _candidate_aucs(scores, np.asarray(domain.labels[scored], dtype=np.float64), domain.n_attributes)


def cross_validated_candidates(
    domain: AttributeDomain,
    candidates: Sequence[Sequence[Architecture]],
    space: SpaceConfig,
    config: TrainConfig,
    seed: int,
    folds: int,
    device: torch.device | str = "cpu",
    splits: Sequence[str] = ("train", "val"),
    execution: ExecutionConfig | None = None,
) -> np.ndarray:
    """ROC AUC (K, m) of every candidate by `folds`-fold cross-validation over the images of `splits`:
    the mean over folds of the AUC on the held-out fold after training on the others.

    A small validation split ranks heads no better than chance (its AUC's sampling error is larger than
    the heads' differences); cross-validation scores every image of `splits` and averages `folds`
    trainings. Folds hold whole classes where the domain's test split is by class (see
    :func:`candidate_folds`), so a head is scored on classes it has not seen, as the test split scores it.
    """
    labels = np.asarray(domain.labels, dtype=np.float64)
    per_fold = []
    parts = candidate_folds(domain, split_indices(domain, splits), folds, seed)
    for fold, held in enumerate(parts):
        trained_on = np.sort(np.concatenate([part for other, part in enumerate(parts) if other != fold]))
        scores = _train_and_score(domain, candidates, space, config, seed + fold, device, trained_on, held, execution)
        per_fold.append(_candidate_aucs(scores, labels[held], domain.n_attributes))
    stacked = np.stack(per_fold)
    counts = np.isfinite(stacked).sum(axis=0)  # a fold where an attribute does not vary has no AUC
    total = np.where(np.isfinite(stacked), stacked, 0.0).sum(axis=0)
    return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


def candidate_folds(domain: AttributeDomain, indices: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """`folds` seeded, disjoint parts of `indices`: by whole classes when the domain's test split holds
    unseen classes (``metadata['class_split']`` not False) and there are at least `folds` classes,
    else by image."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    if len(indices) < folds:
        raise ValueError(f"{len(indices)} images cannot be split into {folds} folds")
    rng = np.random.default_rng(seed)
    classes = np.unique(domain.class_index[indices])
    if domain.metadata.get("class_split", True) and len(classes) >= folds:
        fold_of_class = np.zeros(domain.n_classes, dtype=np.int64)
        fold_of_class[rng.permutation(classes)] = np.arange(len(classes)) % folds
        assignment = fold_of_class[domain.class_index[indices]]
    else:
        assignment = rng.permutation(len(indices)) % folds
    return [indices[assignment == fold] for fold in range(folds)]


def _candidate_aucs(scores: np.ndarray, labels: np.ndarray, m: int) -> np.ndarray:
    """(K, m) AUCs from slot scores (n, K*m): slots j, j+m, j+2m, ... are attribute j's candidates."""
    return np.stack([pairwise_auc(scores[:, j::m], labels[:, j:j + 1])[0] for j in range(m)], axis=1)


def _train_and_score(
    domain: AttributeDomain,
    candidates: Sequence[Sequence[Architecture]],
    space: SpaceConfig,
    config: TrainConfig,
    seed: int,
    device: torch.device | str,
    train_indices: np.ndarray,
    score_indices: np.ndarray,
    execution: ExecutionConfig | None,
) -> np.ndarray:
    """Train every candidate slot jointly on `train_indices`; their scores (n_scored, K*m)."""
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
    order = BatchOrder(train_indices, config.batch_size, seed)
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
    return _slot_scores(net, inputs, score_indices, ids, archs, config.eval_batch_size)
