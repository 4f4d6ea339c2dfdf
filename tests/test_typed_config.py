"""Tests for galm.config.typed: strict types, helpful errors, overrides, YAML, round trips."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from galm.config.typed import (
    ConfigError,
    apply_overrides,
    from_mapping,
    load_config,
    to_mapping,
    yaml_text,
)


@dataclass(frozen=True)
class SpaceSection:
    resolution: int = 64
    fc_widths: tuple[int, ...] = (64, 128, 256)
    trunk_kernels: tuple[int, int, int] = (7, 3, 3)

    def __post_init__(self) -> None:
        if self.resolution % 32:
            raise ValueError("resolution must be a multiple of 32")


@dataclass
class TrainSection:
    lr: float = 0.01
    epochs: int = 3
    amp: bool = False
    optimizer: Literal["sgd", "adam"] = "sgd"
    clip: float | None = None
    attributes: list[str] = field(default_factory=lambda: ["red", "furry"])


@dataclass
class RootConfig:
    name: str = "demo"
    space: SpaceSection = field(default_factory=SpaceSection)
    train: TrainSection = field(default_factory=TrainSection)
    extra: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None


def test_from_mapping_builds_nested_typed_values() -> None:
    config = from_mapping(
        RootConfig,
        {
            "space": {"fc_widths": [32, 64], "trunk_kernels": [5, 3, 3]},
            "train": {"lr": 1, "clip": 2.5, "optimizer": "adam", "attributes": ["x"]},
            "extra": {"k": [1, 2]},
            "out": "runs/a",
        },
    )
    assert config.space == SpaceSection(64, (32, 64), (5, 3, 3))
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert config.train.clip == 2.5 and config.train.optimizer == "adam"
    assert config.train.attributes == ["x"]
    assert config.extra == {"k": [1, 2]}
    assert config.out == Path("runs/a")
    assert config.name == "demo"


def test_unknown_key_names_dotted_path_suggests_and_lists_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(RootConfig, {"train": {"lrr": 0.1}})
    message = str(info.value)
    assert "'train.lrr'" in message
    assert "did you mean 'train.lr'?" in message
    assert "lr, epochs, amp, optimizer, clip, attributes" in message


@pytest.mark.parametrize(
    "data, fragments",
    [
        ({"train": {"epochs": 2.5}}, ["train.epochs", "expected int", "2.5"]),
        ({"train": {"epochs": "3"}}, ["train.epochs", "expected int", "'3'"]),
        ({"train": {"lr": "fast"}}, ["train.lr", "expected float", "'fast'"]),
        ({"train": {"amp": 1}}, ["train.amp", "expected bool", "1"]),
        ({"train": {"amp": "yes"}}, ["train.amp", "expected bool", "'yes'"]),
        ({"train": {"epochs": True}}, ["train.epochs", "expected int", "True"]),
        ({"train": {"optimizer": "rmsprop"}}, ["train.optimizer", "'sgd' | 'adam'", "rmsprop"]),
        ({"train": {"clip": "x"}}, ["train.clip", "expected float", "'x'"]),
        ({"train": {"attributes": "red"}}, ["train.attributes", "list[str]", "'red'"]),
        ({"train": {"attributes": ["a", 3]}}, ["train.attributes[1]", "expected str"]),
        ({"space": {"trunk_kernels": [3, 3]}}, ["space.trunk_kernels", "3 items", "got 2"]),
        ({"space": {"fc_widths": [64, "a"]}}, ["space.fc_widths[1]", "expected int"]),
        ({"space": 5}, ["space", "expected a mapping"]),
        ({"space": {"resolution": 48}}, ["space", "multiple of 32"]),
    ],
)
def test_wrong_types_name_key_expected_type_and_value(data, fragments) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(RootConfig, data)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_missing_required_field_is_named() -> None:
    @dataclass
    class Needs:
        seed: int

    with pytest.raises(ConfigError, match="missing config key.*outer.seed"):
        from_mapping(Needs, {}, where="outer")


def test_round_trip_through_mapping_is_yaml_safe(tmp_path: Path) -> None:
    config = from_mapping(
        RootConfig, {"space": {"fc_widths": [8]}, "train": {"clip": 1.0}, "out": "o"}
    )
    data = to_mapping(config)
    assert data["space"]["fc_widths"] == [8]
    assert data["out"] == "o"
    assert from_mapping(RootConfig, data) == config
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text(config), encoding="utf-8")
    assert load_config(RootConfig, path) == config


def test_apply_overrides_parses_values_as_yaml() -> None:
    data = apply_overrides(
        {"train": {"lr": 0.1}},
        ["train.lr=1e-3", "space.fc_widths=[64,128]", "train.amp=true", "name=run 1", "out=null"],
    )
    assert data == {
        "train": {"lr": 1e-3, "amp": True},
        "space": {"fc_widths": [64, 128]},
        "name": "run 1",
        "out": None,
    }
    assert isinstance(data["train"]["lr"], float)


@pytest.mark.parametrize("override", ["train.lr", "=3", "train..lr=1"])
def test_malformed_override_is_named(override: str) -> None:
    with pytest.raises(ConfigError, match="malformed override"):
        apply_overrides({}, [override])


def test_override_into_a_scalar_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'name' is not a section"):
        apply_overrides({"name": "x"}, ["name.sub=1"])


def test_load_config_merges_defaults_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 9\n  lr: 0.5\nspace:\n  resolution: 96\n")
    config = load_config(RootConfig, path, ["train.lr=0.25"])
    assert config.train.epochs == 9
    assert config.train.lr == 0.25
    assert config.train.optimizer == "sgd"  # default kept by the deep merge
    assert config.space.resolution == 96 and config.space.fc_widths == (64, 128, 256)
    assert load_config(RootConfig, None) == RootConfig()


def test_load_config_unknown_override_key_is_caught(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        load_config(RootConfig, None, ["train.epoch=2"])


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lr: 0.1\n  epochs: [1, 2\nname: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(RootConfig, path)
    assert str(path) in str(info.value)
    assert "line 4" in str(info.value)


def test_missing_file_and_non_mapping_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found.*nope.yaml"):
        load_config(RootConfig, tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(RootConfig, path)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(RootConfig, path) == RootConfig()
