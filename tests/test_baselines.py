"""Tests of the classical baselines (DAP, IAP, ALE, and the shared behaviour of HAP, UMF, MDG) and
their feature sources; AFS, which needs a source domain, and each new method's defining behaviour
are in tests/test_baselines_hap_umf_mdg_afs.py."""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest
import torch

from galm.baselines import (
    BASELINES,
    ConstantAttributeWarning,
    FeatureSet,
    class_attribute_matrix,
    evaluate_baseline,
    features_from_module,
    features_from_run,
    features_from_xlsa17,
    run_baseline,
)
from galm.baselines.ale import ale_loss
from galm.baselines.iap import IAP

pytestmark = pytest.mark.usefixtures("single_thread")


FAST = {"dap": {}, "iap": {}, "ale": {"epochs": 30}, "hap": {}, "umf": {"epochs": 30}, "mdg": {}}
# Baselines that learn from one feature set alone (AFS also needs a source domain's).
SINGLE_DOMAIN = sorted(name for name in BASELINES if name != "afs")


def linear_feature_set(
    n_classes: int = 12,
    n_test: int = 4,
    n_attributes: int = 8,
    per_class: int = 15,
    dim: int = 16,
    noise: float = 0.5,
    seed: int = 0,
    with_matrix: bool = True,
) -> FeatureSet:
    """Classes with random attribute signatures; features a noisy linear map of the image's labels."""
    rng = np.random.default_rng(seed)
    signatures = (rng.random((n_classes, n_attributes)) < 0.5).astype(np.float32)
    # every attribute varies over the training classes and over the test classes
    train_classes, test_classes = np.arange(n_classes - n_test), np.arange(n_classes - n_test, n_classes)
    for group in (train_classes, test_classes):
        signatures[group[0]] = 0.0
        signatures[group[1]] = 1.0
    class_index = np.repeat(np.arange(n_classes), per_class).astype(np.int64)
    labels = signatures[class_index].copy()
    mixing = rng.normal(size=(n_attributes, dim))
    features = labels @ mixing + noise * rng.normal(size=(labels.shape[0], dim))
    test_mask = np.isin(class_index, test_classes)
    train_pool = np.flatnonzero(~test_mask)
    val = train_pool[rng.random(train_pool.size) < 0.2]
    splits = {
        "train": np.setdiff1d(train_pool, val),
        "val": val,
        "test": np.flatnonzero(test_mask),
    }
    return FeatureSet(
        features=features.astype(np.float32),
        labels=labels,
        attribute_names=[f"att{a}" for a in range(n_attributes)],
        class_index=class_index,
        class_names=[f"class{c}" for c in range(n_classes)],
        splits=splits,
        class_attributes=signatures if with_matrix else None,
        name="linear",
    )


@pytest.mark.parametrize("name", SINGLE_DOMAIN)
def test_each_baseline_beats_chance_on_unseen_classes(name: str) -> None:
    fs = linear_feature_set()
    report = evaluate_baseline(name, fs, train_splits=("train", "val"), eval_split="test", seed=0, **FAST[name])
    assert report.split == "test"
    assert report.n_attributes_scored == fs.n_attributes
    assert report.mauc > 0.7, report.per_attribute_auc


def test_dap_svm_and_ale_hinge_also_learn() -> None:
    fs = linear_feature_set(seed=1)
    assert evaluate_baseline("dap", fs, kind="svm").mauc > 0.7
    assert evaluate_baseline("dap", fs, kind="svm", calibrate=True, class_weight="balanced").mauc > 0.7
    assert evaluate_baseline("ale", fs, loss="hinge", epochs=30).mauc > 0.7


def test_iap_and_ale_work_from_training_labels_without_a_class_matrix() -> None:
    fs = linear_feature_set(with_matrix=False, seed=2)
    assert evaluate_baseline("iap", fs).mauc > 0.7
    assert evaluate_baseline("ale", fs, **FAST["ale"]).mauc > 0.7


def test_dap_ignores_unknown_labels() -> None:
    fs = linear_feature_set(seed=3)
    rng = np.random.default_rng(0)
    fs.labels[rng.random(fs.labels.shape) < 0.3] = np.nan
    report = evaluate_baseline("dap", fs)
    assert report.mauc > 0.7


@pytest.mark.parametrize("name", SINGLE_DOMAIN)
def test_attributes_constant_on_training_data_get_constant_scores(name: str) -> None:
    fs = linear_feature_set(seed=4)
    train_rows = fs.indices(("train", "val"))
    train_classes = np.unique(fs.class_index[train_rows])
    fs.labels[train_rows, 0] = 1.0  # always present on the training data
    fs.class_attributes[train_classes, 0] = 1.0
    fs.labels[train_rows, 1] = np.nan  # never known on the training data
    fs.class_attributes[train_classes, 1] = np.nan
    with pytest.warns(ConstantAttributeWarning, match="att0"):
        model, report = run_baseline(name, fs, **FAST[name])
    assert set(model.constant_attributes) == {"att0", "att1"}
    assert model.constant_attributes["att0"] == 1.0
    assert model.constant_attributes["att1"] == 0.5
    scores = model.predict_split(fs, "test")
    assert np.all(scores[:, 0] == 1.0) and np.all(scores[:, 1] == 0.5)
    assert np.all(np.isfinite(scores))
    # a constant score ranks nothing: its AUC is exactly 0.5 where defined; the others still learn
    assert report.per_attribute_auc.get("att0", 0.5) == 0.5
    others = [v for k, v in report.per_attribute_auc.items() if k not in ("att0", "att1")]
    assert np.mean(others) > 0.7


