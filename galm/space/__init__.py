"""The search space of Table 1 as plain values: decisions, architectures, their short form, and
how often each choice was taken.

No torch here: the report, the config and the command line read architectures without the
network code. May import: ``galm.config.schema``.
"""

from galm.space.frequencies import choice_frequencies
from galm.space.search_space import (
    CONV4_SKIP_SOURCES,
    CONV5_SKIP_SOURCES,
    FC3_INPUTS,
    Architecture,
    Decision,
    SearchSpace,
)

__all__ = [
    "CONV4_SKIP_SOURCES", "CONV5_SKIP_SOURCES", "FC3_INPUTS", "Architecture", "Decision", "SearchSpace",
    "choice_frequencies",
]
