"""Applying a finished run: `galm predict` (images to attribute probabilities and decisions),
`galm export` (ONNX, pt2) and :class:`Predictor`, all through the pixel pipeline of training."""

from galm.predict.predictor import Predictor
from galm.predict.result import Predictions

__all__ = ["Predictions", "Predictor"]
