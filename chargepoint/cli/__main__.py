"""`python -m chargepoint.cli ...`: the older spelling of `python -m chargepoint`."""

import sys

from chargepoint.cli.main import main

sys.exit(main())
