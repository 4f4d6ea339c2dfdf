"""The configuration of a galm run: one typed tree, from defaults, a YAML file and overrides."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from galm.data.synthetic import SyntheticConfig
from galm.engine.placement import ExecutionConfig
from galm.search.state import ControllerConfig, SearchConfig
from galm.space.search_space import SpaceConfig
from galm.training.train import TrainConfig
from galm.search.transfer import TransferConfig
from galm.config.typed import (
    ConfigError, apply_overrides, deep_merge, from_mapping, load_config, read_yaml_mapping, to_mapping,
)


@dataclass(frozen=True)
class DataConfig:
    """Where the attribute domain comes from."""

    # 'synthetic' for the built-in generator, or the directory of a prepared domain.
    source: str = "synthetic"
    # Which synthetic domain (syn1, syn2, ...) when source is 'synthetic'.
    domain: str = "syn1"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass(frozen=True)
class GalmConfig:
    """Everything a run reads; the resolved copy is written into every run directory."""

    seed: int = 0
    # 'auto' (CUDA when available, else CPU), 'cpu', 'cuda', 'cuda:1', ...
    device: str = "auto"
    # CPU threads for torch; 0 keeps torch's default.
    threads: int = 0
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)

    @property
    def retrain(self) -> TrainConfig:
        """Training settings for retraining a searched network: `train`, on `search.retrain_splits`."""
        return replace(self.train, splits=self.search.retrain_splits)

    def check(self) -> None:
        """Cross-field checks that single fields cannot express."""
        if self.data.source == "synthetic" and self.data.synthetic.resolution != self.space.resolution:
            raise ConfigError(
                f"data.synthetic.resolution ({self.data.synthetic.resolution}) must equal "
                f"space.resolution ({self.space.resolution})"
            )
        for name in ("episodes", "controller_steps", "batch_size", "derive_samples"):
            if getattr(self.search, name) < 0:
                raise ConfigError(f"search.{name} must not be negative, got {getattr(self.search, name)}")
        if self.search.warmup_episodes > self.search.episodes:
            raise ConfigError("search.warmup_episodes must not exceed search.episodes")
        if self.threads < 0:
            raise ConfigError(f"threads must be 0 (torch default) or positive, got {self.threads}")


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
