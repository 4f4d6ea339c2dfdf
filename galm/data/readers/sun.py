"""SUN attribute database (Patterson & Hays 2012): 102 image-level scene attributes.

Files (in ``root`` or ``root/SUNAttributeDB``): ``images.mat`` (cell ``images`` of relative
paths like ``a/abbey/sun_xxx.jpg``), ``attributes.mat`` (cell ``attributes`` of 102 names),
``attributeLabels_continuous.mat`` (``labels_cv``, N x 102 fractions of three annotators'
votes). Images under ``images/`` (or ``SUNAttributeDB_Images/images/``).

An attribute is present when its vote fraction is >= ``threshold`` (default 0.5, i.e. two of
three votes). The class of an image is its path's folders without the leading single-letter
folder: ``a/abbey/x.jpg`` -> ``abbey``, ``a/apartment_building/outdoor/x.jpg`` ->
``apartment_building/outdoor``. Split: test = the classes of ``split_file`` (a text file of test
class names, one a line, or an xlsa17 ``att_splits.mat``) or else a seeded ``test_fraction`` of
the classes (default 107/717, the paper's 610/107 proportion); val is a seeded per-class carve
of the training classes' images.
"""

from __future__ import annotations

import os
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
from galm.data.readers.format_error import field_error
from galm.data.readers.mat_files import load_mat, mat_key, mat_numeric, mat_strings
from galm.data.readers.splits import listed_or_seeded_test_classes

DEFAULT_TEST_FRACTION = 107 / 717


def sun_class_of(relative_path: str) -> str:
    """The scene class of a SUN image path: its folders without a leading single-letter folder."""
    parts = [p for p in relative_path.replace("\\", "/").split("/") if p]
    folders = parts[:-1]
    if folders and len(folders[0]) == 1:
        folders = folders[1:]
    return "/".join(folders)


def read_sun(
    root: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    threshold: float = 0.5,
    split_file: str | os.PathLike[str] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    val_fraction: float = 0.2,
    seed: int = 0,
    name: str = "sun",
) -> RawDomain:
    """Read the SUN attribute database into an image-level :class:`RawDomain`."""
    root = require_root(root, "SUN")
    ann = root if (root / "images.mat").is_file() or not (root / "SUNAttributeDB").is_dir() else root / "SUNAttributeDB"
    images_path = ann / "images.mat"
    attrs_path = ann / "attributes.mat"
    labels_path = ann / "attributeLabels_continuous.mat"

    relative = [s.strip() for s in mat_strings(mat_key(load_mat(images_path, "SUN image list images.mat"), "images", images_path), images_path, "images")]
    if not relative:
        raise field_error(images_path, "images", "lists no images")
    seen: dict[str, int] = {}
    for k, rel in enumerate(relative):
        if not rel:
            raise field_error(images_path, "images", f"entry {k + 1} is empty")
        if rel in seen:
            raise field_error(images_path, "images", f"entry {k + 1} ({rel!r}) duplicates entry {seen[rel] + 1}")
        seen[rel] = k
    attribute_names = [s.strip() for s in mat_strings(mat_key(load_mat(attrs_path, "SUN attribute list attributes.mat"), "attributes", attrs_path), attrs_path, "attributes")]
    if len(set(attribute_names)) != len(attribute_names) or not all(attribute_names):
        raise field_error(attrs_path, "attributes", "attribute names must be non-empty and unique")
    votes = mat_numeric(mat_key(load_mat(labels_path, "SUN labels attributeLabels_continuous.mat"), "labels_cv", labels_path), labels_path, "labels_cv")
    expected = (len(relative), len(attribute_names))
    if votes.shape != expected:
        raise field_error(
            labels_path, "labels_cv", f"expected shape (images, attributes) = {expected} from images.mat and attributes.mat, got {votes.shape}"
        )
    bad = np.isnan(votes) | (votes < 0) | (votes > 1)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise field_error(labels_path, "labels_cv", f"row {r + 1}, column {c + 1}: value {votes[r, c]} is outside [0, 1]")
    labels = (votes >= threshold).astype(np.float32)

    class_of = [sun_class_of(rel) for rel in relative]
    for k, c in enumerate(class_of):
        if not c:
            raise field_error(images_path, "images", f"entry {k + 1} ({relative[k]!r}) has no class folder")
    class_names = sorted(set(class_of))
    lookup = {c: i for i, c in enumerate(class_names)}
    class_index = np.asarray([lookup[c] for c in class_of], dtype=np.int64)

    metadata: dict[str, Any] = {"format": "sun", "threshold": threshold, "val_fraction": val_fraction, "seed": seed}
    source_files = [images_path, attrs_path, labels_path]
    test_ids = listed_or_seeded_test_classes(
        root, class_names, split_file, test_fraction, seed, metadata, source_files, images_path
    )
    metadata["n_test_classes"] = len(test_ids)

    candidates = [resolve(root, images_dir)] if images_dir is not None else [root / "images", root / "SUNAttributeDB_Images" / "images"]
    image_root = first_image_dir(candidates, "SUN", "images/<letter>/<class>/*.jpg")  # type: ignore[arg-type]
    image_paths = [image_root / rel for rel in relative]
    check_files_exist(image_paths, "SUN")
    return RawDomain(
        name=name,
        image_paths=image_paths,
        labels=labels,
        attribute_names=attribute_names,
        class_index=class_index,
        class_names=class_names,
        splits=class_split(class_index, test_ids, val_fraction, seed),
        label_level="image",
        source_files=source_files,
        metadata=metadata,
    )
