"""Where the logits come from: the run's network in PyTorch, or an exported ONNX file in
onnxruntime; both normalise decoded pixels with :func:`galm.engine.batches.images_to_tensor`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch

from galm.engine.batches import images_to_tensor
from galm.nn.network import FixedNetwork
from galm.predict.metadata import INPUT_NAME, OUTPUT_NAME, ModelCard
from galm.predict.packages import require


class Backend(Protocol):
    """Decoded pixels (B, R, R, 3) uint8 -> logits (B, m) float32."""

    def logits(self, pixels: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """The fixed network in eval mode on ``device``."""

    def __init__(self, net: FixedNetwork, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.net = net.float().eval().to(self.device)

    @torch.inference_mode()
    def logits(self, pixels: np.ndarray) -> np.ndarray:
        return self.net(images_to_tensor(pixels, self.device)).float().cpu().numpy()


class OnnxBackend:
    """An exported ONNX file in onnxruntime; its metadata says how to normalise."""

    def __init__(self, path: str | os.PathLike[str], providers: Sequence[str] | None = None) -> None:
        onnxruntime = require("onnxruntime", "running an ONNX model")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {path}")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise ValueError(f"{path} is not a readable ONNX model: {error}") from error
        self.card = ModelCard.from_properties(self.session.get_modelmeta().custom_metadata_map, str(path))
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != [INPUT_NAME]:
            raise ValueError(f"{path}: expected one input {INPUT_NAME!r}, found {inputs}")

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        p = self.card.pipeline
        images = images_to_tensor(pixels, "cpu", center=p.mean, scale=p.std).contiguous().numpy()
        return np.asarray(self.session.run([OUTPUT_NAME], {INPUT_NAME: images})[0], dtype=np.float32)
