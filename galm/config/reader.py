"""The configuration of a galm run: one typed tree, from defaults, a YAML file and overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from galm.config.schema import GalmConfig
from galm.config.typed import (
    ConfigError,
    apply_overrides,
    deep_merge,
    from_mapping,
    load_config,
    read_yaml_mapping,
    to_mapping,
)


def read_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> GalmConfig:
    """Defaults, updated by the YAML file at `path`, then by `key=value` overrides; checked."""
    try:
        config = load_config(GalmConfig, path, overrides)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:  # a dataclass's own validation (e.g. SpaceConfig)
        raise ConfigError(str(error)) from error
    config.check()
    return config


def config_from_mapping(
    base: Mapping[str, Any], path: str | Path | None = None, overrides: Sequence[str] = ()
) -> GalmConfig:
    """A configuration that starts from another run's resolved settings instead of the defaults."""
    data = deep_merge(to_mapping(GalmConfig()), base)
    if path is not None:
        data = deep_merge(data, read_yaml_mapping(Path(path)))
    try:
        config = from_mapping(GalmConfig, apply_overrides(data, overrides))
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error
    config.check()
    return config
