"""Attribute similarity from the shared trunk: one linear probe per attribute on pooled trunk features.

Transfer needs, for a new attribute, the searched attribute whose visual evidence is most alike.
Each attribute gets a logistic-regression probe on its own domain's training images, over the
globally average- and max-pooled Conv-1..3 maps of the trunk the source search trained. Features
are standardised within each domain, so a weight measures how much a trunk channel matters in
that domain's units. Two attributes are compared by the Pearson correlation of their absolute
weights: which trunk channels (early fine-detail or late large-scale ones) carry an attribute is
what its head architecture must reach, whereas a weight's sign or colour channel may differ when
the same kind of cue is drawn with another polarity or hue.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from galm.data.domain import AttributeDomain
from galm.engine.batches import images_to_tensor, sequential_batches
from galm.nn.trunk import Trunk

PROBE_C = 0.1  # inverse L2 strength: probes are fitted on a few hundred images with ~200 features
MAX_PROBE_IMAGES = 4000


@torch.no_grad()
def pooled_trunk_features(
    trunk: Trunk, domain: AttributeDomain, indices: np.ndarray, device: torch.device, batch_size: int = 256
) -> np.ndarray:
    """(n, 2 * channels) global average and max of each trunk layer's map, BatchNorm in inference mode."""
    was_training = trunk.training
    trunk.eval()
    try:
        rows = []
        for batch in sequential_batches(indices, batch_size):
            features = trunk(images_to_tensor(domain.images[batch], device))
            maps = (features.conv1, features.conv2, features.conv3)
            rows.append(torch.cat([m.float().mean(dim=(2, 3)) for m in maps]
                                  + [m.float().amax(dim=(2, 3)) for m in maps], dim=1).cpu())
    finally:
        trunk.train(was_training)
    return torch.cat(rows).numpy().astype(np.float64)


def probe_weights(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(A, D) probe weights, one per label column, on features standardised over the given images.

    Images without a label for an attribute (NaN) are left out of its probe; a column with fewer
    than two classes among its labelled images gets zero weights.
    """
    std = features.std(axis=0)
    standard = (features - features.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)
    weights = np.zeros((labels.shape[1], features.shape[1]))
    for a in range(labels.shape[1]):
        known = ~np.isnan(labels[:, a])
        y = labels[known, a] > 0.5
        if len(np.unique(y)) < 2:
            continue
        probe = LogisticRegression(C=PROBE_C, max_iter=2000)
        probe.fit(standard[known], y)
        weights[a] = probe.coef_[0]
    return weights


def probe_similarity(new_weights: np.ndarray, searched_weights: np.ndarray) -> np.ndarray:
    """(n_new, n_searched) Pearson correlation of absolute probe weights (0 for an all-zero probe)."""

    def unit_rows(weights: np.ndarray) -> np.ndarray:
        magnitude = np.abs(weights)
        centred = magnitude - magnitude.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(centred, axis=1, keepdims=True)
        return centred / np.where(norm > 0, norm, 1.0)

    return unit_rows(new_weights) @ unit_rows(searched_weights).T


def probe_images(domain: AttributeDomain, seed: int) -> np.ndarray:
    """Sorted indices of (at most ``MAX_PROBE_IMAGES`` of) ``domain``'s training images, drawn by ``seed``."""
    indices = np.asarray(domain.split("train"))
    if len(indices) > MAX_PROBE_IMAGES:
        indices = np.sort(np.random.default_rng(seed).choice(indices, MAX_PROBE_IMAGES, replace=False))
    return indices


def domain_probe_weights(
    trunk: Trunk, domain: AttributeDomain, device: torch.device, seed: int
) -> np.ndarray:
    """Probe weights of every attribute of ``domain`` on (at most ``MAX_PROBE_IMAGES`` of) its training images."""
    indices = probe_images(domain, seed)
    features = pooled_trunk_features(trunk, domain, indices, device)
    return probe_weights(features, np.asarray(domain.labels[indices], dtype=np.float64))
