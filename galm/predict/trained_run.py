"""A finished run opened for applying its model: the network, its attribute names, the pixel
pipeline it was trained with and, on request, its calibrated thresholds, each checked."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from galm.data.prepare.decode import RESIZE_MODES
from galm.data.prepare.manifest import read_manifest
from galm.engine.batches import PIXEL_CENTER, PIXEL_SCALE
from galm.nn.network import FixedNetwork
from galm.runs.architectures import read_architectures
from galm.runs.directory import MODEL_FILE, PREPROCESSING_FILE, THRESHOLDS_FILE, RunDirectory
from galm.runs.model_file import load_model
from galm.runs.preprocessing import PixelPipeline, read_pipeline
from galm.runs.thresholds import read_thresholds

# What a run made before preprocessing.json existed is taken to have used (prepare's default).
FALLBACK_RESIZE = "center_crop"


@dataclass
class TrainedRun:
    """What applying a run's model needs; ``pipeline_origin`` says where the pipeline came from."""

    run: RunDirectory
    net: FixedNetwork
    attribute_names: list[str]
    pipeline: PixelPipeline
    pipeline_origin: str

    def calibrated_thresholds(self) -> list[float]:
        """The thresholds chosen on the validation split at training time; a run without them is an
        error saying what to do instead."""
        try:
            return read_thresholds(self.run.thresholds_path, self.attribute_names)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{self.run.path} has no calibrated thresholds ({THRESHOLDS_FILE}; galm records them when it "
                "trains a model since this release): give a number instead, e.g. --threshold 0.5, or train "
                "the run again (galm retrain / galm train)") from None

    def has_calibrated_thresholds(self) -> bool:
        return self.run.thresholds_path.is_file()


def open_trained_run(path: str | os.PathLike[str]) -> TrainedRun:
    """The run at ``path`` with its model loaded (eval mode, float32, on the CPU) and checked
    against ``architectures.json``."""
    run = RunDirectory.open(path)
    if not run.model_path.is_file():
        raise FileNotFoundError(
            f"{run.path} has no trained model ({MODEL_FILE}): retrain a search first (galm retrain {run.path}), "
            "or give the directory of a run made by galm train, galm transfer --retrain or an experiment cell")
    net, names = load_model(run.model_path)
    check_architectures(run, net, names)
    pipeline, origin = run_pipeline(run)
    if pipeline.resolution != net.space.resolution:
        raise ValueError(f"{run.preprocessing_path} records {pipeline.resolution}-pixel inputs but "
                         f"{run.model_path} was built for {net.space.resolution} pixels")
    return TrainedRun(run, net.float().eval(), names, pipeline, origin)


def check_architectures(run: RunDirectory, net: FixedNetwork, names: list[str]) -> None:
    """``architectures.json`` (when present) must name the heads ``model.pt`` was trained with; a
    later ``galm derive`` without a retraining leaves them apart."""
    if not run.architectures_path.is_file():
        return
    recorded = read_architectures(run.architectures_path, names)
    for name, arch in zip(names, net.architectures):
        if recorded[name] != arch:
            raise ValueError(
                f"{run.architectures_path} and {run.model_path} disagree: attribute {name!r} has head "
                f"{recorded[name].short()} in the architecture file but {arch.short()} in the weights; "
                f"retrain the run (galm retrain {run.path}) so that the model matches its architectures")


def run_pipeline(run: RunDirectory) -> tuple[PixelPipeline, str]:
    """The pixel pipeline the run recorded, or, for a run from before ``preprocessing.json``, the one
    its configuration implies (``space.resolution``; the resize mode of its prepared cache's manifest,
    else centre crop)."""
    if run.preprocessing_path.is_file():
        pipeline = read_pipeline(run.preprocessing_path)
        origin = str(run.preprocessing_path)
    else:
        config = run.config()
        resize, where = FALLBACK_RESIZE, f"no {PREPROCESSING_FILE}: {FALLBACK_RESIZE} assumed"
        manifest = read_manifest(config.data.source) if config.data.source != "synthetic" else None
        recorded = ((manifest or {}).get("identity") or {}).get("options", {}).get("resize")
        if isinstance(recorded, str):
            resize, where = recorded, f"no {PREPROCESSING_FILE}: resize mode from {Path(config.data.source)}'s manifest"
        pipeline = PixelPipeline(config.space.resolution, resize, (PIXEL_CENTER,) * 3, (PIXEL_SCALE,) * 3)
        origin = f"{run.config_path} ({where})"
    if pipeline.resize not in RESIZE_MODES:
        raise ValueError(f"{origin}: resize mode {pipeline.resize!r} is not one of {list(RESIZE_MODES)}")
    return pipeline, origin
