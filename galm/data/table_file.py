"""Reading the rows of an attribute table file: CSV/TSV text (UTF-8, one delimiter) or Parquet.

Only the file format is handled here; what the columns mean is :mod:`galm.data.table`'s. Every
problem is a ValueError naming the file and, for text, the line: an encoding other than UTF-8, a
table separated by another delimiter than the one its suffix says, a short or long row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Delimiters a table may have been written with; only ',' (.csv) and tab (.tsv) are read.
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}


@dataclass
class TableFile:
    """Rows of a table as dicts, with how to name a row in messages."""

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    row_word: str  # 'line' for CSV (header is line 1), 'row' for Parquet

    def where(self, i: int) -> str:
        """Location of data row ``i`` (0-based) for error messages."""
        number = i + 2 if self.row_word == "line" else i + 1
        return f"{self.path}, {self.row_word} {number}"


def read_table_file(path: Path) -> TableFile:
    """Rows of a CSV/TSV or Parquet file."""
    if not path.is_file():
        raise FileNotFoundError(f"table {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    reader = csv.reader(io.StringIO(_text(path), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path} is empty (expected a header line)") from None
    header = [h.strip() for h in header]
    _check_delimiter(path, header, delimiter)
    _check_header(path, header)
    rows: list[dict[str, Any]] = []
    for line_number, record in enumerate(reader, start=2):
        if not record or all(not cell.strip() for cell in record):
            raise ValueError(f"{path}, line {line_number}: empty line")
        if len(record) != len(header):
            raise ValueError(f"{path}, line {line_number}: {len(record)} fields but the header has {len(header)}")
        rows.append(dict(zip(header, record)))
    return TableFile(path, header, rows, "line")


def _text(path: Path) -> str:
    """The file as UTF-8 text (a BOM is dropped); another encoding is an error naming the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}; Latin-1 or Windows-1252?); "
            f"save the table as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name}"
        ) from None


def _check_delimiter(path: Path, header: list[str], delimiter: str) -> None:
    """A one-column header holding another delimiter means the table is separated by that one."""
    if len(header) != 1:
        return
    seen = [d for d in _OTHER_DELIMITERS if d != delimiter and d in header[0]]
    if not seen:
        return
    found = max(seen, key=header[0].count)
    expected = _OTHER_DELIMITERS[delimiter]
    raise ValueError(
        f"{path}, line 1: the table looks {_OTHER_DELIMITERS[found]}-separated ({found!r} in the one-column "
        f"header {header[0][:60]!r}) but galm reads {path.suffix or 'this'} files {expected}-separated; "
        "save it comma-separated as .csv or tab-separated as .tsv"
    )


def _read_parquet(path: Path) -> TableFile:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found]
    except ImportError:
        raise ValueError(
            f"reading {path} needs pyarrow (pip install pyarrow), or convert the table to CSV"
        ) from None
    data = pq.read_table(path)
    header = [str(c) for c in data.column_names]
    _check_header(path, header)
    return TableFile(path, header, data.to_pylist(), "row")


def _check_header(path: Path, header: list[str]) -> None:
    if any(not h for h in header):
        raise ValueError(f"{path}: the header has an empty column name")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicated columns {duplicates}")
