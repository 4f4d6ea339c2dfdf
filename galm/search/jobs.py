"""Run-directory steps of GALM: search, derive, retrain, evaluate (what the CLI commands call)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

import torch

from galm.config.schema import GalmConfig
from galm.config.typed import from_mapping
from galm.data.domain import AttributeDomain
from galm.data.sources import open_domain
from galm.nn.network import FixedNetwork
from galm.runs.architectures import read_architectures
from galm.runs.atomic import write_json
from galm.runs.directory import RunDirectory
from galm.runs.metrics import MetricsLogger, rewrite_metrics
from galm.runs.model_file import load_model
from galm.search.state import DerivedHead, GalmSearch
from galm.search.transfer import (
    NearestSource,
    build_transfer,
    read_transfer_record,
    start_transfer,
)
from galm.space.search_space import Architecture, SearchSpace
from galm.training.evaluate import AucReport
from galm.training.fixed import train_and_evaluate
from galm.training.train import evaluate_network

SEARCH_CHECKPOINT = Path("checkpoints") / "search.pt"
ARM_FILE = "arm.json"
TRACE_FILE = "search_trace.json"
TRANSFER_FILE = "transfer.json"
SEARCH_PHASES = ("shared", "controller")


def run_config(run: RunDirectory) -> GalmConfig:
    """The resolved configuration a run was started with."""
    config = from_mapping(GalmConfig, run.config_mapping(), where="")
    config.check()
    return config


def config_domain(config: GalmConfig) -> AttributeDomain:
    """The domain a configuration names."""
    return open_domain(config.data.source, config.data.domain, config.data.synthetic, config.space.resolution)


def build_search(config: GalmConfig, domain: AttributeDomain, device: torch.device) -> GalmSearch:
    return GalmSearch(
        domain, config.space, config.search, config.controller, config.seed, device, execution=config.execution
    )


def write_derived(run: RunDirectory, heads: list[DerivedHead], search: GalmSearch) -> None:
    """`architectures.json` (name -> architecture, probability, validation reward), `arm.json`
    (ARM representations and cosine similarities) and `search_trace.json` (reward and search seconds per update)."""
    write_json(run.architectures_path, {head.attribute: head.to_json() for head in heads})
    write_json(run.path / ARM_FILE, search.attribute_similarity())
    write_json(run.path / TRACE_FILE, search.trace_record())


def search_run(
    run: RunDirectory,
    config: GalmConfig,
    device: torch.device,
    resume: bool = False,
    on_step: Callable[[str, int], None] | None = None,
) -> list[DerivedHead]:
    """Algorithm 1 into `run` (continuing from its checkpoint when resuming), then derive."""
    search = build_search(config, config_domain(config), device)
    return _continue_search(run, search, resume, on_step)


def _continue_search(
    run: RunDirectory, search: GalmSearch, resume: bool, on_step: Callable[[str, int], None] | None
) -> list[DerivedHead]:
    """Resume from the run's checkpoint if asked, run the remaining episodes, derive, record."""
    checkpoint = run.path / SEARCH_CHECKPOINT
    if resume and checkpoint.is_file():
        search.load_checkpoint(checkpoint)
        done = search.episode
        # What an interrupted episode logged after the last checkpoint is redone, so drop it.
        rewrite_metrics(run.metrics_path, lambda r: r.get("phase") not in SEARCH_PHASES or r["step"] <= done)
    elif resume:
        rewrite_metrics(run.metrics_path, lambda r: r.get("phase") not in SEARCH_PHASES)
    with MetricsLogger(run) as logger:
        search.run(logger, checkpoint, on_step)
    heads = search.derive()
    write_derived(run, heads, search)
    return heads


