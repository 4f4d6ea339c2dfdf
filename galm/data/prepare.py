"""The prepared cache: every image decoded once, cropped and resized, stored memory-mappable.

``prepare_domain`` turns a reader's :class:`~galm.data.raw.RawDomain` into a cache directory in
exactly the format :meth:`AttributeDomain.load` reads (``images.npy``, labels, classes, splits,
``domain.json``), plus ``manifest.json`` (what was read, with which options, what was skipped, how
long it took) and ``images.txt`` (the source file of every cached row).

Images stream into a memory-mapped file inside a hidden staging directory next to the target,
one image at a time, so a dataset is never held in memory; the staging directory is renamed onto
the target only once complete, so an interrupted run leaves either the previous cache or nothing.
A second run with unchanged sources and options reuses the cache; changed annotation files, image
files (sizes or modification times), labels or options are detected and rebuild it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from galm import __version__
from galm.data.domain import (
    DOMAIN_FILE,
    FORMAT_VERSION,
    AttributeDomain,
    _is_nonempty_dir,
    _replace_dir,
)
from galm.data.raw import RawDomain
from galm.engine.progress import progress
from galm.runs.atomic import sync_path

__all__ = [
    "MANIFEST_FILE",
    "MIN_IMAGES_PER_WORKER",
    "PAD_VALUE",
    "PREPARE_VERSION",
    "RESIZE_MODES",
    "PrepareReport",
    "clip_box",
    "get_reader",
    "open_prepared",
    "prepare_dataset",
    "prepare_domain",
    "prepare_from_spec",
    "read_manifest",
    "reader_names",
    "resize_region",
]

# Bump when decoding/cropping/resizing changes what a cache holds (caches then rebuild).
PREPARE_VERSION = 1
MANIFEST_FILE = "manifest.json"
SOURCES_FILE = "images.txt"
RESIZE_MODES = ("center_crop", "pad")
# Fill of the borders in 'pad' mode: mid-grey, which the pixel normalisation maps to about zero.
PAD_VALUE = (128, 128, 128)
# JPEGs much larger than needed are decoded at a reduced DCT scale (never below the target size).
_DRAFT_BELOW = 0.5
# Spawned workers start in seconds (each re-imports the main module, e.g. torch under the CLI), so
# small datasets are decoded in-process: each extra worker needs at least this many images.
MIN_IMAGES_PER_WORKER = 256
_EXIF_ORIENTATION = 0x0112
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SPEC_KEYS = ("format", "root", "out", "resolution", "resize", "crop_margin", "workers", "strict",
              "overwrite", "options")


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


# --- opening ----------------------------------------------------------------------------------


def open_prepared(path: str | os.PathLike[str]) -> AttributeDomain:
    """Open a prepared cache (images memory-mapped: instant whatever the size)."""
    root = Path(path)
    if not (root / DOMAIN_FILE).is_file():
        raise FileNotFoundError(
            f"{root} is not a prepared domain (no {DOMAIN_FILE}); create it with `galm data prepare`"
        )
    return AttributeDomain.load(root)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a prepared cache, or None when it has none (or an unreadable one)."""
    try:
        manifest = json.loads((Path(path) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


# --- readers ----------------------------------------------------------------------------------


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


def _reader_version(format: str) -> int:
    """A reader's version (a 'version' attribute of its function, else 1) for cache invalidation."""
    try:
        reader = get_reader(format)
    except ValueError:
        return 1
    if format == "table":
        from galm.data.table import TABLE_READER_VERSION

        return TABLE_READER_VERSION
    return int(getattr(reader, "version", 1))


# --- entry points -----------------------------------------------------------------------------


def prepare_dataset(
    format: str,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    options: dict[str, Any] | None = None,
    resolution: int = 64,
    resize: str = "center_crop",
    crop_margin: float = 0.0,
    workers: int = 1,
    strict: bool = False,
    overwrite: bool = False,
) -> PrepareReport:
    """Read a dataset with the reader of ``format`` (root: its folder, or the table for 'table'), then prepare it."""
    reader = get_reader(format)
    options = dict(options or {})
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{format} data not found: {root} does not exist")
    raw = reader(root, **options)
    return prepare_domain(
        raw, Path(out), resolution=resolution, resize=resize, crop_margin=crop_margin, workers=workers,
        strict=strict, overwrite=overwrite, reader=format,
        reader_options={"root": str(root.resolve()), **options},
    )


def prepare_from_spec(spec_yaml_path: str | os.PathLike[str], **overrides: Any) -> PrepareReport:
    """Prepare from a YAML spec ``{format, root, out, resolution, resize, crop_margin, workers, strict, overwrite, options}``.

    Relative ``root`` and ``out`` are read from the spec file's folder. Keyword ``overrides``
    (not None) replace spec values.
    """
    import yaml

    path = Path(spec_yaml_path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise FileNotFoundError(f"cannot read spec {path}: {error}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a prepare spec is a mapping with keys {list(_SPEC_KEYS)}")
    spec.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; allowed: {list(_SPEC_KEYS)}")
    missing = [k for k in ("format", "root", "out") if not spec.get(k)]
    if missing:
        raise ValueError(f"{path}: missing {missing}")
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError(f"{path}: options must be a mapping of reader options")
    folder = path.parent
    return prepare_dataset(
        str(spec["format"]),
        folder / Path(str(spec["root"])),
        folder / Path(str(spec["out"])),
        options=options,
        **{k: spec[k] for k in ("resolution", "resize", "crop_margin", "workers", "strict", "overwrite") if k in spec},
    )


def prepare_domain(
    raw: RawDomain,
    out: str | os.PathLike[str],
    *,
    resolution: int = 64,
    resize: str = "center_crop",
    crop_margin: float = 0.0,
    workers: int = 1,
    strict: bool = False,
    overwrite: bool = False,
    reader: str = "custom",
    reader_options: dict[str, Any] | None = None,
) -> PrepareReport:
    """Decode, crop and resize every image of ``raw`` once into the cache directory ``out``.

    Reuses ``out`` when it was prepared from the same sources with the same options; rebuilds it
    when anything changed (the report says what), replacing the old cache only once the new one is
    complete. ``overwrite=True`` rebuilds even an up-to-date cache and may replace a non-empty
    directory that is not a prepared cache. Images that fail to decode are skipped and listed
    (``strict=True``: raise instead); boxes outside their image are dropped and listed.
    ``crop_margin`` widens each box by that fraction of its size on every side before clipping.
    ``workers`` > 1 decodes in spawned processes (at most one per ``MIN_IMAGES_PER_WORKER`` images,
    since each takes seconds to start); the report gives the number used.
    """
    start = time.perf_counter()
    out = Path(out)
    _check_options(raw, resolution, resize, crop_margin, workers)
    identity = _identity(raw, resolution, resize, crop_margin, reader, reader_options or {})

    previous = read_manifest(out) if (out / DOMAIN_FILE).is_file() else None
    if previous is not None and not overwrite:
        changes = _changes(previous.get("identity", {}), identity)
        if not changes:
            if strict and previous.get("skipped"):
                first = previous["skipped"][0]
                raise ValueError(f"cannot decode image {first['path']}: {first['error']} (strict; the "
                                 f"up-to-date cache {out} skipped {len(previous['skipped'])} images)")
            return PrepareReport(
                out=out, reused=True, reason="sources and options unchanged",
                n_source_images=int(previous.get("n_source_images", raw.n_images)),
                n_images=int(previous.get("n_images", 0)),
                skipped=list(previous.get("skipped", [])),
                dropped_boxes=list(previous.get("dropped_boxes", [])),
                seconds=time.perf_counter() - start, workers=workers,
            )
        reason = "rebuilt: " + "; ".join(changes)
    elif overwrite and _is_nonempty_dir(out):
        reason = "rebuilt: overwrite requested"
    elif out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    elif _is_nonempty_dir(out):
        raise FileExistsError(
            f"{out} is a non-empty directory but not a prepared cache (no {MANIFEST_FILE}); "
            "choose another --out or pass overwrite=True (--overwrite) to replace it"
        )
    else:
        reason = "new cache"

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        report = _build(raw, staging, out, identity, reason, resolution, resize, crop_margin, workers,
                        strict, start)
        sync_path(staging)
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


# --- building ---------------------------------------------------------------------------------


def _check_options(raw: RawDomain, resolution: int, resize: str, crop_margin: float, workers: int) -> None:
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


def _build(
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
        with _decoded(tasks, workers) as results:
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
        "manifest_version": 1,
        "galm_version": __version__,
        "identity": identity,
        "n_source_images": n,
        "n_images": written,
        "skipped": skipped,
        "dropped_boxes": dropped,
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
        json.dump(manifest, handle, indent=1)
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


@contextlib.contextmanager
def _decoded(tasks: list[tuple[Any, ...]], workers: int) -> Iterator[Iterator[tuple[str, Any]]]:
    """Decoding results in task order: in-process for one worker, else from spawned processes."""
    if workers == 1 or len(tasks) < 2:
        yield (_decode_one(task) for task in tasks)
        return
    context = multiprocessing.get_context("spawn")
    chunksize = max(1, min(64, len(tasks) // (workers * 8)))
    executor = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context)
    try:
        yield _checked(executor.map(_decode_one, tasks, chunksize=chunksize))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _checked(results: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Pass results through, explaining a worker pool that could not start."""
    try:
        yield from results
    except BrokenProcessPool as error:
        raise RuntimeError(
            f"decoding worker processes failed ({error}); when calling prepare from a script, guard it "
            "with `if __name__ == '__main__':`, or use workers=1"
        ) from None


def _decode_one(task: tuple[str, tuple[float, float, float, float] | None, int, str, float]) -> tuple[str, Any]:
    """('ok', (R, R, 3) uint8) or ('dropped', why) or ('error', message) for one image."""
    path, box, resolution, resize, margin = task
    try:
        with Image.open(path) as source:
            width, height = source.size
            if box is None:
                region: tuple[float, float, float, float] | None = (0.0, 0.0, float(width), float(height))
            else:
                region = clip_box(box, margin, width, height)
                if region is None:
                    return "dropped", f"box lies outside the {width}x{height} image or is empty"
            region_w, region_h = region[2] - region[0], region[3] - region[1]
            side = min(region_w, region_h) if resize == "center_crop" else max(region_w, region_h)
            factor = resolution / side
            if source.format == "JPEG" and factor < _DRAFT_BELOW:
                source.draft("RGB", (max(1, math.ceil(width * factor)), max(1, math.ceil(height * factor))))
                sx, sy = source.size[0] / width, source.size[1] / height
                region = (region[0] * sx, region[1] * sy, region[2] * sx, region[3] * sy)
            orientation = source.getexif().get(_EXIF_ORIENTATION, 1) if box is None else 1
            image = source.convert("RGB")
        if orientation in _ORIENTATION_TRANSPOSE:
            image = image.transpose(_ORIENTATION_TRANSPOSE[orientation])
            region = (0.0, 0.0, float(image.width), float(image.height))
        return "ok", np.asarray(resize_region(image, region, resolution, resize), dtype=np.uint8)
    except Exception as error:  # Pillow raises many types for corrupt or unsupported files
        return "error", f"{type(error).__name__}: {error}"


def clip_box(
    box: Sequence[float], margin: float, width: int, height: int
) -> tuple[float, float, float, float] | None:
    """An (x1, y1, x2, y2) box widened by ``margin`` of its size per side and clipped; None if empty."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        return None
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    x1, x2 = max(0.0, x1 - dx), min(float(width), x2 + dx)
    y1, y2 = max(0.0, y1 - dy), min(float(height), y2 + dy)
    if x2 - x1 < 1.0 or y2 - y1 < 1.0:
        return None
    return x1, y1, x2, y2


def resize_region(
    image: Image.Image, region: tuple[float, float, float, float], resolution: int, resize: str
) -> Image.Image:
    """The region as a resolution×resolution image: centre square crop, or padded to a square.

    The region is cut out first (pixel-rounded) so nothing outside it bleeds into the result.
    """
    x1, y1, x2, y2 = region
    if resize == "center_crop":
        side = min(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x1, y1, x2, y2 = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
    left, top = max(0, round(x1)), max(0, round(y1))
    right, bottom = min(image.width, max(left + 1, round(x2))), min(image.height, max(top + 1, round(y2)))
    if (left, top, right, bottom) != (0, 0, image.width, image.height):
        image = image.crop((left, top, right, bottom))
    w, h = image.size
    if resize == "center_crop":
        if w != h:  # rounding left the crop a pixel off square
            side_px = min(w, h)
            image = image.crop(((w - side_px) // 2, (h - side_px) // 2,
                                (w - side_px) // 2 + side_px, (h - side_px) // 2 + side_px))
        return image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    scale = resolution / max(w, h)
    inner_w, inner_h = max(1, round(w * scale)), max(1, round(h * scale))
    inner = image.resize((inner_w, inner_h), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (resolution, resolution), PAD_VALUE)
    canvas.paste(inner, ((resolution - inner_w) // 2, (resolution - inner_h) // 2))
    return canvas


# --- identity: what a cache was made from -----------------------------------------------------


def _identity(
    raw: RawDomain, resolution: int, resize: str, crop_margin: float, reader: str, reader_options: dict[str, Any]
) -> dict[str, Any]:
    """Everything a cache depends on; two prepares with equal identities give the same cache."""
    return {
        "versions": {"cache_format": FORMAT_VERSION, "prepare": PREPARE_VERSION,
                     "reader": _reader_version(reader)},
        "reader": reader,
        "reader_options": _jsonable(reader_options),
        "options": {"resolution": resolution, "resize": resize, "crop_margin": float(crop_margin)},
        "source_files": [_file_record(Path(p)) for p in raw.source_files],
        "n_images": raw.n_images,
        "images_fingerprint": _images_fingerprint(raw.image_paths),
        "content_fingerprint": _content_fingerprint(raw),
    }


def _file_record(path: Path) -> dict[str, Any]:
    try:
        stat = path.stat()
    except OSError:
        return {"path": str(path), "size": None, "mtime_ns": None}
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _images_fingerprint(paths: Sequence[Path]) -> str:
    """SHA-256 over every image path with its size and modification time."""
    digest = hashlib.sha256()
    for path in paths:
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
    header = [raw.name, raw.attribute_names, raw.class_names, raw.label_level, _jsonable(raw.metadata)]
    digest.update(json.dumps(header, sort_keys=True).encode())
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """A JSON-friendly copy (paths and other objects as strings, tuples and sets as lists)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
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
