"""Runtime settings: text values by key, kept across restarts."""

from __future__ import annotations

import sqlite3

from chargepoint.store.connection import StoreBase
from chargepoint.store.values import utc_now
from chargepoint.store.worker import AsyncStoreBase


class Settings(StoreBase):
    """The ``settings`` table."""

    def get_setting(self, key: str) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            return str(row[0]) if row is not None else None

        return self._read(read)

    def set_setting(self, key: str, value: str) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, value, utc_now()),
            )
        )

    def settings(self, prefix: str = "") -> dict[str, str]:
        """Every setting whose key starts with `prefix`, by key."""

        def read(conn: sqlite3.Connection) -> dict[str, str]:
            rows = conn.execute(
                "SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1"
                " ORDER BY key",
                (prefix,),
            ).fetchall()
            return {str(k): str(v) for k, v in rows}

        return self._read(read)


class AsyncSettings(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: Settings

    async def get_setting(self, key: str) -> str | None:
        return await self._run(self._store.get_setting, key)

    async def set_setting(self, key: str, value: str) -> None:
        await self._run(self._store.set_setting, key, value)

    async def settings(self, prefix: str = "") -> dict[str, str]:
        return await self._run(self._store.settings, prefix)
