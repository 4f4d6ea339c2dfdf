"""Building a prepared cache: decode every image (in-process or in spawned workers, :mod:`galm.data.prepare.workers`) into staging.

:func:`build_cache` fills a staging directory with a complete cache (``images.npy`` streamed
through a memory map one image at a time, labels, classes, splits, ``domain.json``,
``images.txt`` and ``manifest.json``); :func:`galm.data.prepare.prepare_domain` then renames it
onto the target.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from galm import __version__
from galm.data.domain import AttributeDomain
from galm.data.prepare.decode import RESIZE_MODES, decode_one
from galm.data.prepare.integrity import record_files
from galm.data.prepare.manifest import (
    MANIFEST_FILE,
    MANIFEST_VERSION,
    SOURCES_FILE,
    PrepareReport,
)
from galm.data.prepare.workers import decoded
from galm.data.raw import RawDomain
from galm.engine.progress import progress
from galm.runs.atomic import json_text, sync_path

# Spawned workers start in seconds (each re-imports the main module, e.g. torch under the CLI), so
# small datasets are decoded in-process: each extra worker needs at least this many images.
MIN_IMAGES_PER_WORKER = 256


def check_options(raw: RawDomain, resolution: int, resize: str, crop_margin: float, workers: int) -> None:
    """ValueError naming the first bad prepare option or inconsistent field of ``raw``."""
    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {list(RESIZE_MODES)}, got {resize!r}")
    if not (isinstance(crop_margin, (int, float)) and crop_margin >= 0):
        raise ValueError(f"crop_margin must be a number >= 0, got {crop_margin!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    n = raw.n_images
    if n == 0:
        raise ValueError(f"domain {raw.name!r} has no images")
    if raw.labels.shape[0] != n or raw.class_index.shape[0] != n:
        raise ValueError(
            f"domain {raw.name!r}: {n} image paths but labels {raw.labels.shape} and class_index "
            f"{raw.class_index.shape}"
        )
    if raw.boxes is not None and np.asarray(raw.boxes).shape != (n, 4):
        raise ValueError(f"domain {raw.name!r}: boxes must have shape ({n}, 4), got {np.asarray(raw.boxes).shape}")


def build_cache(
    raw: RawDomain, staging: Path, out: Path, identity: dict[str, Any], reason: str, resolution: int,
    resize: str, crop_margin: float, workers: int, strict: bool, start: float,
) -> PrepareReport:
    """Fill ``staging`` with a complete cache of ``raw``; returns the report."""
    n = raw.n_images
    workers = max(1, min(workers, n // MIN_IMAGES_PER_WORKER)) if MIN_IMAGES_PER_WORKER else workers
    shape = (resolution, resolution, 3)
    partial = staging / "images.partial.npy"
    images = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(n, *shape))
    kept = np.zeros(n, dtype=bool)
    skipped: list[dict[str, str]] = []
    dropped: list[dict[str, Any]] = []
    boxes = None if raw.boxes is None else np.asarray(raw.boxes, dtype=np.float64)
    tasks = [
        (str(raw.image_paths[i]), None if boxes is None else tuple(float(v) for v in boxes[i]),
         resolution, resize, float(crop_margin))
        for i in range(n)
    ]
    written = 0
    bar = progress(total=n, desc=f"prepare {raw.name}", unit="img")
    try:
        with decoded(tasks, workers, decode_one) as results:
            for i, (status, payload) in enumerate(results):
                if status == "ok":
                    images[written] = payload
                    written += 1
                    kept[i] = True
                elif status == "dropped":
                    dropped.append({"path": tasks[i][0], "box": list(tasks[i][1] or ()), "reason": payload})
                else:
                    if strict:
                        raise ValueError(f"cannot decode image {tasks[i][0]}: {payload} (strict: stopping)")
                    skipped.append({"path": tasks[i][0], "error": payload})
                bar.update(1)
    finally:
        bar.close()
    if written == 0:
        raise ValueError(f"none of the {n} images of domain {raw.name!r} could be used; e.g. "
                         f"{(skipped or dropped)[0]}")
    images.flush()
    del images
    final = staging / "images.final.npy"
    if written == n:
        os.replace(partial, final)
    else:
        _copy_rows(partial, final, written)
        partial.unlink()
    sync_path(final)
    decode_seconds = time.perf_counter() - start

    domain = _kept_domain(raw, kept, written, resolution, identity, len(skipped), len(dropped))
    # Write labels, classes, splits and domain.json with the domain's own writer, the images
    # (already on disk) left out, then move the decoded images in.
    light = copy.copy(domain)
    light.images = np.zeros((0, *shape), dtype=np.uint8)
    light._write_files(staging)
    os.replace(final, staging / "images.npy")
    kept_rows = np.flatnonzero(kept)
    (staging / SOURCES_FILE).write_text("".join(tasks[i][0] + "\n" for i in kept_rows), encoding="utf-8")
    seconds = time.perf_counter() - start
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "galm_version": __version__,
        "identity": identity,
        "n_source_images": n,
        "n_images": written,
        "skipped": skipped,
        "dropped_boxes": dropped,
        # Size and checksum of every cache file, checked before the cache is reused.
        "files": record_files(staging, skip=MANIFEST_FILE),
        "timing": {
            "seconds": round(seconds, 3),
            "decode_seconds": round(decode_seconds, 3),
            "images_per_second": round(n / decode_seconds, 1) if decode_seconds > 0 else None,
            "workers": workers,
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
    }
    with open(staging / MANIFEST_FILE, "w", encoding="utf-8") as handle:
        handle.write(json_text(manifest, indent=1))
        handle.flush()
        os.fsync(handle.fileno())
    return PrepareReport(out=out, reused=False, reason=reason, n_source_images=n, n_images=written,
                         skipped=skipped, dropped_boxes=dropped, seconds=seconds, workers=workers)


def _kept_domain(
    raw: RawDomain, kept: np.ndarray, written: int, resolution: int, identity: dict[str, Any],
    n_skipped: int, n_dropped: int,
) -> AttributeDomain:
    """The AttributeDomain of the kept rows (indices remapped), validated; images are a zero-cost stand-in."""
    new_index = np.cumsum(kept) - 1
    splits = {}
    for key, idx in raw.splits.items():
        idx = np.asarray(idx, dtype=np.int64)
        splits[key] = new_index[idx[kept[idx]]].astype(np.int64)
    metadata = dict(raw.metadata)
    metadata["prepare"] = {
        "reader": identity["reader"],
        "resolution": resolution,
        "resize": identity["options"]["resize"],
        "crop_margin": identity["options"]["crop_margin"],
        "skipped_images": n_skipped,
        "dropped_boxes": n_dropped,
    }
    stand_in = np.broadcast_to(np.zeros((1, 1, 1, 3), dtype=np.uint8), (written, resolution, resolution, 3))
    class_attributes = raw.class_attributes
    return AttributeDomain(
        name=raw.name,
        images=stand_in,
        labels=np.ascontiguousarray(np.asarray(raw.labels, dtype=np.float32)[kept]),
        attribute_names=list(raw.attribute_names),
        class_index=np.asarray(raw.class_index, dtype=np.int64)[kept],
        class_names=list(raw.class_names),
        splits=splits,
        class_attributes=None if class_attributes is None else np.asarray(class_attributes, dtype=np.float32),
        label_level=raw.label_level,
        metadata=metadata,
    )


def _copy_rows(source: Path, target: Path, rows: int, block: int = 1024) -> None:
    """Copy the first ``rows`` images of one .npy file into a new one, a block at a time."""
    src = np.load(source, mmap_mode="r")
    dst = np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8, shape=(rows, *src.shape[1:]))
    for begin in range(0, rows, block):
        end = min(rows, begin + block)
        dst[begin:end] = src[begin:end]
    dst.flush()
    del dst, src
