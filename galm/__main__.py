"""`python -m galm` runs the command line, like the `galm` script."""

import sys

from galm.cli.commands import main

sys.exit(main())
