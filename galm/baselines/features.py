"""Fixed image features for the classical baselines, the class-attribute matrix, and the interface they share.

A :class:`~galm.data.feature_set.FeatureSet` holds a domain's labels, classes and splits with one
feature vector per image in place of the image. Three sources fill one:

* :func:`features_from_run`: the shared trunk (Conv-1..3) of a finished galm run's ``model.pt``,
  Conv-3 globally average-pooled (optionally also max-pooled and concatenated);
* :func:`features_from_module`: any torch module the user names, loaded from a **local** file
  (TorchScript, or, only when explicitly allowed, a pickled full module). Nothing is downloaded;
* :func:`features_from_xlsa17`: the ResNet-101 features shipped with xlsa17 (``res101.mat``).

The paper (section 4.2.3) fed these baselines 4,096-d VGG16 features; galm has no pretrained
network of its own, so those features come from whatever local module the user supplies.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from galm.data.domain import AttributeDomain
from galm.data.feature_set import FeatureSet
from galm.engine.batches import images_to_tensor, sequential_batches
from galm.runs.directory import MODEL_FILE, RunDirectory

__all__ = [
    "POOLINGS",
    "features_from_run",
    "features_from_module",
    "features_from_xlsa17",
    "class_attribute_matrix",
    "extract_features",
    "load_local_module",
    "AttributeBaseline",
    "ConstantAttributeWarning",
    "constant_label_columns",
    "training_class_matrix",
]

POOLINGS = ("avg", "avgmax")


def _from_domain(domain: AttributeDomain, features: np.ndarray, metadata: dict[str, Any]) -> FeatureSet:
    """A FeatureSet carrying ``domain``'s labels, classes and splits."""
    return FeatureSet(
        features=features,
        labels=domain.labels,
        attribute_names=domain.attribute_names,
        class_index=domain.class_index,
        class_names=domain.class_names,
        splits=domain.splits,
        class_attributes=domain.class_attributes,
        name=domain.name,
        label_level=domain.label_level,
        metadata={"label_level": domain.label_level, **metadata},
    )


