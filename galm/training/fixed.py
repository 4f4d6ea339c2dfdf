"""Train a fixed network for given per-attribute architectures into a run directory, then score it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from galm.config.schema import ExecutionConfig, SpaceConfig, TrainConfig
from galm.data.domain import AttributeDomain
from galm.nn.network import FixedNetwork
from galm.runs.directory import (
    MetricsLogger,
    RunDirectory,
    atomic_torch_save,
    read_json,
    write_json,
)
from galm.space.search_space import Architecture, SearchSpace
from galm.training.evaluate import AucReport
from galm.training.train import evaluate_network, train_network

MODEL_FILE = "model.pt"


def architecture_from_record(record: Any, where: str) -> Architecture:
    """An architecture from a JSON record: its dict, its short string, or {"architecture": ...}."""
    if isinstance(record, dict) and "architecture" in record:
        record = record["architecture"]
    try:
        if isinstance(record, str):
            return Architecture.parse(record)
        return Architecture.from_json(record)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error


def read_architectures(path: str | Path, attribute_names: Sequence[str]) -> dict[str, Architecture]:
    """`architectures.json` (attribute name -> architecture) covering exactly the domain's attributes."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object mapping attribute names to architectures")
    missing = [name for name in attribute_names if name not in data]
    unknown = [name for name in data if name not in set(attribute_names)]
    if missing or unknown:
        raise ValueError(
            f"{path}: attributes missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"not in the domain {unknown[:5]}{'...' if len(unknown) > 5 else ''}"
        )
    return {name: architecture_from_record(data[name], f"{path}: {name}") for name in attribute_names}


def resolve_architectures(
    spec: str, attribute_names: Sequence[str], space: SearchSpace, seed: int
) -> dict[str, Architecture]:
    """'random' (seeded, one per attribute), a JSON file, or one architecture string for all."""
    if spec == "random":
        rng = random.Random(seed)
        archs = {name: space.sample(rng) for name in attribute_names}
    elif spec.endswith(".json") or Path(spec).is_file():
        if not Path(spec).is_file():
            raise FileNotFoundError(f"architecture file not found: {spec}")
        archs = read_architectures(spec, attribute_names)
    else:
        try:
            arch = Architecture.parse(spec)
        except ValueError as error:
            raise ValueError(
                f"--arch {spec!r} is not 'random', an architectures JSON file, or an architecture string "
                f"such as {space.default().short()!r}"
            ) from error
        archs = {name: arch for name in attribute_names}
    for name, arch in archs.items():
        space.encode(arch)  # raises, naming the decision, when outside the configured space
    return archs


def architectures_record(archs: Mapping[str, Architecture], extra: Mapping[str, Mapping[str, Any]] | None = None) -> dict:
    """The JSON form of `architectures.json`: name -> {architecture, short, ...extra fields}."""
    extra = extra or {}
    return {
        name: {"architecture": arch.to_json(), "short": arch.short(), **extra.get(name, {})}
        for name, arch in archs.items()
    }


def save_model(path: Path, net: FixedNetwork, attribute_names: Sequence[str]) -> None:
    """Weights with what is needed to rebuild the network (architectures, names, space)."""
    atomic_torch_save(
        {
            "state_dict": net.state_dict(),
            "attribute_names": list(attribute_names),
            "architectures": [arch.to_json() for arch in net.architectures],
            "space": net.space.to_dict(),
        },
        path,
    )


def load_model(path: str | Path) -> tuple[FixedNetwork, list[str]]:
    """A fixed network saved by :func:`save_model` and its attribute names."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    space = SpaceConfig.from_dict(payload["space"])
    net = FixedNetwork([Architecture.from_json(a) for a in payload["architectures"]], space)
    net.load_state_dict(payload["state_dict"])
    return net, list(payload["attribute_names"])


def train_and_evaluate(
    run: RunDirectory,
    domain: AttributeDomain,
    archs: Mapping[str, Architecture],
    space: SpaceConfig,
    config: TrainConfig,
    seed: int,
    device: torch.device,
    net: FixedNetwork | None = None,
    extra_results: Mapping[str, Any] | None = None,
    execution: ExecutionConfig | None = None,
) -> AucReport:
    """Train the fixed network of `archs` on the configured splits, score it, record everything in `run`."""
    ordered = [archs[name] for name in domain.attribute_names]
    if net is None:
        torch.manual_seed(seed)
        net = FixedNetwork(ordered, space)
    with MetricsLogger(run) as log:
        train_network(
            net, domain, config, seed, splits=config.splits, device=device,
            on_epoch=lambda epoch, record: log.log(epoch, "retrain", {"loss": record["loss"]}),
            execution=execution,
        )
        report = evaluate_network(net, domain, config.eval_split, config.eval_batch_size, device)
        log.log(config.epochs, "evaluate", {"mauc": report.mauc})
    save_model(run.path / MODEL_FILE, net.cpu(), domain.attribute_names)
    results = {
        **report.to_json(),
        "domain": domain.name,
        "trained_on": list(config.splits),
        **(extra_results or {}),
    }
    write_json(run.results_path, results)
    return report
