"""Installed charging profiles (smart charging): the CSMS's and the charge controller's
external limits, kept across restarts and power loss.

A profile is stored as the core's own JSON form with the columns the rules select on. Putting
a profile and removing those it replaces is one SQL transaction: a power loss leaves the old
set or the new one, never half of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from chargepoint.store.connection import StoreBase
from chargepoint.store.values import utc_now
from chargepoint.store.worker import AsyncStoreBase

ProfileKey = tuple[str, int]  # (source, profile id)


@dataclass(frozen=True)
class ChargingProfileRow:
    source: str  # who set it: CSO (the CSMS), EMS, SO, Other (external limits)
    profile_id: int
    connector_id: int
    purpose: str
    stack_level: int
    transaction_local_id: int | None
    body: str  # the profile, chargepoint.core.charging.profiles.to_json
    installed_at: str = ""

    @property
    def key(self) -> ProfileKey:
        return (self.source, self.profile_id)


_COLUMNS = (
    "source, profile_id, connector_id, purpose, stack_level, transaction_local_id, body,"
    " installed_at"
)


def _delete(conn: sqlite3.Connection, keys: Sequence[ProfileKey]) -> int:
    removed = 0
    for source, profile_id in keys:
        cursor = conn.execute(
            "DELETE FROM charging_profiles WHERE source = ? AND profile_id = ?",
            (source, profile_id),
        )
        removed += cursor.rowcount
    return removed


class ChargingProfiles(StoreBase):
    """The ``charging_profiles`` table."""

    def charging_profiles(self) -> list[ChargingProfileRow]:
        def read(conn: sqlite3.Connection) -> list[ChargingProfileRow]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM charging_profiles ORDER BY connector_id, source,"
                " profile_id"
            ).fetchall()
            return [ChargingProfileRow(*row) for row in rows]

        return self._read(read)

    def put_charging_profile(
        self, row: ChargingProfileRow, replaces: Sequence[ProfileKey] = ()
    ) -> None:
        """Store `row` (replacing a row with its key) and remove `replaces`, at once."""

        def write(conn: sqlite3.Connection) -> None:
            _delete(conn, [*replaces, row.key])
            conn.execute(
                f"INSERT INTO charging_profiles ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.source,
                    row.profile_id,
                    row.connector_id,
                    row.purpose,
                    row.stack_level,
                    row.transaction_local_id,
                    row.body,
                    row.installed_at or utc_now(),
                ),
            )

        self._write(write)

    def delete_charging_profiles(self, keys: Sequence[ProfileKey]) -> int:
        """Remove the profiles with these keys; how many there were."""
        return self._write(lambda conn: _delete(conn, keys))


class AsyncChargingProfiles(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: ChargingProfiles

    async def charging_profiles(self) -> list[ChargingProfileRow]:
        return await self._run(self._store.charging_profiles)

    async def put_charging_profile(
        self, row: ChargingProfileRow, replaces: Sequence[ProfileKey] = ()
    ) -> None:
        await self._run(self._store.put_charging_profile, row, list(replaces))

    async def delete_charging_profiles(self, keys: Sequence[ProfileKey]) -> int:
        return await self._run(self._store.delete_charging_profiles, list(keys))
