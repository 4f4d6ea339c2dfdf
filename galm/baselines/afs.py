"""AFS (Murrugarra-Llerena and Kovashka, AAAI 2018, "Asking friendly strangers"): target attribute
classifiers built by attention over the attribute classifiers of another (source) domain.

One logistic classifier per source attribute is trained on the source domain's images
(:class:`~galm.baselines.dap.DAP`, on features from the same extractor). On a target image x its
log-odds, standardised over the target training images, form a bank of responses ``r_j(x)``; the
bank holds every source classifier and its negation (a target attribute may be the absence of a
source one), 2S entries for S learnable source attributes. Target attribute t attends over the bank:

    alpha_t(x) = softmax_j( a_tj + h(x)^T G_tj ),   h(x) = P^T x   (image-dependent attention)
    s_t(x)     = softplus(g_t) * sum_j alpha_tj(x) r_j(x) + v_t^T x + c_t

    min  sum_{i, t known} BCE(y_it, s_t(x_i)) + residual_decay/2 ||V||^2
         + attention_decay/2 (||P||^2 + ||G||^2)

trained in torch with Adam on seeded minibatches over the target training images. The penalised
residual ``v_t^T x`` is the target-only classifier; the attention is the transfer: where a source
classifier predicts the target attribute, attending to it costs no penalty, so the attention
concentrates there. :meth:`AFS.source_attention` gives the weights per source attribute (both signs
summed), :meth:`AFS.attention_summary` the strongest sources of each target attribute.

Where galm departs from the paper (implemented from the published method, not its code): the
source models are linear classifiers on shared fixed features, not fine-tuned CNNs; the attention
is conditioned on a low-rank projection of the image features (``attention_rank``; 0 makes it one
weight vector per target attribute); the negated source classifiers are an addition. Transfer
scenarios only: the source domain's features must come from the same extractor as the target's
(``galm experiment`` extracts both with the ``features_from`` cell's trunk).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from galm.baselines.dap import DAP
from galm.baselines.fitting import fit_by_minibatches, known_label_bce
from galm.baselines.features import (
    AttributeBaseline,
    ConstantAttributeWarning,
    constant_label_columns,
)
from galm.data.feature_set import FeatureSet

__all__ = ["AFS"]


class _Attention(torch.nn.Module):
    """Attention over the source bank, the scale of the attended response and the residual classifier."""

    def __init__(self, n_features: int, n_bank: int, n_targets: int, rank: int) -> None:
        super().__init__()
        self.prior = torch.nn.Parameter(torch.zeros(n_targets, n_bank))
        self.rank = rank
        if rank > 0:
            self.project = torch.nn.Linear(n_features, rank, bias=False)
            self.image_logits = torch.nn.Parameter(0.01 * torch.randn(n_targets, rank, n_bank))
        self.scale = torch.nn.Parameter(torch.zeros(n_targets))
        self.residual = torch.nn.Linear(n_features, n_targets)
        torch.nn.init.zeros_(self.residual.weight)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 2S) attention weights of every target attribute over the bank."""
        logits = self.prior.expand(x.shape[0], -1, -1)
        if self.rank > 0:
            logits = logits + torch.einsum("br,trj->btj", self.project(x), self.image_logits)
        return torch.softmax(logits, dim=2)

    def forward(self, x: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
        """(B, T) target attribute logits from features ``x`` and bank responses ``bank`` (B, 2S)."""
        attended = torch.einsum("btj,bj->bt", self.attention(x), bank)
        return torch.nn.functional.softplus(self.scale) * attended + self.residual(x)

    def penalties(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(residual, attention) squared norms."""
        residual = (self.residual.weight ** 2).sum()
        if self.rank == 0:
            return residual, torch.zeros(())
        return residual, (self.project.weight ** 2).sum() + (self.image_logits ** 2).sum()


class AFS(AttributeBaseline):
    """Asking friendly strangers: attention over a source domain's attribute classifiers."""

    name = "afs"

    def __init__(
        self,
        source: FeatureSet | None = None,
        source_splits: Sequence[str] = ("train", "val"),
        source_C: float = 1.0,
        attention_rank: int = 8,
        residual_decay: float = 0.1,
        attention_decay: float = 1.0,
        epochs: int = 100,
        batch_size: int = 128,
        lr: float = 2e-2,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if attention_rank < 0 or epochs < 1 or batch_size < 1 or lr <= 0 or source_C <= 0:
            raise ValueError("AFS needs attention_rank >= 0, epochs, batch_size >= 1 and positive lr, source_C")
        if residual_decay < 0 or attention_decay < 0:
            raise ValueError("AFS's residual_decay and attention_decay must be >= 0")
        self.source = source
        self.source_splits = tuple([source_splits] if isinstance(source_splits, str) else source_splits)
        self.source_C = float(source_C)
        self.attention_rank = int(attention_rank)
        self.residual_decay = float(residual_decay)
        self.attention_decay = float(attention_decay)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.device = device
        self.source_model_: DAP | None = None
        self.source_columns_: list[int] = []
        self.source_attribute_names_: list[str] = []
        self.model_: _Attention | None = None
        self.loss_history_: list[float] = []
        self._bank_mean: np.ndarray | None = None
        self._bank_scale: np.ndarray | None = None

    def _fit_source(self, n_features: int, seed: int) -> None:
        source = self.source
        if source is None:
            raise ValueError("AFS needs the source domain's features: AFS(source=FeatureSet, ...)")
        if source.n_features != n_features:
            raise ValueError(f"AFS: the source features have {source.n_features} dimensions and the target's "
                             f"{n_features}; both must come from the same feature extractor")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConstantAttributeWarning)  # unlearnable sources just leave the bank
            self.source_model_ = DAP(C=self.source_C).fit(source, splits=self.source_splits, seed=seed)
        self.source_columns_ = [c for c, name in enumerate(source.attribute_names)
                                if name not in self.source_model_.constant_attributes]
        if not self.source_columns_:
            raise ValueError(f"AFS: no attribute of the source {source.name!r} can be learned from its splits "
                             f"{list(self.source_splits)}")
        self.source_attribute_names_ = [source.attribute_names[c] for c in self.source_columns_]

    def _raw_bank(self, x: np.ndarray) -> np.ndarray:
        """(N, S) log-odds of the learnable source classifiers on target-standardised features ``x``."""
        raw = x.astype(np.float64) * self._scale + self._mean
        p = np.clip(self.source_model_.predict_attributes(raw)[:, self.source_columns_], 1e-7, 1 - 1e-7)
        return np.log(p) - np.log1p(-p)

    def _bank(self, x: np.ndarray) -> np.ndarray:
        """(N, 2S) standardised responses: every source classifier, then its negation."""
        r = (self._raw_bank(x) - self._bank_mean) / self._bank_scale
        return np.concatenate([r, -r], axis=1).astype(np.float32)

    def _fit(self, feature_set: FeatureSet, rows: np.ndarray, x: np.ndarray, seed: int) -> None:
        self._fit_source(feature_set.n_features, seed)
        labels = feature_set.labels[rows]
        for column, value in constant_label_columns(labels).items():
            self.constant_attributes[feature_set.attribute_names[column]] = value
        raw = self._raw_bank(x)
        self._bank_mean = raw.mean(axis=0)
        std = raw.std(axis=0)
        self._bank_scale = np.where(std > 1e-12, std, 1.0)
        with torch.random.fork_rng(devices=[]):  # seeded initial weights; the caller's RNG is left alone
            torch.manual_seed(int(seed))
            model = _Attention(x.shape[1], 2 * len(self.source_columns_), labels.shape[1], self.attention_rank)
        model = model.to(self.device)
        xs = torch.as_tensor(x, device=self.device)
        bank = torch.as_tensor(self._bank(x), device=self.device)
        ys = torch.as_tensor(np.nan_to_num(labels), dtype=torch.float32, device=self.device)
        known = torch.as_tensor(~np.isnan(labels), dtype=torch.float32, device=self.device)

        def batch_loss(batch: torch.Tensor) -> torch.Tensor:
            residual, attention = model.penalties()
            return (known_label_bce(model(xs[batch], bank[batch]), ys[batch], known[batch])
                    + 0.5 * self.residual_decay * residual + 0.5 * self.attention_decay * attention)

        self.loss_history_ = fit_by_minibatches(model.parameters(), xs.shape[0], self.epochs, self.batch_size,
                                                self.lr, seed, self.device, batch_loss)
        self.model_ = model.eval()

    @torch.no_grad()
    def attention(self, features: np.ndarray) -> np.ndarray:
        """(N, T, 2S) attention of every target attribute over the bank (every learnable source
        classifier, then its negation; rows sum to 1) for raw (N, D) target features."""
        if not self.is_fitted:
            raise RuntimeError("AFS must be fitted before predicting")
        x = torch.as_tensor(self._standardise(np.asarray(features)), device=self.device)
        return self.model_.attention(x).cpu().numpy()

    def source_attention(self, features: np.ndarray) -> np.ndarray:
        """(N, T, S) attention of every target attribute on every learnable source attribute
        (``source_attribute_names_``; both signs summed) for raw (N, D) target features."""
        weights = self.attention(features)
        s = len(self.source_columns_)
        return weights[:, :, :s] + weights[:, :, s:]

    def attention_summary(self, feature_set: FeatureSet, split: str, top: int = 3) -> dict[str, list[list]]:
        """Per target attribute, its ``top`` source attributes by mean attention on ``split``:
        ``[[source name, mean weight], ...]``."""
        mean = self.source_attention(feature_set.features[feature_set.split(split)]).mean(axis=0)
        summary = {}
        for t, name in enumerate(self.attribute_names):
            best = np.argsort(-mean[t])[:top]
            summary[name] = [[self.source_attribute_names_[j], round(float(mean[t, j]), 4)] for j in best]
        return summary

    @torch.no_grad()
    def _predict(self, x: np.ndarray) -> np.ndarray:
        xs = torch.as_tensor(x, device=self.device)
        return self.model_(xs, torch.as_tensor(self._bank(x), device=self.device)).cpu().numpy()