def test_iap_scores_are_posterior_times_class_matrix() -> None:
    features = np.array([[0.0, 0.0], [0.2, 0.1], [3.0, 0.0], [3.1, 0.3], [0.0, 3.0], [0.2, 3.2], [1.5, 1.5]], np.float32)
    class_index = np.array([0, 0, 1, 1, 2, 2, 3], np.int64)
    matrix = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]], np.float32)
    fs = FeatureSet(
        features=features,
        labels=matrix[class_index],
        attribute_names=["a", "b", "c"],
        class_index=class_index,
        class_names=["k0", "k1", "k2", "k3"],
        splits={"train": np.arange(6), "val": np.zeros(0, np.int64), "test": np.array([6])},
        class_attributes=matrix,
    )
    model = IAP(C=10.0).fit(fs, splits=("train",))
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    standardised = (features - features[:6].mean(0)) / features[:6].std(0)
    posterior = model.classifier_.predict_proba(standardised)
    np.testing.assert_allclose(model.predict_proba(features), posterior, rtol=1e-5)
    expected = posterior @ matrix[:3]
    np.testing.assert_allclose(model.predict_attributes(features), expected, rtol=1e-5, atol=1e-7)
    # a training image is described mostly by its own class's row
    assert np.argmax(model.predict_attributes(features[2:3])[0] * [1, 1, 0]) == 1


def test_class_attribute_matrix_falls_back_to_training_label_means() -> None:
    labels = np.array([[1, 0], [0, 0], [1, np.nan], [np.nan, np.nan], [1, 1], [0, 1]], np.float32)
    class_index = np.array([0, 0, 1, 1, 2, 2], np.int64)
    fs = FeatureSet(
        features=np.zeros((6, 2), np.float32),
        labels=labels,
        attribute_names=["x", "y"],
        class_index=class_index,
        class_names=["c0", "c1", "c2"],
        splits={"train": np.arange(4), "val": np.zeros(0, np.int64), "test": np.array([4, 5])},
    )
    matrix = class_attribute_matrix(fs)
    assert matrix.shape == (3, 2) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[0], [0.5, 0.0])
    assert matrix[1, 0] == 1.0 and math.isnan(matrix[1, 1])  # class 1 has no known 'y' label
    assert np.all(np.isnan(matrix[2]))  # the unseen class has no training labels
    np.testing.assert_allclose(class_attribute_matrix(fs, ("train", "test"))[2], [0.5, 1.0])
    given = FeatureSet(**{**fs.__dict__, "class_attributes": np.ones((3, 2), np.float32)})
    np.testing.assert_array_equal(class_attribute_matrix(given), np.ones((3, 2)))


def test_ale_loss_by_hand() -> None:
    compat = torch.tensor([[2.0, 1.5, 0.0], [0.0, 0.5, 0.8]])
    target = torch.tensor([0, 0])
    # image 0: margins 1 + 1.5 - 2 = 0.5 (violates), 1 + 0 - 2 = -1 -> rank 1, weight 1
    # image 1: margins 1.5 and 1.8 -> rank 2, weight (1 + 1/2) / 2
    assert float(ale_loss(compat, target, "ranking")) == pytest.approx((0.5 + 0.75 * 3.3) / 2)
    assert float(ale_loss(compat, target, "hinge")) == pytest.approx((0.5 + 1.8) / 2)


def test_ale_is_seeded() -> None:
    fs = linear_feature_set(seed=5)
    first = BASELINES["ale"](epochs=3).fit(fs, seed=1).predict_split(fs, "test")
    second = BASELINES["ale"](epochs=3).fit(fs, seed=1).predict_split(fs, "test")
    np.testing.assert_array_equal(first, second)


def test_unknown_baseline_and_bad_features_are_rejected() -> None:
    fs = linear_feature_set()
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate_baseline("svm", fs)
    model = BASELINES["dap"]().fit(fs)
    with pytest.raises(ValueError, match="features must be"):
        model.predict_attributes(np.zeros((2, 3)))
    with pytest.raises(RuntimeError):
        BASELINES["iap"]().predict_attributes(fs.features)


def test_feature_set_save_round_trip(tmp_path) -> None:
    fs = linear_feature_set(n_classes=4, n_test=2, per_class=3)
    loaded = FeatureSet.load(fs.save(tmp_path / "features.npz"))
    np.testing.assert_array_equal(loaded.features, fs.features)
    np.testing.assert_array_equal(loaded.labels, fs.labels)
    np.testing.assert_array_equal(loaded.class_attributes, fs.class_attributes)
    assert loaded.attribute_names == fs.attribute_names and loaded.class_names == fs.class_names
    assert sorted(loaded.splits) == sorted(fs.splits)


