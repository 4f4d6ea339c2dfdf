"""Classical attribute baselines of the paper's section 4.2.3 on fixed image features.

* **DAP**: an independent linear classifier per attribute (:class:`~galm.baselines.dap.DAP`).
* **IAP**: a classifier over the seen classes, posterior times their attribute matrix
  (:class:`~galm.baselines.iap.IAP`).
* **ALE**: a bilinear image-class compatibility trained with a ranking loss; attribute scores
  from the learned map into attribute space (:class:`~galm.baselines.ale.ALE`).
* **HAP**: kernel attribute predictors regularised by a hypergraph whose hyperedges are the
  attributes, kernel chosen by kernel-target alignment (:class:`~galm.baselines.hap.HAP`).
* **UMF**: image and category factors in one shared space, attribute scores from their product
  (:class:`~galm.baselines.umf.UMF`).
* **MDG**: every training class a source domain; a class-invariant kernel projection (DICA), then
  one classifier per attribute (:class:`~galm.baselines.mdg.MDG`).
* **AFS** (transfer only): attention over a source domain's attribute classifiers builds the
  target's (:class:`~galm.baselines.afs.AFS`; needs ``source=`` features from the same extractor).

Each takes a :class:`~galm.data.feature_set.FeatureSet` (features from a galm run's trunk, a
local torch module, or xlsa17's ResNet-101 features), fits on training splits of seen classes and
scores the images of unseen test classes; :func:`evaluate_baseline` returns the
:class:`~galm.training.evaluate.AucReport` (per-attribute AUC, mAUC) galm's own networks are judged by.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from galm.baselines.afs import AFS
from galm.baselines.ale import ALE
from galm.baselines.dap import DAP
from galm.baselines.features import (
    AttributeBaseline,
    ConstantAttributeWarning,
    class_attribute_matrix,
    features_from_module,
    features_from_run,
    features_from_xlsa17,
)
from galm.baselines.hap import HAP
from galm.baselines.iap import IAP
from galm.baselines.mdg import MDG
from galm.baselines.umf import UMF
from galm.data.feature_set import FeatureSet
from galm.training.evaluate import AucReport

__all__ = [
    "AFS",
    "ALE",
    "BASELINES",
    "DAP",
    "HAP",
    "IAP",
    "MDG",
    "UMF",
    "AttributeBaseline",
    "ConstantAttributeWarning",
    "FeatureSet",
    "class_attribute_matrix",
    "evaluate_baseline",
    "features_from_module",
    "features_from_run",
    "features_from_xlsa17",
    "make_baseline",
    "run_baseline",
]

BASELINES: dict[str, type[AttributeBaseline]] = {
    "dap": DAP, "iap": IAP, "ale": ALE, "hap": HAP, "umf": UMF, "mdg": MDG, "afs": AFS,
}


def make_baseline(name: str, **options: Any) -> AttributeBaseline:
    """An unfitted baseline by name (a key of :data:`BASELINES`) with its options."""
    key = name.lower()
    if key not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[key](**options)


def run_baseline(
    name: str,
    feature_set: FeatureSet,
    train_splits: Sequence[str] = ("train", "val"),
    eval_split: str = "test",
    seed: int = 0,
    excluded: Mapping[str, str] | None = None,
    **options: Any,
) -> tuple[AttributeBaseline, AucReport]:
    """Fit baseline ``name`` on ``train_splits`` and score ``eval_split``: (fitted model, report).

    The fitted model's ``constant_attributes`` lists the attributes it could not learn.
    ``excluded``: attributes the training split could not teach, left out of mAUC as for galm's
    networks.
    """
    model = make_baseline(name, **options).fit(feature_set, splits=tuple(train_splits), seed=seed)
    report = model.evaluate(feature_set, eval_split)
    return model, dataclasses.replace(report, excluded={k: v for k, v in (excluded or {}).items()
                                                        if k in feature_set.attribute_names})


def evaluate_baseline(
    name: str,
    feature_set: FeatureSet,
    train_splits: Sequence[str] = ("train", "val"),
    eval_split: str = "test",
    seed: int = 0,
    excluded: Mapping[str, str] | None = None,
    **options: Any,
) -> AucReport:
    """Per-attribute AUCs and mAUC of baseline ``name`` on ``eval_split`` (unseen classes by default).

    Train+val by default, as galm's retrained networks are. ``excluded``: attributes the training
    split could not teach, left out of mAUC as for galm's networks. Options go to the baseline's
    constructor (e.g. ``kind='svm'`` for DAP, ``loss='hinge'`` for ALE, ``source=`` for AFS).
    """
    return run_baseline(name, feature_set, train_splits, eval_split, seed, excluded, **options)[1]
