"""Attribute metrics: per-attribute ROC AUC, mAUC, and the accuracies a search uses as rewards.

Labels are float arrays in which NaN marks an unknown label. An attribute whose known labels on a
split are all one value (or that has none) has no defined AUC: it is excluded from the mean and
counted, never scored 0.5, so that mAUC figures stay comparable across splits. An attribute that
could not be learned from the training split (constant there, or too few positives or negatives:
``excluded``) is scored but left out of ``mauc``; ``mauc_all_varying`` keeps it, so a reader sees
what was left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "AucReport",
    "attribute_aucs",
    "binary_auc",
    "pairwise_auc",
    "binary_accuracy",
    "balanced_accuracy",
]


@dataclass(frozen=True)
class AucReport:
    """Per-attribute AUCs on one split, their mean, and the attributes whose AUC is undefined."""

    per_attribute_auc: dict[str, float]
    undefined_attributes: list[str] = field(default_factory=list)
    split: str = ""
    # Attributes the training split could not teach (name -> reason); scored, not in `mauc`.
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def learnable_auc(self) -> dict[str, float]:
        """AUCs of the scored attributes that were learnable from the training split."""
        return {k: v for k, v in self.per_attribute_auc.items() if k not in self.excluded}

    @property
    def n_attributes_scored(self) -> int:
        """Attributes in `mauc`: defined on this split and learnable."""
        return len(self.learnable_auc)

    @property
    def n_attributes_undefined(self) -> int:
        return len(self.undefined_attributes)

    @property
    def mauc(self) -> float:
        """Mean AUC over the learnable attributes defined on this split; NaN when there are none."""
        values = list(self.learnable_auc.values())
        return float(np.mean(values)) if values else math.nan

    @property
    def mauc_all_varying(self) -> float:
        """Mean AUC over every attribute that varies on this split, learnable or not."""
        values = list(self.per_attribute_auc.values())
        return float(np.mean(values)) if values else math.nan

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (a NaN mAUC becomes null, which strict JSON readers accept)."""
        mauc, every = self.mauc, self.mauc_all_varying
        return {
            "split": self.split,
            "mauc": None if math.isnan(mauc) else mauc,
            "n_attributes_scored": self.n_attributes_scored,
            "mauc_all_varying": None if math.isnan(every) else every,
            "n_attributes_varying": len(self.per_attribute_auc),
            "n_attributes_undefined": self.n_attributes_undefined,
            "per_attribute_auc": dict(self.per_attribute_auc),
            "undefined_attributes": list(self.undefined_attributes),
            "skipped": dict(self.excluded),
        }


def _as_numpy(values: Any) -> np.ndarray:
    """Converts a NumPy array, torch tensor or sequence to a float64 array."""
    if hasattr(values, "detach"):  # torch.Tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def _check_labels(labels: np.ndarray, name: str = "labels") -> None:
    """Rejects labels other than 0, 1 and NaN, which would silently change the positive class."""
    known = labels[~np.isnan(labels)]
    bad = known[(known != 0) & (known != 1)]
    if bad.size:
        raise ValueError(f"{name} must be 0, 1 or NaN (unknown); found {bad[0]!r}")


def _rank_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """(S,) ROC AUC of each score column (n, S) for the boolean labels (n,): the Mann-Whitney U
    statistic over average ranks (ties count one half); NaN unless both classes occur."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.full(scores.shape[1], np.nan)
    ranks = rankdata(scores, method="average", axis=0)
    return (ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _labelled_rows(values: Any, labels: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One attribute's values and 0/1 labels as flat arrays, keeping only the rows whose label is known."""
    values, labels = _as_numpy(values).ravel(), _as_numpy(labels).ravel()
    if values.shape != labels.shape:
        raise ValueError(f"{name} {values.shape} and labels {labels.shape} differ in shape")
    _check_labels(labels)
    known = ~np.isnan(labels)
    return values[known], labels[known]


def binary_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of one attribute by the Mann-Whitney rank statistic (ties count one half).

    Equal to ``sklearn.metrics.roc_auc_score`` including ties. Rows with NaN labels are dropped;
    NaN is returned when the known labels do not contain both classes.
    """
    scores, labels = _labelled_rows(scores, labels, "scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores of labelled rows must be finite")
    return float(_rank_auc(scores[:, None], labels == 1)[0])


def pairwise_auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(A, S) ROC AUC of every score column (N, S) against every label column (N, A), as ``binary_auc``.

    One ranking of the labelled rows serves all score columns, so comparing hundreds of
    predictors with hundreds of attributes stays cheap. Undefined pairs are NaN.
    """
    scores, labels = _as_numpy(scores), _as_numpy(labels)
    if scores.ndim != 2 or labels.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be (N, S) and (N, A)")
    _check_labels(labels)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    result = np.full((labels.shape[1], scores.shape[1]), np.nan)
    for a in range(labels.shape[1]):
        known = ~np.isnan(labels[:, a])
        result[a] = _rank_auc(scores[known], labels[known, a] == 1)
    return result


def attribute_aucs(
    scores: np.ndarray,
    labels: np.ndarray,
    attribute_names: Sequence[str],
    split: str = "",
    excluded: Mapping[str, str] | None = None,
) -> AucReport:
    """Per-attribute AUCs of (N, A) scores against (N, A) labels; NaN labels are ignored.

    `excluded`: attributes the training split could not teach (name -> reason), left out of mAUC.
    """
    scores = _as_numpy(scores)
    labels = _as_numpy(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must both be (N, A); got {scores.shape} and {labels.shape}"
        )
    names = list(attribute_names)
    if len(names) != scores.shape[1]:
        raise ValueError(f"{len(names)} attribute names for {scores.shape[1]} attribute columns")
    if len(set(names)) != len(names):
        raise ValueError("attribute names must be unique")
    _check_labels(labels)
    scored: dict[str, float] = {}
    undefined: list[str] = []
    for column, name in enumerate(names):
        auc = binary_auc(scores[:, column], labels[:, column])
        if math.isnan(auc):
            undefined.append(name)
        else:
            scored[name] = auc
    skipped = {name: reason for name, reason in (excluded or {}).items() if name in names}
    return AucReport(per_attribute_auc=scored, undefined_attributes=undefined, split=split, excluded=skipped)


def _known_predictions(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Predicted classes (logit > 0) and labels of the rows whose label is known."""
    logits, labels = _labelled_rows(logits, labels, "logits")
    return logits > 0, labels == 1


def binary_accuracy(logits: Any, labels: Any) -> float:
    """Fraction of labelled rows whose sign of the logit matches the label; NaN if none labelled."""
    predicted, actual = _known_predictions(logits, labels)
    if actual.size == 0:
        return math.nan
    return float(np.mean(predicted == actual))


def balanced_accuracy(logits: Any, labels: Any) -> float:
    """Mean of the recalls of the classes present among labelled rows; NaN if none labelled.

    Robust to the heavy class imbalance of most attributes, where plain accuracy rewards a head
    that always answers "absent". With one class present it is that class's recall (as sklearn).
    """
    predicted, actual = _known_predictions(logits, labels)
    recalls = [
        float(np.mean(predicted[actual == cls] == cls))
        for cls in (False, True)
        if np.any(actual == cls)
    ]
    return float(np.mean(recalls)) if recalls else math.nan
