"""Decoding one source image into a cached square: EXIF orientation, crop box, resize or pad.

Everything here works on one image at a time and is pure (no cache files), so the same function
runs in-process or in spawned worker processes; ``galm predict`` decodes through :func:`fit_image` too.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
from PIL import Image

RESIZE_MODES = ("center_crop", "pad")
# Fill of the borders in 'pad' mode: mid-grey, which the pixel normalisation maps to about zero.
PAD_VALUE = (128, 128, 128)
# JPEGs much larger than needed are decoded at a reduced DCT scale (never below the target size).
_DRAFT_BELOW = 0.5
_EXIF_ORIENTATION = 0x0112
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Greyscale modes of more than 8 bits per pixel (16-bit PNG and TIFF).
_WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def decode_one(task: tuple[str, tuple[float, float, float, float] | None, int, str, float]) -> tuple[str, Any]:
    """('ok', (R, R, 3) uint8) or ('dropped', why) or ('error', message) for one image file."""
    path, box, resolution, resize, margin = task
    try:
        with warnings.catch_warnings():
            # Between one and two times the limit Pillow only warns; fit_image's guard decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as source:
                return fit_image(source, box, resolution, resize, margin)
    except Image.DecompressionBombError as error:
        return "error", f"ImageTooLarge: {error} (PIL.Image.MAX_IMAGE_PIXELS; raise it to decode such images)"
    except Exception as error:  # Pillow raises many types for corrupt or unsupported files
        return "error", f"{type(error).__name__}: {error}"


def fit_image(
    source: Image.Image, box: Sequence[float] | None, resolution: int, resize: str, margin: float = 0.0
) -> tuple[str, Any]:
    """One opened image as ('ok', (R, R, 3) uint8) or ('dropped', why): the one pixel pipeline of
    ``galm data prepare`` and ``galm predict`` (EXIF orientation, crop box, RGB, size guard, resize).

    Raises :class:`ImageTooLarge` for an image over the decoding limit, and Pillow's errors for a
    damaged file; JPEGs much larger than needed are decoded at a reduced DCT scale first.
    """
    width, height = source.size
    if box is None:
        region: tuple[float, float, float, float] | None = (0.0, 0.0, float(width), float(height))
    else:
        region = clip_box(box, margin, width, height)
        if region is None:
            return "dropped", f"box lies outside the {width}x{height} image or is empty"
    region_w, region_h = region[2] - region[0], region[3] - region[1]
    side = min(region_w, region_h) if resize == "center_crop" else max(region_w, region_h)
    factor = resolution / side
    if source.format == "JPEG" and factor < _DRAFT_BELOW:
        source.draft("RGB", (max(1, math.ceil(width * factor)), max(1, math.ceil(height * factor))))
        sx, sy = source.size[0] / width, source.size[1] / height
        region = (region[0] * sx, region[1] * sy, region[2] * sx, region[3] * sy)
    check_decoded_size(*source.size)
    orientation = source.getexif().get(_EXIF_ORIENTATION, 1) if box is None else 1
    image = to_rgb(source)
    if orientation in _ORIENTATION_TRANSPOSE:
        image = image.transpose(_ORIENTATION_TRANSPOSE[orientation])
        region = (0.0, 0.0, float(image.width), float(image.height))
    return "ok", np.asarray(resize_region(image, region, resolution, resize), dtype=np.uint8)


class ImageTooLarge(ValueError):
    """An image with more pixels to decode than ``PIL.Image.MAX_IMAGE_PIXELS`` allows."""


def check_decoded_size(width: int, height: int) -> None:
    """Refuse to decode more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (None: no limit), so a huge
    image is an error naming its size rather than an out-of-memory."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise ImageTooLarge(
            f"{width}x{height} image ({width * height:,} pixels to decode) is over the limit of {limit:,} "
            "pixels (PIL.Image.MAX_IMAGE_PIXELS; raise it to decode such images)"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB: 16-bit greyscale (``I;16*``, and ``I`` holding values above 255) scaled
    by 255/65535, where Pillow would clip it to white; every other mode (L, P, LA, RGBA, CMYK, YCbCr,
    ...) through Pillow's conversion."""
    if image.mode in _WIDE_GREY_MODES:
        wide = np.asarray(image).astype(np.float64)
        if image.mode != "I" or wide.max(initial=0) > 255:
            wide = wide / 257.0  # 65535 -> 255
        image = Image.fromarray(np.clip(np.rint(wide), 0, 255).astype(np.uint8))
    return image if image.mode == "RGB" else image.convert("RGB")


def clip_box(
    box: Sequence[float], margin: float, width: int, height: int
) -> tuple[float, float, float, float] | None:
    """An (x1, y1, x2, y2) box widened by ``margin`` of its size per side and clipped; None if empty."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        return None
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    x1, x2 = max(0.0, x1 - dx), min(float(width), x2 + dx)
    y1, y2 = max(0.0, y1 - dy), min(float(height), y2 + dy)
    if x2 - x1 < 1.0 or y2 - y1 < 1.0:
        return None
    return x1, y1, x2, y2


def resize_region(
    image: Image.Image, region: tuple[float, float, float, float], resolution: int, resize: str
) -> Image.Image:
    """The region as a resolution×resolution image: centre square crop, or padded to a square.

    The region is cut out first (pixel-rounded) so nothing outside it bleeds into the result.
    """
    x1, y1, x2, y2 = region
    if resize == "center_crop":
        side = min(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x1, y1, x2, y2 = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
    left, top = max(0, round(x1)), max(0, round(y1))
    right, bottom = min(image.width, max(left + 1, round(x2))), min(image.height, max(top + 1, round(y2)))
    if (left, top, right, bottom) != (0, 0, image.width, image.height):
        image = image.crop((left, top, right, bottom))
    w, h = image.size
    if resize == "center_crop":
        if w != h:  # rounding left the crop a pixel off square
            side_px = min(w, h)
            image = image.crop(((w - side_px) // 2, (h - side_px) // 2,
                                (w - side_px) // 2 + side_px, (h - side_px) // 2 + side_px))
        return image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    scale = resolution / max(w, h)
    inner_w, inner_h = max(1, round(w * scale)), max(1, round(h * scale))
    inner = image.resize((inner_w, inner_h), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (resolution, resolution), PAD_VALUE)
    canvas.paste(inner, ((resolution - inner_w) // 2, (resolution - inner_h) // 2))
    return canvas
