"""A grid's cells as Ray tasks (``galm experiment --executor ray``): one task per unfinished cell.

Each task asks Ray for ``--cpus-per-cell`` CPUs and ``--gpus-per-cell`` GPUs and runs
:func:`galm.experiments.cell.run_cell` on the experiment directory, which must be on storage
every node mounts at the same path: the driver writes a token into ``OUT/.storage-probe``, one
probe task per node reads it before any cell starts, and every cell task reads it again (nodes
added later). A task whose worker dies is retried (``max_retries``); a cell that fails for its
own reasons records its error like any cell. Ray is imported here only, when the executor runs.
"""

from __future__ import annotations

import contextlib
import socket
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from galm.experiments.cell import run_cell
from galm.experiments.scheduling import CellCallback, GridOutcome, run_in_dependency_order
from galm.experiments.spec import Cell, cell_config
from galm.runs.experiment_dir import (
    STORAGE_PROBE_FILE,
    remove_storage_probe,
    storage_probe_matches,
    write_storage_probe,
)

# How long the driver waits for every node to read the storage probe.
PROBE_TIMEOUT_SECONDS = 300.0


class RayUnavailable(ValueError):
    """``--executor ray`` was asked for where Ray is not installed."""


class StorageNotShared(OSError):
    """A Ray worker cannot read what the driver wrote into the experiment directory."""


def import_ray() -> Any:
    """The ``ray`` module, or RayUnavailable saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailable("--executor ray needs Ray on the driver and every node: "
                             "pip install 'galm[ray]' (or pip install ray)") from error
    return ray


def _not_shared(out: str, where: str) -> StorageNotShared:
    return StorageNotShared(
        f"{out} is not on storage every Ray worker sees: {where} cannot read the {STORAGE_PROBE_FILE} the "
        "driver just wrote there; give --out a directory on a file system every node mounts at the same "
        "path (NFS, a cluster file system), as an absolute path")


def read_probe(out: str, token: str) -> tuple[str, bool]:
    """(This worker's host, whether it reads `token` in OUT's storage probe): a Ray task's body."""
    return socket.gethostname(), storage_probe_matches(out, token)


def check_shared_storage(out: Path, token: str) -> int:
    """StorageNotShared unless a task on every alive node of the cluster reads `token` in OUT's
    storage probe; returns the number of nodes checked."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(read_probe)
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            .remote(str(out), token) for node in nodes]
    try:
        answers = ray.get(refs, timeout=PROBE_TIMEOUT_SECONDS)
    except ray.exceptions.GetTimeoutError as error:
        raise StorageNotShared(f"the Ray nodes did not answer within {PROBE_TIMEOUT_SECONDS:.0f} s whether they "
                               f"see {out}") from error
    for node, (host, seen) in zip(nodes, answers):
        if not seen:
            raise _not_shared(str(out), f"node {node.get('NodeManagerAddress', '?')} ({host})")
    return len(nodes)


def run_cell_task(cell: Cell, out: str, token: str, device: torch.device | None, gpus_per_cell: float) -> str:
    """A Ray task's body: check the storage, then run the cell with the CPUs Ray assigned this task.

    The driver submits each cell once and holds the experiment directory's lock, so a cell lock
    left by a grid cell is a dead attempt (this task's, retried after its worker or node died, or a
    dead grid's): it is taken over even when it names another host.

    Without GPUs for the cell, a cell whose device is 'auto' runs on the CPU even on a GPU node
    (the node's GPUs belong to the tasks that asked for them).
    """
    import ray

    if not storage_probe_matches(out, token):
        raise _not_shared(out, f"the worker on {socket.gethostname()}")
    if device is None and gpus_per_cell == 0 and cell_config(cell).device == "auto":
        device = torch.device("cpu")
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    return run_cell(cell, out, device, granted_cores=cpus, take_over=True)


@dataclass(frozen=True)
class RayExecutor:
    """Every unfinished cell as a Ray task with these resources, on the cluster at `address`
    (None: ``RAY_ADDRESS``, else a cluster running on this machine, else a new local instance);
    a Ray already initialised in this process is used as it is."""

    address: str | None = None
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 0.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not self.cpus_per_cell > 0:
            raise ValueError(f"--cpus-per-cell must be positive, got {self.cpus_per_cell}")
        if not self.gpus_per_cell >= 0:
            raise ValueError(f"--gpus-per-cell must be 0 or positive, got {self.gpus_per_cell}")
        if self.max_retries < 0:
            raise ValueError(f"--max-retries must be 0 or positive, got {self.max_retries}")

    def run(self, cells: Sequence[Cell], out: Path, device: torch.device | None,
            on_cell: CellCallback | None) -> GridOutcome:
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address)
        out = Path(out).resolve()
        refs: list[Any] = []
        try:
            token = write_storage_probe(out)
            check_shared_storage(out, token)
            task = ray.remote(run_cell_task).options(
                num_cpus=self.cpus_per_cell, num_gpus=self.gpus_per_cell, max_retries=self.max_retries,
                retry_exceptions=False)

            def submit(cell: Cell) -> Future[str]:
                refs.append(task.remote(cell, str(out), token, device, self.gpus_per_cell))
                return refs[-1].future()

            try:
                return run_in_dependency_order(cells, out, submit, on_cell)
            except BaseException:
                for ref in refs:
                    with contextlib.suppress(Exception):  # a finished task cannot be cancelled
                        ray.cancel(ref)
                raise
        finally:
            remove_storage_probe(out)
            if started:
                ray.shutdown()
