"""The error every dataset reader raises for bad input, and helpers that name file, line and field.

Readers parse annotation files first and check the image folder last, so a layout without images
(the genuine annotation files in ``shared/data``) fails with a message naming the expected folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_SHOWN_MISSING = 5


class DatasetFormatError(ValueError):
    """A dataset file is missing or does not hold what its format requires."""


def line_error(path: Path, line_no: int, message: str) -> DatasetFormatError:
    """An error naming ``path`` and its 1-based line number."""
    return DatasetFormatError(f"{path}, line {line_no}: {message}")


def field_error(path: Path, field: str, message: str) -> DatasetFormatError:
    """An error naming ``path`` and one of its fields (a .mat key, a column)."""
    return DatasetFormatError(f"{path}, field {field!r}: {message}")


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


def read_text(path: Path, what: str) -> str:
    """The text of ``path`` (UTF-8, Latin-1 fallback); an error naming it when missing or unreadable."""
    require_file(path, what)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetFormatError(f"cannot read {what} {path}: {error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def iter_lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped text) of every non-blank line; CRLF endings are fine."""
    for number, line in enumerate(read_text(path, what).splitlines(), start=1):
        text = line.strip()
        if text:
            yield number, text


def parse_int(token: str, path: Path, line_no: int, field: str) -> int:
    """``token`` as an int; an error naming file, line and field otherwise."""
    try:
        return int(token)
    except ValueError:
        try:
            value = float(token)
        except ValueError:
            value = None
        if value is not None and value.is_integer():
            return int(value)
        raise line_error(path, line_no, f"{field} must be an integer, got {token!r}") from None


def parse_float(token: str, path: Path, line_no: int, field: str) -> float:
    """``token`` as a finite-or-NaN float; an error naming file, line and field otherwise."""
    try:
        return float(token)
    except ValueError:
        raise line_error(path, line_no, f"{field} must be a number, got {token!r}") from None


def read_id_table(path: Path, what: str, n_fields: int, *, rest_joined: bool = False) -> list[tuple[int, list[str]]]:
    """Lines ``id field...``: (line number, tokens); an error for wrong counts or duplicate ids.

    With ``rest_joined`` the line splits only once (``id rest of line``), for names holding spaces.
    """
    rows: list[tuple[int, list[str]]] = []
    seen: dict[str, int] = {}
    for number, text in iter_lines(path, what):
        tokens = text.split(None, 1) if rest_joined else text.split()
        if len(tokens) != n_fields:
            raise line_error(path, number, f"expected {n_fields} whitespace-separated fields, got {len(tokens)}: {text[:80]!r}")
        if tokens[0] in seen:
            raise line_error(path, number, f"duplicate id {tokens[0]} (first on line {seen[tokens[0]]})")
        seen[tokens[0]] = number
        rows.append((number, tokens))
    return rows


def read_name_list(path: Path, what: str) -> list[tuple[int, str]]:
    """(line number, name) for a file of one name a line; duplicates are an error."""
    names: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, text in iter_lines(path, what):
        if text in seen:
            raise line_error(path, number, f"duplicate name {text!r} (first on line {seen[text]})")
        seen[text] = number
        names.append((number, text))
    return names


def read_numbered_names(path: Path, what: str) -> list[str]:
    """Names of a ``<number> <name>`` file (AwA classes/predicates), checking numbers run 1, 2, ..."""
    names: list[str] = []
    for number, text in iter_lines(path, what):
        tokens = text.split()
        if len(tokens) != 2:
            raise line_error(path, number, f"expected '<number> <name>', got {text[:80]!r}")
        index = parse_int(tokens[0], path, number, "number")
        if index != len(names) + 1:
            raise line_error(path, number, f"expected number {len(names) + 1}, got {index} (numbers must run 1, 2, ...)")
        if tokens[1] in names:
            raise line_error(path, number, f"duplicate name {tokens[1]!r}")
        names.append(tokens[1])
    if not names:
        raise DatasetFormatError(f"{path}: {what} is empty")
    return names


