"""What every form of a dataset shares: attribute labels, classes and unseen-class splits of N items.

A domain is met in three forms: as its reader finds it (image files, :class:`~galm.data.raw.RawDomain`),
prepared (decoded images, :class:`~galm.data.domain.AttributeDomain`) and as fixed features
(:class:`~galm.data.feature_set.FeatureSet`). They differ only in what an item is; the labels,
attribute and class names, class index, splits, class attribute matrix, label level and metadata,
their checks and the split lookups live once, on :class:`LabelledSplits`, which each form extends
with its items.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, Sequence

import numpy as np

from galm.config.schema import LABEL_LEVELS

SPLIT_NAMES = ("train", "val", "test")


@dataclass(eq=False, kw_only=True)
class LabelledSplits:
    """Labels (N, A), classes and splits of N items; subclasses add the items and :attr:`n_images`.

    Construction validates every field (:meth:`validate`), so a held instance is consistent.
    Labels are 0/1 with NaN for unknown; ``class_attributes`` is an optional (C, A) matrix;
    ``splits`` holds at least 'train', 'val' and 'test', disjoint, with the test classes unseen.
    """

    # What the error messages call an instance, and whether it must have a non-empty name.
    _KIND: ClassVar[str] = "domain"
    _NAME_REQUIRED: ClassVar[bool] = True

    name: str
    labels: np.ndarray
    attribute_names: list[str]
    class_index: np.ndarray
    class_names: list[str]
    splits: dict[str, np.ndarray]
    class_attributes: np.ndarray | None = None
    label_level: str = "image"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attribute_names = list(self.attribute_names)
        self.class_names = list(self.class_names)
        self.splits = dict(self.splits)
        self.validate()

    @property
    def n_images(self) -> int:
        """Number of items N (images, image files or feature vectors): defined by each subclass."""
        raise NotImplementedError

    @property
    def n_attributes(self) -> int:
        """Number of attributes A."""
        return len(self.attribute_names)

    @property
    def n_classes(self) -> int:
        """Number of classes C."""
        return len(self.class_names)

    def validate(self) -> None:
        """Check the items, then every label and split field; raise ValueError naming the field."""
        _check_name(self.name, self._NAME_REQUIRED)
        self._validate_items()
        n = self.n_images
        _check_unique_names(self.attribute_names, "attribute_names")
        _check_unique_names(self.class_names, "class_names")
        _check_labels(self.labels, n, self.n_attributes)
        _check_class_index(self.class_index, n, self.n_classes)
        _check_class_attributes(self.class_attributes, self.n_classes, self.n_attributes)
        if self.label_level not in LABEL_LEVELS:
            raise ValueError(f"label_level must be one of {LABEL_LEVELS}, got {self.label_level!r}")
        _check_splits(self.splits, self.class_index, n)
        _check_metadata(self.metadata)

    def _validate_items(self) -> None:
        """Check the subclass's items (images, paths, features) before :attr:`n_images` is read."""

    def _coerce_label_arrays(self) -> None:
        """Cast labels, class index, class attributes and splits to the dtypes :meth:`validate` wants.

        For the forms filled by outside code (readers, feature extractors), which may hand over
        float64 labels or int32 indices; the prepared domain accepts exact dtypes only.
        """
        self.labels = np.asarray(self.labels, dtype=np.float32)
        self.class_index = np.asarray(self.class_index, dtype=np.int64)
        if self.class_attributes is not None:
            self.class_attributes = np.asarray(self.class_attributes, dtype=np.float32)
        self.splits = {k: np.asarray(v, dtype=np.int64) for k, v in self.splits.items()}

    def split(self, name: str) -> np.ndarray:
        """Item indices of split ``name`` ('train', 'val', 'test', or another split the source has)."""
        if name not in self.splits:
            raise ValueError(f"{self._KIND} {self.name!r} has no split {name!r}; available: {sorted(self.splits)}")
        return self.splits[name]

    def indices(self, splits: str | Sequence[str]) -> np.ndarray:
        """Sorted union of the item indices of one or several splits."""
        names = [splits] if isinstance(splits, str) else list(splits)
        if not names:
            raise ValueError("at least one split name is needed")
        return np.unique(np.concatenate([self.split(s) for s in names])).astype(np.int64)

    def split_classes(self, name: str) -> np.ndarray:
        """Sorted class ids present in split ``name``."""
        return np.unique(self.class_index[self.split(name)])

    def with_splits(self, splits: dict[str, np.ndarray]) -> Self:
        """A copy sharing the arrays but with other splits (validated)."""
        return dataclasses.replace(self, splits={k: np.asarray(v, dtype=np.int64) for k, v in splits.items()})

    def subset_attributes(self, names: Sequence[str]) -> Self:
        """A copy keeping only the attributes ``names``, in that order."""
        position = {n: i for i, n in enumerate(self.attribute_names)}
        missing = [n for n in names if n not in position]
        if missing:
            raise ValueError(f"attribute_names of {self._KIND} {self.name!r} lack {missing}")
        columns = np.array([position[n] for n in names], dtype=np.int64)
        class_attributes = None if self.class_attributes is None else self.class_attributes[:, columns]
        return dataclasses.replace(
            self,
            labels=np.ascontiguousarray(self.labels[:, columns]),
            attribute_names=list(names),
            class_attributes=class_attributes,
        )


