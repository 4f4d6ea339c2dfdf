"""Fixed per-image features with the labels, classes and splits of their domain.

A :class:`FeatureSet` is what the classical baselines (:mod:`galm.baselines`) learn from: one feature vector
per image in place of the image. It comes from a galm trunk or a local module over a domain's images
(:mod:`galm.baselines.features`) or from xlsa17's shipped ResNet-101 features
(:func:`galm.data.readers.xlsa17.read_xlsa17_features`, which also fills ``image_files`` and keeps
xlsa17's extra 'trainval' and 'test_seen' splits). Torch-free, so readers can build one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galm.data.labelled import LabelledSplits


@dataclass(eq=False, kw_only=True)
class FeatureSet(LabelledSplits):
    """Per-image features (N, D) with the attribute labels, classes and splits of their domain.

    Arrays are cast on construction (features to contiguous float32, labels and class attributes to
    float32, indices to int64) and then checked like a domain's; the name may be empty.
    """

    _KIND = "feature set"
    _NAME_REQUIRED = False

    name: str = ""
    features: np.ndarray
    # The image file of each row, where the source names them (xlsa17's res101.mat does).
    image_files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.features = np.ascontiguousarray(self.features, dtype=np.float32)
        self._coerce_label_arrays()
        super().__post_init__()

    @property
    def n_images(self) -> int:
        """Number of images N (feature rows)."""
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        """Feature dimension D."""
        return int(self.features.shape[1])

    def _validate_items(self) -> None:
        """Features are a finite (N, D) matrix."""
        if self.features.ndim != 2:
            raise ValueError(f"features must be (N, D), got shape {self.features.shape}")
        if not np.all(np.isfinite(self.features)):
            raise ValueError("features must be finite")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write an ``.npz`` (no pickles) that :meth:`load` reads back."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            "features": self.features,
            "labels": self.labels,
            "attribute_names": np.array(self.attribute_names, dtype=str),
            "class_index": self.class_index,
            "class_names": np.array(self.class_names, dtype=str),
            "name": np.array(self.name, dtype=str),
            "split_names": np.array(sorted(self.splits), dtype=str),
        }
        for key, idx in self.splits.items():
            arrays[f"split__{key}"] = idx
        if self.class_attributes is not None:
            arrays["class_attributes"] = self.class_attributes
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "FeatureSet":
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            splits = {str(k): data[f"split__{k}"] for k in data["split_names"]}
            return cls(
                features=data["features"],
                labels=data["labels"],
                attribute_names=[str(s) for s in data["attribute_names"]],
                class_index=data["class_index"],
                class_names=[str(s) for s in data["class_names"]],
                splits=splits,
                class_attributes=data["class_attributes"] if "class_attributes" in data.files else None,
                name=str(data["name"]),
            )
