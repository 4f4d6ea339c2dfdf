"""Cross-validated scoring of candidate heads (``search.derive_folds``): folds and the derive path."""

import dataclasses

import numpy as np
import pytest
import torch

from galm.config.reader import read_config
from galm.config.typed import ConfigError
from galm.data.sources import config_domain
from galm.search.derive import derive
from galm.search.jobs import build_search
from galm.training.candidates import candidate_folds


def test_candidate_folds_hold_whole_classes_for_class_splits_and_images_otherwise():
    config = read_config(None, ["space.resolution=32", "data.synthetic.resolution=32",
                                "data.synthetic.classes_per_domain=6", "data.synthetic.images_per_class=10",
                                "data.synthetic.attributes_per_domain=5"])
    domain = config_domain(config)
    indices = np.sort(np.concatenate([domain.split("train"), domain.split("val")]))
    folds = candidate_folds(domain, indices, 2, seed=0)
    assert np.array_equal(np.sort(np.concatenate(folds)), indices)
    class_sets = [set(domain.class_index[f].tolist()) for f in folds]
    assert class_sets[0].isdisjoint(class_sets[1]) and all(class_sets)
    image_split = dataclasses.replace(domain, metadata={**domain.metadata, "class_split": False})
    by_image = candidate_folds(image_split, indices, 3, seed=0)
    assert [len(f) for f in by_image] == [len(indices) // 3 + (i < len(indices) % 3) for i in range(3)]
    with pytest.raises(ValueError, match="at least 2 folds"):
        candidate_folds(domain, indices, 1, seed=0)


def test_derive_folds_scores_candidates_by_cross_validation_and_one_fold_is_refused():
    config = read_config(None, [
        "space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.classes_per_domain=6",
        "data.synthetic.images_per_class=10", "data.synthetic.attributes_per_domain=5",
        "data.synthetic.n_domains=1", "train.batch_size=16", "threads=1", "search.episodes=1",
        "search.shared_steps=2", "search.controller_steps=2", "search.batch_size=16",
        "search.derive=trained", "search.derive_samples=1", "search.derive_epochs=1", "search.derive_folds=2",
    ])
    state = build_search(config, config_domain(config), torch.device("cpu"))
    heads = derive(state)
    assert len(heads) == len(state.active)
    assert all(0.0 <= h.val_reward <= 1.0 for h in heads if np.isfinite(h.val_reward))
    with pytest.raises(ConfigError, match="search.derive_folds"):
        read_config(None, ["search.derive_folds=1"])
