"""The optional packages of ``galm[export]`` (onnx, onnxscript, onnxruntime) and pyarrow: imported
when a command needs them, with an error that says what to install when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingPackage(ValueError):
    """An optional package a command needs is not installed."""


def require(name: str, purpose: str, install: str = "pip install 'galm[export]'") -> ModuleType:
    """The module ``name``, or a :class:`MissingPackage` naming ``purpose`` and how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise MissingPackage(f"{purpose} needs the {name} package ({install}): {error}") from None
