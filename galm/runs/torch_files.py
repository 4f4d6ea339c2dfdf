"""Reading the ``.pt`` files galm writes (search checkpoints, models) as untrusted data.

A run directory may come from someone else, so every such file loads with
``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only, never an object
whose unpickling could run code. Anything else, and any damaged file, is refused with an error
that names the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch


class UnsafeOrDamagedFile(ValueError):
    """A ``.pt`` file that is not plain tensors and values, or that cannot be read at all."""


def load_plain(path: Path, what: str) -> Any:
    """The content of a ``.pt`` file of plain tensors and values; `what` names it in errors."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeOrDamagedFile(
            f"refusing to load {path}: it holds more than tensors and plain values, so loading it could run "
            f"code; galm never unpickles objects ({_first_line(error)})"
        ) from error
    except Exception as error:  # noqa: BLE001 - a damaged file fails anywhere in the unpickler (IndexError, ...)
        raise UnsafeOrDamagedFile(
            f"{path} is not a readable {what} (truncated, empty or not a torch file): {_first_line(error)}"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
