"""What the outbox already holds: the last message of a kind.

A job that a power loss interrupted (a firmware update, a log upload) asks this at the next
start to tell whether the status it was about to report went out before the loss: a status
is queued in one transaction, so the outbox is the truth of what was queued, whatever the
job's own file says.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from chargepoint.store.worker import AsyncStoreBase


def last_of_kind(conn: sqlite3.Connection, kind: str) -> dict[str, Any] | None:
    """The data of the newest outbox message of `kind` (sent or not), None when there is
    none."""
    row = conn.execute(
        "SELECT data FROM outbox WHERE kind = ? ORDER BY seq DESC LIMIT 1", (kind,)
    ).fetchone()
    if row is None:
        return None
    data = json.loads(row[0])
    return data if isinstance(data, dict) else None


async def last_queued(store: AsyncStoreBase, kind: str) -> dict[str, Any] | None:
    """:func:`last_of_kind` on the store's worker thread (after every write made so far)."""
    base = store._store
    return await store._run(base._read, lambda conn: last_of_kind(conn, kind))


__all__ = ["last_of_kind", "last_queued"]
