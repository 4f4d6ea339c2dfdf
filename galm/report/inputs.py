"""What a report reads: a single run or an experiment directory, its cells and its GALM searches,
and the domain of every attribute of an ``arm.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galm.runs.atomic import read_json
from galm.runs.directory import RunDirectory
from galm.runs.experiment_dir import collect_cells, is_experiment, read_spec_record


@dataclass
class SearchRunInfo:
    """A directory holding a GALM search (architectures.json, arm.json, metrics.jsonl, ...)."""

    label: str
    path: Path
    scenario: str | None = None
    seed: int | None = None


@dataclass
class ReportInputs:
    """What a report reads: a single run, or an experiment's cell records and its GALM runs."""

    root: Path
    kind: str  # 'experiment' | 'run'
    records: list[dict[str, Any]] = field(default_factory=list)
    spec: Any = None
    search_runs: list[SearchRunInfo] = field(default_factory=list)

    def representative_runs(self) -> list[SearchRunInfo]:
        """The lowest seed of each scenario (all runs for a single-run report)."""
        chosen: dict[Any, SearchRunInfo] = {}
        for run in sorted(self.search_runs, key=lambda r: (r.seed is None, r.seed or 0)):
            chosen.setdefault(run.scenario, run)
        return list(chosen.values())


def gather_inputs(directory: str | Path) -> ReportInputs:
    """Recognise an experiment directory (``cells/``) or a single run directory (``config.yaml``)."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    if is_experiment(root):
        records = collect_cells(root)
        runs = [SearchRunInfo(f"{r['scenario']}/galm/seed{r['seed']}", r["path"], r["scenario"], r["seed"])
                for r in records if r["method"] == "galm" and r["status"] == "done"]
        try:
            spec = read_spec_record(root)
        except Exception:  # noqa: BLE001 - an unreadable spec only loses the spec's ordering
            spec = None
        return ReportInputs(root, "experiment", records, spec, runs)
    if RunDirectory(root).config_path.is_file():
        return ReportInputs(root, "run", search_runs=[SearchRunInfo(root.name, root)])
    raise FileNotFoundError(f"{root} is neither an experiment directory (cells/) nor a run directory (config.yaml)")


def _read(path: Path) -> Any:
    try:
        return read_json(path) if path.is_file() else None
    except (ValueError, OSError):
        return None


def _run_domain(path: Path) -> str:
    run = RunDirectory(path)
    for file in (run.arm_path, run.results_path):
        data = _read(file)
        if isinstance(data, dict) and data.get("domain"):
            return str(data["domain"])
    try:
        data = run.config_mapping()["data"]
        return data["domain"] if data["source"] == "synthetic" else Path(data["source"]).name
    except Exception:  # noqa: BLE001
        return path.name


def attribute_domains(path: Path, arm: dict[str, Any]) -> list[str]:
    """The domain of every attribute of an ``arm.json``: source attributes of a transfer run belong
    to its source domain, the searched ones to the run's domain; otherwise the name's prefix."""
    names = arm["attribute_names"]
    if len(arm.get("domain_of_attribute") or []) == len(names):
        return [str(d) for d in arm["domain_of_attribute"]]
    transfer = _read(RunDirectory(path).transfer_path)
    if isinstance(transfer, dict) and "source_attributes" in transfer:
        n_source = len(transfer["source_attributes"])
        return [transfer["source_domain"] if i < n_source else arm.get("domain", "target") for i in range(len(names))]
    searched = set(arm.get("searched", range(len(names))))
    if len(searched) == len(names):
        return [arm.get("domain", "domain")] * len(names)
    return [name.split("_", 1)[0] for name in names]


def domain_similarity(arm: dict[str, Any], domains: list[str]) -> tuple[list[str], np.ndarray]:
    """Mean cosine similarity between the attributes of every pair of domains (self-pairs excluded)."""
    labels = sorted(set(domains))
    similarity = np.asarray(arm["cosine_similarity"], dtype=float)
    index = np.asarray([labels.index(d) for d in domains])
    matrix = np.full((len(labels), len(labels)), np.nan)
    for i in range(len(labels)):
        for j in range(len(labels)):
            block = similarity[np.ix_(index == i, index == j)]
            if i == j:
                block = block[~np.eye(block.shape[0], dtype=bool)]
            if block.size:
                matrix[i, j] = float(block.mean())
    return labels, matrix


def _arm_files(inputs: ReportInputs, runs: list[SearchRunInfo]) -> list[tuple[SearchRunInfo, dict, list[str]]]:
    found = []
    for run in runs:
        arm = _read(RunDirectory(run.path).arm_path)
        if isinstance(arm, dict) and "cosine_similarity" in arm:
            found.append((run, arm, attribute_domains(run.path, arm)))
    return found