@torch.no_grad()
def extract_features(
    fn: Callable[[torch.Tensor], torch.Tensor],
    images: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Apply ``fn`` (normalised (B, 3, H, W) -> (B, ...)) batch by batch; returns (N, D) float32."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    parts: list[np.ndarray] = []
    for idx in sequential_batches(np.arange(images.shape[0]), batch_size):
        batch = images_to_tensor(images[idx[0] : idx[-1] + 1], device)
        out = fn(batch)
        parts.append(out.reshape(out.shape[0], -1).float().cpu().numpy())
    if not parts:
        raise ValueError("no images to extract features from")
    return np.concatenate(parts).astype(np.float32)


def _pool(x: torch.Tensor, pooling: str) -> torch.Tensor:
    """Global pooling of a (B, C, H, W) map: 'avg' -> (B, C); 'avgmax' -> (B, 2C) [avg, max]."""
    avg = x.mean(dim=(2, 3))
    if pooling == "avg":
        return avg
    return torch.cat([avg, x.amax(dim=(2, 3))], dim=1)


def features_from_run(
    run_dir: str | os.PathLike[str],
    domain: AttributeDomain,
    batch_size: int = 256,
    pooling: str = "avg",
    device: torch.device | str = "cpu",
) -> FeatureSet:
    """Conv-3 features of a finished galm run's trunk on every image of ``domain``.

    ``run_dir`` is the run directory holding ``model.pt`` (or that file itself). The trunk runs in
    eval mode without gradients; Conv-3's map is global-average-pooled (``pooling='avg'``, 64-d
    with the default space) or average- and max-pooled and concatenated (``'avgmax'``). The trunk
    is fully convolutional, so the domain's resolution need not equal the run's.
    """
    from galm.runs.model_file import load_model

    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    path = Path(run_dir)
    if path.is_dir():
        path = RunDirectory(path).model_path
    if not path.is_file():
        raise FileNotFoundError(f"no trained model at {path} (expected a galm run directory with {MODEL_FILE})")
    net, _ = load_model(path)
    trunk = net.trunk.to(device).eval()
    features = extract_features(lambda x: _pool(trunk(x).conv3, pooling), domain.images, batch_size, device)
    return _from_domain(
        domain,
        features,
        {"source": "run", "model": str(path), "layer": "conv3", "pooling": pooling, "run_resolution": net.space.resolution},
    )


def load_local_module(path: str | os.PathLike[str], allow_pickle: bool = False) -> Callable[[torch.Tensor], Any]:
    """A torch module from a local file: ``torch.export`` (``.pt2``), TorchScript, or a trusted pickle.

    * ``*.pt2``: a ``torch.export`` archive (``torch.export.load(...).module()``); export it with a
      dynamic batch dimension, since the last batch is usually smaller. Its train/eval mode is
      the one it was exported in.
    * otherwise a TorchScript archive (``torch.jit.load``; torch 2.13 marks it deprecated, and the
      warning is silenced here). TorchScript runs no arbitrary Python from the file.
    * a pickled full module (``torch.save(module)``) can only be read with
      ``torch.load(weights_only=False)``, which **executes whatever code the pickle names**: it is
      tried only with ``allow_pickle=True``, for files you made yourself or fully trust.

    Nothing is ever downloaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"module file not found: {path}")
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as jit_error:
        if not allow_pickle:
            raise ValueError(
                f"{path} is not a TorchScript file ({jit_error.__class__.__name__}); a pickled module can be "
                "loaded with allow_pickle=True, which runs arbitrary code from the file: only for trusted files"
            ) from jit_error
        module = torch.load(path, map_location="cpu", weights_only=False)
    if not callable(module):
        raise ValueError(f"{path} holds a {type(module).__name__}, not a callable torch module")
    return module


def features_from_module(
    module_path: str | os.PathLike[str],
    domain: AttributeDomain,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    allow_pickle: bool = False,
) -> FeatureSet:
    """Features of a user-supplied local module (TorchScript, ``.pt2`` export, trusted pickle).

    The images are normalised as galm's own networks see them (:func:`galm.engine.batches.images_to_tensor`:
    (B, 3, H, W) float32, (pixel - 127.5) / 64) at the domain's resolution; the module's output (a
    tensor, or the first element of a tuple/list) is flattened to one vector per image. See
    :func:`load_local_module` for the trust implication of ``allow_pickle``.
    """
    module = load_local_module(module_path, allow_pickle=allow_pickle)
    if isinstance(module, torch.nn.Module):
        module = module.to(device)
        try:
            module.eval()
        except NotImplementedError:  # torch.export modules keep the mode they were exported in
            pass

    def apply(x: torch.Tensor) -> torch.Tensor:
        out = module(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"the module returned a {type(out).__name__}; expected a tensor")
        return out

    features = extract_features(apply, domain.images, batch_size, device)
    return _from_domain(domain, features, {"source": "module", "module": str(module_path)})


def features_from_xlsa17(feature_set: FeatureSet, class_attributes: str = "continuous") -> FeatureSet:
    """The xlsa17 features (:func:`~galm.data.readers.xlsa17.read_xlsa17_features`) with the class
    attribute matrix a baseline should use.

    ``class_attributes='continuous'`` keeps the shipped ``att`` matrix (what ALE was published
    with); ``'binary'`` uses the binarised class rows that also form the image labels (the DAP/IAP
    setting); ``'none'`` drops the matrix so :func:`class_attribute_matrix` derives it from the
    training labels. All splits are kept ('train', 'val', 'test', 'trainval', 'test_seen').
    """
    fs = feature_set
    if class_attributes == "continuous":
        matrix = fs.class_attributes
    elif class_attributes == "binary":
        matrix = _per_class_mean(fs.labels, fs.class_index, fs.n_classes, np.arange(fs.n_images))
    elif class_attributes == "none":
        matrix = None
    else:
        raise ValueError(f"class_attributes must be 'continuous', 'binary' or 'none', got {class_attributes!r}")
    metadata = {"source": "xlsa17", "label_level": fs.label_level, "class_attributes": class_attributes}
    return dataclasses.replace(fs, class_attributes=matrix, metadata=metadata)


def _per_class_mean(labels: np.ndarray, class_index: np.ndarray, n_classes: int, rows: np.ndarray) -> np.ndarray:
    """(C, A) mean of the known labels of ``rows`` per class; NaN where a class has none known."""
    labels = labels[rows].astype(np.float64)
    classes = class_index[rows]
    known = ~np.isnan(labels)
    sums = np.zeros((n_classes, labels.shape[1]))
    counts = np.zeros((n_classes, labels.shape[1]))
    np.add.at(sums, classes, np.where(known, labels, 0.0))
    np.add.at(counts, classes, known)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return np.where(counts > 0, mean, np.nan).astype(np.float32)


def class_attribute_matrix(feature_set: FeatureSet, splits: Sequence[str] = ("train",)) -> np.ndarray:
    """The (C, A) class-attribute matrix: the given one, or one estimated from training labels.

    When ``feature_set.class_attributes`` is present it is returned as is. Otherwise entry (c, a)
    is the mean of the known (non-NaN) labels of attribute a over the images of class c in
    ``splits`` (the training splits), i.e. the fraction of that class's images with the attribute;
    it is NaN where class c has no known label of a there, which includes every class absent from
    ``splits`` (unseen test classes). Callers (IAP, ALE) use only the rows of training classes.
    """
    if feature_set.class_attributes is not None:
        return feature_set.class_attributes
    rows = feature_set.indices(splits)
    return _per_class_mean(feature_set.labels, feature_set.class_index, feature_set.n_classes, rows)


# --- the interface every baseline shares -------------------------------------------------------


class ConstantAttributeWarning(UserWarning):
    """Some attributes could not be learned (constant or unknown on the training data)."""


class AttributeBaseline:
    """Common interface: ``fit`` on training splits, ``predict_attributes`` gives (N, A) scores.

    Scores are rankings per attribute (higher = more likely present), which is all an AUC needs;
    columns of different attributes are not on a common scale. Attributes that cannot be learned
    (see each baseline) are listed in :attr:`constant_attributes` with the constant score they get,
    and announced once per fit with a :class:`ConstantAttributeWarning`.
    """

    name = "baseline"

    def __init__(self) -> None:
        self.attribute_names: list[str] = []
        self.constant_attributes: dict[str, float] = {}
        self.n_features: int | None = None
        self.train_splits: tuple[str, ...] = ()
        self._mean: np.ndarray | None = None
        self._scale: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        return self.n_features is not None

    def fit(self, feature_set: FeatureSet, splits: Sequence[str] = ("train",), seed: int = 0) -> "AttributeBaseline":
        """Learn from the images of ``splits``; returns ``self``."""
        rows = feature_set.indices(splits)
        if rows.size == 0:
            raise ValueError(f"splits {list(splits)} of feature set {feature_set.name!r} hold no images")
        self.attribute_names = list(feature_set.attribute_names)
        self.train_splits = tuple([splits] if isinstance(splits, str) else splits)
        x = feature_set.features[rows].astype(np.float64)
        self._mean = x.mean(axis=0)
        std = x.std(axis=0)
        self._scale = np.where(std > 1e-12, std, 1.0)
        self.n_features = feature_set.n_features
        self.constant_attributes = {}
        self._fit(feature_set, rows, self._standardise(feature_set.features[rows]), seed)
        if self.constant_attributes:
            names = list(self.constant_attributes)
            warnings.warn(
                f"{self.name}: {len(names)} of {len(self.attribute_names)} attributes cannot be learned from "
                f"splits {list(self.train_splits)} and get a constant score: {names[:10]}"
                f"{'...' if len(names) > 10 else ''}",
                ConstantAttributeWarning,
                stacklevel=2,
            )
        return self

    def predict_attributes(self, features: np.ndarray) -> np.ndarray:
        """(N, A) attribute scores of (N, D) features."""
        if not self.is_fitted:
            raise RuntimeError(f"{self.name} must be fitted before predicting")
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"features must be (N, {self.n_features}), got shape {features.shape}")
        scores = np.asarray(self._predict(self._standardise(features)), dtype=np.float64)
        for column, name in enumerate(self.attribute_names):
            if name in self.constant_attributes:
                scores[:, column] = self.constant_attributes[name]
        return scores

    def predict_split(self, feature_set: FeatureSet, split: str) -> np.ndarray:
        """Scores of the images of one split, in the split's order."""
        return self.predict_attributes(feature_set.features[feature_set.split(split)])

    def evaluate(self, feature_set: FeatureSet, split: str = "test") -> Any:
        """:class:`~galm.training.evaluate.AucReport` of the scores on ``split``."""
        from galm.training.evaluate import attribute_aucs

        idx = feature_set.split(split)
        return attribute_aucs(self.predict_attributes(feature_set.features[idx]), feature_set.labels[idx],
                              feature_set.attribute_names, split=split)

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        """Zero mean, unit variance per feature dimension (training statistics)."""
        return ((np.asarray(features, dtype=np.float64) - self._mean) / self._scale).astype(np.float32)

    def _fit(self, feature_set: FeatureSet, rows: np.ndarray, x: np.ndarray, seed: int) -> None:
        raise NotImplementedError

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def training_class_matrix(
    feature_set: FeatureSet, rows: np.ndarray, splits: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """(training class ids, their (C_train, A) attribute rows, constant columns) for IAP and ALE.

    Rows come from :func:`class_attribute_matrix`. A NaN entry (a training class with no known
    label of an attribute) is filled with that attribute's mean over the training classes that
    have one. A column with no known entry, or constant over the training classes, cannot be
    learned from class-level information: it is returned as ``{column: constant score}``.
    """
    classes = np.unique(feature_set.class_index[rows])
    matrix = class_attribute_matrix(feature_set, splits)[classes].astype(np.float64)
    constant: dict[int, float] = {}
    for column in range(matrix.shape[1]):
        values = matrix[:, column]
        known = values[~np.isnan(values)]
        if known.size == 0:
            constant[column] = 0.5
            values[:] = 0.0
            continue
        values[np.isnan(values)] = known.mean()
        if np.ptp(known) <= 1e-12 * max(1.0, float(np.abs(known).max())):
            constant[column] = float(known[0])
    return classes, matrix, constant


def constant_label_columns(labels: np.ndarray) -> dict[int, float]:
    """Columns of (N, A) training labels no classifier can learn, with the constant score they get:
    no known (non-NaN) label (0.5), or every known label one value (the positive rate, 0 or 1)."""
    constant: dict[int, float] = {}
    for column in range(labels.shape[1]):
        known = labels[~np.isnan(labels[:, column]), column]
        if known.size == 0:
            constant[column] = 0.5
        elif known.min() == known.max():
            constant[column] = float(known.mean())
    return constant
