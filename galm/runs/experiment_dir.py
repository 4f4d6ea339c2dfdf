"""An experiment directory: the recorded spec, one run directory per cell, and their status files.

Layout::

    OUT/
      experiment.json                      the spec the grid was run with
      cells/<scenario>/<method>/seed<k>/   one run directory per cell, plus
          cell.json                        what determines the cell's result (and its spec hash)
          results.json                     the cell's scores
          done                             written last and atomically: the cell finished
          error.json                       the cell failed (retried on the next run)
      results.md, results.csv, cells.csv   the tables of finished cells
      report.html, report.md               `galm report`
      .galm.lock                           while a grid runs: its pid, host and command

The grid (:mod:`galm.experiments.grid`) writes it, the report reads it; both ask this module for
the names.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Iterator

from galm.runs.atomic import PathLike, atomic_write_bytes, json_text, read_json, remove_stale_temporaries
from galm.runs.lock import lock_directory

SPEC_FILE = "experiment.json"
CELLS_DIR = "cells"
CELL_FILE = "cell.json"
DONE_FILE = "done"
ERROR_FILE = "error.json"
RESULTS_FILE = "results.json"
RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
CELLS_CSV = "cells.csv"


@contextlib.contextmanager
def writing(out: PathLike) -> Iterator[Path]:
    """The experiment directory (made if missing), locked against other galm writers while the
    block writes it, stale temporaries removed; a directory made here and left empty is removed again."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"experiment directory {path} exists and is not a directory")
    existed = path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        with lock_directory(path, "experiment directory"):
            remove_stale_temporaries(path)  # what a killed grid left in its cells
            yield path
    finally:
        if not existed:
            with contextlib.suppress(OSError):
                path.rmdir()  # only when empty


def spec_path(out: PathLike) -> Path:
    return Path(out) / SPEC_FILE


def is_experiment(out: PathLike) -> bool:
    """Whether `out` holds a grid (its spec or its cells)."""
    return (Path(out) / CELLS_DIR).is_dir() or spec_path(out).is_file()


def cell_dir(out: PathLike, scenario: str, method: str, seed: int) -> Path:
    """``OUT/cells/<scenario>/<method>/seed<k>``."""
    return Path(out) / CELLS_DIR / scenario / method / f"seed{seed}"


def cell_key_dir(out: PathLike, key: str) -> Path:
    """The directory of the cell named ``<scenario>/<method>/seed<k>``."""
    return Path(out) / CELLS_DIR / key


def read_spec_record(out: PathLike) -> dict[str, Any] | None:
    """The spec recorded in an experiment directory as its JSON mapping (None when absent)."""
    path = spec_path(out)
    return read_json(path) if path.is_file() else None


def is_done(path: Path, spec_hash: str) -> bool:
    """Whether the cell at `path` finished with the spec whose hash is `spec_hash`."""
    done = path / DONE_FILE
    if not done.is_file():
        return False
    try:
        return json.loads(done.read_text(encoding="utf-8")).get("spec_hash") == spec_hash
    except (json.JSONDecodeError, OSError):
        return False


def mark_done(path: Path, spec_hash: str) -> None:
    """Write the cell's ``done`` marker, last and atomically."""
    atomic_write_bytes(path / DONE_FILE, json_text({"spec_hash": spec_hash, "finished": time.time()}).encode())


def collect_cells(out: PathLike) -> list[dict[str, Any]]:
    """Every cell under ``out/cells``: its spec, status ('done', 'failed', 'unfinished'), results."""
    records = []
    for cell_json in sorted(Path(out).glob(f"{CELLS_DIR}/*/*/seed*/{CELL_FILE}")):
        path = cell_json.parent
        spec = read_json(cell_json)
        record: dict[str, Any] = {
            "path": path, "method": spec["method"], "scenario": spec["scenario"]["name"],
            "kind": spec["scenario"]["kind"], "seed": int(spec["seed"]), "spec": spec,
        }
        if is_done(path, spec.get("spec_hash", "")) and (path / RESULTS_FILE).is_file():
            record["status"] = "done"
            record["results"] = read_json(path / RESULTS_FILE)
        elif (path / ERROR_FILE).is_file():
            record["status"] = "failed"
            record["error"] = read_json(path / ERROR_FILE)
        else:
            record["status"] = "unfinished"
        records.append(record)
    return records
