"""Built-in synthetic attribute domains: seeded RGB images whose attributes come from latent factors.

Each domain (``syn1``, ``syn2``, ...) has classes with a binary signature over latent factors:
a pool of *shared* factors used by every domain plus *private* factors of its own. Every factor
is drawn with a visual cue (fine texture, global shape, colour layout, counts, position/size).
``shared_cues`` says how a shared factor looks across domains: ``"rotate"`` (default) gives it a
different cue type in each domain, so nothing visible links it across domains; ``"keep"`` keeps its
cue type (texture stays texture) with a different variant and hue per domain; ``"same"`` draws it
exactly as the first domain does (same cue, variant and colour), the paper's premise that an
attribute such as "striped" looks alike on animals and on objects. The domains still differ in
background, classes, private factors and which factors each attribute combines. Attributes derive
from one factor or from two (AND / OR / XOR). Cues differ in what a network must see (1-2 px texture
needs early high-resolution features; shape needs a large receptive field), so architecture choices
matter.
The ground truth goes into each domain's ``metadata`` for later analyses.
"""

from __future__ import annotations

import colorsys
import itertools
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Sequence

import numpy as np

from galm.data.domain import (
    LABEL_LEVELS,
    AttributeDomain,
    choose_test_classes,
    class_split,
)

CUES = ("texture", "shape", "colour_layout", "count", "position_size")
RULES = ("and", "or", "xor")
SHARED_CUE_MODES = ("rotate", "keep", "same")
_HUE_NAMES = (
    "red", "orange", "yellow", "lime", "green", "teal", "cyan", "azure", "blue", "violet", "magenta", "pink"
)
_TEXTURE_ORIENTATIONS = ("vertical", "horizontal", "checker")
_SHAPE_PAIRS = (("circle", "square"), ("triangle", "square"), ("circle", "triangle"))
_LAYOUT_REGIONS = (("left", "right"), ("top", "bottom"), ("top_left", "bottom_right"))
_PLACEMENT_MODES = ("top", "left", "large")
_MAX_DOTS = 9
_SIGNATURE_ATTEMPTS = 200
_CHUNK_PIXELS = 1 << 18  # images rendered at once: small enough to stay in cache


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes, noise levels and seed of the synthetic domains."""

    n_domains: int = 3
    classes_per_domain: int = 12
    images_per_class: int = 60
    resolution: int = 64
    n_shared_factors: int = 6
    n_private_factors: int = 4
    attributes_per_domain: int = 12
    test_class_fraction: float = 0.25
    val_fraction: float = 0.2
    # 'images': val is a carve of every training class's images; 'classes': whole training classes
    # are held out for val, so the search's reward measures generalisation to unseen classes.
    val_split: str = "images"
    label_noise: float = 0.0
    image_flip_prob: float = 0.1
    pixel_noise: float = 0.08
    label_level: str = "image"
    # How a shared factor is drawn across domains: 'rotate' = another cue type per domain;
    # 'keep' = the same cue type everywhere, with another variant and hue per domain;
    # 'same' = drawn as in the first domain (same cue, variant and colour).
    shared_cues: str = "rotate"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_domains", "images_per_class", "attributes_per_domain"):
            if getattr(self, name) < 1:
                raise ValueError(f"synthetic.{name} must be at least 1, got {getattr(self, name)}")
        if self.classes_per_domain < 2:
            raise ValueError(f"synthetic.classes_per_domain must be at least 2, got {self.classes_per_domain}")
        if self.resolution < 16:
            raise ValueError(f"synthetic.resolution must be at least 16, got {self.resolution}")
        if self.n_shared_factors < 0 or self.n_private_factors < 0 or self.factors_per_domain < 1:
            raise ValueError("synthetic factor counts must be non-negative with at least one factor per domain")
        if self.attributes_per_domain > self.max_attributes:
            raise ValueError(
                f"synthetic.attributes_per_domain must be at most {self.max_attributes} "
                f"for {self.factors_per_domain} factors, got {self.attributes_per_domain}"
            )
        for name in ("test_class_fraction", "val_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"synthetic.{name} must lie in (0, 1), got {getattr(self, name)}")
        for name in ("label_noise", "image_flip_prob"):
            if not 0.0 <= getattr(self, name) <= 0.5:
                raise ValueError(f"synthetic.{name} must lie in [0, 0.5], got {getattr(self, name)}")
        if self.pixel_noise < 0:
            raise ValueError(f"synthetic.pixel_noise must be non-negative, got {self.pixel_noise}")
        if self.label_level not in LABEL_LEVELS:
            raise ValueError(f"synthetic.label_level must be one of {LABEL_LEVELS}, got {self.label_level!r}")
        if self.val_split not in ("images", "classes"):
            raise ValueError(f"synthetic.val_split must be 'images' or 'classes', got {self.val_split!r}")
        if self.shared_cues not in SHARED_CUE_MODES:
            raise ValueError(f"synthetic.shared_cues must be one of {SHARED_CUE_MODES}, got {self.shared_cues!r}")
        if self.seed < 0:
            raise ValueError(f"synthetic.seed must be non-negative, got {self.seed}")

    @property
    def factors_per_domain(self) -> int:
        """Shared plus private factors seen by one domain."""
        return self.n_shared_factors + self.n_private_factors

    @property
    def max_attributes(self) -> int:
        """Distinct attributes one domain can define: one per factor plus three rules per factor pair."""
        f = self.factors_per_domain
        return f + 3 * f * (f - 1) // 2

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON/YAML."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SyntheticConfig":
        """Build from a dict, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown synthetic config keys {unknown}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class FactorSpec:
    """A latent binary factor as one domain draws it."""

    id: str
    cue: str
    variant: str
    rgb: tuple[float, float, float]
    label: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description for the ground truth."""
        return {"id": self.id, "cue": self.cue, "variant": self.variant, "rgb": list(self.rgb), "label": self.label}


@dataclass(frozen=True)
class AttributeSpec:
    """An attribute: a rule over one or two of the domain's factors (positions in its factor list)."""

    name: str
    factors: tuple[int, ...]
    rule: str


