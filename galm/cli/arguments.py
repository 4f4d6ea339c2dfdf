"""Arguments shared by the commands that train: --config, --preset, --set, --out, and what they resolve to."""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Iterator

from galm.config import GalmConfig, read_config
from galm.config.presets import PRESETS
from galm.config.typed import to_mapping
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
    the block fails before the run holds any result. Check everything that can be checked first."""
    with RunDirectory.begin(run_path(out, command), to_mapping(config)) as run:
        yield run