# --- validation -------------------------------------------------------------------------------


def _check_name(name: object, required: bool) -> None:
    """The name is a string, non-empty when ``required``."""
    if not isinstance(name, str) or (required and not name):
        raise ValueError(f"name must be a {'non-empty ' if required else ''}string, got {name!r}")


def _check_unique_names(names: list[str], field_name: str) -> None:
    """Names are non-empty strings, each appearing once."""
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{field_name} must be non-empty strings")
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise ValueError(f"{field_name} must be unique, duplicated: {duplicates[:10]}")


def _check_labels(labels: object, n: int, a: int) -> None:
    """Labels are (N, A) float32 holding only 0, 1 or NaN."""
    if not isinstance(labels, np.ndarray) or labels.shape != (n, a):
        shape = getattr(labels, "shape", None)
        raise ValueError(f"labels must have shape (n_images, n_attributes) = {(n, a)}, got {shape}")
    if labels.dtype != np.float32:
        raise ValueError(f"labels must be float32, got {labels.dtype}")
    bad = ~(np.isnan(labels) | (labels == 0.0) | (labels == 1.0))
    if bad.any():
        example = labels[bad][0]
        raise ValueError(f"labels must be 0.0, 1.0 or NaN; {int(bad.sum())} values are not (e.g. {example})")


def _check_class_index(class_index: object, n: int, c: int) -> None:
    """Class index is (N,) int64 within [0, C)."""
    if not isinstance(class_index, np.ndarray) or class_index.shape != (n,):
        shape = getattr(class_index, "shape", None)
        raise ValueError(f"class_index must have shape (n_images,) = {(n,)}, got {shape}")
    if class_index.dtype != np.int64:
        raise ValueError(f"class_index must be int64, got {class_index.dtype}")
    if n and (class_index.min() < 0 or class_index.max() >= c):
        raise ValueError(f"class_index values must lie in [0, {c}) (len(class_names))")


def _check_class_attributes(class_attributes: object, c: int, a: int) -> None:
    """Class attributes, when present, are a (C, A) float32 matrix."""
    if class_attributes is None:
        return
    if not isinstance(class_attributes, np.ndarray) or class_attributes.shape != (c, a):
        shape = getattr(class_attributes, "shape", None)
        raise ValueError(f"class_attributes must have shape (n_classes, n_attributes) = {(c, a)}, got {shape}")
    if class_attributes.dtype != np.float32:
        raise ValueError(f"class_attributes must be float32, got {class_attributes.dtype}")


def _check_splits(splits: dict[str, np.ndarray], class_index: np.ndarray, n: int) -> None:
    """Splits hold sorted unique in-range indices, are disjoint, and keep test classes unseen."""
    missing = [s for s in SPLIT_NAMES if s not in splits]
    if missing:
        raise ValueError(f"splits must contain {list(SPLIT_NAMES)}; missing {missing}")
    for key, idx in splits.items():
        if not isinstance(idx, np.ndarray) or idx.ndim != 1 or idx.dtype != np.int64:
            raise ValueError(f"splits[{key!r}] must be a 1-D int64 array")
        if idx.size > 1 and not (np.diff(idx) > 0).all():
            raise ValueError(f"splits[{key!r}] must be sorted and unique")
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"splits[{key!r}] indices must lie in [0, {n})")
    for i, first in enumerate(SPLIT_NAMES):
        for second in SPLIT_NAMES[i + 1 :]:
            common = np.intersect1d(splits[first], splits[second])
            if common.size:
                raise ValueError(f"splits {first!r} and {second!r} overlap in {common.size} images")
    test_classes = np.unique(class_index[splits["test"]])
    for seen in ("train", "val"):
        leaked = np.intersect1d(test_classes, class_index[splits[seen]])
        if leaked.size:
            raise ValueError(f"splits[{seen!r}] contains test classes {leaked.tolist()[:10]} (test classes must be unseen)")


def _check_metadata(metadata: object) -> None:
    """Metadata is a JSON-serialisable dict."""
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as error:
        raise ValueError(f"metadata must be JSON-serialisable: {error}") from None
