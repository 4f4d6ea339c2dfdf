"""Writing predictions: CSV (one row per image: path, then per attribute probability and decision),
JSON lines, or Parquet where pyarrow is installed; always to a temporary file renamed into place."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from galm.predict.packages import require
from galm.predict.result import Predictions, decision_column, probability_column
from galm.runs.atomic import atomic_path, atomic_write_bytes

OUTPUT_FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def output_format(path: str | os.PathLike[str], fmt: str | None) -> str:
    """The format asked for, else the one the file's suffix names (CSV for any other suffix)."""
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"output format must be one of {list(OUTPUT_FORMATS)}, got {fmt!r}")
        return fmt
    return _SUFFIXES.get(Path(path).suffix.lower(), "csv")


def check_writable(fmt: str) -> None:
    """Fail before any work when the format needs a package that is missing."""
    if fmt == "parquet":
        require("pyarrow", "Parquet output (else use csv or jsonl)", "pip install pyarrow")


def write_predictions(predictions: Predictions, path: str | os.PathLike[str], fmt: str) -> None:
    """Write every prediction to ``path`` in ``fmt`` (atomically: nothing partial is left)."""
    check_writable(fmt)
    if fmt == "csv":
        atomic_write_bytes(path, _csv_text(predictions).encode("utf-8"))
    elif fmt == "jsonl":
        atomic_write_bytes(path, _jsonl_text(predictions).encode("utf-8"))
    else:
        _write_parquet(predictions, Path(path))


def _csv_text(predictions: Predictions) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(predictions.columns())
    for row in predictions.rows():
        writer.writerow(f"{v:.7g}" if isinstance(v, float) else v for v in row.values())
    return buffer.getvalue()


def _jsonl_text(predictions: Predictions) -> str:
    lines = []
    probabilities, decisions = predictions.probabilities, predictions.decisions
    for i, name in enumerate(predictions.names):
        record = {
            "path": name,
            "probabilities": {a: float(probabilities[i, j]) for j, a in enumerate(predictions.attribute_names)},
            "decisions": {a: bool(decisions[i, j]) for j, a in enumerate(predictions.attribute_names)},
        }
        lines.append(json.dumps(record, allow_nan=False))
    return "".join(line + "\n" for line in lines)


def _write_parquet(predictions: Predictions, path: Path) -> None:
    pa = require("pyarrow", "Parquet output", "pip install pyarrow")
    pq = require("pyarrow.parquet", "Parquet output", "pip install pyarrow")
    columns: dict[str, list] = {name: [] for name in predictions.columns()}
    for row in predictions.rows():
        for key, value in row.items():
            columns[key].append(value)
    fields = [("path", pa.string())]
    for attribute in predictions.attribute_names:
        fields += [(probability_column(attribute), pa.float64()), (decision_column(attribute), pa.int8())]
    schema = pa.schema(fields)
    table = pa.table(columns, schema=schema)
    with atomic_path(path) as temporary:
        pq.write_table(table, str(temporary))
