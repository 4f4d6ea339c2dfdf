"""Tests for galm.training.evaluate: AUCs against scikit-learn, undefined attributes, reward accuracies."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from galm.training.evaluate import (
    attribute_aucs,
    balanced_accuracy,
    binary_accuracy,
    binary_auc,
    pairwise_auc,
)


def _random_split(rng: np.random.Generator, n: int, a: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores with many ties (rounded) and labels with ~20% unknowns."""
    scores = np.round(rng.normal(size=(n, a)), 1)
    labels = (rng.random((n, a)) < 0.3).astype(np.float64)
    labels[rng.random((n, a)) < 0.2] = np.nan
    return scores, labels


def test_binary_auc_matches_sklearn_with_ties_and_nans() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        scores, labels = _random_split(rng, 60, 1)
        known = ~np.isnan(labels[:, 0])
        expected = roc_auc_score(labels[known, 0], scores[known, 0])
        assert binary_auc(scores[:, 0], labels[:, 0]) == pytest.approx(expected, abs=1e-12)


def test_pairwise_auc_equals_binary_auc_for_every_pair() -> None:
    rng = np.random.default_rng(3)
    scores, _ = _random_split(rng, 80, 5)
    _, labels = _random_split(rng, 80, 4)
    labels[:, 3] = np.where(np.isnan(labels[:, 3]), np.nan, 0.0)  # one class only: undefined
    matrix = pairwise_auc(scores, labels)
    assert matrix.shape == (4, 5)
    for a in range(3):
        for s in range(5):
            assert matrix[a, s] == pytest.approx(binary_auc(scores[:, s], labels[:, a]), abs=1e-12)
    assert np.isnan(matrix[3]).all()
    with pytest.raises(ValueError, match="must be"):
        pairwise_auc(scores[:10], labels)


def test_binary_auc_all_tied_scores_is_one_half() -> None:
    assert binary_auc(np.zeros(6), np.array([0, 1, 0, 1, 1, 0.0])) == 0.5


def test_attribute_aucs_matches_sklearn_and_excludes_constant_attributes() -> None:
    rng = np.random.default_rng(1)
    scores, labels = _random_split(rng, 200, 8)
    labels[:, 2] = np.where(np.isnan(labels[:, 2]), np.nan, 1.0)  # constant known labels
    labels[:, 5] = np.nan  # no known labels
    labels[:, 6] = 0.0  # constant, all known
    names = [f"attr{i}" for i in range(8)]

    report = attribute_aucs(scores, labels, names, split="test")

    expected = {}
    for i in (0, 1, 3, 4, 7):
        known = ~np.isnan(labels[:, i])
        expected[names[i]] = roc_auc_score(labels[known, i], scores[known, i])
    assert report.undefined_attributes == ["attr2", "attr5", "attr6"]
    assert report.n_attributes_undefined == 3
    assert report.n_attributes_scored == 5
    assert report.per_attribute_auc.keys() == expected.keys()
    for name, auc in expected.items():
        assert report.per_attribute_auc[name] == pytest.approx(auc, abs=1e-9)
    assert report.mauc == pytest.approx(np.mean(list(expected.values())), abs=1e-9)
    assert report.split == "test"


def test_report_to_json_is_strict_json_and_nan_mauc_becomes_null() -> None:
    scores = np.array([[0.1, 0.2], [0.3, 0.4]])
    labels = np.array([[1.0, np.nan], [1.0, np.nan]])
    report = attribute_aucs(scores, labels, ["a", "b"], split="val")
    assert math.isnan(report.mauc)
    data = report.to_json()
    assert data["mauc"] is None
    assert data["undefined_attributes"] == ["a", "b"]
    assert data["n_attributes_scored"] == 0 and data["n_attributes_undefined"] == 2
    assert data["split"] == "val"
    json.dumps(data, allow_nan=False)


def test_attribute_aucs_accepts_torch_tensors() -> None:
    scores = torch.tensor([[0.9], [0.1], [0.5]])
    labels = torch.tensor([[1.0], [0.0], [0.0]])
    assert attribute_aucs(scores, labels, ["x"]).per_attribute_auc == {"x": 1.0}


@pytest.mark.parametrize(
    "scores, labels, names, message",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), ["a", "b"], "must both be"),
        (np.zeros((3, 2)), np.zeros((3, 2)), ["a"], "attribute names"),
        (np.zeros((3, 2)), np.zeros((3, 2)), ["a", "a"], "unique"),
        (np.zeros((3, 1)), np.array([[0.0], [2.0], [1.0]]), ["a"], "0, 1 or NaN"),
        (np.array([[np.nan], [0.0]]), np.array([[1.0], [0.0]]), ["a"], "finite"),
    ],
)
def test_attribute_aucs_rejects_bad_input(scores, labels, names, message) -> None:
    with pytest.raises(ValueError, match=message):
        attribute_aucs(scores, labels, names)


def test_binary_accuracy_masks_unknown_labels() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0])
    labels = torch.tensor([1.0, 1.0, float("nan"), 0.0, 0.0])
    assert binary_accuracy(logits, labels) == pytest.approx(2 / 4)
    assert isinstance(binary_accuracy(logits, labels), float)
    assert math.isnan(binary_accuracy(logits, torch.full((5,), float("nan"))))


def test_balanced_accuracy_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        logits = rng.normal(size=50)
        labels = (rng.random(50) < 0.15).astype(np.float64)
        labels[rng.random(50) < 0.1] = np.nan
        known = ~np.isnan(labels)
        expected = balanced_accuracy_score(labels[known], logits[known] > 0)
        assert balanced_accuracy(logits, labels) == pytest.approx(expected, abs=1e-12)


def test_balanced_accuracy_single_class_is_its_recall() -> None:
    assert balanced_accuracy(np.array([1.0, -1.0, 1.0, 1.0]), np.zeros(4)) == pytest.approx(0.25)
    assert math.isnan(balanced_accuracy(np.zeros(2), np.full(2, np.nan)))


def test_accuracy_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        binary_accuracy(np.zeros(3), np.zeros(4))
