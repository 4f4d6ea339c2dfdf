"""Class signatures, image labels and ground truth of a planned synthetic domain.

Each class gets a binary signature over the domain's factors, balanced within the training and
the test classes and retried until no attribute is constant on either; labels follow each image's
(possibly flipped) factors or its class, with optional label noise; the ground truth records
which factors, rule and cues every attribute stands for.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from galm.config.schema import SyntheticConfig
from galm.data.synthetic.plan import AttributeSpec, DomainPlan, apply_rules

_SIGNATURE_ATTEMPTS = 200


def class_signatures(
    config: SyntheticConfig, plan: DomainPlan, test_classes: list[int], rng: np.random.Generator
) -> np.ndarray:
    """(C, F) bool factor signatures, balanced within train and test classes; retried until no attribute is constant."""
    n_classes = config.classes_per_domain
    test = np.asarray(test_classes)
    train = np.setdiff1d(np.arange(n_classes), test)
    best, best_score = None, None
    for _ in range(_SIGNATURE_ATTEMPTS):
        signatures = np.zeros((n_classes, len(plan.factors)), dtype=bool)
        for group in (train, test):
            signatures[group] = _balanced_columns(len(group), len(plan.factors), rng)
        score = _signature_defects(signatures, plan.attributes, train, test)
        if best_score is None or score < best_score:
            best, best_score = signatures, score
        if score == 0:
            break
    assert best is not None
    return best


def _balanced_columns(n_rows: int, n_columns: int, rng: np.random.Generator) -> np.ndarray:
    """Binary (n_rows, n_columns) matrix with each column half ones (odd counts rounded at random)."""
    out = np.zeros((n_rows, n_columns), dtype=bool)
    for k in range(n_columns):
        n_ones = n_rows // 2 + int(n_rows % 2 and rng.random() < 0.5)
        out[rng.permutation(n_rows)[:n_ones], k] = True
    return out


def _signature_defects(
    signatures: np.ndarray, attributes: Sequence[AttributeSpec], train: np.ndarray, test: np.ndarray
) -> int:
    """Attributes constant over train (or test, when it has two classes or more) plus repeated signatures."""
    values = apply_rules(signatures, attributes)
    defects = int((values[train].min(0) == values[train].max(0)).sum())
    if len(test) >= 2:
        defects += int((values[test].min(0) == values[test].max(0)).sum())
    defects += len(signatures) - len(np.unique(signatures, axis=0))
    return defects


def image_labels(
    config: SyntheticConfig,
    image_factors: np.ndarray,
    class_attributes: np.ndarray,
    class_index: np.ndarray,
    plan: DomainPlan,
    rng: np.random.Generator,
) -> np.ndarray:
    """(N, A) float32 labels: from each image's factors or its class, then optional label noise."""
    if config.label_level == "image":
        labels = apply_rules(image_factors, plan.attributes)
    else:
        labels = class_attributes[class_index]
    noise = rng.random(labels.shape) < config.label_noise
    return (labels ^ noise).astype(np.float32)


def ground_truth_metadata(
    config: SyntheticConfig, plan: DomainPlan, signatures: np.ndarray, test_classes: list[int], flips: np.ndarray
) -> dict[str, Any]:
    """JSON ground truth: factors, per-attribute factors/rule/cues, class signatures."""
    ground_truth = {
        a.name: {
            "factors": [plan.factors[k].id for k in a.factors],
            "rule": a.rule,
            "cues": [plan.factors[k].cue for k in a.factors],
            "shared": all(plan.factors[k].id.startswith("shared_") for k in a.factors),
        }
        for a in plan.attributes
    }
    style = plan.background
    return {
        "generator": "galm.data.synthetic",
        "config": config.to_dict(),
        "domain_index": plan.index,
        "factors": [f.to_json() for f in plan.factors],
        "ground_truth": ground_truth,
        "class_signatures": signatures.astype(int).tolist(),
        "test_classes": list(test_classes),
        "flipped_factor_fraction": float(flips.mean()) if flips.size else 0.0,
        "background": {
            "dark": list(style.dark),
            "light": list(style.light),
            "frequency": [style.low_frequency, style.high_frequency],
            "blotch": style.blotch,
        },
    }