def read_matrix(path: Path, what: str, shape: tuple[int, int]) -> np.ndarray:
    """A whitespace-separated float matrix of exactly ``shape``; errors name the line and the counts."""
    rows: list[list[float]] = []
    for number, text in iter_lines(path, what):
        tokens = text.split()
        if len(tokens) != shape[1]:
            raise line_error(path, number, f"expected {shape[1]} values, got {len(tokens)}")
        rows.append([parse_float(t, path, number, f"value {j + 1}") for j, t in enumerate(tokens)])
    if len(rows) != shape[0]:
        raise DatasetFormatError(f"{path}: expected {shape[0]} rows of {shape[1]} values ({what}), got {len(rows)} rows")
    return np.asarray(rows, dtype=np.float64)


# --- .mat files -------------------------------------------------------------------------------


def load_mat(path: Path, what: str) -> dict[str, Any]:
    """A MATLAB v5 file's variables; an error naming the file when missing or unreadable."""
    require_file(path, what)
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DatasetFormatError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save it as a v5 .mat") from None
    except Exception as error:  # scipy raises several types for corrupt files
        raise DatasetFormatError(f"cannot read {what} {path}: {error}") from None


def mat_key(mat: dict[str, Any], key: str, path: Path) -> Any:
    """``mat[key]``; an error naming the file, the key and the keys present otherwise."""
    if key not in mat:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise field_error(path, key, f"key is missing; the file holds {present}")
    return mat[key]


def mat_strings(value: Any, path: Path, key: str) -> list[str]:
    """A MATLAB cell array of strings (object arrays nested at any depth) as a flat list of str."""
    out: list[str] = []

    def visit(item: Any) -> None:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, bytes):
            out.append(item.decode("utf-8", "replace"))
        elif isinstance(item, np.ndarray):
            if item.dtype.kind in "US":
                if item.size == 0:
                    out.append("")
                elif item.ndim <= 1 or item.size == 1:
                    out.extend(str(s) for s in item.ravel())
                else:  # a char matrix: one string per row
                    out.extend("".join(str(c) for c in row).rstrip() for row in item.reshape(item.shape[0], -1))
            elif item.dtype == object:
                for element in item.ravel(order="F"):
                    visit(element)
            elif item.size == 0:
                out.append("")
            else:
                raise field_error(path, key, f"expected a cell array of strings, found a {item.dtype} array")
        else:
            raise field_error(path, key, f"expected a cell array of strings, found {type(item).__name__}")

    visit(value)
    return out


def mat_numeric(value: Any, path: Path, key: str) -> np.ndarray:
    """A numeric .mat variable as float64; an error naming the key otherwise."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise field_error(path, key, f"expected a numeric array, found dtype {array.dtype}")
    return array.astype(np.float64)


def normalise_name(name: str) -> str:
    """A lenient form of a class name for matching across sources (``a/b c+d`` ~ ``a_b_c_d``)."""
    return re.sub(r"[\s/+\-]+", "_", name.strip().lower())


def match_class_names(
    names: Sequence[tuple[int, str]], class_names: Sequence[str], path: Path
) -> list[int]:
    """Class ids of (line, name) pairs: exact match first, then normalised; an error naming the line."""
    exact = {n: i for i, n in enumerate(class_names)}
    loose: dict[str, int] = {}
    for i, n in enumerate(class_names):
        loose.setdefault(normalise_name(n), i)
    ids: list[int] = []
    for number, name in names:
        if name in exact:
            ids.append(exact[name])
        elif normalise_name(name) in loose:
            ids.append(loose[normalise_name(name)])
        else:
            shown = ", ".join(list(class_names)[:8])
            raise line_error(path, number, f"unknown class name {name!r} (known classes include {shown}, ...)")
    return ids
