"""A dataset as its reader finds it, before images are decoded: what `prepare` turns into a domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from galm.data.labelled import LabelledSplits


@dataclass(eq=False, kw_only=True)
class RawDomain(LabelledSplits):
    """Image sources with the labels, names, classes and splits read from a benchmark's files.

    `boxes` holds one (x1, y1, x2, y2) pixel box per image for datasets whose samples are object
    crops (aPascal/aYahoo), or None for whole images. Labels are 0/1 with NaN for unknown; the
    label arrays are cast to the dtypes a prepared domain needs, then checked as it checks them.
    `metadata` keeps reader facts worth keeping (dropped boxes and why, thresholds used, ...).
    """

    _KIND = "raw domain"

    image_paths: list[Path]
    boxes: np.ndarray | None = None
    # Annotation files the reader used; the prepared cache's manifest records their sizes and times.
    source_files: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._coerce_label_arrays()
        super().__post_init__()

    @property
    def n_images(self) -> int:
        """Number of image sources N."""
        return len(self.image_paths)

    def _validate_items(self) -> None:
        """Boxes, when given, are one (x1, y1, x2, y2) row per image."""
        if self.boxes is not None and np.asarray(self.boxes).shape != (self.n_images, 4):
            shape = np.asarray(self.boxes).shape
            raise ValueError(f"{self._KIND} {self.name!r}: boxes must have shape ({self.n_images}, 4), got {shape}")
