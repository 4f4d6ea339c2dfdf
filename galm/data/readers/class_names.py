"""Matching class names read from one source (a split list, a .mat file) to a reader's classes.

Exact names first, then a lenient form (case, spaces, ``/``, ``+`` and ``-`` folded to ``_``), so
xlsa17's SUN names match the SUN folder names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from galm.data.readers.format_error import line_error


def normalise_name(name: str) -> str:
    """A lenient form of a class name for matching across sources (``a/b c+d`` ~ ``a_b_c_d``)."""
    return re.sub(r"[\s/+\-]+", "_", name.strip().lower())


def match_class_names(
    names: Sequence[tuple[int, str]], class_names: Sequence[str], path: Path
) -> list[int]:
    """Class ids of (line, name) pairs: exact match first, then normalised; an error naming the line."""
    exact = {n: i for i, n in enumerate(class_names)}
    loose: dict[str, int] = {}
    for i, n in enumerate(class_names):
        loose.setdefault(normalise_name(n), i)
    ids: list[int] = []
    for number, name in names:
        if name in exact:
            ids.append(exact[name])
        elif normalise_name(name) in loose:
            ids.append(loose[normalise_name(name)])
        else:
            shown = ", ".join(list(class_names)[:8])
            raise line_error(path, number, f"unknown class name {name!r} (known classes include {shown}, ...)")
    return ids
