"""Training-time augmentation as one gather on uint8 batches, wherever the batch lives (CPU or GPU).

Random crop (shift by up to `crop_padding` pixels, edges replicated) and horizontal flip are both a
re-indexing of rows and columns, so one advanced-indexing read does them together without decoding,
padding copies or a Python loop over images. The random draws come from a CPU generator, so a batch
gets the same augmentation whether its images were streamed from the cache or kept on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations a training batch gets."""

    flip: bool = True
    crop_padding: int = 0

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be 0 (no crop) or positive, got {self.crop_padding}")

    @property
    def active(self) -> bool:
        return self.flip or self.crop_padding > 0

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image flip flags (B,) and (row, column) shifts (B, 2), drawn on the CPU."""
        flips = (torch.rand(batch_size, generator=generator) < 0.5) if self.flip else torch.zeros(batch_size, dtype=torch.bool)
        if self.crop_padding > 0:
            shifts = torch.randint(-self.crop_padding, self.crop_padding + 1, (batch_size, 2), generator=generator)
        else:
            shifts = torch.zeros(batch_size, 2, dtype=torch.long)
        return flips, shifts

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a (B, H, W, C) batch of any dtype on its own device."""
        if not self.active:
            return images
        flips, shifts = self.draw(images.shape[0], generator)
        return shift_and_flip(images, flips, shifts)


def shift_and_flip(images: torch.Tensor, flips: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Mirror the flagged images, then shift each by (dy, dx): out[b, i, j] = mirrored[b, i + dy, j + dx],
    with indices past the border clamped (edge replication, so no black frames enter the statistics)."""
    if not flips.any() and not shifts.any():
        return images
    batch, height, width = images.shape[:3]
    device = images.device
    flips, shifts = flips.to(device), shifts.to(device)
    rows = (torch.arange(height, device=device)[None] + shifts[:, :1]).clamp_(0, height - 1)
    columns = (torch.arange(width, device=device)[None] + shifts[:, 1:]).clamp_(0, width - 1)
    columns = torch.where(flips[:, None], width - 1 - columns, columns)
    index = torch.arange(batch, device=device)[:, None, None]
    return images[index, rows[:, :, None], columns[:, None, :]]
