"""Reservations: every ReserveNow the station accepted, its state (Accepted while active;
Used, Cancelled, Expired or Removed once ended) and whether the CSMS was told about its end
(OCPP 2.0.1 ReservationStatusUpdate)."""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chargepoint.store.connection import StoreBase
from chargepoint.store.worker import AsyncStoreBase


@dataclass(frozen=True)
class ReservationRow:
    reservation_id: int
    connector_id: int | None  # None: any connector (1.6 connectorId 0, 2.0.1 no evseId)
    id_tag: str
    parent_id_tag: str | None
    token_type: str | None
    connector_type: str | None
    expiry: str
    state: str  # Accepted (active), Used, Cancelled, Expired, Removed
    created_at: str
    ended_at: str | None
    reported: bool  # False: an end the CSMS still has to hear about


_COLUMNS = (
    "reservation_id, connector_id, id_tag, parent_id_tag, token_type, connector_type,"
    " expiry, state, created_at, ended_at, reported"
)


def _row(r: sqlite3.Row | tuple[Any, ...]) -> ReservationRow:
    return ReservationRow(
        reservation_id=int(r[0]),
        connector_id=None if r[1] is None else int(r[1]),
        id_tag=str(r[2]),
        parent_id_tag=r[3],
        token_type=r[4],
        connector_type=r[5],
        expiry=str(r[6]),
        state=str(r[7]),
        created_at=str(r[8]),
        ended_at=r[9],
        reported=bool(r[10]),
    )


class Reservations(StoreBase):
    """The ``reservations`` table."""

    def reservation_put(self, row: ReservationRow) -> None:
        """Insert a reservation or replace the one with its id (a replaced ReserveNow, or
        its end)."""
        values = (*astuple(row)[:-1], int(row.reported))
        self._write(
            lambda conn: conn.execute(
                f"INSERT OR REPLACE INTO reservations ({_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        )

    def reservations_active(self) -> list[ReservationRow]:
        def read(conn: sqlite3.Connection) -> list[ReservationRow]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM reservations WHERE state = 'Accepted' ORDER BY expiry"
            ).fetchall()
            return [_row(r) for r in rows]

        return self._read(read)

    def reservations_unreported(self) -> list[ReservationRow]:
        def read(conn: sqlite3.Connection) -> list[ReservationRow]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM reservations WHERE reported = 0 ORDER BY ended_at"
            ).fetchall()
            return [_row(r) for r in rows]

        return self._read(read)

    def reservation_reported(self, reservation_id: int) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE reservations SET reported = 1 WHERE reservation_id = ?",
                (reservation_id,),
            )
        )

    def reservations_prune(self, keep_days: int) -> int:
        """Delete ended, reported reservations older than `keep_days`; how many."""
        cutoff = (datetime.now(UTC) - timedelta(days=keep_days)).isoformat(timespec="milliseconds")
        cutoff = cutoff.replace("+00:00", "Z")

        def write(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM reservations WHERE state <> 'Accepted' AND reported = 1"
                " AND ended_at < ?",
                (cutoff,),
            )
            return int(cursor.rowcount)

        return self._write(write)


class AsyncReservations(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: Reservations

    async def reservation_put(self, row: ReservationRow) -> None:
        await self._run(self._store.reservation_put, row)

    async def reservations_active(self) -> list[ReservationRow]:
        return await self._run(self._store.reservations_active)

    async def reservations_unreported(self) -> list[ReservationRow]:
        return await self._run(self._store.reservations_unreported)

    async def reservation_reported(self, reservation_id: int) -> None:
        await self._run(self._store.reservation_reported, reservation_id)

    async def reservations_prune(self, keep_days: int) -> int:
        return await self._run(self._store.reservations_prune, keep_days)
