"""Derivation: the final head of every searched attribute, chosen on the whole validation split,
and the ARM record (``arm.json``) of the attribute embeddings.

``argmax`` takes the policy's most likely head; ``best_of_k`` the best of it and k samples by
their reward on the shared weights; ``trained`` trains the same candidates stand-alone for a few
epochs (all attributes' candidates in one batched network, :mod:`galm.training.candidates`) and
keeps the best by validation AUC, because a head's reward on shared weights favours heads that
train fast, not heads that end best; ``networks`` trains whole candidate networks (the argmax, networks
drawn from the policy, and fixed-head anchors) each on its own trunk and keeps the best by mAUC,
because a head also shapes the trunk that every other head reads. With ``search.derive_folds`` the
candidates are scored by cross-validation over the retraining splits instead of on the (small)
validation split.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Literal, Sequence

import numpy as np
import torch

from galm.config.schema import ExecutionConfig, RewardMetric, SearchConfig, SpaceConfig, TrainConfig
from galm.data.domain import AttributeDomain
from galm.engine.batches import sequential_batches
from galm.search.rewards import head_rewards
from galm.search.state import SearchState
from galm.space import Architecture
from galm.training.candidates import cross_validated_candidates, train_candidates

DeriveMethod = Literal["argmax", "best_of_k", "trained", "networks"]
DERIVE_METHODS: tuple[str, ...] = ("argmax", "best_of_k", "trained", "networks")


@dataclass
class DerivedHead:
    """The final architecture of one attribute and the evidence for it."""

    attribute: str
    architecture: Architecture
    probability: float
    val_reward: float

    def to_json(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture.to_json(),
            "short": self.architecture.short(),
            "probability": self.probability,
            "val_reward": self.val_reward,
        }


@torch.no_grad()
def validation_rewards(
    state: SearchState, ids: torch.Tensor, archs: list[Architecture], batch_size: int = 256,
    metric: RewardMetric | None = None,
) -> torch.Tensor:
    """Reward (m,) of each (attribute, head) pair on the whole validation split (`metric`: the
    search's reward unless given)."""
    indices = state.domain.split("val")
    logits = torch.cat([
        state.head_logits(state.batch_images(batch, augment=False), ids, archs).cpu()
        for batch in sequential_batches(indices, batch_size)
    ])
    return head_rewards(logits, state.batch_labels(indices, ids).cpu(), metric or state.config.reward)


@torch.no_grad()
def best_candidates(
    state: SearchState, ids: torch.Tensor, candidates: list[list[Architecture]]
) -> tuple[list[int], torch.Tensor]:
    """Per attribute, the index of its best candidate set by whole-split validation reward.

    ``candidates[k][j]`` is the k-th candidate head of attribute ``ids[j]``. Returns the chosen
    k per attribute and the rewards (K, m); an undefined reward (NaN) never wins.
    """
    rewards = torch.stack([validation_rewards(state, ids, archs) for archs in candidates])
    best = torch.nan_to_num(rewards, nan=-1.0).argmax(dim=0)
    return [int(k) for k in best], rewards


@torch.no_grad()
def derive(
    state: SearchState, method: DeriveMethod | None = None, samples: int | None = None,
    train: TrainConfig | None = None,
) -> list[DerivedHead]:
    """Final architecture per active attribute: policy argmax, best of k samples by shared-weight
    reward, best of the same candidates after short stand-alone training, or the best whole network
    of them (`train` sets the training's optimisation; its epochs are ``search.derive_epochs``)."""
    method = method or state.config.derive
    samples = state.config.derive_samples if samples is None else samples
    if method not in DERIVE_METHODS:
        raise ValueError(f"search.derive must be one of {', '.join(DERIVE_METHODS)}, got {method!r}")
    ids = state.active_ids()
    candidates = [state.controller.sample(ids, greedy=True).actions]
    if method != "argmax":
        generator = torch.Generator(device=state.device).manual_seed(state.seed + 5)
        candidates += [state.controller.sample(ids, generator=generator).actions for _ in range(samples)]
    if method == "networks":  # every attribute also gets each anchor's head, as one more candidate network
        candidates += [torch.as_tensor(state.space.encode(state.space.named(name)), device=candidates[0].device)
                       .expand_as(candidates[0]) for name in state.config.derive_anchors]
    archs = [[state.space.decode(a) for a in c.tolist()] for c in candidates]
    state.network_choice = None
    if method == "networks":
        labels = ["argmax", *[f"sample {k + 1}" for k in range(samples)],
                  *[ANCHOR_PREFIX + name for name in state.config.derive_anchors]]
        best, rewards, state.network_choice = trained_networks(state, archs, labels, train or TrainConfig())
    elif method == "trained":
        best, rewards = trained_candidates(state, archs, train or TrainConfig())
    else:
        best, rewards = best_candidates(state, ids, archs)
    actions = torch.stack([candidates[k][j] for j, k in enumerate(best)])
    log_prob, _ = state.controller.evaluate_actions(ids, actions)
    return [
        DerivedHead(
            attribute=state.attribute_names[int(a)],
            architecture=state.space.decode(actions[j].tolist()),
            probability=float(log_prob[j].exp()),
            val_reward=float(rewards[best[j], j]),
        )
        for j, a in enumerate(state.active.tolist())
    ]


def trained_candidates(
    state: SearchState, candidates: list[list[Architecture]], train: TrainConfig
) -> tuple[list[int], torch.Tensor]:
    """Per searched attribute, the index of its best candidate by validation AUC after
    ``search.derive_epochs`` of stand-alone training on the training split (or by cross-validated
    AUC over the retraining splits, ``search.derive_folds``); the AUCs (K, m)."""
    names = [state.attribute_names[a] for a in state.active.tolist()]
    with torch.enable_grad():
        aucs = candidate_scores(state.domain.subset_attributes(names), candidates, state.config, state.space.config,
                                train, state.seed, state.device, state.execution)
    rewards = torch.as_tensor(aucs, dtype=torch.float32)
    best = torch.nan_to_num(rewards, nan=-1.0).argmax(dim=0)
    return [int(k) for k in best], rewards


def trained_networks(
    state: SearchState, candidates: list[list[Architecture]], labels: list[str], train: TrainConfig
) -> tuple[list[int], torch.Tensor, dict[str, Any]]:
    """The whole candidate network (``candidates[k]``, one head per searched attribute) with the best
    mean AUC over attributes after stand-alone training (:func:`candidate_scores`, each network on its
    own trunk, all with the same seed and folds so that they differ by their heads alone, repeated with
    ``search.derive_repeats`` other seeds and folds), or the best anchor where that is not clearly
    better (:func:`choose_network`); every attribute takes its head from that network. Returns the
    choice per attribute, the AUCs (K, m, averaged over repeats) and the record of every network's score."""
    names = [state.attribute_names[a] for a in state.active.tolist()]
    domain = state.domain.subset_attributes(names)
    with torch.enable_grad():
        aucs = np.stack([
            np.concatenate([
                candidate_scores(domain, [network], state.config, state.space.config, train,
                                 state.seed + REPEAT_SEED_STRIDE * repeat, state.device, state.execution)
                for network in candidates
            ])
            for repeat in range(state.config.derive_repeats)
        ])
    anchors = [k for k, label in enumerate(labels) if is_anchor(label)]
    chosen, record = choose_network(aucs, anchors, state.config.derive_margin_se)
    record = {
        "metric": "cross_validated_mauc" if state.config.derive_folds >= 2 else "val_mauc_after_training",
        "repeats": len(aucs),
        "chosen": labels[chosen],
        "networks": [{"candidate": label, "mauc": score} for label, score in zip(labels, record.pop("mauc"))],
        **record,
    }
    with warnings.catch_warnings():  # an attribute without an AUC in any repeat stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_aucs = np.nanmean(aucs, axis=0)
    return [chosen] * len(names), torch.as_tensor(mean_aucs, dtype=torch.float32), record


# How derive=networks labels a fixed-head network of search.derive_anchors ("anchor largest").
ANCHOR_PREFIX = "anchor "


def is_anchor(label: str) -> bool:
    """Whether a candidate-network label of derive=networks names a fixed-head anchor, not a searched network."""
    return label.startswith(ANCHOR_PREFIX)


# Seeds of the repeated scorings of derive=networks: far enough apart that folds and inits differ.
REPEAT_SEED_STRIDE = 1009


def choose_network(aucs: np.ndarray, anchors: Sequence[int], margin_se: float) -> tuple[int, dict[str, Any]]:
    """The index of the network to keep among K scored ones (`aucs` (R, K, m): R repeated scorings,
    per attribute) and the evidence: the best by mean AUC, except that a network that is not an
    anchor must beat the best anchor by more than `margin_se` standard errors of its gain.

    Within one scoring the networks share folds and seeds, so the gain is paired. With R >= 2 its
    standard error is that of the mean over repeats (on syn1 one CV's gain moved by 1.8 points between
    fold partitions, three times its spread over attributes); with R = 1 it is that of the paired
    per-attribute differences. A gain within that noise does not justify leaving a fixed head."""
    with warnings.catch_warnings():  # a network or attribute without any AUC is handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        per_repeat = np.nanmean(aucs, axis=2)  # (R, K)
        mauc = np.nan_to_num(np.nanmean(per_repeat, axis=0), nan=-1.0)
    best = int(mauc.argmax())
    record: dict[str, Any] = {"mauc": mauc.tolist()}
    if not anchors or best in anchors:  # nothing to test the best network against
        return best, record
    anchor = max(anchors, key=lambda k: mauc[k])
    both = np.isfinite(aucs[:, best]) & np.isfinite(aucs[:, anchor])  # (R, m)
    differences = [aucs[r, best][both[r]] - aucs[r, anchor][both[r]] for r in range(len(aucs))]
    # The gain's samples: one per repeat, or with a single scoring one per attribute.
    samples = np.array([d.mean() for d in differences if d.size]) if len(aucs) >= 2 else differences[0]
    gain = float(samples.mean()) if samples.size else 0.0
    error = float(samples.std(ddof=1) / np.sqrt(samples.size)) if samples.size >= 2 else float("inf")
    record.update({"gain_over_anchor": gain, "gain_standard_error": error, "margin_se": margin_se})
    return (best if gain > margin_se * error else anchor), record


def candidate_scores(
    domain: AttributeDomain, candidates: Sequence[Sequence[Architecture]], search: SearchConfig, space: SpaceConfig,
    train: TrainConfig, seed: int, device: torch.device, execution: ExecutionConfig | None = None,
) -> np.ndarray:
    """What ``derive=trained`` ranks by, AUC (K, m) of ``candidates[k][j]`` for attribute j of `domain`:
    after ``search.derive_epochs`` on the training split, scored on validation, or cross-validated
    over ``search.retrain_splits`` with ``search.derive_folds``."""
    config = replace(train, epochs=search.derive_epochs, splits=("train",))
    if search.derive_folds >= 2:
        return cross_validated_candidates(domain, candidates, space, config, seed + 6, search.derive_folds, device,
                                          splits=search.retrain_splits, execution=execution)
    return train_candidates(domain, candidates, space, config, seed + 6, device, execution=execution)


@torch.no_grad()
def arm_record(state: SearchState, domain_of_attribute: list[str]) -> dict[str, Any]:
    """``arm.json``: ARM representations ê_i, their cosine-similarity matrix, attribute names, which
    were searched, and the domain of every attribute (so Fig. 5 can split a multi-domain search)."""
    return {
        "attribute_names": list(state.attribute_names),
        "domain": state.domain.name,
        "domain_of_attribute": list(domain_of_attribute),
        "searched": state.active.tolist(),
        "representations": state.controller.attribute_representations().cpu().tolist(),
        "cosine_similarity": state.controller.cosine_similarity_matrix().cpu().tolist(),
    }
