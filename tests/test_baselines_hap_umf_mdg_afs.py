"""The defining behaviour of HAP, UMF, MDG and AFS, each on a constructed case where it shows:
HAP's hypergraph regulariser pulls an attribute's scores towards the attributes it co-occurs with;
UMF's multiplicative form learns a category-dependent attribute a linear classifier cannot; MDG's
projection removes the between-class distribution shift; AFS's attention settles on the source
classifier that predicts the target attribute."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from galm.baselines import (
    AFS,
    BASELINES,
    HAP,
    MDG,
    UMF,
    ConstantAttributeWarning,
    FeatureSet,
    evaluate_baseline,
)
from galm.baselines.hap import hypergraph_laplacian
from galm.baselines.kernels import KernelMap, centred_alignment, stratified_subset
from galm.baselines.mdg import (
    distributional_variance,
    distributional_variance_coefficients,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def _feature_set(x: np.ndarray, labels: np.ndarray, class_index: np.ndarray, test_classes: np.ndarray,
                 name: str = "constructed", prefix: str = "a") -> FeatureSet:
    test = np.isin(class_index, test_classes)
    return FeatureSet(
        features=x, labels=labels.astype(np.float32),
        attribute_names=[f"{prefix}{k}" for k in range(labels.shape[1])], class_index=class_index,
        class_names=[f"class{c}" for c in range(int(class_index.max()) + 1)],
        splits={"train": np.flatnonzero(~test), "val": np.zeros(0, np.int64), "test": np.flatnonzero(test)},
        name=name,
    )


# --------------------------------------------------------------------------- HAP


def correlated_pair(agree: float, seed: int = 0) -> FeatureSet:
    """Attributes a and b with their own feature directions; on the training images b equals a with
    probability ``agree``, on the test images the two are independent."""
    rng = np.random.default_rng(seed)
    class_index = np.repeat(np.arange(10), 30)
    test = class_index >= 7
    a = rng.random(class_index.size) < 0.5
    b = np.where(rng.random(class_index.size) < np.where(test, 0.5, agree), a, ~a)
    x = rng.normal(size=(class_index.size, 6))
    x[:, 0] += 2.0 * (2 * a - 1)
    x[:, 1] += 1.0 * (2 * b - 1)
    return _feature_set(x, np.stack([a, b], 1), class_index, np.arange(7, 10))


def _pull_of_b_towards_a(fs: FeatureSet, hypergraph_weight: float) -> float:
    """How much higher b scores on test images that have a than on those that do not (in score stds)."""
    scores = HAP(hypergraph_weight=hypergraph_weight).fit(fs, ("train",)).predict_split(fs, "test")[:, 1]
    has_a = fs.labels[fs.split("test"), 0] == 1
    return float((scores[has_a].mean() - scores[~has_a].mean()) / scores.std())


def test_hap_hypergraph_moves_predictions_towards_co_occurring_attributes() -> None:
    fs = correlated_pair(agree=0.8)
    pulls = [_pull_of_b_towards_a(fs, weight) for weight in (0.0, 1.0, 3.0)]
    assert pulls[0] < pulls[1] < pulls[2], pulls
    assert pulls[2] - pulls[0] > 0.15, pulls
    # where b is rarely present with a on the training images, the regulariser pushes the other way
    anti = correlated_pair(agree=0.2)
    assert _pull_of_b_towards_a(anti, 3.0) < _pull_of_b_towards_a(anti, 0.0) - 0.05
    # and both attributes are still learned
    assert evaluate_baseline("hap", fs, train_splits=("train",)).mauc > 0.8


def test_hypergraph_laplacian_is_zhous_normalised_laplacian() -> None:
    incidence = np.array([[1, 0], [1, 1], [0, 1], [0, 1], [0, 0]], dtype=float)  # the last vertex in no hyperedge
    laplacian = hypergraph_laplacian(incidence)
    degree = incidence.sum(axis=1)
    np.testing.assert_allclose(laplacian, laplacian.T)
    assert np.linalg.eigvalsh(laplacian).min() > -1e-10  # positive semi-definite
    np.testing.assert_allclose(laplacian @ np.sqrt(degree), 0.0, atol=1e-12)  # D^1/2 1 is in its null space
    np.testing.assert_array_equal(laplacian[4], 0.0)
    # f^T L f = 1/2 sum_e 1/|e| sum_{u, v in e} (f_u / sqrt d_u - f_v / sqrt d_v)^2 (unit weights)
    f = np.array([0.3, -1.0, 2.0, 0.5, 7.0])
    g = np.divide(f, np.sqrt(degree), out=np.zeros_like(f), where=degree > 0)
    expected = sum(0.5 / e.sum() * sum((g[u] - g[v]) ** 2 for u in np.flatnonzero(e) for v in np.flatnonzero(e))
                   for e in incidence.T)
    assert f @ laplacian @ f == pytest.approx(expected)


def test_hap_chooses_the_kernel_best_aligned_with_the_attributes() -> None:
    rng = np.random.default_rng(1)
    class_index = np.repeat(np.arange(8), 25)
    x = rng.normal(size=(class_index.size, 4))
    labels = (np.abs(x[:, :2]) > 0.8).astype(np.float32)  # not linearly separable
    fs = _feature_set(x, labels, class_index, np.array([6, 7]))
    model = HAP(kernel="auto").fit(fs, ("train",))
    assert "linear" in model.alignment_ and len(model.alignment_) == 6
    best = max(model.alignment_, key=model.alignment_.get)
    assert best.startswith("rbf") and model.kernel_map_.kind == "rbf"
    assert model.alignment_[best] > model.alignment_["linear"]
    assert model.evaluate(fs, "test").mauc > 0.8
    assert HAP(kernel="linear").fit(fs, ("train",)).evaluate(fs, "test").mauc < 0.7


def test_kernel_helpers() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    gram = KernelMap("rbf", x, 0.5).gram()
    np.testing.assert_allclose(np.diag(gram), 1.0)
    assert centred_alignment(gram, gram) == pytest.approx(1.0)
    classes = np.repeat(np.arange(5), [40, 30, 20, 5, 1])
    picked = stratified_subset(classes, 20, rng)
    assert picked.size <= 20 and set(classes[picked]) == set(range(5))
    np.testing.assert_array_equal(stratified_subset(classes, 1000, rng), np.arange(classes.size))
    with pytest.raises(ValueError, match="kernel"):
        KernelMap("poly", x)


def test_kernel_baselines_fit_on_a_class_stratified_basis_beyond_max_samples() -> None:
    fs = correlated_pair(agree=0.5, seed=3)
    hap = HAP(max_samples=60).fit(fs, ("train",))
    mdg = MDG(max_samples=60).fit(fs, ("train",))
    assert hap.coefficients_.shape[0] <= 60 and mdg.projection_.shape[0] <= 60
    assert hap.evaluate(fs, "test").mauc > 0.75 and mdg.evaluate(fs, "test").mauc > 0.75


# --------------------------------------------------------------------------- UMF


def category_dependent_attribute(seed: int = 0) -> FeatureSet:
    """Attribute a0 looks opposite in the two groups of classes (feature 0 up in one, down in the
    other; feature 1 tells the groups apart), so no single linear classifier of the image finds
    it; a1 is the group itself. Half of every class has a0."""
    rng = np.random.default_rng(seed)
    class_index = np.repeat(np.arange(12), 40)
    group = np.where(np.arange(12) % 2 == 0, 1.0, -1.0)[class_index]
    a = rng.random(class_index.size) < 0.5
    x = 0.3 * rng.normal(size=(12, 8))[class_index] + 0.3 * rng.normal(size=(class_index.size, 8))
    x[:, 0] = (2 * a - 1) * group * (1 + 0.5 * rng.random(class_index.size))
    x[:, 1] = group + 0.3 * rng.normal(size=class_index.size)
    return _feature_set(x, np.stack([a, group > 0], 1), class_index, np.array([10, 11]))


def test_umf_learns_a_category_dependent_attribute_that_dap_and_iap_cannot() -> None:
    fs = category_dependent_attribute()
    umf = UMF(epochs=30).fit(fs, ("train",))
    auc = umf.evaluate(fs, "test").per_attribute_auc
    assert auc["a0"] > 0.95 and auc["a1"] > 0.95, auc
    for linear in ("dap", "iap"):
        assert evaluate_baseline(linear, fs, train_splits=("train",)).per_attribute_auc["a0"] < 0.7
    # the unseen class's images take the category factors of the training classes of their group
    test = fs.split("test")
    posterior = umf.category_posterior(fs.features[test])
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0, rtol=1e-5)
    same_group = (umf.classes_[None, :] % 2) == (fs.class_index[test][:, None] % 2)
    assert (posterior * same_group).sum(axis=1).mean() > 0.9


# --------------------------------------------------------------------------- MDG


def shifted_classes(seed: int = 0) -> FeatureSet:
    """Attribute signal in 4 feature directions plus class-specific offsets in 6 others, rotated
    together: the offsets tell classes apart and carry nothing about the attributes of new classes."""
    rng = np.random.default_rng(seed)
    class_index = np.repeat(np.arange(12), 30)
    signature = rng.random((12, 4)) < 0.5
    flip = rng.random((class_index.size, 4)) < 0.2
    labels = np.where(flip, ~signature[class_index], signature[class_index]).astype(np.float32)
    signal = (2 * labels - 1) + 0.8 * rng.normal(size=labels.shape)
    nuisance = 3.0 * rng.normal(size=(12, 6))[class_index] + 0.5 * rng.normal(size=(class_index.size, 6))
    rotation = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    return _feature_set(np.concatenate([signal, nuisance], 1) @ rotation, labels, class_index, np.arange(8, 12))


def test_mdg_projection_reduces_the_between_class_distribution_distance() -> None:
    fs = shifted_classes()
    rows = fs.indices(("train",))
    classes = fs.class_index[rows]
    raw = distributional_variance(fs.features[rows], classes)
    plain = MDG(components=8, invariance=0.0).fit(fs, ("train",))  # kernel projection without the invariance term
    without = distributional_variance(plain.project(fs.features[rows]), classes)
    model = MDG(components=8).fit(fs, ("train",))
    invariant = distributional_variance(model.project(fs.features[rows]), classes)
    assert invariant < 0.5 * without and invariant < 0.5 * raw, (raw, without, invariant)
    assert model.eigenvalues_.shape == (8,) and np.all(np.diff(model.eigenvalues_) <= 1e-9)
    # the class-invariant components generalise to unseen classes; the class-telling ones do not
    invariant_auc, plain_auc = model.evaluate(fs, "test").mauc, plain.evaluate(fs, "test").mauc
    assert invariant_auc > plain_auc + 0.15 and invariant_auc > 0.8, (invariant_auc, plain_auc)


def test_distributional_variance_is_the_spread_of_the_class_means() -> None:
    rng = np.random.default_rng(0)
    classes = np.repeat(np.arange(3), [4, 6, 5])
    x = rng.normal(size=(15, 2))
    x_same = x - np.stack([x[classes == c].mean(0) for c in classes])  # every class mean 0
    assert distributional_variance(x_same, classes) == pytest.approx(0.0, abs=1e-12)
    means = np.stack([x[classes == c].mean(0) for c in range(3)])
    spread = np.mean(np.sum((means - means.mean(0)) ** 2, axis=1))
    q = distributional_variance_coefficients(classes)
    assert np.sum((x @ x.T) * q) == pytest.approx(spread)


# --------------------------------------------------------------------------- AFS


def _directions_domain(seed: int, directions: np.ndarray, picks: list[int], negate: list[bool], per_class: int,
                       prefix: str) -> FeatureSet:
    """Attributes that are the signs of fixed feature directions (``directions[picks]``), some negated."""
    rng = np.random.default_rng(seed)
    class_index = np.repeat(np.arange(8), per_class)
    x = rng.normal(size=(class_index.size, directions.shape[1]))
    labels = (x @ directions[picks].T > 0) ^ np.array(negate)[None, :]
    return _feature_set(x, labels, class_index, np.array([6, 7]), name=prefix, prefix=prefix)


@pytest.fixture(scope="module")
def friendly_strangers() -> tuple[FeatureSet, FeatureSet]:
    directions = np.random.default_rng(42).normal(size=(6, 10))
    source = _directions_domain(1, directions, [0, 1, 2, 3, 4], [False] * 5, per_class=50, prefix="s")
    # t0 is source attribute s2, t1 the absence of s4, t2 a direction no source attribute has
    target = _directions_domain(2, directions, [2, 4, 5], [False, True, False], per_class=6, prefix="t")
    return source, target


def test_afs_attention_concentrates_on_the_source_classifier_of_the_target_attribute(friendly_strangers) -> None:
    source, target = friendly_strangers
    model = AFS(source=source).fit(target, ("train",))
    attention = model.source_attention(target.features[target.split("test")]).mean(axis=0)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-5)
    assert model.source_attribute_names_ == ["s0", "s1", "s2", "s3", "s4"]
    assert np.argmax(attention[0]) == 2 and attention[0, 2] > 0.7, attention[0]
    assert np.argmax(attention[1]) == 4 and attention[1, 4] > 0.6, attention[1]
    # t1 is the absence of s4: the weight sits on the negated classifier
    bank = model.attention(target.features[target.split("test")]).mean(axis=0)
    assert bank.shape == (3, 10) and bank[1, 5 + 4] > bank[1, 4]
    summary = model.attention_summary(target, "test")
    assert summary["t0"][0][0] == "s2" and summary["t1"][0][0] == "s4"
    auc = model.evaluate(target, "test").per_attribute_auc
    assert auc["t0"] > 0.95 and auc["t1"] > 0.95 and auc["t2"] > 0.8, auc


def test_afs_needs_a_source_from_the_same_extractor(friendly_strangers) -> None:
    source, target = friendly_strangers
    with pytest.raises(ValueError, match="source domain's features"):
        AFS().fit(target, ("train",))
    narrow = FeatureSet(features=source.features[:, :4], labels=source.labels, attribute_names=source.attribute_names,
                        class_index=source.class_index, class_names=source.class_names, splits=source.splits)
    with pytest.raises(ValueError, match="same feature extractor"):
        AFS(source=narrow).fit(target, ("train",))
    assert "afs" in BASELINES


def test_afs_gives_unlearnable_target_attributes_a_constant_score(friendly_strangers) -> None:
    source, target = friendly_strangers
    train = target.indices(("train",))
    labels = target.labels.copy()
    labels[train, 2] = 1.0
    fixed = FeatureSet(features=target.features, labels=labels, attribute_names=target.attribute_names,
                       class_index=target.class_index, class_names=target.class_names, splits=target.splits)
    with pytest.warns(ConstantAttributeWarning, match="t2"):
        model = AFS(source=source, epochs=5).fit(fixed, ("train",))
    assert model.constant_attributes == {"t2": 1.0}
    assert np.all(model.predict_split(fixed, "test")[:, 2] == 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unlearnable *source* attribute just leaves the bank, silently
        source_labels = source.labels.copy()
        source_labels[:, 0] = 0.0
        quiet = FeatureSet(features=source.features, labels=source_labels, attribute_names=source.attribute_names,
                           class_index=source.class_index, class_names=source.class_names, splits=source.splits)
        assert AFS(source=quiet, epochs=5).fit(target, ("train",)).source_attribute_names_ == ["s1", "s2", "s3", "s4"]


def test_trained_baselines_are_seeded_and_leave_the_global_torch_rng_alone(friendly_strangers) -> None:
    import torch

    source, target = friendly_strangers
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = AFS(source=source, epochs=3).fit(target, ("train",), seed=5).predict_split(target, "test")
    umf = UMF(epochs=3).fit(target, ("train",), seed=5).predict_split(target, "test")
    torch.testing.assert_close(torch.rand(3), expected)
    np.testing.assert_array_equal(first, AFS(source=source, epochs=3).fit(target, ("train",), seed=5).predict_split(target, "test"))
    np.testing.assert_array_equal(umf, UMF(epochs=3).fit(target, ("train",), seed=5).predict_split(target, "test"))
