"""The prepared cache: every image decoded once, cropped and resized, stored memory-mappable.

``prepare_domain`` turns a reader's :class:`~galm.data.raw.RawDomain` into a cache directory in
exactly the format :meth:`AttributeDomain.load` reads (``images.npy``, labels, classes, splits,
``domain.json``), plus ``manifest.json`` (what was read, with which options, what was skipped, how
long it took) and ``images.txt`` (the source file of every cached row).

Images stream into a memory-mapped file inside a hidden staging directory next to the target,
one image at a time, so a dataset is never held in memory; the staging directory is renamed onto
the target only once complete, so an interrupted run leaves either the previous cache or nothing.
A second run with unchanged sources and options reuses the cache; changed annotation files, image
files (sizes or modification times), labels or options are detected and rebuild it, and so are
cache files whose size or checksum no longer matches the manifest (a truncated ``images.npy``).

Where things live: :mod:`~galm.data.prepare.api` (the entry points and the reuse decision),
:mod:`~galm.data.prepare.build` (building a cache, with its worker processes),
:mod:`~galm.data.prepare.decode` (decoding, cropping and resizing one image),
:mod:`~galm.data.prepare.manifest` (the manifest, the cache identity and change detection),
:mod:`~galm.data.prepare.integrity` (cache file sizes and checksums) and
:mod:`~galm.data.prepare.formats` (format names to reader functions). Constants re-exported here
are read where they are defined: set ``galm.data.prepare.build.MIN_IMAGES_PER_WORKER`` to tune it.
"""

from galm.data.prepare.api import (
    open_prepared,
    prepare_dataset,
    prepare_domain,
    prepare_from_spec,
)
from galm.data.prepare.build import MIN_IMAGES_PER_WORKER
from galm.data.prepare.decode import PAD_VALUE, RESIZE_MODES, clip_box, resize_region
from galm.data.prepare.formats import get_reader, reader_names
from galm.data.prepare.manifest import (
    MANIFEST_FILE,
    PREPARE_VERSION,
    PrepareReport,
    read_manifest,
)

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
