"""An experiment directory: the recorded spec, one run directory per cell, their status files, the files galm wrote.

Layout::

    OUT/
      experiment.json                      the spec the grid was run with, and each cell's spec hash
      written.json                         the files below OUT/ galm wrote, with their checksums
      cells/<scenario>/<method>/seed<k>/   one run directory per cell, plus
          cell.json                        what determines the cell's result (and its spec hash)
          results.json                     the cell's scores
          done                             written last and atomically: the cell finished
          error.json                       the cell failed (retried on the next run)
      results.md, results.csv, cells.csv   the tables of finished cells
      report.html, report.md               `galm report`
      .galm.lock                           while a grid runs: its pid, host and command
      .storage-probe                       while a grid runs on Ray: a token every worker must read

The grid (:mod:`galm.experiments.grid`) writes it, the report reads it; both ask this module for
the names. A directory holds one grid: :func:`claim` refuses a non-empty directory that is not
an experiment directory, and one that holds another spec unless forced; the tables and reports
only show the cells of the recorded spec. Galm overwrites only files it wrote itself (their
checksums are in ``written.json``; :func:`write_output`), never a file someone put there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

from galm.runs.atomic import (
    PathLike,
    atomic_write_bytes,
    atomic_write_json,
    json_text,
    read_json,
    remove_stale_temporaries,
)
from galm.runs.lock import LOCK_FILE, lock_directory

SPEC_FILE = "experiment.json"
CELLS_DIR = "cells"
CELL_FILE = "cell.json"
DONE_FILE = "done"
ERROR_FILE = "error.json"
RESULTS_FILE = "results.json"
RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
CELLS_CSV = "cells.csv"
WRITTEN_FILE = "written.json"
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
# Written by a Ray grid's driver and read by its tasks: proof that every worker sees OUT.
STORAGE_PROBE_FILE = ".storage-probe"
# experiment.json's record of every cell of the spec: cell key -> spec hash.
CELLS_KEY = "cells"
# How the files galm writes at the top of OUT begin, to recognise those of a release that did
# not record its files yet.
_OUTPUT_STARTS = {RESULTS_MD: ("# Experiment ",), RESULTS_CSV: ("method",), CELLS_CSV: ("scenario,kind",),
                  REPORT_MD: ("# GALM report",), REPORT_HTML: ("<!DOCTYPE html>", "<!doctype html>", "<html")}


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
    """Every cell under ``out/cells`` of the recorded spec (a cell another spec left is not
    one): its spec, status ('done', 'failed', 'unfinished'), results."""
    recorded = (read_spec_record(out) or {}).get(CELLS_KEY)
    records = []
    for cell_json in sorted(Path(out).glob(f"{CELLS_DIR}/*/*/seed*/{CELL_FILE}")):
        path = cell_json.parent
        spec = read_json(cell_json)
        if isinstance(recorded, dict) and recorded.get(path.relative_to(Path(out) / CELLS_DIR).as_posix()) != spec.get(
                "spec_hash"):
            continue
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


# --------------------------------------------------------------------------- shared storage


def write_storage_probe(out: PathLike) -> str:
    """Write a fresh random token into ``OUT/.storage-probe`` (atomically) and return it."""
    token = uuid.uuid4().hex
    atomic_write_bytes(Path(out) / STORAGE_PROBE_FILE, token.encode("ascii"))
    return token


def storage_probe_matches(out: PathLike, token: str) -> bool:
    """Whether this process reads `token` in ``OUT/.storage-probe`` (False when it is missing or differs)."""
    try:
        return (Path(out) / STORAGE_PROBE_FILE).read_text(encoding="ascii").strip() == token
    except (OSError, UnicodeDecodeError):
        return False


def remove_storage_probe(out: PathLike) -> None:
    (Path(out) / STORAGE_PROBE_FILE).unlink(missing_ok=True)


# --------------------------------------------------------------------------- one grid per directory


def claim(out: PathLike, spec: Mapping[str, Any], cells: Mapping[str, str], force: bool = False) -> None:
    """Make ``out`` the directory of ``spec`` (its JSON mapping; ``cells``: cell key -> spec hash)
    and record it in ``experiment.json``; call it holding the directory's lock.

    Refused: a non-empty directory that is not an experiment directory; one whose recorded spec
    differs (unless ``force``: unchanged cells are kept, changed ones rerun, the others leave the
    tables); a directory holding a result or report file galm did not write.
    """
    out = Path(out)
    recorded = read_spec_record(out)
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    if recorded is None and entries and not (is_experiment(out) and force):
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise FileExistsError(
            f"{out} is not empty ({shown}) and is not a galm experiment directory (no {SPEC_FILE}); "
            "choose another --out"
        )
    if recorded is not None:
        differing = [key for key in spec if recorded.get(key) != spec[key]]
        if differing and not force:
            raise ValueError(
                f"{out} holds experiment {recorded.get('name')!r} run with another spec ({spec_path(out)} differs "
                f"in {', '.join(differing)}); choose another --out, or pass --force to run this spec there "
                "(cells it shares unchanged are kept, changed ones rerun, the others leave the tables)"
            )
    for name in _OUTPUT_STARTS:
        check_ours(out, name)
    atomic_write_json(spec_path(out), {**spec, CELLS_KEY: dict(cells)})


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _looks_like_galm(path: Path) -> bool:
    """Whether a result or report file begins as galm writes it (for directories of releases that
    did not record their files)."""
    try:
        start = path.read_bytes()[:64].decode("utf-8", errors="replace")
    except OSError:
        return False
    return path.is_file() and start.startswith(_OUTPUT_STARTS.get(path.name, ("\0",)))


def _written(out: Path) -> dict[str, str]:
    """Name -> checksum of the files galm wrote at the top of ``out``. Without ``written.json``
    (an earlier release), the result and report files that begin as galm writes them."""
    path = out / WRITTEN_FILE
    if path.is_file():
        record = read_json(path)
        return dict(record) if isinstance(record, dict) else {}
    return {name: _digest(out / name) for name in _OUTPUT_STARTS if _looks_like_galm(out / name)}


def check_ours(out: PathLike, name: str) -> None:
    """FileExistsError unless ``out/name`` is missing or is the file galm last wrote there."""
    out, path = Path(out), Path(out) / name
    if not path.exists():
        return
    if not path.is_file() or _written(out).get(name) != _digest(path):
        raise FileExistsError(
            f"{path} was not written by galm (or was changed since); galm does not overwrite it: move it away"
        )


def write_output(out: PathLike, name: str, data: bytes) -> Path:
    """Write ``out/name`` atomically, unless it is a file galm did not write; record its checksum."""
    out = Path(out)
    check_ours(out, name)
    written = _written(out)
    path = out / name
    atomic_write_bytes(path, data)
    written[name] = hashlib.sha256(data).hexdigest()
    atomic_write_json(out / WRITTEN_FILE, written)
    return path
