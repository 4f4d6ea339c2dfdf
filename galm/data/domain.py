"""One prepared attribute domain: decoded images with their labels, classes and unseen-class splits.

Every reader (class-level AwA labels, aPY crops, image-level SUN/CUB labels, CelebA,
a custom CSV) and the synthetic generator ends in an :class:`AttributeDomain`: the labels,
classes and splits of :class:`~galm.data.labelled.LabelledSplits` plus the images. A domain saves
to a prepared cache directory (``images.npy`` plus small label and split files) that
opens again with the images memory-mapped, so loading costs nothing whatever its size.
Also here: :func:`class_split` and :func:`choose_test_classes`, which make unseen-class splits.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from galm.data.labelled import SPLIT_NAMES, LabelledSplits
from galm.data.staging import clean_stale, new_staging, replace_dir
from galm.runs.atomic import json_text, sync_handle, sync_path

__all__ = [
    "DOMAIN_FILE",
    "FORMAT_VERSION",
    "SPLIT_NAMES",  # defined in galm.data.labelled; named here too for the modules importing it from here
    "AttributeDomain",
    "choose_test_classes",
    "class_split",
]

FORMAT_VERSION = 1
DOMAIN_FILE = "domain.json"
_COPY_ROWS = 1024


@dataclass(eq=False, kw_only=True)
class AttributeDomain(LabelledSplits):
    """Images of one attribute domain with their labels, classes and unseen-class splits.

    The labels, names, classes and splits, their checks and lookups are :class:`LabelledSplits`';
    this adds the decoded (N, R, R, 3) uint8 images and the prepared cache they save to.
    """

    images: np.ndarray

    @property
    def n_images(self) -> int:
        """Number of images N."""
        return int(self.images.shape[0])

    @property
    def resolution(self) -> int:
        """Side of the square working images in pixels."""
        return int(self.images.shape[1])

    def _validate_items(self) -> None:
        """Images are (N, R, R, 3) uint8."""
        _check_images(self.images)

    def save(self, directory: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the prepared cache atomically: a sibling temp dir is filled, fsynced, then renamed."""
        target = Path(directory)
        if _is_nonempty_dir(target) and not overwrite:
            raise FileExistsError(f"{target} exists and is not empty; pass overwrite=True to replace it")
        if target.exists() and not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a directory")
        clean_stale(target)
        staging = new_staging(target)
        try:
            self._write_files(staging)
            sync_path(staging)
            replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def _write_files(self, directory: Path) -> None:
        """Write every cache file into ``directory``; ``domain.json`` last marks completeness."""
        _write_images(directory / "images.npy", self.images)
        _save_array(directory / "labels.npy", self.labels)
        _save_array(directory / "class_index.npy", self.class_index)
        if self.class_attributes is not None:
            _save_array(directory / "class_attributes.npy", self.class_attributes)
        with open(directory / "splits.npz", "wb") as handle:
            np.savez(handle, **self.splits)
            sync_handle(handle)
        header = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "attribute_names": self.attribute_names,
            "class_names": self.class_names,
            "label_level": self.label_level,
            "has_class_attributes": self.class_attributes is not None,
            "metadata": self.metadata,
        }
        with open(directory / DOMAIN_FILE, "w", encoding="utf-8") as handle:
            handle.write(json_text(header, indent=1))
            sync_handle(handle)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = True) -> "AttributeDomain":
        """Open a prepared cache; images are memory-mapped read-only unless ``mmap=False``."""
        root = Path(directory)
        if not root.is_dir():
            raise ValueError(f"{root} is not a prepared domain directory")
        header = _read_header(root / DOMAIN_FILE)
        class_attributes = None
        if header.get("has_class_attributes"):
            class_attributes = _load_array(root / "class_attributes.npy")
        return cls(
            name=header["name"],
            images=_load_array(root / "images.npy", mmap_mode="r" if mmap else None),
            labels=_load_array(root / "labels.npy"),
            attribute_names=header["attribute_names"],
            class_index=_load_array(root / "class_index.npy"),
            class_names=header["class_names"],
            splits=_load_splits(root / "splits.npz"),
            class_attributes=class_attributes,
            label_level=header["label_level"],
            metadata=header.get("metadata", {}),
        )


