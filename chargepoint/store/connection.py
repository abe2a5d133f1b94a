"""The store's one connection: opening it, and running every read and write on it.

- The file runs in WAL mode with ``synchronous=FULL`` and foreign keys on: a commit is on
  disk (WAL synced) before the call returns.
- Every write is one SQL transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a power loss
  leaves either the old or the new state, never a part of a write.

:class:`StoreBase` is what every table family's part of :class:`~chargepoint.store.Store`
builds on: ``_write`` and ``_read`` run a function on the connection, under the lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from chargepoint.store import schema
from chargepoint.store.errors import StoreError, StoreFull, disk_full
from chargepoint.store.files import BUSY_TIMEOUT_S, create, probe, restrict_store_files, uri
from chargepoint.store.schema import apply_migrations
from chargepoint.store.wal import check_wal

log = logging.getLogger("chargepoint.store")

WAL_SIZE_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is truncated to after a checkpoint

MIN_SQLITE = (3, 24, 0)  # upsert

T = TypeVar("T")


def _open(path: Path, mode: str, failure: str) -> sqlite3.Connection:
    """A connection to the store file in URI `mode` ("rw", "ro"); StoreError saying `failure`."""
    try:
        return sqlite3.connect(
            uri(path, mode),
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_S,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: {failure}: {exc}") from exc


def _write_error(path: Path, what: str, exc: BaseException) -> StoreError:
    """The error a failed write raises: StoreFull when the disk is full (the caller keeps
    what it wanted to write), else StoreError."""
    if disk_full(exc):
        return StoreFull(f"{path}: {what}: the disk is full ({exc})")
    return StoreError(f"{path}: {what}: {exc}")


class StoreBase:
    """The connection every part of :class:`~chargepoint.store.Store` shares. Meant for one
    worker thread (see :class:`~chargepoint.store.AsyncStore`), but every call is serialised
    by a lock all the same."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        station_id: str,
        *,
        read_only: bool = False,
        migrate: bool = True,
    ) -> None:
        """Open the store at `path` for `station_id`, creating it when missing; `read_only`:
        open an existing store of the current schema for reading only (see open_read_only);
        not `migrate`: refuse a store of an older schema rather than migrate it."""
        if not station_id:
            raise StoreError("the station id must not be empty")
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old for the store "
                f"(needs {'.'.join(map(str, MIN_SQLITE))} or newer)"
            )
        self.path = Path(path)
        self.station_id = station_id
        self._lock = threading.RLock()
        if read_only:
            self._conn: sqlite3.Connection | None = self._connect_read_only(self.path, station_id)
            return
        version = self._prepare(self.path, station_id, current_only=not migrate)
        self._conn = self._connect(self.path, station_id, version)

    @classmethod
    def open(cls, path: str | os.PathLike[str], station_id: str) -> Self:
        return cls(path, station_id)

    @classmethod
    def open_read_only(cls, path: str | os.PathLike[str], station_id: str) -> Self:
        """Read a store another process (the daemon) writes, e.g. for the web page: nothing
        is created or migrated, and every write fails with StoreError (WAL lets it read
        while the daemon writes)."""
        return cls(path, station_id, read_only=True)

    @classmethod
    def open_without_migrating(cls, path: str | os.PathLike[str], station_id: str) -> Self:
        """An existing store of the current schema, for a command that reads it while the
        daemon is stopped (`status`): a store of an older schema is left to the daemon to
        migrate at its start (StoreError saying so). Unlike open_read_only it leaves no
        side files behind when it closes."""
        return cls(path, station_id, migrate=False)

    # ---- opening ----

    @staticmethod
    def _prepare(path: Path, station_id: str, *, current_only: bool = False) -> int:
        if not (path.exists() or path.is_symlink()) and create(path, station_id):
            return schema.SCHEMA_VERSION
        restrict_store_files(path)  # a store an older version left readable by others
        check_wal(path)  # before SQLite reads the WAL and silently drops what follows damage
        return probe(path, station_id, current_only=current_only)

    @staticmethod
    def _connect(path: Path, station_id: str, version: int) -> sqlite3.Connection:
        conn = _open(path, "rw", "cannot open the store")
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot switch the store to WAL (journal mode {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA trusted_schema = OFF")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            if version < schema.SCHEMA_VERSION:
                StoreBase._migrate(conn, path, station_id)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{path}: cannot prepare the store: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _connect_read_only(path: Path, station_id: str) -> sqlite3.Connection:
        if not (path.exists() or path.is_symlink()):
            raise StoreError(f"no store at {path} (the daemon creates it when it first starts)")
        probe(path, station_id, current_only=True)
        conn = _open(path, "ro", "cannot open the store read-only")
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA trusted_schema = OFF")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{path}: cannot prepare the store for reading: {exc}") from exc
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection, path: Path, station_id: str) -> None:
        # A migration may rebuild a table others reference: foreign keys are off while the
        # migrations run (it cannot change inside a transaction) and checked before COMMIT.
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            StoreBase._migrate_locked(conn, path, station_id)
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    @staticmethod
    def _migrate_locked(conn: sqlite3.Connection, path: Path, station_id: str) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            row = conn.execute("SELECT value FROM meta WHERE key = 'station_id'").fetchone()
            if row is None or row[0] != station_id:
                raise StoreError(f"{path} changed while it was being opened; refusing to use it")
            if version > schema.SCHEMA_VERSION:
                raise StoreError(
                    f"{path} has schema version {version}, newer than this software knows "
                    f"({schema.SCHEMA_VERSION}); refusing to use it (update the software)"
                )
            if version < schema.SCHEMA_VERSION:
                apply_migrations(conn, version)
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(
                        f"{path}: migration left {len(broken)} dangling references; "
                        "nothing was changed"
                    )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if version < schema.SCHEMA_VERSION:
            log.info("migrated store %s from schema %d to %d", path, version, schema.SCHEMA_VERSION)

    # ---- plumbing ----

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._conn

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` as one SQL transaction: all of it is committed, or none of it."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _write_error(self.path, "cannot begin a write", exc) from exc
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback(conn)
                if isinstance(exc, sqlite3.Error) or disk_full(exc):
                    raise _write_error(self.path, "write failed, nothing stored", exc) from exc
                raise
            return result

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:  # pragma: no cover - the connection is broken
            log.error("%s: rollback failed: %s", self.path, exc)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            conn = self._connection()
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: read failed: {exc}") from exc

    # ---- lifecycle ----

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the file). Idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise StoreError(f"{self.path}: close failed: {exc}") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
