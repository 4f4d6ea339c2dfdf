"""Which reader a format name means: the benchmark readers of ``galm.data.readers`` plus 'table'.

Readers are imported lazily, so opening a prepared cache never imports scipy or the readers.
"""

from __future__ import annotations

import inspect
from typing import Callable

from galm.data.raw import RawDomain


def reader_names() -> list[str]:
    """Formats ``prepare_dataset`` accepts: the benchmark readers plus 'table'."""
    try:
        from galm.data.readers import READERS
    except ImportError:
        names: list[str] = []
    else:
        names = list(READERS)
    return sorted(set(names) | {"table"})


def get_reader(format: str) -> Callable[..., RawDomain]:
    """The reader function of a format name ('table' is the custom CSV/Parquet reader)."""
    if format == "table":
        from galm.data.table import read_table

        return read_table
    try:
        from galm.data.readers import READERS
    except ImportError as error:
        raise ValueError(f"unknown format {format!r}: only 'table' is available ({error})") from None
    if format not in READERS:
        raise ValueError(f"unknown format {format!r}; choose one of {reader_names()}")
    return READERS[format]


def reader_version(format: str) -> int:
    """A reader's version (a 'version' attribute of its function, else 1) for cache invalidation."""
    try:
        reader = get_reader(format)
    except ValueError:
        return 1
    if format == "table":
        from galm.data.table import TABLE_READER_VERSION

        return TABLE_READER_VERSION
    return int(getattr(reader, "version", 1))


def path_options(format: str) -> set[str]:
    """Keyword options of a format's reader that name files or folders (annotated ``os.PathLike``)."""
    try:
        reader = get_reader(format)
    except ValueError:
        return set()
    parameters = list(inspect.signature(reader).parameters.values())[1:]  # the first is the root
    return {p.name for p in parameters if "PathLike" in str(p.annotation)}
