"""Tests for the built-in synthetic attribute domains."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from galm.config.schema import SyntheticConfig
from galm.data import (
    AttributeDomain,
    generate_domain,
    generate_domains,
    shared_factor_pairs,
)

SMALL = SyntheticConfig(classes_per_domain=8, images_per_class=6, resolution=32, seed=3)


@pytest.fixture(scope="module")
def small_domains() -> list[AttributeDomain]:
    return generate_domains(SMALL)


def factor_columns(domain: AttributeDomain) -> dict[str, np.ndarray]:
    """Class signature column of each factor id."""
    signatures = np.asarray(domain.metadata["class_signatures"], dtype=bool)
    return {f["id"]: signatures[:, k] for k, f in enumerate(domain.metadata["factors"])}


def same_domain(a: AttributeDomain, b: AttributeDomain) -> bool:
    """Byte-identical arrays, names, splits and metadata."""
    return (
        a.name == b.name
        and a.images.tobytes() == b.images.tobytes()
        and a.labels.tobytes() == b.labels.tobytes()
        and a.class_attributes.tobytes() == b.class_attributes.tobytes()
        and a.attribute_names == b.attribute_names
        and all(np.array_equal(a.splits[k], b.splits[k]) for k in ("train", "val", "test"))
        and a.metadata == b.metadata
    )


def test_shapes_dtypes_and_splits(small_domains: list[AttributeDomain]) -> None:
    assert [d.name for d in small_domains] == ["syn1", "syn2", "syn3"]
    for d in small_domains:
        assert d.images.shape == (48, 32, 32, 3) and d.images.dtype == np.uint8
        assert d.labels.shape == (48, 12) and d.labels.dtype == np.float32
        assert set(np.unique(d.labels)) <= {0.0, 1.0}
        assert d.class_attributes.shape == (8, 12) and d.label_level == "image"
        assert d.split_classes("test").tolist() == d.metadata["test_classes"] and len(d.metadata["test_classes"]) == 2
        assert set(d.split_classes("val")) <= set(d.split_classes("train"))
        assert d.images.std() > 20  # not blank


def test_deterministic_and_seed_sensitive(small_domains: list[AttributeDomain]) -> None:
    again = generate_domains(SMALL)
    assert all(same_domain(a, b) for a, b in zip(small_domains, again))
    other = generate_domains(dataclasses.replace(SMALL, seed=4))
    assert all(a.images.tobytes() != b.images.tobytes() for a, b in zip(small_domains, other))


def test_generate_domain_matches_generate_domains(small_domains: list[AttributeDomain]) -> None:
    assert same_domain(generate_domain(SMALL, 2), small_domains[2])
    assert same_domain(generate_domain(SMALL, 0), small_domains[0])
    with pytest.raises(ValueError, match="domain index"):
        generate_domain(SMALL, 3)


def test_attribute_names_distinct_across_domains(small_domains: list[AttributeDomain]) -> None:
    names = [n for d in small_domains for n in d.attribute_names]
    assert len(names) == len(set(names)) == 36
    for i, d in enumerate(small_domains):
        assert all(n.startswith(f"d{i + 1}_") for n in d.attribute_names)


def test_ground_truth_matches_class_attributes(small_domains: list[AttributeDomain]) -> None:
    ops = {"identity": lambda a, b: a, "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}
    for d in small_domains:
        columns = factor_columns(d)
        truth = d.metadata["ground_truth"]
        assert list(truth) == d.attribute_names
        rules = {t["rule"] for t in truth.values()}
        assert "identity" in rules and rules & {"and", "or", "xor"}
        for a, name in enumerate(d.attribute_names):
            spec = truth[name]
            values = [columns[f] for f in spec["factors"]]
            expected = ops[spec["rule"]](values[0], values[-1])
            np.testing.assert_array_equal(d.class_attributes[:, a].astype(bool), expected, err_msg=name)
            assert set(spec["cues"]) <= {"texture", "shape", "colour_layout", "count", "position_size"}
        train_values = d.class_attributes[d.split_classes("train")]
        assert (train_values.min(0) < train_values.max(0)).all()  # no attribute constant over training classes
        # Two test classes cannot vary an XOR of balanced factors; single-factor attributes always vary.
        test_values = d.class_attributes[d.split_classes("test")]
        single = [a for a, n in enumerate(d.attribute_names) if truth[n]["rule"] == "identity"]
        assert (test_values[:, single].min(0) < test_values[:, single].max(0)).all()


def test_every_attribute_varies_over_three_test_classes() -> None:
    for d in generate_domains(SyntheticConfig(images_per_class=1, resolution=16)):
        for split in ("train", "test"):
            values = d.class_attributes[d.split_classes(split)]
            assert len(values) >= 3 and (values.min(0) < values.max(0)).all(), (d.name, split)


def test_labels_follow_images_or_classes() -> None:
    exact = generate_domain(dataclasses.replace(SMALL, image_flip_prob=0.0), 0)
    np.testing.assert_array_equal(exact.labels, exact.class_attributes[exact.class_index])
    flipped = generate_domain(dataclasses.replace(SMALL, image_flip_prob=0.2, images_per_class=40), 0)
    single = [a for a, n in enumerate(flipped.attribute_names) if flipped.metadata["ground_truth"][n]["rule"] == "identity"]
    disagree = (flipped.labels[:, single] != flipped.class_attributes[flipped.class_index][:, single]).mean()
    assert 0.15 < disagree < 0.25  # image-level labels follow each image's flipped factors
    class_level = generate_domain(dataclasses.replace(SMALL, image_flip_prob=0.2, label_level="class"), 0)
    assert class_level.label_level == "class"
    np.testing.assert_array_equal(class_level.labels, class_level.class_attributes[class_level.class_index])
    noisy = generate_domain(dataclasses.replace(SMALL, image_flip_prob=0.0, label_noise=0.1, images_per_class=40), 0)
    assert 0.05 < (noisy.labels != noisy.class_attributes[noisy.class_index]).mean() < 0.15


def test_shared_factor_pairs(small_domains: list[AttributeDomain]) -> None:
    pairs = shared_factor_pairs(small_domains)
    assert {(p["domain_a"], p["domain_b"]) for p in pairs} == {("syn1", "syn2"), ("syn1", "syn3"), ("syn2", "syn3")}
    exact = [p for p in pairs if p["exact"]]
    assert len(exact) >= 3 * 4  # single-factor attributes over shared factors come first in every domain
    assert all(f.startswith("shared_") for p in pairs for f in p["factors"])
    # The same shared factor is drawn with a different cue in each domain.
    for factor in {f for p in exact for f in p["factors"]}:
        cues = [next(x["cue"] for x in d.metadata["factors"] if x["id"] == factor) for d in small_domains]
        assert len(set(cues)) == 3, factor


def domain_digest(domain: AttributeDomain) -> str:
    """Short hash of a domain's arrays, splits and attribute names (not its metadata)."""
    digest = hashlib.sha256()
    for array in (domain.images, domain.labels, domain.class_attributes, domain.class_index,
                  domain.splits["train"], domain.splits["val"], domain.splits["test"]):
        digest.update(array.tobytes())
    digest.update("|".join(domain.attribute_names).encode())
    return digest.hexdigest()[:16]