@dataclass(frozen=True)
class BackgroundStyle:
    """A domain's background statistics: two muted palette colours, a wave frequency range, a blotch weight."""

    dark: tuple[float, float, float]
    light: tuple[float, float, float]
    low_frequency: float
    high_frequency: float
    blotch: float


@dataclass(frozen=True)
class DomainPlan:
    """Everything about one synthetic domain that is fixed before images are drawn."""

    index: int
    factors: tuple[FactorSpec, ...]
    attributes: tuple[AttributeSpec, ...]
    background: BackgroundStyle


# --- public API -------------------------------------------------------------------------------


def generate_domains(config: SyntheticConfig | None = None) -> list[AttributeDomain]:
    """All synthetic domains of ``config`` (``syn1``, ``syn2``, ...), each from its own derived seed."""
    config = config or SyntheticConfig()
    return [generate_domain(config, i) for i in range(config.n_domains)]


def generate_domain(config: SyntheticConfig, index: int) -> AttributeDomain:
    """Synthetic domain ``index`` (0-based), identical to ``generate_domains(config)[index]``."""
    if not 0 <= index < config.n_domains:
        raise ValueError(f"domain index must lie in [0, {config.n_domains}), got {index}")
    plan_seq, signature_seq, image_seq, noise_seq, split_seq, label_seq = _domain_seeds(config, index)
    plan = plan_domain(config, index, np.random.default_rng(plan_seq))
    split_rng = np.random.default_rng(split_seq)
    test_classes = choose_test_classes(
        config.classes_per_domain, config.test_class_fraction, int(split_rng.integers(2**32))
    )
    signatures = _class_signatures(config, plan, test_classes, np.random.default_rng(signature_seq))
    class_index = np.repeat(np.arange(config.classes_per_domain, dtype=np.int64), config.images_per_class)
    image_rng = np.random.default_rng(image_seq)
    flips = image_rng.random((class_index.size, len(plan.factors))) < config.image_flip_prob
    image_factors = signatures[class_index] ^ flips
    images = render_images(plan, image_factors, config, image_rng, np.random.default_rng(noise_seq))
    class_attributes = apply_rules(signatures, plan.attributes)
    labels = _labels(config, image_factors, class_attributes, class_index, plan, np.random.default_rng(label_seq))
    splits = class_split(class_index, test_classes, config.val_fraction, int(split_rng.integers(2**32)),
                         val_by_class=config.val_split == "classes")
    name = f"syn{index + 1}"
    return AttributeDomain(
        name=name,
        images=images,
        labels=labels,
        attribute_names=[a.name for a in plan.attributes],
        class_index=class_index,
        class_names=[f"{name}_class{c:02d}" for c in range(config.classes_per_domain)],
        splits=splits,
        class_attributes=class_attributes.astype(np.float32),
        label_level=config.label_level,
        metadata=_metadata(config, plan, signatures, test_classes, flips),
    )


