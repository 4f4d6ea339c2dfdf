"""Configuration: the typed schema of every setting, its YAML/override reader and named presets.

No torch import anywhere in this package, and no import of any other galm package: everything
else reads its settings from here.
"""

from galm.config.reader import *  # noqa: F401,F403
