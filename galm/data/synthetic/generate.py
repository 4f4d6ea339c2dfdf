"""Generating synthetic domains from their config: plan, signatures, images, labels and splits.

Every domain draws each stage from its own derived seed, so domain ``i`` is the same whether it
is generated alone or with the others.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

from galm.config.schema import SyntheticConfig
from galm.data.domain import AttributeDomain, choose_test_classes, class_split
from galm.data.synthetic.labels import (
    class_signatures,
    ground_truth_metadata,
    image_labels,
)
from galm.data.synthetic.plan import apply_rules, domain_seeds, plan_domain
from galm.data.synthetic.render import render_images


def generate_domains(config: SyntheticConfig | None = None) -> list[AttributeDomain]:
    """All synthetic domains of ``config`` (``syn1``, ``syn2``, ...), each from its own derived seed."""
    config = config or SyntheticConfig()
    return [generate_domain(config, i) for i in range(config.n_domains)]


def generate_domain(config: SyntheticConfig, index: int) -> AttributeDomain:
    """Synthetic domain ``index`` (0-based), identical to ``generate_domains(config)[index]``."""
    if not 0 <= index < config.n_domains:
        raise ValueError(f"domain index must lie in [0, {config.n_domains}), got {index}")
    plan_seq, signature_seq, image_seq, noise_seq, split_seq, label_seq = domain_seeds(config, index)
    plan = plan_domain(config, index, np.random.default_rng(plan_seq))
    split_rng = np.random.default_rng(split_seq)
    test_classes = choose_test_classes(
        config.classes_per_domain, config.test_class_fraction, int(split_rng.integers(2**32))
    )
    signatures = class_signatures(config, plan, test_classes, np.random.default_rng(signature_seq))
    class_index = np.repeat(np.arange(config.classes_per_domain, dtype=np.int64), config.images_per_class)
    image_rng = np.random.default_rng(image_seq)
    flips = image_rng.random((class_index.size, len(plan.factors))) < config.image_flip_prob
    image_factors = signatures[class_index] ^ flips
    images = render_images(plan, image_factors, config, image_rng, np.random.default_rng(noise_seq))
    class_attributes = apply_rules(signatures, plan.attributes)
    labels = image_labels(config, image_factors, class_attributes, class_index, plan, np.random.default_rng(label_seq))
    splits = class_split(class_index, test_classes, config.val_fraction, int(split_rng.integers(2**32)),
                         val_by_class=config.val_split == "classes")
    name = f"syn{index + 1}"
    return AttributeDomain(
        name=name,
        images=images,
        labels=labels,
        attribute_names=[a.name for a in plan.attributes],
        class_index=class_index,
        class_names=[f"{name}_class{c:02d}" for c in range(config.classes_per_domain)],
        splits=splits,
        class_attributes=class_attributes.astype(np.float32),
        label_level=config.label_level,
        metadata=ground_truth_metadata(config, plan, signatures, test_classes, flips),
    )


def shared_factor_pairs(domains: Sequence[AttributeDomain]) -> list[dict[str, Any]]:
    """Cross-domain attribute pairs whose ground truth shares a latent factor (``exact``: same factor and rule)."""
    pairs = []
    for first, second in itertools.combinations(domains, 2):
        truth_a = first.metadata["ground_truth"]
        truth_b = second.metadata["ground_truth"]
        for name_a, a in truth_a.items():
            for name_b, b in truth_b.items():
                common = sorted(set(a["factors"]) & set(b["factors"]))
                if common:
                    exact = a["factors"] == b["factors"] and a["rule"] == b["rule"]
                    pairs.append(
                        {
                            "domain_a": first.name,
                            "attribute_a": name_a,
                            "domain_b": second.name,
                            "attribute_b": name_b,
                            "factors": common,
                            "exact": exact,
                        }
                    )
    return pairs
