"""A domain's images and labels as minibatches on the training device: streamed or kept on the device.

Streamed: each batch is read from the prepared uint8 cache (memory-mapped; no decoding) and copied to
the device. Cached: the whole uint8 domain is copied to the device once and batches are gathered
there, which removes the per-step host-to-device copy on a GPU. Either way, augmentation and
normalisation run as tensor operations on the device, and both give the same batches.
"""

from __future__ import annotations

import numpy as np
import torch

from galm.config.schema import INPUT_CACHES, InputCache
from galm.engine.augment import Augmentation, shift_and_flip
from galm.engine.batches import images_to_tensor

# 'auto' caches on an accelerator when the domain takes at most this share of its free memory.
DEVICE_CACHE_SHARE = 0.4


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether `nbytes` of input data leave most of an accelerator's free memory to the model."""
    if device.type != "cuda":
        return False  # on the CPU the memory-mapped cache already is host memory
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_CACHE_SHARE * free


def resolve_input_cache(cache: InputCache, nbytes: int, device: torch.device) -> bool:
    """True when the inputs should live on the device."""
    if cache not in INPUT_CACHES:
        raise ValueError(f"input_cache must be one of {INPUT_CACHES}, got {cache!r}")
    if cache == "auto":
        return fits_on_device(nbytes, device)
    return cache == "device"


class DomainInputs:
    """Minibatches of uint8 images (normalised on the device) and float labels of one domain."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | torch.Tensor,
        device: torch.device | str = "cpu",
        cache: InputCache = "auto",
    ) -> None:
        self.device = torch.device(device)
        labels = torch.as_tensor(labels, dtype=torch.float32)
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} label rows")
        self.cached = resolve_input_cache(cache, images.nbytes + labels.numel() * 4, self.device)
        if self.cached:
            self._images: np.ndarray | torch.Tensor = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
            self._labels = labels.to(self.device)
        else:
            self._images, self._labels = images, labels

    def raw(self, batch: np.ndarray) -> torch.Tensor:
        """The batch's (B, H, W, 3) uint8 pixels on the device."""
        if self.cached:
            return self._images[torch.as_tensor(batch, device=self.device)]
        return torch.as_tensor(np.ascontiguousarray(self._images[batch])).to(self.device, non_blocking=True)

    def images(
        self, batch: np.ndarray, augmentation: Augmentation | None = None, generator: torch.Generator | None = None,
        rows: slice | None = None,
    ) -> torch.Tensor:
        """(B, 3, H, W) float32 network input, augmented when an augmentation and generator are given.

        `rows`: only these positions of the batch (one process's shard of a data-parallel
        minibatch); the augmentation is still drawn for the whole batch, so every image is
        augmented as it would be in one process."""
        if rows is None:
            pixels = self.raw(batch)
            if augmentation is not None and generator is not None:
                pixels = augmentation.apply(pixels, generator)
            return images_to_tensor(pixels, self.device)
        pixels = self.raw(batch[rows])
        if augmentation is not None and generator is not None and augmentation.active:
            flips, shifts = augmentation.draw(len(batch), generator)
            pixels = shift_and_flip(pixels, flips[rows], shifts[rows])
        return images_to_tensor(pixels, self.device)

    def labels(self, batch: np.ndarray, columns: torch.Tensor | None = None) -> torch.Tensor:
        """(B, A) labels of the batch on the device (NaN = unknown), optionally only some attributes."""
        rows = self._labels[torch.as_tensor(batch, device=self._labels.device)]
        if columns is not None:
            rows = rows[:, columns.to(rows.device)]
        return rows.to(self.device)
