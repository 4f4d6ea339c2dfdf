"""One writer per directory: an exclusive lock file holding its owner's pid, host and command.

Every galm command that writes a run directory (and the experiment grid, on its directory) holds
the lock of that directory while it writes, so two processes never interleave their files. The
lock is a file created with ``O_EXCL``; a second writer is refused with a message naming the
holder. A lock whose owner died without releasing it (kill -9, a crash) is stale when it names
this host and a pid that no longer runs, and the next writer takes it over. A lock from another
host is never broken: its owner cannot be checked from here, so the message says which file to
delete once that process is known to be gone; the exception is a caller that knows every holder of a
role is gone (a Ray cell task's retry, whose previous attempt died on another node: ``takes_over``).

A process may take a lock it already holds (the grid inside `galm experiment`); it is released
when the outermost holder releases it. Temporary files and directories carry the same owner in
their names (:func:`owner_tag`), so what a killed process left is recognised (:func:`owner_gone`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

LOCK_FILE = ".galm.lock"

# A lock file without a readable record (its owner died between creating and writing it) is
# stale after this many seconds.
UNREADABLE_STALE_SECONDS = 30.0

# Locks this process holds: lock file -> [depth, token].
_HELD: dict[Path, list[Any]] = {}


class DirectoryLocked(RuntimeError):
    """The directory is being written by another galm process (or a lock file cannot be made)."""


def _host() -> str:
    return socket.gethostname()


def host_tag() -> str:
    """This host's name as it may appear in a file name (letters, digits and '-', at most 40)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", _host())[:40] or "host"


def owner_tag() -> str:
    """``<pid>@<host tag>``: the owner of a temporary file or directory, written into its name."""
    return f"{os.getpid()}@{host_tag()}"


def owner_gone(tag: str) -> bool:
    """Whether the owner an :func:`owner_tag` names ran on this host and no longer runs."""
    pid, _, host = tag.partition("@")
    return host == host_tag() and pid.isdigit() and not pid_alive(int(pid))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, under another user
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_holder(lock_file: Path) -> dict[str, Any] | None:
    """The owner record of a lock file; None when it is gone; {} when it cannot be read."""
    try:
        text = lock_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else {}


def is_stale(holder: dict[str, Any]) -> bool:
    """A lock left by a process of this host that no longer runs."""
    pid = holder.get("pid")
    return holder.get("host") == _host() and isinstance(pid, int) and not pid_alive(pid)


def describe(holder: dict[str, Any]) -> str:
    """The holder in words: pid, host, command and since when."""
    if not holder:
        return "an unreadable lock record"
    command = str(holder.get("command") or "galm")
    command = command if len(command) <= 60 else command[:57] + "..."
    role = f"{holder['role']}, " if holder.get("role") else ""
    return f"pid {holder.get('pid')} on {holder.get('host')} ({role}{command}, since {holder.get('since')})"


class DirectoryLock:
    """The lock of one directory, held from :func:`lock_directory` until :meth:`release`."""

    def __init__(self, lock_file: Path) -> None:
        self.lock_file = lock_file
        self._released = False

    def release(self) -> None:
        """Give the lock up (the lock file goes when the outermost holder releases it)."""
        if self._released:
            return
        self._released = True
        entry = _HELD.get(self.lock_file)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] > 0:
            return
        del _HELD[self.lock_file]
        holder = read_holder(self.lock_file)
        if holder is not None and holder.get("token") == entry[1]:
            self.lock_file.unlink(missing_ok=True)

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _owner_record(token: str, role: str | None = None) -> bytes:
    command = " ".join(["galm", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "galm"
    record = {
        "pid": os.getpid(), "host": _host(), "command": command[:300], "token": token,
        "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if role is not None:
        record["role"] = role
    return (json.dumps(record) + "\n").encode("utf-8")


def _create(lock_file: Path, token: str, role: str | None = None) -> bool:
    """Create the lock file with this process's record; False when it already exists."""
    try:
        fd = os.open(lock_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    except OSError as error:
        raise DirectoryLocked(f"cannot create the lock file {lock_file}: {error}") from error
    with os.fdopen(fd, "wb") as handle:
        handle.write(_owner_record(token, role))
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _break_stale(lock_file: Path, holder: dict[str, Any]) -> None:
    """Remove a stale lock, unless another process replaced it in the meantime."""
    aside = lock_file.with_name(f"{lock_file.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(lock_file, aside)
    except FileNotFoundError:
        return  # another process broke it first
    if read_holder(aside) != holder:  # a fresh lock was taken between our read and the rename: put it back
        try:
            os.link(aside, lock_file)
        except OSError:
            pass
    aside.unlink(missing_ok=True)


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def lock_directory(directory: str | os.PathLike[str], what: str = "directory", role: str | None = None,
                   takes_over: str | None = None) -> DirectoryLock:
    """Take the exclusive lock of ``directory`` (which must exist), breaking a stale one.

    Raises DirectoryLocked naming the holder when another live process holds it; ``what`` names
    the directory in that message ('run directory', 'experiment directory'). ``role`` is recorded
    with the owner; a lock whose holder recorded the role ``takes_over`` is taken over wherever it
    runs (only for callers that know every such holder is gone).
    """
    lock_file = Path(directory).absolute() / LOCK_FILE
    entry = _HELD.get(lock_file)
    if entry is not None:
        holder = read_holder(lock_file)
        if holder is not None and holder.get("token") == entry[1]:
            entry[0] += 1
            return DirectoryLock(lock_file)
        del _HELD[lock_file]  # our lock file was removed behind our back: take it afresh
    token = uuid.uuid4().hex
    for _ in range(5):
        if _create(lock_file, token, role):
            _HELD[lock_file] = [1, token]
            return DirectoryLock(lock_file)
        holder = read_holder(lock_file)
        if holder is None:
            continue  # released between our attempt and the read
        orphaned = takes_over is not None and holder.get("role") == takes_over
        if not is_stale(holder) and not orphaned and not (not holder and _age(lock_file) > UNREADABLE_STALE_SECONDS):
            raise DirectoryLocked(
                f"{what} {directory} is being written by another galm process: {describe(holder)}; "
                f"wait for it to finish (if it is gone, delete {lock_file})"
            )
        _break_stale(lock_file, holder)
    raise DirectoryLocked(f"could not take the lock {lock_file}: other processes keep taking it")
