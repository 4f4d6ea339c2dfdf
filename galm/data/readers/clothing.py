"""Clothing Attribute Dataset (Chen, Gallagher, Girod, ECCV 2012): 26 clothing labels of 1,856 photos.

Files (in ``root`` or ``root/ClothingAttributeDataset``): ``labels/<label>_GT.mat`` (MATLAB, key
``GT``, one value per image in image order, N x 1) and ``images/000001.jpg`` ... ``images/<N>.jpg``,
N being the length the label files share (1,856 as shipped).

Labels: 23 binary attributes coded 1 = no, 2 = yes, named after their files (``necktie``,
``collar``, ... ``many_colors``; ``gender`` is 1 male / 2 female, so a positive means female;
``skin_exposure`` 2 means high exposure). NaN, where the six annotators disagreed, stays unknown.
Three multi-class labels: ``sleevelength`` (1 none, 2 short, 3 long), ``neckline`` (1 V-shape,
2 round, 3 other) and ``category`` (1 shirt, 2 sweater, 3 T-shirt, 4 outerwear, 5 suit, 6 tank top,
7 dress). ``multiclass='expand'`` (default) turns each into one-vs-rest binary attributes
(``sleevelength_long``, ``neckline_v_shape``, ``category_dress``, ...; an unknown value is unknown
in all of them); ``multiclass='drop'`` leaves them out (their files are then not read).

Split: by default an image split like CelebA's seeded one: ``test_fraction`` and ``val_fraction``
of the images, every train/val image in the pseudo-class ``train_pool`` and every test image in
``test_pool`` (``metadata['class_split']`` False). ``class_column='category'`` (or
``'sleevelength'``, ``'neckline'``) makes that label's values the classes, with unseen test
classes: those named in ``split_file`` (one a line), else a seeded ``test_class_fraction`` of
the classes present; val is a seeded per-class carve of the training classes' images. That label
is then the class, not an attribute. Images whose class label is unknown (NaN: 752 of 1,856 for
``category``) belong to neither side of a class split and are left out; the metadata records
how many (``unknown_class_images``).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from galm.data.domain import class_split
from galm.data.raw import RawDomain
from galm.data.readers.dataset_files import (
    check_files_exist,
    first_image_dir,
    require_root,
    resolve,
)
from galm.data.readers.format_error import DatasetFormatError, field_error
from galm.data.readers.mat_files import load_mat, mat_key, mat_numeric
from galm.data.readers.splits import (
    POOL_NAMES,
    listed_or_seeded_test_classes,
    pool_splits,
    seeded_image_partition,
)

# The 23 binary labels in the order of the dataset's README, as named by their files.
BINARY_ATTRIBUTES = (
    "necktie", "collar", "gender", "placket", "skin_exposure", "scarf",
    "pattern_solid", "pattern_floral", "pattern_spot", "pattern_graphics", "pattern_plaid", "pattern_stripe",
    "red", "yellow", "green", "cyan", "blue", "purple", "brown", "white", "gray", "black", "many_colors",
)
# The multi-class labels: the meaning of codes 1, 2, ... (from the README), in README order.
MULTICLASS_LABELS: dict[str, tuple[str, ...]] = {
    "sleevelength": ("none", "short", "long"),
    "neckline": ("v_shape", "round", "other"),
    "category": ("shirt", "sweater", "t_shirt", "outerwear", "suit", "tank_top", "dress"),
}
MULTICLASS_MODES = ("expand", "drop")
DATASET_FOLDER = "ClothingAttributeDataset"
LABEL_KEY = "GT"


def read_clothing(
    root: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    labels_dir: str | os.PathLike[str] | None = None,
    multiclass: str = "expand",
    class_column: str | None = None,
    split_file: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    test_class_fraction: float = 0.25,
    seed: int = 0,
    name: str = "clothing",
) -> RawDomain:
    """Read the Clothing Attribute Dataset into an image-level :class:`RawDomain` (see the module doc)."""
    if multiclass not in MULTICLASS_MODES:
        raise ValueError(f"multiclass must be one of {MULTICLASS_MODES}, got {multiclass!r}")
    if class_column is not None and class_column not in MULTICLASS_LABELS:
        raise ValueError(f"class_column must be one of {sorted(MULTICLASS_LABELS)} or None, got {class_column!r}")
    if split_file is not None and class_column is None:
        raise ValueError("split_file names test classes; it needs class_column (e.g. class_column=category)")
    root = require_root(root, "Clothing")
    base = find_clothing_dir(root)
    label_root = resolve(root, labels_dir) if labels_dir is not None else base / "labels"
    assert label_root is not None
    if not label_root.is_dir():
        raise DatasetFormatError(
            f"Clothing: label folder not found: expected folder {label_root} holding <label>_{LABEL_KEY}.mat files"
            + ("" if labels_dir is not None else f" (also tried {root / DATASET_FOLDER / 'labels'})")
        )

    expanded = list(MULTICLASS_LABELS) if multiclass == "expand" else []
    wanted = list(BINARY_ATTRIBUTES) + [m for m in MULTICLASS_LABELS if m in expanded or m == class_column]
    paths = {label: label_root / f"{label}_{LABEL_KEY}.mat" for label in wanted}
    values = {label: read_label_file(path, _codes(label), f"Clothing label file {path.name}")
              for label, path in paths.items()}
    n = _shared_length(values, paths)

    columns: list[np.ndarray] = []
    attribute_names: list[str] = []
    for label in BINARY_ATTRIBUTES:
        columns.append(np.where(np.isnan(values[label]), np.nan, values[label] - 1.0))
        attribute_names.append(label)
    for label in expanded:
        if label == class_column:
            continue
        for code, meaning in enumerate(MULTICLASS_LABELS[label], start=1):
            columns.append(np.where(np.isnan(values[label]), np.nan, (values[label] == code).astype(np.float64)))
            attribute_names.append(f"{label}_{meaning}")
    labels = np.stack(columns, axis=1).astype(np.float32)

    source_files = [paths[label] for label in wanted]
    metadata: dict[str, Any] = {
        "format": "clothing",
        "multiclass": multiclass,
        "label_codes": "binary: 1 = no, 2 = yes (gender: 1 = male, 2 = female); NaN = annotators disagreed (unknown)",
        "multiclass_labels": {k: list(v) for k, v in MULTICLASS_LABELS.items()},
        "val_fraction": val_fraction,
        "seed": seed,
    }
    image_numbers = np.arange(1, n + 1)
    if class_column is None:
        part = seeded_image_partition(n, val_fraction, test_fraction, seed, "Clothing")
        splits, class_index = pool_splits(part)
        class_names = list(POOL_NAMES)
        metadata.update(class_split=False, pseudo_classes=list(POOL_NAMES), split_source="seeded image split",
                        test_fraction=test_fraction)
    else:
        codes = values[class_column]
        known = ~np.isnan(codes)
        metadata.update(class_split=True, class_column=class_column, unknown_class_images=int((~known).sum()))
        image_numbers, labels, codes = image_numbers[known], labels[known], codes[known].astype(np.int64)
        present = sorted(set(codes.tolist()))
        class_names = [MULTICLASS_LABELS[class_column][c - 1] for c in present]
        lookup = {c: i for i, c in enumerate(present)}
        class_index = np.asarray([lookup[c] for c in codes.tolist()], dtype=np.int64)
        test_ids = listed_or_seeded_test_classes(
            root, class_names, split_file, test_class_fraction, seed, metadata, source_files, paths[class_column]
        )
        metadata.update(test_classes=[class_names[i] for i in test_ids])
        splits = class_split(class_index, test_ids, val_fraction, seed)

    candidates = [resolve(root, images_dir)] if images_dir is not None else [base / "images"]
    image_root = first_image_dir(candidates, "Clothing", "images/000001.jpg ... in image order")  # type: ignore[arg-type]
    image_paths = [image_root / f"{k:06d}.jpg" for k in image_numbers.tolist()]
    check_files_exist(image_paths, "Clothing")
    return RawDomain(
        name=name,
        image_paths=image_paths,
        labels=np.ascontiguousarray(labels),
        attribute_names=attribute_names,
        class_index=class_index,
        class_names=class_names,
        splits=splits,
        label_level="image",
        source_files=source_files,
        metadata=metadata,
    )


def find_clothing_dir(root: Path) -> Path:
    """The dataset folder: ``root``, or ``root/ClothingAttributeDataset`` when only that holds ``labels/``."""
    nested = root / DATASET_FOLDER
    return nested if not (root / "labels").is_dir() and (nested / "labels").is_dir() else root


def read_label_file(path: Path, codes: tuple[int, ...], what: str) -> np.ndarray:
    """The ``GT`` column of one label file as float64 codes (NaN kept); errors name the file and row."""
    raw = mat_numeric(mat_key(load_mat(path, what), LABEL_KEY, path), path, LABEL_KEY)
    if raw.ndim > 2 or (raw.ndim == 2 and 1 not in raw.shape):
        raise field_error(path, LABEL_KEY, f"expected one column of values (N x 1, one per image), got shape {raw.shape}")
    values = raw.ravel()
    bad = ~np.isnan(values) & ~np.isin(values, codes)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise field_error(
            path, LABEL_KEY,
            f"{int(bad.sum())} values are not allowed codes {list(codes)} or NaN (unknown), e.g. {values[row]} "
            f"at row {row + 1} (image {row + 1:06d}.jpg)",
        )
    return values


def _codes(label: str) -> tuple[int, ...]:
    """The allowed codes of a label: 1, 2 for a binary one, 1..K for a multi-class one."""
    return tuple(range(1, len(MULTICLASS_LABELS.get(label, ("no", "yes"))) + 1))


def _shared_length(values: dict[str, np.ndarray], paths: dict[str, Path]) -> int:
    """The number of images: the length most label files hold; an error naming a file of another length."""
    lengths = Counter(len(v) for v in values.values())
    n = lengths.most_common(1)[0][0]
    for label, v in values.items():
        if len(v) != n:
            others = sum(1 for w in values.values() if len(w) == n)
            raise field_error(
                paths[label], LABEL_KEY,
                f"expected {n} values (one per image, as {others} other label files hold), got {len(v)}",
            )
    if n == 0:
        raise DatasetFormatError(f"Clothing: the label files in {next(iter(paths.values())).parent} hold no values")
    return n
