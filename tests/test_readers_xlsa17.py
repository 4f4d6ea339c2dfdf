"""xlsa17 proposed splits: genuine att_splits.mat of four datasets, generated res101.mat fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from galm.data.feature_set import FeatureSet
from galm.data.readers import (
    DatasetFormatError,
    read_att_splits,
    read_test_classes,
    read_xlsa17_features,
    xlsa17_class_split,
)
from tests.support import shared_data

CLASSES = ["antelope", "grizzly+bear", "killer+whale", "beaver", "dalmatian", "horse"]
# original_att: A=3 attributes x C=6 classes, AwA-style percentages with one -1 (no answer)
ORIGINAL = np.array([[-1.0, 10.0, 80.0, 50.0, 0.0, 90.0], [5.0, 5.0, 5.0, 5.0, 5.0, 60.0], [30.0, 70.0, 10.0, 20.0, 90.0, 40.0]])
LABELS = np.repeat(np.arange(1, 7), 4)  # 24 images, 4 per class, 1-based


def cell(strings: list[str]) -> np.ndarray:
    out = np.empty((len(strings), 1), dtype=object)
    for k, s in enumerate(strings):
        out[k, 0] = np.array([s])
    return out


def loc(indices_0: list[int] | np.ndarray) -> np.ndarray:
    return (np.asarray(indices_0) + 1).astype(np.uint16).reshape(-1, 1)


def write_xlsa17(folder: Path, *, train_val: bool = True, labels: np.ndarray = LABELS, features: np.ndarray | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = np.arange(len(LABELS))
    cls = LABELS - 1
    train = image[np.isin(cls, [0, 1, 2])]
    val = image[cls == 3]
    test_unseen = image[np.isin(cls, [4, 5])]
    trainval = np.concatenate([train, val])
    test_seen, trainval = trainval[::4], np.setdiff1d(trainval, trainval[::4])
    att = ORIGINAL / np.maximum(np.linalg.norm(ORIGINAL, axis=0, keepdims=True), 1e-9)
    content = {
        "allclasses_names": cell(CLASSES), "att": att, "original_att": ORIGINAL,
        "trainval_loc": loc(trainval), "test_seen_loc": loc(test_seen), "test_unseen_loc": loc(test_unseen),
    }
    if train_val:
        content.update(train_loc=loc(np.setdiff1d(train, test_seen)), val_loc=loc(np.setdiff1d(val, test_seen)))
    scipy.io.savemat(folder / "att_splits.mat", content)
    feats = np.random.default_rng(0).random((5, len(LABELS))) if features is None else features
    scipy.io.savemat(
        folder / "res101.mat",
        {"features": feats, "labels": labels.reshape(-1, 1).astype(np.float64),
         "image_files": cell([f"/BS/xian/work/data/Animals_with_Attributes2//JPEGImages/x/{k}.jpg" for k in range(len(LABELS))])},
    )
    return folder


def test_features_domain(tmp_path: Path) -> None:
    folder = write_xlsa17(tmp_path / "AWA2")
    domain = read_xlsa17_features(folder)
    assert isinstance(domain, FeatureSet)
    assert domain.features.shape == (24, 5) and domain.features.dtype == np.float32
    assert domain.class_names == CLASSES and domain.attribute_names == ["attribute_000", "attribute_001", "attribute_002"]
    assert domain.class_index.tolist() == (LABELS - 1).tolist()
    assert domain.class_attributes.shape == (6, 3)
    # threshold 'mean': per attribute, above its mean over the answered classes; -1 is unknown
    expected = np.array([[np.nan, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0]]).T
    np.testing.assert_array_equal(domain.labels[::4], expected.astype(np.float32))
    classes = lambda s: set(np.unique(domain.class_index[domain.splits[s]]).tolist())  # noqa: E731
    assert classes("train") == {0, 1, 2} and classes("val") == {3} and classes("test") == {4, 5}
    assert classes("test_seen") <= {0, 1, 2, 3}
    assert len(domain.image_files) == 24 and domain.image_files[0].startswith("/BS/")
    numeric = read_xlsa17_features(folder, threshold=50.0)
    assert numeric.labels[4 * 3, 0] == 1.0 and numeric.labels[4 * 4, 0] == 0.0


def test_copy_without_train_val(tmp_path: Path) -> None:
    domain = read_xlsa17_features(write_xlsa17(tmp_path / "x", train_val=False), val_fraction=0.34, seed=1)
    assert "carved" in domain.metadata["split_source"]
    assert len(domain.splits["val"]) > 0
    assert np.intersect1d(domain.splits["train"], domain.splits["val"]).size == 0
    assert xlsa17_class_split(tmp_path / "x" / "att_splits.mat")[1] == []


def test_class_split_and_split_file(tmp_path: Path) -> None:
    folder = write_xlsa17(tmp_path / "AWA2")
    train, val, test = xlsa17_class_split(folder / "att_splits.mat")
    assert train == CLASSES[:3] and val == ["beaver"] and test == ["dalmatian", "horse"]
    names = ["antelope", "beaver", "dalmatian", "grizzly+bear", "horse", "killer+whale"]
    assert read_test_classes(folder / "att_splits.mat", names) == [2, 4]
    (folder / "res101.mat").unlink()
    (folder / "trainclasses1.txt").write_text("antelope\ngrizzly+bear\nkiller+whale\n")
    (folder / "valclasses1.txt").write_text("beaver\n")
    (folder / "testclasses.txt").write_text("dalmatian\nhorse\n")
    assert xlsa17_class_split(folder / "att_splits.mat") == (CLASSES[:3], ["beaver"], ["dalmatian", "horse"])
    (folder / "testclasses.txt").write_text("dalmatian\nunicorn\n")
    with pytest.raises(DatasetFormatError, match=r"testclasses.txt, line 2: unknown class name 'unicorn'"):
        xlsa17_class_split(folder / "att_splits.mat")


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match=r"res101.mat, field 'labels': expected 1-based class numbers in \[1, 6\]"):
        read_xlsa17_features(write_xlsa17(tmp_path / "a", labels=np.where(LABELS == 6, 7, LABELS)))
    with pytest.raises(DatasetFormatError, match=r"res101.mat, field 'features': shape \(5, 23\) does not match the 24 entries"):
        read_xlsa17_features(write_xlsa17(tmp_path / "b", features=np.zeros((5, 23))))
    folder = write_xlsa17(tmp_path / "c")
    content = scipy.io.loadmat(folder / "att_splits.mat")
    content["test_unseen_loc"] = np.array([[25]], dtype=np.uint16)
    scipy.io.savemat(folder / "att_splits.mat", {k: v for k, v in content.items() if not k.startswith("__")})
    with pytest.raises(DatasetFormatError, match=r"field 'test_unseen_loc': index 25 exceeds the 24 images"):
        read_xlsa17_features(folder)
    content["att"] = content["att"][:, :5]
    scipy.io.savemat(folder / "att_splits.mat", {k: v for k, v in content.items() if not k.startswith("__")})
    with pytest.raises(DatasetFormatError, match=r"att_splits.mat, field 'att': expected an attributes x classes matrix with 6 columns"):
        read_att_splits(folder / "att_splits.mat")
    del content["att"]
    scipy.io.savemat(folder / "att_splits.mat", {k: v for k, v in content.items() if not k.startswith("__")})
    with pytest.raises(DatasetFormatError, match=r"field 'att': key is missing"):
        read_att_splits(folder / "att_splits.mat")
    with pytest.raises(DatasetFormatError, match=r"expected file .*nowhere/att_splits.mat"):
        read_xlsa17_features(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "dataset, n_classes, n_attributes, first",
    [("AWA1", 50, 85, "antelope"), ("AWA2", 50, 85, "antelope"), ("APY", 32, 64, "aeroplane"), ("SUN", 717, 102, "abbey")],
)
def test_genuine_att_splits(dataset: str, n_classes: int, n_attributes: int, first: str) -> None:
    splits = read_att_splits(shared_data() / "xlsa17" / dataset / "att_splits.mat")
    assert splits.n_classes == n_classes and splits.n_attributes == n_attributes
    assert splits.class_names[0] == first and splits.att.shape == (n_classes, n_attributes)
    assert splits.original_att is not None and splits.has_train_val
    for key in ("trainval", "test_seen", "test_unseen", "train", "val"):
        assert splits.locs[key].dtype == np.int64 and splits.locs[key].min() >= 0
    assert np.intersect1d(splits.locs["trainval"], splits.locs["test_unseen"]).size == 0
    if dataset.startswith("AWA"):
        assert "grizzly+bear" in splits.class_names


def test_genuine_class_split_needs_labels() -> None:
    path = shared_data() / "xlsa17" / "AWA2" / "att_splits.mat"
    with pytest.raises(DatasetFormatError, match=f"expected file {path.parent / 'res101.mat'}"):
        xlsa17_class_split(path)
    with pytest.raises(DatasetFormatError, match=f"expected file {path.parent / 'res101.mat'}"):
        read_xlsa17_features(path.parent)
