"""Drawing a planned synthetic domain's images, vectorised over chunks of images.

Per factor a sampler draws every image's parameters (place, size, phase, colour jitter) from the
image seed, then a painter draws the cue into a channel-first float canvas over the domain's
background: fine texture, a shape, a tinted colour region, a count of dots, a placed diamond.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from galm.config.schema import SyntheticConfig
from galm.data.synthetic.plan import DomainPlan, FactorSpec

_MAX_DOTS = 9
_CHUNK_PIXELS = 1 << 18  # images rendered at once: small enough to stay in cache
_DRAW_ORDER = ("colour_layout", "shape", "position_size", "texture", "count")


def render_images(
    plan: DomainPlan,
    image_factors: np.ndarray,
    config: SyntheticConfig,
    rng: np.random.Generator,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """(N, R, R, 3) uint8 images drawing each image's factor values; vectorised over image chunks."""
    n, size = image_factors.shape[0], config.resolution
    layouts = [_SAMPLERS[f.cue](image_factors[:, k], size, rng, f) for k, f in enumerate(plan.factors)]
    background = _sample_background(n, rng)
    order = sorted(range(len(plan.factors)), key=lambda k: _DRAW_ORDER.index(plan.factors[k].cue))
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    grid = np.arange(size, dtype=np.float32) + 0.5
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        canvas = _paint_background(background, rows, grid, plan)
        for k in order:
            factor = plan.factors[k]
            _PAINTERS[factor.cue](canvas, _take(layouts[k], rows), grid, factor)
        if config.pixel_noise > 0:
            canvas += config.pixel_noise * noise_rng.standard_normal(canvas.shape, dtype=np.float32)
        np.clip(canvas, 0.0, 1.0, out=canvas)
        images[rows] = (canvas * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 3, 0)
    return images


Layout = dict[str, np.ndarray]


def _take(layout: Layout, rows: slice) -> Layout:
    """The rows of every per-image parameter, shaped (n, 1, 1) for broadcasting over pixels."""
    return {key: value[rows].reshape((-1, 1, 1) + value.shape[1:]) for key, value in layout.items()}


