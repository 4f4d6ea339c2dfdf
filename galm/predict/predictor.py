"""`galm.Predictor`: a trained run (or its ONNX export) applied to image files, PIL images or uint8
arrays, decoded, resized and normalised exactly as the run's training data were."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from galm.engine.device import resolve_device
from galm.engine.progress import progress
from galm.predict.backends import Backend, OnnxBackend, TorchBackend
from galm.predict.images import Decoded, ImageDecodeError, decode_inputs
from galm.predict.metadata import DEFAULT_THRESHOLD, ModelCard
from galm.predict.result import Predictions
from galm.predict.trained_run import open_trained_run
from galm.runs.preprocessing import PixelPipeline

CALIBRATED = "calibrated"
Threshold = float | str | Sequence[float]


class Predictor:
    """Attribute probabilities and decisions for images: ``Predictor.from_run(path).predict(images)``.

    ``threshold``: a number for every attribute, one number per attribute, or ``"calibrated"`` (the
    thresholds chosen on the run's validation split when it was trained).
    """

    def __init__(self, backend: Backend, card: ModelCard, source: str) -> None:
        self.backend = backend
        self.card = card
        self.source = source

    @classmethod
    def from_run(cls, path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Predictor:
        """The run's ``model.pt`` in PyTorch on ``device`` ('cpu', 'cuda', 'auto', ...)."""
        device = device if isinstance(device, torch.device) else resolve_device(device)
        trained = open_trained_run(path)
        calibrated = trained.calibrated_thresholds() if trained.has_calibrated_thresholds() else None
        card = ModelCard(trained.attribute_names, trained.pipeline, calibrated)
        return cls(TorchBackend(trained.net, device), card, str(trained.run.path))

    @classmethod
    def from_onnx(cls, path: str | os.PathLike[str], providers: Sequence[str] | None = None) -> Predictor:
        """A file written by ``galm export --format onnx``, in onnxruntime (CPU provider by default)."""
        backend = OnnxBackend(path, providers)
        return cls(backend, backend.card, str(path))

    @property
    def attribute_names(self) -> list[str]:
        return list(self.card.attribute_names)

    @property
    def pipeline(self) -> PixelPipeline:
        return self.card.pipeline

    def thresholds(self, threshold: Threshold = DEFAULT_THRESHOLD) -> np.ndarray:
        """The (m,) thresholds ``threshold`` means for this model."""
        m = len(self.card.attribute_names)
        if isinstance(threshold, str):
            if threshold != CALIBRATED:
                raise ValueError(f"threshold: expected a number in [0, 1] or {CALIBRATED!r}, got {threshold!r}")
            if self.card.calibrated_thresholds is None:
                raise FileNotFoundError(
                    f"{self.source} has no calibrated thresholds (thresholds.json: a run trained before galm "
                    "recorded them, or an export of such a run): give a number instead, e.g. --threshold 0.5 "
                    "(threshold=0.5), or train the run again")
            values = np.asarray(self.card.calibrated_thresholds, dtype=np.float64)
        else:
            values = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (m,)).copy() \
                if np.ndim(threshold) == 0 else np.asarray(threshold, dtype=np.float64)
        if values.shape != (m,) or not np.all((values >= 0) & (values <= 1)):
            raise ValueError(f"threshold: expected one number in [0, 1] or {m} of them, got {threshold!r}")
        return values

    def predict(
        self,
        images: Any,
        threshold: Threshold = DEFAULT_THRESHOLD,
        batch_size: int = 64,
        workers: int = 1,
        strict: bool = False,
        show_progress: bool = False,
    ) -> Predictions:
        """Predict every image: file paths, PIL images or (H, W[, 3|4]) uint8 arrays (a list, one of
        them, or an (N, H, W, 3) array). An image that cannot be decoded is left out and listed in
        ``failures`` (with ``strict``: an :class:`ImageDecodeError` at the first)."""
        items = _as_items(images)
        thresholds = self.thresholds(threshold)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        names: list[str] = []
        logits: list[np.ndarray] = []
        failures: list[tuple[str, str]] = []
        batch: list[Decoded] = []

        def flush() -> None:
            if batch:
                logits.append(self.backend.logits(np.stack([d.pixels for d in batch])))
                names.extend(d.name for d in batch)
                batch.clear()

        bar = progress(total=len(items), desc="predict", unit="image") if show_progress else None
        try:
            for item in decode_inputs(items, self.card.pipeline, workers):
                if item.pixels is None:
                    if strict:
                        raise ImageDecodeError(item.name, str(item.error))
                    failures.append((item.name, str(item.error)))
                else:
                    batch.append(item)
                    if len(batch) == batch_size:
                        flush()
                if bar is not None:
                    bar.update(1)
            flush()
        finally:
            if bar is not None:
                bar.close()
        m = len(self.card.attribute_names)
        stacked = np.concatenate(logits) if logits else np.zeros((0, m), dtype=np.float32)
        return Predictions(names, self.attribute_names, stacked, thresholds, failures)


def _as_items(images: Any) -> list[Any]:
    """The inputs as a list of single images."""
    if isinstance(images, (str, os.PathLike, Image.Image)):
        return [images]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images)
        if images.ndim in (2, 3):
            return [images]
        raise ValueError(f"expected an image array (H, W[, C]) or a batch (N, H, W, C), got shape {images.shape}")
    return list(images)
