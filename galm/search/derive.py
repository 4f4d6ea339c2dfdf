"""Derivation: the final head of every searched attribute, chosen on the whole validation split,
and the ARM record (``arm.json``) of the attribute embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from galm.engine.batches import sequential_batches
from galm.search.rewards import head_rewards
from galm.search.state import SearchState
from galm.space import Architecture

DeriveMethod = Literal["argmax", "best_of_k"]


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
    state: SearchState, ids: torch.Tensor, archs: list[Architecture], batch_size: int = 256
) -> torch.Tensor:
    """Reward (m,) of each (attribute, head) pair on the whole validation split."""
    indices = state.domain.split("val")
    logits = torch.cat([
        state.head_logits(state.batch_images(batch, augment=False), ids, archs).cpu()
        for batch in sequential_batches(indices, batch_size)
    ])
    return head_rewards(logits, state.batch_labels(indices, ids).cpu(), state.config.reward)


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
def derive(state: SearchState, method: DeriveMethod | None = None, samples: int | None = None) -> list[DerivedHead]:
    """Final architecture per active attribute: policy argmax, or best of k samples (argmax included)."""
    method = method or state.config.derive
    samples = state.config.derive_samples if samples is None else samples
    ids = state.active_ids()
    candidates = [state.controller.sample(ids, greedy=True).actions]
    if method == "best_of_k":
        generator = torch.Generator(device=state.device).manual_seed(state.seed + 5)
        candidates += [state.controller.sample(ids, generator=generator).actions for _ in range(samples)]
    elif method != "argmax":
        raise ValueError(f"search.derive must be 'argmax' or 'best_of_k', got {method!r}")
    best, rewards = best_candidates(state, ids, [[state.space.decode(a) for a in c.tolist()] for c in candidates])
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
