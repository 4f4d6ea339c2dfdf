"""Tests for AttributeDomain validation, the prepared cache and unseen-class splits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import galm.data.domain as domain_module
from galm.data import AttributeDomain, choose_test_classes, class_split


def tiny_fields(n_classes: int = 4, per_class: int = 5, n_attr: int = 3, size: int = 8) -> dict[str, Any]:
    """Keyword arguments of a small valid domain (class-level labels with one unknown)."""
    rng = np.random.default_rng(0)
    class_index = np.repeat(np.arange(n_classes, dtype=np.int64), per_class)
    class_attributes = (rng.random((n_classes, n_attr)) < 0.5).astype(np.float32)
    labels = class_attributes[class_index].copy()
    labels[0, 0] = np.nan
    return {
        "name": "tiny",
        "images": rng.integers(0, 256, (class_index.size, size, size, 3), dtype=np.uint8),
        "labels": labels,
        "attribute_names": [f"a{i}" for i in range(n_attr)],
        "class_index": class_index,
        "class_names": [f"c{i}" for i in range(n_classes)],
        "splits": class_split(class_index, [n_classes - 1], 0.2, seed=1),
        "class_attributes": class_attributes,
        "label_level": "class",
        "metadata": {"source": "test"},
    }


def tiny_domain(**overrides: Any) -> AttributeDomain:
    """A small valid domain with some fields replaced."""
    return AttributeDomain(**{**tiny_fields(), **overrides})


def test_properties_and_split_lookup() -> None:
    d = tiny_domain()
    assert (d.n_images, d.n_attributes, d.n_classes, d.resolution) == (20, 3, 4, 8)
    assert d.split_classes("test").tolist() == [3]
    with pytest.raises(ValueError, match="available.*test.*train.*val"):
        d.split("holdout")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("images", np.zeros((20, 8, 6, 3), np.uint8), "images must have shape"),
        ("images", np.zeros((20, 8, 8, 3), np.float32), "images must be uint8"),
        ("labels", np.zeros((20, 2), np.float32), r"labels must have shape"),
        ("labels", np.zeros((20, 3), np.float64), "labels must be float32"),
        ("labels", np.full((20, 3), 0.5, np.float32), "labels must be 0.0, 1.0 or NaN"),
        ("attribute_names", ["a0", "a0", "a1"], "attribute_names must be unique"),
        ("class_names", ["c0", "c1", "c1", "c3"], "class_names must be unique"),
        ("class_index", np.zeros(20, np.int32), "class_index must be int64"),
        ("class_index", np.full(20, 7, np.int64), r"class_index values must lie in \[0, 4\)"),
        ("class_attributes", np.zeros((3, 3), np.float32), "class_attributes must have shape"),
        ("label_level", "pixel", "label_level must be one of"),
        ("metadata", {"bad": object()}, "metadata must be JSON-serialisable"),
        ("splits", {"train": np.arange(5, dtype=np.int64)}, r"splits must contain.*missing \['val', 'test'\]"),
    ],
)
def test_validate_names_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_domain(**{field: value})


def test_validate_rejects_bad_splits() -> None:
    good = tiny_fields()["splits"]
    out_of_range = {**good, "test": np.array([15, 99], dtype=np.int64)}
    with pytest.raises(ValueError, match=r"splits\['test'\] indices must lie in \[0, 20\)"):
        tiny_domain(splits=out_of_range)
    unsorted = {**good, "train": good["train"][::-1].copy()}
    with pytest.raises(ValueError, match=r"splits\['train'\] must be sorted and unique"):
        tiny_domain(splits=unsorted)
    overlapping = {**good, "val": np.union1d(good["val"], good["train"][:1])}
    with pytest.raises(ValueError, match="splits 'train' and 'val' overlap"):
        tiny_domain(splits=overlapping)
    leaked = {**good, "test": np.union1d(good["test"], [0])}
    with pytest.raises(ValueError, match="overlap|test classes"):
        tiny_domain(splits=leaked)
    seen_test_class = {  # class 3 owns images 15..19
        "train": np.arange(0, 15, dtype=np.int64),
        "val": np.arange(15, 18, dtype=np.int64),
        "test": np.arange(18, 20, dtype=np.int64),
    }
    with pytest.raises(ValueError, match=r"splits\['val'\] contains test classes \[3\]"):
        tiny_domain(splits=seen_test_class)


def test_save_load_round_trip(tmp_path: Path) -> None:
    d = tiny_domain()
    target = d.save(tmp_path / "cache")
    assert sorted(p.name for p in target.iterdir()) == [
        "class_attributes.npy", "class_index.npy", "domain.json", "images.npy", "labels.npy", "splits.npz",
    ]
    loaded = AttributeDomain.load(target)
    assert isinstance(loaded.images, np.memmap) and not loaded.images.flags.writeable
    np.testing.assert_array_equal(loaded.images, d.images)
    np.testing.assert_array_equal(loaded.labels, d.labels)  # NaN compares equal here
    np.testing.assert_array_equal(loaded.class_index, d.class_index)
    np.testing.assert_array_equal(loaded.class_attributes, d.class_attributes)
    assert loaded.splits.keys() == d.splits.keys()
    for key in d.splits:
        np.testing.assert_array_equal(loaded.splits[key], d.splits[key])
    assert (loaded.name, loaded.attribute_names, loaded.class_names) == (d.name, d.attribute_names, d.class_names)
    assert (loaded.label_level, loaded.metadata) == (d.label_level, d.metadata)
    in_memory = AttributeDomain.load(target, mmap=False)
    assert not isinstance(in_memory.images, np.memmap)


def test_save_from_memmapped_source_and_without_class_attributes(tmp_path: Path) -> None:
    d = tiny_domain(class_attributes=None)
    first = AttributeDomain.load(d.save(tmp_path / "one"))
    second = AttributeDomain.load(first.save(tmp_path / "two"))
    assert second.class_attributes is None
    np.testing.assert_array_equal(second.images, d.images)


def test_save_refuses_non_empty_directory_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tiny_domain().save(target)
    assert (target / "keep.txt").exists()
    tiny_domain(name="replaced").save(target, overwrite=True)
    assert not (target / "keep.txt").exists()
    assert AttributeDomain.load(target).name == "replaced"
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]


def test_interrupted_save_leaves_nothing_complete_looking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = domain_module._save_array
    calls = {"n": 0}

    def fail_on_second(path: Path, array: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        original(path, array)

    monkeypatch.setattr(domain_module, "_save_array", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        tiny_domain().save(tmp_path / "cache")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a staging directory survives

    # An existing cache stays intact when overwriting fails.
    monkeypatch.setattr(domain_module, "_save_array", original)
    tiny_domain(name="old").save(tmp_path / "cache")
    calls["n"] = 0
    monkeypatch.setattr(domain_module, "_save_array", fail_on_second)
    with pytest.raises(OSError):
        tiny_domain(name="new").save(tmp_path / "cache", overwrite=True)
    assert AttributeDomain.load(tmp_path / "cache").name == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]


def test_load_names_missing_or_corrupt_file(tmp_path: Path) -> None:
    target = tiny_domain().save(tmp_path / "cache")
    (target / "labels.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError, match="labels.npy"):
        AttributeDomain.load(target)
    (target / "splits.npz").unlink()
    (target / "labels.npy").unlink()
    with pytest.raises(ValueError, match="labels.npy"):
        AttributeDomain.load(target)
    (target / "domain.json").write_text("{")
    with pytest.raises(ValueError, match="domain.json"):
        AttributeDomain.load(target)
    (target / "domain.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="format version"):
        AttributeDomain.load(target)
    with pytest.raises(ValueError, match="not a prepared domain directory"):
        AttributeDomain.load(tmp_path / "missing")


def test_subset_attributes_and_with_splits() -> None:
    d = tiny_domain()
    sub = d.subset_attributes(["a2", "a0"])
    np.testing.assert_array_equal(sub.labels, d.labels[:, [2, 0]])
    np.testing.assert_array_equal(sub.class_attributes, d.class_attributes[:, [2, 0]])
    with pytest.raises(ValueError, match="lack"):
        d.subset_attributes(["nope"])
    other = d.with_splits(class_split(d.class_index, [0], 0.4, seed=3))
    assert other.split_classes("test").tolist() == [0]
    assert d.split_classes("test").tolist() == [3]


def test_class_split_keeps_test_classes_unseen() -> None:
    class_index = np.repeat(np.arange(6, dtype=np.int64), [10, 10, 10, 10, 3, 1])
    splits = class_split(class_index, [1, 3], val_fraction=0.3, seed=7)
    assert np.unique(class_index[splits["test"]]).tolist() == [1, 3]
    assert np.unique(class_index[splits["train"]]).tolist() == [0, 2, 4, 5]
    assert set(np.unique(class_index[splits["val"]])) <= {0, 2, 4, 5}
    all_indices = np.concatenate(list(splits.values()))
    assert sorted(all_indices.tolist()) == list(range(class_index.size))
    counts = {c: int((class_index[splits["val"]] == c).sum()) for c in (0, 2, 4, 5)}
    assert counts == {0: 3, 2: 3, 4: 1, 5: 0}  # per-class carve; a lone image stays in train
    for key, idx in splits.items():
        assert idx.dtype == np.int64 and (np.diff(idx) > 0).all(), key
    again = class_split(class_index, [1, 3], val_fraction=0.3, seed=7)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    other = class_split(class_index, [1, 3], val_fraction=0.3, seed=8)
    assert not np.array_equal(splits["val"], other["val"])


def test_choose_test_classes() -> None:
    chosen = choose_test_classes(12, 0.25, seed=0)
    assert len(chosen) == 3 and chosen == sorted(set(chosen)) and all(0 <= c < 12 for c in chosen)
    assert chosen == choose_test_classes(12, 0.25, seed=0)
    assert choose_test_classes(2, 0.9, seed=0) in ([0], [1])
    with pytest.raises(ValueError, match="test_fraction"):
        choose_test_classes(10, 0.0, seed=0)


def test_class_split_can_hold_out_whole_training_classes_for_val():
    class_index = np.repeat(np.arange(10), 5)
    splits = class_split(class_index, test_classes=[0, 1], val_fraction=0.25, seed=3, val_by_class=True)
    train_classes = set(class_index[splits["train"]].tolist())
    val_classes = set(class_index[splits["val"]].tolist())
    test_classes = set(class_index[splits["test"]].tolist())
    assert test_classes == {0, 1}
    assert len(val_classes) == 2 and not val_classes & train_classes and not val_classes & test_classes
    assert len(splits["train"]) + len(splits["val"]) + len(splits["test"]) == 50
    again = class_split(class_index, test_classes=[0, 1], val_fraction=0.25, seed=3, val_by_class=True)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)


def test_class_disjoint_validation_for_any_domain():
    from galm.config.reader import read_config
    from galm.data.sources import config_domain

    sets = ["space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.images_per_class=10"]
    plain = config_domain(read_config(None, sets))
    domain = config_domain(read_config(None, [*sets, "data.val_split=classes", "data.val_fraction=0.25"]))
    assert np.array_equal(domain.split("test"), plain.split("test"))
    pool = np.union1d(plain.split("train"), plain.split("val"))
    assert np.array_equal(np.union1d(domain.split("train"), domain.split("val")), pool)
    train_classes = set(domain.class_index[domain.split("train")].tolist())
    val_classes = set(domain.class_index[domain.split("val")].tolist())
    assert val_classes and not train_classes & val_classes
    one_class = plain.with_splits({**plain.splits, "train": plain.split("train")[plain.class_index[plain.split("train")] == plain.class_index[plain.split("train")][0]], "val": plain.split("val")[:0]})
    from galm.data.sources import class_disjoint_validation

    with pytest.raises(ValueError, match="fewer than two training classes"):
        class_disjoint_validation(one_class, 0.25, 0)