def transfer_run(
    run: RunDirectory,
    source: RunDirectory,
    config: GalmConfig,
    device: torch.device,
    resume: bool = False,
    on_step: Callable[[str, int], None] | None = None,
) -> tuple[list[DerivedHead], list[NearestSource]]:
    """Search the target domain's attributes starting from a finished search (section 3.5.2)."""
    source_config = run_config(source)
    search = build_transfer(source, source_config, config, config_domain(config), device)
    checkpoint = run.path / SEARCH_CHECKPOINT
    if resume and checkpoint.is_file():
        record = read_transfer_record(run)
        nearest = [NearestSource(name, **{"source": v["nearest_source"], "similarity": v["similarity"]})
                   for name, v in record["nearest"].items()]
    else:
        source_domain = config_domain(source_config) if config.transfer.init == "probe" else None
        nearest = start_transfer(search, config.transfer, source_domain)
        write_json(run.path / TRANSFER_FILE, {
            "source_run": str(source.path.resolve()),
            "source_domain": source_config.data.domain if source_config.data.source == "synthetic"
            else source_config.data.source,
            "source_attributes": search.attribute_names[: len(search.frozen)],
            "target_domain": search.domain.name,
            "init": config.transfer.init,
            "nearest": {n.attribute: n.to_json() for n in nearest},
        })
        search.save_checkpoint(checkpoint)  # a resume continues after the initialisation
    return _continue_search(run, search, resume=True, on_step=on_step), nearest


def open_search(run: RunDirectory, config: GalmConfig, domain: AttributeDomain, device: torch.device) -> GalmSearch:
    """The search state of a search or transfer run, from its last checkpoint."""
    if (run.path / TRANSFER_FILE).is_file():
        source = RunDirectory.open(read_transfer_record(run)["source_run"])
        search = build_transfer(source, run_config(source), config, domain, device)
    else:
        search = build_search(config, domain, device)
    search.load_checkpoint(run.path / SEARCH_CHECKPOINT)
    return search


def derive_run(run: RunDirectory, device: torch.device, method: str | None, samples: int | None) -> list[DerivedHead]:
    """Derive the final architectures again from a run's search checkpoint."""
    config = run_config(run)
    search = open_search(run, config, config_domain(config), device)
    heads = search.derive(method, samples)
    write_derived(run, heads, search)
    return heads


def retrain_run(run: RunDirectory, device: torch.device) -> AucReport:
    """Retrain the derived network on train+val (section 4.1) and score it on the test classes."""
    config = run_config(run)
    domain = config_domain(config)
    if not run.architectures_path.is_file():
        raise FileNotFoundError(f"{run.architectures_path} is missing: run `galm search` (or `galm derive`) first")
    archs = read_architectures(run.architectures_path, domain.attribute_names)
    train = config.retrain
    net = None
    if config.search.retrain_init == "supernet":
        search = open_search(run, config, domain, device)
        net = FixedNetwork([archs[name] for name in domain.attribute_names], config.space)
        net.load_from_supernet(search.supernet, search.active.tolist())
    return train_and_evaluate(
        run, domain, archs, config.space, train, config.seed, device, net=net,
        extra_results={"retrain_init": config.search.retrain_init}, execution=config.execution,
    )


def evaluate_run(run: RunDirectory, split: str, device: torch.device) -> AucReport:
    """Score a run's trained network on one split and record it as `results-<split>.json`."""
    config = run_config(run)
    domain = config_domain(config)
    model = run.path / "model.pt"
    if not model.is_file():
        raise FileNotFoundError(f"{model} is missing: run `galm retrain` (or `galm train`) first")
    net, names = load_model(model)
    if names != list(domain.attribute_names):
        raise ValueError(f"{model} was trained for other attributes than domain {domain.name!r} has")
    report = evaluate_network(net, domain, split, config.train.eval_batch_size, device)
    write_json(run.path / f"results-{split}.json", {**report.to_json(), "domain": domain.name})
    return report


def choice_frequencies(archs: list[Architecture], space: SearchSpace) -> dict[str, dict[str, float]]:
    """How often each choice of each decision was taken (the paper's Table 4)."""
    counts = [Counter() for _ in space.decisions]
    for arch in archs:
        for counter, action in zip(counts, space.encode(arch)):
            counter[action] += 1
    return {
        decision.name: {str(choice): counter[i] / max(len(archs), 1) for i, choice in enumerate(decision.choices)}
        for decision, counter in zip(space.decisions, counts)
    }