def shared_factor_pairs(domains: Sequence[AttributeDomain]) -> list[dict[str, Any]]:
    """Cross-domain attribute pairs whose ground truth shares a latent factor (``exact``: same factor and rule)."""
    pairs = []
    for first, second in itertools.combinations(domains, 2):
        truth_a = first.metadata["ground_truth"]
        truth_b = second.metadata["ground_truth"]
        for name_a, a in truth_a.items():
            for name_b, b in truth_b.items():
                common = sorted(set(a["factors"]) & set(b["factors"]))
                if common:
                    exact = a["factors"] == b["factors"] and a["rule"] == b["rule"]
                    pairs.append(
                        {
                            "domain_a": first.name,
                            "attribute_a": name_a,
                            "domain_b": second.name,
                            "attribute_b": name_b,
                            "factors": common,
                            "exact": exact,
                        }
                    )
    return pairs


def _domain_seeds(config: SyntheticConfig, index: int) -> list[np.random.SeedSequence]:
    """Independent seeds of domain ``index``: plan, signatures, images, noise, splits, labels."""
    return np.random.SeedSequence([config.seed, index]).spawn(6)


def apply_rules(factors: np.ndarray, attributes: Sequence[AttributeSpec]) -> np.ndarray:
    """Attribute values (M, A) bool from factor values (M, F) bool."""
    ops: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "and": np.logical_and,
        "or": np.logical_or,
        "xor": np.logical_xor,
    }
    columns = []
    for spec in attributes:
        if spec.rule == "identity":
            columns.append(factors[:, spec.factors[0]])
        else:
            columns.append(ops[spec.rule](factors[:, spec.factors[0]], factors[:, spec.factors[1]]))
    return np.stack(columns, axis=1).astype(bool)


# --- plan: factors, cues and attributes -------------------------------------------------------


def plan_domain(config: SyntheticConfig, index: int, rng: np.random.Generator) -> DomainPlan:
    """Factors with their cues and colours, attribute definitions and background of domain ``index``."""
    n_factors = config.factors_per_domain
    hues = (rng.uniform() + np.arange(n_factors) / n_factors) % 1.0
    hues = hues[rng.permutation(n_factors)]
    factors = []
    seen_cues: dict[str, int] = {}
    for k in range(n_factors):
        cue = _factor_cue(config, k, index)
        variant_index = seen_cues.get(cue, 0) + index
        seen_cues[cue] = seen_cues.get(cue, 0) + 1
        factor_id = f"shared_{k}" if k < config.n_shared_factors else f"d{index + 1}_private_{k - config.n_shared_factors}"
        factors.append(_factor_spec(factor_id, cue, variant_index, float(hues[k])))
    if config.shared_cues == "same" and index > 0:
        first = plan_domain(config, 0, np.random.default_rng(_domain_seeds(config, 0)[0]))
        factors[: config.n_shared_factors] = first.factors[: config.n_shared_factors]
    attributes = _attribute_specs(config, index, factors, rng)
    background = _background_style(rng)
    return DomainPlan(index=index, factors=tuple(factors), attributes=tuple(attributes), background=background)


