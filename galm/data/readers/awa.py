"""Animals with Attributes (AwA1 and AwA2), in the layout the authors ship.

Files under ``root``: ``classes.txt`` (``1<TAB>antelope``), ``predicates.txt`` (``1<TAB>black``),
``predicate-matrix-binary.txt`` (50 x 85 of 0/1), optional ``predicate-matrix-continuous.txt``
(-1 = no answer), ``trainclasses.txt`` / ``testclasses.txt`` (the 40/10 split, class names), and
images in ``JPEGImages/<class>/*.jpg``. Class names keep their ``+`` (``grizzly+bear``).

Labels are class-level: each image carries its class's row. Split: test = the classes of
``testclasses.txt`` (or of ``split_file``: a text file of test class names or an xlsa17
``att_splits.mat``); when neither exists, a seeded ``test_fraction`` of the classes. Val is a
seeded per-class carve (``val_fraction``) of the training classes' images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from galm.data.domain import choose_test_classes, class_split
from galm.data.raw import RawDomain
from galm.data.readers.class_names import match_class_names
from galm.data.readers.dataset_files import (
    check_files_exist,
    first_image_dir,
    list_images,
    require_root,
    resolve,
)
from galm.data.readers.format_error import DatasetFormatError, line_error
from galm.data.readers.splits import listed_or_seeded_test_classes
from galm.data.readers.text_tables import (
    read_matrix,
    read_name_list,
    read_numbered_names,
)

IMAGE_DIR_CANDIDATES = ("JPEGImages", "images")


def read_awa(
    root: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    use_continuous: bool = False,
    continuous_threshold: float | None = None,
    split_file: str | os.PathLike[str] | None = None,
    test_fraction: float = 0.2,
    name: str = "awa",
) -> RawDomain:
    """Read an AwA1/AwA2 folder into a class-level :class:`RawDomain`.

    Labels come from ``predicate-matrix-binary.txt`` unless ``use_continuous`` or
    ``continuous_threshold`` is given: then from ``predicate-matrix-continuous.txt``, an attribute
    present when its value is >= the threshold (default: the mean of the whole matrix, which
    reproduces the authors' binary matrix), and -1 ("no answer") unknown (NaN).
    ``images_dir`` is relative to ``root`` unless absolute (default ``JPEGImages``, else ``images``).
    """
    root = require_root(root, "AwA")
    class_names = read_numbered_names(root / "classes.txt", "AwA class list classes.txt")
    predicates = read_numbered_names(root / "predicates.txt", "AwA attribute list predicates.txt")
    shape = (len(class_names), len(predicates))
    source_files = [root / "classes.txt", root / "predicates.txt"]
    metadata: dict[str, Any] = {"format": "awa"}

    if use_continuous or continuous_threshold is not None:
        path = root / "predicate-matrix-continuous.txt"
        matrix = read_matrix(path, "AwA continuous predicate matrix", shape)
        bad = (matrix < 0) & (matrix != -1)
        if bad.any() or (matrix > 100).any():
            r, c = np.argwhere(bad | (matrix > 100))[0]
            raise DatasetFormatError(
                f"{path}: row {r + 1} (class {class_names[r]}), column {c + 1}: value {matrix[r, c]} "
                "is outside [0, 100] and is not the missing marker -1"
            )
        threshold = float(matrix.mean()) if continuous_threshold is None else float(continuous_threshold)
        class_labels = np.where(matrix == -1, np.nan, (matrix >= threshold).astype(np.float64))
        metadata.update(label_source="predicate-matrix-continuous.txt", continuous_threshold=threshold)
        metadata["unknown_class_labels"] = int((matrix == -1).sum())
        source_files.append(path)
    else:
        path = root / "predicate-matrix-binary.txt"
        matrix = read_matrix(path, "AwA binary predicate matrix", shape)
        bad = ~np.isin(matrix, (0.0, 1.0))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DatasetFormatError(
                f"{path}: row {r + 1} (class {class_names[r]}), column {c + 1}: expected 0 or 1, got {matrix[r, c]}"
            )
        class_labels = matrix
        metadata["label_source"] = "predicate-matrix-binary.txt"
        source_files.append(path)
    class_labels = class_labels.astype(np.float32)

    test_ids = _test_classes(root, class_names, split_file, test_fraction, seed, metadata, source_files)

    candidates = [resolve(root, images_dir)] if images_dir is not None else [root / d for d in IMAGE_DIR_CANDIDATES]
    image_root = first_image_dir(candidates, "AwA", "images in <folder>/<class>/*.jpg")
    image_paths: list[Path] = []
    class_index: list[int] = []
    missing_folders: list[Path] = []
    empty_folders: list[Path] = []
    for c, class_name in enumerate(class_names):
        folder = image_root / class_name
        if not folder.is_dir():
            missing_folders.append(folder)
            continue
        files = list_images(folder)
        if not files:
            empty_folders.append(folder)
        image_paths.extend(files)
        class_index.extend([c] * len(files))
    for problem, folders in (("missing", missing_folders), ("without images", empty_folders)):
        if folders:
            shown = ", ".join(str(f) for f in folders[:5])
            raise DatasetFormatError(
                f"AwA: {len(folders)} of {len(class_names)} class folders are {problem} under {image_root} "
                f"(expected one folder per class of classes.txt): {shown}"
            )
    check_files_exist(image_paths, "AwA")

    index = np.asarray(class_index, dtype=np.int64)
    metadata.update(val_fraction=val_fraction, seed=seed, test_classes=[class_names[c] for c in test_ids])
    return RawDomain(
        name=name,
        image_paths=image_paths,
        labels=class_labels[index],
        attribute_names=list(predicates),
        class_index=index,
        class_names=list(class_names),
        splits=class_split(index, test_ids, val_fraction, seed),
        label_level="class",
        class_attributes=class_labels,
        source_files=source_files,
        metadata=metadata,
    )


def _test_classes(
    root: Path,
    class_names: list[str],
    split_file: str | os.PathLike[str] | None,
    test_fraction: float,
    seed: int,
    metadata: dict[str, Any],
    source_files: list[Path],
) -> list[int]:
    """Test class ids from ``split_file``, else ``testclasses.txt`` (checked against trainclasses.txt)."""
    if split_file is not None:
        return listed_or_seeded_test_classes(
            root, class_names, split_file, test_fraction, seed, metadata, source_files, root / "classes.txt"
        )
    test_path, train_path = root / "testclasses.txt", root / "trainclasses.txt"
    if not test_path.is_file():
        metadata["split_source"] = f"seeded choice of {test_fraction} of the classes (no testclasses.txt)"
        return choose_test_classes(len(class_names), test_fraction, seed)
    test_lines = read_name_list(test_path, "AwA test class list testclasses.txt")
    test_ids = match_class_names(test_lines, class_names, test_path)
    source_files.append(test_path)
    if train_path.is_file():
        train_lines = read_name_list(train_path, "AwA train class list trainclasses.txt")
        train_ids = match_class_names(train_lines, class_names, train_path)
        source_files.append(train_path)
        for (number, class_name), c in zip(train_lines, train_ids):
            if c in test_ids:
                raise line_error(train_path, number, f"class {class_name!r} is also listed in {test_path}")
    if not test_ids:
        raise DatasetFormatError(f"{test_path}: lists no test classes")
    if len(set(test_ids)) == len(class_names):
        raise DatasetFormatError(f"{test_path}: lists every class; none is left to train on")
    metadata["split_source"] = "testclasses.txt"
    return sorted(set(test_ids))
