"""Tests for the custom CSV table reader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galm.data.readers.format_error import DatasetFormatError
from galm.data.table import read_table, read_table_domains
from tests.support import as_domain


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (12, 10)) -> None:
    """Tiny solid-colour JPEGs at folder/name."""
    for k, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (20 * k % 256, 100, 50)).save(path)


def write_table(folder: Path, header: str, rows: list[str], name: str = "table.csv") -> Path:
    """A CSV at folder/name, with images made for every path in the first column."""
    write_images(folder, [row.split(",")[0] for row in rows])
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_values_parse_to_zero_one_and_nan(tmp_path: Path) -> None:
    path = write_table(tmp_path, "image,class,a,b,c", [
        "i/0.jpg,x,1,true,yes",
        "i/1.jpg,x,0,FALSE,No",
        "i/2.jpg,y,,True,",
        "i/3.jpg,y, 1 ,false,YES",
        "i/4.jpg,z,0,0,no",
    ])
    raw = read_table(path, test_class_fraction=0.3, seed=0)
    expected = np.array([[1, 1, 1], [0, 0, 0], [np.nan, 1, np.nan], [1, 0, 1], [0, 0, 0]], np.float32)
    np.testing.assert_array_equal(raw.labels, expected)
    assert raw.attribute_names == ["a", "b", "c"]
    assert raw.class_names == ["x", "y", "z"]
    assert raw.class_index.tolist() == [0, 0, 1, 1, 2]
    assert raw.image_paths[0] == tmp_path / "i/0.jpg"
    assert raw.source_files == [path]
    assert raw.label_level == "image"  # class x disagrees on a
    as_domain(raw, size=4)  # valid splits: test classes unseen


def test_bad_value_names_file_line_and_column(tmp_path: Path) -> None:
    path = write_table(tmp_path, "image,class,a,furry", ["i/0.jpg,x,1,0", "i/1.jpg,y,0,maybe"])
    with pytest.raises(ValueError, match=r"table\.csv, line 3, column 'furry': 'maybe'"):
        read_table(path)


def test_structural_errors(tmp_path: Path) -> None:
    path = write_table(tmp_path, "file,a", ["i/0.jpg,1", "i/1.jpg,0"])
    with pytest.raises(ValueError, match="no image column 'image'"):
        read_table(path)
    path = write_table(tmp_path, "image,a", ["i/0.jpg,1", "i/1.jpg,0", "i/0.jpg,1"], name="dup.csv")
    with pytest.raises(ValueError, match=r"line 4.*already listed at line 2"):
        read_table(path)
    path = write_table(tmp_path, "image,a", ["i/0.jpg,1", "i/1.jpg,0", "i/2.jpg,1"], name="short.csv")
    with pytest.raises(ValueError, match="line 3: 3 fields but the header has 2"):
        (tmp_path / "short.csv").write_text("image,a\ni/0.jpg,1\ni/1.jpg,0,1\n")
        read_table(tmp_path / "short.csv")


def test_missing_images_are_counted_and_the_folder_named(tmp_path: Path) -> None:
    path = write_table(tmp_path, "image,a", ["i/0.jpg,1", "i/1.jpg,0", "i/2.jpg,1"])
    (tmp_path / "i/1.jpg").unlink()
    (tmp_path / "i/2.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=rf"2 of 3 image files are missing \(relative paths are read from {tmp_path}\).*1\.jpg"):
        read_table(path)


def test_split_column_is_used_and_checked(tmp_path: Path) -> None:
    rows = ["i/0.jpg,x,train,1", "i/1.jpg,x,val,0", "i/2.jpg,y,test,1", "i/3.jpg,z,Train,0"]
    path = write_table(tmp_path, "image,class,split,a", rows)
    raw = read_table(path)
    assert {k: v.tolist() for k, v in raw.splits.items()} == {"train": [0, 3], "val": [1], "test": [2]}
    assert raw.attribute_names == ["a"]
    (tmp_path / "bad.csv").write_text("image,class,split,a\ni/0.jpg,x,train,1\ni/1.jpg,y,holdout,0\n")
    with pytest.raises(ValueError, match=r"line 3, column 'split': split 'holdout' is not one of"):
        read_table(tmp_path / "bad.csv")
    (tmp_path / "leak.csv").write_text("image,class,split,a\ni/0.jpg,x,train,1\ni/1.jpg,x,test,0\n")
    with pytest.raises(ValueError, match=r"classes \['x'\] have images in test and in train/val"):
        read_table(tmp_path / "leak.csv")


def test_class_split_is_seeded_and_unseen(tmp_path: Path) -> None:
    rows = [f"i/{c}_{k}.jpg,c{c},{c % 2}" for c in range(8) for k in range(5)]
    path = write_table(tmp_path, "image,class,a", rows)
    first = read_table(path, seed=3, val_fraction=0.2, test_class_fraction=0.25)
    again = read_table(path, seed=3, val_fraction=0.2, test_class_fraction=0.25)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(first.splits[split], again.splits[split])
    test_classes = set(first.class_index[first.splits["test"]].tolist())
    assert len(test_classes) == 2
    assert not test_classes & set(first.class_index[first.splits["train"]].tolist())
    assert first.splits["val"].size == 6  # one of five images per training class
    assert first.label_level == "class"
    np.testing.assert_array_equal(first.class_attributes[:, 0], np.arange(8) % 2)
    as_domain(first)


def test_without_class_column_images_split_at_random(tmp_path: Path) -> None:
    rows = [f"i/{k}.jpg,{k % 2}" for k in range(20)]
    path = write_table(tmp_path, "image,a", rows)
    raw = read_table(path, test_class_fraction=0.25, val_fraction=0.2)
    assert raw.class_names == ["train_pool", "test_pool"]
    assert raw.splits["test"].size == 5 and raw.splits["val"].size == 3 and raw.splits["train"].size == 12
    assert raw.metadata["class_disjoint_test"] is False and "not class-disjoint" in raw.metadata["note"]
    assert raw.label_level == "image"
    as_domain(raw, size=4)


def test_domains_column(tmp_path: Path) -> None:
    rows = [f"i/{d}{k}.jpg,{d},c{k % 3},{k % 2}" for d in ("birds", "cars") for k in range(6)]
    path = write_table(tmp_path, "image,domain,class,a", rows)
    with pytest.raises(ValueError, match=r"2 domains \['birds', 'cars'\].*domain=NAME"):
        read_table(path)
    cars = read_table(path, domain="cars")
    assert cars.name == "cars" and cars.n_images == 6
    assert all("cars" in p.name for p in cars.image_paths)
    with pytest.raises(ValueError, match="no rows of domain 'boats'"):
        read_table(path, domain="boats")
    both = read_table_domains(path)
    assert list(both) == ["birds", "cars"] and both["birds"].n_images == 6
    assert both["birds"].attribute_names == ["a"]


def test_attribute_columns_and_renamed_roles(tmp_path: Path) -> None:
    rows = ["i/0.jpg,x,1,0,note", "i/1.jpg,y,0,1,note"]
    path = write_table(tmp_path, "file,species,a,b,comment", rows)
    raw = read_table(path, image_column="file", class_column="species", attribute_columns=["b", "a"])
    assert raw.attribute_names == ["b", "a"]
    np.testing.assert_array_equal(raw.labels, [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"attribute columns \['zz'\] not found"):
        read_table(path, image_column="file", attribute_columns=["zz"])
    with pytest.raises(ValueError, match="no class column 'kind'"):
        read_table(path, image_column="file", class_column="kind")


def test_absolute_paths_are_refused_unless_allowed_and_tsv(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_images(elsewhere, ["p.png", "q.png"])
    table = tmp_path / "t" / "table.tsv"
    table.parent.mkdir()
    table.write_text(f"image\ta\n{elsewhere / 'p.png'}\t1\n{elsewhere / 'q.png'}\t0\n")
    with pytest.raises(DatasetFormatError, match=rf"table.tsv, line 2, column 'image': absolute image path '{elsewhere / 'p.png'}'"):
        read_table(table)
    raw = read_table(table, allow_outside_paths=True)
    assert raw.image_paths == [elsewhere / "p.png", elsewhere / "q.png"]


def test_paths_leaving_the_table_folder_are_refused(tmp_path: Path) -> None:
    write_images(tmp_path, ["outside.jpg"])
    path = write_table(tmp_path / "t", "image,a", ["i/0.jpg,1", "i/1.jpg,0"])
    path.write_text("image,a\ni/0.jpg,1\ni/../../outside.jpg,0\n")
    with pytest.raises(DatasetFormatError, match=r"table.csv, line 3, column 'image': image path 'i/../../outside.jpg' leads outside"):
        read_table(path)
    path.write_text("image,a\ni/0.jpg,1\n../outside.jpg,0\n")
    with pytest.raises(DatasetFormatError, match=rf"line 3, column 'image': image path '../outside.jpg' leads outside the table's folder {tmp_path / 't'}"):
        read_table(path)
    with pytest.raises(DatasetFormatError, match="line 3"):
        read_table_domains(path)
    raw = read_table(path, allow_outside_paths=True)
    assert raw.image_paths == [tmp_path / "t" / "i/0.jpg", tmp_path / "t" / "../outside.jpg"]
    path.write_text("image,a\ni/0.jpg,1\ni/./1.jpg,0\n")  # inside, however spelled
    assert read_table(path).n_images == 2


def test_symlinks_resolving_outside_the_table_folder_are_refused(tmp_path: Path) -> None:
    write_images(tmp_path, ["outside.jpg"])
    path = write_table(tmp_path / "t", "image,a", ["i/0.jpg,1", "i/1.jpg,0"])
    (tmp_path / "t" / "i" / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    (tmp_path / "t" / "i" / "inner.jpg").symlink_to(tmp_path / "t" / "i" / "1.jpg")
    path.write_text("image,a\ni/0.jpg,1\ni/inner.jpg,0\n")
    assert read_table(path).n_images == 2  # a link to a file inside the folder is fine
    path.write_text("image,a\ni/0.jpg,1\ni/link.jpg,0\n")
    with pytest.raises(DatasetFormatError, match=rf"line 3, column 'image': image path 'i/link.jpg' leads outside .* \(resolves to {(tmp_path / 'outside.jpg').resolve()};"):
        read_table(path)
    assert read_table(path, allow_outside_paths=True).n_images == 2


def test_table_in_a_symlinked_folder_reads_its_relative_paths(tmp_path: Path) -> None:
    path = write_table(tmp_path / "real", "image,a", ["i/0.jpg,1", "i/1.jpg,0"])
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    raw = read_table(tmp_path / "alias" / path.name)
    assert raw.image_paths == [tmp_path / "alias" / "i/0.jpg", tmp_path / "alias" / "i/1.jpg"]


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow is installed")
def test_parquet_without_pyarrow_says_so(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(ValueError, match="needs pyarrow"):
        read_table(path)
