"""A command's log output: one line per record on standard error, -v and -vv for more (the
daemon's own log, journal and file, is set up by chargepoint.service.logsetup, replacing it).

Its own module so that a command that logs nothing on its usual path (`verify` of OCMF records)
can set it up only when it takes a path that may log, and start without the logging package."""

from __future__ import annotations


def configure_logging(verbose: int) -> None:
    """WARNING and above; -v: INFO; -vv: DEBUG, with pymodbus' own lines (and frame dumps)."""
    import logging

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # the meter layer reports what matters, typed; pymodbus' own lines (and its frame hex
    # dumps) only with -vv
    logging.getLogger("pymodbus").setLevel(logging.DEBUG if verbose >= 2 else logging.CRITICAL)
