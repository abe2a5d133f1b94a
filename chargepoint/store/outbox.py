"""The outbox: messages for the CSMS, kept from before their first attempt until long after
they were sent.

Acknowledgements are written in groups. :meth:`AsyncOutbox.mark_sent` only notes that the CSMS
answered a message; the notes reach the disk together, in one transaction (one fsync), when
ACK_GROUP of them are waiting, when the oldest has waited ACK_DELAY_S, when the sender runs
out of messages (:meth:`AsyncOutbox.flush_acks`), at close, and before any other write to the
store. That last rule keeps every crash state a prefix of what happened: a write made after an
acknowledgement (the CSMS's transaction id, "the key was sent", the next session) is never on
disk without that acknowledgement, so a message sent again after a power loss is built from
the same state as the first time and carries the same content (the CSMS sees it twice, as
after an answer lost on the way, and de-duplicates it by its identity: 2.0.1 transactionId and
seqNo, 1.6 content). Until the notes are on disk, every read of this module counts the message
as sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from chargepoint.store.connection import StoreBase
from chargepoint.store.errors import StoreError, StoreFull
from chargepoint.store.rows import OUTBOX_COLUMNS, OutboxMessage, outbox_row
from chargepoint.store.values import to_json, utc_now
from chargepoint.store.worker import AsyncStoreBase

log = logging.getLogger("chargepoint.store")

OUTBOX_STATUSES = ("pending", "sent", "failed")
ACK_GROUP = 100  # acknowledgements written in one transaction at most
ACK_DELAY_S = 0.25  # the longest an acknowledgement waits for its group

T = TypeVar("T")

# (seq, sent_at, response as JSON text or None)
Ack = tuple[int, str, str | None]


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


def ack(seq: int, response: dict[str, Any] | None) -> Ack:
    text = to_json(f"the response to message {seq}", response) if response is not None else None
    return seq, utc_now(), text


def write_acks(conn: sqlite3.Connection, acks: Sequence[Ack], strict: bool = True) -> None:
    """Mark `acks` sent within the caller's transaction; `strict`: StoreError for a message
    that does not exist (else it is skipped: a held acknowledgement must not stop every
    later write)."""
    for seq, sent_at, text in acks:
        cur = conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, response = ? WHERE seq = ?",
            (sent_at, text, seq),
        )
        if cur.rowcount != 1 and strict:
            raise StoreError(f"outbox message {seq} does not exist")


class Outbox(StoreBase):
    """The ``outbox`` table, and the acknowledgements not yet written (``_held_acks``)."""

    def _held(self) -> list[Ack]:
        # created on first use, from whichever thread comes first (setdefault is atomic)
        held: list[Ack] = self.__dict__.setdefault("_held_acks", [])
        return held

    def _hold_acks(self, acks: Sequence[Ack]) -> None:
        """Acknowledgements to write with the next write (or flush_acks). Safe to call from
        another thread than the worker's (list.extend is atomic)."""
        self._held().extend(acks)

    def _held_count(self) -> int:
        return len(self._held())

    def _flush_acks(self) -> int:
        """Write the held acknowledgements now (one transaction); return how many."""
        count = len(self._held())
        if count:
            self._write(lambda conn: None)
        return count

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Every write of the store: the held acknowledgements first, in the same
        transaction, so that nothing written later is on disk without them."""
        held = self._held()
        if not held:
            return super()._write(fn)
        acks = list(held)

        def with_acks(conn: sqlite3.Connection) -> T:
            write_acks(conn, acks, strict=False)
            return fn(conn)

        result = super()._write(with_acks)
        del held[: len(acks)]
        return result

    def close(self) -> None:
        """Write the held acknowledgements, then close (the messages of any that cannot be
        written are sent again after the next start)."""
        with self._lock:
            if not self.closed:
                try:
                    self._flush_acks()
                except StoreError as exc:
                    log.error(
                        "%d acknowledgements of the CSMS not written: %s", len(self._held()), exc
                    )
        super().close()

    def _held_seqs(self) -> set[int]:
        return {seq for seq, _, _ in self._held()}

    def enqueue(self, kind: str, data: dict[str, Any], local_tx_id: int | None = None) -> int:
        """Append a message to the outbox; return its sequence number."""
        return self._write(
            lambda conn: append_messages(conn, [(kind, data)], local_tx_id, utc_now())
        )

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Messages still to send, in the order they were stored."""

        held = self._held_seqs()

        def read(conn: sqlite3.Connection) -> list[OutboxMessage]:
            rows = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
                " ORDER BY seq LIMIT ?",
                (limit + len(held),),
            ).fetchall()
            return [outbox_row(r) for r in rows if r[0] not in held][:limit]

        return self._read(read)

    def _read_ahead(self, limit: int) -> list[tuple[OutboxMessage, int]]:
        """The next `limit` messages to send (as `pending`), each with its message_index
        (0 for one without a transaction): what the sender needs, in one query."""
        held = self._held_seqs()

        def read(conn: sqlite3.Connection) -> list[tuple[OutboxMessage, int]]:
            rows = conn.execute(
                f"SELECT {OUTBOX_COLUMNS}, CASE WHEN o.local_tx_id IS NULL THEN 0 ELSE"
                " (SELECT COUNT(*) FROM outbox p WHERE p.local_tx_id = o.local_tx_id"
                " AND p.seq < o.seq) END FROM outbox o WHERE status = 'pending'"
                " ORDER BY seq LIMIT ?",
                (limit + len(held),),
            ).fetchall()
            return [(outbox_row(r[:-1]), int(r[-1])) for r in rows if r[0] not in held][:limit]

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

        found = self._read(read)
        if found is not None and found.status == "pending":
            for held_seq, sent_at, text in self._held():
                if held_seq == seq:
                    response = json.loads(text) if text is not None else None
                    return replace(found, status="sent", sent_at=sent_at, response=response)
        return found

    def mark_sent(self, seq: int, *, response: dict[str, Any] | None = None) -> None:
        """Mark a message sent, on disk when this returns."""
        self._write(lambda conn: write_acks(conn, [ack(seq, response)]))

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
        """Messages still to send (a held acknowledgement counts as sent)."""
        held = len(self._held())

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()
            return int(row[0]) - held

        return self._read(read)


