"""DAP (Lampert et al.): one independent linear classifier per attribute.

The paper's DAP trains a linear SVM per attribute on fixed CNN features. Here every attribute
gets its own scikit-learn classifier on standardised features:

* ``kind='logistic'`` (default): ``LogisticRegression``; scores are p(attribute | x).
* ``kind='svm'``: ``LinearSVC``; scores are its ``decision_function`` (signed distances), which
  rank images exactly as calibrated probabilities would (AUC only needs a ranking). With
  ``calibrate=True`` the SVM is wrapped in ``CalibratedClassifierCV`` (sigmoid) to give
  probabilities, when each class has at least two known training images.

Images whose label of an attribute is unknown (NaN) are left out of that attribute's training
set. An attribute with no known training label, or whose known training labels are all one
value, cannot be learned: it gets a constant score (its training positive rate, 0.5 when no label
is known) and is listed in ``constant_attributes``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from galm.baselines.features import AttributeBaseline, constant_label_columns
from galm.data.feature_set import FeatureSet

__all__ = ["DAP", "DAP_KINDS"]

DAP_KINDS = ("logistic", "svm")


def _fit_one(estimator: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """Fit one attribute's classifier (a module-level function so joblib can ship it)."""
    return estimator.fit(x, y)


class DAP(AttributeBaseline):
    """Direct attribute prediction: an independent probabilistic linear classifier per attribute."""

    name = "dap"

    def __init__(
        self,
        kind: str = "logistic",
        C: float = 1.0,
        class_weight: str | None = None,
        calibrate: bool = False,
        max_iter: int = 2000,
        n_jobs: int | None = None,
    ) -> None:
        super().__init__()
        if kind not in DAP_KINDS:
            raise ValueError(f"DAP kind must be one of {DAP_KINDS}, got {kind!r}")
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}")
        if class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {class_weight!r}")
        self.kind = kind
        self.C = float(C)
        self.class_weight = class_weight
        self.calibrate = bool(calibrate)
        self.max_iter = int(max_iter)
        self.n_jobs = n_jobs
        self.estimators_: list[Any | None] = []

    def _estimator(self, y: np.ndarray, seed: int) -> Any:
        """A fresh classifier for one attribute with training labels ``y``."""
        if self.kind == "logistic":
            return LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=seed)
        svm = LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=seed)
        minority = int(min(np.sum(y == 1), np.sum(y == 0)))
        if self.calibrate and minority >= 2:
            return CalibratedClassifierCV(svm, method="sigmoid", cv=min(3, minority))
        return svm

    def _fit(self, feature_set: FeatureSet, rows: np.ndarray, x: np.ndarray, seed: int) -> None:
        labels = feature_set.labels[rows]
        jobs: list[tuple[int, Any, np.ndarray]] = []
        self.estimators_ = [None] * feature_set.n_attributes
        constant = constant_label_columns(labels)
        for column, name in enumerate(feature_set.attribute_names):
            if column in constant:
                self.constant_attributes[name] = constant[column]
                continue
            known = ~np.isnan(labels[:, column])
            jobs.append((column, clone(self._estimator(labels[known, column].astype(np.int64), seed)), known))
        if self.n_jobs in (None, 1):
            fitted = [_fit_one(est, x[known], labels[known, column].astype(np.int64)) for column, est, known in jobs]
        else:
            from joblib import Parallel, delayed

            fitted = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_one)(est, x[known], labels[known, column].astype(np.int64)) for column, est, known in jobs
            )
        for (column, _, _), estimator in zip(jobs, fitted):
            self.estimators_[column] = estimator

    def _predict(self, x: np.ndarray) -> np.ndarray:
        scores = np.zeros((x.shape[0], len(self.estimators_)))
        for column, estimator in enumerate(self.estimators_):
            if estimator is None:
                continue  # a constant attribute: filled in by predict_attributes
            if hasattr(estimator, "predict_proba"):
                scores[:, column] = estimator.predict_proba(x)[:, 1]
            else:
                scores[:, column] = estimator.decision_function(x)
        return scores
