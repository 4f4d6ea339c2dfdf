"""Algorithm 1 of the paper: phase 1 trains Ω, phase 2 trains ARM + MNAS, episode after episode.

Phase 1 trains the shared weights on training minibatches, each attribute of a step running the
head the controller samples for it. Phase 2 trains the controller by REINFORCE on rewards of
sampled heads measured on validation minibatches (validation images come from the training
classes, never from the test classes). A transfer's embedding warm-up and random search reuse
these steps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from galm.engine.precision import autocast
from galm.engine.progress import progress
from galm.runs.metrics import MetricsLogger
from galm.search.reinforce import ControllerTrainer
from galm.search.rewards import head_rewards
from galm.search.state import SearchState
from galm.space import Architecture
from galm.training.losses import known_counts, masked_bce


class SearchInterrupted(RuntimeError):
    """Raised by a step hook to stop a search (used to test resume)."""


def shared_step(state: SearchState) -> float:
    """Phase 1: one minibatch of Ω training with freshly sampled heads; returns loss per attribute."""
    ids = state.attribute_batch(state.config.attributes_per_step)
    with torch.no_grad():
        sample = state.controller.sample(ids, generator=state.sampling)
    parallel = state.parallel
    parallel.check_same(f"architectures sampled at shared step {state.shared_step}", [ids, sample.actions])
    archs = state.decode(sample)
    batch = state.train_order.next()
    labels = state.batch_labels(batch, ids)
    rows = parallel.shard(len(batch)) if parallel.is_parallel else None
    state.supernet.train()
    with parallel.sharded_step(), autocast(state.precision, state.device):
        logits = state.supernet(state.batch_images(batch, augment=True, rows=rows), ids, archs)
    if rows is None:
        loss = masked_bce(logits.float(), labels)
    else:  # this shard's part of the whole minibatch's loss
        loss = masked_bce(logits.float(), labels[rows], known_counts(labels))
    state.shared_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    total = parallel.sum_gradients(state.supernet.parameters(), loss)
    state.shared_optimizer.step()
    state.restore_frozen_heads()
    state.shared_step += 1
    return total / len(ids)


def minibatch_rewards(state: SearchState, ids: torch.Tensor, archs: list[Architecture]) -> torch.Tensor:
    """Reward (m,) of each (attribute, head) on the next validation minibatch (NaN where undefined)."""
    batch = state.val_order.next()
    parallel = state.parallel
    rows = parallel.shard(len(batch)) if parallel.is_parallel else None
    with parallel.sharded_step():
        logits = state.head_logits(state.batch_images(batch, augment=False, rows=rows), ids, archs)
    # Every rank scores its shard; the reward is computed on the gathered scores of the whole
    # minibatch (an AUC of the whole batch, not a mean of per-shard AUCs), identically on every rank.
    logits = parallel.gather_rows(logits, len(batch))
    return head_rewards(logits, state.batch_labels(batch, ids), state.config.reward)


def controller_step(
    state: SearchState, ids: torch.Tensor | None = None, trainer: ControllerTrainer | None = None
) -> dict[str, Any]:
    """Phase 2: sample heads for `ids` (default: a batch of `controller_attributes_per_step`), reward
    them on a validation minibatch, one REINFORCE update by `trainer` (default: the search's)."""
    if ids is None:
        ids = state.attribute_batch(state.config.controller_attributes_per_step)
    trainer = trainer or state.trainer
    sample = state.controller.sample(ids, generator=state.sampling)
    state.parallel.check_same(f"architectures sampled at controller step {state.controller_step}",
                              [ids, sample.actions])
    rewards = minibatch_rewards(state, ids, state.decode(sample))
    usable = ~torch.isnan(rewards)
    state.controller_step += 1
    if not usable.any():
        return {"probs": sample.probs}
    stats = trainer.step(
        ids[usable], (sample.log_prob[usable], sample.entropy[usable]), rewards[usable].to(sample.log_prob)
    )
    state.record_reward(stats["reward"])
    state.parallel.check_same(f"controller weights after controller step {state.controller_step}",
                              trainer.parameters)
    return {**stats, "probs": sample.probs}


def run_search(
    state: SearchState,
    logger: MetricsLogger | None = None,
    checkpoint_path: Path | None = None,
    on_step: Callable[[str, int], None] | None = None,
) -> None:
    """Run the remaining episodes; checkpoint after each. `on_step(phase, step)` is a test hook."""
    shared_steps, controller_steps = state.steps_per_episode
    remaining = (state.config.episodes - state.episode) * (shared_steps + controller_steps)
    with progress(total=remaining, desc="search", unit="step") as bar:
        while state.episode < state.config.episodes:
            start = time.perf_counter()
            losses = []
            for _ in range(shared_steps):
                losses.append(shared_step(state))
                bar.update(1)
                if on_step is not None:
                    on_step("shared", state.shared_step)
            stats = []
            learning = state.episode >= state.config.warmup_episodes
            for _ in range(controller_steps if learning else 0):
                stats.append(controller_step(state))
                bar.update(1)
                if on_step is not None:
                    on_step("controller", state.controller_step)
            if not learning:
                bar.update(controller_steps)
            state.episode += 1
            summary = episode_summary(state, losses, stats, time.perf_counter() - start)
            bar.set_postfix(
                episode=state.episode, loss=f"{summary['shared']['loss']:.3f}",
                reward=f"{summary['controller'].get('reward', float('nan')):.3f}",
            )
            if logger is not None:
                for phase, values in summary.items():
                    logger.log(state.episode, phase, values)
            state.parallel.check_same(f"shared weights after episode {state.episode}",
                                      state.supernet.state_dict().values())
            if checkpoint_path is not None:
                state.save_checkpoint(checkpoint_path)


def episode_summary(state: SearchState, losses: list[float], stats: list[dict[str, Any]], seconds: float) -> dict:
    """Per-phase means for the log: shared loss; reward, baseline, entropy, choice probabilities."""
    shared = {"loss": float(np.mean(losses)) if losses else float("nan"), "steps": state.shared_step}
    controller: dict[str, float] = {"steps": state.controller_step, "seconds": seconds}
    updates = [s for s in stats if "reward" in s]
    for key in ("reward", "baseline", "advantage", "entropy", "loss", "grad_norm"):
        if updates:
            controller[key] = float(np.mean([s[key] for s in updates]))
    for decision, choices in policy_probabilities(state).items():
        for choice, p in choices.items():
            controller[f"p.{decision}={choice}"] = p
    return {"shared": shared, "controller": controller}


@torch.no_grad()
def policy_probabilities(state: SearchState) -> dict[str, dict[str, float]]:
    """Mean over active attributes of each decision's choice probabilities along the greedy path."""
    sample = state.controller.sample(state.active_ids(), greedy=True)
    return {
        decision.name: {str(choice): float(p) for choice, p in zip(decision.choices, probs.mean(0).tolist())}
        for decision, probs in zip(state.space.decisions, sample.probs)
    }
