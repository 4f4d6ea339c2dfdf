import math

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from galm.search.rewards import head_rewards

NAN = float("nan")


def test_accuracy_reward_masks_unknown_labels():
    logits = torch.tensor([[1.0, -1.0], [-2.0, 3.0], [0.5, 0.2]])
    labels = torch.tensor([[1.0, NAN], [1.0, 1.0], [0.0, NAN]])
    rewards = head_rewards(logits, labels, "accuracy")
    assert rewards[0].item() == pytest.approx(1 / 3)
    assert rewards[1].item() == 1.0


def test_balanced_accuracy_and_auc_match_scikit_learn():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 3)).astype(np.float32)
    labels = (rng.random((40, 3)) < [[0.1, 0.5, 0.8]]).astype(np.float32)
    balanced = head_rewards(torch.tensor(logits), torch.tensor(labels), "balanced_accuracy")
    auc = head_rewards(torch.tensor(logits), torch.tensor(labels), "auc")
    for j in range(3):
        expected = balanced_accuracy_score(labels[:, j], logits[:, j] > 0)
        assert balanced[j].item() == pytest.approx(expected, abs=1e-6)
        assert auc[j].item() == pytest.approx(roc_auc_score(labels[:, j], logits[:, j]), abs=1e-6)


def test_unusable_columns_give_nan_and_bad_metric_fails():
    logits = torch.zeros(3, 2)
    labels = torch.tensor([[NAN, 1.0], [NAN, 1.0], [NAN, 1.0]])
    assert math.isnan(head_rewards(logits, labels, "accuracy")[0].item())
    assert math.isnan(head_rewards(logits, labels, "auc")[1].item())
    assert head_rewards(logits, labels, "balanced_accuracy")[1].item() == 0.0
    with pytest.raises(ValueError, match="reward metric"):
        head_rewards(logits, labels, "f1")
