"""The `galm` entry point: the parser of every command and the error boundary around them."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from galm import __version__
from galm.cli import data, demo, report, search, train
from galm.config.presets import preset_overrides
from galm.config.typed import ConfigError

MODULES = (train, search, demo, data, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galm",
        description="GALM: search, train and evaluate per-attribute network heads on a shared trunk.",
    )
    parser.add_argument("--version", action="version", version=f"galm {__version__}")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "preset", None):
        args.overrides = [*preset_overrides(args.preset), *args.overrides]
    try:
        return commands()[args.command](args)
    except (ConfigError, ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"galm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"galm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
