"""A dataset as its reader finds it, before images are decoded: what `prepare` turns into a domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class RawDomain:
    """Image sources, labels, names, classes and splits read from a benchmark's files.

    `boxes` holds one (x1, y1, x2, y2) pixel box per image for datasets whose samples are object
    crops (aPascal/aYahoo), or None for whole images. Labels are 0/1 with NaN for unknown.
    """

    name: str
    image_paths: list[Path]
    labels: np.ndarray
    attribute_names: list[str]
    class_index: np.ndarray
    class_names: list[str]
    splits: dict[str, np.ndarray]
    label_level: str = "image"
    boxes: np.ndarray | None = None
    class_attributes: np.ndarray | None = None
    # Annotation files the reader used; the prepared cache's manifest records their sizes and times.
    source_files: list[Path] = field(default_factory=list)
    # Reader facts worth keeping (dropped boxes and why, thresholds used, ...).
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.image_paths)
