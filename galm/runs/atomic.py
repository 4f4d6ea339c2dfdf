"""Making writes survive a crash: fsync of files and of the directories that hold renames."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any


def sync_handle(handle: IO[Any]) -> None:
    """Push an open file's buffered data to disk."""
    handle.flush()
    os.fsync(handle.fileno())


def sync_path(path: Path) -> None:
    """fsync a file or a directory by path (a no-op where the platform cannot open directories)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
