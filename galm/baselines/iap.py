"""IAP (Lampert et al.): attributes through a classifier over the seen (training) classes.

A multinomial logistic regression on standardised features gives the posterior p(c | x) over
the training classes; the score of attribute a is

    s_a(x) = sum_c p(c | x) * A[c, a]

with A the class-attribute matrix restricted to the training classes (:func:`class_attribute_matrix`:
the given matrix, or per-class means of the training labels). An image of an unseen class is
described through the seen classes it resembles, which is how IAP transfers. An attribute
constant over the training classes' rows (or unknown for all of them) carries no information
and gets that constant score; it is listed in ``constant_attributes``.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from galm.baselines.features import AttributeBaseline, training_class_matrix
from galm.data.feature_set import FeatureSet

__all__ = ["IAP"]


class IAP(AttributeBaseline):
    """Indirect attribute prediction: class posterior times the training classes' attribute matrix."""

    name = "iap"

    def __init__(self, C: float = 1.0, max_iter: int = 2000) -> None:
        super().__init__()
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}")
        self.C = float(C)
        self.max_iter = int(max_iter)
        self.classifier_: LogisticRegression | None = None
        self.classes_: np.ndarray | None = None
        self.class_matrix_: np.ndarray | None = None

    def _fit(self, feature_set: FeatureSet, rows: np.ndarray, x: np.ndarray, seed: int) -> None:
        classes, matrix, constant = training_class_matrix(feature_set, rows, self.train_splits)
        self.classes_ = classes
        self.class_matrix_ = matrix
        for column, value in constant.items():
            self.constant_attributes[feature_set.attribute_names[column]] = value
        if classes.size < 2:
            self.classifier_ = None  # one seen class: its posterior is 1 for every image
            return
        y = feature_set.class_index[rows]
        self.classifier_ = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=seed).fit(x, y)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(N, C_train) posterior over the training classes (columns in ``classes_`` order)."""
        if not self.is_fitted:
            raise RuntimeError("IAP must be fitted before predicting")
        return self._posterior(self._standardise(np.asarray(features)))

    def _posterior(self, x: np.ndarray) -> np.ndarray:
        if self.classifier_ is None:
            return np.ones((x.shape[0], 1))
        return self.classifier_.predict_proba(x)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self._posterior(x) @ self.class_matrix_
