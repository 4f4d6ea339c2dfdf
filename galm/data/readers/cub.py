"""Caltech-UCSD Birds 200-2011, in the layout the authors ship.

Files in the ``CUB_200_2011/`` folder (``root`` itself or ``root/CUB_200_2011``): ``images.txt``
(``id path``), ``image_class_labels.txt`` (``id class_id``), ``classes.txt`` (``id name``),
``train_test_split.txt`` (``id is_train``), ``images/``, and under ``attributes/``:
``image_attribute_labels.txt`` (``image_id attribute_id is_present certainty_id time``; a few
lines of the shipped file carry one extra token, tolerated: the first four fields are used) and
``class_attribute_labels_continuous.txt`` (200 rows of 312 percentages). Attribute names come from
``attributes.txt`` (``1 has_bill_shape::curved_(up_or_down)``), which the archive puts beside
``CUB_200_2011/`` (also looked for inside it and in ``attributes/``); without it they are
``attribute_001``, ... A folder holding only some of the 200 classes works: only the images of
``images.txt`` are read, and only their classes are kept.

Labels: image-level from ``image_attribute_labels.txt`` when present (``labels='auto'``), with
certainty 1 ("not visible") optionally unknown (NaN); otherwise class-level from the continuous
class matrix, present when > ``class_threshold`` percent (default 50).

Split ``'classes'`` (default): test = the classes of ``split_file`` or a seeded
``test_fraction`` of the classes (unseen); val a seeded per-class carve of the rest.
Split ``'official'``: ``train_test_split.txt``'s image split, val carved from its training
images. Its test images come from classes seen in training, which the domain's unseen-class
check forbids, so the classes become the two pseudo-classes ``train_pool`` / ``test_pool``
(``metadata['class_split']`` False, ``metadata['test_classes_seen']`` True; the bird species
names stay in ``metadata['species_names']``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from galm.data.domain import class_split
from galm.data.raw import RawDomain
from galm.data.readers.dataset_files import (
    check_files_exist,
    first_image_dir,
    require_file,
    require_root,
    resolve,
)
from galm.data.readers.format_error import DatasetFormatError, line_error
from galm.data.readers.splits import listed_or_seeded_test_classes
from galm.data.readers.text_tables import (
    parse_float,
    parse_int,
    read_id_table,
    read_text,
)

LABEL_SOURCES = ("auto", "image", "class")
SPLITS = ("classes", "official")


def find_cub_dir(root: Path) -> Path:
    """The folder holding ``images.txt``: ``root`` or ``root/CUB_200_2011``."""
    for candidate in (root, root / "CUB_200_2011"):
        if (candidate / "images.txt").is_file():
            return candidate
    raise DatasetFormatError(
        f"missing CUB image list: expected file {root / 'images.txt'} (or {root / 'CUB_200_2011' / 'images.txt'})"
    )


def read_cub(
    root: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    labels: str = "auto",
    class_threshold: float = 50.0,
    not_visible_as_unknown: bool = False,
    split: str = "classes",
    split_file: str | os.PathLike[str] | None = None,
    test_fraction: float = 0.25,
    val_fraction: float = 0.2,
    seed: int = 0,
    name: str = "cub",
) -> RawDomain:
    """Read CUB-200-2011 into a :class:`RawDomain` (see the module doc for labels and splits)."""
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {LABEL_SOURCES}, got {labels!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = require_root(root, "CUB")
    cub = find_cub_dir(root)
    source_files: list[Path] = []

    images_path = cub / "images.txt"
    image_rows = read_id_table(images_path, "CUB image list images.txt", 2)
    image_ids = [parse_int(t[0], images_path, n, "image id") for n, t in image_rows]
    relative = [t[1] for _, t in image_rows]
    if not image_ids:
        raise DatasetFormatError(f"{images_path}: lists no images")
    position = {image_id: k for k, image_id in enumerate(image_ids)}

    classes_path = cub / "classes.txt"
    class_rows = read_id_table(classes_path, "CUB class list classes.txt", 2)
    all_class_ids = [parse_int(t[0], classes_path, n, "class id") for n, t in class_rows]
    all_class_names = {cid: t[1] for cid, (_, t) in zip(all_class_ids, class_rows)}
    for cid, (number, _) in zip(all_class_ids, class_rows):
        if cid < 1:
            raise line_error(classes_path, number, f"class id must be a positive integer, got {cid}")

    labels_path = cub / "image_class_labels.txt"
    image_class = np.full(len(image_ids), -1, dtype=np.int64)
    for number, tokens in read_id_table(labels_path, "CUB class labels image_class_labels.txt", 2):
        image_id = parse_int(tokens[0], labels_path, number, "image id")
        class_id = parse_int(tokens[1], labels_path, number, "class id")
        if class_id not in all_class_names:
            raise line_error(labels_path, number, f"class id {class_id} is not in {classes_path}")
        if image_id in position:
            image_class[position[image_id]] = class_id
    unlabelled = [image_ids[k] for k in np.flatnonzero(image_class < 0)]
    if unlabelled:
        raise DatasetFormatError(f"{labels_path}: {len(unlabelled)} images of {images_path} have no class, e.g. ids {unlabelled[:5]}")
    source_files += [images_path, classes_path, labels_path]

    used_ids = sorted(set(image_class.tolist()))
    class_names = [all_class_names[c] for c in used_ids]
    to_index = {c: i for i, c in enumerate(used_ids)}
    class_index = np.asarray([to_index[c] for c in image_class], dtype=np.int64)

    attr_names_path = next(
        (p for p in (cub.parent / "attributes.txt", cub / "attributes.txt", cub / "attributes" / "attributes.txt") if p.is_file()),
        None,
    )
    attribute_names: list[str] | None = None
    if attr_names_path is not None:
        rows = read_id_table(attr_names_path, "CUB attribute names attributes.txt", 2)
        for k, (number, tokens) in enumerate(rows):
            if parse_int(tokens[0], attr_names_path, number, "attribute id") != k + 1:
                raise line_error(attr_names_path, number, f"expected attribute id {k + 1} (ids must run 1, 2, ...)")
        attribute_names = [t[1] for _, t in rows]
        if len(set(attribute_names)) != len(attribute_names):
            raise DatasetFormatError(f"{attr_names_path}: attribute names are not unique")
        source_files.append(attr_names_path)

    metadata: dict[str, Any] = {"format": "cub", "val_fraction": val_fraction, "seed": seed}
    image_labels_path = cub / "attributes" / "image_attribute_labels.txt"
    class_labels_path = cub / "attributes" / "class_attribute_labels_continuous.txt"
    class_matrix = None
    if class_labels_path.is_file():
        class_matrix = _read_class_matrix(class_labels_path, all_class_ids, attribute_names)
        source_files.append(class_labels_path)
    source = labels
    if source == "auto":
        source = "image" if image_labels_path.is_file() else "class"
    if source == "image":
        require_file(image_labels_path, "CUB image attribute labels")
        n_attr = len(attribute_names) if attribute_names is not None else (class_matrix.shape[1] if class_matrix is not None else None)
        label_matrix, facts = _read_image_labels(image_labels_path, position, n_attr, not_visible_as_unknown)
        metadata.update(facts)
        source_files.append(image_labels_path)
    else:
        if class_matrix is None:
            require_file(class_labels_path, "CUB class attribute labels (no image attribute labels either)")
        assert class_matrix is not None
        label_matrix = np.zeros(0)  # filled below from the class rows
    n_attributes = label_matrix.shape[1] if source == "image" else class_matrix.shape[1]  # type: ignore[union-attr]
    if class_matrix is not None and class_matrix.shape[1] != n_attributes:
        raise DatasetFormatError(
            f"{class_labels_path}: {class_matrix.shape[1]} attributes per class, but {image_labels_path} has {n_attributes}"
        )
    if attribute_names is None:
        attribute_names = [f"attribute_{j + 1:03d}" for j in range(n_attributes)]
    elif len(attribute_names) != n_attributes:
        raise DatasetFormatError(f"{attr_names_path}: names {len(attribute_names)} attributes, the label files have {n_attributes}")

    class_attributes = None
    if class_matrix is not None:
        rows = np.asarray(used_ids, dtype=np.int64) - 1
        class_attributes = (class_matrix[rows] > class_threshold).astype(np.float32)
        metadata["class_threshold"] = class_threshold
    if source == "class":
        assert class_attributes is not None
        label_matrix = class_attributes[class_index]
        metadata["label_source"] = "class_attribute_labels_continuous.txt"
    label_level = "image" if source == "image" else "class"

    if split == "classes":
        test_ids = listed_or_seeded_test_classes(
            root, class_names, split_file, test_fraction, seed, metadata, source_files, images_path
        )
        splits = class_split(class_index, test_ids, val_fraction, seed)
        metadata["test_classes"] = [class_names[c] for c in test_ids]
    else:
        split_path = cub / "train_test_split.txt"
        is_train = np.full(len(image_ids), -1, dtype=np.int64)
        for number, tokens in read_id_table(split_path, "CUB official split train_test_split.txt", 2):
            value = parse_int(tokens[1], split_path, number, "is_train")
            if value not in (0, 1):
                raise line_error(split_path, number, f"is_train must be 0 or 1, got {value}")
            image_id = parse_int(tokens[0], split_path, number, "image id")
            if image_id in position:
                is_train[position[image_id]] = value
        if (is_train < 0).any():
            missing = [image_ids[k] for k in np.flatnonzero(is_train < 0)]
            raise DatasetFormatError(f"{split_path}: {len(missing)} images of {images_path} are not listed, e.g. ids {missing[:5]}")
        source_files.append(split_path)
        pools = (is_train == 0).astype(np.int64)
        carve = class_split(np.where(pools == 0, class_index, -1), [-1], val_fraction, seed)
        splits = carve
        metadata.update(
            split_source="train_test_split.txt",
            class_split=False,
            test_classes_seen=True,
            pseudo_classes=["train_pool", "test_pool"],
            species_names=class_names,
        )
        class_names = ["train_pool", "test_pool"]
        class_index = pools
        class_attributes = None
        if label_level == "class":
            metadata["label_note"] = "labels are the species' class rows; classes are pooled, so label_level is 'image'"
        label_level = "image"

    candidates = [resolve(root, images_dir)] if images_dir is not None else [cub / "images"]
    image_root = first_image_dir(candidates, "CUB", "images/<class>/*.jpg")  # type: ignore[arg-type]
    image_paths = [image_root / rel for rel in relative]
    check_files_exist(image_paths, "CUB")
    return RawDomain(
        name=name,
        image_paths=image_paths,
        labels=np.ascontiguousarray(label_matrix, dtype=np.float32),
        attribute_names=attribute_names,
        class_index=class_index,
        class_names=class_names,
        splits=splits,
        label_level=label_level,
        class_attributes=class_attributes,
        source_files=source_files,
        metadata=metadata,
    )


def _read_class_matrix(path: Path, class_ids: list[int], attribute_names: list[str] | None) -> np.ndarray:
    """The continuous class matrix: one row per class of classes.txt, percentages in [0, 100]."""
    rows: list[list[float]] = []
    width = len(attribute_names) if attribute_names is not None else None
    per = "one per attribute of attributes.txt" if attribute_names is not None else "one per attribute"
    for number, text in enumerate(read_text(path, "CUB class attribute labels").splitlines(), start=1):
        tokens = text.split()
        if not tokens:
            continue
        if width is None:
            width = len(tokens)
        if len(tokens) != width:
            raise line_error(path, number, f"expected {width} values ({per}), got {len(tokens)}")
        values = [parse_float(t, path, number, f"value {j + 1}") for j, t in enumerate(tokens)]
        bad = [j for j, v in enumerate(values) if not 0.0 <= v <= 100.0]
        if bad:
            raise line_error(path, number, f"value {bad[0] + 1} is {values[bad[0]]}, expected a percentage in [0, 100]")
        rows.append(values)
    if len(rows) < max(class_ids, default=0):
        raise DatasetFormatError(
            f"{path}: expected one row per class id of classes.txt (row k for class id k, {max(class_ids)} rows), got {len(rows)}"
        )
    return np.asarray(rows, dtype=np.float64)


def _read_image_labels(
    path: Path, position: dict[int, int], n_attributes: int | None, not_visible_as_unknown: bool
) -> tuple[np.ndarray, dict[str, Any]]:
    """(N, A) labels from ``image_attribute_labels.txt``; NaN where an image lacks an entry."""
    table, line_numbers, extra_token_lines = _parse_label_table(path)
    image_id, attr, present, certainty = table.T

    def fail(mask: np.ndarray, message: str) -> None:
        k = int(np.flatnonzero(mask)[0])
        raise line_error(path, int(line_numbers[k]), message.format(**{"v": table[k]}))

    if ((present != 0) & (present != 1)).any():
        fail((present != 0) & (present != 1), "is_present must be 0 or 1, got {v[2]}")
    if ((certainty < 1) | (certainty > 4)).any():
        fail((certainty < 1) | (certainty > 4), "certainty_id must be 1-4, got {v[3]}")
    limit = n_attributes if n_attributes is not None else np.iinfo(np.int64).max
    if ((attr < 1) | (attr > limit)).any():
        fail((attr < 1) | (attr > limit), f"attribute_id {{v[1]}} is outside [1, {n_attributes}]")
    listed_ids = np.fromiter(position.keys(), dtype=np.int64, count=len(position))
    lookup = np.full(int(max(listed_ids.max(initial=0), image_id.max(initial=0))) + 1, -1, dtype=np.int64)
    lookup[listed_ids[listed_ids >= 0]] = np.fromiter(position.values(), dtype=np.int64, count=len(position))[listed_ids >= 0]
    rows = np.where(image_id >= 0, lookup[np.maximum(image_id, 0)], -1)
    listed = rows >= 0
    ignored = int((~listed).sum())
    rows, attr, present, certainty, line_numbers = rows[listed], attr[listed] - 1, present[listed], certainty[listed], line_numbers[listed]
    width = n_attributes if n_attributes is not None else int(attr.max(initial=-1)) + 1
    keys = rows * max(width, 1) + attr
    order = np.argsort(keys, kind="stable")
    repeated = np.flatnonzero(np.diff(keys[order]) == 0)
    if repeated.size:
        first, second = line_numbers[order[repeated[0]]], line_numbers[order[repeated[0] + 1]]
        first, second = min(first, second), max(first, second)
        raise line_error(path, int(second), f"duplicate entry for attribute {int(attr[order[repeated[0]]]) + 1} of an image (first on line {int(first)})")
    labels = np.full((len(position), width), np.nan, dtype=np.float32)
    values = present.astype(np.float32)
    if not_visible_as_unknown:
        values[certainty == 1] = np.nan
    labels[rows, attr] = values
    facts: dict[str, Any] = {
        "label_source": "image_attribute_labels.txt",
        "not_visible_as_unknown": not_visible_as_unknown,
        "extra_token_lines": extra_token_lines,
        "entries_of_unlisted_images": ignored,
        "missing_labels": int(np.isnan(labels).sum()),
    }
    return labels, facts


def _parse_label_table(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows x 4 int64 first fields, their 1-based line numbers, count of 6-token lines).

    The shipped file has 3.7 million lines, so it is parsed with numpy: token starts are found
    on the bytes, counted per line, and all numbers read at once; a problem is traced back to its
    line for the message.
    """
    raw = read_text(path, "CUB image attribute labels").encode("ascii", "replace")
    data = np.frombuffer(raw, dtype=np.uint8)
    space = (data == 32) | (data == 9) | (data == 13) | (data == 10) | (data == 11) | (data == 12)
    token_starts = np.flatnonzero(~space & np.concatenate([[True], space[:-1]]))
    newlines = np.flatnonzero(data == 10)
    n_lines = len(newlines) + (1 if len(data) and data[-1] != 10 else 0)
    line_of_token = np.searchsorted(newlines, token_starts)
    counts = np.bincount(line_of_token, minlength=n_lines)
    bad = np.flatnonzero((counts != 0) & (counts != 5) & (counts != 6))
    if bad.size:
        raise line_error(
            path, int(bad[0]) + 1, f"expected 5 fields (image_id attribute_id is_present certainty_id time), got {int(counts[bad[0]])}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.fromstring(raw.replace(b"\r", b" "), dtype=np.float64, sep=" ")
    except ValueError:
        values = None
    used = np.flatnonzero(counts > 0)
    first_token = np.concatenate([[0], np.cumsum(counts)])[used]
    if values is None or values.size != token_starts.size:
        for number, line in enumerate(raw.decode("ascii", "replace").splitlines(), start=1):
            for token in line.split():
                try:
                    float(token)
                except ValueError:
                    raise line_error(path, number, f"the fields must be numbers, got {token!r}") from None
        raise DatasetFormatError(f"{path}: cannot read the file as numbers")
    table = values[first_token[:, None] + np.arange(4)[None, :]]
    fractional = np.flatnonzero((table != np.round(table)).any(axis=1))
    if fractional.size:
        k = int(fractional[0])
        raise line_error(path, int(used[k]) + 1, f"the first four fields must be integers, got {table[k].tolist()}")
    return table.astype(np.int64), used.astype(np.int64) + 1, int((counts == 6).sum())
