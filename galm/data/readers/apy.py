"""aPascal / aYahoo (Farhadi et al. 2009): object crops with 64 image-level attributes.

Annotations under ``root/attribute_data/``: ``apascal_train.txt``, ``apascal_test.txt``,
``ayahoo_test.txt`` (one object a line: ``image class x1 y1 x2 y2`` then 64 bits),
``attribute_names.txt`` and ``class_names.txt``. aPascal images are VOC2008's ``JPEGImages``
(default: the first of ``VOC2008/JPEGImages``, ``VOCdevkit/VOC2008/JPEGImages``,
``JPEGImages`` under ``root``), aYahoo images are ``ayahoo_test_images/`` (both configurable,
relative to ``root`` unless absolute).

Every object is a sample: its image plus its box (``boxes``, pixel coordinates as annotated,
VOC style ``x1 y1 x2 y2``). Boxes with x2 <= x1 or y2 <= y1 (zero area) are dropped here and
counted in ``metadata['dropped_boxes']``; boxes reaching outside their image can only be seen
when decoding, so ``prepare`` clips them to the image and drops those left empty. The crop
margin (a fraction of the box size added on each side) travels in ``metadata['crop_margin']``.

Split: train (and a seeded per-class val carve of it) = aPascal train, plus aPascal test when
``include_apascal_test``; test = aYahoo, whose 12 classes are disjoint from aPascal's 20.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
from galm.data.readers.format_error import DatasetFormatError, line_error
from galm.data.readers.text_tables import iter_lines, parse_int, read_name_list

N_ATTRIBUTES = 64
VOC_CANDIDATES = ("VOC2008/JPEGImages", "VOCdevkit/VOC2008/JPEGImages", "JPEGImages")
YAHOO_DIR = "ayahoo_test_images"


@dataclass
class ApyObjects:
    """The objects of one annotation file, with the lines of boxes it dropped."""

    path: Path
    images: list[str] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    bits: list[list[int]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


def read_apy_annotations(path: Path, class_names: list[str], n_attributes: int = N_ATTRIBUTES) -> ApyObjects:
    """Parse one ``<image> <class> <x1> <y1> <x2> <y2> <bits...>`` file; errors name file and line."""
    lookup = {n: i for i, n in enumerate(class_names)}
    out = ApyObjects(path=path)
    n_fields = 6 + n_attributes
    for number, text in iter_lines(path, f"aPY annotation file {path.name}"):
        tokens = text.split()
        if len(tokens) != n_fields:
            raise line_error(
                path, number, f"expected {n_fields} fields (image class x1 y1 x2 y2 + {n_attributes} attribute bits), got {len(tokens)}"
            )
        image, class_name = tokens[0], tokens[1]
        if class_name not in lookup:
            raise line_error(path, number, f"unknown class {class_name!r} (not in class_names.txt)")
        box = tuple(parse_int(t, path, number, f"box {f}") for t, f in zip(tokens[2:6], ("x1", "y1", "x2", "y2")))
        bits = tokens[6:]
        bad = [j for j, b in enumerate(bits) if b not in ("0", "1")]
        if bad:
            j = bad[0]
            raise line_error(path, number, f"attribute {j + 1} must be 0 or 1, got {bits[j]!r}")
        x1, y1, x2, y2 = box
        if x2 <= x1 or y2 <= y1:
            out.dropped.append(number)
            continue
        out.images.append(image)
        out.classes.append(lookup[class_name])
        out.boxes.append(box)  # type: ignore[arg-type]
        out.bits.append([int(b) for b in bits])
        out.lines.append(number)
    return out


def read_apy(
    root: str | os.PathLike[str],
    *,
    annotations_dir: str | os.PathLike[str] = "attribute_data",
    voc_images: str | os.PathLike[str] | None = None,
    yahoo_images: str | os.PathLike[str] = YAHOO_DIR,
    include_apascal_test: bool = False,
    crop_margin: float = 0.0,
    val_fraction: float = 0.2,
    seed: int = 0,
    name: str = "apy",
) -> RawDomain:
    """Read aPascal/aYahoo annotations into an image-level :class:`RawDomain` of object crops."""
    root = require_root(root, "aPY")
    if crop_margin < 0:
        raise ValueError(f"crop_margin must be >= 0, got {crop_margin}")
    ann = resolve(root, annotations_dir)
    assert ann is not None
    names_path, attrs_path = ann / "class_names.txt", ann / "attribute_names.txt"
    class_names = [n for _, n in read_name_list(names_path, "aPY class list class_names.txt")]
    attribute_names = [n for _, n in read_name_list(attrs_path, "aPY attribute list attribute_names.txt")]
    if len(attribute_names) != N_ATTRIBUTES:
        raise DatasetFormatError(f"{attrs_path}: expected {N_ATTRIBUTES} attribute names, got {len(attribute_names)}")
    train_files = ["apascal_train.txt"] + (["apascal_test.txt"] if include_apascal_test else [])
    pascal = [read_apy_annotations(ann / f, class_names) for f in train_files]
    yahoo = read_apy_annotations(ann / "ayahoo_test.txt", class_names)
    pascal_classes = {c for part in pascal for c in part.classes}
    for c, number in zip(yahoo.classes, yahoo.lines):
        if c in pascal_classes:
            raise line_error(yahoo.path, number, f"class {class_names[c]!r} also appears in aPascal; aYahoo test classes must be unseen")

    voc_candidates = [resolve(root, voc_images)] if voc_images is not None else [root / d for d in VOC_CANDIDATES]
    voc_root = first_image_dir(voc_candidates, "aPY (aPascal)", "the VOC2008 JPEGImages folder")
    yahoo_root = first_image_dir([resolve(root, yahoo_images)], "aPY (aYahoo)", "the aYahoo ayahoo_test_images folder")

    image_paths: list[Path] = []
    classes: list[int] = []
    boxes: list[tuple[int, int, int, int]] = []
    bits: list[list[int]] = []
    origin: list[str] = []
    for part, image_root in [(p, voc_root) for p in pascal] + [(yahoo, yahoo_root)]:
        image_paths.extend(image_root / image for image in part.images)
        classes.extend(part.classes)
        boxes.extend(part.boxes)
        bits.extend(part.bits)
        origin.extend([part.path.name] * len(part.images))
    check_files_exist(image_paths, "aPY")

    index = np.asarray(classes, dtype=np.int64)
    # Keep only classes that occur, in class_names.txt order (aPascal test classes absent, etc.).
    used = sorted(set(classes))
    remap = np.full(len(class_names), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    index = remap[index]
    kept_names = [class_names[c] for c in used]
    test_ids = sorted({int(remap[c]) for c in yahoo.classes})
    dropped = {part.path.name: part.dropped for part in [*pascal, yahoo] if part.dropped}
    metadata: dict[str, Any] = {
        "format": "apy",
        "crop_margin": float(crop_margin),
        "box_convention": "x1 y1 x2 y2 pixel coordinates as annotated (VOC style, 1-based)",
        "box_note": "boxes reaching outside their image are clipped by prepare; boxes empty after clipping are dropped there",
        "dropped_boxes": sum(len(v) for v in dropped.values()),
        "dropped_box_lines": {k: v[:20] for k, v in dropped.items()},
        "dropped_box_reason": "x2 <= x1 or y2 <= y1 (zero or negative area)",
        "include_apascal_test": include_apascal_test,
        "objects_per_file": {part.path.name: len(part.images) for part in [*pascal, yahoo]},
        "val_fraction": val_fraction,
        "seed": seed,
        "split_source": "aPascal train" + (" + aPascal test" if include_apascal_test else "") + " / aYahoo test",
    }
    return RawDomain(
        name=name,
        image_paths=image_paths,
        labels=np.asarray(bits, dtype=np.float32).reshape(len(bits), N_ATTRIBUTES),
        attribute_names=attribute_names,
        class_index=index,
        class_names=kept_names,
        splits=class_split(index, test_ids, val_fraction, seed),
        label_level="image",
        boxes=np.asarray(boxes, dtype=np.float32).reshape(len(boxes), 4),
        source_files=[names_path, attrs_path, *(p.path for p in pascal), yahoo.path],
        metadata=metadata,
    )