def test_default_rotate_generation_is_unchanged(small_domains: list[AttributeDomain]) -> None:
    # Digests of the generator before `shared_cues` existed: the default must stay bit-identical.
    assert SMALL.shared_cues == "rotate"
    assert [domain_digest(d) for d in small_domains] == ["c079910c98eee13a", "a610fc352cc6c4fe", "f10fbb78b1729c8e"]


def test_keep_shared_cues_keeps_cue_type_with_other_parameters() -> None:
    keep = dataclasses.replace(SMALL, shared_cues="keep")
    domains = generate_domains(keep)
    factors = [{f["id"]: f for f in d.metadata["factors"]} for d in domains]
    pairs = shared_factor_pairs(domains)
    assert len([p for p in pairs if p["exact"]]) >= 3 * 4
    by_name = {d.name: f for d, f in zip(domains, factors)}
    for pair in pairs:
        for factor in pair["factors"]:
            a, b = by_name[pair["domain_a"]][factor], by_name[pair["domain_b"]][factor]
            assert a["cue"] == b["cue"], (pair, factor)
            assert a["rgb"] != b["rgb"] or a["variant"] != b["variant"], (pair, factor)
    # Private factors are drawn as under the default; shared factors sit on every cue type.
    rotate = generate_domains(SMALL)
    for d_keep, d_rotate in zip(domains, rotate):
        private = [(f["id"], f["cue"]) for f in d_keep.metadata["factors"] if not f["id"].startswith("shared_")]
        assert private == [(f["id"], f["cue"]) for f in d_rotate.metadata["factors"] if not f["id"].startswith("shared_")]
    assert {f["cue"] for f in factors[0].values() if f["id"].startswith("shared_")} == {
        "texture", "shape", "colour_layout", "count", "position_size"
    }


