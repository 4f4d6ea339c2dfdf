"""Decision thresholds per attribute, chosen on validation scores to maximise balanced accuracy
(the mean of the true-positive and true-negative rates, which a rare attribute cannot game)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

CRITERION = "balanced_accuracy"
# The threshold of an attribute whose validation labels hold only one class.
FALLBACK_THRESHOLD = 0.5


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, balanced accuracy) for ``score >= threshold`` on known 0/1 labels; both classes
    must be present. Thresholds lie halfway between consecutive distinct scores (or between the
    extreme scores and 0 or 1); among equally good ones the one closest to 0.5 wins."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order] > 0.5
    positives, negatives = int(y.sum()), int((~y).sum())
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last index of each run of equal scores
    groups = s[last]  # distinct scores, descending
    true_pos = np.cumsum(y)[last]
    false_pos = (last + 1) - true_pos
    # Candidate k calls the first k distinct score groups positive (k = 0: nothing).
    balanced = (np.r_[0.0, true_pos / positives] + np.r_[1.0, 1.0 - false_pos / negatives]) / 2
    between = np.maximum((groups[:-1] + groups[1:]) / 2, np.nextafter(groups[1:], np.inf))
    candidates = np.r_[(groups[0] + 1.0) / 2, between, groups[-1] / 2]
    allowed = np.ones(len(candidates), dtype=bool)
    allowed[0] = groups[0] < 1.0  # 'nothing positive' needs a threshold above every score
    value = np.where(allowed, balanced, -np.inf)
    best = np.flatnonzero(value >= value.max() - 1e-12)
    pick = best[np.argmin(np.abs(candidates[best] - 0.5))]
    return float(candidates[pick]), float(balanced[pick])


def calibrate_thresholds(scores: np.ndarray, labels: np.ndarray, names: Sequence[str], split: str) -> dict[str, Any]:
    """The ``thresholds.json`` record of sigmoid ``scores`` (N, A) against ``labels`` (N, A; NaN
    unknown): per attribute its threshold, balanced accuracy and label counts; an attribute with
    only one class among its known labels keeps 0.5 and says why."""
    attributes: dict[str, dict[str, Any]] = {}
    for a, name in enumerate(names):
        known = ~np.isnan(labels[:, a])
        y, s = labels[known, a], scores[known, a].astype(np.float64)
        positives, negatives = int((y > 0.5).sum()), int((y <= 0.5).sum())
        entry: dict[str, Any] = {"positives": positives, "negatives": negatives}
        if positives == 0 or negatives == 0:
            entry.update(threshold=FALLBACK_THRESHOLD, balanced_accuracy=None,
                         note=f"{split} labels hold {positives} positives and {negatives} negatives: kept "
                              f"{FALLBACK_THRESHOLD}")
        else:
            threshold, balanced = best_threshold(s, y)
            entry.update(threshold=threshold, balanced_accuracy=balanced)
        attributes[name] = entry
    return {"split": split, "criterion": CRITERION, "decision": "probability >= threshold",
            "attributes": attributes}
