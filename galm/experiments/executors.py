"""Where a grid's cells run: one after another in this process, in a local process pool
(``--jobs N``), or as Ray tasks on a cluster (:mod:`galm.experiments.ray_cells`).

Every executor runs the same :func:`galm.experiments.cell.run_cell` on the same experiment
directory, so the results do not depend on the executor, and a grid started with one resumes with
any other. Parallel executors schedule with :mod:`galm.experiments.scheduling`.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from galm.engine.threads import share_of_cores
from galm.experiments.cell import run_cell
from galm.experiments.scheduling import CellCallback, CellExecutor, GridOutcome, run_in_dependency_order
from galm.experiments.spec import Cell


@dataclass(frozen=True)
class SerialExecutor:
    """Every cell in this process, one after another, in the grid's order (dependencies first)."""

    def run(self, cells: Sequence[Cell], out: Path, device: torch.device | None,
            on_cell: CellCallback | None) -> GridOutcome:
        outcome = GridOutcome({})
        for cell in cells:
            outcome.record(cell, run_cell(cell, out, device), on_cell)
        return outcome


@dataclass(frozen=True)
class ProcessPoolCells:
    """``--jobs N``: N worker processes on this machine, each cell with 1/N of this process's cores
    as its threads (``threads: 0``). Workers are spawned, not forked: a fork of a process whose
    torch thread pool has started can hang in the child."""

    jobs: int

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {self.jobs}")

    def cores_per_cell(self) -> int:
        """The threads of each worker's cells with ``threads: 0``: this process's cores over `jobs`."""
        return share_of_cores(self.jobs)

    def run(self, cells: Sequence[Cell], out: Path, device: torch.device | None,
            on_cell: CellCallback | None) -> GridOutcome:
        cores = self.cores_per_cell()
        pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"))
        try:
            outcome = run_in_dependency_order(
                cells, out, lambda cell: pool.submit(run_cell, cell, out, device, cores), on_cell)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return outcome


EXECUTORS = ("local", "ray")


def executor_for(
    name: str = "local", jobs: int | None = None, address: str | None = None,
    cpus_per_cell: float | None = None, gpus_per_cell: float | None = None, max_retries: int | None = None,
) -> CellExecutor:
    """The executor `galm experiment --executor NAME` means, its options checked (ValueError naming the option)."""
    ray_options = {"--address": address, "--cpus-per-cell": cpus_per_cell, "--gpus-per-cell": gpus_per_cell,
                   "--max-retries": max_retries}
    if name == "local":
        given = [option for option, value in ray_options.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to --executor ray")
        jobs = 1 if jobs is None else jobs
        return SerialExecutor() if jobs == 1 else ProcessPoolCells(jobs)
    if name == "ray":
        if jobs is not None:
            raise ValueError("--jobs is for --executor local; a Ray cluster runs as many cells at once as its "
                             "CPUs and GPUs hold (--cpus-per-cell, --gpus-per-cell)")
        from galm.experiments.ray_cells import RayExecutor, import_ray

        import_ray()  # before anything is written: a missing Ray is bad input, not a half-made grid
        return RayExecutor(address=address, cpus_per_cell=1.0 if cpus_per_cell is None else cpus_per_cell,
                           gpus_per_cell=0.0 if gpus_per_cell is None else gpus_per_cell,
                           max_retries=3 if max_retries is None else max_retries)
    raise ValueError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