def test_same_shared_cues_draw_shared_factors_as_the_first_domain() -> None:
    same = dataclasses.replace(SMALL, shared_cues="same")
    domains = generate_domains(same)
    rotate = generate_domains(SMALL)
    # The first domain is the reference: identical to the default generation.
    assert domain_digest(domains[0]) == domain_digest(rotate[0])
    reference = {f["id"]: f for f in domains[0].metadata["factors"]}
    for domain, domain_rotate in zip(domains[1:], rotate[1:]):
        for factor in domain.metadata["factors"]:
            if factor["id"].startswith("shared_"):
                assert factor == reference[factor["id"]]
        private = [(f["id"], f["cue"]) for f in domain.metadata["factors"] if not f["id"].startswith("shared_")]
        assert private == [
            (f["id"], f["cue"]) for f in domain_rotate.metadata["factors"] if not f["id"].startswith("shared_")
        ]
        # Same appearance, other images: backgrounds, classes and labels are the domain's own.
        assert not np.array_equal(domain.images, domains[0].images)
    assert len([p for p in shared_factor_pairs(domains) if p["exact"]]) >= 3 * 4


def test_config_round_trip_and_validation() -> None:
    config = SyntheticConfig(n_domains=2, label_level="class", seed=9)
    assert SyntheticConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown synthetic config keys"):
        SyntheticConfig.from_dict({"n_domain": 2})
    with pytest.raises(ValueError, match="label_level"):
        SyntheticConfig(label_level="pixel")
    with pytest.raises(ValueError, match="synthetic.shared_cues must be one of"):
        SyntheticConfig(shared_cues="identical")
    with pytest.raises(ValueError, match="attributes_per_domain must be at most"):
        SyntheticConfig(n_shared_factors=1, n_private_factors=0, attributes_per_domain=2)


def test_resolution_224_and_save_load(tmp_path: Path) -> None:
    config = SyntheticConfig(n_domains=2, classes_per_domain=4, images_per_class=2, resolution=224)
    domain = generate_domain(config, 1)
    assert domain.images.shape == (8, 224, 224, 3) and domain.resolution == 224
    loaded = AttributeDomain.load(domain.save(tmp_path / "syn2"))
    assert same_domain(loaded, domain)


def hand_features(images: np.ndarray, bins: int = 12) -> np.ndarray:
    """Per hue bin: vivid-pixel fraction in each quadrant and mean edge energy (simple, cue-agnostic)."""
    x = images.astype(np.float32) / 255.0
    half = x.shape[1] // 2
    brightest, darkest = x.max(3), x.min(3)
    vivid = (brightest - darkest > 0.6 * brightest) & (brightest > 0.6)
    red, green, blue = x[..., 0], x[..., 1], x[..., 2]
    hue = (np.arctan2(np.sqrt(3) * (green - blue), 2 * red - green - blue) / (2 * np.pi)) % 1.0
    hue_bin = np.floor(hue * bins).astype(int) % bins
    edges = np.zeros_like(brightest)
    edges[:, :, 1:] += np.abs(np.diff(x, axis=2)).sum(3)
    edges[:, 1:, :] += np.abs(np.diff(x, axis=1)).sum(3)
    columns = []
    for k in range(bins):
        mask = vivid & (hue_bin == k)
        for rows in (slice(None, half), slice(half, None)):
            for cols in (slice(None, half), slice(half, None)):
                columns.append(mask[:, rows, cols].mean((1, 2)))
        columns.append((edges * mask).sum((1, 2)) / (mask.sum((1, 2)) + 1.0))
    return np.stack(columns, axis=1)


def test_attributes_are_learnable_on_unseen_classes() -> None:
    domain = generate_domain(SyntheticConfig(), 0)
    features = hand_features(domain.images)
    train, test = domain.split("train"), domain.split("test")
    features = (features - features[train].mean(0)) / (features[train].std(0) + 1e-6)
    truth = domain.metadata["ground_truth"]
    aucs = {}
    for a, name in enumerate(domain.attribute_names):
        model = LogisticRegression(C=0.1, max_iter=500).fit(features[train], domain.labels[train, a])
        aucs[name] = roc_auc_score(domain.labels[test, a], model.predict_proba(features[test])[:, 1])
    linear_cues = {"colour_layout", "count", "texture"}
    single = [n for n in aucs if truth[n]["rule"] == "identity" and truth[n]["cues"][0] in linear_cues]
    assert len(single) >= 4
    assert sum(aucs[n] > 0.8 for n in single) >= 4, {n: round(aucs[n], 2) for n in single}
    assert np.mean([aucs[n] for n in single]) > 0.8
