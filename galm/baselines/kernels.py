"""Kernels for the kernelised baselines (HAP, MDG): RBF and linear Gram matrices, the median
bandwidth, centred kernel-target alignment, and a class-stratified basis when N is too large.

A kernel method here costs O(N^3) in the number of basis samples, so a baseline with more training
images than ``max_samples`` fits on a class-stratified subset of them (every class keeps at least
one image); with the synthetic domains (a few hundred images) every image is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances

__all__ = ["KERNELS", "KernelMap", "centred_alignment", "median_gamma", "stratified_subset"]

KERNELS = ("rbf", "linear")


@dataclass(frozen=True)
class KernelMap:
    """k(x, basis) for a fixed basis: ``'rbf'`` exp(-gamma ||x - b||^2) or ``'linear'`` x . b."""

    kind: str
    basis: np.ndarray
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kind!r}")
        if self.kind == "rbf" and not self.gamma > 0:
            raise ValueError(f"the RBF kernel needs gamma > 0, got {self.gamma}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, B) kernel values between ``x`` (N, D) and the basis (B, D)."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "linear":
            return x @ self.basis.T
        return np.exp(-self.gamma * euclidean_distances(x, self.basis, squared=True))

    def gram(self) -> np.ndarray:
        """(B, B) Gram matrix of the basis, exactly symmetric."""
        k = self(self.basis)
        return (k + k.T) / 2


def median_gamma(x: np.ndarray, rng: np.random.Generator, max_points: int = 1000) -> float:
    """1 / median squared distance between (at most ``max_points``) rows of ``x``: the usual RBF scale."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] > max_points:
        x = x[rng.choice(x.shape[0], max_points, replace=False)]
    d = euclidean_distances(x, x, squared=True)[np.triu_indices(x.shape[0], 1)]
    d = d[d > 1e-12]
    return 1.0 / float(np.median(d)) if d.size else 1.0


def centred_alignment(k: np.ndarray, target: np.ndarray) -> float:
    """Centred kernel-target alignment <HKH, HTH>_F / (||HKH|| ||HTH||) (Cortes et al. 2012), in [-1, 1]."""
    def centre(m: np.ndarray) -> np.ndarray:
        return m - m.mean(axis=0, keepdims=True) - m.mean(axis=1, keepdims=True) + m.mean()

    kc, tc = centre(np.asarray(k, dtype=np.float64)), centre(np.asarray(target, dtype=np.float64))
    norm = np.linalg.norm(kc) * np.linalg.norm(tc)
    return float(np.sum(kc * tc) / norm) if norm > 1e-12 else 0.0


def stratified_subset(class_index: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of about ``max_samples`` rows (all if fewer), classes in proportion, each class
    at least once (so more than ``max_samples`` only when there are more classes than that)."""
    n = class_index.shape[0]
    if max_samples < 1:
        raise ValueError(f"max_samples must be at least 1, got {max_samples}")
    if n <= max_samples:
        return np.arange(n)
    firsts, rest = [], []
    for c in np.unique(class_index):
        rows = rng.permutation(np.flatnonzero(class_index == c))
        share = max(1, int(max_samples * rows.size / n))
        firsts.append(rows[:1])
        rest.append(rows[1:share])
    first, extra = np.concatenate(firsts), np.concatenate(rest)
    room = max(0, max_samples - first.size)
    if extra.size > room:
        extra = rng.choice(extra, room, replace=False)
    return np.sort(np.concatenate([first, extra]))
