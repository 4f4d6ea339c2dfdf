"""Generalisation (section 3.5.2): reuse a finished search for attributes it has never seen.

The target's attributes are appended after the source attributes in one index space, and only
the new attributes are searched, on the target domain's data. The controller and the supernet
start from every source weight. What stays fixed: the source attributes' head weights (restored
after every step) and their embeddings e_i (never sampled, so they get no gradient). What keeps
training on the target: the shared trunk, the ARM layer W_θ, the LSTM and its output layers. So the
source attributes' ARM representations ê_i = W_θ e_i and their policies move with the controller,
while their heads and embeddings do not.

How a new attribute finds the searched attribute it starts from (the paper leaves this open),
chosen by ``transfer.init``. Whichever is chosen, its embedding (hence its architecture under the
policy) and its head weights initialise the new attribute (Algorithm 1, lines 7-9), so the ARM
space reflects the choice afterwards. A new attribute whose name was part of the source search
starts from itself.

``heads`` (default): every searched attribute's head (its greedy architecture under the source
policy, with the source weights) scores the target's training images; a new attribute's
similarity to a searched one is 2 AUC - 1 of those scores against the new attribute's labels, and
the searched attribute whose trained predictor already ranks the new attribute best is taken. It
needs only the source run and the target's training labels (no source images, no reward steps).
On the synthetic benchmark with ``shared_cues=same`` it finds a planted partner for a third to a
half of the new attributes (chance: 10-17%) and reaches the scratch run's reward in a third of its
steps; a random initialisation is about as fast (benchmarks/README.md).

``warmup``, a short *embedding warm-up*: the new heads are trained on the target's training
images for a few steps (sampled from the source controller), then only the new attributes'
embeddings e_i are fitted by REINFORCE against validation rewards with the rest of the
controller frozen. The ARM output of the fitted embedding says which heads pay off for the new
attribute, in the same space as the searched attributes' outputs; the most cosine-similar
searched attribute is taken. This is the paper's wording taken literally, but a few validation
batches with untrained new heads make a noisy signal: on the benchmark its choice is no better
than chance, and its 40 updates count against the budget.

``probe``: a linear probe per attribute on pooled features of the shared trunk (source attributes on
source training images, new ones on target training images; :mod:`galm.search.probe`); the
searched attribute whose probe leans on the same trunk channels is taken. It needs the source
domain's images, and on the benchmark it found planted partners no better than chance.

``random`` skips all of this (a control).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from galm.config.schema import GalmConfig, TransferConfig
from galm.config.typed import ConfigError
from galm.data.domain import AttributeDomain
from galm.engine.batches import sequential_batches
from galm.runs.atomic import read_json
from galm.runs.directory import RunDirectory
from galm.runs.torch_files import load_plain
from galm.search.phases import controller_step, shared_step
from galm.search.probe import domain_probe_weights, probe_images, probe_similarity
from galm.search.reinforce import ControllerTrainer
from galm.search.state import CHECKPOINT_VERSION, SearchState
from galm.training.evaluate import pairwise_auc


@dataclass
class NearestSource:
    """The searched attribute a new one starts from."""

    attribute: str
    source: str
    similarity: float

    def to_json(self) -> dict[str, Any]:
        return {"nearest_source": self.source, "similarity": self.similarity}


def load_source_state(search: SearchState, state: dict[str, Any]) -> None:
    """Copy a finished search's weights into the leading (source) rows of a larger search."""
    n_source = len(search.frozen)
    if list(state["attribute_names"]) != search.attribute_names[:n_source]:
        raise ValueError("the source checkpoint's attributes differ from the transfer's source attributes")
    supernet = search.supernet.state_dict()
    for key, value in state["supernet"].items():
        if key.startswith("heads."):
            supernet[key][:n_source] = value
        else:
            supernet[key] = value
    search.supernet.load_state_dict(supernet)
    controller = search.controller.state_dict()
    for key, value in state["controller"].items():
        if key == "attribute_embeddings":
            controller[key][:n_source] = value
        else:
            controller[key] = value
    search.controller.load_state_dict(controller)
    baseline = search.trainer.baseline
    source_baseline = state["controller_trainer"]["baseline"]
    if baseline.per_attribute and source_baseline["n_attributes"] == n_source:
        baseline.values[:n_source] = torch.as_tensor(source_baseline["values"], dtype=baseline.values.dtype)
        baseline.initialised[:n_source] = torch.as_tensor(source_baseline["initialised"])
    search.freeze_source_heads()


