"""The outbox: messages for the CSMS, kept from before their first attempt until long after
they were sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from chargepoint.store.connection import StoreBase
from chargepoint.store.errors import StoreError
from chargepoint.store.rows import OUTBOX_COLUMNS, OutboxMessage, outbox_row
from chargepoint.store.values import to_json, utc_now
from chargepoint.store.worker import AsyncStoreBase

OUTBOX_STATUSES = ("pending", "sent", "failed")


def append_messages(
    conn: sqlite3.Connection,
    messages: Sequence[tuple[str, dict[str, Any]]],
    local_tx_id: int | None,
    now: str,
) -> int:
    """Append `messages` (kind, data) to the outbox within the caller's transaction;
    return the sequence number of the last one (0 for none)."""
    seq = 0
    for kind, data in messages:
        text = to_json(f"outbox message {kind!r}", data)
        cur = conn.execute(
            "INSERT INTO outbox (kind, local_tx_id, data, created_at) VALUES (?, ?, ?, ?)",
            (kind, local_tx_id, text, now),
        )
        seq = int(cur.lastrowid or 0)
    return seq


class Outbox(StoreBase):
    """The ``outbox`` table."""

    def enqueue(self, kind: str, data: dict[str, Any], local_tx_id: int | None = None) -> int:
        """Append a message to the outbox; return its sequence number."""
        return self._write(
            lambda conn: append_messages(conn, [(kind, data)], local_tx_id, utc_now())
        )

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Messages still to send, in the order they were stored."""

        def read(conn: sqlite3.Connection) -> list[OutboxMessage]:
            rows = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [outbox_row(r) for r in rows]

        return self._read(read)

    def message_index(self, seq: int, local_tx_id: int) -> int:
        """How many messages of the same transaction were queued before message `seq`
        (0 for its first): OCPP 2.0.1 seqNo, stable across resends and restarts."""

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE local_tx_id = ? AND seq < ?",
                (local_tx_id, seq),
            ).fetchone()
            return int(row[0])

        return self._read(read)

    def next_pending(self) -> OutboxMessage | None:
        head = self.pending(1)
        return head[0] if head else None

    def message(self, seq: int) -> OutboxMessage | None:
        """One outbox message, whatever its status."""

        def read(conn: sqlite3.Connection) -> OutboxMessage | None:
            row = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE seq = ?", (seq,)
            ).fetchone()
            return outbox_row(row) if row is not None else None

        return self._read(read)

    def mark_sent(self, seq: int, *, response: dict[str, Any] | None = None) -> None:
        text = to_json(f"the response to message {seq}", response) if response is not None else None

        def write(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, response = ? WHERE seq = ?",
                (utc_now(), text, seq),
            )
            if cur.rowcount != 1:
                raise StoreError(f"outbox message {seq} does not exist")

        self._write(write)

    def record_attempt(self, seq: int, error: str) -> int:
        """Count a failed attempt to send; return the number of attempts so far."""

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error, seq),
            )
            if cur.rowcount != 1:
                raise StoreError(f"outbox message {seq} does not exist")
            row = conn.execute("SELECT attempts FROM outbox WHERE seq = ?", (seq,)).fetchone()
            return int(row[0])

        return self._write(write)

    def mark_failed(self, seq: int, error: str) -> None:
        """Give up on a message: it stays in the outbox, flagged failed, with the reason."""

        def write(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE outbox SET status = 'failed', last_error = ? WHERE seq = ?",
                (error, seq),
            )
            if cur.rowcount != 1:
                raise StoreError(f"outbox message {seq} does not exist")

        self._write(write)

    def failed_messages(self) -> list[OutboxMessage]:
        def read(conn: sqlite3.Connection) -> list[OutboxMessage]:
            rows = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'failed' ORDER BY seq"
            ).fetchall()
            return [outbox_row(r) for r in rows]

        return self._read(read)

    def outbox_length(self) -> int:
        """Messages still to send."""
        return self._read(
            lambda conn: int(
                conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
            )
        )


class AsyncOutbox(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: Outbox

    async def enqueue(self, kind: str, data: dict[str, Any], local_tx_id: int | None = None) -> int:
        return await self._run(self._store.enqueue, kind, data, local_tx_id)

    async def pending(self, limit: int = 100) -> list[OutboxMessage]:
        return await self._run(self._store.pending, limit)

    async def message_index(self, seq: int, local_tx_id: int) -> int:
        return await self._run(self._store.message_index, seq, local_tx_id)

    async def next_pending(self) -> OutboxMessage | None:
        return await self._run(self._store.next_pending)

    async def message(self, seq: int) -> OutboxMessage | None:
        return await self._run(self._store.message, seq)

    async def mark_sent(self, seq: int, *, response: dict[str, Any] | None = None) -> None:
        await self._run(self._store.mark_sent, seq, response=response)

    async def record_attempt(self, seq: int, error: str) -> int:
        return await self._run(self._store.record_attempt, seq, error)

    async def mark_failed(self, seq: int, error: str) -> None:
        await self._run(self._store.mark_failed, seq, error)

    async def failed_messages(self) -> list[OutboxMessage]:
        return await self._run(self._store.failed_messages)

    async def outbox_length(self) -> int:
        return await self._run(self._store.outbox_length)
