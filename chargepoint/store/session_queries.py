"""Reading sessions back: one, the open ones, the latest, or all of a period in batches."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from chargepoint.store.connection import StoreBase
from chargepoint.store.errors import StoreError
from chargepoint.store.rows import TX_COLUMNS, TransactionRow, tx_row
from chargepoint.store.worker import AsyncStoreBase


def _filters(
    since: str | None,
    until: str | None,
    connector_id: int | None,
    column: str = "opened_at",
) -> tuple[list[str], list[Any]]:
    """WHERE terms and their arguments: `column` in [since, until) as text, one connector."""
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append(f"{column} >= ?")
        args.append(since)
    if until is not None:
        where.append(f"{column} < ?")
        args.append(until)
    if connector_id is not None:
        where.append("connector_id = ?")
        args.append(connector_id)
    return where, args


def _select(where: list[str]) -> str:
    sql = f"SELECT {TX_COLUMNS} FROM transactions"
    return sql + " WHERE " + " AND ".join(where) if where else sql


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise StoreError(f"limit must not be negative ({limit})")


class SessionQueries(StoreBase):
    """The ``transactions`` table, read."""

    def transaction(self, local_id: int) -> TransactionRow | None:
        def read(conn: sqlite3.Connection) -> TransactionRow | None:
            row = conn.execute(
                f"SELECT {TX_COLUMNS} FROM transactions WHERE local_id = ?", (local_id,)
            ).fetchone()
            return tx_row(row) if row is not None else None

        return self._read(read)

    def open_transactions(self) -> list[TransactionRow]:
        """Sessions not ended yet, oldest first."""

        def read(conn: sqlite3.Connection) -> list[TransactionRow]:
            rows = conn.execute(
                f"SELECT {TX_COLUMNS} FROM transactions WHERE closed_at IS NULL ORDER BY local_id"
            ).fetchall()
            return [tx_row(r) for r in rows]

        return self._read(read)

    def transactions(
        self, limit: int = 100, since: str | None = None, connector_id: int | None = None
    ) -> list[TransactionRow]:
        """Sessions, newest first (by local id, which follows the order they started in).

        `since` compares with `started_at` as text: a date ("2026-11-21") or a full UTC
        timestamp both work.
        """
        _check_limit(limit)
        where, args = _filters(since, None, connector_id, column="started_at")
        sql = _select(where) + " ORDER BY local_id DESC LIMIT ?"
        args.append(limit)

        def read(conn: sqlite3.Connection) -> list[TransactionRow]:
            return [tx_row(r) for r in conn.execute(sql, args).fetchall()]

        return self._read(read)

    def transactions_page(
        self,
        limit: int,
        *,
        before: int | None = None,
        after: int | None = None,
        since: str | None = None,
        until: str | None = None,
        connector_id: int | None = None,
        id_tag: str | None = None,
    ) -> list[TransactionRow]:
        """One page of a session list, newest first (for the web page): at most `limit`
        sessions with local ids below `before` (the next older page) or, given `after`, the
        `limit` sessions just above it (the newer page). `since`/`until` compare with
        `opened_at` as text; `id_tag` matches any part of the id tag, ignoring case."""
        _check_limit(limit)
        where: list[str] = []
        args: list[Any] = []
        if before is not None:
            where.append("local_id < ?")
            args.append(before)
        if after is not None:
            where.append("local_id > ?")
            args.append(after)
        period, period_args = _filters(since, until, connector_id)
        where += period
        args += period_args
        if id_tag:
            where.append("instr(lower(id_tag), lower(?)) > 0")
            args.append(id_tag)
        newer = after is not None and before is None
        sql = _select(where) + f" ORDER BY local_id {'ASC' if newer else 'DESC'} LIMIT ?"
        args.append(limit)

        def read(conn: sqlite3.Connection) -> list[TransactionRow]:
            rows = [tx_row(r) for r in conn.execute(sql, args).fetchall()]
            return rows[::-1] if newer else rows

        return self._read(read)

    def transactions_between(
        self,
        since: str | None = None,
        until: str | None = None,
        connector_id: int | None = None,
        local_ids: Sequence[int] | None = None,
        batch: int = 1000,
    ) -> Iterator[TransactionRow]:
        """Transactions oldest first, read in batches (exports of many sessions stay small
        in memory). `since`/`until` compare with `opened_at` as text."""
        period, args = _filters(since, until, connector_id)
        where = ["local_id > ?", *period]
        if local_ids is not None:
            ids = sorted(set(local_ids))
            where.append(f"local_id IN ({', '.join('?' * len(ids))})")
            args.extend(ids)
        sql = _select(where) + " ORDER BY local_id LIMIT ?"
        last = 0

        def read_after(conn: sqlite3.Connection) -> list[Any]:
            return list(conn.execute(sql, [last, *args, batch]).fetchall())

        while True:
            rows = self._read(read_after)
            for row in rows:
                yield tx_row(row)
            if len(rows) < batch:
                return
            last = int(rows[-1][0])


class AsyncSessionQueries(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: SessionQueries

    async def transaction(self, local_id: int) -> TransactionRow | None:
        return await self._run(self._store.transaction, local_id)

    async def open_transactions(self) -> list[TransactionRow]:
        return await self._run(self._store.open_transactions)

    async def transactions(
        self, limit: int = 100, since: str | None = None, connector_id: int | None = None
    ) -> list[TransactionRow]:
        return await self._run(self._store.transactions, limit, since, connector_id)

    async def transactions_page(
        self,
        limit: int,
        *,
        before: int | None = None,
        after: int | None = None,
        since: str | None = None,
        until: str | None = None,
        connector_id: int | None = None,
        id_tag: str | None = None,
    ) -> list[TransactionRow]:
        return await self._run(
            self._store.transactions_page,
            limit,
            before=before,
            after=after,
            since=since,
            until=until,
            connector_id=connector_id,
            id_tag=id_tag,
        )

    async def transactions_between(
        self,
        since: str | None = None,
        until: str | None = None,
        connector_id: int | None = None,
        local_ids: Sequence[int] | None = None,
        batch: int = 1000,
    ) -> list[TransactionRow]:
        """All of them at once (the synchronous Store streams them)."""

        def collect() -> list[TransactionRow]:
            return list(
                self._store.transactions_between(since, until, connector_id, local_ids, batch)
            )

        return await self._run(collect)