def warm_up_embeddings(search: SearchState, config: TransferConfig) -> None:
    """Fit only the new attributes' embeddings against validation rewards (rest of the controller
    frozen): phase-1 steps for the new heads, then phase-2 steps whose update moves the embeddings."""
    for _ in range(config.warmup_shared_steps):
        shared_step(search)
    controller = search.controller
    frozen = [p for name, p in controller.named_parameters() if name != "attribute_embeddings"]
    trainer = ControllerTrainer(
        controller, config.warmup_lr, search.trainer.baseline, grad_clip=None, entropy_weight=0.0,
        parameters=[controller.attribute_embeddings],
    )
    ids = search.active_ids()
    for param in frozen:
        param.requires_grad_(False)
    try:
        for _ in range(config.warmup_controller_steps):
            controller_step(search, ids, trainer)
    finally:
        for param in frozen:
            param.requires_grad_(True)


@torch.no_grad()
def nearest_sources(search: SearchState, similarity: torch.Tensor | None = None) -> list[int]:
    """For each new attribute, the index of the most similar searched attribute.

    ``similarity`` (n_new, n_searched) defaults to cosine similarity in ARM space. A new attribute
    that has the name of a searched one is that one.
    """
    n_source = len(search.frozen)
    if similarity is None:
        similarity = search.controller.cosine_similarity_matrix()[n_source:, :n_source]
    names = search.attribute_names
    chosen = []
    for row, new in enumerate(search.active.tolist()):
        same = [j for j in range(n_source) if names[j] == names[new]]
        chosen.append(same[0] if same else int(similarity[row].argmax()))
    return chosen


@torch.no_grad()
def initialise_from_sources(search: SearchState, sources: list[int], copy_head_weights: bool) -> list[float]:
    """Copy each chosen source attribute's embedding (and head weights) to its new attribute.

    Returns the cosine similarity, before copying, between each new attribute and its source.
    """
    new = torch.as_tensor(search.active, dtype=torch.long, device=search.device)
    src = torch.as_tensor(sources, dtype=torch.long, device=search.device)
    similarity = search.controller.cosine_similarity_matrix()[new, src].tolist()
    embeddings = search.controller.attribute_embeddings
    embeddings.index_copy_(0, new, embeddings[src])
    if copy_head_weights:
        for param in search.supernet.heads.parameters():
            param.index_copy_(0, new, param[src])
        for buffer in search.supernet.heads.buffers():
            buffer.index_copy_(0, new, buffer[src])
    baseline = search.trainer.baseline
    if baseline.per_attribute:
        baseline.values[new.cpu()] = baseline.values[src.cpu()]
        baseline.initialised[new.cpu()] = baseline.initialised[src.cpu()]
    return similarity


def source_checkpoint(source: RunDirectory) -> dict[str, Any]:
    """The finished search state of the source run, read as untrusted data."""
    path = source.search_checkpoint_path
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the source must be a finished `galm search` run")
    state = load_plain(path, "search checkpoint")
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a search checkpoint of this galm release (version {CHECKPOINT_VERSION})")
    return state


CONTROLLER_SHAPE_KEYS = ("embedding_dim", "arm_dim", "hidden", "num_layers", "attribute_conditioned")


def check_transfer_config(source: RunDirectory, source_config: GalmConfig, target_config: GalmConfig) -> None:
    """Refuse target settings that the source's weights fix: the space and the controller's shape.
    Other controller settings (lr, baseline, entropy bonus, clipping) are the target's own."""
    if source_config.space != target_config.space:
        raise ConfigError(
            f"the target's space settings differ from the source run {source.path}'s; "
            "transfer needs the same search space (use --set space.* to match)"
        )
    changed = [key for key in CONTROLLER_SHAPE_KEYS
               if getattr(source_config.controller, key) != getattr(target_config.controller, key)]
    if changed:
        raise ConfigError(
            f"controller.{changed[0]} differs from the source run {source.path}'s "
            f"({getattr(source_config.controller, changed[0])!r}); the source's controller weights fix "
            f"{', '.join('controller.' + k for k in CONTROLLER_SHAPE_KEYS)}"
        )


def build_transfer(
    source: RunDirectory, source_config: GalmConfig, target_config: GalmConfig,
    target_domain: AttributeDomain, device: torch.device,
) -> SearchState:
    """A search over source + target attributes on the target's data, with the source weights loaded."""
    check_transfer_config(source, source_config, target_config)
    state = source_checkpoint(source)
    search = SearchState(
        target_domain, target_config.space, target_config.search, target_config.controller,
        target_config.seed, device, source_attributes=state["attribute_names"],
        execution=target_config.execution,
    )
    load_source_state(search, state)
    return search


