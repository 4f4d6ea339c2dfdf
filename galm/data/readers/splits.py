"""Splitting a reader's images: unseen test classes from a split file or seeded, or a seeded image split.

Datasets without classes (CelebA, Clothing Attributes) split images instead: every train and val
image belongs to the pseudo-class ``train_pool`` and every test image to ``test_pool``, so the
domain's unseen-test-class check holds while the test split is an image split.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from galm.data.domain import choose_test_classes
from galm.data.readers.dataset_files import resolve
from galm.data.readers.format_error import DatasetFormatError
from galm.data.readers.xlsa17 import read_test_classes


def listed_or_seeded_test_classes(
    root: Path,
    class_names: Sequence[str],
    split_file: str | os.PathLike[str] | None,
    test_fraction: float,
    seed: int,
    metadata: dict[str, Any],
    source_files: list[Path],
    where: Path,
) -> list[int]:
    """Test class ids from `split_file` (a list of names or an xlsa17 att_splits.mat), else a seeded
    choice of `test_fraction` of the classes; records the choice in `metadata` and `source_files`."""
    if split_file is not None:
        path = resolve(root, split_file)
        assert path is not None
        metadata["split_source"] = str(path)
        source_files.append(path)
        return read_test_classes(path, class_names)
    if len(class_names) < 2:
        raise DatasetFormatError(f"{where}: the images hold a single class; a class split needs two")
    metadata.update(split_source="seeded class choice", test_fraction=test_fraction)
    return choose_test_classes(len(class_names), test_fraction, seed)


POOL_NAMES = ["train_pool", "test_pool"]


def seeded_image_partition(n: int, val_fraction: float, test_fraction: float, seed: int, dataset: str) -> np.ndarray:
    """A seeded 0/1/2 assignment with round(fraction * n) val and test images (one each at least when n >= 3)."""
    if not (0.0 <= val_fraction < 1.0 and 0.0 < test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(f"need 0 <= val_fraction, 0 < test_fraction, sum < 1; got {val_fraction}, {test_fraction}")
    if n < 2:
        raise DatasetFormatError(f"{dataset}: need at least 2 images to split, got {n}")
    n_test = min(max(1, int(round(test_fraction * n))), n - 1)
    n_val = min(int(round(val_fraction * n)), n - n_test - 1)
    if val_fraction > 0 and n_val == 0 and n - n_test >= 2:
        n_val = 1
    order = np.random.default_rng(seed).permutation(n)
    part = np.zeros(n, dtype=np.int64)
    part[order[:n_test]] = 2
    part[order[n_test : n_test + n_val]] = 1
    return part


def pool_splits(part: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(train/val/test splits, pseudo-class index into ``POOL_NAMES``) of a 0/1/2 image partition."""
    splits = {s: np.flatnonzero(part == i).astype(np.int64) for i, s in enumerate(("train", "val", "test"))}
    return splits, (part == 2).astype(np.int64)
