"""Helpers several test files share: the genuine data folder and raw domains as validated domains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from galm.data.domain import AttributeDomain
from galm.data.raw import RawDomain


def shared_data() -> Path:
    """The team's genuine data folder (``../shared/data`` beside the repository), or skip."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip("genuine dataset files (../shared/data) are not available")
    return path


def as_domain(raw: RawDomain, size: int = 2) -> AttributeDomain:
    """The raw domain with blank images, checked by the domain's own validation."""
    return AttributeDomain(
        name=raw.name, images=np.zeros((raw.n_images, size, size, 3), np.uint8), labels=raw.labels,
        attribute_names=raw.attribute_names, class_index=raw.class_index, class_names=raw.class_names,
        splits=raw.splits, class_attributes=raw.class_attributes, label_level=raw.label_level, metadata=raw.metadata,
    )


# A one-domain search small enough for a few steps in well under a second.
TINY_SEARCH = (
    "space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.classes_per_domain=6",
    "data.synthetic.images_per_class=10", "data.synthetic.attributes_per_domain=4",
    "data.synthetic.n_domains=1", "search.episodes=1", "search.controller_steps=2",
    "search.batch_size=8", "search.attributes_per_step=0", "threads=1",
)


# `galm train` arguments for a trained run in a few seconds (5 attributes, 32 pixels, one epoch).
TINY_TRAIN = (
    "--set", "space.resolution=32", "--set", "data.synthetic.resolution=32",
    "--set", "data.synthetic.classes_per_domain=6", "--set", "data.synthetic.images_per_class=8",
    "--set", "data.synthetic.attributes_per_domain=5", "--set", "data.synthetic.n_domains=1",
    "--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", "threads=1",
)


def tiny_trained_run(path: Path) -> Path:
    """A run directory made by `galm train` with random heads on a tiny synthetic domain."""
    from galm.cli import main

    assert main(["train", "--out", str(path), "--arch", "random", *TINY_TRAIN]) == 0
    return path