def probe_similarity_matrix(search: SearchState, source_domain: AttributeDomain) -> torch.Tensor:
    """(n_new, n_searched) similarity of trunk-feature probes (new on target images, searched on source images)."""
    n_source = len(search.frozen)
    names = search.attribute_names
    if list(source_domain.attribute_names) != names[:n_source]:
        raise ValueError("the source domain's attributes differ from the transfer's source attributes")
    trunk = search.supernet.trunk
    searched = domain_probe_weights(trunk, source_domain, search.device, search.seed)
    new = domain_probe_weights(trunk, search.domain, search.device, search.seed)
    return torch.as_tensor(probe_similarity(new, searched))


@torch.no_grad()
def head_agreement_matrix(search: SearchState) -> torch.Tensor:
    """(n_new, n_searched) 2 AUC - 1 of each searched attribute's head (greedy architecture, source
    weights, inference mode) on the target's training images against each new attribute's labels.

    A pair without both classes among the labelled images scores 0.
    """
    n_source = len(search.frozen)
    ids = torch.arange(n_source, device=search.device)
    archs = search.decode(search.controller.sample(ids, greedy=True))
    indices = probe_images(search.domain, search.seed)
    scores = torch.cat([
        search.head_logits(search.batch_images(batch, augment=False), ids, archs).cpu()
        for batch in sequential_batches(indices, search.config.batch_size)
    ])
    auc = pairwise_auc(scores.numpy(), np.asarray(search.domain.labels[indices], dtype=np.float64))
    return torch.as_tensor(np.nan_to_num(2.0 * auc - 1.0, nan=0.0))


def start_transfer(
    search: SearchState, config: TransferConfig, source_domain: AttributeDomain | None = None
) -> list[NearestSource]:
    """Initialise every new attribute (nearest searched attribute by warm-up or probes, or random).

    ``source_domain`` (the source search's data) is needed by ``init="probe"`` only.
    """
    if config.init == "random":
        return []
    if config.init == "warmup":
        warm_up_embeddings(search, config)
        sources = nearest_sources(search)
        similarity = initialise_from_sources(search, sources, config.copy_head_weights)
    elif config.init in ("heads", "probe"):
        if config.init == "probe" and source_domain is None:
            raise ValueError("transfer.init='probe' needs the source domain's data")
        matrix = (head_agreement_matrix(search) if config.init == "heads"
                  else probe_similarity_matrix(search, source_domain))
        sources = nearest_sources(search, matrix)
        similarity = [float(matrix[row, src]) for row, src in enumerate(sources)]
        initialise_from_sources(search, sources, config.copy_head_weights)
    else:
        raise ValueError(f"transfer.init must be 'warmup', 'heads', 'probe' or 'random', got {config.init!r}")
    names = search.attribute_names
    return [
        NearestSource(names[new], names[src], float(sim))
        for new, src, sim in zip(search.active.tolist(), sources, similarity)
    ]


def steps_to_reach(trace: list[float], target: float, window: int = 10) -> int | None:
    """First controller step at which the moving-average reward reaches `target` (None if never)."""
    if not trace:
        return None
    values = np.asarray(trace, dtype=float)
    kernel = np.ones(min(window, len(values))) / min(window, len(values))
    smoothed = np.convolve(values, kernel, mode="valid")
    hits = np.nonzero(smoothed >= target)[0]
    return int(hits[0] + len(kernel)) if len(hits) else None


def seconds_to_reach(trace: dict[str, list[float]], target: float, window: int = 10) -> float | None:
    """Search seconds at the controller update where ``steps_to_reach`` is met (None if never or
    when the trace has no times)."""
    step = steps_to_reach(trace["reward_trace"], target, window)
    seconds = trace.get("reward_seconds", [])
    return seconds[step - 1] if step is not None and len(seconds) >= step else None


def final_reward(trace: list[float], window: int = 10) -> float:
    """Mean reward of the last `window` controller updates."""
    return float(np.mean(trace[-window:])) if trace else float("nan")


def read_transfer_record(run: RunDirectory) -> dict[str, Any]:
    """``transfer.json`` of a transfer run."""
    if not run.is_transfer():
        raise FileNotFoundError(f"{run.transfer_path} is missing: {run.path} is not a `galm transfer` run")
    return read_json(run.transfer_path)