def class_split(
    class_index: np.ndarray,
    test_classes: Sequence[int],
    val_fraction: float,
    seed: int,
    val_by_class: bool = False,
) -> dict[str, np.ndarray]:
    """Unseen-class splits: test holds the test classes; val comes from the other (training) classes.

    By default val is a seeded per-class carve of the training classes' images. With
    `val_by_class`, val is instead `val_fraction` of the training classes, whole (at least one,
    leaving one to train), as in the xlsa17 proposed splits: a validation reward then measures
    generalisation to classes the network has not seen, like the test split does.
    """
    class_index = np.asarray(class_index)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    test_mask = np.isin(class_index, np.asarray(list(test_classes), dtype=np.int64))
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    training_classes = np.unique(class_index[~test_mask])
    if val_by_class and len(training_classes) > 1:
        n_val = min(max(1, int(round(val_fraction * len(training_classes)))), len(training_classes) - 1)
        val_classes = rng.choice(training_classes, size=n_val, replace=False)
        val_mask = np.isin(class_index, val_classes)
        return {
            "train": np.flatnonzero(~test_mask & ~val_mask).astype(np.int64),
            "val": np.flatnonzero(val_mask).astype(np.int64),
            "test": np.flatnonzero(test_mask).astype(np.int64),
        }
    for c in training_classes:
        members = np.flatnonzero(class_index == c)
        n_val = min(int(round(val_fraction * len(members))), len(members) - 1)
        shuffled = rng.permutation(members)
        val.append(shuffled[:n_val])
        train.append(shuffled[n_val:])
    return {
        "train": _sorted_indices(train),
        "val": _sorted_indices(val),
        "test": np.flatnonzero(test_mask).astype(np.int64),
    }


def choose_test_classes(n_classes: int, test_fraction: float, seed: int) -> list[int]:
    """A seeded choice of unseen test classes: round(test_fraction*C), at least one, leaving one to train."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2 to hold out test classes, got {n_classes}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    n_test = min(max(1, int(round(test_fraction * n_classes))), n_classes - 1)
    rng = np.random.default_rng(seed)
    return sorted(int(c) for c in rng.choice(n_classes, size=n_test, replace=False))


def _sorted_indices(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate index arrays into one sorted int64 array."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(parts)).astype(np.int64)


# --- validation -------------------------------------------------------------------------------


def _check_images(images: object) -> None:
    """Images are (N, H, W, 3) uint8 with H == W."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"images must be a numpy array, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must have shape (N, R, R, 3), got {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")



# --- cache files ------------------------------------------------------------------------------


def _is_nonempty_dir(path: Path) -> bool:
    """True when ``path`` is a directory with at least one entry."""
    return path.is_dir() and any(path.iterdir())


def _write_images(path: Path, images: np.ndarray) -> None:
    """Copy images in row blocks into an ``open_memmap`` file, so memmapped sources never load whole."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=images.shape)
    for start in range(0, images.shape[0], _COPY_ROWS):
        out[start : start + _COPY_ROWS] = images[start : start + _COPY_ROWS]
    out.flush()
    del out
    sync_path(path)


def _save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` followed by fsync."""
    with open(path, "wb") as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)
        sync_handle(handle)




def _read_header(path: Path) -> dict[str, Any]:
    """Read and check ``domain.json``."""
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    if not isinstance(header, dict) or header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a galm domain file of format version {FORMAT_VERSION}")
    required = ("name", "attribute_names", "class_names", "label_level")
    missing = [k for k in required if k not in header]
    if missing:
        raise ValueError(f"{path} lacks keys {missing}")
    return header


def _load_array(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """``np.load`` one array, turning a missing or corrupt file into a ValueError naming it."""
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def _load_splits(path: Path) -> dict[str, np.ndarray]:
    """Read every split from ``splits.npz``."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
