"""The GALM controller: ARM (attribute embeddings, eq. 1) conditioning MNAS (a 2-layer LSTM policy).

The controller sees only the number of choices of each decision, in order. For a batch of
attribute ids it emits one action per decision, one decision after another, every attribute of
the batch in the same tensor operations.

How the ARM output ê_i = W_θ e_i conditions the LSTM (both paths carry gradient to ê_i):

* **start input**: the LSTM's first input is ``start_proj(ê_i)`` (a linear map from ``arm_dim``
  to the LSTM input size, which equals ``hidden``);
* **initial state**: the hidden state of every layer starts at ``tanh(state_proj(ê_i))``
  (one linear map to ``num_layers * hidden``; tanh keeps it in the range an LSTM's ``h`` takes);
  every cell state starts at zero.

After decision t, the embedding of the chosen action (one table per decision) is the next input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class ControllerSample:
    """Actions drawn for a batch of attributes, with what REINFORCE and logging need."""

    actions: Tensor  # (m, T) long: one action index per decision
    log_prob: Tensor  # (m,) log-probability of the sequence, summed over decisions (carries gradient)
    entropy: Tensor  # (m,) entropy of each decision's distribution, summed over decisions (carries gradient)
    probs: list[Tensor]  # T tensors (m, size_t): each decision's choice probabilities, detached, for logging


class Controller(nn.Module):
    """ARM + MNAS: samples one head architecture per attribute, conditioned on the attribute's embedding.

    Args:
        n_attributes: number of attributes N (rows of the embedding table).
        decision_sizes: number of choices of each decision, in the order they are emitted.
        embedding_dim: size of the raw attribute embeddings e_i.
        arm_dim: output size of the ARM fully connected layer W_θ (50 in the paper).
        hidden: LSTM hidden size (100 in the paper); also the LSTM input size.
        num_layers: LSTM layers (2 in the paper).
        init_range: every weight starts uniform in [-init_range, init_range], so the first
            policy is close to uniform over actions (as ENAS).
    """

    def __init__(
        self,
        n_attributes: int,
        decision_sizes: Sequence[int],
        embedding_dim: int = 32,
        arm_dim: int = 50,
        hidden: int = 100,
        num_layers: int = 2,
        init_range: float = 0.1,
        attribute_conditioned: bool = True,
    ) -> None:
        super().__init__()
        if n_attributes < 1:
            raise ValueError(f"n_attributes must be >= 1, got {n_attributes}")
        if not decision_sizes or any(int(s) < 1 for s in decision_sizes):
            raise ValueError(f"decision_sizes must be a non-empty list of positive sizes, got {decision_sizes}")
        self.n_attributes = int(n_attributes)
        self.decision_sizes: tuple[int, ...] = tuple(int(s) for s in decision_sizes)
        self.embedding_dim = embedding_dim
        self.arm_dim = arm_dim
        self.hidden = hidden
        self.num_layers = num_layers
        self.init_range = init_range
        self.attribute_conditioned = bool(attribute_conditioned)

        # ARM: e_i (learnable, random) and W_θ (eq. 1 has no bias, so neither does this layer).
        self.attribute_embeddings = nn.Parameter(torch.empty(self.n_attributes, embedding_dim))
        self.arm = nn.Linear(embedding_dim, arm_dim, bias=False)
        # Conditioning of the LSTM on ê_i (see the module docstring).
        self.start_proj = nn.Linear(arm_dim, hidden)
        self.state_proj = nn.Linear(arm_dim, num_layers * hidden)
        # MNAS: the LSTM, one softmax head per decision, one action-embedding table per fed-back decision.
        self.lstm = nn.LSTM(hidden, hidden, num_layers=num_layers)
        self.heads = nn.ModuleList(nn.Linear(hidden, size) for size in self.decision_sizes)
        self.action_embeddings = nn.ModuleList(nn.Embedding(size, hidden) for size in self.decision_sizes[:-1])
        self.reset_parameters()

    @property
    def num_decisions(self) -> int:
        """T, the number of decisions per attribute."""
        return len(self.decision_sizes)

    def reset_parameters(self) -> None:
        """Uniform initialisation of every weight, giving an almost uniform first policy."""
        for param in self.parameters():
            nn.init.uniform_(param, -self.init_range, self.init_range)

    # ----------------------------------------------------------------- ARM
    def attribute_representations(self, attribute_ids: Tensor | None = None) -> Tensor:
        """ê_i = W_θ e_i (eq. 1) for the given attributes, or all of them: (m or N, arm_dim).

        Without attribute conditioning every attribute reads the first embedding, so one shared
        embedding conditions the policy and alone receives gradient.
        """
        if attribute_ids is None:
            if self.attribute_conditioned:
                return self.arm(self.attribute_embeddings)
            attribute_ids = torch.arange(self.n_attributes, device=self.attribute_embeddings.device)
        ids = self._check_ids(attribute_ids)
        if not self.attribute_conditioned:
            ids = torch.zeros_like(ids)
        return self.arm(self.attribute_embeddings[ids])

    def cosine_similarity_matrix(self) -> Tensor:
        """Cosine similarity between the ARM representations of all attributes: (N, N)."""
        reps = F.normalize(self.attribute_representations(), dim=1)
        return reps @ reps.t()

    # ---------------------------------------------------------------- MNAS
    def sample(
        self,
        attribute_ids: Tensor,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> ControllerSample:
        """Draw (or, if ``greedy``, argmax-decode) one action sequence per attribute id, in one batch."""
        return self._rollout(attribute_ids, actions=None, greedy=greedy, generator=generator)

    def evaluate_actions(self, attribute_ids: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced log-probability and entropy (both (m,)) of given action sequences (m, T)."""
        actions = torch.as_tensor(actions, dtype=torch.long, device=self.attribute_embeddings.device)
        result = self._rollout(attribute_ids, actions=actions, greedy=False, generator=None)
        return result.log_prob, result.entropy

    def initial_input_and_state(self, attribute_ids: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The LSTM's first input (m, hidden) and initial (h, c), each (num_layers, m, hidden), from ê."""
        reps = self.attribute_representations(attribute_ids)
        m = reps.shape[0]
        h0 = torch.tanh(self.state_proj(reps)).view(m, self.num_layers, self.hidden).transpose(0, 1).contiguous()
        return self.start_proj(reps), (h0, torch.zeros_like(h0))

    def _rollout(
        self,
        attribute_ids: Tensor,
        actions: Tensor | None,
        greedy: bool,
        generator: torch.Generator | None,
    ) -> ControllerSample:
        """Run the LSTM over the T decisions, sampling actions or teacher-forcing the given ones."""
        ids = self._check_ids(attribute_ids)
        if actions is not None:
            self._check_actions(actions, ids.shape[0])
        inputs, state = self.initial_input_and_state(ids)
        chosen, log_probs, entropies, probs = [], [], [], []
        for t, head in enumerate(self.heads):
            output, state = self.lstm(inputs.unsqueeze(0), state)
            logp = F.log_softmax(head(output[0]), dim=-1)
            p = logp.exp()
            if actions is not None:
                action = actions[:, t]
            elif greedy:
                action = p.argmax(dim=-1)
            else:
                action = torch.multinomial(p.detach(), 1, generator=generator).squeeze(1)
            chosen.append(action)
            log_probs.append(logp.gather(1, action.unsqueeze(1)).squeeze(1))
            entropies.append(-(p * logp).sum(dim=-1))
            probs.append(p.detach())
            if t + 1 < self.num_decisions:
                inputs = self.action_embeddings[t](action)
        return ControllerSample(
            actions=torch.stack(chosen, dim=1),
            log_prob=torch.stack(log_probs, dim=1).sum(dim=1),
            entropy=torch.stack(entropies, dim=1).sum(dim=1),
            probs=probs,
        )

    def _check_ids(self, attribute_ids: Tensor) -> Tensor:
        """Attribute ids as a 1-D long tensor on the controller's device, range-checked."""
        ids = torch.as_tensor(attribute_ids, dtype=torch.long, device=self.attribute_embeddings.device)
        if ids.dim() != 1 or ids.numel() == 0:
            raise ValueError(f"attribute_ids must be a non-empty 1-D tensor, got shape {tuple(ids.shape)}")
        if int(ids.min()) < 0 or int(ids.max()) >= self.n_attributes:
            raise ValueError(f"attribute ids must lie in [0, {self.n_attributes}), got {ids.tolist()}")
        return ids

    def _check_actions(self, actions: Tensor, m: int) -> None:
        """Reject action tensors of the wrong shape or with out-of-range choices."""
        if tuple(actions.shape) != (m, self.num_decisions):
            raise ValueError(f"actions must have shape ({m}, {self.num_decisions}), got {tuple(actions.shape)}")
        sizes = torch.tensor(self.decision_sizes, device=actions.device)
        if bool(((actions < 0) | (actions >= sizes)).any()):
            raise ValueError(f"actions out of range for decision sizes {self.decision_sizes}")
