"""Arguments shared by the commands that train: --config, --preset, --set, --out, and what they resolve to."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

import torch

from galm.config import GalmConfig, read_config
from galm.config.presets import PRESETS
from galm.config.typed import to_mapping
from galm.engine import distributed
from galm.engine.device import resolve_device
from galm.engine.threads import configure_threads
from galm.engine.seeding import seed_everything
from galm.runs.directory import RunDirectory


def add_preset_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset", choices=sorted(PRESETS),
        help="named configuration, applied after --config and before --set: 'demo' (minutes on a CPU) or 'paper' "
        "(251 attributes at 224x224, the paper's budget; see configs/paper.yaml)",
    )


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file with settings (see configs/default.yaml)")
    add_preset_argument(parser)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.epochs=5 --set space.resolution=224 (repeatable)",
    )
    parser.add_argument("--out", type=Path,
                        help="run directory to create (default: runs/<command>-<time>); it must not exist or be "
                        "empty, and is removed again if the command fails before it holds any result")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def prepare_process(config: GalmConfig) -> None:
    """Thread count and seeds of this process, from the run's settings."""
    configure_threads(config.threads)
    seed_everything(config.seed)


def load_config(args: argparse.Namespace, defaults: tuple[str, ...] = ()) -> GalmConfig:
    """The configuration of --config / --preset / --set (after `defaults`), with the process set up."""
    config = read_config(args.config, [*defaults, *args.overrides])
    prepare_process(config)
    return config


def run_path(out: Path | None, command: str) -> Path:
    """--out, or runs/<command>-<time>."""
    return out or Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


@contextlib.contextmanager
def new_run(out: Path | None, command: str, config: GalmConfig) -> Iterator[RunDirectory]:
    """A new run directory for the block (an existing non-empty one is refused); removed again when
    the block fails before the run holds any result. Check everything that can be checked first.
    Under torchrun rank 0 creates and locks it (at the path it chose) and the others see it."""
    parallel = distributed.current()
    path = Path(parallel.broadcast_text(str(run_path(out, command))))
    if not parallel.is_main:
        parallel.barrier()
        yield shared_run(path)
        return
    with RunDirectory.begin(path, to_mapping(config)) as run:
        parallel.barrier()
        yield run


def writing_run(path: Path, debug: bool = False) -> contextlib.AbstractContextManager[RunDirectory]:
    """An existing run directory, locked against other writers while the block writes it. Under
    torchrun the job is joined first (on the run's device, see :func:`job_device`), and only rank 0
    takes the lock (and writes); the other ranks only read the run."""
    job_device(RunDirectory.open(path).config(), debug)
    if distributed.current().is_main:
        return RunDirectory.open(path).writing()
    return contextlib.nullcontext(shared_run(path))


def shared_run(path: Path) -> RunDirectory:
    """Rank 0's run directory as another rank of a torchrun job sees it (to read its checkpoint)."""
    try:
        return RunDirectory.open(path)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{error}; under torchrun the run directory rank 0 writes must be on storage every node sees "
            f"(a shared file system), and rank {distributed.current().rank} on {socket.gethostname()} "
            "does not see it") from error


def job_device(config: GalmConfig, debug: bool = False) -> torch.device:
    """The device of this process's job from ``config.device``. Under torchrun (more than one
    process) it joins the job: gloo on CPUs, NCCL on GPUs with ``cuda`` meaning this rank's
    ``cuda:LOCAL_RANK``; ``debug`` (``galm --debug``) checks every step that the ranks agree. Only
    rank 0 prints to stdout (the other ranks' output is dropped; errors still reach stderr)."""
    parallel, device = distributed.join(resolve_device(config.device), checks=debug)
    if not parallel.is_main and sys.stdout is sys.__stdout__:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the rest of the process
    return device


def restarted_run(out: Path | None) -> Path | None:
    """`--out` when torchrun restarted this job (``--max-restarts``) after the run was created: the
    restarted job continues it from its checkpoint instead of refusing the existing directory."""
    if out is None or not distributed.restarted_by_torchrun():
        return None
    return out if RunDirectory(out).config_path.is_file() else None
