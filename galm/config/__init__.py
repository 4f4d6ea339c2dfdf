"""Configuration: the typed schema of every setting, its YAML/override reader and named presets.

No torch import anywhere in this package, and no import of any other galm package except the
synthetic generator's settings: everything else reads its settings from here.
"""

from galm.config.reader import config_from_mapping, read_config
from galm.config.schema import DataConfig, GalmConfig
from galm.config.typed import ConfigError

__all__ = ["ConfigError", "DataConfig", "GalmConfig", "config_from_mapping", "read_config"]