def _colour_jitter(n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-image per-channel brightness jitter of a factor's colour."""
    return rng.uniform(0.8, 1.1, (n, 3)).astype(np.float32)


def _sample_background(n: int, rng: np.random.Generator) -> Layout:
    """Per-image background waves: two directions and phases, a frequency position and a tint."""
    return {
        "angle": rng.uniform(0, 2 * np.pi, (n, 2)).astype(np.float32),
        "phase": rng.uniform(0, 2 * np.pi, (n, 2)).astype(np.float32),
        "freq": rng.uniform(0, 1, (n, 2)).astype(np.float32),
        "tint": rng.uniform(0.9, 1.1, (n, 3)).astype(np.float32),
    }


def _paint_background(background: Layout, rows: slice, grid: np.ndarray, plan: DomainPlan) -> np.ndarray:
    """Channel-first (3, n, R, R) blend of the domain's two palette colours along two low-frequency waves."""
    style = plan.background
    size = grid.size
    x, y = grid[None, None, :], grid[None, :, None]
    angle, phase = background["angle"][rows], background["phase"][rows]
    span = style.high_frequency - style.low_frequency
    freq = (style.low_frequency + span * background["freq"][rows]) * 2 * np.pi / size
    t = np.zeros((angle.shape[0], size, size), dtype=np.float32)
    for w, weight in enumerate((1.0 - style.blotch, style.blotch)):
        cos = (np.cos(angle[:, w]) * freq[:, w])[:, None, None]
        sin = (np.sin(angle[:, w]) * freq[:, w])[:, None, None]
        t += weight * np.sin(x * cos + y * sin + phase[:, w, None, None])
    t = 0.5 + 0.5 * t
    tint = background["tint"][rows].T[:, :, None, None]
    dark_c = np.asarray(style.dark, dtype=np.float32)[:, None, None, None] * tint
    light_c = np.asarray(style.light, dtype=np.float32)[:, None, None, None] * tint
    return dark_c + t[None] * (light_c - dark_c)


def _fill(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray, alpha: float = 1.0) -> None:
    """Blend ``colour`` (n,1,1,3) into the channel-first ``canvas`` (3,n,R,R) where ``mask`` (n,R,R) holds."""
    weight = mask * np.float32(alpha)
    for c in range(3):
        plane = canvas[c]
        plane += weight * (colour[..., c] - plane)


def _factor_colour(layout: Layout, factor: FactorSpec) -> np.ndarray:
    """A factor's colour with each image's jitter, shaped (n, 1, 1, 3)."""
    return np.clip(np.asarray(factor.rgb, dtype=np.float32) * layout["jitter"], 0.0, 1.0)


def _sample_texture(values: np.ndarray, size: int, rng: np.random.Generator, factor: FactorSpec) -> Layout:
    """A square patch at a random place; the factor picks fine (2 px) or coarse stripes inside."""
    n = values.size
    side = rng.uniform(0.24, 0.34, n) * size
    return {
        "value": values.astype(bool),
        "x0": rng.uniform(0, 1, n) * (size - side),
        "y0": rng.uniform(0, 1, n) * (size - side),
        "side": side,
        "phase": rng.integers(0, 16, n).astype(np.float32),
        "jitter": _colour_jitter(n, rng),
    }


def _paint_texture(canvas: np.ndarray, layout: Layout, grid: np.ndarray, factor: FactorSpec) -> None:
    """Stripes or checker of period 2 px (factor on) or ``R/8`` px (off) in the patch."""
    size = grid.size
    coarse_half = max(3.0, size / 16.0)
    half = np.where(layout["value"], 1.0, coarse_half).astype(np.float32)
    x, y = grid[None, None, :], grid[None, :, None]
    inside = (x >= layout["x0"]) & (x < layout["x0"] + layout["side"])
    inside = inside & (y >= layout["y0"]) & (y < layout["y0"] + layout["side"])
    bars_x = np.floor((x - 0.5 + layout["phase"]) / half) % 2
    bars_y = np.floor((y - 0.5 + layout["phase"]) / half) % 2
    if factor.variant == "vertical":
        band = np.broadcast_to(bars_x, inside.shape)
    elif factor.variant == "horizontal":
        band = np.broadcast_to(bars_y, inside.shape)
    else:
        band = (bars_x + bars_y) % 2
    light = _factor_colour(layout, factor)
    _fill(canvas, inside & (band > 0), light)
    _fill(canvas, inside & (band == 0), light * 0.3)


def _sample_shape(values: np.ndarray, size: int, rng: np.random.Generator, factor: FactorSpec) -> Layout:
    """A large object of equal area either way, at a random place."""
    n = values.size
    radius = rng.uniform(0.14, 0.2, n) * size
    return {
        "value": values.astype(bool),
        "cx": radius + rng.uniform(0, 1, n) * (size - 2 * radius),
        "cy": radius + rng.uniform(0, 1, n) * (size - 2 * radius),
        "radius": radius,
        "jitter": _colour_jitter(n, rng),
    }


def _shape_mask(kind: str, dx: np.ndarray, dy: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Mask of a circle, square or upward triangle of area pi*r^2 centred at dx = dy = 0."""
    if kind == "circle":
        return dx * dx + dy * dy < radius * radius
    if kind == "square":
        half = radius * (np.sqrt(np.pi) / 2)
        return (np.abs(dx) < half) & (np.abs(dy) < half)
    side = radius * np.sqrt(2 * np.pi)
    t = (dy + side / 2) / side
    return (t >= 0) & (t <= 1) & (np.abs(dx) <= t * side / 2)


def _paint_shape(canvas: np.ndarray, layout: Layout, grid: np.ndarray, factor: FactorSpec) -> None:
    """The first shape of the pair when the factor is on, the second when off."""
    first, second = factor.variant.split("_vs_")
    dx = grid[None, None, :] - layout["cx"]
    dy = grid[None, :, None] - layout["cy"]
    on = _shape_mask(first, dx, dy, layout["radius"])
    off = _shape_mask(second, dx, dy, layout["radius"])
    _fill(canvas, np.where(layout["value"], on, off), _factor_colour(layout, factor))


def _sample_layout(values: np.ndarray, size: int, rng: np.random.Generator, factor: FactorSpec) -> Layout:
    """Where the boundary between the two regions falls."""
    n = values.size
    return {
        "value": values.astype(bool),
        "bx": rng.uniform(0.4, 0.6, n) * size,
        "by": rng.uniform(0.4, 0.6, n) * size,
        "jitter": _colour_jitter(n, rng),
    }


def _paint_layout(canvas: np.ndarray, layout: Layout, grid: np.ndarray, factor: FactorSpec) -> None:
    """Tint the first region (factor on) or the opposite one (off) with the factor's hue."""
    x, y = grid[None, None, :], grid[None, :, None]
    left, top = x < layout["bx"], y < layout["by"]
    if factor.variant == "left_vs_right":
        first, second = left, ~left
    elif factor.variant == "top_vs_bottom":
        first, second = top, ~top
    else:
        first, second = left & top, ~left & ~top
    mask = np.where(layout["value"], first, second)
    _fill(canvas, mask, _factor_colour(layout, factor), alpha=0.55)


def _sample_count(values: np.ndarray, size: int, rng: np.random.Generator, factor: FactorSpec) -> Layout:
    """Many (6-9) or few (1-2) small dots at random places."""
    n = values.size
    radius = np.maximum(1.2, rng.uniform(0.03, 0.045, n) * size)
    count = np.where(values.astype(bool), rng.integers(6, _MAX_DOTS + 1, n), rng.integers(1, 3, n))
    span = size - 2 * radius[:, None]
    return {
        "count": count,
        "radius": radius,
        "cx": radius[:, None] + rng.uniform(0, 1, (n, _MAX_DOTS)) * span,
        "cy": radius[:, None] + rng.uniform(0, 1, (n, _MAX_DOTS)) * span,
        "jitter": _colour_jitter(n, rng),
    }


def _paint_count(canvas: np.ndarray, layout: Layout, grid: np.ndarray, factor: FactorSpec) -> None:
    """Draw the first ``count`` dots of each image."""
    x, y = grid[None, None, :], grid[None, :, None]
    radius2 = layout["radius"] ** 2
    mask = np.zeros(canvas.shape[1:], dtype=bool)
    for j in range(_MAX_DOTS):
        dot = (x - layout["cx"][..., j]) ** 2 + (y - layout["cy"][..., j]) ** 2 < radius2
        mask |= dot & (layout["count"] > j)
    _fill(canvas, mask, _factor_colour(layout, factor))


def _sample_placement(values: np.ndarray, size: int, rng: np.random.Generator, factor: FactorSpec) -> Layout:
    """A diamond in the top (left) half or the bottom (right) half, or large versus small."""
    n = values.size
    on = values.astype(bool)
    if factor.variant == "large":
        radius = np.where(on, rng.uniform(0.14, 0.18, n), rng.uniform(0.06, 0.08, n)) * size
        cx = radius + rng.uniform(0, 1, n) * (size - 2 * radius)
        cy = radius + rng.uniform(0, 1, n) * (size - 2 * radius)
    else:
        radius = rng.uniform(0.08, 0.11, n) * size
        along = np.where(on, rng.uniform(0.12, 0.38, n), rng.uniform(0.62, 0.88, n)) * size
        across = rng.uniform(0.12, 0.88, n) * size
        cx, cy = (across, along) if factor.variant == "top" else (along, across)
    return {"cx": cx, "cy": cy, "radius": radius, "jitter": _colour_jitter(n, rng)}


def _paint_placement(canvas: np.ndarray, layout: Layout, grid: np.ndarray, factor: FactorSpec) -> None:
    """Draw the diamond."""
    dx = np.abs(grid[None, None, :] - layout["cx"])
    dy = np.abs(grid[None, :, None] - layout["cy"])
    _fill(canvas, dx + dy < layout["radius"], _factor_colour(layout, factor))


_SAMPLERS: dict[str, Callable[[np.ndarray, int, np.random.Generator, FactorSpec], Layout]] = {
    "texture": _sample_texture,
    "shape": _sample_shape,
    "colour_layout": _sample_layout,
    "count": _sample_count,
    "position_size": _sample_placement,
}
_PAINTERS: dict[str, Callable[[np.ndarray, Layout, np.ndarray, FactorSpec], None]] = {
    "texture": _paint_texture,
    "shape": _paint_shape,
    "colour_layout": _paint_layout,
    "count": _paint_count,
    "position_size": _paint_placement,
}
