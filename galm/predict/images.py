"""The images to predict: paths from files, folders and tables, and their decoding through the
pixel pipeline of ``galm data prepare`` (:func:`galm.data.prepare.decode.fit_image`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from galm.data.prepare.decode import check_decoded_size, decode_one, fit_image
from galm.data.prepare.workers import decoded
from galm.data.table_file import read_table_file
from galm.runs.preprocessing import PixelPipeline

# What a folder is searched for (case-insensitive suffixes).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageDecodeError(ValueError):
    """An image that could not be decoded, with its name (path or position) and the reason."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: cannot decode the image: {reason}")
        self.name, self.reason = name, reason


def collect_image_paths(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Every image of ``inputs``: a file as given, a folder's images recursively (sorted).

    A path that does not exist, or a folder without images, is an error naming it.
    """
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                raise FileNotFoundError(f"folder {path} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise FileNotFoundError(f"image path {path} does not exist")
    return paths


def table_image_paths(table: str | os.PathLike[str], column: str) -> list[Path]:
    """The image paths of one column of a CSV/TSV/Parquet table, relative to the table's folder.

    A table without that column, or with an empty cell in it, is an error naming the table and line.
    """
    rows = read_table_file(Path(table))
    if column not in rows.columns:
        raise ValueError(f"{rows.path}: no column {column!r} (the columns are {rows.columns}); "
                         "name the image column with --image-column")
    paths = []
    for i, row in enumerate(rows.rows):
        cell = str(row[column] if row[column] is not None else "").strip()
        if not cell:
            raise ValueError(f"{rows.where(i)}: empty {column!r} cell")
        path = Path(cell).expanduser()
        paths.append(path if path.is_absolute() else rows.path.parent / path)
    if not paths:
        raise ValueError(f"{rows.path}: the table has no rows")
    return paths


@dataclass(frozen=True)
class Decoded:
    """One input's outcome: its pixels ((R, R, 3) uint8), or why it could not be decoded."""

    index: int
    name: str
    pixels: np.ndarray | None
    error: str | None = None


def input_name(item: Any, index: int) -> str:
    """How an input is named in results and messages: its path, else its position."""
    return str(item) if isinstance(item, (str, os.PathLike)) else f"<image {index}>"


def decode_inputs(items: Sequence[Any], pipeline: PixelPipeline, workers: int = 1) -> Iterator[Decoded]:
    """Every item (a path, a PIL image or an (H, W[, C]) uint8 array) decoded as training decoded
    its images, in order; paths in ``workers`` processes when more than one."""
    in_memory = {i for i, item in enumerate(items) if not isinstance(item, (str, os.PathLike))}
    tasks = [(str(item), None, pipeline.resolution, pipeline.resize, 0.0)
             for i, item in enumerate(items) if i not in in_memory]
    with decoded(tasks, max(1, workers), decode_one) as results:
        from_files = iter(results)  # in the order of the paths among the items
        for index, item in enumerate(items):
            if index in in_memory:
                yield _decode_in_memory(index, item, pipeline)
                continue
            status, value = next(from_files)
            if status == "ok":
                yield Decoded(index, str(item), value)
            else:
                yield Decoded(index, str(item), None, _reason(status, value, Path(item)))


def _reason(status: str, value: str, path: Path) -> str:
    """Why a file did not decode, in words a user can act on."""
    if path.is_file() and path.stat().st_size == 0:
        return "the file is empty (0 bytes)"
    return value if status == "error" else f"{status}: {value}"


def _decode_in_memory(index: int, item: Any, pipeline: PixelPipeline) -> Decoded:
    name = input_name(item, index)
    try:
        if isinstance(item, Image.Image):
            check_decoded_size(*item.size)
            image = item.copy()  # a lazily opened JPEG would be drafted in place: the caller's image stays as given
        else:
            image = array_image(item, name)
        status, value = fit_image(image, None, pipeline.resolution, pipeline.resize)
    except Exception as error:  # noqa: BLE001 - Pillow raises many types for unusual images
        return Decoded(index, name, None, f"{type(error).__name__}: {error}")
    return Decoded(index, name, value if status == "ok" else None, None if status == "ok" else str(value))


def array_image(array: Any, name: str) -> Image.Image:
    """An (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array as a PIL image (L, RGB or RGBA)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 pixels, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array))
    raise ValueError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")
