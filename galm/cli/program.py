"""The `galm` entry point: the parser of every command and the error boundary around them.

Bad input (a config key, a file, a directory another process writes) ends in one line on stderr
that names it, exit code 2. Anything else is a galm bug: its message, "please report this", exit
code 1; ``galm --debug COMMAND`` prints the traceback of either. ``galm predict`` alone has a third
outcome: exit code 3 when it wrote the predictions of the images it could decode but skipped others.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable, Sequence

from galm import __version__
from galm.cli import data, demo, predict, report, search, train
from galm.config.presets import preset_overrides
from galm.config.typed import ConfigError
from galm.engine.distributed import leave, torchrun_world_size
from galm.runs.lock import DirectoryLocked

MODULES = (train, search, demo, data, report, predict)
# The commands that run one job over the processes of torchrun (data-parallel); the others refuse.
DATA_PARALLEL_COMMANDS = ("search", "transfer", "retrain", "train")

# Every error galm raises for bad input: configuration (ConfigError), data and damaged files
# (ValueError: DatasetFormatError, UnsafeOrDamagedFile), missing or clashing paths (OSError:
# FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError), and a directory
# another galm process is writing (DirectoryLocked).
BAD_INPUT = (ConfigError, ValueError, OSError, DirectoryLocked)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galm",
        description="GALM: search, train and evaluate per-attribute network heads on a shared trunk.",
    )
    parser.add_argument("--version", action="version", version=f"galm {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the Python traceback of an error; under torchrun also check at every step "
                        "that all ranks hold the same architectures and weights (give it before the command)")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in MODULES:
        module.register(commands)
    return parser


def commands() -> dict[str, Callable[[argparse.Namespace], int]]:
    """Command name -> the function that runs it."""
    table: dict[str, Callable[[argparse.Namespace], int]] = {}
    for module in MODULES:
        table.update(module.COMMANDS)
    return table


def one_line(error: BaseException) -> str:
    """An error's message on one line (a multi-line message, e.g. torch's, joined with '; ')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if torchrun_world_size() > 1 and args.command not in DATA_PARALLEL_COMMANDS:
            raise ValueError(f"galm {args.command} runs in one process; under torchrun only "
                             f"{', '.join(DATA_PARALLEL_COMMANDS)} run (data-parallel)")
        if getattr(args, "preset", None):
            args.overrides = [*preset_overrides(args.preset), *args.overrides]
        return commands()[args.command](args)
    except BAD_INPUT as error:
        print(f"galm {args.command}: error: {one_line(error)}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return 2
    except KeyboardInterrupt:
        print(f"galm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the boundary: a bug gets a message, not a traceback
        print(f"galm {args.command}: internal error: {type(error).__name__}: {one_line(error)}; "
              "please report this (run `galm --debug ...` for the traceback)", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return 1
    finally:
        leave()  # this process's part of a torchrun job, if any


if __name__ == "__main__":
    sys.exit(main())
