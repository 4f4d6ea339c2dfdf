"""`python -m galm` runs the command line, like the `galm` script."""

import sys

from galm.cli import main

sys.exit(main())
