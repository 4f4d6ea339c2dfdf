"""``manifest.json``: what a prepared cache was made from, and whether a new prepare may reuse it.

A cache's *identity* records everything its contents depend on (format versions, reader and its
options, resize options, sizes and modification times of the annotation and image files,
fingerprints of labels, classes and splits); two prepares with equal identities give the same
cache, and :func:`identity_changes` lists in words why two identities differ. Source paths are
recorded absolute (``Path.absolute``: a relative spelling, ``./`` or a trailing slash compares
equal; symlinks and ``..`` are kept as written). :class:`PrepareReport` says what one prepare
call did (read back from the manifest on reuse).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from galm.data.domain import FORMAT_VERSION
from galm.data.prepare.formats import reader_version
from galm.data.raw import RawDomain

# Bump when decoding/cropping/resizing changes what a cache holds (caches then rebuild).
# 2: 16-bit greyscale is scaled to 8 bits (was clipped to white); images over PIL.Image.MAX_IMAGE_PIXELS
# to decode are refused.
PREPARE_VERSION = 2
# 2: the manifest records every cache file's size and checksum ('files'), and source paths absolute.
MANIFEST_VERSION = 2
MANIFEST_FILE = "manifest.json"
SOURCES_FILE = "images.txt"


@dataclass
class PrepareReport:
    """What one ``prepare_domain`` call did."""

    out: Path
    reused: bool
    # Why the cache was (re)built, or why it was reused ('sources and options unchanged').
    reason: str
    n_source_images: int
    n_images: int
    # One {'path', 'error'} per image that failed to decode.
    skipped: list[dict[str, str]] = field(default_factory=list)
    # One {'path', 'box', 'reason'} per crop box outside its image or empty after clipping.
    dropped_boxes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1

    @property
    def images_per_second(self) -> float:
        """Decoding throughput of this call (NaN when the cache was reused)."""
        if self.reused or self.seconds <= 0:
            return math.nan
        return self.n_source_images / self.seconds

    def summary(self) -> str:
        """A few human-readable lines."""
        if self.reused:
            return f"reused prepared cache {self.out} ({self.n_images} images): {self.reason}"
        lines = [
            f"prepared {self.out}: {self.n_images} of {self.n_source_images} images in {self.seconds:.1f}s "
            f"({self.images_per_second:.0f} images/s, {self.workers} worker(s)); {self.reason}"
        ]
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} images that failed to decode, e.g. "
                         f"{self.skipped[0]['path']}: {self.skipped[0]['error']} (all listed in {MANIFEST_FILE})")
        if self.dropped_boxes:
            lines.append(f"  dropped {len(self.dropped_boxes)} crop boxes outside their image or empty "
                         f"(listed in {MANIFEST_FILE})")
        return "\n".join(lines)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a prepared cache, or None when it has none (or an unreadable one)."""
    try:
        manifest = json.loads((Path(path) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


# --- identity: what a cache was made from -----------------------------------------------------


def cache_identity(
    raw: RawDomain, resolution: int, resize: str, crop_margin: float, reader: str, reader_options: dict[str, Any]
) -> dict[str, Any]:
    """Everything a cache depends on; two prepares with equal identities give the same cache."""
    return {
        "versions": {"cache_format": FORMAT_VERSION, "prepare": PREPARE_VERSION,
                     "reader": reader_version(reader)},
        "reader": reader,
        "reader_options": jsonable(reader_options),
        "options": {"resolution": resolution, "resize": resize, "crop_margin": float(crop_margin)},
        "source_files": [_file_record(Path(p)) for p in raw.source_files],
        "n_images": raw.n_images,
        "images_fingerprint": _images_fingerprint(raw.image_paths),
        "content_fingerprint": _content_fingerprint(raw),
    }


def _file_record(path: Path) -> dict[str, Any]:
    """An annotation file's absolute path (however it was spelled), size and modification time."""
    path = path.absolute()
    try:
        stat = path.stat()
    except OSError:
        return {"path": str(path), "size": None, "mtime_ns": None}
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _images_fingerprint(paths: Sequence[Path]) -> str:
    """SHA-256 over every image path (made absolute) with its size and modification time."""
    digest = hashlib.sha256()
    for path in (Path(p).absolute() for p in paths):
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def _content_fingerprint(raw: RawDomain) -> str:
    """SHA-256 over labels, classes, splits, boxes, names and metadata."""
    digest = hashlib.sha256()
    for array in (raw.labels, raw.class_index, raw.boxes, raw.class_attributes):
        if array is None:
            digest.update(b"none")
        else:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    for key in sorted(raw.splits):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(raw.splits[key], dtype=np.int64).tobytes())
    header = [raw.name, raw.attribute_names, raw.class_names, raw.label_level, jsonable(raw.metadata)]
    digest.update(json.dumps(header, sort_keys=True).encode())
    return digest.hexdigest()


def jsonable(value: Any) -> Any:
    """A JSON-friendly copy (paths and other objects as strings, tuples and sets as lists)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def identity_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why a cache with identity ``old`` is not the one ``new`` describes (empty: it is)."""
    if not old:
        return ["the existing cache has no readable manifest"]
    reasons: list[str] = []
    if old.get("versions") != new["versions"]:
        reasons.append(f"format versions changed {old.get('versions')} -> {new['versions']}")
    if old.get("reader") != new["reader"]:
        reasons.append(f"reader changed {old.get('reader')!r} -> {new['reader']!r}")
    reasons += _dict_changes("reader options", old.get("reader_options") or {}, new["reader_options"])
    reasons += _dict_changes("options", old.get("options") or {}, new["options"])
    old_files = {f["path"]: f for f in old.get("source_files", [])}
    new_files = {f["path"]: f for f in new["source_files"]}
    changed_files = sorted(p for p in old_files.keys() & new_files.keys() if old_files[p] != new_files[p])
    if changed_files:
        reasons.append(f"source files changed: {', '.join(Path(p).name for p in changed_files[:5])}")
    if old_files.keys() != new_files.keys():
        reasons.append("the set of source files changed")
    if old.get("n_images") != new["n_images"]:
        reasons.append(f"number of source images changed {old.get('n_images')} -> {new['n_images']}")
    elif old.get("images_fingerprint") != new["images_fingerprint"]:
        reasons.append("source image files changed (paths, sizes or modification times)")
    if old.get("content_fingerprint") != new["content_fingerprint"]:
        reasons.append("labels, classes, splits, boxes or names changed")
    return reasons


def _dict_changes(what: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    diffs = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return [f"{what} changed: {', '.join(diffs)}"] if diffs else []
