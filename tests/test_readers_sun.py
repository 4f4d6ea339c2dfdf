"""SUN attribute reader: tiny .mat fixtures mirroring the real structures, and bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from galm.data.readers import READERS, DatasetFormatError, read_sun
from galm.data.readers.sun import sun_class_of
from tests.support import as_domain

PATHS = [
    "a/abbey/sun_aaa.jpg",
    "a/abbey/sun_aab.jpg",
    "a/abbey/sun_aac.jpg",
    "a/apartment_building/outdoor/sun_bba.jpg",
    "a/apartment_building/outdoor/sun_bbb.jpg",
    "b/bedroom/sun_cca.jpg",
    "b/bedroom/sun_ccb.jpg",
    "b/bedroom/sun_ccc.jpg",
    "b/beach/sun_dda.jpg",
    "b/beach/sun_ddb.jpg",
]
ATTRIBUTES = ["sailing/ boating", "driving", "natural light", "man-made"]


def cell(strings: list[str]) -> np.ndarray:
    """A MATLAB N x 1 cell array of strings, as savemat writes it and loadmat reads it back."""
    out = np.empty((len(strings), 1), dtype=object)
    for k, s in enumerate(strings):
        out[k, 0] = s
    return out


def votes(n: int, a: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 4, size=(n, a)) / 3.0


def write_sun(root: Path, paths=PATHS, labels=None, images=True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "images.mat", {"images": cell(paths)})
    scipy.io.savemat(root / "attributes.mat", {"attributes": cell(ATTRIBUTES)})
    scipy.io.savemat(
        root / "attributeLabels_continuous.mat", {"labels_cv": votes(len(paths), len(ATTRIBUTES)) if labels is None else labels}
    )
    if images:
        buffer = io.BytesIO()
        Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
        for rel in paths:
            target = root / "images" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(buffer.getvalue())
    return root


def test_class_of_path() -> None:
    assert sun_class_of("a/abbey/sun_x.jpg") == "abbey"
    assert sun_class_of("a/apartment_building/outdoor/sun_x.jpg") == "apartment_building/outdoor"
    assert sun_class_of("b/bedroom/sun_x.jpg") == "bedroom"


def test_reads_layout(tmp_path: Path) -> None:
    root = write_sun(tmp_path / "SUNAttributeDB")
    raw = read_sun(root, test_fraction=0.25, val_fraction=0.4, seed=2)
    assert READERS["sun"] is read_sun
    assert raw.class_names == ["abbey", "apartment_building/outdoor", "beach", "bedroom"]
    assert raw.attribute_names == ATTRIBUTES and raw.label_level == "image"
    expected = (votes(10, 4) >= 0.5).astype(np.float32)
    np.testing.assert_array_equal(raw.labels, expected)
    assert raw.image_paths[3] == root / "images" / "a/apartment_building/outdoor/sun_bba.jpg"
    assert len(np.unique(raw.class_index[raw.splits["test"]])) == 1
    assert raw.metadata["n_test_classes"] == 1
    as_domain(raw)
    strict = read_sun(root, threshold=1.0)
    np.testing.assert_array_equal(strict.labels, (votes(10, 4) >= 1.0).astype(np.float32))


def test_nested_annotation_folder_and_image_root(tmp_path: Path) -> None:
    write_sun(tmp_path / "SUNAttributeDB", images=False)
    write_sun(tmp_path / "elsewhere")
    raw = read_sun(tmp_path, images_dir=tmp_path / "elsewhere" / "images")
    assert raw.n_images == 10


def test_split_file(tmp_path: Path) -> None:
    root = write_sun(tmp_path / "sun")
    (tmp_path / "test_classes.txt").write_text("bedroom\napartment_building_outdoor\n")
    raw = read_sun(root, split_file=tmp_path / "test_classes.txt")
    assert {raw.class_names[c] for c in raw.class_index[raw.splits["test"]]} == {"bedroom", "apartment_building/outdoor"}
    (tmp_path / "bad.txt").write_text("bedroom\nkitchen\n")
    with pytest.raises(DatasetFormatError, match=r"bad.txt, line 2: unknown class name 'kitchen'"):
        read_sun(root, split_file=tmp_path / "bad.txt")


def test_missing_images(tmp_path: Path) -> None:
    root = write_sun(tmp_path / "sun", images=False)
    with pytest.raises(DatasetFormatError, match=f"expected folder {root / 'images'}"):
        read_sun(root)
    write_sun(tmp_path / "sun")
    (root / "images" / PATHS[0]).unlink()
    with pytest.raises(DatasetFormatError, match=r"1 of 10 listed image files are missing: .*sun_aaa.jpg"):
        read_sun(root)


def test_bad_input(tmp_path: Path) -> None:
    root = write_sun(tmp_path / "a", labels=votes(9, 4))
    with pytest.raises(DatasetFormatError, match=r"labels_cv'.*expected shape \(images, attributes\) = \(10, 4\)"):
        read_sun(root)
    bad = votes(10, 4)
    bad[2, 3] = 1.5
    root = write_sun(tmp_path / "b", labels=bad)
    with pytest.raises(DatasetFormatError, match=r"row 3, column 4: value 1.5 is outside \[0, 1\]"):
        read_sun(root)
    root = write_sun(tmp_path / "c", paths=PATHS[:-1] + [PATHS[0]])
    with pytest.raises(DatasetFormatError, match=r"images.mat, field 'images': entry 10 .* duplicates entry 1"):
        read_sun(root)
    root = write_sun(tmp_path / "d")
    scipy.io.savemat(root / "images.mat", {"imgs": cell(PATHS)})
    with pytest.raises(DatasetFormatError, match=r"images.mat, field 'images': key is missing; the file holds \['imgs'\]"):
        read_sun(root)
    (root / "attributes.mat").unlink()
    scipy.io.savemat(root / "images.mat", {"images": cell(PATHS)})
    with pytest.raises(DatasetFormatError, match=r"expected file .*attributes.mat"):
        read_sun(root)


def test_nested_and_row_cells(tmp_path: Path) -> None:
    """Cells nested one level deeper (cell of 1x1 cells) and 1 x N row cells read the same."""
    root = write_sun(tmp_path / "sun")
    nested = np.empty((len(PATHS), 1), dtype=object)
    for k, p in enumerate(PATHS):
        inner = np.empty((1, 1), dtype=object)
        inner[0, 0] = p
        nested[k, 0] = inner
    scipy.io.savemat(root / "images.mat", {"images": nested})
    scipy.io.savemat(root / "attributes.mat", {"attributes": cell(ATTRIBUTES).T})
    raw = read_sun(root)
    assert raw.image_paths[-1] == root / "images" / PATHS[-1] and raw.attribute_names == ATTRIBUTES
