"""Finding a dataset's files and folders: its root, annotation files, image folder and listed images.

Readers parse annotation files first and check the image folder last, so a layout without images
(the genuine annotation files in ``shared/data``) fails with a message naming the expected folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from galm.data.readers.format_error import DatasetFormatError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_SHOWN_MISSING = 5


def resolve(root: Path, path: str | os.PathLike[str] | None) -> Path | None:
    """``path`` taken relative to ``root`` unless it is absolute; None stays None."""
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else root / path


def require_root(root: str | os.PathLike[str], dataset: str) -> Path:
    """The dataset root as a Path; an error when it is not a folder."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetFormatError(f"{dataset}: dataset root folder {path} does not exist or is not a folder")
    return path


def require_file(path: Path, what: str) -> Path:
    """``path`` when it is a file; an error naming the expected file otherwise."""
    if not path.is_file():
        raise DatasetFormatError(f"missing {what}: expected file {path}")
    return path


def find_file(candidates: Sequence[Path], what: str) -> Path:
    """The first existing file among ``candidates``; an error naming them all otherwise."""
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates[1:])
    raise DatasetFormatError(f"missing {what}: expected file {candidates[0]}" + (f" (also tried {tried})" if tried else ""))


def require_image_dir(path: Path, dataset: str, layout: str, also_tried: Sequence[Path] = ()) -> Path:
    """``path`` when it is a folder; an error naming the expected image folder otherwise."""
    if not path.is_dir():
        extra = [str(p) for p in also_tried if p != path]
        tried = f"; also tried {', '.join(extra)}" if extra else ""
        raise DatasetFormatError(
            f"{dataset}: image folder not found: expected folder {path} ({layout}){tried}. "
            "The annotation files were read; point the reader's image-folder option at the images."
        )
    return path


def first_image_dir(candidates: Sequence[Path], dataset: str, layout: str) -> Path:
    """The first existing folder among ``candidates``; an error naming the first (and the rest)."""
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return require_image_dir(candidates[0], dataset, layout, candidates[1:])


def check_files_exist(paths: Iterable[Path], dataset: str) -> None:
    """Every path is an existing file; an error with the count and the first few missing otherwise."""
    checked: set[Path] = set()
    missing: list[Path] = []
    total = 0
    for path in paths:
        if path in checked:
            continue
        checked.add(path)
        total += 1
        if not path.is_file():
            missing.append(path)
    if missing:
        shown = ", ".join(str(p) for p in missing[:_SHOWN_MISSING])
        more = f" and {len(missing) - _SHOWN_MISSING} more" if len(missing) > _SHOWN_MISSING else ""
        raise DatasetFormatError(f"{dataset}: {len(missing)} of {total} listed image files are missing: {shown}{more}")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped)."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
