"""Recording a charging session: opening the transaction, its signed Begin, its End, its
closing; each together with the outbox messages it causes, in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from chargepoint.store.connection import StoreBase
from chargepoint.store.errors import StoreError
from chargepoint.store.outbox import append_messages
from chargepoint.store.values import check_json_text, check_timestamp, utc_now
from chargepoint.store.worker import AsyncStoreBase


class Sessions(StoreBase):
    """The ``transactions`` table, written."""

    def start_transaction(
        self,
        *,
        connector_id: int,
        evse_id: str,
        id_tag: str,
        meter_serial: str,
        public_key_hex: str,
        started_at: str,
        meter_start_wh: int,
        begin_ocmf: str,
        begin_fields: str,
        messages: Sequence[tuple[str, dict[str, Any]]],
    ) -> int:
        """Store a new session and its messages in one transaction; return its local id."""
        check_timestamp("started_at", started_at)
        check_json_text("begin_fields", begin_fields)

        def write(conn: sqlite3.Connection) -> int:
            self._check_free(conn, connector_id)
            cur = conn.execute(
                "INSERT INTO transactions (connector_id, evse_id, id_tag, meter_serial,"
                " public_key_hex, started_at, meter_start_wh, begin_ocmf, begin_fields,"
                " opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    connector_id,
                    evse_id,
                    id_tag,
                    meter_serial,
                    public_key_hex,
                    started_at,
                    meter_start_wh,
                    begin_ocmf,
                    begin_fields,
                    started_at,
                ),
            )
            local_id = int(cur.lastrowid or 0)
            append_messages(conn, messages, local_id, utc_now())
            return local_id

        return self._write(write)

    @staticmethod
    def _check_free(conn: sqlite3.Connection, connector_id: int) -> None:
        row = conn.execute(
            "SELECT local_id FROM transactions WHERE connector_id = ? AND closed_at IS NULL",
            (connector_id,),
        ).fetchone()
        if row is not None:
            raise StoreError(
                f"connector {connector_id} already has an open session ({row[0]}); "
                "end it before starting another"
            )

    @staticmethod
    def _open_row(conn: sqlite3.Connection, local_id: int) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT closed_at, begin_ocmf, stopped_at, stop_reason, id_tag FROM transactions"
            " WHERE local_id = ?",
            (local_id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"session {local_id} does not exist")
        if row[0] is not None:
            raise StoreError(f"session {local_id} was already closed at {row[0]}")
        return tuple(row)

    def open_transaction(
        self,
        *,
        connector_id: int,
        evse_id: str,
        id_tag: str,
        opened_at: str,
        messages: Sequence[tuple[str, dict[str, Any]]],
    ) -> int:
        """Open a transaction before its signed Begin (start point EVConnected/Authorized);
        `id_tag` may be "" and filled in later with `authorize_transaction`."""
        check_timestamp("opened_at", opened_at)

        def write(conn: sqlite3.Connection) -> int:
            self._check_free(conn, connector_id)
            cur = conn.execute(
                "INSERT INTO transactions (connector_id, evse_id, id_tag, opened_at)"
                " VALUES (?, ?, ?, ?)",
                (connector_id, evse_id, id_tag, opened_at),
            )
            local_id = int(cur.lastrowid or 0)
            append_messages(conn, messages, local_id, utc_now())
            return local_id

        return self._write(write)

    def authorize_transaction(
        self, local_id: int, id_tag: str, messages: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        """The id tag of a transaction opened without one, and its message."""
        if not id_tag:
            raise StoreError(f"session {local_id}: an empty id tag authorizes nothing")

        def write(conn: sqlite3.Connection) -> None:
            row = self._open_row(conn, local_id)
            if row[4]:
                raise StoreError(f"session {local_id} already has the id tag {row[4]!r}")
            conn.execute(
                "UPDATE transactions SET id_tag = ? WHERE local_id = ?", (id_tag, local_id)
            )
            append_messages(conn, messages, local_id, utc_now())

        self._write(write)

    def begin_transaction(
        self,
        local_id: int,
        *,
        meter_serial: str,
        public_key_hex: str,
        started_at: str,
        meter_start_wh: int,
        begin_ocmf: str,
        begin_fields: str,
        messages: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        """The signed Begin of a transaction opened earlier, and its messages."""
        check_timestamp("started_at", started_at)
        check_json_text("begin_fields", begin_fields)

        def write(conn: sqlite3.Connection) -> None:
            row = self._open_row(conn, local_id)
            if row[1] is not None:
                raise StoreError(f"session {local_id} already has its signed begin")
            if row[3] is not None:
                raise StoreError(f"session {local_id} was stopped before it began")
            conn.execute(
                "UPDATE transactions SET meter_serial = ?, public_key_hex = ?, started_at = ?,"
                " meter_start_wh = ?, begin_ocmf = ?, begin_fields = ? WHERE local_id = ?",
                (
                    meter_serial,
                    public_key_hex,
                    started_at,
                    meter_start_wh,
                    begin_ocmf,
                    begin_fields,
                    local_id,
                ),
            )
            append_messages(conn, messages, local_id, utc_now())

        self._write(write)

    def close_transaction(
        self,
        local_id: int,
        *,
        closed_at: str,
        stop_reason: str,
        stop_id_tag: str | None,
        messages: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        """Close a transaction whose charging already ended (its stop reason is kept) or that
        never began charging (nothing signed, `stop_reason` recorded)."""
        check_timestamp("closed_at", closed_at)

        def write(conn: sqlite3.Connection) -> None:
            row = self._open_row(conn, local_id)
            if row[1] is not None and row[2] is None:
                raise StoreError(f"session {local_id} is charging: end it before closing it")
            if row[3] is None:
                conn.execute(
                    "UPDATE transactions SET stop_reason = ?, stop_id_tag = ?, closed_at = ?"
                    " WHERE local_id = ?",
                    (stop_reason, stop_id_tag, closed_at, local_id),
                )
            else:
                conn.execute(
                    "UPDATE transactions SET closed_at = ? WHERE local_id = ?",
                    (closed_at, local_id),
                )
            append_messages(conn, messages, local_id, utc_now())

        self._write(write)

    def end_transaction(
        self,
        local_id: int,
        *,
        stopped_at: str,
        meter_stop_wh: int,
        end_ocmf: str | None,
        end_fields: str | None,
        stop_reason: str,
        stop_id_tag: str | None,
        unsigned_end_reason: str | None,
        messages: Sequence[tuple[str, dict[str, Any]]],
        close: bool = True,
    ) -> None:
        """Record a session's end and its messages in one transaction. A session ends once.
        With `close` false the transaction stays open after its charging ended (its stop
        point is not reached yet); `close_transaction` closes it later."""
        check_timestamp("stopped_at", stopped_at)
        if (end_ocmf is None) != (end_fields is None):
            raise StoreError(
                f"session {local_id}: end_ocmf and end_fields go together (both or neither)"
            )
        if end_fields is not None:
            check_json_text("end_fields", end_fields)

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT stopped_at, begin_ocmf, closed_at FROM transactions WHERE local_id = ?",
                (local_id,),
            ).fetchone()
            if row is None:
                raise StoreError(f"session {local_id} does not exist")
            if row[0] is not None:
                raise StoreError(f"session {local_id} was already ended at {row[0]}")
            if row[2] is not None:
                raise StoreError(f"session {local_id} was already closed at {row[2]}")
            if row[1] is None:
                raise StoreError(f"session {local_id} never began: close it instead")
            conn.execute(
                "UPDATE transactions SET stopped_at = ?, meter_stop_wh = ?, end_ocmf = ?,"
                " end_fields = ?, stop_reason = ?, stop_id_tag = ?, unsigned_end_reason = ?,"
                " closed_at = ? WHERE local_id = ? AND stopped_at IS NULL",
                (
                    stopped_at,
                    meter_stop_wh,
                    end_ocmf,
                    end_fields,
                    stop_reason,
                    stop_id_tag,
                    unsigned_end_reason,
                    stopped_at if close else None,
                    local_id,
                ),
            )
            append_messages(conn, messages, local_id, utc_now())

        self._write(write)

    def set_csms_transaction_id(self, local_id: int, transaction_id: int) -> None:
        def write(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE transactions SET csms_transaction_id = ? WHERE local_id = ?",
                (transaction_id, local_id),
            )
            if cur.rowcount != 1:
                raise StoreError(f"session {local_id} does not exist")

        self._write(write)


class AsyncSessions(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: Sessions

    async def start_transaction(
        self,
        *,
        connector_id: int,
        evse_id: str,
        id_tag: str,
        meter_serial: str,
        public_key_hex: str,
        started_at: str,
        meter_start_wh: int,
        begin_ocmf: str,
        begin_fields: str,
        messages: Sequence[tuple[str, dict[str, Any]]],
    ) -> int:
        return await self._run(
            self._store.start_transaction,
            connector_id=connector_id,
            evse_id=evse_id,
            id_tag=id_tag,
            meter_serial=meter_serial,
            public_key_hex=public_key_hex,
            started_at=started_at,
            meter_start_wh=meter_start_wh,
            begin_ocmf=begin_ocmf,
            begin_fields=begin_fields,
            messages=messages,
        )

    async def end_transaction(
        self,
        local_id: int,
        *,
        stopped_at: str,
        meter_stop_wh: int,
        end_ocmf: str | None,
        end_fields: str | None,
        stop_reason: str,
        stop_id_tag: str | None,
        unsigned_end_reason: str | None,
        messages: Sequence[tuple[str, dict[str, Any]]],
        close: bool = True,
    ) -> None:
        await self._run(
            self._store.end_transaction,
            local_id,
            stopped_at=stopped_at,
            meter_stop_wh=meter_stop_wh,
            end_ocmf=end_ocmf,
            end_fields=end_fields,
            stop_reason=stop_reason,
            stop_id_tag=stop_id_tag,
            unsigned_end_reason=unsigned_end_reason,
            messages=messages,
            close=close,
        )

    async def open_transaction(
        self,
        *,
        connector_id: int,
        evse_id: str,
        id_tag: str,
        opened_at: str,
        messages: Sequence[tuple[str, dict[str, Any]]],
    ) -> int:
        return await self._run(
            self._store.open_transaction,
            connector_id=connector_id,
            evse_id=evse_id,
            id_tag=id_tag,
            opened_at=opened_at,
            messages=messages,
        )

    async def authorize_transaction(
        self, local_id: int, id_tag: str, messages: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        await self._run(self._store.authorize_transaction, local_id, id_tag, messages)

    async def begin_transaction(
        self,
        local_id: int,
        *,
        meter_serial: str,
        public_key_hex: str,
        started_at: str,
        meter_start_wh: int,
        begin_ocmf: str,
        begin_fields: str,
        messages: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        await self._run(
            self._store.begin_transaction,
            local_id,
            meter_serial=meter_serial,
            public_key_hex=public_key_hex,
            started_at=started_at,
            meter_start_wh=meter_start_wh,
            begin_ocmf=begin_ocmf,
            begin_fields=begin_fields,
            messages=messages,
        )

    async def close_transaction(
        self,
        local_id: int,
        *,
        closed_at: str,
        stop_reason: str,
        stop_id_tag: str | None,
        messages: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        await self._run(
            self._store.close_transaction,
            local_id,
            closed_at=closed_at,
            stop_reason=stop_reason,
            stop_id_tag=stop_id_tag,
            messages=messages,
        )

    async def set_csms_transaction_id(self, local_id: int, transaction_id: int) -> None:
        await self._run(self._store.set_csms_transaction_id, local_id, transaction_id)
