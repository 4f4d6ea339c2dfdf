"""Xian et al.'s "proposed split" files (xlsa17): ``att_splits.mat`` and ``res101.mat``.

* :func:`read_att_splits` reads ``att_splits.mat`` alone: class names, the class attribute
  matrices ``att`` / ``original_att`` (stored A x C; returned C x A) and the 1-based ``*_loc``
  image indices (returned 0-based).
* :func:`read_xlsa17_features` adds ``res101.mat`` (``features`` 2048 x N, ``labels`` N x 1,
  1-based) and returns a :class:`~galm.data.feature_set.FeatureSet` for the classical
  feature-based baselines: labels are the binarised class attribute rows of each image's class
  (0/1/NaN), ``class_attributes`` the shipped continuous ``att`` matrix (C, A), and ``splits``
  holds 'train', 'val', 'test' (unseen classes) and also 'trainval' and 'test_seen' (seen-class
  test images, for generalised zero-shot evaluation).
* :func:`xlsa17_class_split` names the proposed split's train / val / test classes, usable as
  the split definition of the image readers (their ``split_file=`` option, via
  :func:`read_test_classes`).

Binarising the class attribute matrix (xlsa17 ships only continuous values): a class has an
attribute when its ``original_att`` value exceeds that attribute's mean over the classes
(``threshold="mean"``, the default), or is at least a given number (``threshold=<float>``, in
the file's own units: percentages for AwA, vote fractions for aPY and SUN). Negative
``original_att`` values (AwA's -1 "no answer") are unknown (NaN) and are left out of the means.
``original_att`` is used rather than ``att`` because ``att`` is normalised per class, which
distorts comparisons across classes. xlsa17 carries no attribute names: they are
``attribute_000``, ``attribute_001``, ... unless ``attribute_names`` is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from galm.data.domain import class_split
from galm.data.feature_set import FeatureSet
from galm.data.readers.class_names import match_class_names
from galm.data.readers.dataset_files import require_file
from galm.data.readers.format_error import DatasetFormatError, field_error
from galm.data.readers.mat_files import load_mat, mat_key, mat_numeric, mat_strings
from galm.data.readers.text_tables import read_name_list

LOC_KEYS = ("trainval_loc", "train_loc", "val_loc", "test_seen_loc", "test_unseen_loc")
_CLASS_LIST_FILES = ("trainclasses1.txt", "valclasses1.txt", "trainvalclasses.txt", "testclasses.txt")


@dataclass
class AttSplits:
    """The content of one ``att_splits.mat``: class names, class attributes and 0-based locs."""

    path: Path
    class_names: list[str]
    att: np.ndarray  # (C, A) float32, normalised per class as shipped
    original_att: np.ndarray | None  # (C, A) float32 in the source's units, or None
    locs: dict[str, np.ndarray]  # key without the '_loc' suffix -> 0-based int64 indices, file order

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_attributes(self) -> int:
        return int(self.att.shape[1])

    @property
    def has_train_val(self) -> bool:
        """True when the file carries the separate ``train_loc`` / ``val_loc`` arrays."""
        return "train" in self.locs and "val" in self.locs


def read_att_splits(path: str | os.PathLike[str]) -> AttSplits:
    """Read one ``att_splits.mat``; errors name the file and the key at fault."""
    path = Path(path)
    mat = load_mat(path, "xlsa17 split file att_splits.mat")
    names = [n.strip() for n in mat_strings(mat_key(mat, "allclasses_names", path), path, "allclasses_names")]
    if not names or any(not n for n in names):
        raise field_error(path, "allclasses_names", "expected a non-empty cell array of non-empty class names")
    if len(set(names)) != len(names):
        raise field_error(path, "allclasses_names", "class names are not unique")
    att = _class_matrix(mat, "att", path, len(names))
    original = _class_matrix(mat, "original_att", path, len(names)) if "original_att" in mat else None
    if original is not None and original.shape != att.shape:
        raise field_error(path, "original_att", f"shape {original.shape[::-1]} differs from att's {att.shape[::-1]}")
    locs: dict[str, np.ndarray] = {}
    for key in sorted(k for k in mat if k.endswith("_loc")):
        raw = mat_numeric(mat[key], path, key).ravel()
        if raw.size and (raw.min() < 1 or not np.all(raw == np.round(raw))):
            raise field_error(path, key, "expected 1-based positive integer image indices")
        locs[key[: -len("_loc")]] = raw.astype(np.int64) - 1
    for required in ("trainval", "test_unseen"):
        if required not in locs:
            raise field_error(path, f"{required}_loc", "key is missing (the proposed split needs it)")
    return AttSplits(path=path, class_names=names, att=att, original_att=original, locs=locs)


def _class_matrix(mat: dict[str, Any], key: str, path: Path, n_classes: int) -> np.ndarray:
    """An A x C matrix of the file, returned C x A float32, checked against the class count."""
    value = mat_numeric(mat_key(mat, key, path), path, key)
    if value.ndim != 2 or value.shape[1] != n_classes:
        raise field_error(path, key, f"expected an attributes x classes matrix with {n_classes} columns, got shape {value.shape}")
    return np.ascontiguousarray(value.T.astype(np.float32))


def binarise_class_attributes(splits: AttSplits, threshold: float | str = "mean") -> tuple[np.ndarray, float | str]:
    """(C, A) 0/1/NaN class labels from ``original_att`` (``att`` when absent); see the module doc."""
    source = splits.original_att if splits.original_att is not None else splits.att
    values = source.astype(np.float64)
    known = values >= 0
    if threshold == "mean":
        sums = np.where(known, values, 0.0).sum(axis=0)
        counts = np.maximum(known.sum(axis=0), 1)
        cut = sums / counts
        positive = values > cut[None, :]
    elif isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        positive = values >= float(threshold)
    else:
        raise ValueError(f"threshold must be 'mean' or a number, got {threshold!r}")
    labels = np.where(known, positive.astype(np.float32), np.nan).astype(np.float32)
    return labels, threshold


def read_xlsa17_features(
    directory: str | os.PathLike[str],
    *,
    att_splits: str | os.PathLike[str] | None = None,
    features: str | os.PathLike[str] | None = None,
    threshold: float | str = "mean",
    attribute_names: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    name: str | None = None,
) -> FeatureSet:
    """Features, binarised class labels and the proposed splits from one xlsa17 dataset folder.

    ``directory`` holds ``att_splits.mat`` and ``res101.mat`` (either may be given explicitly).
    'train'/'val' come from ``train_loc``/``val_loc`` (class-disjoint); copies lacking them get
    'train' = ``trainval_loc`` with 'val' a seeded per-class carve of it (``val_fraction``).
    'test' is ``test_unseen_loc``.
    """
    directory = Path(directory)
    split_path = Path(att_splits) if att_splits is not None else directory / "att_splits.mat"
    feature_path = Path(features) if features is not None else directory / "res101.mat"
    splits = read_att_splits(split_path)
    mat = load_mat(feature_path, "xlsa17 feature file res101.mat")
    raw = mat_numeric(mat_key(mat, "features", feature_path), feature_path, "features")
    if raw.ndim != 2:
        raise field_error(feature_path, "features", f"expected a 2-D features x images matrix, got shape {raw.shape}")
    labels_1 = mat_numeric(mat_key(mat, "labels", feature_path), feature_path, "labels").ravel()
    n = labels_1.size
    if raw.shape[1] == n:
        feats = raw.T
    elif raw.shape[0] == n:
        feats = raw
    else:
        raise field_error(feature_path, "features", f"shape {raw.shape} does not match the {n} entries of 'labels'")
    c = splits.n_classes
    if n and (labels_1.min() < 1 or labels_1.max() > c or not np.all(labels_1 == np.round(labels_1))):
        raise field_error(feature_path, "labels", f"expected 1-based class numbers in [1, {c}] (att_splits.mat has {c} classes)")
    class_index = labels_1.astype(np.int64) - 1
    for key, loc in splits.locs.items():
        if loc.size and loc.max() >= n:
            raise field_error(split_path, f"{key}_loc", f"index {int(loc.max()) + 1} exceeds the {n} images of {feature_path}")
    image_files: list[str] = []
    if "image_files" in mat:
        image_files = mat_strings(mat["image_files"], feature_path, "image_files")
        if len(image_files) != n:
            raise field_error(feature_path, "image_files", f"holds {len(image_files)} entries for {n} images")
    class_labels, used = binarise_class_attributes(splits, threshold)
    a = splits.n_attributes
    if attribute_names is None:
        names = [f"attribute_{j:03d}" for j in range(a)]
    else:
        names = list(attribute_names)
        if len(names) != a:
            raise DatasetFormatError(f"attribute_names holds {len(names)} names; {split_path} has {a} attributes")
    metadata: dict[str, Any] = {
        "format": "xlsa17",
        "threshold": used,
        "binarised_from": "original_att" if splits.original_att is not None else "att",
        "split_source": "train_loc/val_loc",
    }
    if splits.has_train_val:
        train, val = splits.locs["train"], splits.locs["val"]
    else:
        trainval = np.unique(splits.locs["trainval"])
        carved = class_split(class_index[trainval], [], val_fraction, seed)
        train, val = trainval[carved["train"]], trainval[carved["val"]]
        metadata["split_source"] = "trainval_loc carved per class (file lacks train_loc/val_loc)"
        metadata["val_fraction"] = val_fraction
        metadata["seed"] = seed
    out_splits = {
        "train": np.unique(train).astype(np.int64),
        "val": np.unique(val).astype(np.int64),
        "test": np.unique(splits.locs["test_unseen"]).astype(np.int64),
        "trainval": np.unique(splits.locs["trainval"]).astype(np.int64),
    }
    if "test_seen" in splits.locs:
        out_splits["test_seen"] = np.unique(splits.locs["test_seen"]).astype(np.int64)
    return FeatureSet(
        name=name or directory.name or "xlsa17",
        features=np.ascontiguousarray(feats, dtype=np.float32),
        labels=class_labels[class_index],
        attribute_names=names,
        class_index=class_index,
        class_names=list(splits.class_names),
        splits=out_splits,
        class_attributes=splits.att,
        image_files=image_files,
        label_level="class",
        metadata=metadata,
    )


def xlsa17_class_split(
    att_splits_path: str | os.PathLike[str], *, features: str | os.PathLike[str] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """(train, val, test) class names of the proposed split.

    ``att_splits.mat`` holds image indices only, so the classes come from the image labels of
    ``res101.mat`` (``features=`` or beside the split file) or, failing that, from the class
    lists xlsa17 ships beside it (``trainclasses1.txt``, ``valclasses1.txt``, ``testclasses.txt``,
    ``trainvalclasses.txt``). A file without ``train_loc``/``val_loc`` gives an empty val list.
    """
    path = Path(att_splits_path)
    splits = read_att_splits(path)
    feature_path = Path(features) if features is not None else path.parent / "res101.mat"
    if feature_path.is_file():
        mat = load_mat(feature_path, "xlsa17 feature file res101.mat")
        labels = mat_numeric(mat_key(mat, "labels", feature_path), feature_path, "labels").ravel().astype(np.int64) - 1
        if labels.size and (labels.min() < 0 or labels.max() >= splits.n_classes):
            raise field_error(feature_path, "labels", f"expected 1-based class numbers in [1, {splits.n_classes}]")

        def classes(key: str) -> list[str]:
            loc = splits.locs[key]
            if loc.size and loc.max() >= labels.size:
                raise field_error(path, f"{key}_loc", f"index {int(loc.max()) + 1} exceeds the {labels.size} images of {feature_path}")
            return [splits.class_names[c] for c in np.unique(labels[loc])]

        test = classes("test_unseen")
        if splits.has_train_val:
            return classes("train"), classes("val"), test
        return classes("trainval"), [], test
    lists = {name: path.parent / name for name in _CLASS_LIST_FILES}
    if lists["testclasses.txt"].is_file() and (lists["trainclasses1.txt"].is_file() or lists["trainvalclasses.txt"].is_file()):

        def names_of(file: Path) -> list[str]:
            ids = match_class_names(read_name_list(file, "xlsa17 class list"), splits.class_names, file)
            return [splits.class_names[i] for i in ids]

        test = names_of(lists["testclasses.txt"])
        if lists["trainclasses1.txt"].is_file() and lists["valclasses1.txt"].is_file():
            return names_of(lists["trainclasses1.txt"]), names_of(lists["valclasses1.txt"]), test
        return names_of(lists["trainvalclasses.txt"]), [], test
    raise DatasetFormatError(
        f"{path} holds image indices only; naming its classes needs the image labels: expected file "
        f"{feature_path} (or the class lists testclasses.txt and trainclasses1.txt beside it)"
    )


def read_test_classes(split_file: str | os.PathLike[str], class_names: Sequence[str]) -> list[int]:
    """Test class ids defined by ``split_file``: an xlsa17 ``att_splits.mat`` or a text file of names.

    A text file lists one test class name per line (blank lines ignored); names match exactly or
    after normalising case, spaces, ``/`` and ``+`` to ``_`` (so xlsa17's SUN names match).
    """
    path = Path(split_file)
    require_file(path, "split file")
    if path.suffix.lower() == ".mat":
        test_names = xlsa17_class_split(path)[2]
        ids = match_class_names([(0, n) for n in test_names], class_names, path)
    else:
        ids = match_class_names(read_name_list(path, "test class list"), class_names, path)
    if not ids:
        raise DatasetFormatError(f"{path}: the split file names no test classes")
    if len(set(ids)) == len(class_names):
        raise DatasetFormatError(f"{path}: the split file names every class as a test class; none is left to train on")
    return sorted(set(ids))
