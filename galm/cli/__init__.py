"""The ``galm`` command line: argument parsing and printing only; the work is done by the library.

Nothing in galm imports this package.
"""

from galm.cli.commands import main

__all__ = ["main"]
