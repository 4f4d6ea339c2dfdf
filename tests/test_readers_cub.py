"""CUB-200-2011 reader: generated fixtures in the shipped layout (a subset of classes), bad input."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galm.data.readers import READERS, DatasetFormatError, read_cub
from tests.support import as_domain

# Classes 1..6 exist in classes.txt; images cover classes 1, 2, 4 and 5 only (a partial folder).
CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross", "004.Groove_billed_Ani", "005.Crested_Auklet", "006.Least_Auklet"]
ATTRS = ["has_bill_shape::curved_(up_or_down)", "has_bill_shape::dagger", "has_wing_color::blue", "has_size::small_(5_-_9_in)"]
IMAGES = [(1, 1), (2, 1), (3, 1), (7, 2), (8, 2), (9, 2), (20, 4), (21, 4), (22, 4), (30, 5), (31, 5), (32, 5)]
CONTINUOUS = np.array(
    [[60.0, 10.0, 0.0, 51.0], [50.0, 70.0, 20.0, 0.0], [1.0, 2.0, 3.0, 4.0], [90.0, 0.0, 80.0, 50.5], [0.0, 100.0, 49.9, 75.0], [5.0, 5.0, 5.0, 5.0]]
)


def present(image_id: int, attr: int) -> int:
    return (image_id + attr) % 2


def write_cub(top: Path, *, attributes_txt: bool = True, image_labels: bool = True, class_labels: bool = True) -> Path:
    cub = top / "CUB_200_2011"
    (cub / "attributes").mkdir(parents=True)
    (cub / "classes.txt").write_text("".join(f"{k + 1} {c}\n" for k, c in enumerate(CLASSES)))
    (cub / "images.txt").write_text("".join(f"{i} {CLASSES[c - 1]}/{CLASSES[c - 1][4:]}_{i:04d}_{i}.jpg\n" for i, c in IMAGES))
    # the label and split files also list image 99 of a class whose images are absent: ignored
    (cub / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, c in IMAGES) + "99 3\n")
    (cub / "train_test_split.txt").write_text("".join(f"{i} {int(i % 3 != 0)}\n" for i, _ in IMAGES) + "99 1\n")
    if attributes_txt:
        (top / "attributes.txt").write_text("".join(f"{k + 1} {a}\n" for k, a in enumerate(ATTRS)))
    if image_labels:
        lines = []
        for i, _ in [*IMAGES, (99, 3)]:
            for a in range(1, 5):
                certainty = 1 if (i, a) == (2, 3) else 3
                extra = " 0" if (i, a) == (7, 2) else ""  # the shipped file's odd lines carry one more token
                lines.append(f"{i} {a} {present(i, a)} {certainty}{extra} 12.5\n")
        (cub / "attributes" / "image_attribute_labels.txt").write_text("".join(lines))
    if class_labels:
        (cub / "attributes" / "class_attribute_labels_continuous.txt").write_text(
            "".join(" ".join(f"{v:.10f}" for v in row) + "\n" for row in CONTINUOUS)
        )
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
    for i, c in IMAGES:
        path = cub / "images" / CLASSES[c - 1] / f"{CLASSES[c - 1][4:]}_{i:04d}_{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
    return top


def test_image_level_labels(tmp_path: Path) -> None:
    top = write_cub(tmp_path)
    raw = read_cub(top, test_fraction=0.25, val_fraction=0.34, seed=0)
    assert READERS["cub"] is read_cub
    assert raw.class_names == [CLASSES[0], CLASSES[1], CLASSES[3], CLASSES[4]]
    assert raw.attribute_names == ATTRS and raw.label_level == "image"
    expected = np.array([[present(i, a) for a in range(1, 5)] for i, _ in IMAGES], dtype=np.float32)
    np.testing.assert_array_equal(raw.labels, expected)
    assert raw.metadata["extra_token_lines"] == 1 and raw.metadata["entries_of_unlisted_images"] == 4
    np.testing.assert_array_equal(raw.class_attributes, (CONTINUOUS[[0, 1, 3, 4]] > 50).astype(np.float32))
    assert len(np.unique(raw.class_index[raw.splits["test"]])) == 1
    assert raw.image_paths[0] == top / "CUB_200_2011" / "images" / CLASSES[0] / "Black_footed_Albatross_0001_1.jpg"
    as_domain(raw)
    unknown = read_cub(top / "CUB_200_2011", not_visible_as_unknown=True)
    assert np.isnan(unknown.labels[1, 2]) and np.isnan(unknown.labels).sum() == 1


def test_class_level_labels_and_generic_names(tmp_path: Path) -> None:
    top = write_cub(tmp_path, attributes_txt=False, image_labels=False)
    raw = read_cub(top, class_threshold=50.0)
    assert raw.label_level == "class" and raw.attribute_names == ["attribute_001", "attribute_002", "attribute_003", "attribute_004"]
    np.testing.assert_array_equal(raw.labels, (CONTINUOUS[[0, 1, 3, 4]] > 50).astype(np.float32)[raw.class_index])
    as_domain(raw)
    forced = read_cub(write_cub(tmp_path / "b"), labels="class")
    assert forced.label_level == "class"


def test_official_split(tmp_path: Path) -> None:
    raw = read_cub(write_cub(tmp_path), split="official", val_fraction=0.0)
    assert raw.class_names == ["train_pool", "test_pool"] and raw.class_attributes is None
    assert raw.metadata["class_split"] is False and raw.metadata["test_classes_seen"] is True
    assert len(raw.metadata["species_names"]) == 4
    test_ids = [IMAGES[k][0] for k in raw.splits["test"]]
    assert test_ids == [i for i, _ in IMAGES if i % 3 == 0]
    as_domain(raw)


def test_split_file(tmp_path: Path) -> None:
    top = write_cub(tmp_path)
    (tmp_path / "test.txt").write_text(f"{CLASSES[3]}\n{CLASSES[4]}\n")
    raw = read_cub(top, split_file=tmp_path / "test.txt")
    assert raw.metadata["test_classes"] == [CLASSES[3], CLASSES[4]]


def test_missing_images(tmp_path: Path) -> None:
    top = write_cub(tmp_path)
    (top / "CUB_200_2011" / "images" / CLASSES[1] / "Laysan_Albatross_0008_8.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"1 of 12 listed image files are missing: .*Laysan_Albatross_0008_8.jpg"):
        read_cub(top)
    shutil.rmtree(top / "CUB_200_2011" / "images")
    with pytest.raises(DatasetFormatError, match=f"expected folder {top / 'CUB_200_2011' / 'images'}"):
        read_cub(top)
    with pytest.raises(DatasetFormatError, match=r"expected file .*images.txt"):
        read_cub(tmp_path / "CUB_200_2011" / "attributes")


@pytest.mark.parametrize(
    "file, text, message",
    [
        ("images.txt", "1 a.jpg\n1 b.jpg\n", r"images.txt, line 2: duplicate id 1 \(first on line 1\)"),
        ("images.txt", "1 a.jpg extra\n", r"images.txt, line 1: expected 2 whitespace-separated fields, got 3"),
        ("image_class_labels.txt", "1 1\n2 77\n", r"image_class_labels.txt, line 2: class id 77 is not in"),
        ("image_class_labels.txt", "1 1\n", r"image_class_labels.txt: 11 images of .*images.txt have no class"),
        ("attributes/image_attribute_labels.txt", "1 1 1 3 1.0\n1 2 2 3 1.0\n", r"line 2: is_present must be 0 or 1, got 2"),
        ("attributes/image_attribute_labels.txt", "1 1 1 3 1.0\n1 9 0 3 1.0\n", r"line 2: attribute_id 9 is outside \[1, 4\]"),
        ("attributes/image_attribute_labels.txt", "1 1 1 3\n", r"line 1: expected 5 fields"),
        ("attributes/image_attribute_labels.txt", "1 1 1 3 1\n2 2 0 3 1\n1 1 0 3 2\n", r"line 3: duplicate entry .*first on line 1"),
        ("attributes/image_attribute_labels.txt", "1 1 1 7 1.0\n", r"line 1: certainty_id must be 1-4, got 7"),
        ("attributes/class_attribute_labels_continuous.txt", "1 2 3 4\n" * 3, r"expected one row per class id"),
        ("attributes/class_attribute_labels_continuous.txt", "1 2 3\n", r"continuous.txt, line 1: expected 4 values"),
        ("attributes/class_attribute_labels_continuous.txt", "1 2 3 140\n" * 6, r"line 1: value 4 is 140.0"),
    ],
)
def test_bad_input(tmp_path: Path, file: str, text: str, message: str) -> None:
    top = write_cub(tmp_path)
    (top / "CUB_200_2011" / file).write_text(text)
    with pytest.raises(DatasetFormatError, match=message):
        read_cub(top)


def test_bad_attribute_names(tmp_path: Path) -> None:
    top = write_cub(tmp_path)
    (top / "attributes.txt").write_text("1 a\n3 b\n")
    with pytest.raises(DatasetFormatError, match=r"attributes.txt, line 2: expected attribute id 2"):
        read_cub(top)
    (top / "attributes.txt").write_text("1 a\n2 b\n")
    with pytest.raises(DatasetFormatError, match=r"continuous.txt, line 1: expected 2 values \(one per attribute of attributes.txt\), got 4"):
        read_cub(top)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 1 1 3 1.0\n\n2 1 x 3 1.0\n", r"image_attribute_labels.txt, line 3: the fields must be numbers, got 'x'"),
        ("1 1 1 3 1.0\n2 1 1.5 3 1.0\n", r"line 2: the first four fields must be integers"),
        ("1 1 1 3 1.0\r\n2 1 1 3 0 2.5\r\n", None),
    ],
)
def test_label_table_parsing(tmp_path: Path, text: str, message: str | None) -> None:
    top = write_cub(tmp_path, class_labels=False)
    (top / "CUB_200_2011" / "attributes" / "image_attribute_labels.txt").write_text(text)
    if message is None:
        raw = read_cub(top)
        assert raw.labels[0, 0] == 1 and raw.labels[1, 0] == 1 and raw.metadata["extra_token_lines"] == 1
        assert np.isnan(raw.labels).sum() == 12 * 4 - 2
    else:
        with pytest.raises(DatasetFormatError, match=message):
            read_cub(top)
