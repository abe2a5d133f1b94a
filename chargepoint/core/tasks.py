"""Cancel owned tasks and make sure they end.

Python 3.11's asyncio.wait_for can swallow a cancellation that arrives just as its inner
awaitable finishes (libraries such as pymodbus use it), leaving a loop running after it was
cancelled once. Shutdown therefore cancels again until every task has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("chargepoint.core.tasks")


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], rounds: int = 10, wait_s: float = 0.5
) -> None:
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    for _ in range(rounds):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=wait_s)
    for task in tasks:  # an error of a task that ended on its own is expected here
        if task.done() and not task.cancelled():
            task.exception()
    for task in pending:
        log.error("task %s did not end after %d cancellations", task.get_name(), rounds)
