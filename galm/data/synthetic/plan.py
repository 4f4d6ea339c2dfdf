"""The plan of one synthetic domain, fixed before any image is drawn.

Which latent factors it sees (shared and private), the visual cue, variant, colour and readable
label of each, the attributes as rules over one or two factors, and the background palette.
Also the per-domain seeds every later stage draws from, and :func:`apply_rules`, which turns
factor values into attribute values.
"""

from __future__ import annotations

import colorsys
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from galm.config.schema import SyntheticConfig

CUES = ("texture", "shape", "colour_layout", "count", "position_size")
RULES = ("and", "or", "xor")
_HUE_NAMES = (
    "red", "orange", "yellow", "lime", "green", "teal", "cyan", "azure", "blue", "violet", "magenta", "pink"
)
_TEXTURE_ORIENTATIONS = ("vertical", "horizontal", "checker")
_SHAPE_PAIRS = (("circle", "square"), ("triangle", "square"), ("circle", "triangle"))
_LAYOUT_REGIONS = (("left", "right"), ("top", "bottom"), ("top_left", "bottom_right"))
_PLACEMENT_MODES = ("top", "left", "large")


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


def domain_seeds(config: SyntheticConfig, index: int) -> list[np.random.SeedSequence]:
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
        first = plan_domain(config, 0, np.random.default_rng(domain_seeds(config, 0)[0]))
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
