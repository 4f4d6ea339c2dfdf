"""CelebA reader: generated fixtures in the shipped layout, bad input, and the genuine 32 images."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galm.data.readers import READERS, DatasetFormatError, read_celeba
from tests.support import as_domain, shared_data

NAMES = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive"]


def value(k: int, j: int) -> int:
    return 1 if (k * 3 + j) % 4 == 0 else -1


def write_celeba(root: Path, n: int = 10, partition: bool = True, count: int | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = [f"{k + 1:06d}.jpg " + "".join(f"{value(k, j):>3d}" for j in range(len(NAMES))) for k in range(n)]
    (root / "list_attr_celeba.txt").write_text(f"{n if count is None else count}\r\n" + " ".join(NAMES) + " \r\n" + "\r\n".join(rows) + "\r\n")
    if partition:
        (root / "list_eval_partition.txt").write_text("".join(f"{k + 1:06d}.jpg {0 if k < 6 else 1 if k < 8 else 2}\n" for k in range(n)))
    buffer = io.BytesIO()
    Image.new("RGB", (4, 5)).save(buffer, format="JPEG")
    (root / "img_align_celeba").mkdir()
    for k in range(n):
        (root / "img_align_celeba" / f"{k + 1:06d}.jpg").write_bytes(buffer.getvalue())
    return root


def test_reads_layout_with_partition(tmp_path: Path) -> None:
    raw = read_celeba(write_celeba(tmp_path / "celeba"))
    assert READERS["celeba"] is read_celeba
    assert raw.attribute_names == NAMES and raw.n_images == 10 and raw.label_level == "image"
    expected = np.array([[value(k, j) == 1 for j in range(3)] for k in range(10)], dtype=np.float32)
    np.testing.assert_array_equal(raw.labels, expected)
    assert raw.splits["train"].tolist() == list(range(6)) and raw.splits["val"].tolist() == [6, 7]
    assert raw.splits["test"].tolist() == [8, 9]
    assert raw.class_names == ["train_pool", "test_pool"] and raw.metadata["class_split"] is False
    assert raw.class_index.tolist() == [0] * 8 + [1] * 2
    as_domain(raw)


def test_seeded_split_without_partition(tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "celeba", n=20, partition=False)
    raw = read_celeba(root, val_fraction=0.2, test_fraction=0.1, seed=4)
    assert [len(raw.splits[s]) for s in ("train", "val", "test")] == [14, 4, 2]
    assert raw.metadata["split_source"] == "seeded image split"
    assert read_celeba(root, val_fraction=0.2, test_fraction=0.1, seed=4).splits["test"].tolist() == raw.splits["test"].tolist()
    as_domain(raw)


def test_bad_input(tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "a", count=11)
    with pytest.raises(DatasetFormatError, match=r"list_attr_celeba.txt: the count line \(line 1\) says 11 images but the file holds 10 rows"):
        read_celeba(root)
    root = write_celeba(tmp_path / "b")
    text = (root / "list_attr_celeba.txt").read_text().replace("000001.jpg   1", "000001.jpg   7")
    (root / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(DatasetFormatError, match=r"list_attr_celeba.txt, line 3: attribute '5_o_Clock_Shadow' must be 1 or -1, got '7'"):
        read_celeba(root)
    root = write_celeba(tmp_path / "c")
    text = (root / "list_attr_celeba.txt").read_text().replace("000004.jpg", "000004.jpg  1")
    (root / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(DatasetFormatError, match=r"line 6: expected an image name and 3 values, got 5 fields"):
        read_celeba(root)
    root = write_celeba(tmp_path / "d")
    (root / "list_eval_partition.txt").write_text("000001.jpg 3\n")
    with pytest.raises(DatasetFormatError, match=r"list_eval_partition.txt, line 1: partition must be 0 \(train\), 1 \(val\) or 2 \(test\), got 3"):
        read_celeba(root)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    with pytest.raises(DatasetFormatError, match=r"9 images of the attribute file have no partition"):
        read_celeba(root)
    (root / "list_attr_celeba.txt").unlink()
    with pytest.raises(DatasetFormatError, match=r"missing CelebA attribute file: expected file .*list_attr_celeba.txt"):
        read_celeba(root)


def test_missing_images(tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "celeba")
    (root / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"1 of 10 listed image files are missing: .*000004.jpg"):
        read_celeba(root)
    shutil.rmtree(root / "img_align_celeba")
    with pytest.raises(DatasetFormatError, match=f"expected folder {root / 'img_align_celeba'}"):
        read_celeba(root)


def test_genuine_32_images() -> None:
    genuine = shared_data() / "celeba"
    raw = read_celeba(genuine)
    assert raw.n_images == 32 and raw.labels.shape == (32, 40)
    assert raw.attribute_names[0] == "5_o_Clock_Shadow" and raw.attribute_names[-1] == "Young"
    assert raw.image_paths[0] == genuine / "img_align_celeba" / "000001.jpg"
    # row 000001.jpg: -1 1 1 -1 ...
    assert raw.labels[0, :4].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert set(np.unique(raw.labels).tolist()) == {0.0, 1.0}
    assert sum(len(s) for s in raw.splits.values()) == 32
    as_domain(raw)