class AsyncOutbox(AsyncStoreBase):
    """The same on the store's worker thread. `mark_sent` costs no trip to the worker: the
    acknowledgement is handed to the store at once and written with its group (see the
    module's docstring)."""

    _store: Outbox

    def __init__(self, store: Outbox, executor: ThreadPoolExecutor) -> None:
        super().__init__(store, executor)
        self._acks_since = 0.0  # time.monotonic() when the oldest held acknowledgement came
        self._settled = 0  # the last message marked sent or failed
        self._read_ahead_index: dict[int, int] = {}  # seq -> message_index, of read_ahead

    async def enqueue(self, kind: str, data: dict[str, Any], local_tx_id: int | None = None) -> int:
        return await self._run(self._store.enqueue, kind, data, local_tx_id)

    async def pending(self, limit: int = 100) -> list[OutboxMessage]:
        return await self._run(self._store.pending, limit)

    async def message_index(self, seq: int, local_tx_id: int) -> int:
        if seq in self._read_ahead_index:
            return self._read_ahead_index[seq]
        return await self._run(self._store.message_index, seq, local_tx_id)

    async def read_ahead(self, limit: int) -> list[OutboxMessage]:
        """The next `limit` messages to send, their message_index kept for the asking."""
        rows = await self._run(self._store._read_ahead, limit)
        self._read_ahead_index = {m.seq: index for m, index in rows}
        return [m for m, _ in rows]

    async def next_pending(self) -> OutboxMessage | None:
        return await self._run(self._store.next_pending)

    async def message(self, seq: int) -> OutboxMessage | None:
        return await self._run(self._store.message, seq)

    async def mark_sent(self, seq: int, *, response: dict[str, Any] | None = None) -> None:
        """The CSMS answered message `seq`. On disk with its group: when ACK_GROUP wait, the
        oldest waited ACK_DELAY_S, before the next write, or at flush_acks()."""
        if self._closed:
            raise StoreError(f"{self._store.path}: the store is closed")
        if not self._store._held_count():
            self._acks_since = time.monotonic()
        # handed over now, not with a call a cancellation could drop: list.append is atomic
        self._store._hold_acks([ack(seq, response)])
        self._settled = seq
        with contextlib.suppress(StoreFull):  # a full disk: they wait here until it has room
            await self.flush_acks(ACK_DELAY_S, ACK_GROUP)

    async def flush_acks(self, older_than: float = 0.0, more_than: int = 0) -> None:
        """Write the waiting acknowledgements now; with `older_than` (seconds) or
        `more_than`: only when the oldest waited that long or that many wait."""
        waiting = self._store._held_count()
        if not waiting:
            return
        if older_than or more_than:
            old = older_than > 0 and time.monotonic() - self._acks_since >= older_than
            if not (old or (more_than > 0 and waiting >= more_than)):
                return
        await self._run(self._store._flush_acks)

    def settled(self, seq: int) -> bool:
        """Whether message `seq` was the last one marked sent or failed."""
        return self._settled == seq

    async def record_attempt(self, seq: int, error: str) -> int:
        return await self._run(self._store.record_attempt, seq, error)

    async def mark_failed(self, seq: int, error: str) -> None:
        await self._run(self._store.mark_failed, seq, error)
        self._settled = seq

    async def failed_messages(self) -> list[OutboxMessage]:
        return await self._run(self._store.failed_messages)

    async def outbox_length(self) -> int:
        return await self._run(self._store.outbox_length)
