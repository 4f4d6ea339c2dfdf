"""Minibatches from a prepared domain: seeded order and uint8 pixels to normalised tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

# uint8 pixels are mapped to roughly zero mean and unit spread; BatchNorm after every conv
# makes the exact constants unimportant, so no dataset statistics are needed.
PIXEL_CENTER = 127.5
PIXEL_SCALE = 64.0


def images_to_tensor(
    images: np.ndarray | torch.Tensor,
    device: torch.device | str = "cpu",
    center: float | Sequence[float] = PIXEL_CENTER,
    scale: float | Sequence[float] = PIXEL_SCALE,
) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 on `device`, ``(pixel - center) / scale`` (one
    number, or one per channel as an exported model's metadata records them)."""
    tensor = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    tensor = tensor.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    return (tensor - _per_channel(center, tensor)) / _per_channel(scale, tensor)


def _per_channel(value: float | Sequence[float], like: torch.Tensor) -> float | torch.Tensor:
    """A number as is; per-channel values as a (1, C, 1, 1) tensor beside ``like``."""
    if isinstance(value, (int, float)):
        return float(value)
    return torch.tensor([float(v) for v in value], dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


@dataclass
class BatchOrder:
    """Seeded, resumable order of minibatches over a fixed index set (epoch-wise reshuffle)."""

    indices: np.ndarray
    batch_size: int
    seed: int
    epoch: int = 0
    position: int = 0
    drop_last: bool = True

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if len(self.indices) == 0:
            raise ValueError("cannot draw minibatches from an empty split")
        self.batch_size = min(self.batch_size, len(self.indices))

    def _permutation(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        return self.indices[rng.permutation(len(self.indices))]

    @property
    def batches_per_epoch(self) -> int:
        full, rest = divmod(len(self.indices), self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def next(self) -> np.ndarray:
        """The next minibatch of indices (sorted, for memory-mapped reads), advancing epochs as needed."""
        if self.position >= self.batches_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        order = self._permutation()
        start = self.position * self.batch_size
        self.position += 1
        return np.sort(order[start:start + self.batch_size])

    def epoch_batches(self) -> Iterator[np.ndarray]:
        """All remaining minibatches of the current epoch."""
        while self.position < self.batches_per_epoch:
            yield self.next()
        self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch, self.position = int(state["seed"]), int(state["epoch"]), int(state["position"])


def sequential_batches(indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Fixed-order minibatches for evaluation."""
    for start in range(0, len(indices), batch_size):
        yield indices[start:start + batch_size]
