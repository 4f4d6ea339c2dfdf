"""CelebA (Liu et al. 2015): 40 binary face attributes per image.

Files: ``list_attr_celeba.txt`` (line 1 the row count, line 2 the 40 names, then
``000001.jpg  -1  1 ...`` with irregular spacing; in ``root`` or ``root/Anno``), optional
``list_eval_partition.txt`` (``000001.jpg 0``; 0/1/2 = train/val/test; in ``root`` or
``root/Eval``), images in ``img_align_celeba/`` (or ``Img/img_align_celeba/``).

CelebA has no classes, so there are no unseen test classes to hold out. The domain still
needs a class per image whose test classes are absent from training, so every train and val
image belongs to the pseudo-class ``train_pool`` and every test image to ``test_pool``;
``metadata['class_split']`` is False to say the split is an image split, not a class split.
Without the partition file the split is seeded: ``test_fraction`` and ``val_fraction`` of all
images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from galm.data.raw import RawDomain
from galm.data.readers.dataset_files import (
    check_files_exist,
    find_file,
    first_image_dir,
    require_root,
    resolve,
)
from galm.data.readers.format_error import DatasetFormatError, line_error
from galm.data.readers.splits import POOL_NAMES, pool_splits, seeded_image_partition
from galm.data.readers.text_tables import iter_lines, parse_int


def read_celeba(
    root: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    attributes_file: str | os.PathLike[str] | None = None,
    partition_file: str | os.PathLike[str] | None = None,
    use_partition: bool = True,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    name: str = "celeba",
) -> RawDomain:
    """Read CelebA into an image-level :class:`RawDomain` with pseudo-classes train_pool/test_pool."""
    root = require_root(root, "CelebA")
    attr_path = (
        resolve(root, attributes_file)
        if attributes_file is not None
        else find_file([root / "list_attr_celeba.txt", root / "Anno" / "list_attr_celeba.txt"], "CelebA attribute file")
    )
    assert attr_path is not None
    files, labels, attribute_names = read_celeba_attributes(attr_path)
    source_files = [attr_path]
    metadata: dict[str, Any] = {"format": "celeba", "class_split": False, "pseudo_classes": list(POOL_NAMES)}

    part_path = resolve(root, partition_file)
    if part_path is None and use_partition:
        for candidate in (root / "list_eval_partition.txt", root / "Eval" / "list_eval_partition.txt"):
            if candidate.is_file():
                part_path = candidate
                break
    if part_path is not None and use_partition:
        part = read_celeba_partition(part_path, files)
        source_files.append(part_path)
        metadata["split_source"] = part_path.name
    else:
        part = seeded_image_partition(len(files), val_fraction, test_fraction, seed, "CelebA")
        metadata.update(split_source="seeded image split", val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)

    candidates = [resolve(root, images_dir)] if images_dir is not None else [root / "img_align_celeba", root / "Img" / "img_align_celeba"]
    image_root = first_image_dir(candidates, "CelebA", "the aligned images img_align_celeba/*.jpg")  # type: ignore[arg-type]
    image_paths = [image_root / f for f in files]
    check_files_exist(image_paths, "CelebA")

    splits, class_index = pool_splits(part)
    return RawDomain(
        name=name,
        image_paths=image_paths,
        labels=labels,
        attribute_names=attribute_names,
        class_index=class_index,
        class_names=list(POOL_NAMES),
        splits=splits,
        label_level="image",
        source_files=source_files,
        metadata=metadata,
    )


def read_celeba_attributes(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(image file names, (N, 40) float32 0/1 labels, attribute names) of ``list_attr_celeba.txt``."""
    lines = list(iter_lines(path, "CelebA attribute file list_attr_celeba.txt"))
    if len(lines) < 2:
        raise DatasetFormatError(f"{path}: expected a count line and an attribute-name line, got {len(lines)} lines")
    count_line, count_text = lines[0]
    count_tokens = count_text.split()
    if len(count_tokens) != 1:
        raise line_error(path, count_line, f"expected the image count alone, got {count_text[:80]!r}")
    count = parse_int(count_tokens[0], path, count_line, "image count")
    names_line, names_text = lines[1]
    names = names_text.split()
    if len(set(names)) != len(names) or not names:
        raise line_error(path, names_line, "attribute names must be present and unique")
    rows = lines[2:]
    if len(rows) != count:
        raise DatasetFormatError(f"{path}: the count line (line {count_line}) says {count} images but the file holds {len(rows)} rows")
    files: list[str] = []
    values = np.empty((len(rows), len(names)), dtype=np.float32)
    seen: dict[str, int] = {}
    for k, (number, text) in enumerate(rows):
        tokens = text.split()
        if len(tokens) != len(names) + 1:
            raise line_error(path, number, f"expected an image name and {len(names)} values, got {len(tokens)} fields")
        if tokens[0] in seen:
            raise line_error(path, number, f"duplicate image {tokens[0]!r} (first on line {seen[tokens[0]]})")
        seen[tokens[0]] = number
        for j, token in enumerate(tokens[1:]):
            if token == "1":
                values[k, j] = 1.0
            elif token in ("-1", "0"):
                values[k, j] = 0.0
            else:
                raise line_error(path, number, f"attribute {names[j]!r} must be 1 or -1, got {token!r}")
        files.append(tokens[0])
    return files, values, names


def read_celeba_partition(path: Path, files: list[str]) -> np.ndarray:
    """Partition (0 train / 1 val / 2 test) of each image in ``files``, from ``list_eval_partition.txt``."""
    partition: dict[str, int] = {}
    for number, text in iter_lines(path, "CelebA partition file list_eval_partition.txt"):
        tokens = text.split()
        if len(tokens) != 2:
            raise line_error(path, number, f"expected '<image> <0|1|2>', got {text[:80]!r}")
        value = parse_int(tokens[1], path, number, "partition")
        if value not in (0, 1, 2):
            raise line_error(path, number, f"partition must be 0 (train), 1 (val) or 2 (test), got {value}")
        if tokens[0] in partition:
            raise line_error(path, number, f"duplicate image {tokens[0]!r}")
        partition[tokens[0]] = value
    missing = [f for f in files if f not in partition]
    if missing:
        raise DatasetFormatError(f"{path}: {len(missing)} images of the attribute file have no partition, e.g. {missing[:5]}")
    return np.asarray([partition[f] for f in files], dtype=np.int64)

