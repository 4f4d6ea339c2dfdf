import numpy as np
import pytest
import torch

from galm.engine.augment import Augmentation, shift_and_flip


def _images(batch: int = 5, size: int = 7) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.as_tensor(rng.integers(0, 256, size=(batch, size, size, 3), dtype=np.uint8))


def _reference(image: np.ndarray, flip: bool, dy: int, dx: int, pad: int) -> np.ndarray:
    """Flip, pad by edge replication, crop: the textbook definition the gather must reproduce."""
    source = image[:, ::-1] if flip else image
    padded = np.pad(source, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = image.shape[:2]
    return padded[pad + dy : pad + dy + h, pad + dx : pad + dx + w]


def test_shift_and_flip_matches_pad_flip_crop_reference():
    images = _images()
    flips = torch.tensor([False, True, False, True, True])
    shifts = torch.tensor([[0, 0], [0, 0], [2, -1], [-3, 3], [1, 2]])
    out = shift_and_flip(images, flips, shifts)
    assert out.shape == images.shape and out.dtype == torch.uint8
    for b in range(5):
        expected = _reference(images[b].numpy(), bool(flips[b]), int(shifts[b, 0]), int(shifts[b, 1]), pad=3)
        np.testing.assert_array_equal(out[b].numpy(), expected)


def test_augmentation_is_seeded_and_draws_nothing_when_off():
    images = _images()
    aug = Augmentation(flip=True, crop_padding=2)
    first = aug.apply(images, torch.Generator().manual_seed(3))
    again = aug.apply(images, torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and not torch.equal(first, images)
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    assert torch.equal(Augmentation(flip=False, crop_padding=0).apply(images, generator), images)
    assert torch.equal(generator.get_state(), state)


def test_flip_only_keeps_or_mirrors_each_image():
    images = _images(batch=16)
    out = Augmentation(flip=True).apply(images, torch.Generator().manual_seed(0))
    mirrored = [torch.equal(out[i], images[i].flip(1)) for i in range(16)]
    kept = [torch.equal(out[i], images[i]) for i in range(16)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def test_negative_crop_padding_is_rejected():
    with pytest.raises(ValueError, match="crop_padding"):
        Augmentation(crop_padding=-1)
