"""The synthetic domains' settings: sizes, noise levels, how shared factors look, and the seed.

Self-contained on purpose (plain dataclass, no numpy or torch): the run configuration embeds it,
and it validates against nothing but the constants beside it and the label levels a domain allows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from galm.data.labelled import LABEL_LEVELS

SHARED_CUE_MODES = ("rotate", "keep", "same")


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
