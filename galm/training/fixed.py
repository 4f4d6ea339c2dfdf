"""Train a fixed network for given per-attribute architectures into a run directory, then score it."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from galm.config.schema import ExecutionConfig, SpaceConfig, TrainConfig
from galm.data.domain import AttributeDomain
from galm.data.info import unlearnable_attributes
from galm.engine import distributed
from galm.nn.network import FixedNetwork
from galm.runs.atomic import write_json
from galm.runs.directory import RunDirectory
from galm.runs.metrics import MetricsLogger, rewrite_metrics
from galm.runs.model_file import load_model, save_model
from galm.space.search_space import Architecture
from galm.training.evaluate import AucReport
from galm.training.train import evaluate_network, train_network


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
    excluded: Mapping[str, str] | None = None,
) -> AucReport:
    """Train the fixed network of `archs` on the configured splits, score it, record everything in `run`."""
    ordered = [archs[name] for name in domain.attribute_names]
    if net is None:
        torch.manual_seed(seed)
        net = FixedNetwork(ordered, space)
    if not distributed.current().is_main:  # under torchrun: train on this rank's shards, rank 0 records
        train_network(net, domain, config, seed, splits=config.splits, device=device, execution=execution)
        return evaluate_network(net, domain, config.eval_split, config.eval_batch_size, device, excluded)
    # A retraining that is run again (after a crash, or by hand) replaces the earlier one's records.
    rewrite_metrics(run.metrics_path, lambda record: record.get("phase") not in ("retrain", "evaluate"))
    with MetricsLogger(run) as log:
        train_network(
            net, domain, config, seed, splits=config.splits, device=device,
            on_epoch=lambda epoch, record: log.log(epoch, "retrain", {"loss": record["loss"]}),
            execution=execution,
        )
        report = evaluate_network(net, domain, config.eval_split, config.eval_batch_size, device, excluded)
        log.log(config.epochs, "evaluate", {"mauc": report.mauc})
    save_model(run.model_path, net.cpu(), domain.attribute_names)
    results = {
        **report.to_json(),
        "domain": domain.name,
        "trained_on": list(config.splits),
        **(extra_results or {}),
    }
    write_json(run.results_path, results)
    return report


def evaluate_run(run: RunDirectory, domain: AttributeDomain, split: str, device: torch.device) -> AucReport:
    """Score a run's trained network on one split and record it as `results-<split>.json`."""
    config = run.config()
    if not run.model_path.is_file():
        raise FileNotFoundError(f"{run.model_path} is missing: run `galm retrain` (or `galm train`) first")
    net, names = load_model(run.model_path)
    if names != list(domain.attribute_names):
        raise ValueError(f"{run.model_path} was trained for other attributes than domain {domain.name!r} has")
    excluded = unlearnable_attributes(domain, config.search.min_positives)
    report = evaluate_network(net, domain, split, config.train.eval_batch_size, device, excluded)
    write_json(run.split_results_path(split), {**report.to_json(), "domain": domain.name})
    return report