def _factor_cue(config: SyntheticConfig, k: int, index: int) -> str:
    """Cue type of factor ``k`` in domain ``index``: rotated per domain, or fixed for shared factors
    under 'keep' and 'same'."""
    if config.shared_cues in ("keep", "same") and k < config.n_shared_factors:
        return CUES[k % len(CUES)]
    return CUES[(k + index) % len(CUES)]


def _factor_spec(factor_id: str, cue: str, variant_index: int, hue: float) -> FactorSpec:
    """Name the variant of ``cue`` and give the factor its colour."""
    rgb = _hsv(hue, 0.85, 0.95)
    hue_name = _HUE_NAMES[int(round(hue * len(_HUE_NAMES))) % len(_HUE_NAMES)]
    if cue == "texture":
        variant = _TEXTURE_ORIENTATIONS[variant_index % 3]
        label = f"fine_{hue_name}_{'checker' if variant == 'checker' else variant + '_stripes'}"
    elif cue == "shape":
        pair = _SHAPE_PAIRS[variant_index % 3]
        variant = f"{pair[0]}_vs_{pair[1]}"
        label = f"{hue_name}_{pair[0]}"
    elif cue == "colour_layout":
        regions = _LAYOUT_REGIONS[variant_index % 3]
        variant = f"{regions[0]}_vs_{regions[1]}"
        label = f"{hue_name}_{regions[0]}"
    elif cue == "count":
        variant = "many_vs_few"
        label = f"many_{hue_name}_dots"
    else:
        variant = _PLACEMENT_MODES[variant_index % 3]
        label = f"{hue_name}_diamond_{variant}"
    return FactorSpec(id=factor_id, cue=cue, variant=variant, rgb=rgb, label=label)


def _attribute_specs(
    config: SyntheticConfig, index: int, factors: list[FactorSpec], rng: np.random.Generator
) -> list[AttributeSpec]:
    """About two thirds single-factor attributes (shared factors first), the rest two-factor rules."""
    n_factors = len(factors)
    n_attr = config.attributes_per_domain
    n_single = min(n_factors, max(1, int(round(2 * n_attr / 3))))
    shared = rng.permutation(config.n_shared_factors)
    private = config.n_shared_factors + rng.permutation(config.n_private_factors)
    order = [int(k) for k in np.concatenate([shared, private])]
    specs: list[tuple[tuple[int, ...], str]] = [((k,), "identity") for k in order[:n_single]]
    pairs = [(a, b, r) for a, b in itertools.combinations(range(n_factors), 2) for r in RULES]
    for j in rng.permutation(len(pairs))[: n_attr - n_single]:
        a, b, rule = pairs[int(j)]
        specs.append(((a, b), rule))
    names = _unique_names([_attribute_label(factors, f, rule, index) for f, rule in specs])
    return [AttributeSpec(name=n, factors=f, rule=r) for n, (f, r) in zip(names, specs)]


def _attribute_label(factors: list[FactorSpec], positions: tuple[int, ...], rule: str, index: int) -> str:
    """Readable attribute name with the domain prefix, e.g. ``d1_fine_red_vertical_stripes``."""
    if rule == "identity":
        return f"d{index + 1}_{factors[positions[0]].label}"
    return f"d{index + 1}_{factors[positions[0]].label}_{rule}_{factors[positions[1]].label}"


def _unique_names(names: list[str]) -> list[str]:
    """Suffix repeated names with ``_2``, ``_3``, ..."""
    counts: dict[str, int] = {}
    unique = []
    for name in names:
        counts[name] = counts.get(name, 0) + 1
        unique.append(name if counts[name] == 1 else f"{name}_{counts[name]}")
    return unique


def _background_style(rng: np.random.Generator) -> BackgroundStyle:
    """Seeded background statistics of one domain."""
    hue = rng.uniform()
    dark = _hsv(hue, rng.uniform(0.1, 0.35), rng.uniform(0.2, 0.4))
    light = _hsv((hue + rng.uniform(-0.1, 0.1)) % 1.0, rng.uniform(0.1, 0.35), rng.uniform(0.5, 0.7))
    low = float(rng.uniform(0.5, 2.0))
    return BackgroundStyle(dark, light, low, low + float(rng.uniform(0.5, 2.5)), float(rng.uniform(0.0, 0.6)))


