"""What the log says while the outbox drains a backlog: a line when it starts, one per
PROGRESS_EVERY messages delivered ("outbox: 2,000 of 10,113 delivered") and one at the end,
instead of a line per message (those go to DEBUG: 10,000 INFO lines would cost more than
their round trips, and bury the rest of the log)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("chargepoint.ocpp")

PROGRESS_EVERY = 1000  # messages delivered between two progress lines


class BacklogProgress:
    """One backlog, from the first message sent to the outbox found empty."""

    def __init__(self, waiting: int) -> None:
        self.total = waiting  # grows when messages come while it drains (see update)
        self.delivered = 0
        self._started = time.monotonic()
        log.info("outbox: %s messages to deliver", f"{waiting:,}")

    def settled(self) -> bool:
        """One more message delivered (or given up); True when a progress line is due (the
        caller updates the total first: update(), then report())."""
        self.delivered += 1
        return self.delivered % PROGRESS_EVERY == 0

    def update(self, still_waiting: int) -> None:
        self.total = self.delivered + still_waiting

    def report(self) -> None:
        log.info("outbox: %s of %s delivered", f"{self.delivered:,}", f"{self.total:,}")

    def finished(self) -> None:
        seconds = time.monotonic() - self._started
        log.info(
            "outbox: backlog delivered, %s messages in %.1f s (%.0f msg/s)",
            f"{self.delivered:,}",
            seconds,
            self.delivered / seconds if seconds > 0 else 0.0,
        )
