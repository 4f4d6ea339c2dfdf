"""`galm export`: a run's fixed network as an ONNX file or a torch.export archive (pt2), checked
against PyTorch on real validation images before it is put in place.

The exported graph is the network alone, in eval mode and float32: one input ``images`` (N, 3, R, R),
normalised as the metadata says, with a dynamic batch dimension, and one output ``logits`` (N, m).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from galm.data.sources import config_domain
from galm.engine.batches import images_to_tensor
from galm.predict.metadata import INPUT_NAME, OUTPUT_NAME, PT2_EXTRA_FILE, ModelCard
from galm.predict.packages import require
from galm.predict.trained_run import TrainedRun, open_trained_run
from galm.runs.atomic import atomic_path

EXPORT_FORMATS = ("onnx", "pt2")
# The largest logit difference between the export and PyTorch that passes the check.
TOLERANCE = 1e-4
CHECK_IMAGES = 16


class ExportMismatch(ValueError):
    """An exported model whose logits differ from PyTorch's by more than :data:`TOLERANCE`."""


@dataclass(frozen=True)
class ExportReport:
    """Where the export went and how it compared with PyTorch."""

    path: Path
    format: str
    max_abs_difference: float
    checked_on: str


def export_run(run_path: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str]) -> ExportReport:
    """Export the run's model to ``out`` (written only once the check has passed)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {list(EXPORT_FORMATS)}, got {fmt!r}")
    trained = open_trained_run(run_path)
    calibrated = trained.calibrated_thresholds() if trained.has_calibrated_thresholds() else None
    card = ModelCard(trained.attribute_names, trained.pipeline, calibrated)
    pixels, checked_on = check_pixels(trained)
    images = images_to_tensor(pixels, "cpu", center=card.pipeline.mean, scale=card.pipeline.std).contiguous()
    with torch.no_grad():
        expected = trained.net(images).numpy()
    # Traced with two images: a batch of one would be specialised to size 1 rather than kept dynamic.
    example = images[:2] if len(images) >= 2 else torch.cat([images, images])
    with atomic_path(out) as temporary:
        if fmt == "onnx":
            exported = _onnx_logits(trained, card, example, images, temporary)
        else:
            exported = _pt2_logits(trained, card, example, images, temporary)
        difference = float(np.abs(exported - expected).max())
        if not difference <= TOLERANCE:
            raise ExportMismatch(f"{out}: the {fmt} export differs from PyTorch by {difference:.3g} in the logits "
                                 f"(more than {TOLERANCE:g}) on {checked_on}; nothing was written")
    return ExportReport(Path(out), fmt, difference, checked_on)


def _batch_dimension() -> dict[str, dict[int, torch.export.Dim]]:
    return {INPUT_NAME: {0: torch.export.Dim("batch", min=1, max=1 << 20)}}


def _onnx_logits(trained: TrainedRun, card: ModelCard, example: torch.Tensor, images: torch.Tensor,
                 path: Path) -> np.ndarray:
    """Write the ONNX file at ``path`` with the card as metadata; its logits on ``images`` in onnxruntime."""
    onnx = require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")  # torch.onnx's dynamo exporter needs it
    onnxruntime = require("onnxruntime", "checking an ONNX export")
    with _quiet_exporter():
        program = torch.onnx.export(trained.net, (example,), None, dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=_batch_dimension(), verbose=False)
    program.save(str(path))
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in card.to_properties().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0])


def _pt2_logits(trained: TrainedRun, card: ModelCard, example: torch.Tensor, images: torch.Tensor,
                path: Path) -> np.ndarray:
    """Write the torch.export archive at ``path`` (the card as ``galm.json``); its logits on ``images``
    after loading it back."""
    program = torch.export.export(trained.net, (example,), dynamic_shapes=_batch_dimension())
    # Through open files: torch.export wants a path ending in .pt2 or a buffer, and the temporary is neither.
    with open(path, "wb") as handle:
        torch.export.save(program, handle, extra_files={PT2_EXTRA_FILE: json.dumps(card.to_properties())})
    extra = {PT2_EXTRA_FILE: ""}
    with open(path, "rb") as handle:
        loaded = torch.export.load(handle, extra_files=extra)
    if json.loads(extra[PT2_EXTRA_FILE]) != card.to_properties():
        raise ExportMismatch(f"{path}: the metadata read back differs from what was written")
    with torch.no_grad():
        return loaded.module()(images).numpy()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's notes that do not concern galm (torchvision operators it skips,
    deprecations inside torch)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        registration.setLevel(level)


def check_pixels(trained: TrainedRun, n: int = CHECK_IMAGES) -> tuple[np.ndarray, str]:
    """Up to ``n`` decoded images to compare an export on: the run's validation images (test or
    train if it has none), or seeded random pixels when its data cannot be opened here."""
    try:
        domain = config_domain(trained.run.config())
    except (OSError, ValueError) as error:
        r = trained.pipeline.resolution
        pixels = np.random.default_rng(0).integers(0, 256, (n, r, r, 3), dtype=np.uint8)
        return pixels, f"{n} random images (the run's data could not be opened: {error})"
    for split in ("val", "test", "train"):
        indices = domain.split(split)[:n] if split in domain.splits else np.empty(0, dtype=np.int64)
        if indices.size:
            return np.asarray(domain.images[indices]), f"{indices.size} {split} images of {domain.name}"
    raise ValueError(f"domain {domain.name!r} of {trained.run.path} has no images to check the export on")
