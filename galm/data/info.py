"""What `galm data info` shows about a domain: sizes, splits, positive rates, constant attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from galm.data.domain import SPLIT_NAMES, AttributeDomain
from galm.data.labelled import LabelledSplits


def constant_attributes(domain: AttributeDomain, split: str) -> list[str]:
    """Attributes with fewer than two distinct known labels on ``split`` (no AUC is defined there)."""
    labels = domain.labels[domain.split(split)]
    has_one = (labels == 1.0).any(axis=0)
    has_zero = (labels == 0.0).any(axis=0)
    return [name for name, varies in zip(domain.attribute_names, has_one & has_zero) if not varies]


def format_info(domain: AttributeDomain, manifest: dict[str, Any] | None = None, path: Path | None = None) -> str:
    """The text ``galm data info`` prints."""
    lines = [f"domain {domain.name}" + (f" ({path})" if path is not None else "")]
    lines.append(f"images: {domain.n_images} ({domain.resolution}x{domain.resolution} pixels)")
    lines.append(f"classes: {domain.n_classes}")
    lines.append(f"attributes: {domain.n_attributes}")
    lines.append(f"label level: {domain.label_level}")
    unknown = float(np.isnan(domain.labels).mean()) if domain.labels.size else 0.0
    lines.append(f"unknown labels: {unknown:.1%}")
    if manifest:
        identity = manifest.get("identity", {})
        options = identity.get("options", {})
        reader_options = identity.get("reader_options", {})
        option_text = ", ".join(f"{k}={v}" for k, v in reader_options.items())
        lines.append(f"prepared from: {identity.get('reader')} ({option_text})")
        lines.append(
            f"prepare options: resize {options.get('resize')}, crop margin {options.get('crop_margin')}; "
            f"{len(manifest.get('skipped', []))} images skipped, {len(manifest.get('dropped_boxes', []))} boxes dropped"
        )
    if domain.metadata.get("class_disjoint_test") is False:
        lines.append("note: the test split is not class-disjoint (no classes in the source table)")
    split_names = [s for s in SPLIT_NAMES if s in domain.splits] + sorted(set(domain.splits) - set(SPLIT_NAMES))
    lines.append("splits:")
    for split in split_names:
        lines.append(f"  {split:<6} {domain.split(split).size} images, {domain.split_classes(split).size} classes")
    width = max([len(a) for a in domain.attribute_names] + [len("attribute")])
    lines.append("positive rate per attribute (known labels only; - where none are known):")
    lines.append(f"  {'attribute':<{width}}" + "".join(f"  {s:>6}" for s in split_names))
    rates = {s: _positive_rates(domain, s) for s in split_names}
    for a, name in enumerate(domain.attribute_names):
        cells = "".join(f"  {_rate_text(rates[s][a]):>6}" for s in split_names)
        lines.append(f"  {name:<{width}}{cells}")
    lines.append("constant attributes (cannot be scored on that split):")
    for split in split_names:
        constant = constant_attributes(domain, split)
        lines.append(f"  {split:<6} " + (", ".join(constant) if constant else "none"))
    return "\n".join(lines)


def _positive_rates(domain: AttributeDomain, split: str) -> np.ndarray:
    labels = domain.labels[domain.split(split)]
    known = (~np.isnan(labels)).sum(axis=0)
    positives = (labels == 1.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known > 0, positives / np.maximum(known, 1), np.nan)


def _rate_text(rate: float) -> str:
    return "-" if np.isnan(rate) else f"{rate:.3f}"


def unlearnable_attributes(domain: LabelledSplits, min_positives: int, split: str = "train") -> dict[str, str]:
    """Attributes that `split` cannot teach, with the reason: constant there, or fewer than
    `min_positives` known positives or negatives (0 = only constant ones). A search does not spend
    its budget on them, and mAUC leaves them out (they are still scored and listed)."""
    labels = domain.labels[domain.split(split)]
    positives = (labels == 1.0).sum(axis=0)
    negatives = (labels == 0.0).sum(axis=0)
    reasons = {}
    for name, pos, neg in zip(domain.attribute_names, positives.tolist(), negatives.tolist()):
        if pos == 0 or neg == 0:
            reasons[name] = f"constant on {split} ({pos} positives, {neg} negatives)"
        elif min(pos, neg) < min_positives:
            reasons[name] = f"only {min(pos, neg)} {'positives' if pos < neg else 'negatives'} on {split} (< {min_positives})"
    return reasons
