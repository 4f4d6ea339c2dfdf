"""Configuration as strictly typed dataclasses, read from YAML and ``dotted.key=value`` overrides.

A config class is a (possibly nested) dataclass whose every field has a default. Values are
checked against the annotations when read, so a typo or a wrong type fails at start-up with the
full dotted key instead of deep inside a run.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

__all__ = [
    "ConfigError",
    "from_mapping",
    "to_mapping",
    "apply_overrides",
    "changed_keys",
    "deep_merge",
    "load_config",
    "load_yaml_file",
    "read_yaml_mapping",
    "yaml_text",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value, key, file or override that cannot be used."""


class _Loader(yaml.SafeLoader):
    """YAML safe loader that also reads ``1e-3`` as a float (YAML 1.1 demands ``1.0e-3``) and
    refuses a key given twice in one mapping (plain YAML keeps the last one without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    earlier = first.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the constructor reports it
                    continue
                if earlier is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"duplicate key {key!r} (first given at line {earlier.start_mark.line + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _load_yaml(text: str) -> Any:
    """Parses YAML text with the safe loader (plus exponent floats)."""
    return yaml.load(text, Loader=_Loader)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(annotation: Any) -> str:
    """A readable name for an annotation: ``int``, ``tuple[int, ...]``, ``'a' | 'b'``."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    if typing.get_origin(annotation) is Literal:
        return " | ".join(repr(arg) for arg in typing.get_args(annotation))
    return str(annotation).replace("typing.", "")


def _type_error(where: str, annotation: Any, value: Any) -> ConfigError:
    return ConfigError(
        f"{where or 'config'}: expected {_type_name(annotation)}, got {value!r} "
        f"({type(value).__name__})"
    )


