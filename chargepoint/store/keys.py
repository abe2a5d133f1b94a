"""The meter keys pinned per connector, with the history of the keys they replaced."""

from __future__ import annotations

import sqlite3
from typing import Any

from chargepoint.store.connection import StoreBase
from chargepoint.store.rows import MeterKeyRow
from chargepoint.store.values import utc_now
from chargepoint.store.worker import AsyncStoreBase


class MeterKeys(StoreBase):
    """The ``meter_keys`` table."""

    def pin_meter_key(
        self, connector_id: int, meter_serial: str, public_key_hex: str, how: str
    ) -> MeterKeyRow:
        """Make `public_key_hex` the connector's pinned key; the one before is kept as
        replaced (history). Pinning the current key again changes nothing."""

        def write(conn: sqlite3.Connection) -> None:
            current = conn.execute(
                "SELECT public_key_hex FROM meter_keys WHERE connector_id = ?"
                " AND replaced_at IS NULL",
                (connector_id,),
            ).fetchone()
            if current is not None and current[0] == public_key_hex:
                return
            now = utc_now()
            conn.execute(
                "UPDATE meter_keys SET replaced_at = ? WHERE connector_id = ?"
                " AND replaced_at IS NULL",
                (now, connector_id),
            )
            conn.execute(
                "INSERT INTO meter_keys (connector_id, meter_serial, public_key_hex, pinned_at,"
                " how) VALUES (?, ?, ?, ?, ?)",
                (connector_id, meter_serial, public_key_hex, now, how),
            )

        self._write(write)
        history = self.meter_keys(connector_id)
        return history[-1]

    def meter_keys(self, connector_id: int | None = None) -> list[MeterKeyRow]:
        """Pinned keys, oldest first (per connector when given)."""

        def read(conn: sqlite3.Connection) -> list[MeterKeyRow]:
            sql = (
                "SELECT id, connector_id, meter_serial, public_key_hex, pinned_at, how,"
                " replaced_at FROM meter_keys"
            )
            args: list[Any] = []
            if connector_id is not None:
                sql += " WHERE connector_id = ?"
                args.append(connector_id)
            return [MeterKeyRow(*r) for r in conn.execute(sql + " ORDER BY id", args)]

        return self._read(read)


class AsyncMeterKeys(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: MeterKeys

    async def pin_meter_key(
        self, connector_id: int, meter_serial: str, public_key_hex: str, how: str
    ) -> MeterKeyRow:
        return await self._run(
            self._store.pin_meter_key, connector_id, meter_serial, public_key_hex, how
        )

    async def meter_keys(self, connector_id: int | None = None) -> list[MeterKeyRow]:
        return await self._run(self._store.meter_keys, connector_id)
