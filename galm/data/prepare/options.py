"""A reader's options (``--option key=value``, a prepare spec's ``options``), checked against the
reader's signature before it runs: an unknown name (with the nearest known one) or a value of the
wrong type is a ValueError naming the option, never a TypeError from inside the reader."""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import os
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping, Union


def check_reader_options(format: str, reader: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """ValueError naming the first option ``reader`` (of ``format``) does not take, or takes another type of."""
    parameters = list(inspect.signature(reader).parameters.values())[1:]  # the first is the root
    known = [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    try:
        hints = typing.get_type_hints(reader)
    except (NameError, TypeError):
        hints = {}
    for name, value in options.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"--option {name}: the {format} reader has no option {name!r}{hint} "
                             f"(its options: {', '.join(known)})")
        annotation = hints.get(name, Any)
        if not _accepts(annotation, value):
            raise ValueError(f"--option {name}: expected {_describe(annotation)}, got {value!r} "
                             f"({type(value).__name__})")


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` (as YAML reads an option) fits ``annotation``; unknown kinds of annotation accept."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_accepts(arm, value) for arm in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is os.PathLike or annotation in (Path, os.PathLike):
        return isinstance(value, (str, os.PathLike))
    if origin in (collections.abc.Sequence, list, tuple):
        args = typing.get_args(annotation)
        return isinstance(value, (list, tuple)) and all(_accepts(args[0] if args else Any, v) for v in value)
    return True


def _describe(annotation: Any) -> str:
    """An annotation in words: 'float', 'str or None', 'a path', 'a list of str'."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        arms = [_describe(arm) for arm in typing.get_args(annotation)]
        return " or ".join(dict.fromkeys(arms))
    if annotation is type(None):
        return "none"
    if origin is os.PathLike or annotation in (Path, os.PathLike):
        return "a path"
    if origin in (collections.abc.Sequence, list, tuple):
        args = typing.get_args(annotation)
        return f"a list of {_describe(args[0]) if args else 'values'}"
    return getattr(annotation, "__name__", str(annotation))
