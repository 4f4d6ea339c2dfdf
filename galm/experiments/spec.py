"""What a grid is made of: scenarios, the experiment spec (YAML) and its cells, each cell's
resolved configuration, and the architecture evaluations a search spends.

A scenario is semantic (one domain, unseen test classes: Table 2) or transfer (source -> target
domain: Table 3). The same :class: also describes a `galm transfer --scenarios` entry,
whose source is a finished search run instead of a domain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from galm.config import GalmConfig, read_config
from galm.config.typed import ConfigError, load_yaml_file, to_mapping
from galm.data.sources import domain_overrides
from galm.runs.experiment_dir import cell_dir
from galm.space import Architecture

METHODS = ("galm", "random_search", "hand_designed", "single_task", "ft", "dap", "iap", "ale",
           "hap", "umf", "mdg", "afs", "fmt", "amt")


BASELINE_METHODS = ("dap", "iap", "ale", "hap", "umf", "mdg", "afs")


TRANSFER_ONLY = ("ft", "afs")


DEFAULT_HEAD = "c4k3s0-c5k3s0-f256-f128-o2"

# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Scenario:
    """A semantic scenario (one domain, unseen classes) or a transfer scenario (source -> target).

    In a grid, ``source`` and ``target`` name domains; in a ``galm transfer --scenarios`` list,
    ``source`` is a finished search run and ``overrides`` are the entry's extra settings.
    """

    name: str
    kind: str  # 'semantic' | 'transfer'
    domain: str | None = None
    source: str | None = None
    target: str | None = None
    overrides: tuple[str, ...] = ()

    @property
    def eval_domain(self) -> str:
        """The domain whose test classes score the scenario."""
        return self.domain if self.kind == "semantic" else self.target  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        record = {"name": self.name, "kind": self.kind, "domain": self.domain, "source": self.source,
                  "target": self.target, "set": list(self.overrides)}
        return {k: v for k, v in record.items() if v is not None and v != []}


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
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of 'key=value' strings, got {value!r}")
    return tuple(value)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of names, got {value!r}")
    return tuple(value)


def spec_from_mapping(data: Mapping[str, Any], where: str = "spec") -> ExperimentSpec:
    """A checked :class:`ExperimentSpec` from its YAML mapping."""
    known = {"name", "base", "seeds", "scenarios", "methods", "method_overrides", "hand_designed",
             "features_from", "random_candidates"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
    listed = data.get("scenarios") or []
    if not isinstance(listed, list):
        raise ConfigError(f"{where}: scenarios must be a list of scenarios, got {type(listed).__name__}")
    scenarios = tuple(_scenario(s, f"{where}: scenarios[{i}]") for i, s in enumerate(listed))
    if not scenarios:
        raise ConfigError(f"{where}: `scenarios` must list at least one scenario")
    if len({s.name for s in scenarios}) != len(scenarios):
        raise ConfigError(f"{where}: scenario names must be unique")
    methods = _names(data.get("methods"), f"{where}: methods")
    bad = [m for m in methods if m not in METHODS]
    if not methods or bad:
        raise ConfigError(f"{where}: methods must be a non-empty list among {list(METHODS)}; unknown {bad}")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"{where}: methods are listed twice")
    seeds = data.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or len(set(map(str, seeds))) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ConfigError(f"{where}: seeds must be a non-empty list of distinct integers >= 0, got {seeds!r}")
    seeds = tuple(seeds)
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
    if candidates is not None and (not isinstance(candidates, int) or isinstance(candidates, bool) or candidates < 1):
        raise ConfigError(f"{where}: random_candidates must be a positive integer (or absent), got {candidates!r}")
    for key in ("name", "hand_designed", "features_from"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{where}: {key} must be a string, got {data[key]!r}")
    try:
        Architecture.parse(str(data.get("hand_designed", DEFAULT_HEAD)))
    except ValueError as error:
        raise ConfigError(f"{where}: hand_designed: {error}") from error
    spec = ExperimentSpec(
        name=str(data.get("name", "experiment")), scenarios=scenarios, methods=methods, seeds=seeds,
        base=_strings(data.get("base"), f"{where}: base"),
        method_overrides={k: _strings(v, f"{where}: method_overrides.{k}") for k, v in overrides.items()},
        hand_designed=str(data.get("hand_designed", DEFAULT_HEAD)), features_from=features_from,
        random_candidates=None if candidates is None else int(candidates),
    )
    for cell in expand_cells(spec):  # every cell's config must resolve before anything runs
        try:
            cell_config(cell)
        except ConfigError as error:
            raise ConfigError(f"{where}: cell {cell.key}: {error}") from error
    return spec


def read_spec(path: str | Path) -> ExperimentSpec:
    """The experiment spec in a YAML file, checked (every cell's config resolves)."""
    path = Path(path)
    data = load_yaml_file(path, "experiment spec")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: an experiment spec must be a YAML mapping")
    return spec_from_mapping(data, str(path))


def read_scenarios(path: Path) -> list[Scenario]:
    """The transfers of a ``galm transfer --scenarios`` file: a YAML list of {name, source (a
    finished search run, relative to the file), target, set: [key=value, ...]}."""
    if not path.is_file():
        raise FileNotFoundError(f"scenario file not found: {path}")
    data = load_yaml_file(path, "scenario file")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: expected a non-empty list of scenarios")
    scenarios, names = [], set()
    for number, item in enumerate(data, start=1):
        where = f"{path}: scenario {number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(item).__name__}")
        unknown = set(item) - {"name", "source", "target", "set"}
        missing = {"name", "source", "target"} - set(item)
        if unknown or missing:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        overrides = item.get("set", [])
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise ConfigError(f"{where}: 'set' must be a list of key=value strings")
        if item["name"] in names:
            raise ConfigError(f"{where}: duplicate scenario name {item['name']!r}")
        names.add(item["name"])
        source = Path(str(item["source"]))
        if not source.is_absolute():
            source = path.parent / source
        scenarios.append(Scenario(str(item["name"]), "transfer", source=str(source), target=str(item["target"]),
                                  overrides=tuple(overrides)))
    return scenarios


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

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Keys of the cells that must finish before this one starts (a baseline's feature network)."""
        features_from = self.options.get("features_from")
        return (features_from["cell"],) if isinstance(features_from, Mapping) else ()

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
    return cell_dir(out, cell.scenario.name, cell.method, cell.seed)


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
                if method in ("hand_designed", "ft", "fmt", "amt"):
                    options["architecture"] = spec.hand_designed
                if method == "random_search":
                    options["candidates"] = spec.random_candidates
                if method in BASELINE_METHODS:
                    dependency = built[spec.features_from]
                    options["features_from"] = {"cell": dependency.key, "spec_hash": dependency.spec_hash()}
                built[method] = Cell(method, scenario, seed, overrides, options)
                cells.append(built[method])
    return cells


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
