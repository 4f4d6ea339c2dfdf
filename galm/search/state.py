"""Algorithm 1 of the paper: alternate training of the shared weights Ω and of ARM + MNAS.

Phase 1 trains Ω on training minibatches, each attribute of a step running the head the
controller samples for it. Phase 2 trains the controller by REINFORCE on rewards of sampled
heads measured on validation minibatches (validation images come from the training classes,
never from the test classes). Everything needed to continue lives in one checkpoint written
atomically at the end of every episode, so a stopped search resumes to the same result.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from galm.config.schema import (
    ControllerConfig,
    ExecutionConfig,
    SearchConfig,
    SpaceConfig,
)
from galm.data.domain import AttributeDomain
from galm.engine.augment import Augmentation
from galm.engine.batches import BatchOrder, sequential_batches
from galm.engine.inputs import DomainInputs
from galm.engine.placement import compile_module, place_module
from galm.engine.precision import autocast, resolve_precision
from galm.engine.progress import progress
from galm.nn.controller import Controller, ControllerSample
from galm.nn.supernet import Supernet
from galm.runs.atomic import atomic_torch_save
from galm.runs.metrics import MetricsLogger
from galm.search.reinforce import ControllerTrainer, RewardBaseline
from galm.search.rewards import head_rewards
from galm.space.search_space import Architecture, SearchSpace
from galm.training.losses import masked_bce

CHECKPOINT_VERSION = 2


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


class SearchInterrupted(RuntimeError):
    """Raised by a step hook to stop a search (used to test resume)."""


class GalmSearch:
    """The search state of one run: supernet, controller, optimisers, baselines, data order, RNGs."""

    def __init__(
        self,
        domain: AttributeDomain,
        space: SpaceConfig,
        search: SearchConfig,
        controller: ControllerConfig,
        seed: int,
        device: torch.device | str = "cpu",
        source_attributes: Sequence[str] = (),
        execution: ExecutionConfig | None = None,
    ) -> None:
        """`source_attributes` are attributes of a finished search that come first in the index
        space and stay fixed (transfer): they have no labels in `domain` and are never searched."""
        self.domain = domain
        self.space = SearchSpace(space)
        self.config = search
        self.controller_config = controller
        self.seed = seed
        self.device = torch.device(device)
        n_source = len(source_attributes)
        self.attribute_names = [*source_attributes, *domain.attribute_names]
        n = len(self.attribute_names)
        torch.manual_seed(seed)
        self.execution = execution or ExecutionConfig()
        self.supernet = place_module(Supernet(n, space, head_mode=search.head_mode), self.execution, self.device)
        # Only the trunk is compiled: the heads' grouping changes with every sample of architectures.
        compile_module(self.supernet.trunk, self.execution)
        self.controller = Controller(
            n, self.space.decision_sizes, controller.embedding_dim, controller.arm_dim,
            controller.hidden, controller.num_layers, controller.init_range,
        ).to(self.device)
        baseline = RewardBaseline(controller.baseline_decay, controller.per_attribute_baseline, n)
        self.trainer = ControllerTrainer(
            self.controller, controller.lr, baseline, controller.grad_clip, controller.entropy_weight
        )
        self.shared_optimizer = torch.optim.Adam(
            self.supernet.parameters(), lr=search.shared_lr, weight_decay=search.shared_weight_decay
        )
        self.train_order = BatchOrder(domain.split("train"), search.batch_size, seed)
        self.val_order = BatchOrder(domain.split("val"), search.batch_size, seed + 1)
        self.sampling = torch.Generator(device=self.device).manual_seed(seed + 2)
        self.augmentation = Augmentation(search.flip, search.crop_padding)
        self.augment_rng = torch.Generator().manual_seed(seed + 3)
        self.attribute_rng = np.random.default_rng(seed + 4)
        unknown = torch.full((domain.n_images, n_source), float("nan"))
        labels = torch.cat([unknown, torch.as_tensor(domain.labels)], dim=1)
        self.inputs = DomainInputs(domain.images, labels, self.device, self.execution.input_cache)
        self.precision = resolve_precision(search.precision, self.device)
        self.active = np.arange(n_source, n)
        self.frozen = np.arange(n_source)
        self._frozen_rows: dict[str, torch.Tensor] | None = None
        self.episode = 0
        self.shared_step = 0
        self.controller_step = 0
        # Mean reward of every controller update, for curves and steps-to-reach comparisons, and the
        # search seconds (summed over resumed sessions) at which each was measured.
        self.reward_trace: list[float] = []
        self.reward_seconds: list[float] = []
        self._seconds_before = 0.0
        self._clock_start = time.perf_counter()

    # ------------------------------------------------------------------ sampling
    def _attribute_batch(self, count: int) -> torch.Tensor:
        """`count` distinct active attributes drawn uniformly (all of them when count is 0)."""
        if count <= 0 or count >= len(self.active):
            ids = self.active
        else:
            ids = np.sort(self.attribute_rng.choice(self.active, size=count, replace=False))
        return torch.as_tensor(ids, dtype=torch.long, device=self.device)

    def _decode(self, sample: ControllerSample) -> list[Architecture]:
        return [self.space.decode(actions) for actions in sample.actions.tolist()]

    def batch_images(self, batch: np.ndarray, augment: bool) -> torch.Tensor:
        """Network input for image indices `batch`; augmented for phase-1 training only."""
        if augment:
            return self.inputs.images(batch, self.augmentation, self.augment_rng)
        return self.inputs.images(batch)

    def batch_labels(self, batch: np.ndarray, ids: torch.Tensor) -> torch.Tensor:
        """Labels (B, m) of attributes `ids` for image indices `batch` (NaN = unknown)."""
        return self.inputs.labels(batch, ids)

    # ------------------------------------------------------------------ phases
    def shared_step_once(self) -> float:
        """Phase 1: one minibatch of Ω training with freshly sampled heads; returns loss per attribute."""
        ids = self._attribute_batch(self.config.attributes_per_step)
        with torch.no_grad():
            archs = self._decode(self.controller.sample(ids, generator=self.sampling))
        batch = self.train_order.next()
        self.supernet.train()
        with autocast(self.precision, self.device):
            logits = self.supernet(self.batch_images(batch, augment=True), ids, archs)
        loss = masked_bce(logits.float(), self.batch_labels(batch, ids))
        self.shared_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.shared_optimizer.step()
        self._restore_frozen_heads()
        self.shared_step += 1
        return float(loss.detach()) / len(ids)

    @torch.no_grad()
    def freeze_source_heads(self) -> None:
        """Remember the fixed attributes' head weights so that no optimiser step (weight decay
        included) can move them; every head parameter has the attribute as its first dimension."""
        rows = torch.as_tensor(self.frozen, dtype=torch.long, device=self.device)
        self._frozen_rows = {
            name: param[rows].clone() for name, param in self.supernet.heads.named_parameters()
        } if len(rows) else None

    @torch.no_grad()
    def _restore_frozen_heads(self) -> None:
        if self._frozen_rows is None:
            return
        rows = torch.as_tensor(self.frozen, dtype=torch.long, device=self.device)
        for name, param in self.supernet.heads.named_parameters():
            param.index_copy_(0, rows, self._frozen_rows[name])

    @torch.no_grad()
    def head_logits(self, images: torch.Tensor, ids: torch.Tensor, archs: list[Architecture]) -> torch.Tensor:
        """Supernet logits in inference mode (BatchNorm statistics fixed, as the paper evaluates)."""
        self.supernet.eval()
        try:
            with autocast(self.precision, self.device):
                return self.supernet(images, ids, archs).float()
        finally:
            self.supernet.train()

    def controller_step_once(self) -> dict[str, Any]:
        """Phase 2: sample heads, reward them on a validation minibatch, one REINFORCE update."""
        ids = self._attribute_batch(self.config.controller_attributes_per_step)
        sample = self.controller.sample(ids, generator=self.sampling)
        batch = self.val_order.next()
        logits = self.head_logits(self.batch_images(batch, augment=False), ids, self._decode(sample))
        rewards = head_rewards(logits, self.batch_labels(batch, ids), self.config.reward)
        usable = ~torch.isnan(rewards)
        self.controller_step += 1
        if not usable.any():
            return {"probs": sample.probs}
        stats = self.trainer.step(
            ids[usable], (sample.log_prob[usable], sample.entropy[usable]), rewards[usable].to(sample.log_prob)
        )
        self.record_reward(stats["reward"])
        return {**stats, "probs": sample.probs}

    @property
    def elapsed_seconds(self) -> float:
        """Seconds this search has run: since it was built or loaded, plus those of earlier sessions."""
        return self._seconds_before + time.perf_counter() - self._clock_start

    def record_reward(self, reward: float) -> None:
        """Append one controller update's mean reward and the search time it was reached at."""
        self.reward_trace.append(float(reward))
        self.reward_seconds.append(self.elapsed_seconds)

    def trace_record(self) -> dict[str, list[float]]:
        """The reward per controller update and its search time, as written to ``search_trace.json``."""
        return {"reward_trace": list(self.reward_trace), "reward_seconds": list(self.reward_seconds)}

    # ------------------------------------------------------------------ Algorithm 1
    @property
    def steps_per_episode(self) -> tuple[int, int]:
        shared = self.config.shared_steps or self.train_order.batches_per_epoch
        return shared, self.config.controller_steps

    def run(
        self,
        logger: MetricsLogger | None = None,
        checkpoint_path: Path | None = None,
        on_step: Callable[[str, int], None] | None = None,
    ) -> None:
        """Run the remaining episodes; checkpoint after each. `on_step(phase, step)` is a test hook."""
        shared_steps, controller_steps = self.steps_per_episode
        remaining = (self.config.episodes - self.episode) * (shared_steps + controller_steps)
        with progress(total=remaining, desc="search", unit="step") as bar:
            while self.episode < self.config.episodes:
                start = time.perf_counter()
                losses = []
                for _ in range(shared_steps):
                    losses.append(self.shared_step_once())
                    bar.update(1)
                    if on_step is not None:
                        on_step("shared", self.shared_step)
                stats = []
                learning = self.episode >= self.config.warmup_episodes
                for _ in range(controller_steps if learning else 0):
                    stats.append(self.controller_step_once())
                    bar.update(1)
                    if on_step is not None:
                        on_step("controller", self.controller_step)
                if not learning:
                    bar.update(controller_steps)
                self.episode += 1
                summary = self._episode_summary(losses, stats, time.perf_counter() - start)
                bar.set_postfix(
                    episode=self.episode, loss=f"{summary['shared']['loss']:.3f}",
                    reward=f"{summary['controller'].get('reward', float('nan')):.3f}",
                )
                if logger is not None:
                    for phase, values in summary.items():
                        logger.log(self.episode, phase, values)
                if checkpoint_path is not None:
                    self.save_checkpoint(checkpoint_path)

    def _episode_summary(self, losses: list[float], stats: list[dict[str, Any]], seconds: float) -> dict:
        """Per-phase means for the log: shared loss; reward, baseline, entropy, choice probabilities."""
        shared = {"loss": float(np.mean(losses)) if losses else float("nan"), "steps": self.shared_step}
        controller: dict[str, float] = {"steps": self.controller_step, "seconds": seconds}
        updates = [s for s in stats if "reward" in s]
        for key in ("reward", "baseline", "advantage", "entropy", "loss", "grad_norm"):
            if updates:
                controller[key] = float(np.mean([s[key] for s in updates]))
        policy = self.policy_probabilities()
        for decision, choices in policy.items():
            for choice, p in choices.items():
                controller[f"p.{decision}={choice}"] = p
        return {"shared": shared, "controller": controller}

    @torch.no_grad()
    def policy_probabilities(self) -> dict[str, dict[str, float]]:
        """Mean over active attributes of each decision's choice probabilities along the greedy path."""
        ids = torch.as_tensor(self.active, dtype=torch.long, device=self.device)
        sample = self.controller.sample(ids, greedy=True)
        return {
            decision.name: {str(choice): float(p) for choice, p in zip(decision.choices, probs.mean(0).tolist())}
            for decision, probs in zip(self.space.decisions, sample.probs)
        }

    # ------------------------------------------------------------------ derive
    @torch.no_grad()
    def validation_rewards(self, ids: torch.Tensor, archs: list[Architecture], batch_size: int = 256) -> torch.Tensor:
        """Reward (m,) of each (attribute, head) pair on the whole validation split."""
        indices = self.domain.split("val")
        logits = torch.cat([
            self.head_logits(self.batch_images(batch, augment=False), ids, archs).cpu()
            for batch in sequential_batches(indices, batch_size)
        ])
        return head_rewards(logits, self.batch_labels(indices, ids).cpu(), self.config.reward)

    @torch.no_grad()
    def derive(self, method: str | None = None, samples: int | None = None) -> list[DerivedHead]:
        """Final architecture per active attribute: policy argmax, or best of k samples (argmax included)."""
        method = method or self.config.derive
        samples = self.config.derive_samples if samples is None else samples
        ids = torch.as_tensor(self.active, dtype=torch.long, device=self.device)
        candidates = [self.controller.sample(ids, greedy=True).actions]
        if method == "best_of_k":
            generator = torch.Generator(device=self.device).manual_seed(self.seed + 5)
            candidates += [self.controller.sample(ids, generator=generator).actions for _ in range(samples)]
        elif method != "argmax":
            raise ValueError(f"search.derive must be 'argmax' or 'best_of_k', got {method!r}")
        rewards = torch.stack([self.validation_rewards(ids, [self.space.decode(a) for a in c.tolist()])
                               for c in candidates])
        best = torch.nan_to_num(rewards, nan=-1.0).argmax(dim=0)
        actions = torch.stack([candidates[int(k)][j] for j, k in enumerate(best)])
        log_prob, _ = self.controller.evaluate_actions(ids, actions)
        return [
            DerivedHead(
                attribute=self.attribute_names[int(a)],
                architecture=self.space.decode(actions[j].tolist()),
                probability=float(log_prob[j].exp()),
                val_reward=float(rewards[int(best[j]), j]),
            )
            for j, a in enumerate(self.active.tolist())
        ]

    def attribute_similarity(self) -> dict[str, Any]:
        """ARM representations ê_i and their cosine-similarity matrix, with attribute names."""
        with torch.no_grad():
            reps = self.controller.attribute_representations().cpu()
            similarity = self.controller.cosine_similarity_matrix().cpu()
        return {
            "attribute_names": list(self.attribute_names),
            "domain": self.domain.name,
            "searched": self.active.tolist(),
            "representations": reps.tolist(),
            "cosine_similarity": similarity.tolist(),
        }

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "attribute_names": list(self.attribute_names),
            "frozen": self.frozen.tolist(),
            "supernet": self.supernet.state_dict(),
            "controller": self.controller.state_dict(),
            "controller_trainer": self.trainer.state_dict(),
            "shared_optimizer": self.shared_optimizer.state_dict(),
            "counters": {"episode": self.episode, "shared_step": self.shared_step,
                         "controller_step": self.controller_step},
            "active": self.active.tolist(),
            "reward_trace": list(self.reward_trace),
            "reward_seconds": list(self.reward_seconds),
            "elapsed_seconds": self.elapsed_seconds,
            "train_order": self.train_order.state_dict(),
            "val_order": self.val_order.state_dict(),
            "rng": {
                "sampling": self.sampling.get_state(),
                "augment": self.augment_rng.get_state(),
                "attributes": self.attribute_rng.bit_generator.state,
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {state.get('version')} is not {CHECKPOINT_VERSION}")
        if state["attribute_names"] != list(self.attribute_names):
            raise ValueError("the checkpoint was made for other attributes than this domain's")
        self.supernet.load_state_dict(state["supernet"])
        self.controller.load_state_dict(state["controller"])
        self.trainer.load_state_dict(state["controller_trainer"])
        self.shared_optimizer.load_state_dict(state["shared_optimizer"])
        counters = state["counters"]
        self.episode, self.shared_step = counters["episode"], counters["shared_step"]
        self.controller_step = counters["controller_step"]
        self.active = np.asarray(state["active"], dtype=np.int64)
        self.frozen = np.asarray(state.get("frozen", []), dtype=np.int64)
        self.reward_trace = list(state.get("reward_trace", []))
        self.reward_seconds = list(state.get("reward_seconds", []))
        self._seconds_before = float(state.get("elapsed_seconds", 0.0))
        self._clock_start = time.perf_counter()
        self.freeze_source_heads()
        self.train_order.load_state_dict(state["train_order"])
        self.val_order.load_state_dict(state["val_order"])
        rng = state["rng"]
        self.sampling.set_state(rng["sampling"])
        self.augment_rng.set_state(rng["augment"])
        self.attribute_rng.bit_generator.state = rng["attributes"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])

    def save_checkpoint(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(self.state_dict(), path)

    def load_checkpoint(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"no search checkpoint at {path}")
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=False))
