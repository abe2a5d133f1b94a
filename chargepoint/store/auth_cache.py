"""The authorization cache: what the CSMS last said about each id tag."""

from __future__ import annotations

import sqlite3

from chargepoint.store.connection import StoreBase
from chargepoint.store.rows import CacheEntry
from chargepoint.store.values import utc_now
from chargepoint.store.worker import AsyncStoreBase


class AuthCache(StoreBase):
    """The ``auth_cache`` table."""

    def cache_put(
        self, id_tag: str, status: str, expiry: str | None, parent_id_tag: str | None
    ) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO auth_cache (id_tag, status, expiry, parent_id_tag, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id_tag) DO UPDATE SET"
                " status = excluded.status, expiry = excluded.expiry,"
                " parent_id_tag = excluded.parent_id_tag, updated_at = excluded.updated_at",
                (id_tag, status, expiry, parent_id_tag, utc_now()),
            )
        )

    def cache_get(self, id_tag: str) -> CacheEntry | None:
        def read(conn: sqlite3.Connection) -> CacheEntry | None:
            row = conn.execute(
                "SELECT id_tag, status, expiry, parent_id_tag, updated_at FROM auth_cache"
                " WHERE id_tag = ?",
                (id_tag,),
            ).fetchone()
            return CacheEntry(*row) if row is not None else None

        return self._read(read)

    def cache_clear(self) -> None:
        self._write(lambda conn: conn.execute("DELETE FROM auth_cache"))

    def cache_delete(self, id_tag: str) -> None:
        self._write(lambda conn: conn.execute("DELETE FROM auth_cache WHERE id_tag = ?", (id_tag,)))

    def cache_prune(self, max_entries: int) -> int:
        """Keep at most `max_entries`: drop entries that are not Accepted first, then the
        least recently written or used (LRU); how many were dropped."""

        def write(conn: sqlite3.Connection) -> int:
            (count,) = conn.execute("SELECT count(*) FROM auth_cache").fetchone()
            excess = int(count) - max_entries
            if excess <= 0:
                return 0
            conn.execute(
                "DELETE FROM auth_cache WHERE id_tag IN (SELECT id_tag FROM auth_cache"
                " ORDER BY status = 'Accepted', updated_at LIMIT ?)",
                (excess,),
            )
            return excess

        return self._write(write)


class AsyncAuthCache(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: AuthCache

    async def cache_put(
        self, id_tag: str, status: str, expiry: str | None, parent_id_tag: str | None
    ) -> None:
        await self._run(self._store.cache_put, id_tag, status, expiry, parent_id_tag)

    async def cache_get(self, id_tag: str) -> CacheEntry | None:
        return await self._run(self._store.cache_get, id_tag)

    async def cache_clear(self) -> None:
        await self._run(self._store.cache_clear)

    async def cache_delete(self, id_tag: str) -> None:
        await self._run(self._store.cache_delete, id_tag)

    async def cache_prune(self, max_entries: int) -> int:
        return await self._run(self._store.cache_prune, max_entries)
