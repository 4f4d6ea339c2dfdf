"""HAP (Huang, Elhoseiny, Elgammal, Yang, CVPR 2015): hypergraph-regularised attribute predictors.

The training images are the vertices of a hypergraph whose hyperedges are the attributes: hyperedge
a joins every training image labelled with attribute a (incidence ``H = [Y == 1]``, unit hyperedge
weights ``W``). Zhou et al.'s normalised hypergraph Laplacian
``L = I - Dv^{-1/2} H W De^{-1} H^T Dv^{-1/2}`` (vertex degrees Dv, hyperedge sizes De) measures
how unevenly a prediction varies inside the hyperedges. HAP learns all attribute predictors at once
as projections into a hypergraph embedding aligned with the attribute space, kernelised:
``F = (K + 1) A`` on the training images and ``f(x) = (k(x, X) + 1) A`` on new ones, by

    min_A  gamma * tr(F^T L F) + sum_a || M_a (F_a - y_a) ||^2 + eta * tr(A^T (K + 1) A)

with ``y`` the +-1 labels and ``M_a`` the mask of known labels of attribute a. It has a closed form:
``(gamma L (K + 1) + M_a (K + 1) + eta I) A_a = M_a y_a``, one linear solve of an N x N system for
every distinct label mask (usually one). The regulariser ``tr(F^T L F)`` smooths every attribute's
scores over the hyperedges of all attributes, so an attribute's prediction moves towards the
attributes it co-occurs with on the training images: the cross-attribute correlation HAP exploits.

**The kernel-alignment variant** (the one the GALM paper reports): the kernel is chosen by centred
kernel-target alignment with the attribute kernel ``Y Y^T`` over the training images, among RBF
kernels at multiples of the median-distance bandwidth (``gamma_grid``) and, with
``kernel='auto'``, the linear kernel. ``kernel='rbf'`` (default) aligns only the bandwidth;
``rbf_gamma=`` fixes it; ``kernel='linear'`` is linear HAP (the linear projections of the paper).

Where galm departs from the paper (implemented from the published method, not its code): unit
hyperedge weights; the regression loss on +-1 labels with unknown labels masked (the paper's
training sets are fully labelled); the class-label hyperedges of the paper's CSHAP variants are
not used (unseen test classes are scored, so class hyperedges would only describe seen classes);
beyond ``max_samples`` training images the kernel basis is a class-stratified subset (the closed
form is O(N^3)). The features are whatever :class:`~galm.data.feature_set.FeatureSet` is given:
the paper's pretrained CNN features when a user supplies them (e.g. :func:`features_from_module`),
Conv-3 features of a galm trunk in ``galm experiment``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.linalg import lu_factor, lu_solve

from galm.baselines.features import AttributeBaseline, constant_label_columns
from galm.baselines.kernels import (
    KernelMap,
    centred_alignment,
    median_gamma,
    stratified_subset,
)
from galm.data.feature_set import FeatureSet

__all__ = ["HAP", "HAP_KERNELS", "hypergraph_laplacian"]

HAP_KERNELS = ("rbf", "linear", "auto")


def hypergraph_laplacian(incidence: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Zhou et al.'s normalised Laplacian ``I - Dv^-1/2 H W De^-1 H^T Dv^-1/2`` of an (N, E) 0/1
    incidence matrix. Empty hyperedges are dropped; a vertex in no hyperedge gets a zero row and
    column (it is not regularised)."""
    h = np.asarray(incidence, dtype=np.float64)
    w = np.ones(h.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    edge_size = h.sum(axis=0)
    keep = edge_size > 0
    h, w, edge_size = h[:, keep], w[keep], edge_size[keep]
    degree = h @ w
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)), 0.0)
    scaled = h * inv_sqrt[:, None]
    theta = (scaled * (w / edge_size)) @ scaled.T
    laplacian = np.diag((degree > 0).astype(np.float64)) - theta
    return (laplacian + laplacian.T) / 2