def _hsv(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    """RGB in [0, 1] of an HSV colour, as plain floats."""
    red, green, blue = colorsys.hsv_to_rgb(float(hue), float(saturation), float(value))
    return (float(red), float(green), float(blue))


# --- class signatures and labels --------------------------------------------------------------


def _class_signatures(
    config: SyntheticConfig, plan: DomainPlan, test_classes: list[int], rng: np.random.Generator
) -> np.ndarray:
    """(C, F) bool factor signatures, balanced within train and test classes; retried until no attribute is constant."""
    n_classes = config.classes_per_domain
    test = np.asarray(test_classes)
    train = np.setdiff1d(np.arange(n_classes), test)
    best, best_score = None, None
    for _ in range(_SIGNATURE_ATTEMPTS):
        signatures = np.zeros((n_classes, len(plan.factors)), dtype=bool)
        for group in (train, test):
            signatures[group] = _balanced_columns(len(group), len(plan.factors), rng)
        score = _signature_defects(signatures, plan.attributes, train, test)
        if best_score is None or score < best_score:
            best, best_score = signatures, score
        if score == 0:
            break
    assert best is not None
    return best


def _balanced_columns(n_rows: int, n_columns: int, rng: np.random.Generator) -> np.ndarray:
    """Binary (n_rows, n_columns) matrix with each column half ones (odd counts rounded at random)."""
    out = np.zeros((n_rows, n_columns), dtype=bool)
    for k in range(n_columns):
        n_ones = n_rows // 2 + int(n_rows % 2 and rng.random() < 0.5)
        out[rng.permutation(n_rows)[:n_ones], k] = True
    return out


def _signature_defects(
    signatures: np.ndarray, attributes: Sequence[AttributeSpec], train: np.ndarray, test: np.ndarray
) -> int:
    """Attributes constant over train (or test, when it has two classes or more) plus repeated signatures."""
    values = apply_rules(signatures, attributes)
    defects = int((values[train].min(0) == values[train].max(0)).sum())
    if len(test) >= 2:
        defects += int((values[test].min(0) == values[test].max(0)).sum())
    defects += len(signatures) - len(np.unique(signatures, axis=0))
    return defects


def _labels(
    config: SyntheticConfig,
    image_factors: np.ndarray,
    class_attributes: np.ndarray,
    class_index: np.ndarray,
    plan: DomainPlan,
    rng: np.random.Generator,
) -> np.ndarray:
    """(N, A) float32 labels: from each image's factors or its class, then optional label noise."""
    if config.label_level == "image":
        labels = apply_rules(image_factors, plan.attributes)
    else:
        labels = class_attributes[class_index]
    noise = rng.random(labels.shape) < config.label_noise
    return (labels ^ noise).astype(np.float32)


def _metadata(
    config: SyntheticConfig, plan: DomainPlan, signatures: np.ndarray, test_classes: list[int], flips: np.ndarray
) -> dict[str, Any]:
    """JSON ground truth: factors, per-attribute factors/rule/cues, class signatures."""
    ground_truth = {
        a.name: {
            "factors": [plan.factors[k].id for k in a.factors],
            "rule": a.rule,
            "cues": [plan.factors[k].cue for k in a.factors],
            "shared": all(plan.factors[k].id.startswith("shared_") for k in a.factors),
        }
        for a in plan.attributes
    }
    style = plan.background
    return {
        "generator": "galm.data.synthetic",
        "config": config.to_dict(),
        "domain_index": plan.index,
        "factors": [f.to_json() for f in plan.factors],
        "ground_truth": ground_truth,
        "class_signatures": signatures.astype(int).tolist(),
        "test_classes": list(test_classes),
        "flipped_factor_fraction": float(flips.mean()) if flips.size else 0.0,
        "background": {
            "dark": list(style.dark),
            "light": list(style.light),
            "frequency": [style.low_frequency, style.high_frequency],
            "blotch": style.blotch,
        },
    }


# --- rendering --------------------------------------------------------------------------------

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
