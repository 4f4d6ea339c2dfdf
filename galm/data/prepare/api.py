"""The prepare entry points: read a dataset, then build its cache or reuse an up-to-date one.

``prepare_domain`` compares the identity of what it is asked to prepare with the manifest of an
existing cache, reuses the cache when nothing changed, and otherwise builds a new one in a hidden
staging directory beside the target that replaces the target only once complete.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from galm.config.typed import load_yaml_file
from galm.data.domain import DOMAIN_FILE, AttributeDomain, _is_nonempty_dir
from galm.data.prepare.build import build_cache, check_options
from galm.data.prepare.formats import get_reader, path_options
from galm.data.prepare.integrity import check_files
from galm.data.prepare.options import check_reader_options
from galm.data.prepare.manifest import (
    MANIFEST_FILE,
    MANIFEST_VERSION,
    PrepareReport,
    cache_identity,
    identity_changes,
    read_manifest,
)
from galm.data.raw import RawDomain
from galm.data.staging import clean_stale, new_staging, replace_dir
from galm.runs.atomic import sync_path

_SPEC_KEYS = ("format", "root", "out", "resolution", "resize", "crop_margin", "workers", "strict",
              "overwrite", "options")


def open_prepared(path: str | os.PathLike[str]) -> AttributeDomain:
    """Open a prepared cache (images memory-mapped: instant whatever the size)."""
    root = Path(path)
    if not (root / DOMAIN_FILE).is_file():
        raise FileNotFoundError(
            f"{root} is not a prepared domain (no {DOMAIN_FILE}); create it with `galm data prepare`"
        )
    return AttributeDomain.load(root)


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
    """Read a dataset with the reader of ``format`` (root: its folder, or the table for 'table'), then prepare it.

    The reader gets ``root`` made absolute, and path options are recorded absolute, so the same
    source spelled another way (relative, ``./``, a trailing slash) reuses the cache.
    """
    reader = get_reader(format)
    options = dict(options or {})
    check_reader_options(format, reader, options)
    root = Path(root).expanduser().absolute()
    if not root.exists():
        raise FileNotFoundError(f"{format} data not found: {root} does not exist")
    raw = reader(root, **options)
    recorded = {k: _absolute(root, v) if k in path_options(format) else v for k, v in options.items()}
    return prepare_domain(
        raw, Path(out), resolution=resolution, resize=resize, crop_margin=crop_margin, workers=workers,
        strict=strict, overwrite=overwrite, reader=format,
        reader_options={"root": str(root.resolve()), **recorded},
    )


def _absolute(root: Path, value: Any) -> Any:
    """A path option made absolute as the readers take it (relative to the dataset root); others unchanged."""
    if not isinstance(value, (str, os.PathLike)):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else root / path)


def prepare_from_spec(spec_yaml_path: str | os.PathLike[str], **overrides: Any) -> PrepareReport:
    """Prepare from a YAML spec ``{format, root, out, resolution, resize, crop_margin, workers, strict, overwrite, options}``.

    Relative ``root`` and ``out`` are read from the spec file's folder. Keyword ``overrides``
    (not None) replace spec values.
    """
    path = Path(spec_yaml_path)
    spec = load_yaml_file(path, "prepare spec")
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

    Reuses ``out`` when it was prepared from the same sources with the same options and its files
    still match the sizes and checksums its manifest records (:mod:`galm.data.prepare.integrity`);
    rebuilds it when anything changed or a file is damaged (the report says what), replacing the
    old cache only once the new one is complete. ``overwrite=True`` rebuilds even an up-to-date
    cache and may replace a non-empty directory that is not a prepared cache. Images that fail to
    decode are skipped and listed (``strict=True``: raise instead); boxes outside their image are
    dropped and listed.
    ``crop_margin`` widens each box by that fraction of its size on every side before clipping.
    ``workers`` > 1 decodes in spawned processes (at most one per ``MIN_IMAGES_PER_WORKER`` images,
    since each takes seconds to start); the report gives the number used.
    """
    start = time.perf_counter()
    out = Path(out)
    clean_stale(out)  # what a killed prepare left beside it (a moved-aside cache goes back)
    check_options(raw, resolution, resize, crop_margin, workers)
    identity = cache_identity(raw, resolution, resize, crop_margin, reader, reader_options or {})

    previous = read_manifest(out) if (out / DOMAIN_FILE).is_file() else None
    if previous is not None and not overwrite:
        changes = identity_changes(previous.get("identity", {}), identity)
        checked = ""
        if not changes:
            damaged, checked = check_files(out, previous)
            if damaged:
                changes = ["cache files damaged: " + "; ".join(damaged)]
        elif previous.get("manifest_version", 1) < MANIFEST_VERSION:
            changes.append("(the cache was prepared by an older galm, whose manifest kept source paths as spelled)")
        if not changes:
            if strict and previous.get("skipped"):
                first = previous["skipped"][0]
                raise ValueError(f"cannot decode image {first['path']}: {first['error']} (strict; the "
                                 f"up-to-date cache {out} skipped {len(previous['skipped'])} images)")
            return PrepareReport(
                out=out, reused=True, reason=f"sources and options unchanged; {checked}",
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

    staging = new_staging(out)
    try:
        report = build_cache(raw, staging, out, identity, reason, resolution, resize, crop_margin, workers,
                             strict, start)
        sync_path(staging)
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report
