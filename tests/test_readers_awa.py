"""AwA reader: generated fixtures in the authors' layout, bad input, and the genuine class files."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galm.data.readers import READERS, DatasetFormatError, read_awa
from tests.support import as_domain, shared_data

CLASSES = ["antelope", "grizzly+bear", "killer+whale", "beaver", "dalmatian"]
PREDICATES = ["black", "white", "blue", "brown"]
BINARY = np.array([[0, 1, 0, 1], [1, 0, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 0]])
CONTINUOUS = np.array(
    [[-1.0, 60.0, 0.0, 70.0], [80.0, 10.0, 5.0, 90.0], [70.0, 65.0, 0.0, 2.0], [3.0, 1.0, 55.0, 88.0], [99.0, 77.0, 66.0, 0.0]]
)


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (120, 30, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_awa(root: Path, images_per_class: int = 3, test=("killer+whale", "dalmatian")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(f"{i + 1:6d}\t{c}\n" for i, c in enumerate(CLASSES)))
    (root / "predicates.txt").write_text("".join(f"{i + 1:6d}\t{p}\n" for i, p in enumerate(PREDICATES)))
    (root / "predicate-matrix-binary.txt").write_text("\n".join(" ".join(str(v) for v in row) for row in BINARY) + "\n")
    (root / "predicate-matrix-continuous.txt").write_text(
        "\n".join(" ".join(f"{v:6.2f}" for v in row) for row in CONTINUOUS) + "\n"
    )
    (root / "trainclasses.txt").write_text("".join(f"{c}\n" for c in CLASSES if c not in test))
    (root / "testclasses.txt").write_text("".join(f"{c}\n" for c in test))
    data = jpeg_bytes()
    for c in CLASSES:
        folder = root / "JPEGImages" / c
        folder.mkdir(parents=True)
        for k in range(images_per_class):
            (folder / f"{c}_{10001 + k}.jpg").write_bytes(data)
    return root


def test_reads_layout(tmp_path: Path) -> None:
    raw = read_awa(write_awa(tmp_path / "AwA2"), val_fraction=0.34, seed=1)
    assert READERS["awa"] is read_awa
    assert raw.class_names == CLASSES and raw.attribute_names == PREDICATES
    assert raw.n_images == 15 and raw.label_level == "class"
    assert raw.labels.dtype == np.float32 and raw.labels.shape == (15, 4)
    np.testing.assert_array_equal(raw.labels, BINARY[raw.class_index])
    np.testing.assert_array_equal(raw.class_attributes, BINARY)
    assert raw.image_paths[0].parent.name == "antelope" and raw.image_paths[0].suffix == ".jpg"
    test_names = {raw.class_names[c] for c in raw.class_index[raw.splits["test"]]}
    assert test_names == {"killer+whale", "dalmatian"}
    assert len(raw.splits["val"]) == 3  # one of three images in each of three training classes
    assert all(s.dtype == np.int64 and np.all(np.diff(s) > 0) for s in raw.splits.values())
    as_domain(raw)
    again = read_awa(tmp_path / "AwA2", val_fraction=0.34, seed=1)
    assert all(np.array_equal(again.splits[k], raw.splits[k]) for k in raw.splits)


def test_continuous_labels(tmp_path: Path) -> None:
    root = write_awa(tmp_path / "awa")
    raw = read_awa(root, continuous_threshold=50.0)
    expected = np.where(CONTINUOUS == -1, np.nan, (CONTINUOUS >= 50).astype(float))
    np.testing.assert_array_equal(raw.class_attributes, expected.astype(np.float32))
    assert np.isnan(raw.labels[raw.class_index == 0, 0]).all()
    default = read_awa(root, use_continuous=True)
    assert default.metadata["continuous_threshold"] == pytest.approx(CONTINUOUS.mean())
    as_domain(default)


def test_split_file(tmp_path: Path) -> None:
    root = write_awa(tmp_path / "awa")
    (tmp_path / "mytest.txt").write_text("beaver\n\nantelope\n")
    raw = read_awa(root, split_file=tmp_path / "mytest.txt")
    assert raw.metadata["test_classes"] == ["antelope", "beaver"]


def test_missing_image_folder_named(tmp_path: Path) -> None:
    root = write_awa(tmp_path / "awa")
    shutil.rmtree(root / "JPEGImages")
    with pytest.raises(DatasetFormatError, match=str(root / "JPEGImages")):
        read_awa(root)
    with pytest.raises(DatasetFormatError, match="elsewhere"):
        read_awa(write_awa(tmp_path / "b"), images_dir=tmp_path / "elsewhere")


def test_missing_class_folder(tmp_path: Path) -> None:
    root = write_awa(tmp_path / "awa")
    shutil.rmtree(root / "JPEGImages" / "beaver")
    with pytest.raises(DatasetFormatError, match="1 of 5 class folders are missing.*beaver"):
        read_awa(root)


@pytest.mark.parametrize(
    "file, text, message",
    [
        ("testclasses.txt", "killer+whale\nunicorn\n", r"testclasses.txt, line 2: unknown class name 'unicorn'"),
        ("trainclasses.txt", "antelope\ndalmatian\n", r"trainclasses.txt, line 2: class 'dalmatian' is also listed"),
        ("predicate-matrix-binary.txt", "0 1 0\n", r"predicate-matrix-binary.txt, line 1: expected 4 values, got 3"),
        ("predicate-matrix-binary.txt", "0 1 0 1\n" * 4, r"expected 5 rows of 4 values"),
        ("predicate-matrix-binary.txt", "0 1 0 2\n" * 5, r"row 1 \(class antelope\), column 4: expected 0 or 1"),
        ("classes.txt", "1\tantelope\n2\tantelope\n", r"classes.txt, line 2: duplicate name 'antelope'"),
        ("classes.txt", "1\tantelope\n3\tbeaver\n", r"classes.txt, line 2: expected number 2"),
        ("predicates.txt", "1 black\n2 white x\n", r"predicates.txt, line 2: expected '<number> <name>'"),
    ],
)
def test_bad_input(tmp_path: Path, file: str, text: str, message: str) -> None:
    root = write_awa(tmp_path / "awa")
    (root / file).write_text(text)
    with pytest.raises(DatasetFormatError, match=message):
        read_awa(root)


def test_bad_continuous_value(tmp_path: Path) -> None:
    root = write_awa(tmp_path / "awa")
    values = CONTINUOUS.copy()
    values[2, 1] = -5
    (root / "predicate-matrix-continuous.txt").write_text("\n".join(" ".join(map(str, r)) for r in values))
    with pytest.raises(DatasetFormatError, match=r"row 3 \(class killer\+whale\), column 2"):
        read_awa(root, use_continuous=True)


def test_missing_annotation_file(tmp_path: Path) -> None:
    root = write_awa(tmp_path / "awa")
    (root / "predicates.txt").unlink()
    with pytest.raises(DatasetFormatError, match=r"expected file .*predicates.txt"):
        read_awa(root)


def test_genuine_without_images_names_folder(tmp_path: Path) -> None:
    genuine = shared_data() / "awa"
    with pytest.raises(DatasetFormatError, match=str(genuine / "JPEGImages")):
        read_awa(genuine)
    absent = tmp_path / "no_such_images"
    with pytest.raises(DatasetFormatError, match=f"image folder not found: expected folder {absent}"):
        read_awa(genuine, images_dir=absent)


def test_genuine_class_files(tmp_path: Path) -> None:
    genuine = shared_data() / "awa"
    root = tmp_path / "awa"
    shutil.copytree(genuine, root)
    names = [line.split()[1] for line in (root / "classes.txt").read_text().splitlines()]
    data = jpeg_bytes()
    for c in names:
        (root / "JPEGImages" / c).mkdir(parents=True)
        for k in range(2):
            (root / "JPEGImages" / c / f"{c}_{k}.jpg").write_bytes(data)
    raw = read_awa(root)
    assert len(raw.class_names) == 50 and len(raw.attribute_names) == 85
    assert "grizzly+bear" in raw.class_names and raw.attribute_names[0] == "black"
    assert len(raw.metadata["test_classes"]) == 10
    assert len(np.unique(raw.class_index[raw.splits["train"]])) == 40
    assert set(raw.metadata["test_classes"]) == set((root / "testclasses.txt").read_text().split())
    continuous = read_awa(root, use_continuous=True)
    # the default threshold (the matrix mean) reproduces the authors' binary matrix where answered
    known = ~np.isnan(continuous.class_attributes)
    assert np.array_equal(continuous.class_attributes[known], raw.class_attributes[known])
    assert (~known).sum() == continuous.metadata["unknown_class_labels"] > 0
    as_domain(raw)
