"""Validation rewards of sampled heads: one number per (attribute, architecture) pair of a step."""

from __future__ import annotations

import torch

from galm.config.schema import RewardMetric
from galm.training.evaluate import binary_auc


def head_rewards(logits: torch.Tensor, labels: torch.Tensor, metric: RewardMetric = "accuracy") -> torch.Tensor:
    """Per-column reward (m,) of logits (B, m) against labels (B, m) with NaN unknown.

    `accuracy` is the paper's reward; `balanced_accuracy` (mean recall of the classes present)
    and `auc` suit rare attributes. A column without a usable label gives NaN, which the search
    leaves out of the controller update.
    """
    known = ~torch.isnan(labels)
    predicted = (logits > 0).float()
    if metric == "accuracy":
        correct = ((predicted == labels) & known).sum(0).float()
        count = known.sum(0).float()
        return torch.where(count > 0, correct / count.clamp(min=1), torch.full_like(count, float("nan")))
    if metric == "balanced_accuracy":
        positive = (labels == 1) & known
        negative = (labels == 0) & known
        n_pos, n_neg = positive.sum(0).float(), negative.sum(0).float()
        tpr = ((predicted == 1) & positive).sum(0) / n_pos.clamp(min=1)
        tnr = ((predicted == 0) & negative).sum(0) / n_neg.clamp(min=1)
        classes = (n_pos > 0).float() + (n_neg > 0).float()
        total = tpr * (n_pos > 0) + tnr * (n_neg > 0)
        return torch.where(classes > 0, total / classes.clamp(min=1), torch.full_like(classes, float("nan")))
    if metric == "auc":
        scores, targets = logits.detach().float().cpu().numpy(), labels.cpu().numpy()
        values = [binary_auc(scores[:, j], targets[:, j]) for j in range(scores.shape[1])]
        return torch.tensor(values, dtype=torch.float32, device=logits.device)
    raise ValueError(f"reward metric must be accuracy, balanced_accuracy or auc, got {metric!r}")
