"""`architectures.json`, the record of one head per attribute: its reader, its writer, and the
`--arch` forms (`random`, a file, one short string for every attribute) that resolve to it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping, Sequence

from galm.runs.atomic import read_json
from galm.space import Architecture, SearchSpace


def architecture_from_record(record: Any, where: str) -> Architecture:
    """An architecture from a JSON record: its dict, its short string, or {"architecture": ...}."""
    if isinstance(record, dict) and "architecture" in record:
        record = record["architecture"]
    try:
        if isinstance(record, str):
            return Architecture.parse(record)
        return Architecture.from_json(record)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error


def read_architectures(path: str | Path, attribute_names: Sequence[str]) -> dict[str, Architecture]:
    """`architectures.json` (attribute name -> architecture) covering exactly the domain's attributes."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object mapping attribute names to architectures")
    missing = [name for name in attribute_names if name not in data]
    unknown = [name for name in data if name not in set(attribute_names)]
    if missing or unknown:
        raise ValueError(
            f"{path}: attributes missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"not in the domain {unknown[:5]}{'...' if len(unknown) > 5 else ''}"
        )
    return {name: architecture_from_record(data[name], f"{path}: {name}") for name in attribute_names}


def resolve_architectures(
    spec: str, attribute_names: Sequence[str], space: SearchSpace, seed: int
) -> dict[str, Architecture]:
    """'random' (seeded, one per attribute), a JSON file, or one architecture string for all."""
    if spec == "random":
        rng = random.Random(seed)
        archs = {name: space.sample(rng) for name in attribute_names}
    elif spec.endswith(".json") or Path(spec).is_file():
        if not Path(spec).is_file():
            raise FileNotFoundError(f"architecture file not found: {spec}")
        archs = read_architectures(spec, attribute_names)
    else:
        try:
            arch = Architecture.parse(spec)
        except ValueError as error:
            raise ValueError(
                f"--arch {spec!r} is not 'random', an architectures JSON file, or an architecture string "
                f"such as {space.default().short()!r}"
            ) from error
        archs = {name: arch for name in attribute_names}
    for name, arch in archs.items():
        space.encode(arch)  # raises, naming the decision, when outside the configured space
    return archs


def architectures_record(archs: Mapping[str, Architecture], extra: Mapping[str, Mapping[str, Any]] | None = None) -> dict:
    """The JSON form of `architectures.json`: name -> {architecture, short, ...extra fields}."""
    extra = extra or {}
    return {
        name: {"architecture": arch.to_json(), "short": arch.short(), **extra.get(name, {})}
        for name, arch in archs.items()
    }