class HAP(AttributeBaseline):
    """Hypergraph-regularised attribute predictors (kernelised, kernel chosen by alignment)."""

    name = "hap"

    def __init__(
        self,
        hypergraph_weight: float = 1.0,
        ridge: float = 0.1,
        kernel: str = "rbf",
        rbf_gamma: float | None = None,
        gamma_grid: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        max_samples: int = 3000,
    ) -> None:
        super().__init__()
        if kernel not in HAP_KERNELS:
            raise ValueError(f"HAP kernel must be one of {HAP_KERNELS}, got {kernel!r}")
        if hypergraph_weight < 0 or ridge <= 0:
            raise ValueError("HAP needs hypergraph_weight >= 0 and ridge > 0")
        if rbf_gamma is not None and rbf_gamma <= 0 or not gamma_grid or min(gamma_grid) <= 0:
            raise ValueError("HAP's rbf_gamma and gamma_grid must be positive")
        if max_samples < 2:
            raise ValueError(f"max_samples must be at least 2, got {max_samples}")
        self.hypergraph_weight = float(hypergraph_weight)
        self.ridge = float(ridge)
        self.kernel = kernel
        self.rbf_gamma = rbf_gamma
        self.gamma_grid = tuple(float(g) for g in gamma_grid)
        self.max_samples = int(max_samples)
        self.kernel_map_: KernelMap | None = None
        self.alignment_: dict[str, float] = {}
        self.coefficients_: np.ndarray | None = None

    def _choose_kernel(self, x: np.ndarray, signs: np.ndarray, rng: np.random.Generator) -> KernelMap:
        """The candidate kernel best aligned with the attribute kernel of the +-1 (0 unknown) labels."""
        target = signs @ signs.T
        candidates: dict[str, KernelMap] = {}
        if self.kernel in ("rbf", "auto"):
            if self.rbf_gamma is not None:
                candidates[f"rbf:{self.rbf_gamma:.4g}"] = KernelMap("rbf", x, self.rbf_gamma)
            else:
                base = median_gamma(x, rng)
                for scale in self.gamma_grid:
                    candidates[f"rbf:{base * scale:.4g}"] = KernelMap("rbf", x, base * scale)
        if self.kernel in ("linear", "auto"):
            candidates["linear"] = KernelMap("linear", x)
        self.alignment_ = {key: centred_alignment(kmap.gram(), target) for key, kmap in candidates.items()}
        return candidates[max(self.alignment_, key=self.alignment_.__getitem__)]

    def _fit(self, feature_set: FeatureSet, rows: np.ndarray, x: np.ndarray, seed: int) -> None:
        rng = np.random.default_rng(seed)
        subset = stratified_subset(feature_set.class_index[rows], self.max_samples, rng)
        x = x[subset].astype(np.float64)
        labels = feature_set.labels[rows][subset].astype(np.float64)
        for column, value in constant_label_columns(labels).items():
            self.constant_attributes[feature_set.attribute_names[column]] = value
        known = ~np.isnan(labels)
        signs = np.where(known, 2.0 * np.nan_to_num(labels) - 1.0, 0.0)
        self.kernel_map_ = self._choose_kernel(x, signs, rng)
        gram = self.kernel_map_.gram() + 1.0  # + 1: an intercept in the kernel
        laplacian = hypergraph_laplacian(known & (labels == 1.0))
        n = gram.shape[0]
        self.coefficients_ = np.zeros((n, labels.shape[1]))
        base = self.hypergraph_weight * laplacian @ gram + self.ridge * np.eye(n)
        masks, groups = np.unique(known.T, axis=0, return_inverse=True)
        for group, mask in enumerate(masks):
            columns = np.flatnonzero(groups.ravel() == group)
            system = base + mask[:, None] * gram
            self.coefficients_[:, columns] = lu_solve(lu_factor(system), mask[:, None] * signs[:, columns])

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return (self.kernel_map_(x) + 1.0) @ self.coefficients_
