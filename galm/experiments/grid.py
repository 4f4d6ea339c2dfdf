"""Experiment grids: methods × scenarios × seeds, one run directory per cell, resumable.

A spec (YAML) names the cells; every cell ``OUT/cells/<scenario>/<method>/seed<k>/`` is a pure
function of its ``cell.json`` (method, scenario, seed, resolved config, method options). A cell
writes ``results.json`` and then, last and atomically, the ``done`` marker (holding the hash of its
spec); a rerun skips done cells whose spec is unchanged, so a stopped grid resumes. A cell that
raises writes ``error.json`` and the grid goes on; the next run retries it from scratch.

Methods (section 4.2.3 of the paper, adapted to what this repository can run):

* ``galm``: semantic: search + retrain on the domain; transfer: search on the source (in
  ``source/`` inside the cell), ``transfer_run`` to the target, retrain on the target.
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
* ``single_task``: GALM's search with an attribute-agnostic controller: every attribute is mapped to
  the controller's first embedding (``attribute_representations`` is replaced on the instance, so
  one shared embedding conditions the policy and alone receives gradient) and one shared reward
  baseline; derive and retrain as GALM. This is single-task ENAS applied to every attribute.
* ``dap``, ``iap``, ``ale``: classical baselines on Conv-3 features of the trained trunk of the
  ``features_from`` cell (``hand_designed`` by default) of the same scenario and seed, fitted on
  train+val and scored on the test classes.
* ``ft`` (transfer only): a hand-designed network trained on the source (train+val), its trunk
  copied into a new network for the target and fine-tuned with new heads (retrain budget).

In transfer scenarios every method but ``galm`` and ``ft`` sees only the target domain.

Architecture evaluations (section 4.7's efficiency) count every (attribute, head) pair scored on
validation data: controller updates, transfer warm-up updates and derive candidates for searches;
random candidates for random search; 0 for fixed architectures and baselines.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import yaml

from galm.config.reader import read_config
from galm.config.schema import GalmConfig
from galm.config.typed import ConfigError, to_mapping
from galm.data.sources import domain_overrides
from galm.runs.atomic import atomic_write_bytes, read_json, write_json
from galm.runs.directory import RunDirectory

__all__ = [
    "BASELINE_METHODS", "CELL_RUNNERS", "METHODS", "Cell", "ExperimentSpec", "GridOutcome", "Scenario",
    "cell_path", "collect_cells", "expand_cells", "read_spec", "run_cell", "run_experiment", "search_evaluations",
    "spec_from_mapping", "summarise",
]

METHODS = ("galm", "random_search", "hand_designed", "single_task", "ft", "dap", "iap", "ale")
BASELINE_METHODS = ("dap", "iap", "ale")
TRANSFER_ONLY = ("ft",)
DEFAULT_HEAD = "c4k3s0-c5k3s0-f256-f128-o2"
SPEC_FILE = "experiment.json"
CELL_FILE = "cell.json"
DONE_FILE = "done"
ERROR_FILE = "error.json"
RESULTS_FILE = "results.json"


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Scenario:
    """A semantic scenario (one domain, unseen classes) or a transfer scenario (source -> target)."""

    name: str
    kind: str  # 'semantic' | 'transfer'
    domain: str | None = None
    source: str | None = None
    target: str | None = None

    @property
    def eval_domain(self) -> str:
        """The domain whose test classes score the scenario."""
        return self.domain if self.kind == "semantic" else self.target  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in {"name": self.name, "kind": self.kind, "domain": self.domain,
                                  "source": self.source, "target": self.target}.items() if v is not None}


@dataclass(frozen=True)
class ExperimentSpec:
    """A grid: every method on every scenario for every seed, with shared config overrides."""

    name: str
    scenarios: tuple[Scenario, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    base: tuple[str, ...] = ()
    # Extra overrides per method, applied after `base` (e.g. a longer search for galm only).
    method_overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hand_designed: str = DEFAULT_HEAD
    # Which cell's trained trunk the classical baselines read.
    features_from: str = "hand_designed"
    # Candidates per attribute for random search; None matches GALM's evaluation count.
    random_candidates: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "seeds": list(self.seeds), "base": list(self.base),
            "scenarios": [s.to_json() for s in self.scenarios], "methods": list(self.methods),
            "method_overrides": {k: list(v) for k, v in self.method_overrides.items()},
            "hand_designed": self.hand_designed, "features_from": self.features_from,
            "random_candidates": self.random_candidates,
        }


def _scenario(item: Any, where: str) -> Scenario:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: a scenario must be a mapping with name and kind")
    unknown = set(item) - {"name", "kind", "domain", "source", "target"}
    if unknown:
        raise ConfigError(f"{where}: unknown scenario keys {sorted(unknown)}")
    kind = item.get("kind", "semantic")
    name = str(item.get("name", ""))
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"{where}: scenario name {name!r} must be a non-empty plain folder name")
    if kind == "semantic":
        if not item.get("domain") or item.get("source") or item.get("target"):
            raise ConfigError(f"{where} ({name}): a semantic scenario needs `domain` (and no source/target)")
        return Scenario(name, kind, domain=str(item["domain"]))
    if kind == "transfer":
        if not item.get("source") or not item.get("target") or item.get("domain"):
            raise ConfigError(f"{where} ({name}): a transfer scenario needs `source` and `target` (and no domain)")
        return Scenario(name, kind, source=str(item["source"]), target=str(item["target"]))
    raise ConfigError(f"{where} ({name}): kind must be 'semantic' or 'transfer', got {kind!r}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: expected a list of 'key=value' strings")
    return tuple(str(v) for v in value)


def spec_from_mapping(data: Mapping[str, Any], where: str = "spec") -> ExperimentSpec:
    """A checked :class:`ExperimentSpec` from its YAML mapping."""
    known = {"name", "base", "seeds", "scenarios", "methods", "method_overrides", "hand_designed",
             "features_from", "random_candidates"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
    scenarios = tuple(_scenario(s, f"{where}: scenarios[{i}]") for i, s in enumerate(data.get("scenarios") or []))
    if not scenarios:
        raise ConfigError(f"{where}: `scenarios` must list at least one scenario")
    if len({s.name for s in scenarios}) != len(scenarios):
        raise ConfigError(f"{where}: scenario names must be unique")
    methods = tuple(str(m) for m in data.get("methods") or [])
    bad = [m for m in methods if m not in METHODS]
    if not methods or bad:
        raise ConfigError(f"{where}: methods must be a non-empty list among {list(METHODS)}; unknown {bad}")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"{where}: methods are listed twice")
    seeds = tuple(int(s) for s in data.get("seeds", [0]))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds must be a non-empty list of distinct integers")
    features_from = str(data.get("features_from", "hand_designed"))
    if any(m in BASELINE_METHODS for m in methods):
        if features_from not in ("hand_designed", "galm", "random_search", "single_task"):
            raise ConfigError(f"{where}: features_from must name a network method, got {features_from!r}")
        if features_from not in methods:
            raise ConfigError(f"{where}: the classical baselines read the trunk of `{features_from}` cells; "
                              f"add {features_from!r} to methods (or set features_from)")
    overrides = data.get("method_overrides") or {}
    if not isinstance(overrides, Mapping) or any(k not in METHODS for k in overrides):
        raise ConfigError(f"{where}: method_overrides must map method names to lists of overrides")
    candidates = data.get("random_candidates")
    spec = ExperimentSpec(
        name=str(data.get("name", "experiment")), scenarios=scenarios, methods=methods, seeds=seeds,
        base=_strings(data.get("base"), f"{where}: base"),
        method_overrides={k: _strings(v, f"{where}: method_overrides.{k}") for k, v in overrides.items()},
        hand_designed=str(data.get("hand_designed", DEFAULT_HEAD)), features_from=features_from,
        random_candidates=None if candidates is None else int(candidates),
    )
    for cell in expand_cells(spec):  # every cell's config must resolve before anything runs
        cell_config(cell)
    return spec


def read_spec(path: str | Path) -> ExperimentSpec:
    """The experiment spec in a YAML file, checked (every cell's config resolves)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: an experiment spec must be a YAML mapping")
    return spec_from_mapping(data, str(path))


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One (method, scenario, seed) of a grid, with everything that determines its result."""

    method: str
    scenario: Scenario
    seed: int
    overrides: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.scenario.name}/{self.method}/seed{self.seed}"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method, "scenario": self.scenario.to_json(), "seed": self.seed,
            "overrides": list(self.overrides), "options": dict(self.options),
            "config": to_mapping(cell_config(self)),
        }

    def spec_hash(self) -> str:
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cell_path(out: str | Path, cell: Cell) -> Path:
    """``OUT/cells/<scenario>/<method>/seed<k>``."""
    return Path(out) / "cells" / cell.scenario.name / cell.method / f"seed{cell.seed}"


def cell_config(cell: Cell, domain: str | None = None) -> GalmConfig:
    """The resolved config of a cell on `domain` (default: the scenario's evaluation domain)."""
    domain = domain or cell.scenario.eval_domain
    return read_config(None, [*cell.overrides, *domain_overrides(domain), f"seed={cell.seed}"])


def expand_cells(spec: ExperimentSpec) -> list[Cell]:
    """Every cell of the grid, dependencies (the baselines' feature networks) first."""
    order = sorted(spec.methods, key=lambda m: m in BASELINE_METHODS)
    cells = []
    for scenario in spec.scenarios:
        for seed in spec.seeds:
            built: dict[str, Cell] = {}
            for method in order:
                if method in TRANSFER_ONLY and scenario.kind != "transfer":
                    continue
                overrides = (*spec.base, *spec.method_overrides.get(method, ()))
                options: dict[str, Any] = {}
                if method in ("hand_designed", "ft"):
                    options["architecture"] = spec.hand_designed
                if method == "random_search":
                    options["candidates"] = spec.random_candidates
                if method in BASELINE_METHODS:
                    dependency = built[spec.features_from]
                    options["features_from"] = {"cell": dependency.key, "spec_hash": dependency.spec_hash()}
                built[method] = Cell(method, scenario, seed, overrides, options)
                cells.append(built[method])
    return cells


# --------------------------------------------------------------------------- evaluation counts


def search_evaluations(config: GalmConfig, n_attributes: int, transfer: bool = False) -> int:
    """(attribute, head) pairs a search scores on validation data: controller updates, transfer
    warm-up and derive candidates."""
    search = config.search
    per_step = n_attributes if search.controller_attributes_per_step <= 0 else min(
        search.controller_attributes_per_step, n_attributes)
    learning = max(search.episodes - search.warmup_episodes, 0)
    total = learning * search.controller_steps * per_step
    if transfer and config.transfer.init == "warmup":
        total += config.transfer.warmup_controller_steps * n_attributes
    candidates = 1 + (search.derive_samples if search.derive == "best_of_k" else 0)
    return total + candidates * n_attributes


# --------------------------------------------------------------------------- runners


@dataclass
class CellContext:
    """What a cell runner gets: its cell, its directory (empty, created) and the device."""

    cell: Cell
    path: Path
    device: torch.device
    out: Path

    def config(self, domain: str | None = None) -> GalmConfig:
        return cell_config(self.cell, domain)


def _run_galm(ctx: CellContext) -> dict[str, Any]:
    from galm.search.jobs import config_domain, retrain_run, search_run, transfer_run

    scenario = ctx.cell.scenario
    config = ctx.config()
    if scenario.kind == "semantic":
        run = RunDirectory.create(ctx.path, to_mapping(config), exist_ok=True)
        search_run(run, config, ctx.device)
        n = config_domain(config).n_attributes
        evaluations = search_evaluations(config, n)
        report = retrain_run(run, ctx.device)
        return {**report.to_json(), "evaluations": evaluations}
    source_config = ctx.config(scenario.source)
    source = RunDirectory.create(ctx.path / "source", to_mapping(source_config))
    search_run(source, source_config, ctx.device)
    n_source = config_domain(source_config).n_attributes
    run = RunDirectory.create(ctx.path, to_mapping(config), exist_ok=True)
    transfer_run(run, source, config, ctx.device)
    n_target = config_domain(config).n_attributes
    evaluations = search_evaluations(source_config, n_source) + search_evaluations(config, n_target, transfer=True)
    report = retrain_run(run, ctx.device)
    return {**report.to_json(), "evaluations": evaluations, "source_domain": scenario.source}


def _train_fixed(ctx: CellContext, path: Path, config: GalmConfig, archs, net=None):
    from galm.runs.architectures import architectures_record
    from galm.search.jobs import config_domain
    from galm.training.fixed import train_and_evaluate

    domain = config_domain(config)
    run = RunDirectory.create(path, to_mapping(config), exist_ok=True)
    write_json(run.architectures_path, architectures_record(archs))
    report = train_and_evaluate(run, domain, archs, config.space, config.retrain, config.seed,
                                ctx.device, net=net, execution=config.execution)
    return run, report


def _run_hand_designed(ctx: CellContext) -> dict[str, Any]:
    from galm.runs.architectures import resolve_architectures
    from galm.search.jobs import config_domain
    from galm.space.search_space import SearchSpace

    config = ctx.config()
    domain = config_domain(config)
    archs = resolve_architectures(ctx.cell.options["architecture"], domain.attribute_names,
                                  SearchSpace(config.space), config.seed)
    _, report = _train_fixed(ctx, ctx.path, config, archs)
    return {**report.to_json(), "evaluations": 0, "architecture": ctx.cell.options["architecture"]}


def _run_random_search(ctx: CellContext) -> dict[str, Any]:
    import random

    from galm.runs.metrics import MetricsLogger
    from galm.search.jobs import build_search, config_domain

    config = ctx.config()
    domain = config_domain(config)
    n = domain.n_attributes
    candidates = ctx.cell.options.get("candidates")
    if candidates is None:
        controller_evals = search_evaluations(config, n) - n * (
            1 + (config.search.derive_samples if config.search.derive == "best_of_k" else 0))
        candidates = max(1, math.ceil(controller_evals / n))
    # Phase 1 exactly as GALM's, with a uniform policy and no controller phase.
    phase1 = replace(config, search=replace(config.search, controller_steps=0, warmup_episodes=0))
    search = build_search(phase1, domain, ctx.device)
    with torch.no_grad():
        for head in search.controller.heads:
            head.weight.zero_()
            head.bias.zero_()
    run = RunDirectory.create(ctx.path, to_mapping(config), exist_ok=True)
    with MetricsLogger(run) as logger:
        search.run(logger)
    # Stage 1, as GALM's controller updates: each candidate set scored on one validation minibatch.
    from galm.search.rewards import head_rewards

    rng = random.Random(config.seed + 7)
    ids = torch.as_tensor(search.active, dtype=torch.long, device=search.device)
    scored: list[list[tuple[float, Any]]] = [[] for _ in range(n)]
    for _ in range(candidates):
        archs = [search.space.sample(rng) for _ in range(n)]
        batch = search.val_order.next()
        images = search.batch_images(batch, augment=False)
        logits = search.head_logits(images, ids, archs)
        rewards = torch.nan_to_num(head_rewards(logits, search.batch_labels(batch, ids), config.search.reward), nan=-1.0)
        for j, (arch, reward) in enumerate(zip(archs, rewards.tolist())):
            scored[j].append((reward, arch))
    # Stage 2, as GALM's best-of-k derive: the top 1 + derive_samples per attribute on the whole split.
    keep = 1 + config.search.derive_samples
    finalists = [[arch for _, arch in sorted(s, key=lambda item: -item[0])[:keep]] for s in scored]
    best_reward = np.full(n, -np.inf)
    best = [search.space.default()] * n
    for k in range(max(len(f) for f in finalists)):
        archs = [f[min(k, len(f) - 1)] for f in finalists]
        rewards = torch.nan_to_num(search.validation_rewards(ids, archs), nan=-1.0).tolist()
        for j, (arch, reward) in enumerate(zip(archs, rewards)):
            if reward > best_reward[j]:
                best_reward[j], best[j] = reward, arch
    archs = dict(zip(domain.attribute_names, best))
    from galm.runs.architectures import architectures_record

    write_json(ctx.path / "random_search.json", {"candidates_per_attribute": candidates,
                                                 "val_reward": dict(zip(domain.attribute_names, best_reward.tolist()))})
    _, report = _train_fixed(ctx, ctx.path, config, archs)
    write_json(run.architectures_path, architectures_record(
        archs, {name: {"val_reward": float(r)} for name, r in zip(domain.attribute_names, best_reward)}))
    evaluations = candidates * n + keep * n
    return {**report.to_json(), "evaluations": evaluations, "candidates_per_attribute": candidates}


def _run_single_task(ctx: CellContext) -> dict[str, Any]:
    from galm.runs.metrics import MetricsLogger
    from galm.search.jobs import (
        SEARCH_CHECKPOINT,
        TRACE_FILE,
        build_search,
        config_domain,
        retrain_run,
    )

    config = ctx.config()
    config = replace(config, controller=replace(config.controller, per_attribute_baseline=False))
    domain = config_domain(config)
    run = RunDirectory.create(ctx.path, to_mapping(config), exist_ok=True)
    search = build_search(config, domain, ctx.device)
    controller = search.controller

    def shared_representation(attribute_ids: torch.Tensor | None = None) -> torch.Tensor:
        count = controller.n_attributes if attribute_ids is None else len(attribute_ids)
        rows = torch.zeros(count, dtype=torch.long, device=controller.attribute_embeddings.device)
        return controller.arm(controller.attribute_embeddings[rows])

    controller.attribute_representations = shared_representation  # one embedding for every attribute
    with MetricsLogger(run) as logger:
        search.run(logger, ctx.path / SEARCH_CHECKPOINT)
    heads = search.derive()
    write_json(run.architectures_path, {h.attribute: h.to_json() for h in heads})
    write_json(run.path / TRACE_FILE, search.trace_record())
    report = retrain_run(run, ctx.device)
    return {**report.to_json(), "evaluations": search_evaluations(config, domain.n_attributes)}


def _run_ft(ctx: CellContext) -> dict[str, Any]:
    from galm.nn.network import FixedNetwork
    from galm.runs.architectures import resolve_architectures
    from galm.search.jobs import config_domain
    from galm.space.search_space import SearchSpace

    scenario = ctx.cell.scenario
    head = ctx.cell.options["architecture"]
    source_config = ctx.config(scenario.source)
    space = SearchSpace(source_config.space)
    source_domain = config_domain(source_config)
    source_archs = resolve_architectures(head, source_domain.attribute_names, space, source_config.seed)
    source_run, source_report = _train_fixed(ctx, ctx.path / "source", source_config, source_archs)
    from galm.runs.model_file import load_model

    source_net, _ = load_model(source_run.path / "model.pt")
    config = ctx.config()
    domain = config_domain(config)
    archs = resolve_architectures(head, domain.attribute_names, space, config.seed)
    torch.manual_seed(config.seed)
    net = FixedNetwork([archs[name] for name in domain.attribute_names], config.space)
    net.trunk.load_state_dict(source_net.trunk.state_dict())
    _, report = _train_fixed(ctx, ctx.path, config, archs, net=net)
    return {**report.to_json(), "evaluations": 0, "architecture": head, "source_domain": scenario.source,
            "source_mauc": source_report.mauc}


def _run_baseline(ctx: CellContext) -> dict[str, Any]:
    from galm.baselines import evaluate_baseline, features_from_run
    from galm.search.jobs import config_domain

    config = ctx.config()
    dependency = ctx.out / "cells" / ctx.cell.options["features_from"]["cell"]
    if not _is_done(dependency, ctx.cell.options["features_from"]["spec_hash"]):
        raise FileNotFoundError(f"the feature network cell {dependency} has not finished")
    domain = config_domain(config)
    features = features_from_run(dependency, domain, device=ctx.device)
    report = evaluate_baseline(ctx.cell.method, features, tuple(config.search.retrain_splits),
                               config.train.eval_split, config.seed)
    return {**report.to_json(), "domain": domain.name, "evaluations": 0,
            "features_from": ctx.cell.options["features_from"]["cell"]}


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
}


# --------------------------------------------------------------------------- running


def _is_done(path: Path, spec_hash: str) -> bool:
    done = path / DONE_FILE
    if not done.is_file():
        return False
    try:
        return json.loads(done.read_text(encoding="utf-8")).get("spec_hash") == spec_hash
    except (json.JSONDecodeError, OSError):
        return False


def _clear(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def run_cell(cell: Cell, out: str | Path, device: torch.device | None = None) -> str:
    """Run one cell unless it is already done: 'skipped', 'done' or 'failed'.

    Failures (any Exception) are recorded in ``error.json``; KeyboardInterrupt and other
    BaseExceptions propagate, leaving the cell unfinished (it starts afresh next time).
    """
    from galm.engine.device import configure_threads, resolve_device, seed_everything

    out = Path(out)
    path = cell_path(out, cell)
    spec_hash = cell.spec_hash()
    if _is_done(path, spec_hash):
        return "skipped"
    _clear(path)
    spec = {**cell.to_json(), "spec_hash": spec_hash}
    write_json(path / CELL_FILE, spec)
    config = cell_config(cell)
    configure_threads(config.threads)
    seed_everything(cell.seed)
    device = device if device is not None else resolve_device(config.device)
    start = time.perf_counter()
    try:
        results = dict(CELL_RUNNERS[cell.method](CellContext(cell, path, device, out)))
    except Exception as error:  # noqa: BLE001 - one cell's failure must not stop the grid
        write_json(path / ERROR_FILE, {
            "cell": cell.key, "type": type(error).__name__, "message": str(error),
            "traceback": traceback.format_exc(), "seconds": time.perf_counter() - start,
        })
        return "failed"
    seconds = time.perf_counter() - start
    results.update({
        "method": cell.method, "scenario": cell.scenario.name, "kind": cell.scenario.kind,
        "seed": cell.seed, "seconds": seconds, "evaluations": int(results.get("evaluations", 0)),
    })
    write_json(path / RESULTS_FILE, results)
    atomic_write_bytes(path / DONE_FILE, json.dumps({"spec_hash": spec_hash, "finished": time.time()}).encode())
    return "done"


@dataclass
class GridOutcome:
    """What one `run_experiment` call did, cell key -> 'done' | 'skipped' | 'failed'."""

    status: dict[str, str]

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s == status)


def run_experiment(
    spec: ExperimentSpec, out: str | Path, device: torch.device | None = None,
    on_cell: Callable[[Cell, str], None] | None = None,
) -> GridOutcome:
    """Run (or resume) every cell of `spec` into `out`, then write the result tables."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SPEC_FILE, spec.to_json())
    outcome = GridOutcome({})
    for cell in expand_cells(spec):
        status = run_cell(cell, out, device)
        outcome.status[cell.key] = status
        if on_cell is not None:
            on_cell(cell, status)
    summarise(out, spec)
    return outcome


# --------------------------------------------------------------------------- results


def read_experiment_spec(out: str | Path) -> ExperimentSpec | None:
    """The spec recorded in an experiment directory (None when absent)."""
    path = Path(out) / SPEC_FILE
    if not path.is_file():
        return None
    return spec_from_mapping(read_json(path), str(path))


def collect_cells(out: str | Path) -> list[dict[str, Any]]:
    """Every cell under ``out/cells``: its spec, status ('done', 'failed', 'unfinished'), results."""
    records = []
    for cell_json in sorted(Path(out).glob(f"cells/*/*/seed*/{CELL_FILE}")):
        path = cell_json.parent
        spec = read_json(cell_json)
        record: dict[str, Any] = {
            "path": path, "method": spec["method"], "scenario": spec["scenario"]["name"],
            "kind": spec["scenario"]["kind"], "seed": int(spec["seed"]), "spec": spec,
        }
        if _is_done(path, spec.get("spec_hash", "")) and (path / RESULTS_FILE).is_file():
            record["status"] = "done"
            record["results"] = read_json(path / RESULTS_FILE)
        elif (path / ERROR_FILE).is_file():
            record["status"] = "failed"
            record["error"] = read_json(path / ERROR_FILE)
        else:
            record["status"] = "unfinished"
        records.append(record)
    return records


def summarise(out: str | Path, spec: ExperimentSpec | None = None) -> str:
    """Write ``results.md``, ``results.csv`` and ``cells.csv`` from the finished cells; the Markdown."""
    from galm.report.tables import (
        cells_csv,
        experiment_tables,
        markdown_table,
        results_csv,
    )

    out = Path(out)
    spec = spec or read_experiment_spec(out)
    records = collect_cells(out)
    tables = experiment_tables(records, spec)
    lines = [f"# Experiment {spec.name if spec else out.name}", ""]
    for table in tables:
        lines += [f"## {table.title}", "", markdown_table(table), ""]
        if table.note:
            lines += [table.note, ""]
    text = "\n".join(lines)
    atomic_write_bytes(out / "results.md", text.encode("utf-8"))
    atomic_write_bytes(out / "results.csv", results_csv(records, spec).encode("utf-8"))
    atomic_write_bytes(out / "cells.csv", cells_csv(records).encode("utf-8"))
    return text
