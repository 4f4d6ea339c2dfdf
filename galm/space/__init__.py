"""The search space of Table 1 as plain values: decisions, architectures, their short form.

No torch here: the report, the config and the command line read architectures without the
network code. May import: ``galm.config.schema``.
"""

from galm.space.search_space import *  # noqa: F401,F403
