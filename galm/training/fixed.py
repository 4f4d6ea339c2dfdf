"""Train a fixed network for given per-attribute architectures into a run directory, then score it."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from galm.config.schema import ExecutionConfig, SpaceConfig, TrainConfig
from galm.data.domain import AttributeDomain
from galm.data.info import unlearnable_attributes
from galm.engine.batches import PIXEL_CENTER, PIXEL_SCALE
from galm.engine import distributed
from galm.nn.network import FixedNetwork
from galm.runs.atomic import write_json
from galm.runs.directory import RunDirectory
from galm.runs.metrics import MetricsLogger, rewrite_metrics
from galm.runs.model_file import load_model, save_model
from galm.runs.preprocessing import PixelPipeline, write_pipeline
from galm.runs.thresholds import write_thresholds
from galm.space.search_space import Architecture
from galm.training.calibration import calibrate_thresholds
from galm.training.evaluate import AucReport
from galm.training.train import evaluate_network, predict, train_network

# Prepared caches record their resize mode; synthetic domains are drawn square, as a centre crop keeps them.
DEFAULT_RESIZE = "center_crop"
CALIBRATION_SPLIT = "val"


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
    fixed = net

    def save() -> None:
        record_inference_files(run, fixed, domain, space, config.eval_batch_size, device, config.splits)
        save_model(run.model_path, fixed.cpu(), domain.attribute_names)

    return train_and_record(run, domain, net, config, seed, device, extra_results, execution, excluded, save=save)


def train_and_record(
    run: RunDirectory,
    domain: AttributeDomain,
    net: torch.nn.Module,
    config: TrainConfig,
    seed: int,
    device: torch.device,
    extra_results: Mapping[str, Any] | None = None,
    execution: ExecutionConfig | None = None,
    excluded: Mapping[str, str] | None = None,
    save: Callable[[], None] | None = None,
) -> AucReport:
    """Train any network of the domain's attributes (images -> logits) on the configured splits,
    score it on the evaluation split and record the metrics and ``results.json`` in `run`; `save`
    (when given) writes the trained model before the results."""
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
    if save is not None:
        save()
    results = {
        **report.to_json(),
        "domain": domain.name,
        "trained_on": list(config.splits),
        **(extra_results or {}),
    }
    write_json(run.results_path, results)
    return report


def record_inference_files(
    run: RunDirectory, net: FixedNetwork, domain: AttributeDomain, space: SpaceConfig, batch_size: int,
    device: torch.device, trained_on: tuple[str, ...],
) -> None:
    """What applying the network needs besides its weights: ``preprocessing.json`` (the pixel
    pipeline of training) and ``thresholds.json`` (per-attribute thresholds on the val split)."""
    write_pipeline(run.preprocessing_path, pixel_pipeline(domain, space))
    if domain.split(CALIBRATION_SPLIT).size:
        scores = predict(net, domain, CALIBRATION_SPLIT, batch_size, device)
        labels = domain.labels[domain.split(CALIBRATION_SPLIT)]
    else:
        scores = labels = np.zeros((0, domain.n_attributes), dtype=np.float32)
    record = calibrate_thresholds(scores, labels, domain.attribute_names, CALIBRATION_SPLIT)
    record["trained_on"] = list(trained_on)
    if CALIBRATION_SPLIT in trained_on:
        record["note"] = (f"the network was trained on {CALIBRATION_SPLIT} as well, so these thresholds fit "
                          "training data (the test split would be fairer but is kept for the score)")
    write_thresholds(run.thresholds_path, record)


def pixel_pipeline(domain: AttributeDomain, space: SpaceConfig) -> PixelPipeline:
    """The pipeline that made the domain's pixels and normalises them for the network."""
    prepared = domain.metadata.get("prepare") if isinstance(domain.metadata, dict) else None
    resize = prepared.get("resize", DEFAULT_RESIZE) if isinstance(prepared, dict) else DEFAULT_RESIZE
    return PixelPipeline(space.resolution, str(resize), (PIXEL_CENTER,) * 3, (PIXEL_SCALE,) * 3)


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
