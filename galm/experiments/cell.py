"""Running one cell of a grid in its own run directory: skipped when done, failures recorded.

Every cell ``OUT/cells/<scenario>/<method>/seed<k>/`` is a pure function of its ``cell.json``
(method, scenario, seed, resolved config, method options). A cell writes ``results.json`` and then,
last and atomically, the ``done`` marker (holding the hash of its spec); a rerun skips done cells
whose spec is unchanged, so a stopped grid resumes. A cell that raises writes ``error.json``; the
next run retries it from scratch. Any process that sees ``OUT`` may run a cell (the grid's own, a
``--jobs`` worker, a Ray task); the layout is :mod:`galm.runs.experiment_dir`'s.
"""

from __future__ import annotations

import shutil
import time
import traceback
from pathlib import Path

import torch

from galm.engine.device import resolve_device
from galm.engine.seeding import seed_everything
from galm.engine.threads import configure_threads
from galm.experiments.methods import CELL_RUNNERS, CellContext
from galm.experiments.spec import Cell, cell_config, cell_path
from galm.runs.atomic import write_json
from galm.runs.experiment_dir import CELL_FILE, ERROR_FILE, RESULTS_FILE, is_done, mark_done
from galm.runs.lock import LOCK_FILE, lock_directory


def _clear(path: Path) -> None:
    """Empty a cell's directory (its lock file stays with its holder)."""
    for entry in path.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# The role a cell's lock records: what `take_over` recognises as a dead attempt of the same cell.
CELL_LOCK_ROLE = "grid cell"


def run_cell(cell: Cell, out: str | Path, device: torch.device | None = None,
             granted_cores: float | None = None, take_over: bool = False) -> str:
    """Run one cell unless it is already done: 'skipped', 'done' or 'failed'.

    `granted_cores` are the CPUs an executor gave this process for the cell (a ``--jobs`` share, a
    Ray task's ``num_cpus``); with ``threads: 0`` torch uses that many threads. The cell's run
    directory is locked while it runs, so a `galm derive` or `retrain` of it waits its turn;
    `take_over` breaks a cell lock another grid cell left on any host (a Ray task's retry: its
    previous attempt died, perhaps with its node).
    Failures (any Exception) are recorded in ``error.json``; KeyboardInterrupt and other
    BaseExceptions propagate, leaving the cell unfinished (it starts afresh next time).
    """
    out = Path(out)
    path = cell_path(out, cell)
    spec_hash = cell.spec_hash()
    if is_done(path, spec_hash):
        return "skipped"
    path.mkdir(parents=True, exist_ok=True)
    with lock_directory(path, "cell directory", role=CELL_LOCK_ROLE,
                        takes_over=CELL_LOCK_ROLE if take_over else None):
        return _run_cell(cell, out, path, spec_hash, device, granted_cores)


def _run_cell(cell: Cell, out: Path, path: Path, spec_hash: str, device: torch.device | None,
              granted_cores: float | None) -> str:
    _clear(path)
    write_json(path / CELL_FILE, {**cell.to_json(), "spec_hash": spec_hash})
    config = cell_config(cell)
    threads = configure_threads(config.threads, granted_cores)
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
        "threads": threads,
    })
    write_json(path / RESULTS_FILE, results)
    mark_done(path, spec_hash)
    return "done"
