"""ALE (Akata et al.): attribute label embedding with a bilinear compatibility and a ranking loss.

Compatibility between an image and a class: ``F(x, y) = theta(x)^T W phi(y)`` where ``theta(x)``
is the standardised feature vector (D), ``phi(y)`` the class's attribute row (A) over the
training classes (:func:`class_attribute_matrix`, NaN entries filled with the attribute's mean,
l2-normalised per class when ``normalise_classes``), and ``W`` a D x A matrix.

Loss (``loss=``), with ``Delta(y, y') = 1[y != y']`` and margins
``m(y') = Delta(y, y') + F(x, y') - F(x, y)`` over the training classes:

* ``'ranking'`` (default): ALE's weighted approximate ranking (WSABIE weighting). With r the
  number of violating classes (``m > 0``) the loss of an image is
  ``beta_r / r * sum_{m(y') > 0} m(y')``, ``beta_r = 1 + 1/2 + ... + 1/r``; it pushes the true class
  to the top and weights images whose true class ranks low more. The number of training classes
  is small, so the rank is computed exactly rather than estimated by sampling as in the paper.
* ``'hinge'``: the structured (Crammer-Singer) hinge ``max(0, max_{y'} m(y'))``.

Plus ``weight_decay * ||W||^2 / 2``. W is trained in torch (CPU by default) by Adam on seeded
minibatches. Attribute scores come from the learned map: ``s(x) = theta(x)^T W``, a vector in
attribute space whose component a scores attribute a (``F(x, y) = s(x) . phi(y)``). An attribute
constant over the training classes' rows cannot be learned from class-level supervision: it
gets that constant score and is listed in ``constant_attributes``.
"""

from __future__ import annotations

import numpy as np
import torch

from galm.baselines.features import AttributeBaseline, training_class_matrix
from galm.data.feature_set import FeatureSet

__all__ = ["ALE", "ALE_LOSSES", "ale_loss"]

ALE_LOSSES = ("ranking", "hinge")


def _rank_weights(max_rank: int) -> torch.Tensor:
    """beta_r / r for r = 0..max_rank (beta_r = sum_{i<=r} 1/i; 0 for r = 0)."""
    r = torch.arange(1, max_rank + 1, dtype=torch.float64)
    beta = torch.cumsum(1.0 / r, 0)
    return torch.cat([torch.zeros(1, dtype=torch.float64), beta / r]).float()


def ale_loss(compat: torch.Tensor, target: torch.Tensor, loss: str = "ranking") -> torch.Tensor:
    """Mean loss of (B, C) compatibilities against (B,) true class positions (0/1 Delta)."""
    true = compat.gather(1, target[:, None])
    delta = torch.ones_like(compat).scatter_(1, target[:, None], 0.0)
    margins = delta + compat - true
    margins = margins.scatter(1, target[:, None], 0.0)  # the true class never violates
    violation = margins.clamp(min=0.0)
    if loss == "hinge":
        return violation.amax(dim=1).mean()
    if loss == "ranking":
        rank = (margins > 0).sum(dim=1)
        weight = _rank_weights(compat.shape[1]).to(compat.device)[rank]
        return (weight * violation.sum(dim=1)).mean()
    raise ValueError(f"ALE loss must be one of {ALE_LOSSES}, got {loss!r}")


class ALE(AttributeBaseline):
    """Attribute label embedding: bilinear image-class compatibility trained with a ranking loss."""

    name = "ale"

    def __init__(
        self,
        loss: str = "ranking",
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        normalise_classes: bool = True,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if loss not in ALE_LOSSES:
            raise ValueError(f"ALE loss must be one of {ALE_LOSSES}, got {loss!r}")
        if epochs < 1 or batch_size < 1 or lr <= 0 or weight_decay < 0:
            raise ValueError("ALE needs epochs >= 1, batch_size >= 1, lr > 0 and weight_decay >= 0")
        self.loss = loss
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.normalise_classes = bool(normalise_classes)
        self.device = device
        self.W_: np.ndarray | None = None
        self.classes_: np.ndarray | None = None
        self.class_embedding_: np.ndarray | None = None
        self.loss_history_: list[float] = []

    def _fit(self, feature_set: FeatureSet, rows: np.ndarray, x: np.ndarray, seed: int) -> None:
        classes, matrix, constant = training_class_matrix(feature_set, rows, self.train_splits)
        for column, value in constant.items():
            self.constant_attributes[feature_set.attribute_names[column]] = value
        phi = matrix.copy()
        if self.normalise_classes:
            norms = np.linalg.norm(phi, axis=1, keepdims=True)
            phi = phi / np.where(norms > 1e-12, norms, 1.0)
        self.classes_ = classes
        self.class_embedding_ = phi.astype(np.float32)
        self.loss_history_ = []
        generator = torch.Generator().manual_seed(int(seed))
        d, a = x.shape[1], phi.shape[1]
        w = (torch.randn(d, a, generator=generator) / np.sqrt(max(d, 1))).to(self.device).requires_grad_(True)
        if classes.size < 2:
            self.W_ = w.detach().cpu().numpy()  # one seen class: nothing to rank; every attribute is constant
            return
        position = np.searchsorted(classes, feature_set.class_index[rows])
        xs = torch.as_tensor(x, device=self.device)
        ys = torch.as_tensor(position, dtype=torch.long, device=self.device)
        phis = torch.as_tensor(self.class_embedding_, device=self.device)
        optimiser = torch.optim.Adam([w], lr=self.lr)
        n = xs.shape[0]
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=generator).to(self.device)
            total = 0.0
            for start in range(0, n, self.batch_size):
                batch = order[start : start + self.batch_size]
                compat = (xs[batch] @ w) @ phis.T
                value = ale_loss(compat, ys[batch], self.loss) + 0.5 * self.weight_decay * (w * w).sum()
                optimiser.zero_grad(set_to_none=True)
                value.backward()
                optimiser.step()
                total += float(value.detach()) * batch.numel()
            self.loss_history_.append(total / n)
        self.W_ = w.detach().cpu().numpy()

    def compatibility(self, features: np.ndarray) -> np.ndarray:
        """(N, C_train) compatibilities F(x, y) with the training classes (``classes_`` order)."""
        if not self.is_fitted:
            raise RuntimeError("ALE must be fitted before predicting")
        return self._standardise(np.asarray(features)) @ self.W_ @ self.class_embedding_.T

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.W_
