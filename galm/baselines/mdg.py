"""MDG (Gan, Yang, Gong, CVPR 2016): learning attributes equals multi-source domain generalisation.

Every training class is a source domain: an attribute detector should work on classes it has
never seen, so the features it reads should be distributed alike in every class. MDG learns a
kernel projection ``z(x) = B^T k~(x)`` (``k~(x)``: the centred kernel values of x against the
training images) that keeps what predicts the attributes and removes what tells the classes
apart, by domain-invariant component analysis (Muandet, Balduzzi, Schölkopf 2013) with the
attribute labels as the output:

    max_B  tr( B^T (1/N) K L (L + N eps I)^{-1} K B ) / tr( B^T (invariance * K Q K + K + ridge I) B )

with K the centred (N, N) kernel of the training images, L the (linear) kernel of their attribute
vectors, and Q the coefficients of the distributional variance,
``tr(K Q) = (1/C) sum_c ||mu_c - mu||^2`` in feature space, mu_c the kernel mean embedding of class
c (``Q = (1/C) sum_c e_c e_c^T - (1/C^2) (sum_c e_c)(sum_c e_c)^T``, e_c the class's indicator over
its size). The solution is the top ``components`` generalised eigenvectors of that pair. After the
projection, one logistic regression per attribute (:class:`~galm.baselines.dap.DAP`) on ``z``.
``supervised=False`` is UDICA (L = I: keep the variance of the images, not of the attributes).

Where galm departs from the paper (implemented from the published method, not its code): an RBF
kernel at a multiple of the median-distance bandwidth (``rbf_scale``); unknown labels (NaN) are
set to the attribute's training mean in L; logistic attribute classifiers (the paper used SVMs);
beyond ``max_samples`` training images the kernel basis is a class-stratified subset (the
eigenproblem is O(N^3)). The features are whatever :class:`~galm.data.feature_set.FeatureSet` is
given (the paper's CNN features when a user supplies them; Conv-3 features of a galm trunk in
``galm experiment``).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy.linalg import eigh

from galm.baselines.dap import DAP
from galm.baselines.features import AttributeBaseline, ConstantAttributeWarning
from galm.baselines.kernels import KernelMap, median_gamma, stratified_subset
from galm.data.feature_set import FeatureSet

__all__ = ["MDG", "distributional_variance", "distributional_variance_coefficients"]


def distributional_variance_coefficients(class_index: np.ndarray) -> np.ndarray:
    """(N, N) Q with ``tr(K Q)`` the distributional variance of the classes (Muandet et al. 2013)."""
    classes, position = np.unique(class_index, return_inverse=True)
    indicator = np.zeros((class_index.size, classes.size))
    indicator[np.arange(class_index.size), position] = 1.0
    indicator /= indicator.sum(axis=0, keepdims=True)
    total = indicator.sum(axis=1, keepdims=True)
    return indicator @ indicator.T / classes.size - total @ total.T / classes.size**2


def distributional_variance(features: np.ndarray, class_index: np.ndarray) -> float:
    """Mean squared distance of the class means from their mean, as a fraction of the total variance.

    With the linear kernel this is ``tr(X X^T Q) / tr(cov X)``: 0 when every class has the same mean
    (the feature distributions cannot tell classes apart by their first moment), larger when they can.
    Scale-free, so features of different projections compare.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)
    total = float(np.sum(x * x)) / x.shape[0]
    if total <= 1e-12:
        return 0.0
    q = distributional_variance_coefficients(class_index)
    return float(np.sum((x @ x.T) * q)) / total