# --- feature sources --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_domain():
    from galm.config.schema import SyntheticConfig
    from galm.data.synthetic import generate_domain

    config = SyntheticConfig(n_domains=1, classes_per_domain=6, images_per_class=8, resolution=32, attributes_per_domain=4)
    return generate_domain(config, 0)


def test_features_from_run(tmp_path, tiny_domain) -> None:
    from galm.config.schema import SpaceConfig
    from galm.nn.network import FixedNetwork
    from galm.runs.model_file import save_model
    from galm.space.search_space import SearchSpace

    torch.manual_seed(0)
    space = SearchSpace(SpaceConfig(resolution=32))
    rng = random.Random(0)
    names = ["p", "q"]
    net = FixedNetwork([space.sample(rng) for _ in names], space.config)
    save_model(tmp_path / "model.pt", net, names)
    fs = features_from_run(tmp_path, tiny_domain, batch_size=16)
    n = tiny_domain.n_images
    assert fs.features.shape == (n, 64) and fs.features.dtype == np.float32
    assert fs.attribute_names == tiny_domain.attribute_names
    np.testing.assert_array_equal(fs.labels, tiny_domain.labels, strict=False)
    both = features_from_run(tmp_path / "model.pt", tiny_domain, batch_size=7, pooling="avgmax")
    assert both.features.shape == (n, 128)
    np.testing.assert_allclose(both.features[:, :64], fs.features, rtol=1e-4, atol=1e-5)
    assert np.all(both.features[:, 64:] >= both.features[:, :64] - 1e-5)  # max >= mean
    # in eval mode without grad: the features match the trunk applied by hand
    from galm.engine.batches import images_to_tensor

    net.eval()
    with torch.no_grad():
        by_hand = net.trunk(images_to_tensor(tiny_domain.images[:3])).conv3.mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(fs.features[:3], by_hand, rtol=1e-4, atol=1e-5)
    report = evaluate_baseline("dap", fs)
    assert report.n_attributes_scored + report.n_attributes_undefined == tiny_domain.n_attributes
    with pytest.raises(FileNotFoundError):
        features_from_run(tmp_path / "missing", tiny_domain)


class _TinyModule(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 5, 3, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_features_from_module(tmp_path, tiny_domain) -> None:
    torch.manual_seed(0)
    module = _TinyModule().eval()
    path = tmp_path / "tiny.pt"
    torch.jit.script(module).save(str(path))
    fs = features_from_module(path, tiny_domain, batch_size=10)
    assert fs.features.shape == (tiny_domain.n_images, 5)
    from galm.engine.batches import images_to_tensor

    with torch.no_grad():
        expected = module(images_to_tensor(tiny_domain.images[:4])).numpy()
    np.testing.assert_allclose(fs.features[:4], expected, rtol=1e-4, atol=1e-6)
    # a plain pickle is refused unless explicitly trusted
    pickled = tmp_path / "pickled.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 7)), pickled)
    with pytest.raises(ValueError, match="allow_pickle"):
        features_from_module(pickled, tiny_domain)
    assert features_from_module(pickled, tiny_domain, allow_pickle=True).features.shape == (tiny_domain.n_images, 7)
    with pytest.raises(FileNotFoundError):
        features_from_module(tmp_path / "nothing.pt", tiny_domain)


def test_features_from_exported_module(tmp_path, tiny_domain) -> None:
    torch.manual_seed(0)
    module = _TinyModule().eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(module, (torch.randn(4, 3, 32, 32),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(tmp_path / "tiny.pt2"))
    fs = features_from_module(tmp_path / "tiny.pt2", tiny_domain, batch_size=10)  # last batch is smaller
    from galm.engine.batches import images_to_tensor

    with torch.no_grad():
        expected = module(images_to_tensor(tiny_domain.images[-3:])).numpy()
    np.testing.assert_allclose(fs.features[-3:], expected, rtol=1e-4, atol=1e-6)


def test_features_from_xlsa17_adapter() -> None:
    fs = linear_feature_set(n_classes=5, n_test=2, per_class=4)
    att = np.random.default_rng(0).random((5, fs.n_attributes)).astype(np.float32)
    fd = FeatureSet(
        name="tiny",
        features=fs.features,
        labels=fs.labels,
        attribute_names=fs.attribute_names,
        class_index=fs.class_index,
        class_names=fs.class_names,
        splits={**fs.splits, "trainval": fs.indices(("train", "val"))},
        class_attributes=att,
    )
    continuous = features_from_xlsa17(fd)
    np.testing.assert_array_equal(continuous.class_attributes, att)
    assert "trainval" in continuous.splits
    binary = features_from_xlsa17(fd, class_attributes="binary")
    np.testing.assert_array_equal(binary.class_attributes, fs.class_attributes)
    assert features_from_xlsa17(fd, class_attributes="none").class_attributes is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantAttributeWarning)
        report = evaluate_baseline("iap", continuous, train_splits=("trainval",))
    assert report.split == "test"
