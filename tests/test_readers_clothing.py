"""Clothing Attribute Dataset reader: a generated copy of the shipped layout, bad input, the genuine 1,856 images."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from galm.data.prepare import open_prepared, prepare_dataset
from galm.data.readers import READERS, DatasetFormatError, read_clothing
from galm.data.readers.clothing import BINARY_ATTRIBUTES, MULTICLASS_LABELS
from tests.support import as_domain, shared_data

N = 14
NAN = math.nan


def binary_code(k: int, j: int) -> float:
    """Code of image k (0-based), binary attribute j: 1 (no) / 2 (yes), NaN for a few."""
    if (k + 2 * j) % 11 == 0:
        return NAN
    return 2.0 if (k + j) % 3 == 0 else 1.0


def multiclass_code(label: str, k: int) -> float:
    """Codes 1..K cycling over the images; image 3 has no agreed sleeve length, images 0 and 5 no category."""
    if (label, k) in {("sleevelength", 3), ("category", 0), ("category", 5)}:
        return NAN
    return float(1 + k % len(MULTICLASS_LABELS[label]))


def write_label(folder: Path, label: str, values: list[float]) -> None:
    scipy.io.savemat(folder / f"{label}_GT.mat", {"GT": np.asarray(values, dtype=np.float64).reshape(-1, 1)})


def write_clothing(root: Path, n: int = N) -> Path:
    """The shipped layout ``ClothingAttributeDataset/{images,labels}`` under ``root``; returns the dataset folder."""
    dataset = root / "ClothingAttributeDataset"
    (dataset / "images").mkdir(parents=True)
    (dataset / "labels").mkdir()
    for j, label in enumerate(BINARY_ATTRIBUTES):
        write_label(dataset / "labels", label, [binary_code(k, j) for k in range(n)])
    for label in MULTICLASS_LABELS:
        write_label(dataset / "labels", label, [multiclass_code(label, k) for k in range(n)])
    for k in range(n):
        buffer = io.BytesIO()
        Image.new("RGB", (12, 16), (15 * k, 100, 200)).save(buffer, format="JPEG")
        (dataset / "images" / f"{k + 1:06d}.jpg").write_bytes(buffer.getvalue())
    return dataset


def test_expand_reads_layout(tmp_path: Path) -> None:
    dataset = write_clothing(tmp_path)
    raw = read_clothing(tmp_path)  # the folder above ClothingAttributeDataset/ works too
    assert READERS["clothing"] is read_clothing
    expanded = [f"{label}_{meaning}" for label, meanings in MULTICLASS_LABELS.items() for meaning in meanings]
    assert raw.attribute_names == [*BINARY_ATTRIBUTES, *expanded] and len(raw.attribute_names) == 36
    assert "sleevelength_long" in raw.attribute_names and "category_dress" in raw.attribute_names
    assert raw.n_images == N and raw.image_paths[0] == dataset / "images" / "000001.jpg"
    expected = np.array([[binary_code(k, j) - 1 for j in range(23)] for k in range(N)], dtype=np.float32)
    np.testing.assert_array_equal(raw.labels[:, :23], expected)  # NaN positions compare equal
    sleeve = raw.labels[:, 23:26]
    assert np.isnan(sleeve[3]).all()  # unknown stays unknown in every one-vs-rest column
    assert sleeve[4].tolist() == [0.0, 1.0, 0.0] and sleeve[5].tolist() == [0.0, 0.0, 1.0]
    category = raw.labels[:, -7:]
    assert np.isnan(category[[0, 5]]).all() and category[1].tolist() == [0, 1, 0, 0, 0, 0, 0]
    assert (np.nansum(category, axis=1)[~np.isnan(category[:, 0])] == 1).all()
    assert raw.class_names == ["train_pool", "test_pool"] and raw.metadata["class_split"] is False
    assert sum(len(s) for s in raw.splits.values()) == N and raw.label_level == "image"
    assert len(raw.source_files) == 26
    as_domain(raw)
    again = read_clothing(dataset, seed=0)
    assert again.splits["test"].tolist() == raw.splits["test"].tolist()
    assert read_clothing(dataset, seed=1).splits["test"].tolist() != raw.splits["test"].tolist()


def test_drop_leaves_multiclass_out(tmp_path: Path) -> None:
    dataset = write_clothing(tmp_path)
    for label in MULTICLASS_LABELS:
        (dataset / "labels" / f"{label}_GT.mat").unlink()  # not read when dropped
    raw = read_clothing(dataset, multiclass="drop")
    assert raw.attribute_names == list(BINARY_ATTRIBUTES) and raw.labels.shape == (N, 23)
    assert len(raw.source_files) == 23
    as_domain(raw)


def test_category_classes_with_unseen_test_classes(tmp_path: Path) -> None:
    dataset = write_clothing(tmp_path)
    raw = read_clothing(dataset, class_column="category", val_fraction=0.0)
    assert raw.class_names == list(MULTICLASS_LABELS["category"])
    assert raw.n_images == N - 2 and raw.metadata["unknown_class_images"] == 2  # images 1 and 6 have no category
    assert [p.name for p in raw.image_paths[:5]] == ["000002.jpg", "000003.jpg", "000004.jpg", "000005.jpg", "000007.jpg"]
    assert not any(name.startswith("category_") for name in raw.attribute_names)
    assert "sleevelength_short" in raw.attribute_names and raw.metadata["class_split"] is True
    test_classes = set(raw.class_index[raw.splits["test"]].tolist())
    assert len(test_classes) == 2 and not test_classes & set(raw.class_index[raw.splits["train"]].tolist())
    assert raw.metadata["test_classes"] == [raw.class_names[c] for c in sorted(test_classes)]
    as_domain(raw)
    (tmp_path / "test_classes.txt").write_text("dress\nsuit\n")
    listed = read_clothing(dataset, class_column="category", split_file=tmp_path / "test_classes.txt", multiclass="drop")
    assert listed.metadata["test_classes"] == ["suit", "dress"] and listed.labels.shape == (N - 2, 23)
    as_domain(listed)


def test_named_errors(tmp_path: Path) -> None:
    dataset = write_clothing(tmp_path / "a")
    (dataset / "labels" / "collar_GT.mat").unlink()
    with pytest.raises(DatasetFormatError, match=r"missing Clothing label file collar_GT.mat: expected file .*labels/collar_GT.mat"):
        read_clothing(dataset)

    dataset = write_clothing(tmp_path / "b")
    write_label(dataset / "labels", "red", [1.0] * (N - 1))
    with pytest.raises(DatasetFormatError, match=rf"red_GT.mat, field 'GT': expected {N} values \(one per image, as 25 other label files hold\), got {N - 1}"):
        read_clothing(dataset)

    dataset = write_clothing(tmp_path / "c")
    (dataset / "images" / "000009.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=rf"Clothing: 1 of {N} listed image files are missing: .*000009.jpg"):
        read_clothing(dataset)

    dataset = write_clothing(tmp_path / "d")
    write_label(dataset / "labels", "gender", [1.0, 2.0, 0.0] + [1.0] * (N - 3))
    with pytest.raises(DatasetFormatError, match=r"gender_GT.mat, field 'GT': 1 values are not allowed codes \[1, 2\] or NaN .* 0.0 at row 3 \(image 000003.jpg\)"):
        read_clothing(dataset)
    write_label(dataset / "labels", "gender", [1.0] * N)
    write_label(dataset / "labels", "category", [8.0] * N)
    with pytest.raises(DatasetFormatError, match=r"category_GT.mat, field 'GT': 14 values are not allowed codes \[1, 2, 3, 4, 5, 6, 7\]"):
        read_clothing(dataset)
    read_clothing(dataset, multiclass="drop")  # the category file is not read then
    scipy.io.savemat(dataset / "labels" / "category_GT.mat", {"labels": np.ones((N, 1))})
    with pytest.raises(DatasetFormatError, match=r"category_GT.mat, field 'GT': key is missing"):
        read_clothing(dataset)

    with pytest.raises(DatasetFormatError, match=r"label folder not found: expected folder .*labels"):
        read_clothing(tmp_path / "d" / "ClothingAttributeDataset" / "images")
    with pytest.raises(ValueError, match=r"multiclass must be one of \('expand', 'drop'\), got 'keep'"):
        read_clothing(dataset, multiclass="keep")
    with pytest.raises(ValueError, match=r"class_column must be one of"):
        read_clothing(dataset, class_column="colour")


def test_prepare_tiny_copy_through_the_command_line_options(tmp_path: Path) -> None:
    from galm.cli.data import parse_options

    dataset = write_clothing(tmp_path)
    options = parse_options(["multiclass=drop", "class_column=category"])
    report = prepare_dataset("clothing", dataset, tmp_path / "cache", options=options, resolution=8)
    domain = open_prepared(report.out)
    assert domain.n_images == N - 2 and domain.n_attributes == 23 and domain.images.shape[1:] == (8, 8, 3)
    assert domain.class_names == list(MULTICLASS_LABELS["category"])


def test_genuine_dataset() -> None:
    genuine = shared_data() / "clothing"
    if not (genuine / "ClothingAttributeDataset" / "labels").is_dir():
        pytest.skip("the Clothing Attribute Dataset (../shared/data/clothing) is not available")
    raw = read_clothing(genuine, multiclass="drop")
    assert raw.n_images == 1856 and raw.labels.shape == (1856, 23)
    assert raw.attribute_names == list(BINARY_ATTRIBUTES) and len(BINARY_ATTRIBUTES) == 23
    rates = np.nanmean(raw.labels, axis=0)
    assert ((rates > 0) & (rates < 1)).all()
    unknown = dict(zip(raw.attribute_names, np.isnan(raw.labels).sum(axis=0).tolist()))
    assert unknown["black"] == 112 and unknown["collar"] == 394 and unknown["gender"] == 62
    assert raw.image_paths[-1].name == "001856.jpg"
    as_domain(raw)
    by_category = read_clothing(genuine, class_column="category")
    assert by_category.n_images == 1856 - 752 and by_category.metadata["unknown_class_images"] == 752
    assert len(by_category.class_names) == 7
    as_domain(by_category)


def test_genuine_dataset_prepares(tmp_path: Path) -> None:
    genuine = shared_data() / "clothing" / "ClothingAttributeDataset"
    if not (genuine / "labels").is_dir():
        pytest.skip("the Clothing Attribute Dataset (../shared/data/clothing) is not available")
    report = prepare_dataset("clothing", genuine, tmp_path / "clothing", resolution=32)
    assert report.n_images == 1856 and not report.skipped
    domain = open_prepared(report.out)
    assert domain.images.shape == (1856, 32, 32, 3) and domain.n_attributes == 36
    assert domain.images[:64].std() > 10  # real photographs, not blank rows
