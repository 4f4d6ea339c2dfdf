"""UMF (Liang, Chang, Shan, Chen, ICCV 2015): a unified multiplicative framework for attribute learning.

Images and category information are projected jointly into one shared k-dimensional space, and an
attribute is predicted from the product of the two projections there, so the attribute classifier
is category-specific rather than shared by all categories. With ``u(x) = U^T x + u_0`` the image's
factor (k + 1 dimensions), ``v~_c = [1, v_c]`` the category factor of training class c (its first
component fixed at 1, so a category-independent linear classifier is a special case), ``w_a`` and
``b_a`` attribute a's weights:

    s_a(x, c) = w_a^T (u(x) * v~_c) + b_a                    (* elementwise)

    min_{U, u_0, V, W, b}  sum_{i, a known} BCE(y_ia, s_a(x_i, c_i))
                           + mu * sum_i CE(c_i, softmax_c(u(x_i)^T v~_c))
                           + lambda/2 * (||U||^2 + ||V||^2 + ||W||^2)

The second term is the joint projection: an image's factor must identify its category in the
shared space. An image of an unseen class has no category factor of its own; it gets the
expectation under that category posterior over the training classes,
``s_a(x) = w_a^T (u(x) * sum_c p(c | x) v~_c) + b_a`` (the product is linear in ``v~``). Trained
in torch (CPU by default) with Adam on seeded minibatches, like ALE.

Where galm departs from the paper (implemented from the published method, not its code): the
category information is the training-class identity (a learned factor per class), not a separate
category descriptor; unseen-class images take the posterior-weighted category factor; the loss is
logistic with unknown labels (NaN) masked, and no auxiliary category-only data is used. The
features are whatever :class:`~galm.data.feature_set.FeatureSet` is given (the paper's CNN
features when a user supplies them; Conv-3 features of a galm trunk in ``galm experiment``).
"""

from __future__ import annotations

import numpy as np
import torch

from galm.baselines.features import AttributeBaseline, constant_label_columns
from galm.baselines.fitting import fit_by_minibatches, known_label_bce
from galm.data.feature_set import FeatureSet

__all__ = ["UMF"]


class _Factors(torch.nn.Module):
    """The image projection, the category factors and the attribute weights of UMF."""

    def __init__(self, n_features: int, n_classes: int, n_attributes: int, rank: int) -> None:
        super().__init__()
        self.image = torch.nn.Linear(n_features, rank + 1)
        self.category = torch.nn.Parameter(0.1 * torch.randn(n_classes, rank))
        self.attribute = torch.nn.Linear(rank + 1, n_attributes)

    def category_factors(self) -> torch.Tensor:
        """(C, k + 1) factors with the fixed leading 1."""
        return torch.cat([torch.ones_like(self.category[:, :1]), self.category], dim=1)

    def class_logits(self, u: torch.Tensor) -> torch.Tensor:
        return u @ self.category_factors().T

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(N, A) attribute logits of image factors ``u`` and category factors ``v`` (both (N, k + 1))."""
        return self.attribute(u * v)

    def penalty(self) -> torch.Tensor:
        return (self.image.weight ** 2).sum() + (self.category ** 2).sum() + (self.attribute.weight ** 2).sum()


class UMF(AttributeBaseline):
    """Unified multiplicative framework: attribute scores as products of image and category factors."""

    name = "umf"

    def __init__(
        self,
        rank: int = 32,
        category_weight: float = 0.1,
        epochs: int = 60,
        batch_size: int = 128,
        lr: float = 1e-2,
        weight_decay: float = 1e-3,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if rank < 1 or epochs < 1 or batch_size < 1 or lr <= 0 or weight_decay < 0 or category_weight < 0:
            raise ValueError("UMF needs rank, epochs, batch_size >= 1, lr > 0, weight_decay >= 0, category_weight >= 0")
        self.rank = int(rank)
        self.category_weight = float(category_weight)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.device = device
        self.model_: _Factors | None = None
        self.classes_: np.ndarray | None = None
        self.loss_history_: list[float] = []

    def _fit(self, feature_set: FeatureSet, rows: np.ndarray, x: np.ndarray, seed: int) -> None:
        labels = feature_set.labels[rows]
        for column, value in constant_label_columns(labels).items():
            self.constant_attributes[feature_set.attribute_names[column]] = value
        self.classes_ = np.unique(feature_set.class_index[rows])
        position = np.searchsorted(self.classes_, feature_set.class_index[rows])
        with torch.random.fork_rng(devices=[]):  # seeded initial factors; the caller's RNG is left alone
            torch.manual_seed(int(seed))
            model = _Factors(x.shape[1], self.classes_.size, labels.shape[1], self.rank).to(self.device)
        xs = torch.as_tensor(x, device=self.device)
        ys = torch.as_tensor(np.nan_to_num(labels), dtype=torch.float32, device=self.device)
        known = torch.as_tensor(~np.isnan(labels), dtype=torch.float32, device=self.device)
        cs = torch.as_tensor(position, dtype=torch.long, device=self.device)

        def batch_loss(batch: torch.Tensor) -> torch.Tensor:
            u = model.image(xs[batch])
            v = model.category_factors()[cs[batch]]
            loss = known_label_bce(model.scores(u, v), ys[batch], known[batch]) + 0.5 * self.weight_decay * model.penalty()
            if self.category_weight > 0 and self.classes_.size > 1:
                loss = loss + self.category_weight * torch.nn.functional.cross_entropy(model.class_logits(u), cs[batch])
            return loss

        self.loss_history_ = fit_by_minibatches(model.parameters(), xs.shape[0], self.epochs, self.batch_size,
                                                self.lr, seed, self.device, batch_loss)
        self.model_ = model.eval()

    @torch.no_grad()
    def category_posterior(self, features: np.ndarray) -> np.ndarray:
        """(N, C_train) p(c | x) over the training classes (``classes_`` order) in the shared space."""
        if not self.is_fitted:
            raise RuntimeError("UMF must be fitted before predicting")
        u = self.model_.image(torch.as_tensor(self._standardise(np.asarray(features)), device=self.device))
        return torch.softmax(self.model_.class_logits(u), dim=1).cpu().numpy()

    @torch.no_grad()
    def _predict(self, x: np.ndarray) -> np.ndarray:
        u = self.model_.image(torch.as_tensor(x, device=self.device))
        posterior = torch.softmax(self.model_.class_logits(u), dim=1)
        return self.model_.scores(u, posterior @ self.model_.category_factors()).cpu().numpy()
