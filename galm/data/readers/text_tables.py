"""Parsing the whitespace-separated text annotation files of the benchmarks, line by line.

Lines of ``id field...``, lists of names, numbered name lists and float matrices; every error
names the file, its 1-based line number and the field at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from galm.data.readers.dataset_files import require_file
from galm.data.readers.format_error import DatasetFormatError, line_error


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
