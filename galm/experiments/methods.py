"""The methods of a grid (section 4.2.3 of the paper, adapted to what galm can run): one runner per
method name, filling its cell's run directory and returning the cell's results record.

* ``galm``: semantic: search + retrain on the domain; transfer: search on the source (in
  ``source/`` inside the cell), transfer to the target, retrain on the target.
* ``random_search``: weight-sharing random search with GALM's budget. A supernet is trained exactly
  as in GALM's phase 1 (same shared steps, same episodes) but with heads drawn uniformly (the
  controller's output layers are zeroed, so every choice has equal probability). Then K random
  architecture sets (one head per attribute) are each scored on one validation minibatch with the
  shared weights, as GALM's controller updates are, K = GALM's controller evaluations per
  attribute (``controller_steps × attributes per step × learning episodes / attributes``, at least
  1); per attribute the ``1 + derive_samples`` best are rescored on the whole validation split (as
  GALM's derive) and the best kept; the network is retrained like GALM's. Same number of
  evaluations, same scoring data, no learned policy.
* ``hand_designed``: one fixed head (``hand_designed`` in the spec) for every attribute, trained with
  the retrain budget (train+val) on the scenario's (target) domain.
* ``single_task``: GALM's search with an attribute-agnostic controller
  (``controller.attribute_conditioned=false``: one shared embedding conditions every attribute's
  policy) and one shared reward baseline, both recorded in the cell's ``config.yaml``; derive and
  retrain as GALM. This is single-task ENAS applied to every attribute.
* ``dap``, ``iap``, ``ale``, ``hap``, ``umf``, ``mdg``: classical baselines on Conv-3 features of the
  trained trunk of the ``features_from`` cell (``hand_designed`` by default) of the same scenario
  and seed, fitted on train+val and scored on the test classes.
* ``afs`` (transfer only): the same features, plus that trunk's features of the source domain's
  images, on which the source attribute classifiers AFS attends over are trained (train+val).
* ``ft`` (transfer only): a hand-designed network trained on the source (train+val), its trunk
  copied into a new network for the target and fine-tuned with new heads (retrain budget).
* ``fmt``, ``amt``: the deep multi-task baselines (:mod:`galm.experiments.deep_methods`), on the
  scenario's (target) domain with the retrain budget and the ``hand_designed`` layer shapes.

In transfer scenarios every method but ``galm``, ``ft`` and ``afs`` sees only the target domain. Each
runner opens every domain it needs once.

Architecture evaluations (section 4.7's efficiency) count every (attribute, head) pair scored on
validation data: controller updates, transfer warm-up updates and derive candidates for searches;
random candidates for random search; 0 for fixed architectures and baselines.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from galm.config import GalmConfig
from galm.config.typed import to_mapping
from galm.data.domain import AttributeDomain
from galm.data.feature_set import FeatureSet
from galm.data.info import unlearnable_attributes
from galm.data.sources import config_domain
from galm.experiments.deep_methods import run_amt, run_fmt
from galm.experiments.spec import Cell, cell_config, search_evaluations
from galm.nn.network import FixedNetwork
from galm.runs.architectures import architectures_record, resolve_architectures
from galm.runs.atomic import write_json
from galm.runs.directory import RunDirectory
from galm.runs.experiment_dir import cell_key_dir, is_done
from galm.runs.metrics import MetricsLogger
from galm.runs.model_file import load_model
from galm.search.derive import best_candidates
from galm.search.jobs import build_search, retrain_run, search_run, transfer_run
from galm.search.phases import minibatch_rewards, run_search
from galm.space import Architecture, SearchSpace
from galm.training.evaluate import AucReport
from galm.training.fixed import train_and_evaluate


@dataclass
class CellContext:
    """What a cell runner gets: its cell, its directory (empty, created) and the device."""

    cell: Cell
    path: Path
    device: torch.device
    out: Path

    def config(self, domain: str | None = None) -> GalmConfig:
        return cell_config(self.cell, domain)

    def run_directory(self, config: GalmConfig, path: Path | None = None) -> RunDirectory:
        """The cell's run directory (or one inside it), created once with `config`."""
        return RunDirectory.create(path or self.path, to_mapping(config), exist_ok=path is None)


def _run_galm(ctx: CellContext) -> dict[str, Any]:
    scenario = ctx.cell.scenario
    config = ctx.config()
    domain = config_domain(config)
    if scenario.kind == "semantic":
        run = ctx.run_directory(config)
        search_run(run, config, domain, ctx.device)
        report = retrain_run(run, domain, ctx.device)
        return {**report.to_json(), "evaluations": search_evaluations(config, domain.n_attributes)}
    source_config = ctx.config(scenario.source)
    source_domain = config_domain(source_config)
    source = ctx.run_directory(source_config, ctx.path / "source")
    search_run(source, source_config, source_domain, ctx.device)
    run = ctx.run_directory(config)
    transfer_run(run, source, config, domain, ctx.device, source_domain=source_domain)
    evaluations = (search_evaluations(source_config, source_domain.n_attributes)
                   + search_evaluations(config, domain.n_attributes, transfer=True))
    report = retrain_run(run, domain, ctx.device)
    return {**report.to_json(), "evaluations": evaluations, "source_domain": scenario.source}


