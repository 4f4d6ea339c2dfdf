"""Checking a prepared cache's files against the sizes and checksums its manifest records.

A build records every cache file (all but ``manifest.json``) with its byte size and a SHA-256:
of the whole file up to ``FULL_DIGEST_BYTES`` (64 MiB, about a tenth of a second to read back;
every file of a 64-pixel cache of ~5,000 images or fewer), else a *sampled* SHA-256 over the size,
the first and last MiB and 64 evenly spaced 64 KiB blocks (about 6 MiB read whatever the size).
A truncated or extended file is always caught by its size; a changed byte is caught anywhere in
a fully hashed file, but in a sampled one only within the sampled blocks (the header, the first
and last rows, and the 64 blocks): a sampled checksum guards against truncation and partial
copies, not against single flipped bits in the middle of a large ``images.npy``.

Manifests written before these records (``manifest_version`` 1) are accepted after a structural
check only: each ``.npy`` file's size must equal the size its own header implies, which catches
truncation without reading the data.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

FULL_DIGEST_BYTES = 64 * 2**20
_EDGE_BYTES = 2**20
_SAMPLE_COUNT = 64
_SAMPLE_BYTES = 64 * 2**10
_READ_BYTES = 2**20
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def record_files(directory: Path, skip: str) -> dict[str, dict[str, Any]]:
    """{file name: {'size', 'sha256' or 'sampled_sha256'}} of every file in ``directory`` but ``skip``."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name != skip:
            size = path.stat().st_size
            kind = "sha256" if size <= FULL_DIGEST_BYTES else "sampled_sha256"
            records[path.name] = {"size": size, kind: _digest(path, size, kind)}
    return records


def check_files(directory: Path, manifest: dict[str, Any]) -> tuple[list[str], str]:
    """(problems, what was checked) of a cache's files against its manifest; no problems: intact."""
    records = manifest.get("files")
    if not isinstance(records, dict):
        return _npy_size_problems(directory), "the manifest predates checksums: .npy sizes checked against their headers"
    problems: list[str] = []
    for name, record in sorted(records.items()):
        path = directory / name
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{name} is missing")
            continue
        if size != record.get("size"):
            problems.append(f"{name} is {size} bytes, the manifest records {record.get('size')}")
            continue
        kind = "sha256" if "sha256" in record else "sampled_sha256"
        if _digest(path, size, kind) != record.get(kind):
            problems.append(f"{name}: contents differ from the manifest's {kind}")
    return problems, f"sizes and checksums of {len(records)} cache files match"


def sampled_ranges(size: int) -> list[tuple[int, int]]:
    """(offset, length) of the blocks a sampled checksum reads: first MiB, 64 spread blocks, last MiB."""
    ranges = [(0, min(size, _EDGE_BYTES))]
    span = max(0, size - _SAMPLE_BYTES)
    ranges += [(span * k // (_SAMPLE_COUNT + 1), min(size, _SAMPLE_BYTES)) for k in range(1, _SAMPLE_COUNT + 1)]
    ranges.append((max(0, size - _EDGE_BYTES), min(size, _EDGE_BYTES)))
    return ranges


def _digest(path: Path, size: int, kind: str) -> str:
    """The hex SHA-256 of the whole file ('sha256') or of its size and sampled blocks ('sampled_sha256')."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if kind == "sha256":
            for block in iter(lambda: handle.read(_READ_BYTES), b""):
                digest.update(block)
        else:
            digest.update(f"{size}\n".encode())
            for offset, length in sampled_ranges(size):
                handle.seek(offset)
                digest.update(handle.read(length))
    return digest.hexdigest()


def _npy_size_problems(directory: Path) -> list[str]:
    """``.npy`` files whose size is not the header's offset plus shape times item size."""
    problems: list[str] = []
    for path in sorted(directory.glob("*.npy")):
        try:
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = _HEADER_READERS.get(version)
                if read_header is None:
                    raise ValueError(f"unsupported .npy format version {version}")
                shape, _, dtype = read_header(handle)
                expected = handle.tell() + math.prod(shape) * dtype.itemsize
        except (OSError, ValueError) as error:
            problems.append(f"{path.name} has no readable .npy header ({error})")
            continue
        size = path.stat().st_size
        if size != expected:
            problems.append(f"{path.name} is {size} bytes, its header implies {expected}")
    return problems
