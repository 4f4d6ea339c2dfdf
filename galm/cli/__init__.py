"""The ``galm`` command line: argument parsing and printing only; the work is done by the library.

One module per group of commands, each with ``register(subparsers)`` and ``COMMANDS``;
:mod:`galm.cli.program` assembles them. Nothing in galm imports this package.
"""

from __future__ import annotations

from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (the `galm` script and `python -m galm`)."""
    from galm.cli.program import main as run

    return run(argv)


__all__ = ["main"]