def _train_fixed(
    run: RunDirectory, domain: AttributeDomain, config: GalmConfig, archs: Mapping[str, Architecture],
    device: torch.device, net: FixedNetwork | None = None, extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> AucReport:
    """Record `archs` (with `extra` fields per attribute) and train them with the retrain budget."""
    write_json(run.architectures_path, architectures_record(archs, extra))
    return train_and_evaluate(run, domain, archs, config.space, config.retrain, config.seed, device,
                              net=net, execution=config.execution,
                              excluded=unlearnable_attributes(domain, config.search.min_positives))


def _run_hand_designed(ctx: CellContext) -> dict[str, Any]:
    config = ctx.config()
    domain = config_domain(config)
    archs = resolve_architectures(ctx.cell.options["architecture"], domain.attribute_names,
                                  SearchSpace(config.space), config.seed)
    report = _train_fixed(ctx.run_directory(config), domain, config, archs, ctx.device)
    return {**report.to_json(), "evaluations": 0, "architecture": ctx.cell.options["architecture"]}


def random_candidates(config: GalmConfig, n_attributes: int) -> int:
    """Candidates per attribute that spend GALM's controller evaluations (at least one)."""
    derive_candidates = 1 + (config.search.derive_samples if config.search.derive == "best_of_k" else 0)
    controller_evals = search_evaluations(config, n_attributes) - n_attributes * derive_candidates
    return max(1, math.ceil(controller_evals / n_attributes))


def _run_random_search(ctx: CellContext) -> dict[str, Any]:
    config = ctx.config()
    domain = config_domain(config)
    n = domain.n_attributes
    candidates = ctx.cell.options.get("candidates")
    if candidates is None:
        candidates = random_candidates(config, n)
    # Phase 1 exactly as GALM's, with a uniform policy and no controller phase.
    phase1 = replace(config, search=replace(config.search, controller_steps=0, warmup_episodes=0))
    search = build_search(phase1, domain, ctx.device)
    with torch.no_grad():
        for head in search.controller.heads:
            head.weight.zero_()
            head.bias.zero_()
    run = ctx.run_directory(config)
    with MetricsLogger(run) as logger:
        run_search(search, logger)
    # Stage 1, as GALM's controller updates: each candidate set scored on one validation minibatch.
    # Only the attributes GALM searches take part; the unlearnable ones get the default head.
    rng = random.Random(config.seed + 7)
    ids = search.active_ids()
    names = [search.attribute_names[a] for a in search.active.tolist()]
    scored: list[list[tuple[float, Architecture]]] = [[] for _ in names]
    for _ in range(candidates):
        archs = [search.space.sample(rng) for _ in names]
        rewards = torch.nan_to_num(minibatch_rewards(search, ids, archs), nan=-1.0)
        for j, (arch, reward) in enumerate(zip(archs, rewards.tolist())):
            scored[j].append((reward, arch))
    # Stage 2, as GALM's best-of-k derive: the top 1 + derive_samples per attribute on the whole split.
    keep = 1 + config.search.derive_samples
    finalists = [[arch for _, arch in sorted(s, key=lambda item: -item[0])[:keep]] for s in scored]
    rounds = [[f[min(k, len(f) - 1)] for f in finalists] for k in range(max(len(f) for f in finalists))]
    best, rewards = best_candidates(search, ids, rounds)
    rewards = torch.nan_to_num(rewards, nan=-1.0)
    best_reward = [float(rewards[k, j]) for j, k in enumerate(best)]
    chosen = {name: rounds[k][j] for j, (name, k) in enumerate(zip(names, best))}
    archs = {name: chosen.get(name, search.space.default()) for name in domain.attribute_names}
    write_json(run.random_search_path, {"candidates_per_attribute": candidates,
                                        "val_reward": dict(zip(names, best_reward))})
    extra = {**{name: {"val_reward": r} for name, r in zip(names, best_reward)},
             **{name: {"skipped": reason} for name, reason in search.skipped.items()}}
    report = _train_fixed(run, domain, config, archs, ctx.device, extra=extra)
    evaluations = (candidates + keep) * len(names)
    return {**report.to_json(), "evaluations": evaluations, "candidates_per_attribute": candidates}


def single_task_config(config: GalmConfig) -> GalmConfig:
    """GALM's settings with an attribute-agnostic controller and one shared reward baseline."""
    return replace(config, controller=replace(
        config.controller, attribute_conditioned=False, per_attribute_baseline=False))


def _run_single_task(ctx: CellContext) -> dict[str, Any]:
    config = single_task_config(ctx.config())
    domain = config_domain(config)
    run = ctx.run_directory(config)
    search_run(run, config, domain, ctx.device)
    report = retrain_run(run, domain, ctx.device)
    return {**report.to_json(), "evaluations": search_evaluations(config, domain.n_attributes)}


def _run_ft(ctx: CellContext) -> dict[str, Any]:
    scenario = ctx.cell.scenario
    head = ctx.cell.options["architecture"]
    source_config = ctx.config(scenario.source)
    space = SearchSpace(source_config.space)
    source_domain = config_domain(source_config)
    source_archs = resolve_architectures(head, source_domain.attribute_names, space, source_config.seed)
    source_run = ctx.run_directory(source_config, ctx.path / "source")
    source_report = _train_fixed(source_run, source_domain, source_config, source_archs, ctx.device)
    source_net, _ = load_model(source_run.model_path)
    config = ctx.config()
    domain = config_domain(config)
    archs = resolve_architectures(head, domain.attribute_names, space, config.seed)
    torch.manual_seed(config.seed)
    net = FixedNetwork([archs[name] for name in domain.attribute_names], config.space)
    net.trunk.load_state_dict(source_net.trunk.state_dict())
    report = _train_fixed(ctx.run_directory(config), domain, config, archs, ctx.device, net=net)
    return {**report.to_json(), "evaluations": 0, "architecture": head, "source_domain": scenario.source,
            "source_mauc": source_report.mauc}


def _feature_network(ctx: CellContext) -> Path:
    """The finished ``features_from`` cell whose trunk gives a baseline its features."""
    dependency = cell_key_dir(ctx.out, ctx.cell.options["features_from"]["cell"])
    if not is_done(dependency, ctx.cell.options["features_from"]["spec_hash"]):
        raise FileNotFoundError(f"the feature network cell {dependency} has not finished")
    return dependency


def _features_record(ctx: CellContext, features: FeatureSet) -> dict[str, Any]:
    """What a baseline's features were, for its results (and the report's footnote)."""
    return {"features_from": ctx.cell.options["features_from"]["cell"],
            "features": {"extractor": "trunk", "layer": features.metadata.get("layer"),
                         "pooling": features.metadata.get("pooling"), "dimensions": features.n_features}}


def _run_baseline(ctx: CellContext) -> dict[str, Any]:
    from galm.baselines import evaluate_baseline, features_from_run

    config = ctx.config()
    network = _feature_network(ctx)
    domain = config_domain(config)
    features = features_from_run(network, domain, device=ctx.device)
    report = evaluate_baseline(ctx.cell.method, features, tuple(config.search.retrain_splits),
                               config.train.eval_split, config.seed,
                               excluded=unlearnable_attributes(domain, config.search.min_positives))
    return {**report.to_json(), "domain": domain.name, "evaluations": 0, **_features_record(ctx, features)}


def _run_afs(ctx: CellContext) -> dict[str, Any]:
    from galm.baselines import features_from_run, run_baseline

    scenario = ctx.cell.scenario
    config = ctx.config()
    source_config = ctx.config(scenario.source)
    network = _feature_network(ctx)
    domain = config_domain(config)
    features = features_from_run(network, domain, device=ctx.device)
    source = features_from_run(network, config_domain(source_config), device=ctx.device)
    model, report = run_baseline("afs", features, tuple(config.search.retrain_splits), config.train.eval_split,
                                 config.seed, unlearnable_attributes(domain, config.search.min_positives),
                                 source=source, source_splits=tuple(source_config.search.retrain_splits))
    return {**report.to_json(), "domain": domain.name, "evaluations": 0, "source_domain": scenario.source,
            "attention": model.attention_summary(features, config.train.eval_split),
            **_features_record(ctx, features)}


CellRunner = Callable[[CellContext], Mapping[str, Any]]
# Method name -> runner; a runner fills its (empty) directory and returns the results record
# (at least `mauc` and `per_attribute_auc`, plus `evaluations`).
CELL_RUNNERS: dict[str, CellRunner] = {
    "galm": _run_galm,
    "random_search": _run_random_search,
    "hand_designed": _run_hand_designed,
    "single_task": _run_single_task,
    "ft": _run_ft,
    "dap": _run_baseline,
    "iap": _run_baseline,
    "ale": _run_baseline,
    "hap": _run_baseline,
    "umf": _run_baseline,
    "mdg": _run_baseline,
    "afs": _run_afs,
    "fmt": run_fmt,
    "amt": run_amt,
}
