"""Running a grid: every cell of a spec in its own run directory, resumable, failures recorded.

A grid claims its experiment directory for its spec, runs every cell there with an executor
(:mod:`galm.experiments.executors`: one after another by default, ``--jobs N`` processes, or Ray
tasks), then writes the result tables. A rerun skips the cells that finished with an unchanged
spec and retries the failed and unfinished ones, whichever executor ran them before. A cell is
:func:`galm.experiments.cell.run_cell`; the layout is :mod:`galm.runs.experiment_dir`'s; the
methods are :mod:`galm.experiments.methods`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from galm.experiments.cell import run_cell
from galm.experiments.executors import SerialExecutor
from galm.experiments.methods import CELL_RUNNERS
from galm.experiments.scheduling import CellCallback, CellExecutor, GridOutcome
from galm.experiments.spec import ExperimentSpec, cell_config, expand_cells
from galm.report.summary import summarise
from galm.runs.experiment_dir import CELLS_KEY, claim, writing

__all__ = ["CELL_RUNNERS", "GridOutcome", "cell_config", "run_cell", "run_experiment"]


def run_experiment(
    spec: ExperimentSpec, out: str | Path, device: torch.device | None = None,
    on_cell: CellCallback | None = None, force: bool = False, executor: CellExecutor | None = None,
) -> GridOutcome:
    """Run (or resume) every cell of `spec` into `out` with `executor` (default: one after another in
    this process), then write the result tables; `out` is locked against other galm writers meanwhile.

    `out` must be new, empty or the directory of this spec; `force` runs another spec into an
    experiment directory (cells it shares unchanged are kept, changed ones rerun, the others stay on
    disk but leave the tables). Files galm did not write there are never overwritten.
    """
    cells = expand_cells(spec)
    executor = executor if executor is not None else SerialExecutor()
    with writing(out) as out:
        hashes = {cell.key: cell.spec_hash() for cell in cells}
        claim(out, spec.to_json(), hashes, force)
        outcome = executor.run(cells, out, device, on_cell)
        summarise(out, {**spec.to_json(), CELLS_KEY: hashes})  # the cells say which methods run where
    return outcome