class MDG(AttributeBaseline):
    """Attributes as multi-source domain generalisation: a class-invariant kernel projection, then DAP."""

    name = "mdg"

    def __init__(
        self,
        components: int = 32,
        invariance: float = 100.0,
        supervised: bool = True,
        epsilon: float = 1e-3,
        ridge: float = 1e-3,
        rbf_scale: float = 1.0,
        C: float = 1.0,
        max_samples: int = 3000,
    ) -> None:
        super().__init__()
        if components < 1 or invariance < 0 or epsilon <= 0 or ridge <= 0 or rbf_scale <= 0 or C <= 0:
            raise ValueError("MDG needs components >= 1, invariance >= 0 and positive epsilon, ridge, rbf_scale, C")
        if max_samples < 2:
            raise ValueError(f"max_samples must be at least 2, got {max_samples}")
        self.components = int(components)
        self.invariance = float(invariance)
        self.supervised = bool(supervised)
        self.epsilon = float(epsilon)
        self.ridge = float(ridge)
        self.rbf_scale = float(rbf_scale)
        self.C = float(C)
        self.max_samples = int(max_samples)
        self.kernel_map_: KernelMap | None = None
        self.projection_: np.ndarray | None = None
        self.eigenvalues_: np.ndarray | None = None
        self.classifier_: DAP | None = None
        self._gram_col_mean: np.ndarray | None = None
        self._gram_mean: float = 0.0

    def _output_kernel(self, labels: np.ndarray) -> np.ndarray:
        """L over the training images: attribute vectors (NaN -> training mean), centred."""
        if not self.supervised:
            return np.eye(labels.shape[0])
        known = ~np.isnan(labels)
        means = np.where(known.any(axis=0), np.nansum(labels, axis=0) / np.maximum(known.sum(axis=0), 1), 0.5)
        y = np.where(known, labels, means) - means
        return y @ y.T

    def _fit(self, feature_set: FeatureSet, rows: np.ndarray, x: np.ndarray, seed: int) -> None:
        rng = np.random.default_rng(seed)
        subset = stratified_subset(feature_set.class_index[rows], self.max_samples, rng)
        basis = x[subset].astype(np.float64)
        labels = feature_set.labels[rows][subset].astype(np.float64)
        self.kernel_map_ = KernelMap("rbf", basis, self.rbf_scale * median_gamma(basis, rng))
        gram = self.kernel_map_.gram()
        self._gram_col_mean, self._gram_mean = gram.mean(axis=0), float(gram.mean())
        k = self._centre(gram)
        n = k.shape[0]
        out = self._output_kernel(labels)
        numerator = k @ out @ np.linalg.solve(out + n * self.epsilon * np.eye(n), k) / n
        q = distributional_variance_coefficients(feature_set.class_index[rows][subset])
        denominator = self.invariance * k @ q @ k + k + self.ridge * np.eye(n)
        m = min(self.components, n)
        values, vectors = eigh((numerator + numerator.T) / 2, (denominator + denominator.T) / 2,
                               subset_by_index=[n - m, n - 1])
        order = np.argsort(values)[::-1]
        self.eigenvalues_, self.projection_ = values[order], vectors[:, order]
        projected = dataclasses.replace(feature_set, features=np.zeros((feature_set.n_images, m), np.float32))
        projected.features[rows] = self._project(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConstantAttributeWarning)  # announced once, by MDG's own fit
            self.classifier_ = DAP(C=self.C).fit(projected, splits=self.train_splits, seed=seed)
        self.constant_attributes.update(self.classifier_.constant_attributes)

    def _centre(self, k: np.ndarray) -> np.ndarray:
        """Kernel rows against the basis, centred in feature space with the basis's statistics."""
        return k - self._gram_col_mean[None, :] - k.mean(axis=1, keepdims=True) + self._gram_mean

    def project(self, features: np.ndarray) -> np.ndarray:
        """(N, components) class-invariant features z(x) of raw (N, D) features."""
        if not self.is_fitted:
            raise RuntimeError("MDG must be fitted before projecting")
        return self._project(self._standardise(np.asarray(features)))

    def _project(self, x: np.ndarray) -> np.ndarray:
        return (self._centre(self.kernel_map_(x)) @ self.projection_).astype(np.float32)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self.classifier_.predict_attributes(self._project(x))
