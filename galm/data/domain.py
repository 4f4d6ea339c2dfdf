"""One attribute domain: images, attribute labels, classes and unseen-class splits.

Every reader (class-level AwA labels, aPY crops, image-level SUN/CUB labels, CelebA,
a custom CSV, the synthetic generator) fills an :class:`AttributeDomain`. A domain saves
to a prepared cache directory (``images.npy`` plus small label and split files) that
opens again with the images memory-mapped, so loading costs nothing whatever its size.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from galm.runs.atomic import sync_handle, sync_path

FORMAT_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")
LABEL_LEVELS = ("class", "image")
DOMAIN_FILE = "domain.json"
_COPY_ROWS = 1024


@dataclass(eq=False)
class AttributeDomain:
    """Images of one attribute domain with their labels, classes and unseen-class splits."""

    name: str
    images: np.ndarray
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
        """Number of images N."""
        return int(self.images.shape[0])

    @property
    def n_attributes(self) -> int:
        """Number of attributes A."""
        return len(self.attribute_names)

    @property
    def n_classes(self) -> int:
        """Number of classes C."""
        return len(self.class_names)

    @property
    def resolution(self) -> int:
        """Side of the square working images in pixels."""
        return int(self.images.shape[1])

    def validate(self) -> None:
        """Check every field's shape, dtype and consistency; raise ValueError naming the field."""
        _check_name(self.name)
        _check_images(self.images)
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

    def split(self, name: str) -> np.ndarray:
        """Image indices of split ``name`` ('train', 'val' or 'test')."""
        if name not in self.splits:
            raise ValueError(f"domain {self.name!r} has no split {name!r}; available: {sorted(self.splits)}")
        return self.splits[name]

    def split_classes(self, name: str) -> np.ndarray:
        """Sorted class ids present in split ``name``."""
        return np.unique(self.class_index[self.split(name)])

    def with_splits(self, splits: dict[str, np.ndarray]) -> "AttributeDomain":
        """A copy sharing the arrays but with other splits (validated)."""
        return dataclasses.replace(self, splits={k: np.asarray(v, dtype=np.int64) for k, v in splits.items()})

    def subset_attributes(self, names: Sequence[str]) -> "AttributeDomain":
        """A copy keeping only the attributes ``names``, in that order."""
        position = {n: i for i, n in enumerate(self.attribute_names)}
        missing = [n for n in names if n not in position]
        if missing:
            raise ValueError(f"attribute_names of domain {self.name!r} lack {missing}")
        columns = np.array([position[n] for n in names], dtype=np.int64)
        class_attributes = None if self.class_attributes is None else self.class_attributes[:, columns]
        return dataclasses.replace(
            self,
            labels=np.ascontiguousarray(self.labels[:, columns]),
            attribute_names=list(names),
            class_attributes=class_attributes,
        )

    def save(self, directory: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the prepared cache atomically: a sibling temp dir is filled, fsynced, then renamed."""
        target = Path(directory)
        if _is_nonempty_dir(target) and not overwrite:
            raise FileExistsError(f"{target} exists and is not empty; pass overwrite=True to replace it")
        if target.exists() and not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            self._write_files(staging)
            sync_path(staging)
            _replace_dir(staging, target)
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
            json.dump(header, handle, indent=1)
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


def _check_name(name: object) -> None:
    """The domain name is a non-empty string."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")


def _check_images(images: object) -> None:
    """Images are (N, H, W, 3) uint8 with H == W."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"images must be a numpy array, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must have shape (N, R, R, 3), got {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")


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




def _replace_dir(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, moving an old target aside first and removing it after."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    sync_path(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
