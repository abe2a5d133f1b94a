"""`python -m chargepoint ...` runs the command line, as the `chargepoint` console script does."""

import sys

from chargepoint.cli.main import main

sys.exit(main())
