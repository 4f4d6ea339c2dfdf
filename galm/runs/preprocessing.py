"""`preprocessing.json`: how a run's network wants its pixels (resolution, resize mode, normalisation),
recorded when it is trained so that `galm predict` and `galm export` feed it what training fed it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from galm.runs.atomic import read_json, write_json

@dataclass(frozen=True)
class PixelPipeline:
    """An RGB image to the network's input: a ``resolution``-pixel square (``resize``: centre crop or
    pad), then ``(pixel - mean) / std`` per channel, pixels in 0-255, channels first (N, 3, H, W)."""

    resolution: int
    resize: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.resolution < 1:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if not self.resize:
            raise ValueError("resize must name a resize mode (galm.data.prepare.RESIZE_MODES)")
        if len(self.mean) != 3 or len(self.std) != 3 or not all(s > 0 for s in self.std):
            raise ValueError(f"mean and std must be three numbers each, std positive; got {self.mean}, {self.std}")

    def to_json(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "resize": self.resize, "mean": list(self.mean),
                "std": list(self.std), "channels": "RGB", "layout": "NCHW", "pixel_range": [0, 255]}

    @classmethod
    def from_json(cls, data: Any, where: str) -> PixelPipeline:
        """The pipeline of a JSON record; a missing or mistyped field is an error naming ``where``."""
        try:
            return cls(int(data["resolution"]), str(data["resize"]),
                       tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: not a pixel pipeline record (resolution, resize, mean, std): {error}") from error


def write_pipeline(path: Path, pipeline: PixelPipeline) -> None:
    """Record the pipeline (atomically)."""
    write_json(path, pipeline.to_json())


def read_pipeline(path: Path) -> PixelPipeline:
    """The pipeline a run recorded; a malformed file is an error naming it."""
    return PixelPipeline.from_json(read_json(path), str(path))
