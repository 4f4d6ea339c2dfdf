"""Binary cross-entropy over many attributes with unknown labels (NaN) masked out."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over attributes of each attribute's mean BCE on its known labels.

    Summing per-attribute means gives every head the same gradient it would get if trained
    alone on the batch, so batching attributes does not change any head's update. Attributes
    with no known label in the batch contribute nothing. `counts`: the known labels per attribute
    of the whole minibatch when `labels` are one process's shard of it, so that the shards'
    losses (and gradients) sum to the whole minibatch's; default: this batch's own.
    """
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in shape")
    known = ~torch.isnan(labels)
    targets = torch.where(known, labels, torch.zeros_like(labels))
    losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none") * known
    if counts is None:
        counts = known.sum(dim=0)
    per_attribute = losses.sum(dim=0) / counts.clamp(min=1)
    return per_attribute.sum()


def known_counts(labels: torch.Tensor) -> torch.Tensor:
    """Known (not NaN) labels per attribute of a minibatch's labels (B, m)."""
    return (~torch.isnan(labels)).sum(dim=0)
