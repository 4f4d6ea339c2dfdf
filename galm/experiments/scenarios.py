"""Transfer scenarios as data: which finished search is reused for which target domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from galm.config.typed import ConfigError


@dataclass(frozen=True)
class Scenario:
    """One transfer: a source run (a finished search), a target domain, extra settings.

    `target_in_source` says whether the target's own attributes were part of the source search
    (the paper's S1,2,3-D1 rows); names are matched, so it is informative, not a switch.
    """

    name: str
    source: Path
    target: str
    overrides: tuple[str, ...] = field(default_factory=tuple)
    target_in_source: bool = False


def read_scenarios(path: Path) -> list[Scenario]:
    """A YAML list of {name, source, target, set: [key=value, ...], target_in_source}."""
    if not path.is_file():
        raise FileNotFoundError(f"scenario file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: expected a non-empty list of scenarios")
    scenarios, names = [], set()
    for number, item in enumerate(data, start=1):
        where = f"{path}: scenario {number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(item).__name__}")
        unknown = set(item) - {"name", "source", "target", "set", "target_in_source"}
        missing = {"name", "source", "target"} - set(item)
        if unknown or missing:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        overrides = item.get("set", [])
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise ConfigError(f"{where}: 'set' must be a list of key=value strings")
        if item["name"] in names:
            raise ConfigError(f"{where}: duplicate scenario name {item['name']!r}")
        names.add(item["name"])
        source = Path(str(item["source"]))
        if not source.is_absolute():
            source = path.parent / source
        scenarios.append(Scenario(str(item["name"]), source, str(item["target"]), tuple(overrides),
                                  bool(item.get("target_in_source", False))))
    return scenarios
