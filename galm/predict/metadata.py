"""What an exported model carries about itself (ONNX ``metadata_props``, the ``galm.json`` of a pt2
archive): attribute names, the pixel pipeline, thresholds and galm's version, as string values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from galm import __version__
from galm.runs.preprocessing import PixelPipeline

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
DEFAULT_THRESHOLD = 0.5
# pt2 archives carry the same fields as one JSON object in this extra file.
PT2_EXTRA_FILE = "galm.json"


@dataclass(frozen=True)
class ModelCard:
    """An exported model's description: what goes in, what comes out, how to decide."""

    attribute_names: list[str]
    pipeline: PixelPipeline
    calibrated_thresholds: list[float] | None
    galm_version: str = __version__

    def to_properties(self) -> dict[str, str]:
        """String key -> string value pairs (ONNX ``metadata_props``)."""
        p = self.pipeline
        return {
            "galm_version": self.galm_version,
            "attribute_names": json.dumps(self.attribute_names),
            "input": f"{INPUT_NAME}: float32 (N, 3, {p.resolution}, {p.resolution}), RGB channels first, "
                     "(pixel - mean) / std with pixels in 0-255",
            "output": f"{OUTPUT_NAME}: float32 (N, {len(self.attribute_names)}), one logit per attribute in "
                      "attribute_names order; probability = sigmoid(logit)",
            "resolution": str(p.resolution),
            "resize": p.resize,
            "resize_help": "center_crop: the centred square of side min(width, height); pad: the whole image "
                           "centred on a square of mid-grey (128); then a Lanczos resize to resolution",
            "mean": json.dumps(list(p.mean)),
            "std": json.dumps(list(p.std)),
            "thresholds": json.dumps(self.calibrated_thresholds),
            "thresholds_help": "per-attribute thresholds calibrated on the run's validation split (balanced "
                               "accuracy), or null; decision = probability >= threshold "
                               f"(default {DEFAULT_THRESHOLD})",
        }

    @classmethod
    def from_properties(cls, properties: Mapping[str, str], where: str) -> ModelCard:
        """The card of an exported file; missing or malformed fields are an error naming ``where``."""
        try:
            names = json.loads(properties["attribute_names"])
            thresholds = json.loads(properties.get("thresholds", "null"))
            pipeline = PixelPipeline(int(properties["resolution"]), properties["resize"],
                                     tuple(json.loads(properties["mean"])), tuple(json.loads(properties["std"])))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where} carries no galm metadata (attribute_names, resolution, resize, mean, std): "
                             f"{error}; export it with `galm export`") from error
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where}: metadata attribute_names is not a list of names")
        if thresholds is not None and (not isinstance(thresholds, list) or len(thresholds) != len(names)):
            raise ValueError(f"{where}: metadata thresholds must be null or one number per attribute")
        return cls(names, pipeline, None if thresholds is None else [float(t) for t in thresholds],
                   properties.get("galm_version", "unknown"))
