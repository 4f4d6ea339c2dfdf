"""The error every dataset reader raises for bad input, and builders that name the file, line or field.

:class:`DatasetFormatError` is a ValueError, so callers that catch bad values catch it too.
"""

from __future__ import annotations

from pathlib import Path


class DatasetFormatError(ValueError):
    """A dataset file is missing or does not hold what its format requires."""


def line_error(path: Path, line_no: int, message: str) -> DatasetFormatError:
    """An error naming ``path`` and its 1-based line number."""
    return DatasetFormatError(f"{path}, line {line_no}: {message}")


def field_error(path: Path, field: str, message: str) -> DatasetFormatError:
    """An error naming ``path`` and one of its fields (a .mat key, a column)."""
    return DatasetFormatError(f"{path}, field {field!r}: {message}")

