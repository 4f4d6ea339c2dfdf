"""Whole-network derivation (``search.derive=networks``): candidates, anchors, the choice and its record."""

import numpy as np
import pytest
import torch

from galm.config.reader import read_config
from galm.config.typed import ConfigError
from galm.data.sources import config_domain
from galm.search.derive import choose_network, derive
from galm.search.jobs import build_search
from galm.search.quality import search_quality
from galm.space import SearchSpace

TINY = [
    "space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.classes_per_domain=6",
    "data.synthetic.images_per_class=10", "data.synthetic.attributes_per_domain=5",
    "data.synthetic.n_domains=1", "train.batch_size=16", "threads=1", "search.episodes=1",
    "search.shared_steps=2", "search.controller_steps=2", "search.batch_size=16",
    "search.derive=networks", "search.derive_samples=1", "search.derive_epochs=1",
]


def test_space_names_its_corners_and_refuses_heads_outside_it():
    space = SearchSpace()
    assert space.named("largest").short() == "c4k5s12-c5k5s123-f256-f256-o2"
    assert space.named("default") == space.default()
    assert space.named("c4k3s0-c5k3s0-f256-f128-o2").fc1_width == 256
    with pytest.raises(ValueError):
        space.named("c4k7s0-c5k3s0-f256-f128-o2")  # kernel 7 is not a choice
    with pytest.raises(ValueError):
        space.named("biggest")


def test_networks_derive_keeps_one_whole_candidate_network_and_records_every_score():
    torch.manual_seed(0)
    config = read_config(None, [*TINY, "search.derive_anchors=[largest,default]", "search.derive_folds=2",
                                    "search.derive_margin_se=0", "search.derive_repeats=2"])
    state = build_search(config, config_domain(config), torch.device("cpu"))
    heads = derive(state)
    record = state.network_choice
    assert [n["candidate"] for n in record["networks"]] == ["argmax", "sample 1", "anchor largest", "anchor default"]
    assert record["metric"] == "cross_validated_mauc" and record["repeats"] == 2
    scores = [n["mauc"] for n in record["networks"]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    chosen = record["networks"][int(np.argmax(scores))]["candidate"]
    assert record["chosen"] == chosen
    space = SearchSpace(config.space)
    if chosen.startswith("anchor"):  # every attribute then carries the anchor's head
        assert {h.architecture for h in heads} == {space.named(chosen.split()[1])}
    # The chosen network's per-attribute scores are the heads' evidence, their mean the recorded mAUC.
    rewards = [h.val_reward for h in heads if np.isfinite(h.val_reward)]
    assert np.mean(rewards) == pytest.approx(max(scores), abs=1e-5)
    assert record["gain_over_anchor"] >= 0 if "gain_over_anchor" in record else chosen.startswith("anchor")
    assert search_quality(state, heads)["derived_network"] == record


def test_networks_derive_on_the_validation_split_and_a_bad_anchor_is_a_config_error():
    config = read_config(None, TINY)
    state = build_search(config, config_domain(config), torch.device("cpu"))
    derive(state)
    assert state.network_choice["metric"] == "val_mauc_after_training"
    assert len(state.network_choice["networks"]) == 2
    bad = read_config(None, [*TINY, "search.derive_anchors=[c4k9s0-c5k3s0-f64-f64-o1]"])
    with pytest.raises(ConfigError, match="search.derive_anchors"):
        build_search(bad, config_domain(bad), torch.device("cpu"))
    with pytest.raises(ConfigError, match="search.derive_margin_se"):
        read_config(None, [*TINY, "search.derive_margin_se=-1"])
    with pytest.raises(ConfigError, match="search.derive_repeats"):
        read_config(None, [*TINY, "search.derive_repeats=0"])


def test_a_searched_network_must_beat_the_best_anchor_by_more_than_the_margin():
    anchor = np.array([0.70, 0.80, 0.60, 0.90])
    noisy = anchor + np.array([0.05, -0.03, 0.04, -0.04])  # +0.005 on average, standard error 0.0228
    clear = anchor + np.array([0.02, 0.03, 0.02, 0.03])  # +0.025, standard error 0.0029
    aucs = np.stack([noisy, anchor, anchor - 0.1])[None]  # one scoring (R = 1) of 3 networks
    chosen, record = choose_network(aucs, anchors=[1, 2], margin_se=1.0)
    assert chosen == 1
    assert record["gain_over_anchor"] == pytest.approx(0.005)
    assert record["gain_standard_error"] == pytest.approx(np.std([0.05, -0.03, 0.04, -0.04], ddof=1) / 2)
    assert choose_network(aucs, anchors=[1, 2], margin_se=0.0)[0] == 0  # margin 0: the best by mean AUC
    assert choose_network(np.stack([clear, anchor])[None], anchors=[1], margin_se=1.0)[0] == 0
    # Without anchors, or when an anchor is best, the best mean AUC is kept and there is no gain to test.
    assert choose_network(aucs, anchors=[], margin_se=5.0) == (0, {"mauc": pytest.approx(aucs[0].mean(axis=1))})
    assert choose_network(aucs[:, [2, 1]], anchors=[1], margin_se=1.0)[0] == 1
    # An attribute without an AUC in either network is left out of the paired differences.
    with_gap = np.stack([np.append(clear, np.nan), np.append(anchor, 0.5)])[None]
    assert choose_network(with_gap, anchors=[1], margin_se=1.0)[1]["gain_over_anchor"] == pytest.approx(0.025)


def test_repeated_scorings_judge_the_gain_by_its_spread_over_repeats():
    anchor = np.array([0.70, 0.80, 0.60, 0.90])
    # The same clear per-attribute gain (+0.025) in one partition, a loss in the next: the mean gain
    # over the two repeats (+0.005) is within the spread of the repeats, so the anchor stays.
    first = np.stack([anchor + 0.025, anchor])
    second = np.stack([anchor - 0.015, anchor])
    chosen, record = choose_network(np.stack([first, second]), anchors=[1], margin_se=1.0)
    assert chosen == 1
    assert record["gain_over_anchor"] == pytest.approx(0.005)
    assert record["gain_standard_error"] == pytest.approx(np.std([0.025, -0.015], ddof=1) / np.sqrt(2))
    assert record["mauc"] == pytest.approx([anchor.mean() + 0.005, anchor.mean()])
    # Gains that agree across repeats clear the margin.
    steady = np.stack([np.stack([anchor + 0.02, anchor]), np.stack([anchor + 0.03, anchor])])
    assert choose_network(steady, anchors=[1], margin_se=1.0)[0] == 0
