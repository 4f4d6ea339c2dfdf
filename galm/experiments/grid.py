"""Running a grid: every cell of a spec in its own run directory, resumable, failures recorded.

Every cell ``OUT/cells/<scenario>/<method>/seed<k>/`` is a pure function of its ``cell.json``
(method, scenario, seed, resolved config, method options). A cell writes ``results.json`` and then,
last and atomically, the ``done`` marker (holding the hash of its spec); a rerun skips done cells
whose spec is unchanged, so a stopped grid resumes. A cell that raises writes ``error.json`` and
the grid goes on; the next run retries it from scratch. The layout is
:mod:`galm.runs.experiment_dir`'s; the methods are :mod:`galm.experiments.methods`.
"""

from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from galm.engine.device import configure_threads, resolve_device
from galm.engine.seeding import seed_everything
from galm.experiments.methods import CELL_RUNNERS, CellContext
from galm.experiments.spec import (
    Cell,
    ExperimentSpec,
    cell_config,
    cell_path,
    expand_cells,
)
from galm.report.summary import summarise
from galm.runs.atomic import write_json
from galm.runs.lock import LOCK_FILE, lock_directory
from galm.runs.experiment_dir import (
    CELL_FILE,
    CELLS_KEY,
    ERROR_FILE,
    RESULTS_FILE,
    is_done,
    claim,
    mark_done,
    writing,
)


def _clear(path: Path) -> None:
    """Empty a cell's directory (its lock file stays with its holder)."""
    for entry in path.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def run_cell(cell: Cell, out: str | Path, device: torch.device | None = None) -> str:
    """Run one cell unless it is already done: 'skipped', 'done' or 'failed'.

    The cell's run directory is locked while it runs, so a `galm derive` or `retrain` of it waits
    its turn. Failures (any Exception) are recorded in ``error.json``; KeyboardInterrupt and other
    BaseExceptions propagate, leaving the cell unfinished (it starts afresh next time).
    """
    out = Path(out)
    path = cell_path(out, cell)
    spec_hash = cell.spec_hash()
    if is_done(path, spec_hash):
        return "skipped"
    path.mkdir(parents=True, exist_ok=True)
    with lock_directory(path, "cell directory"):
        return _run_cell(cell, out, path, spec_hash, device)


def _run_cell(cell: Cell, out: Path, path: Path, spec_hash: str, device: torch.device | None) -> str:
    _clear(path)
    write_json(path / CELL_FILE, {**cell.to_json(), "spec_hash": spec_hash})
    config = cell_config(cell)
    configure_threads(config.threads)
    seed_everything(cell.seed)
    device = device if device is not None else resolve_device(config.device)
    start = time.perf_counter()
    try:
        results = dict(CELL_RUNNERS[cell.method](CellContext(cell, path, device, out)))
    except Exception as error:  # noqa: BLE001 - one cell's failure must not stop the grid
        write_json(path / ERROR_FILE, {
            "cell": cell.key, "type": type(error).__name__, "message": str(error),
            "traceback": traceback.format_exc(), "seconds": time.perf_counter() - start,
        })
        return "failed"
    results.update({
        "method": cell.method, "scenario": cell.scenario.name, "kind": cell.scenario.kind,
        "seed": cell.seed, "seconds": time.perf_counter() - start, "evaluations": int(results.get("evaluations", 0)),
    })
    write_json(path / RESULTS_FILE, results)
    mark_done(path, spec_hash)
    return "done"


@dataclass
class GridOutcome:
    """What one `run_experiment` call did, cell key -> 'done' | 'skipped' | 'failed'."""

    status: dict[str, str]

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s == status)


def run_experiment(
    spec: ExperimentSpec, out: str | Path, device: torch.device | None = None,
    on_cell: Callable[[Cell, str], None] | None = None, force: bool = False,
) -> GridOutcome:
    """Run (or resume) every cell of `spec` into `out`, then write the result tables; `out` is
    locked against other galm writers meanwhile.

    `out` must be new, empty or the directory of this spec; `force` runs another spec into an
    experiment directory (cells it shares unchanged are kept, changed ones rerun, the others stay on
    disk but leave the tables). Files galm did not write there are never overwritten.
    """
    cells = expand_cells(spec)
    with writing(out) as out:
        hashes = {cell.key: cell.spec_hash() for cell in cells}
        claim(out, spec.to_json(), hashes, force)
        outcome = GridOutcome({})
        for cell in cells:
            status = run_cell(cell, out, device)
            outcome.status[cell.key] = status
            if on_cell is not None:
                on_cell(cell, status)
        summarise(out, {**spec.to_json(), CELLS_KEY: hashes})  # the cells say which methods run where
    return outcome
