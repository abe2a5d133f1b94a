"""Retention: removing old sessions once every message about them reached the CSMS."""

from __future__ import annotations

import sqlite3

from chargepoint.store.connection import StoreBase
from chargepoint.store.values import check_timestamp
from chargepoint.store.worker import AsyncStoreBase


class Retention(StoreBase):
    """Pruning ``transactions`` with their ``outbox`` messages and ``session_proofs``."""

    def prune(self, closed_before: str) -> list[int]:
        """Remove sessions closed before `closed_before` whose messages all reached the CSMS
        (none pending, none flagged); return their local ids. Open sessions, sessions with
        a message still waiting or flagged, and everything newer are kept."""
        check_timestamp("closed_before", closed_before)

        def write(conn: sqlite3.Connection) -> list[int]:
            ids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT local_id FROM transactions t WHERE closed_at IS NOT NULL"
                    " AND closed_at < ? AND NOT EXISTS (SELECT 1 FROM outbox o"
                    " WHERE o.local_tx_id = t.local_id AND o.status <> 'sent')",
                    (closed_before,),
                )
            ]
            for local_id in ids:
                conn.execute("DELETE FROM outbox WHERE local_tx_id = ?", (local_id,))
                conn.execute("DELETE FROM session_proofs WHERE local_id = ?", (local_id,))
                conn.execute("DELETE FROM transactions WHERE local_id = ?", (local_id,))
            return ids

        return self._write(write)


class AsyncRetention(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: Retention

    async def prune(self, closed_before: str) -> list[int]:
        return await self._run(self._store.prune, closed_before)
