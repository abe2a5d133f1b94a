"""The Local Authorization List: the id tokens the CSMS sent with SendLocalList, and the
list's version.

A Full update replaces every row and the version in one SQL transaction; a Differential
writes only the rows it names (and the version), so a change of one entry never rewrites the
list. Tokens are keyed by the caller's comparison key (``key``: case-folded id).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import astuple, dataclass

from chargepoint.store.connection import StoreBase
from chargepoint.store.values import utc_now
from chargepoint.store.worker import AsyncStoreBase


@dataclass(frozen=True)
class LocalListRow:
    key: str  # how the token is looked up (case-folded)
    id_tag: str  # as the CSMS sent it
    status: str
    expiry: str | None
    parent_id_tag: str | None
    token_type: str | None  # 2.0.1 IdTokenType, None under 1.6


_COLUMNS = "id_key, id_tag, status, expiry, parent_id_tag, token_type"
_INSERT = f"INSERT INTO local_auth_list ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
_UPSERT = (
    f"{_INSERT} ON CONFLICT (id_key) DO UPDATE SET id_tag = excluded.id_tag,"
    " status = excluded.status, expiry = excluded.expiry,"
    " parent_id_tag = excluded.parent_id_tag, token_type = excluded.token_type"
)


def _set_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(
        "INSERT INTO local_auth_list_version (id, version, updated_at) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
        " updated_at = excluded.updated_at",
        (version, utc_now()),
    )


class LocalAuthList(StoreBase):
    """The ``local_auth_list`` and ``local_auth_list_version`` tables."""

    def local_list_load(self) -> tuple[int, list[LocalListRow]]:
        """The list's version (0 when never set) and every entry."""

        def read(conn: sqlite3.Connection) -> tuple[int, list[LocalListRow]]:
            row = conn.execute("SELECT version FROM local_auth_list_version").fetchone()
            rows = conn.execute(f"SELECT {_COLUMNS} FROM local_auth_list").fetchall()
            return (int(row[0]) if row is not None else 0), [LocalListRow(*r) for r in rows]

        return self._read(read)

    def local_list_replace(self, version: int, rows: Sequence[LocalListRow]) -> None:
        """A Full update: the list becomes `rows`, with `version`."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM local_auth_list")
            conn.executemany(_INSERT, (astuple(r) for r in rows))
            _set_version(conn, version)

        self._write(write)

    def local_list_update(
        self, version: int, upserts: Sequence[LocalListRow], deletes: Sequence[str]
    ) -> None:
        """A Differential update: these rows added or changed, these keys removed."""

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "DELETE FROM local_auth_list WHERE id_key = ?", ((k,) for k in deletes)
            )
            conn.executemany(_UPSERT, (astuple(r) for r in upserts))
            _set_version(conn, version)

        self._write(write)

    def local_list_size(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT count(*) FROM local_auth_list").fetchone()[0])

        return self._read(read)


class AsyncLocalAuthList(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: LocalAuthList

    async def local_list_load(self) -> tuple[int, list[LocalListRow]]:
        return await self._run(self._store.local_list_load)

    async def local_list_replace(self, version: int, rows: Sequence[LocalListRow]) -> None:
        await self._run(self._store.local_list_replace, version, rows)

    async def local_list_update(
        self, version: int, upserts: Sequence[LocalListRow], deletes: Sequence[str]
    ) -> None:
        await self._run(self._store.local_list_update, version, upserts, deletes)

    async def local_list_size(self) -> int:
        return await self._run(self._store.local_list_size)
