"""aPascal/aYahoo reader: generated fixtures in the authors' layout, bad input, genuine annotations."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galm.data.readers import READERS, DatasetFormatError, read_apy
from galm.data.readers.apy import read_apy_annotations
from tests.support import as_domain, shared_data

CLASSES = ["aeroplane", "bicycle", "person", "donkey", "mug"]
ATTRIBUTES = [f"Attr {k}" for k in range(64)]


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def line(image: str, cls: str, box=(1, 2, 30, 40), on=(0,)) -> str:
    bits = ["1" if k in on else "0" for k in range(64)]
    return " ".join([image, cls, *map(str, box), *bits]) + "\n"


def write_apy(root: Path) -> Path:
    ann = root / "attribute_data"
    ann.mkdir(parents=True)
    (ann / "class_names.txt").write_text("".join(c + "\n" for c in CLASSES))
    (ann / "attribute_names.txt").write_text("".join(a + "\n" for a in ATTRIBUTES))
    (ann / "apascal_train.txt").write_text(
        line("2008_000001.jpg", "aeroplane", on=(0, 5))
        + line("2008_000001.jpg", "person", box=(3, 3, 9, 12), on=(1,))
        + line("2008_000002.jpg", "bicycle")
        + line("2008_000003.jpg", "person", box=(5, 5, 5, 20))  # zero width: dropped
        + line("2008_000004.jpg", "aeroplane")
        + line("2008_000005.jpg", "bicycle")
        + line("2008_000006.jpg", "person")
    )
    (ann / "apascal_test.txt").write_text(line("2008_000100.jpg", "person") + line("2008_000101.jpg", "aeroplane"))
    (ann / "ayahoo_test.txt").write_text(
        line("donkey_1.jpg", "donkey", on=(63,)) + line("donkey_1.jpg", "donkey", box=(40, 1, 60, 9)) + line("mug_3.jpg", "mug")
    )
    data = jpeg_bytes()
    voc = root / "VOC2008" / "JPEGImages"
    voc.mkdir(parents=True)
    for name in ["2008_000001", "2008_000002", "2008_000003", "2008_000004", "2008_000005", "2008_000006", "2008_000100", "2008_000101"]:
        (voc / f"{name}.jpg").write_bytes(data)
    yahoo = root / "ayahoo_test_images"
    yahoo.mkdir()
    for name in ["donkey_1", "mug_3"]:
        (yahoo / f"{name}.jpg").write_bytes(data)
    return root


def test_reads_layout(tmp_path: Path) -> None:
    root = write_apy(tmp_path / "apy")
    raw = read_apy(root, crop_margin=0.1, val_fraction=0.5)
    assert READERS["apy"] is read_apy
    assert raw.n_images == 6 + 3 and raw.labels.shape == (9, 64) and raw.labels.dtype == np.float32
    assert raw.label_level == "image" and raw.attribute_names == ATTRIBUTES
    assert raw.class_names == CLASSES  # all occur
    assert raw.boxes is not None and raw.boxes.shape == (9, 4)
    np.testing.assert_array_equal(raw.boxes[1], [3, 3, 9, 12])
    assert raw.labels[0, 0] == 1 and raw.labels[0, 5] == 1 and raw.labels[0].sum() == 2
    assert raw.image_paths[0] == root / "VOC2008" / "JPEGImages" / "2008_000001.jpg"
    assert raw.image_paths[-1] == root / "ayahoo_test_images" / "mug_3.jpg"
    assert raw.metadata["dropped_boxes"] == 1 and raw.metadata["dropped_box_lines"] == {"apascal_train.txt": [4]}
    assert raw.metadata["crop_margin"] == 0.1 and "clip" in raw.metadata["box_note"]
    test_classes = {raw.class_names[c] for c in raw.class_index[raw.splits["test"]]}
    assert test_classes == {"donkey", "mug"} and len(raw.splits["test"]) == 3
    assert len(raw.splits["train"]) + len(raw.splits["val"]) == 6
    as_domain(raw)


def test_include_apascal_test_and_image_roots(tmp_path: Path) -> None:
    root = write_apy(tmp_path / "apy")
    shutil.move(str(root / "VOC2008"), str(tmp_path / "VOCdevkit_elsewhere"))
    raw = read_apy(root, include_apascal_test=True, voc_images=tmp_path / "VOCdevkit_elsewhere" / "JPEGImages")
    assert raw.n_images == 11
    assert raw.metadata["objects_per_file"] == {"apascal_train.txt": 6, "apascal_test.txt": 2, "ayahoo_test.txt": 3}


def test_missing_image_roots_named(tmp_path: Path) -> None:
    root = write_apy(tmp_path / "apy")
    shutil.rmtree(root / "ayahoo_test_images")
    with pytest.raises(DatasetFormatError, match=f"expected folder {root / 'ayahoo_test_images'}"):
        read_apy(root)
    shutil.rmtree(root / "VOC2008")
    with pytest.raises(DatasetFormatError, match=f"expected folder {root / 'VOC2008' / 'JPEGImages'}"):
        read_apy(root)


def test_missing_image_files_counted(tmp_path: Path) -> None:
    root = write_apy(tmp_path / "apy")
    (root / "VOC2008" / "JPEGImages" / "2008_000002.jpg").unlink()
    (root / "ayahoo_test_images" / "mug_3.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"2 of 7 listed image files are missing: .*2008_000002.jpg, .*mug_3.jpg"):
        read_apy(root)


@pytest.mark.parametrize(
    "file, text, message",
    [
        ("apascal_train.txt", line("a.jpg", "person")[:-4] + "\n", r"apascal_train.txt, line 1: expected 70 fields"),
        ("apascal_train.txt", line("a.jpg", "person") + line("b.jpg", "unicorn"), r"apascal_train.txt, line 2: unknown class 'unicorn'"),
        ("ayahoo_test.txt", line("a.jpg", "donkey").replace(" 0\n", " 2\n"), r"ayahoo_test.txt, line 1: attribute 64 must be 0 or 1, got '2'"),
        ("ayahoo_test.txt", line("a.jpg", "donkey", box=("1x", 2, 3, 4)), r"ayahoo_test.txt, line 1: box x1 must be an integer"),
        ("ayahoo_test.txt", line("a.jpg", "person"), r"ayahoo_test.txt, line 1: class 'person' also appears in aPascal"),
        ("attribute_names.txt", "a\nb\n", r"attribute_names.txt: expected 64 attribute names, got 2"),
        ("class_names.txt", "person\nperson\n", r"class_names.txt, line 2: duplicate name 'person'"),
    ],
)
def test_bad_input(tmp_path: Path, file: str, text: str, message: str) -> None:
    root = write_apy(tmp_path / "apy")
    (root / "attribute_data" / file).write_text(text)
    with pytest.raises(DatasetFormatError, match=message):
        read_apy(root)


def test_missing_annotation_file(tmp_path: Path) -> None:
    root = write_apy(tmp_path / "apy")
    (root / "attribute_data" / "ayahoo_test.txt").unlink()
    with pytest.raises(DatasetFormatError, match=r"expected file .*attribute_data/ayahoo_test.txt"):
        read_apy(root)


def test_genuine_annotations_parse() -> None:
    ann = shared_data() / "apy" / "attribute_data"
    classes = ann.joinpath("class_names.txt").read_text().split()
    assert len(classes) == 32
    counts = {}
    for name in ("apascal_train.txt", "apascal_test.txt", "ayahoo_test.txt"):
        objects = read_apy_annotations(ann / name, classes)
        n_lines = sum(1 for text in (ann / name).read_text().splitlines() if text.strip())
        assert len(objects.images) + len(objects.dropped) == n_lines
        assert all(len(b) == 64 for b in objects.bits[:50])
        counts[name] = n_lines
    assert counts == {"apascal_train.txt": 6340, "apascal_test.txt": 6355, "ayahoo_test.txt": 2644}
    names = [t.strip() for t in ann.joinpath("attribute_names.txt").read_text().splitlines() if t.strip()]
    assert len(names) == 64 and names[0] == "2D Boxy"


def test_genuine_without_images_names_folder(tmp_path: Path) -> None:
    genuine = shared_data() / "apy"
    with pytest.raises(DatasetFormatError, match=f"expected folder {genuine / 'VOC2008' / 'JPEGImages'}"):
        read_apy(genuine)
    absent = tmp_path / "no_voc"
    with pytest.raises(DatasetFormatError, match=f"image folder not found: expected folder {absent}"):
        read_apy(genuine, voc_images=absent)


def test_genuine_full_read_with_placeholder_files(tmp_path: Path) -> None:
    """The whole protocol on the genuine annotations, with empty placeholder image files."""
    genuine = shared_data() / "apy"
    voc, yahoo = tmp_path / "voc", tmp_path / "yahoo"
    voc.mkdir()
    yahoo.mkdir()
    ann = genuine / "attribute_data"
    for name, folder in (("apascal_train.txt", voc), ("apascal_test.txt", voc), ("ayahoo_test.txt", yahoo)):
        for image in {t.split()[0] for t in (ann / name).read_text().splitlines() if t.strip()}:
            (folder / image).touch()
    raw = read_apy(genuine, voc_images=voc, yahoo_images=yahoo, include_apascal_test=True)
    assert raw.n_images + raw.metadata["dropped_boxes"] == 6340 + 6355 + 2644
    assert len(raw.class_names) == 32 and raw.labels.shape[1] == 64
    assert len(np.unique(raw.class_index[raw.splits["test"]])) == 12
    as_domain(raw)
