"""Where a run came from: galm's git revision, package versions, host, start time, command line."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from galm.runs.atomic import PathLike


@dataclass(frozen=True)
class GitRevision:
    """The commit of a source tree and whether it has uncommitted changes (None when unknown)."""

    revision: str
    dirty: bool | None


def _git(directory: Path, *args: str) -> str | None:
    """Output of a git command run in ``directory``; None if git is missing or fails."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_revision(directory: PathLike | None = None) -> GitRevision:
    """Git revision of ``directory`` (default: the galm package); 'unknown' outside a checkout."""
    directory = Path(directory) if directory is not None else Path(__file__).resolve().parent
    revision = _git(directory, "rev-parse", "HEAD")
    if not revision:
        return GitRevision(revision="unknown", dirty=None)
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return GitRevision(revision=revision, dirty=None if status is None else bool(status))


def _galm_version() -> str:
    """The installed galm version, 'unknown' when not installed."""
    try:
        return importlib.metadata.version("galm")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _torch_version() -> str:
    """The torch version, 'unavailable' when torch cannot be imported."""
    try:
        import torch
    except ImportError:
        return "unavailable"
    return str(torch.__version__)


def start_record() -> dict[str, Any]:
    """Provenance of the current process: revision, versions, host, start time, command line."""
    git = git_revision()
    return {
        "git_revision": git.revision,
        "git_dirty": git.dirty,
        "galm_version": _galm_version(),
        "python_version": platform.python_version(),
        "torch_version": _torch_version(),
        "hostname": platform.node(),
        "start_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command_line": list(sys.argv),
    }
