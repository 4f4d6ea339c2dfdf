"""`thresholds.json`: one decision threshold per attribute, calibrated on the run's validation split
when the run is trained (balanced accuracy), read back by ``galm predict --threshold calibrated``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from galm.runs.atomic import read_json, write_json


def write_thresholds(path: Path, record: Mapping[str, Any]) -> None:
    """Record calibrated thresholds: ``{split, criterion, attributes: {name: {threshold, ...}}}``."""
    write_json(path, dict(record))


def read_thresholds(path: Path, attribute_names: Sequence[str]) -> list[float]:
    """The calibrated threshold of every attribute, in ``attribute_names`` order.

    A missing file is a FileNotFoundError; a file for other attributes or with a threshold outside
    [0, 1] is a ValueError naming the file and the attribute.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no calibrated thresholds: {path} is missing")
    record = read_json(path)
    attributes = record.get("attributes") if isinstance(record, dict) else None
    if not isinstance(attributes, dict):
        raise ValueError(f"{path}: expected an object with 'attributes' (name -> {{threshold, ...}})")
    thresholds = []
    for name in attribute_names:
        entry = attributes.get(name)
        value = entry.get("threshold") if isinstance(entry, dict) else None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or not 0.0 <= value <= 1.0:
            raise ValueError(f"{path}: attribute {name!r} has no threshold in [0, 1] (found {value!r})")
        thresholds.append(float(value))
    return thresholds
