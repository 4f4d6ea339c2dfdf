"""Scheduling a grid's cells on an executor: dependencies first, and what became of each cell.

A parallel executor (``--jobs``, Ray) submits a cell as a future once the cells it reads have
ended (a baseline after its ``features_from`` network); cells already done are skipped without
starting anything. The statuses come back as one :class:`GridOutcome`.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import torch

from galm.experiments.spec import Cell, cell_path
from galm.runs.experiment_dir import is_done

# What an executor says of each cell: 'done', 'skipped', 'failed' (its error is in error.json) or
# 'lost' (its process or task ended without a status: a worker died, the cell directory was locked,
# the storage is not shared; the message is in GridOutcome.errors). A rerun retries the last two.
STATUSES = ("done", "skipped", "failed", "lost")

CellCallback = Callable[[Cell, str], None]


@dataclass
class GridOutcome:
    """What one `run_experiment` call did: cell key -> status (:data:`STATUSES`), and why lost cells were lost."""

    status: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s == status)

    def record(self, cell: Cell, status: str, on_cell: CellCallback | None, error: str | None = None) -> None:
        self.status[cell.key] = status
        if error is not None:
            self.errors[cell.key] = error
        if on_cell is not None:
            on_cell(cell, status)


class CellExecutor(Protocol):
    """Runs the cells of a grid (dependencies first) into an experiment directory the caller holds."""

    def run(self, cells: Sequence[Cell], out: Path, device: torch.device | None,
            on_cell: CellCallback | None) -> GridOutcome: ...


def describe_error(error: BaseException) -> str:
    """An executor's error in one line (a Ray task error by the error it wraps)."""
    cause = getattr(error, "cause", None)
    error = cause if isinstance(cause, BaseException) else error
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


def run_in_dependency_order(
    cells: Sequence[Cell], out: Path, submit: Callable[[Cell], Future[str]], on_cell: CellCallback | None,
) -> GridOutcome:
    """Submit every unfinished cell once the cells it depends on have ended, and collect their statuses.

    A cell whose dependency failed still runs (it records why it cannot: as the serial grid does).
    An exception of a cell's future makes it 'lost'; a BaseException in the driver (Ctrl-C)
    cancels what has not started and propagates.
    """
    outcome = GridOutcome({})
    keys = {cell.key for cell in cells}
    ended: set[str] = set()
    waiting: list[Cell] = []
    for cell in cells:
        if is_done(cell_path(out, cell), cell.spec_hash()):
            ended.add(cell.key)
            outcome.record(cell, "skipped", on_cell)
        else:
            waiting.append(cell)
    running: dict[Future[str], Cell] = {}
    try:
        while waiting or running:
            ready = [c for c in waiting if all(d in ended or d not in keys for d in c.dependencies)]
            for cell in ready:
                waiting.remove(cell)
                running[submit(cell)] = cell
            if not running:
                raise RuntimeError(f"cells wait on each other: {[c.key for c in waiting]}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: cells.index(running[f])):
                cell = running.pop(future)
                ended.add(cell.key)
                try:
                    status = future.result()
                except Exception as error:  # noqa: BLE001 - a lost cell must not stop the grid
                    outcome.record(cell, "lost", on_cell, describe_error(error))
                else:
                    outcome.record(cell, status, on_cell)
    except BaseException:
        for future in running:
            future.cancel()
        raise
    return outcome
