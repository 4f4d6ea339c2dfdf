"""Writes that survive a crash: atomic replacement (temporary file, fsync, rename, fsync of the
directory) for every record galm writes, strict JSON, and JSON reading with errors that name the file.

A crash never leaves a partial file under a final name. A temporary file carries its writer's pid
and host in its name (``.<name>.<pid>@<host>.<random>.tmp``), so the temporaries a killed process
left are found and removed on the next start (:func:`remove_stale_temporaries`). Every JSON record
is strict JSON: NaN and infinities (an undefined AUC, the mAUC of no attribute) are written as
``null``, never as the bare ``NaN`` that other JSON readers refuse.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator

from galm.runs.lock import owner_gone, owner_tag

# `.<name>.<pid>@<host>.<random>.tmp`; releases before it wrote `.<name>.<random>.tmp`, with no owner.
_TEMPORARY = re.compile(r"^\..+\.(?P<owner>[0-9]+@[A-Za-z0-9-]+)\.[a-z0-9_]{8}\.tmp$")
_UNOWNED_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# An ownerless temporary this old belongs to no write in progress.
UNOWNED_STALE_SECONDS = 600.0


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


PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def _atomic_file(path: PathLike) -> Iterator[IO[bytes]]:
    """Yields a binary file that replaces ``path`` only if the block completes without error."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.{owner_tag()}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file private (0600); a run directory is shared, so give it the
        # permissions a plain open() would (0666 less the umask).
        os.chmod(temp_name, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    sync_path(target.parent)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (an exporter, a
    Parquet writer); it replaces ``path`` only if the block completes, else it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.{owner_tag()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        yield temp
        if not temp.is_file():
            raise FileNotFoundError(f"nothing was written for {target}")
        os.chmod(temp, 0o666 & ~_umask())
        with open(temp, "rb+") as written:
            sync_handle(written)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    sync_path(target.parent)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with _atomic_file(path) as handle:
        handle.write(data)


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that strict JSON can hold: NaN and infinities become None, tuples lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(item) for item in obj]
    return obj


def json_text(obj: Any, indent: int | None = 2) -> str:
    """``obj`` as strict JSON text (keys in insertion order; non-finite numbers as null)."""
    return json.dumps(json_safe(obj), indent=indent, sort_keys=False, allow_nan=False)


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented strict JSON atomically."""
    atomic_write_bytes(path, (json_text(obj) + "\n").encode("utf-8"))


def remove_stale_temporaries(directory: PathLike) -> list[Path]:
    """Remove the temporaries of atomic writes under ``directory`` whose writer is gone.

    A temporary is stale when its owner (pid and host in its name) ran on this host and no longer
    runs, or, in the ownerless form of earlier releases, when it is older than
    ``UNOWNED_STALE_SECONDS``. Returns the removed paths.
    """
    removed = []
    for path in Path(directory).rglob(".*.tmp"):
        match = _TEMPORARY.match(path.name)
        if match is not None:
            stale = owner_gone(match["owner"])
        else:
            stale = _UNOWNED_TEMPORARY.match(path.name) is not None and _age(path) > UNOWNED_STALE_SECONDS
        if stale and path.is_file() and not path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """``torch.save`` to ``path`` atomically, streaming into the temporary file."""
    import torch

    with _atomic_file(path) as handle:
        torch.save(obj, handle)


def write_json(path: PathLike, obj: Any) -> None:
    """Writes a JSON record (``architectures.json``, ``results.json``) atomically."""
    atomic_write_json(path, obj)


def read_json(path: PathLike) -> Any:
    """Reads a JSON file; a missing or malformed file raises an error naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"JSON file not found: {path}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"malformed JSON in {path} at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from error
