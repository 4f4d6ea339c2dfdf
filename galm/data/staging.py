"""Staging directories beside a prepared cache, named after their owner, and what a killed
prepare left of them.

A cache is written into ``.<OUT>.tmp-<pid>@<host>-<random>`` and renamed onto ``OUT``; an existing
``OUT`` is first moved aside to ``.<OUT>.old-<pid>@<host>-<random>`` and removed after the rename.
A process killed in between leaves these behind. :func:`clean_stale` (run when a prepare or a save
starts) removes those of owners that no longer run on this host, and puts a moved-aside cache back
when ``OUT`` itself is gone, so a killed rebuild never loses the previous cache.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

from galm.runs.atomic import sync_path
from galm.runs.lock import owner_gone, owner_tag

# `.<OUT>.<tmp|old>-<pid>@<host>-<hex>`; releases before it wrote `.<OUT>.<tmp|old>-<hex>`, with no owner.
_OWNED = re.compile(r"^(?P<owner>[0-9]+@[A-Za-z0-9-]+)-[0-9a-f]{32}$")
_UNOWNED = re.compile(r"^[0-9a-f]{32}$")
# An ownerless staging directory this old belongs to no prepare in progress.
UNOWNED_STALE_SECONDS = 3600.0
# The file whose presence makes a directory a complete cache, written last (galm.data.domain.DOMAIN_FILE).
COMPLETE_MARK = "domain.json"


def new_staging(target: Path) -> Path:
    """A new empty staging directory beside ``target``, owned by this process."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{owner_tag()}-{uuid.uuid4().hex}"
    staging.mkdir()
    return staging


def replace_dir(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, moving an old target aside first and removing it after."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{owner_tag()}-{uuid.uuid4().hex}"
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    sync_path(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _stale(path: Path, suffix: str) -> bool:
    owned = _OWNED.match(suffix)
    if owned is not None:
        return owner_gone(owned["owner"])
    if _UNOWNED.match(suffix) is None:
        return False
    try:
        return time.time() - path.stat().st_mtime > UNOWNED_STALE_SECONDS
    except OSError:
        return False


def clean_stale(target: Path) -> list[Path]:
    """Remove the staging and moved-aside directories of ``target`` that a killed process left;
    a complete moved-aside cache goes back to ``target`` when ``target`` is missing. Returns the
    paths removed or restored."""
    if not target.parent.is_dir():
        return []
    handled = []
    for kind in ("old", "tmp"):  # a moved-aside cache first: it may be put back
        prefix = f".{target.name}.{kind}-"
        for path in sorted(target.parent.glob(f"{_glob_escape(prefix)}*")):
            if not path.is_dir() or path.is_symlink() or not _stale(path, path.name[len(prefix):]):
                continue
            if kind == "old" and not target.exists() and (path / COMPLETE_MARK).is_file():
                os.replace(path, target)
            else:
                shutil.rmtree(path, ignore_errors=True)
            handled.append(path)
    return handled


def _glob_escape(text: str) -> str:
    """``text`` with glob's special characters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)

