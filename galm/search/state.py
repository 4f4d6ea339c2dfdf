"""The state of one search: supernet Ω, controller, optimisers, baselines, data order, RNGs, and
its checkpoint.

Everything needed to continue lives in one checkpoint written atomically at the end of every
episode, so a stopped search resumes to the same result. The phase steps that change the state
are in :mod:`galm.search.phases`, the choice of the final heads in :mod:`galm.search.derive`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from galm.config.schema import (
    ControllerConfig,
    ExecutionConfig,
    SearchConfig,
    SpaceConfig,
)
from galm.config.typed import ConfigError
from galm.data.domain import AttributeDomain
from galm.data.info import unlearnable_attributes
from galm.engine import distributed
from galm.engine.augment import Augmentation
from galm.engine.batches import BatchOrder
from galm.engine.inputs import DomainInputs
from galm.engine.placement import compile_module, place_module
from galm.engine.precision import autocast, resolve_precision
from galm.nn.batch_norm import share_batch_statistics
from galm.nn.controller import Controller, ControllerSample
from galm.nn.supernet import Supernet
from galm.runs.atomic import atomic_torch_save
from galm.runs.torch_files import load_plain
from galm.search.reinforce import ControllerTrainer, RewardBaseline
from galm.space import Architecture, SearchSpace

# 3: RNG states as tensors and plain values only, so the checkpoint loads with weights_only=True.
CHECKPOINT_VERSION = 3


class SearchState:
    """The components of one search run and their checkpoint."""

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
            attribute_conditioned=controller.attribute_conditioned,
        ).to(self.device)
        with torch.no_grad():  # the policy's first choices, to see later how far the search moved it
            self.initial_greedy = self.controller.sample(
                torch.arange(n, device=self.device), greedy=True).actions.cpu()
        baseline = RewardBaseline(controller.baseline_decay, controller.per_attribute_baseline, n)
        self.trainer = ControllerTrainer(
            self.controller, controller.lr, baseline, controller.grad_clip, controller.entropy_weight
        )
        self.shared_optimizer = torch.optim.Adam(
            self.supernet.parameters(), lr=search.shared_lr, weight_decay=search.shared_weight_decay
        )
        self.train_order = BatchOrder(domain.split("train"), search.batch_size, seed)
        # Phase-2 rewards are measured on minibatches of this order (reward_batch_size images).
        self.val_order = BatchOrder(domain.split("val"), search.reward_batch_size or search.batch_size, seed + 1)
        self.sampling = torch.Generator(device=self.device).manual_seed(seed + 2)
        self.augmentation = Augmentation(search.flip, search.crop_padding)
        self.augment_rng = torch.Generator().manual_seed(seed + 3)
        self.attribute_rng = np.random.default_rng(seed + 4)
        unknown = torch.full((domain.n_images, n_source), float("nan"))
        labels = torch.cat([unknown, torch.as_tensor(domain.labels)], dim=1)
        self.inputs = DomainInputs(domain.images, labels, self.device, self.execution.input_cache)
        self.precision = resolve_precision(search.precision, self.device)
        # Under torchrun: this rank's share of every minibatch, BatchNorm moments over all shards.
        self.parallel = distributed.current()
        if self.parallel.is_parallel:
            share_batch_statistics(self.supernet, self.parallel.moments)
            for order in (self.train_order, self.val_order):  # fails now, not at the first step
                self.parallel.shard(order.batch_size)
        # Attributes the training split cannot teach are not searched (name -> reason).
        self.skipped = unlearnable_attributes(domain, search.min_positives)
        for anchor in search.derive_anchors:  # fails now, not after the search
            try:
                self.space.named(anchor)
            except ValueError as error:
                raise ConfigError(f"search.derive_anchors: {anchor!r} is not a head of this space ({error})") from None
        # derive=networks: every candidate network's score and which one was kept (search_quality.json).
        self.network_choice: dict[str, Any] | None = None
        searched = [n_source + j for j, name in enumerate(domain.attribute_names) if name not in self.skipped]
        if not searched:
            raise ValueError(
                f"no attribute of domain {domain.name!r} can be learned from its training split "
                f"(search.min_positives={search.min_positives}): {dict(list(self.skipped.items())[:3])}"
            )
        self.active = np.asarray(searched, dtype=np.int64)
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

    # ------------------------------------------------------------------ what the steps read
    def attribute_batch(self, count: int) -> torch.Tensor:
        """`count` distinct active attributes drawn uniformly (all of them when count is 0)."""
        if count <= 0 or count >= len(self.active):
            ids = self.active
        else:
            ids = np.sort(self.attribute_rng.choice(self.active, size=count, replace=False))
        return torch.as_tensor(ids, dtype=torch.long, device=self.device)

    def active_ids(self) -> torch.Tensor:
        """Every searched attribute's index, on the device."""
        return torch.as_tensor(self.active, dtype=torch.long, device=self.device)

    def decode(self, sample: ControllerSample) -> list[Architecture]:
        """The architecture of each attribute of a controller sample."""
        return [self.space.decode(actions) for actions in sample.actions.tolist()]

    def batch_images(self, batch: np.ndarray, augment: bool, rows: slice | None = None) -> torch.Tensor:
        """Network input for image indices `batch` (only positions `rows`: this rank's shard);
        augmented for phase-1 training only."""
        if augment:
            return self.inputs.images(batch, self.augmentation, self.augment_rng, rows)
        return self.inputs.images(batch if rows is None else batch[rows])

    def batch_labels(self, batch: np.ndarray, ids: torch.Tensor) -> torch.Tensor:
        """Labels (B, m) of attributes `ids` for image indices `batch` (NaN = unknown)."""
        return self.inputs.labels(batch, ids)

    @torch.no_grad()
    def head_logits(self, images: torch.Tensor, ids: torch.Tensor, archs: list[Architecture]) -> torch.Tensor:
        """Supernet logits in inference mode (BatchNorm statistics fixed, as the paper evaluates)."""
        batch_statistics = self.config.reward_bn == "batch"
        self.supernet.eval()
        if batch_statistics:
            self.supernet.use_batch_statistics(True)
        try:
            with autocast(self.precision, self.device):
                return self.supernet(images, ids, archs).float()
        finally:
            if batch_statistics:
                self.supernet.use_batch_statistics(False)
            self.supernet.train()

    @property
    def steps_per_episode(self) -> tuple[int, int]:
        """Phase-1 minibatches and phase-2 controller updates of one episode."""
        shared = self.config.shared_steps or self.train_order.batches_per_epoch
        return shared, self.config.controller_steps

    # ------------------------------------------------------------------ fixed (source) heads
    @torch.no_grad()
    def freeze_source_heads(self) -> None:
        """Remember the fixed attributes' head weights so that no optimiser step (weight decay
        included) can move them; every head parameter has the attribute as its first dimension."""
        rows = torch.as_tensor(self.frozen, dtype=torch.long, device=self.device)
        self._frozen_rows = {
            name: param[rows].clone() for name, param in self.supernet.heads.named_parameters()
        } if len(rows) else None

    @torch.no_grad()
    def restore_frozen_heads(self) -> None:
        """Put the fixed attributes' head weights back after an optimiser step."""
        if self._frozen_rows is None:
            return
        rows = torch.as_tensor(self.frozen, dtype=torch.long, device=self.device)
        for name, param in self.supernet.heads.named_parameters():
            param.index_copy_(0, rows, self._frozen_rows[name])

    # ------------------------------------------------------------------ reward trace
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
            "initial_greedy": self.initial_greedy,
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
                "numpy": _numpy_global_state(),
                "torch": torch.get_rng_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
            version = state.get("version") if isinstance(state, dict) else None
            raise ValueError(
                f"search checkpoint version {version!r} is not {CHECKPOINT_VERSION} (written by another galm "
                "release); start the search again"
            )
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
        self.initial_greedy = state["initial_greedy"]
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
        _set_numpy_global_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])

    def save_checkpoint(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(self.state_dict(), path)

    def load_checkpoint(self, path: Path) -> None:
        """Continue from a checkpoint file, read as untrusted data (tensors and plain values only)."""
        try:
            self.load_state_dict(load_plain(path, "search checkpoint"))
        except (KeyError, TypeError, RuntimeError) as error:
            raise ValueError(f"{path} does not fit this search (other settings or a damaged file): {error}") from error


def _numpy_global_state() -> dict[str, Any]:
    """NumPy's global RNG state as plain values (its key array as a list of ints)."""
    state = np.random.get_state(legacy=False)
    return {**state, "state": {"key": state["state"]["key"].tolist(), "pos": int(state["state"]["pos"])}}


def _set_numpy_global_state(state: dict[str, Any]) -> None:
    key = np.asarray(state["state"]["key"], dtype=np.uint32)
    np.random.set_state({**state, "state": {"key": key, "pos": int(state["state"]["pos"])}})
