"""REINFORCE for the controller (eqs. 3-5): EMA reward baseline, loss, and one optimiser step."""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from galm.nn.controller import Controller, ControllerSample


class RewardBaseline:
    """Exponential moving average of past rewards, b <- decay * b + (1 - decay) * r (eq. 5).

    One global baseline (attribute ids are then ignored), or one per attribute
    (``per_attribute=True``, ids in ``[0, n_attributes)``). A baseline that has
    seen no reward yet is *uninitialised*: the first reward it sees becomes its value (no decay
    towards an arbitrary zero), and :meth:`value` reports ``default`` for it (zero advantage
    when the current rewards are passed as ``default``, as :class:`ControllerTrainer` does).
    """

    def __init__(self, decay: float = 0.95, per_attribute: bool = False, n_attributes: int = 1) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        if n_attributes < 1:
            raise ValueError(f"n_attributes must be >= 1, got {n_attributes}")
        self.decay = float(decay)
        self.per_attribute = bool(per_attribute)
        self.n_attributes = int(n_attributes)
        size = self.n_attributes if self.per_attribute else 1
        self.values = torch.zeros(size, dtype=torch.float64)
        self.initialised = torch.zeros(size, dtype=torch.bool)

    def _slots(self, attribute_ids: Tensor) -> Tensor:
        """Index into :attr:`values` for each attribute id (all 0 for the global baseline)."""
        ids = torch.as_tensor(attribute_ids, dtype=torch.long).reshape(-1).cpu()
        if not self.per_attribute:
            return torch.zeros_like(ids)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.n_attributes):
            raise ValueError(f"attribute ids must lie in [0, {self.n_attributes}), got {ids.tolist()}")
        return ids

    def value(self, attribute_ids: Tensor, default: Tensor | None = None) -> Tensor:
        """Baseline of each attribute id before any update: (m,) float32.

        Uninitialised baselines report ``default`` (same shape) if given, else 0.
        """
        slots = self._slots(attribute_ids)
        values = self.values[slots].clone()
        ready = self.initialised[slots]
        if default is not None:
            fallback = torch.as_tensor(default, dtype=torch.float64).reshape(-1).cpu()
            if fallback.shape != values.shape:
                raise ValueError(f"default has shape {tuple(fallback.shape)}, expected {tuple(values.shape)}")
            values = torch.where(ready, values, fallback)
        else:
            values = torch.where(ready, values, torch.zeros_like(values))
        return values.float()

    def update(self, attribute_ids: Tensor, rewards: Tensor) -> None:
        """Fold rewards into the EMA one at a time, in batch order (m=1 steps match the paper exactly)."""
        slots = self._slots(attribute_ids)
        rewards = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1).cpu()
        if rewards.shape != slots.shape:
            raise ValueError(f"{rewards.numel()} rewards for {slots.numel()} attribute ids")
        for slot, reward in zip(slots.tolist(), rewards.tolist()):
            if self.initialised[slot]:
                self.values[slot] = self.decay * self.values[slot] + (1.0 - self.decay) * reward
            else:
                self.values[slot] = reward
                self.initialised[slot] = True

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the baseline."""
        return {
            "decay": self.decay,
            "per_attribute": self.per_attribute,
            "n_attributes": self.n_attributes,
            "values": self.values.clone(),
            "initialised": self.initialised.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; the kind (global or per attribute) must match."""
        if bool(state["per_attribute"]) != self.per_attribute:
            raise ValueError("cannot load a global baseline into a per-attribute one, or the reverse")
        self.decay = float(state["decay"])
        self.n_attributes = int(state["n_attributes"])
        self.values = torch.as_tensor(state["values"], dtype=torch.float64).clone()
        self.initialised = torch.as_tensor(state["initialised"], dtype=torch.bool).clone()


def reinforce_loss(
    log_prob: Tensor,
    rewards: Tensor,
    baseline: Tensor,
    entropy: Tensor | None = None,
    entropy_weight: float = 0.0,
) -> Tensor:
    """−mean_k[log π(a_k)·(r_k − b_k)] − entropy_weight·mean(entropy); minimising it ascends eq. 5."""
    rewards = torch.as_tensor(rewards, dtype=log_prob.dtype, device=log_prob.device)
    baseline = torch.as_tensor(baseline, dtype=log_prob.dtype, device=log_prob.device)
    if not log_prob.shape == rewards.shape == baseline.shape:
        raise ValueError(
            f"shapes differ: log_prob {tuple(log_prob.shape)}, rewards {tuple(rewards.shape)}, "
            f"baseline {tuple(baseline.shape)}"
        )
    advantage = (rewards - baseline).detach()
    loss = -(log_prob * advantage).mean()
    if entropy is not None and entropy_weight:
        loss = loss - entropy_weight * entropy.mean()
    return loss


class ControllerTrainer:
    """One REINFORCE update of the controller per call: loss, backward, clip, Adam step, baseline update."""

    def __init__(
        self,
        controller: Controller,
        lr: float = 1e-4,
        baseline: RewardBaseline | None = None,
        grad_clip: float | None = 5.0,
        entropy_weight: float = 0.0,
        parameters: Sequence[nn.Parameter] | None = None,
    ) -> None:
        """`parameters` restricts the update to some of the controller's weights (a transfer's
        embedding warm-up fits only the new embeddings); default: all of them."""
        self.controller = controller
        self.lr = lr
        self.baseline = baseline if baseline is not None else RewardBaseline()
        self.grad_clip = grad_clip
        self.entropy_weight = entropy_weight
        self.parameters = list(parameters) if parameters is not None else list(controller.parameters())
        self.optimizer = torch.optim.Adam(self.parameters, lr=lr)

    def step(
        self,
        attribute_ids: Tensor,
        sample_or_logprob_entropy: ControllerSample | tuple[Tensor, Tensor],
        rewards: Tensor | Sequence[float],
    ) -> dict[str, float]:
        """Update the controller on rewards of sampled actions; returns floats for logging.

        ``grad_norm`` is the global gradient norm before clipping.
        """
        if isinstance(sample_or_logprob_entropy, ControllerSample):
            log_prob, entropy = sample_or_logprob_entropy.log_prob, sample_or_logprob_entropy.entropy
        else:
            log_prob, entropy = sample_or_logprob_entropy
        rewards = torch.as_tensor(rewards, dtype=log_prob.dtype, device=log_prob.device).reshape(-1)
        baseline = self.baseline.value(attribute_ids, default=rewards).to(log_prob)
        loss = reinforce_loss(log_prob, rewards, baseline, entropy, self.entropy_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.grad_clip if self.grad_clip is not None else float("inf")
        grad_norm = nn.utils.clip_grad_norm_(self.parameters, max_norm)
        self.optimizer.step()
        self.baseline.update(attribute_ids, rewards.detach())
        return {
            "loss": float(loss.detach()),
            "reward": float(rewards.mean()),
            "baseline": float(baseline.mean()),
            "advantage": float((rewards - baseline).mean()),
            "entropy": float(entropy.detach().mean()),
            "grad_norm": float(grad_norm),
        }

    def state_dict(self) -> dict[str, Any]:
        """A copy of the optimiser and baseline state (the controller's weights are in its own state_dict)."""
        return {"optimizer": copy.deepcopy(self.optimizer.state_dict()), "baseline": self.baseline.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline.load_state_dict(state["baseline"])