def _convert_sequence(annotation: Any, value: Any, where: str) -> tuple[Any, ...] | list[Any]:
    """Converts a YAML list to ``tuple[X, ...]``, ``tuple[X, Y]`` or ``list[X]``."""
    origin = typing.get_origin(annotation) or annotation
    args = typing.get_args(annotation)
    if not isinstance(value, (list, tuple)):
        raise _type_error(where, annotation, value)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise ConfigError(
                f"{where}: expected {_type_name(annotation)} ({len(args)} items), "
                f"got {len(value)} items: {value!r}"
            )
        items = [
            _convert(arg, item, f"{where}[{i}]")
            for i, (arg, item) in enumerate(zip(args, value))
        ]
    else:
        item_type = args[0] if args else Any
        items = [_convert(item_type, item, f"{where}[{i}]") for i, item in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _convert_dict(annotation: Any, value: Any, where: str) -> dict[Any, Any]:
    """Converts a YAML mapping to ``dict[K, V]``, checking keys and values."""
    if not isinstance(value, Mapping):
        raise _type_error(where, annotation, value)
    key_type, value_type = typing.get_args(annotation) or (Any, Any)
    converted = {}
    for key, item in value.items():
        checked_key = _convert(key_type, key, f"{where}.<key {key!r}>")
        converted[checked_key] = _convert(value_type, item, _join(where, str(key)))
    return converted


def _convert_union(annotation: Any, value: Any, where: str) -> Any:
    """Accepts the value for the first arm of a union (``X | None``) that takes it."""
    arms = typing.get_args(annotation)
    if value is None:
        if type(None) in arms:
            return None
        raise _type_error(where, annotation, value)
    errors = []
    for arm in arms:
        if arm is type(None):
            continue
        try:
            return _convert(arm, value, where)
        except ConfigError as error:
            errors.append(error)
    if len(errors) == 1:  # X | None: the one real arm's message is the useful one
        raise errors[0]
    raise _type_error(where, annotation, value)


def _convert_scalar(annotation: type, value: Any, where: str) -> Any:
    """Checks int, float (ints accepted), bool (only true/false), str and Path values."""
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif annotation is str:
        ok = isinstance(value, str)
    elif issubclass(annotation, Path):
        ok = isinstance(value, (str, Path))
        value = Path(value) if ok else value
    else:
        raise ConfigError(f"{where}: unsupported field type {_type_name(annotation)}")
    if not ok:
        raise _type_error(where, annotation, value)
    return value


def _convert(annotation: Any, value: Any, where: str) -> Any:
    """Checks ``value`` against ``annotation``; lists become tuples, dicts become dataclasses."""
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return _convert_union(annotation, value, where)
    if origin is Literal:
        for choice in typing.get_args(annotation):
            if type(choice) is type(value) and choice == value:
                return value
        raise _type_error(where, annotation, value)
    if origin in (tuple, list) or annotation in (tuple, list):
        return _convert_sequence(annotation, value, where)
    if origin is dict or annotation is dict:
        return _convert_dict(annotation, value, where)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        return from_mapping(annotation, value, where)
    if isinstance(annotation, type):
        return _convert_scalar(annotation, value, where)
    raise ConfigError(f"{where}: unsupported field type {_type_name(annotation)}")


def _unknown_key_error(key: str, valid: Sequence[str], where: str) -> ConfigError:
    """An error naming the unknown dotted key, a likely intended key and all valid ones."""
    suggestion = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {_join(where, suggestion[0])!r}?" if suggestion else ""
    return ConfigError(
        f"unknown config key {_join(where, key)!r}{hint} "
        f"(valid keys{' under ' + repr(where) if where else ''}: {', '.join(valid)})"
    )


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Builds dataclass ``cls`` from a mapping, checking every key and value against its fields."""
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"{cls!r} is not a dataclass type")
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where or 'config'}: expected a mapping for {cls.__name__}, got {data!r}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    try:
        hints = typing.get_type_hints(cls)
    except NameError as error:  # an annotation naming a class the module cannot see
        raise TypeError(f"cannot resolve the field types of {cls.__name__}: {error}") from error
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key_error(str(key), list(fields), where)
        values[key] = _convert(hints[key], value, _join(where, key))
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing config key(s): {', '.join(_join(where, m) for m in missing)}")
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:  # __post_init__ validation
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{where or cls.__name__}: {error}") from error


def to_mapping(instance: Any) -> Any:
    """Plain YAML-safe data of a config: dataclasses as dicts, tuples as lists, paths as strings."""
    if dataclasses.is_dataclass(instance) and not isinstance(instance, type):
        return {
            f.name: to_mapping(getattr(instance, f.name))
            for f in dataclasses.fields(instance)
            if f.init
        }
    if isinstance(instance, Mapping):
        return {key: to_mapping(value) for key, value in instance.items()}
    if isinstance(instance, (list, tuple)):
        return [to_mapping(item) for item in instance]
    if isinstance(instance, Path):
        return str(instance)
    return instance


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``update`` merged in: mappings recursively, other values replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], where: str = "") -> list[tuple[str, Any, Any]]:
    """Every dotted key of both config mappings whose value differs: (key, old value, new value).
    A key only one of them has (a setting added by a newer galm) is not a change."""
    changes = []
    for key in old:
        if key not in new:
            continue
        before, after = old[key], new[key]
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changes += changed_keys(before, after, _join(where, str(key)))
        elif before != after:
            changes.append((_join(where, str(key)), before, after))
    return changes


def _parse_override(override: str) -> tuple[list[str], Any]:
    """Splits ``dotted.key=value`` into key parts and a YAML-parsed value."""
    key, sep, text = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(part.strip() for part in parts):
        raise ConfigError(f"malformed override {override!r}: expected dotted.key=value")
    try:
        value = _load_yaml(text) if text.strip() else ""
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"override {override!r}: value is not valid YAML ({problem})") from error
    return [part.strip() for part in parts], value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``dotted.key=value`` set; values parsed as YAML."""
    result = copy.deepcopy(dict(data))
    for override in overrides:
        parts, value = _parse_override(override)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {override!r}: {'.'.join(parts[: depth + 1])!r} is not a section"
                )
            node = child
        node[parts[-1]] = value
    return result


def read_yaml_text(path: Path, what: str = "config file") -> str:
    """The text of a YAML file; a missing, binary or non-UTF-8 file is a ConfigError naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise ConfigError(f"{what} not found: {path}") from error
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error}") from error
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ConfigError(f"{path} is a binary file (a NUL byte at offset {nul}), not a YAML {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
                          f"save the {what} as UTF-8") from error


def load_yaml_file(path: Path, what: str = "config file") -> Any:
    """The YAML content of a file; every problem is a ConfigError naming the file (and line)."""
    text = read_yaml_text(path, what)
    try:
        return _load_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"invalid YAML in {path}{line}: {problem}") from error


def read_yaml_mapping(path: Path, what: str = "config file") -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty file: empty mapping)."""
    data = load_yaml_file(path, what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()
) -> T:
    """Defaults of ``cls``, deep-merged with the YAML file at ``path``, then ``overrides``."""
    data = to_mapping(cls())
    if path is not None:
        data = deep_merge(data, read_yaml_mapping(Path(path)))
    data = apply_overrides(data, overrides)
    return from_mapping(cls, data)


def yaml_text(instance: Any) -> str:
    """The YAML text of a config (or mapping), keys in field order."""
    return yaml.safe_dump(to_mapping(instance), sort_keys=False, default_flow_style=False)


