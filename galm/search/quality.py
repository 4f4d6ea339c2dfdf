"""What a finished search was worth, measured on its own shared weights: the searched heads'
validation AUC against random heads', how far the policy moved, and how uncertain it still is.

Written beside ``architectures.json`` as ``search_quality.json``. A search whose heads are no better
than random ones on the weights it trained, or whose policy is still near uniform, has not yet
found anything: the numbers say so instead of leaving the user to trust the search.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch

from galm.search.derive import DerivedHead, validation_rewards
from galm.search.state import SearchState

RANDOM_DRAWS = 8


@torch.no_grad()
def search_quality(state: SearchState, heads: list[DerivedHead], draws: int = RANDOM_DRAWS) -> dict[str, Any]:
    """The record of ``search_quality.json`` for the derived `heads` of `state`."""
    ids = state.active_ids()
    names = [state.attribute_names[a] for a in state.active.tolist()]
    searched = validation_rewards(state, ids, [h.architecture for h in heads], metric="auc").numpy()
    rng = random.Random(state.seed + 8191)
    randoms = np.stack([
        validation_rewards(state, ids, [state.space.sample(rng) for _ in names], metric="auc").numpy()
        for _ in range(draws)
    ])
    greedy = state.controller.sample(ids, greedy=True)
    entropy = float(greedy.entropy.mean())
    max_entropy = float(sum(math.log(size) for size in state.space.decision_sizes))
    initial = torch.as_tensor(state.initial_greedy)[torch.as_tensor(state.active)]
    changed = (greedy.actions.cpu() != initial).any(dim=1)
    per_attribute = {
        name: {"searched_val_auc": _number(searched[j]), "random_val_auc_mean": _number(np.nanmean(randoms[:, j])),
               "random_draws_beaten": int(np.sum(randoms[:, j] < searched[j]))}
        for j, name in enumerate(names)
    }
    defined = np.isfinite(searched)
    above = searched[defined] > np.nanmedian(randoms[:, defined], axis=0)
    return {
        "metric": "val_auc_on_shared_weights",
        "searched_val_mauc": _number(np.nanmean(searched)),
        "random_val_mauc": _number(np.nanmean(randoms)),
        "random_val_mauc_per_draw": [_number(np.nanmean(r)) for r in randoms],
        "share_of_attributes_above_random_median": _number(np.mean(above)) if above.size else None,
        "policy_entropy": entropy,
        "max_policy_entropy": max_entropy,
        "share_of_argmax_changed": float(changed.float().mean()),
        "n_searched": len(names),
        "n_skipped": len(state.skipped),
        "per_attribute": per_attribute,
        **({"derived_network": state.network_choice} if state.network_choice else {}),
    }


def _number(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)
