"""The daemon's durable state: one SQLite file, `<state_dir>/chargepoint.sqlite`.

What it keeps: charging sessions with their signed Begin and End records, the outbox of
transaction-related messages waiting for the CSMS, runtime settings and the authorization
cache.

Durability rules:

- The file runs in WAL mode with ``synchronous=FULL`` and foreign keys on: a commit is on
  disk (WAL synced) before the call returns.
- Every write is one SQL transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a power loss
  leaves either the old or the new state, never a part of a write.
- Rows of signed data are never rewritten: triggers in the schema refuse any UPDATE of a
  session's begin columns, of its end columns once it has ended, and of an outbox message's
  content. (Deleting old sessions, the retention pruning, is left to a later schema version.)
- Opening never damages what is there: a file that is not SQLite, is corrupt, belongs to
  another application or to another station raises :class:`StoreError` and is left exactly
  as it was (it is inspected through its header and a read-only connection first). A new
  file is built under a temporary name and linked into place only when complete.
- The schema carries its version in ``PRAGMA user_version``; an older file is migrated
  forward in one transaction, a newer one is refused.

:class:`Store` is synchronous and owns one connection; :class:`AsyncStore` runs every call on
one dedicated worker thread, so calls keep their order and the event loop never waits for an
fsync.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AsyncStore",
    "CacheEntry",
    "OutboxMessage",
    "Store",
    "StoreError",
    "TransactionRow",
    "utc_now",
]

log = logging.getLogger("chargepoint.store")

# `PRAGMA application_id` of every chargepoint store: "EVCP" in ASCII.
APPLICATION_ID = 0x45564350

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100
APPLICATION_ID_OFFSET = 68
BUSY_TIMEOUT_S = 10.0
WAL_SIZE_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is truncated to after a checkpoint

MIN_SQLITE = (3, 24, 0)  # upsert
OUTBOX_STATUSES = ("pending", "sent", "failed")

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")

P = ParamSpec("P")
T = TypeVar("T")


class StoreError(Exception):
    """The store cannot be opened, or a write was refused; the message is one line."""


def utc_now() -> str:
    """The current time in ISO 8601 UTC with milliseconds: ``2026-11-21T10:00:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionRow:
    """One transaction. ``begin_*`` and ``end_*`` are the signed records, byte for byte.

    A transaction opens (``opened_at``) when its start point is reached and closes
    (``closed_at``) at its stop point. Its signed charging period lies within: the Begin
    (``started_at`` ... ``begin_fields``) is None until the meter signed the turn-on (and stays
    None for a transaction closed before charging began); ``stopped_at`` and the End follow at
    the turn-off. Under OCPP 1.6 both bounds coincide with the signed period.
    """

    local_id: int
    connector_id: int
    evse_id: str
    id_tag: str  # "" until known (a transaction opened when the EV plugged in)
    meter_serial: str | None
    public_key_hex: str | None
    started_at: str | None
    meter_start_wh: int | None
    begin_ocmf: str | None
    begin_fields: str | None
    csms_transaction_id: int | None
    stopped_at: str | None
    meter_stop_wh: int | None
    end_ocmf: str | None
    end_fields: str | None
    stop_reason: str | None
    stop_id_tag: str | None
    # Set when the session had to end without a signed end value: why.
    unsigned_end_reason: str | None
    opened_at: str
    closed_at: str | None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def signed(self) -> bool:
        """The meter signed this transaction's Begin."""
        return self.begin_ocmf is not None

    @property
    def charging(self) -> bool:
        """Begun and not yet ended: the load may be released."""
        return self.begin_ocmf is not None and self.stopped_at is None


@dataclass(frozen=True)
class OutboxMessage:
    """A message for the CSMS, kept from before its first attempt until long after it is sent."""

    seq: int
    kind: str
    local_tx_id: int | None
    data: dict[str, Any]
    created_at: str
    attempts: int
    status: str  # "pending" | "sent" | "failed"
    last_error: str | None
    sent_at: str | None
    response: dict[str, Any] | None = None  # the CSMS's answer, once sent


@dataclass(frozen=True)
class ProofRow:
    """What a session's signed records prove (see meter.proof.session)."""

    local_id: int
    status: str  # verified | failed | unsigned
    reason: str
    energy_wh: int | None
    checked_at: str


@dataclass(frozen=True)
class MeterKeyRow:
    """A meter key pinned for a connector; `replaced_at` is set when another meter took over."""

    id: int
    connector_id: int
    meter_serial: str
    public_key_hex: str
    pinned_at: str
    how: str  # "first contact", "configured", "replaced by the operator"
    replaced_at: str | None


@dataclass(frozen=True)
class CacheEntry:
    """What the CSMS last said about an id tag."""

    id_tag: str
    status: str
    expiry: str | None
    parent_id_tag: str | None
    updated_at: str


_TX_COLUMNS = ", ".join(f.name for f in fields(TransactionRow))
_OUTBOX_COLUMNS = (
    "seq, kind, local_tx_id, data, created_at, attempts, status, last_error, sent_at, response"
)


def _tx_row(row: tuple[Any, ...]) -> TransactionRow:
    return TransactionRow(*row)


def _outbox_row(row: tuple[Any, ...]) -> OutboxMessage:
    seq, kind, local_tx_id, data, created_at, attempts, status, last_error, sent_at, resp = row
    return OutboxMessage(
        seq=seq,
        kind=kind,
        local_tx_id=local_tx_id,
        data=json.loads(data),
        created_at=created_at,
        attempts=attempts,
        status=status,
        last_error=last_error,
        sent_at=sent_at,
        response=json.loads(resp) if resp is not None else None,
    )


def _json(what: str, data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc


def _check_json_text(what: str, text: str) -> None:
    try:
        json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{what} is not valid JSON text: {exc}") from exc


def _check_timestamp(what: str, value: str) -> None:
    if not _TIMESTAMP.match(value):
        raise StoreError(f"{what} {value!r} is not ISO 8601 UTC ending in Z")


# ---- schema ------------------------------------------------------------------------------

# A migration brings the schema from version n-1 to n; it runs inside the caller's
# transaction and must not commit. Never edit a released migration: append a new one.
Migration = Callable[[sqlite3.Connection], None]

_SCHEMA_V1 = (
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE transactions (
        local_id INTEGER PRIMARY KEY AUTOINCREMENT,
        connector_id INTEGER NOT NULL,
        evse_id TEXT NOT NULL,
        id_tag TEXT NOT NULL,
        meter_serial TEXT NOT NULL,
        public_key_hex TEXT NOT NULL,
        started_at TEXT NOT NULL,
        meter_start_wh INTEGER NOT NULL,
        begin_ocmf TEXT NOT NULL,
        begin_fields TEXT NOT NULL,
        csms_transaction_id INTEGER,
        stopped_at TEXT,
        meter_stop_wh INTEGER,
        end_ocmf TEXT,
        end_fields TEXT,
        stop_reason TEXT,
        stop_id_tag TEXT,
        unsigned_end_reason TEXT,
        CHECK (stopped_at IS NOT NULL OR (meter_stop_wh IS NULL AND end_ocmf IS NULL
               AND end_fields IS NULL AND stop_reason IS NULL AND stop_id_tag IS NULL
               AND unsigned_end_reason IS NULL)),
        CHECK (stopped_at IS NULL OR (meter_stop_wh IS NOT NULL AND stop_reason IS NOT NULL)),
        CHECK ((end_ocmf IS NULL) = (end_fields IS NULL))
    )
    """,
    # At most one open session per connector.
    """
    CREATE UNIQUE INDEX transactions_open_per_connector
        ON transactions (connector_id) WHERE stopped_at IS NULL
    """,
    "CREATE INDEX transactions_by_start ON transactions (started_at)",
    "CREATE INDEX transactions_by_connector ON transactions (connector_id, local_id)",
    """
    CREATE TRIGGER transactions_begin_never_rewritten
    BEFORE UPDATE OF local_id, connector_id, evse_id, id_tag, meter_serial, public_key_hex,
        started_at, meter_start_wh, begin_ocmf, begin_fields ON transactions
    BEGIN
        SELECT RAISE(ABORT, 'the begin of a session is never rewritten');
    END
    """,
    """
    CREATE TRIGGER transactions_end_written_once
    BEFORE UPDATE OF stopped_at, meter_stop_wh, end_ocmf, end_fields, stop_reason, stop_id_tag,
        unsigned_end_reason ON transactions
    WHEN OLD.stopped_at IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'the end of a session is written once');
    END
    """,
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind <> ''),
        local_tx_id INTEGER REFERENCES transactions (local_id),
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sent', 'failed')),
        last_error TEXT,
        sent_at TEXT,
        response TEXT
    )
    """,
    "CREATE INDEX outbox_pending ON outbox (seq) WHERE status = 'pending'",
    "CREATE INDEX outbox_failed ON outbox (seq) WHERE status = 'failed'",
    "CREATE INDEX outbox_by_transaction ON outbox (local_tx_id)",
    """
    CREATE TRIGGER outbox_content_never_rewritten
    BEFORE UPDATE OF seq, kind, local_tx_id, data, created_at ON outbox
    BEGIN
        SELECT RAISE(ABORT, 'an outbox message is never rewritten');
    END
    """,
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE auth_cache (
        id_tag TEXT PRIMARY KEY NOT NULL,
        status TEXT NOT NULL,
        expiry TEXT,
        parent_id_tag TEXT,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V1:
        conn.execute(statement)


# Version 2: a transaction may open before its signed Begin (OCPP 2.0.1 TxStartPoint
# EVConnected/Authorized) and close after its signed End (TxStopPoint EVConnected): the begin
# columns become optional (written once), `opened_at` and `closed_at` bound the transaction,
# the id tag may be filled in once when it arrives after the opening.
_TRANSACTIONS_V2 = """
    CREATE TABLE transactions_v2 (
        local_id INTEGER PRIMARY KEY AUTOINCREMENT,
        connector_id INTEGER NOT NULL,
        evse_id TEXT NOT NULL,
        id_tag TEXT NOT NULL,
        meter_serial TEXT,
        public_key_hex TEXT,
        started_at TEXT,
        meter_start_wh INTEGER,
        begin_ocmf TEXT,
        begin_fields TEXT,
        csms_transaction_id INTEGER,
        stopped_at TEXT,
        meter_stop_wh INTEGER,
        end_ocmf TEXT,
        end_fields TEXT,
        stop_reason TEXT,
        stop_id_tag TEXT,
        unsigned_end_reason TEXT,
        opened_at TEXT NOT NULL,
        closed_at TEXT,
        CHECK ((begin_ocmf IS NULL) = (begin_fields IS NULL)
               AND (begin_ocmf IS NULL) = (started_at IS NULL)
               AND (begin_ocmf IS NULL) = (meter_start_wh IS NULL)
               AND (begin_ocmf IS NULL) = (meter_serial IS NULL)
               AND (begin_ocmf IS NULL) = (public_key_hex IS NULL)),
        CHECK (stopped_at IS NULL OR begin_ocmf IS NOT NULL),
        CHECK (stopped_at IS NOT NULL OR (meter_stop_wh IS NULL AND end_ocmf IS NULL
               AND end_fields IS NULL AND unsigned_end_reason IS NULL)),
        CHECK (stopped_at IS NULL OR (meter_stop_wh IS NOT NULL AND stop_reason IS NOT NULL)),
        CHECK ((end_ocmf IS NULL) = (end_fields IS NULL)),
        CHECK (closed_at IS NULL OR stop_reason IS NOT NULL),
        CHECK (stop_reason IS NULL OR stopped_at IS NOT NULL OR closed_at IS NOT NULL)
    )
"""

_SCHEMA_V2_TRANSACTIONS = (
    """
    CREATE UNIQUE INDEX transactions_open_per_connector
        ON transactions (connector_id) WHERE closed_at IS NULL
    """,
    "CREATE INDEX transactions_by_start ON transactions (started_at)",
    "CREATE INDEX transactions_by_connector ON transactions (connector_id, local_id)",
    """
    CREATE TRIGGER transactions_identity_never_rewritten
    BEFORE UPDATE OF local_id, connector_id, evse_id, opened_at ON transactions
    BEGIN
        SELECT RAISE(ABORT, 'the identity of a transaction is never rewritten');
    END
    """,
    """
    CREATE TRIGGER transactions_id_tag_written_once
    BEFORE UPDATE OF id_tag ON transactions
    WHEN OLD.id_tag <> ''
    BEGIN
        SELECT RAISE(ABORT, 'the id tag of a transaction is written once');
    END
    """,
    """
    CREATE TRIGGER transactions_begin_never_rewritten
    BEFORE UPDATE OF meter_serial, public_key_hex, started_at, meter_start_wh, begin_ocmf,
        begin_fields ON transactions
    WHEN OLD.begin_ocmf IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'the begin of a session is never rewritten');
    END
    """,
    """
    CREATE TRIGGER transactions_end_written_once
    BEFORE UPDATE OF stopped_at, meter_stop_wh, end_ocmf, end_fields, unsigned_end_reason
        ON transactions
    WHEN OLD.stopped_at IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'the end of a session is written once');
    END
    """,
    """
    CREATE TRIGGER transactions_stop_reason_written_once
    BEFORE UPDATE OF stop_reason, stop_id_tag ON transactions
    WHEN OLD.stop_reason IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'the stop reason of a transaction is written once');
    END
    """,
    """
    CREATE TRIGGER transactions_closed_once
    BEFORE UPDATE OF closed_at ON transactions
    WHEN OLD.closed_at IS NOT NULL
    BEGIN
        SELECT RAISE(ABORT, 'a transaction is closed once');
    END
    """,
)


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    # Rebuilds the table (SQLite cannot relax NOT NULL): foreign keys are off during
    # migrations and checked before the commit (Store._migrate).
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'transactions'").fetchone()
    last_id = int(row[0]) if row is not None else 0
    conn.execute(_TRANSACTIONS_V2)
    conn.execute(
        "INSERT INTO transactions_v2 (local_id, connector_id, evse_id, id_tag, meter_serial,"
        " public_key_hex, started_at, meter_start_wh, begin_ocmf, begin_fields,"
        " csms_transaction_id, stopped_at, meter_stop_wh, end_ocmf, end_fields, stop_reason,"
        " stop_id_tag, unsigned_end_reason, opened_at, closed_at)"
        " SELECT local_id, connector_id, evse_id, id_tag, meter_serial, public_key_hex,"
        " started_at, meter_start_wh, begin_ocmf, begin_fields, csms_transaction_id,"
        " stopped_at, meter_stop_wh, end_ocmf, end_fields, stop_reason, stop_id_tag,"
        " unsigned_end_reason, started_at, stopped_at FROM transactions"
    )
    conn.execute("DROP TABLE transactions")
    conn.execute("ALTER TABLE transactions_v2 RENAME TO transactions")
    # local ids are never reused, not even those of sessions removed before the migration
    conn.execute(
        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'transactions'", (last_id,)
    )
    for statement in _SCHEMA_V2_TRANSACTIONS:
        conn.execute(statement)


# Version 3: what each session proves (its verification, derived from the records and kept
# beside them, never in place of them) and the history of the meter keys pinned per connector.
_SCHEMA_V3 = (
    """
    CREATE TABLE session_proofs (
        local_id INTEGER PRIMARY KEY NOT NULL REFERENCES transactions (local_id)
            ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('verified', 'failed', 'unsigned')),
        reason TEXT NOT NULL,
        energy_wh INTEGER,
        checked_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE meter_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        connector_id INTEGER NOT NULL,
        meter_serial TEXT NOT NULL,
        public_key_hex TEXT NOT NULL,
        pinned_at TEXT NOT NULL,
        how TEXT NOT NULL,
        replaced_at TEXT
    )
    """,
    """
    CREATE UNIQUE INDEX meter_keys_current ON meter_keys (connector_id)
        WHERE replaced_at IS NULL
    """,
    """
    CREATE TRIGGER meter_keys_never_rewritten
    BEFORE UPDATE OF connector_id, meter_serial, public_key_hex, pinned_at, how ON meter_keys
    BEGIN
        SELECT RAISE(ABORT, 'a pinned meter key is never rewritten');
    END
    """,
)


def _migrate_to_3(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V3:
        conn.execute(statement)


# MIGRATIONS[n - 1] brings a file from version n-1 to n; a new file runs all of them.
MIGRATIONS: tuple[Migration, ...] = (_migrate_to_1, _migrate_to_2, _migrate_to_3)
SCHEMA_VERSION = len(MIGRATIONS)


def _apply_migrations(conn: sqlite3.Connection, from_version: int) -> None:
    """Inside an open transaction: run every migration after `from_version`."""
    target = SCHEMA_VERSION
    for version in range(from_version + 1, target + 1):
        MIGRATIONS[version - 1](conn)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (f"schema_{version}_at", utc_now()),
        )
    conn.execute(f"PRAGMA user_version = {int(target)}")


# ---- opening -----------------------------------------------------------------------------


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(HEADER_SIZE)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the store: {exc.strerror or exc}") from exc


def _check_header(path: Path, header: bytes) -> None:
    """Refuse what is not one of our SQLite files, before SQLite touches it."""
    if not header:
        raise StoreError(
            f"{path} is empty (0 bytes), not a chargepoint store; "
            "refusing to use it (move it away to start a new store)"
        )
    if len(header) < HEADER_SIZE or not header.startswith(SQLITE_MAGIC):
        raise StoreError(
            f"{path} is not an SQLite database (corrupt or another kind of file); "
            "refusing to use it"
        )
    app_id = int.from_bytes(header[APPLICATION_ID_OFFSET : APPLICATION_ID_OFFSET + 4], "big")
    if app_id != APPLICATION_ID:
        raise StoreError(
            f"{path} is an SQLite database of another application "
            f"(application_id 0x{app_id:08x}, expected 0x{APPLICATION_ID:08x}); refusing to use it"
        )


def _uri(path: Path, mode: str) -> str:
    return f"file:{urllib.parse.quote(str(path.absolute()))}?mode={mode}"


def _side_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]


def _probe(path: Path, station_id: str) -> int:
    """Inspect an existing file read-only; return its schema version or raise StoreError.

    Nothing is written to the file. A read-only connection may create empty -wal and -shm
    files next to it; when the file is refused, those it created are removed again.
    """
    _check_header(path, _read_header(path))
    existed = {p: p.exists() for p in _side_files(path)}
    refused = True
    try:
        version = _probe_sqlite(path, station_id)
        refused = False
        return version
    finally:
        if refused:
            for side, was_there in existed.items():
                try:
                    if not was_there and side.exists():
                        side.unlink()
                except OSError:
                    pass


def _probe_sqlite(path: Path, station_id: str) -> int:
    try:
        conn = sqlite3.connect(_uri(path, "ro"), uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store read-only: {exc}") from exc
    try:
        try:
            problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is corrupt ({exc}); refusing to use it") from exc
        if problems != ["ok"]:
            first = problems[0] if problems else "no answer"
            raise StoreError(
                f"{path} is corrupt (quick_check: {first}"
                f"{f' and {len(problems) - 1} more' if len(problems) > 1 else ''}); "
                "refusing to use it"
            )
        try:
            app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot read the store's identity: {exc}") from exc
        if app_id != APPLICATION_ID:
            raise StoreError(
                f"{path} is an SQLite database of another application "
                f"(application_id 0x{app_id:08x}); refusing to use it"
            )
        if version < 1:
            raise StoreError(f"{path} has no chargepoint schema (version 0); refusing to use it")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}, newer than this software knows "
                f"({SCHEMA_VERSION}); refusing to use it (update the software)"
            )
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'station_id'").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot read the station id ({exc}); damaged store") from exc
        if row is None:
            raise StoreError(f"{path} records no station id; damaged store, refusing to use it")
        if row[0] != station_id:
            raise StoreError(
                f"{path} belongs to station {row[0]!r}, not {station_id!r}; refusing to use it "
                "(use that station's config or another state directory)"
            )
        return version
    finally:
        conn.close()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _set_aside_orphans(path: Path) -> None:
    """-wal/-shm files without their database would be replayed into a new file of the
    same name and corrupt it: rename them out of the way (never delete them)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for side in _side_files(path):
        if side.exists():
            aside = side.with_name(f"{side.name}.orphan-{stamp}")
            os.rename(side, aside)
            log.warning("%s has no database next to it; moved it to %s", side, aside)


def _create(path: Path, station_id: str) -> bool:
    """Build a new store under a temporary name and link it into place.

    Returns False when another file appeared at `path` meanwhile (it is then left alone).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store: {exc}") from exc
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: the file system does not support WAL ({mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                _apply_migrations(conn, 0)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("station_id", station_id), ("created_at", utc_now())],
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()  # last connection: checkpoints the WAL into the file, removes it
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        header = _read_header(tmp)
        if int.from_bytes(header[APPLICATION_ID_OFFSET : APPLICATION_ID_OFFSET + 4], "big") != (
            APPLICATION_ID
        ):
            raise StoreError(f"{path}: the new store was not written completely")
        _set_aside_orphans(path)
        try:
            os.link(tmp, path)  # never replaces an existing file
        except FileExistsError:
            return False
        except OSError:
            # File systems without hard links: rename, after checking once more.
            if path.exists() or path.is_symlink():
                return False
            os.rename(tmp, path)
        _fsync_dir(path.parent)
        log.info("created store %s for station %s (schema %d)", path, station_id, SCHEMA_VERSION)
        return True
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot create the store: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store: {exc}") from exc
    finally:
        for leftover in [tmp, *_side_files(tmp)]:
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                log.warning("cannot remove the temporary file %s", leftover)


# ---- the store ---------------------------------------------------------------------------


class Store:
    """The durable state, synchronous. Owns one connection; meant for one worker thread
    (see :class:`AsyncStore`), but every call is serialised by a lock all the same."""

    def __init__(self, path: str | os.PathLike[str], station_id: str) -> None:
        """Open the store at `path` for `station_id`, creating it when missing."""
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
        version = self._prepare(self.path, station_id)
        self._conn: sqlite3.Connection | None = self._connect(self.path, station_id, version)

    @classmethod
    def open(cls, path: str | os.PathLike[str], station_id: str) -> Self:
        return cls(path, station_id)

    # ---- opening ----

    @staticmethod
    def _prepare(path: Path, station_id: str) -> int:
        if not (path.exists() or path.is_symlink()) and _create(path, station_id):
            return SCHEMA_VERSION
        return _probe(path, station_id)

    @staticmethod
    def _connect(path: Path, station_id: str, version: int) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                _uri(path, "rw"),
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_S,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the store: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot switch the store to WAL (journal mode {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA trusted_schema = OFF")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            if version < SCHEMA_VERSION:
                Store._migrate(conn, path, station_id)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{path}: cannot prepare the store: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection, path: Path, station_id: str) -> None:
        # A migration may rebuild a table others reference: foreign keys are off while the
        # migrations run (it cannot change inside a transaction) and checked before COMMIT.
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            Store._migrate_locked(conn, path, station_id)
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
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path} has schema version {version}, newer than this software knows "
                    f"({SCHEMA_VERSION}); refusing to use it (update the software)"
                )
            if version < SCHEMA_VERSION:
                _apply_migrations(conn, version)
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
        if version < SCHEMA_VERSION:
            log.info("migrated store %s from schema %d to %d", path, version, SCHEMA_VERSION)

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
                raise StoreError(f"{self.path}: cannot begin a write: {exc}") from exc
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.path}: write failed, nothing stored: {exc}") from exc
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

    @staticmethod
    def _append(
        conn: sqlite3.Connection,
        messages: Sequence[tuple[str, dict[str, Any]]],
        local_tx_id: int | None,
        now: str,
    ) -> int:
        seq = 0
        for kind, data in messages:
            text = _json(f"outbox message {kind!r}", data)
            cur = conn.execute(
                "INSERT INTO outbox (kind, local_tx_id, data, created_at) VALUES (?, ?, ?, ?)",
                (kind, local_tx_id, text, now),
            )
            seq = int(cur.lastrowid or 0)
        return seq

    # ---- sessions ----

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
        _check_timestamp("started_at", started_at)
        _check_json_text("begin_fields", begin_fields)

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
            self._append(conn, messages, local_id, utc_now())
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
        _check_timestamp("opened_at", opened_at)

        def write(conn: sqlite3.Connection) -> int:
            self._check_free(conn, connector_id)
            cur = conn.execute(
                "INSERT INTO transactions (connector_id, evse_id, id_tag, opened_at)"
                " VALUES (?, ?, ?, ?)",
                (connector_id, evse_id, id_tag, opened_at),
            )
            local_id = int(cur.lastrowid or 0)
            self._append(conn, messages, local_id, utc_now())
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
            self._append(conn, messages, local_id, utc_now())

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
        _check_timestamp("started_at", started_at)
        _check_json_text("begin_fields", begin_fields)

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
            self._append(conn, messages, local_id, utc_now())

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
        _check_timestamp("closed_at", closed_at)

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
            self._append(conn, messages, local_id, utc_now())

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
        _check_timestamp("stopped_at", stopped_at)
        if (end_ocmf is None) != (end_fields is None):
            raise StoreError(
                f"session {local_id}: end_ocmf and end_fields go together (both or neither)"
            )
        if end_fields is not None:
            _check_json_text("end_fields", end_fields)

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
            self._append(conn, messages, local_id, utc_now())

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

    def transaction(self, local_id: int) -> TransactionRow | None:
        def read(conn: sqlite3.Connection) -> TransactionRow | None:
            row = conn.execute(
                f"SELECT {_TX_COLUMNS} FROM transactions WHERE local_id = ?", (local_id,)
            ).fetchone()
            return _tx_row(row) if row is not None else None

        return self._read(read)

    def open_transactions(self) -> list[TransactionRow]:
        """Sessions not ended yet, oldest first."""

        def read(conn: sqlite3.Connection) -> list[TransactionRow]:
            rows = conn.execute(
                f"SELECT {_TX_COLUMNS} FROM transactions WHERE closed_at IS NULL ORDER BY local_id"
            ).fetchall()
            return [_tx_row(r) for r in rows]

        return self._read(read)

    def transactions(
        self, limit: int = 100, since: str | None = None, connector_id: int | None = None
    ) -> list[TransactionRow]:
        """Sessions, newest first (by local id, which follows the order they started in).

        `since` compares with `started_at` as text: a date ("2026-11-21") or a full UTC
        timestamp both work.
        """
        if limit < 0:
            raise StoreError(f"limit must not be negative ({limit})")
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("started_at >= ?")
            args.append(since)
        if connector_id is not None:
            where.append("connector_id = ?")
            args.append(connector_id)
        sql = f"SELECT {_TX_COLUMNS} FROM transactions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY local_id DESC LIMIT ?"
        args.append(limit)

        def read(conn: sqlite3.Connection) -> list[TransactionRow]:
            return [_tx_row(r) for r in conn.execute(sql, args).fetchall()]

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
        where: list[str] = ["local_id > ?"]
        args: list[Any] = []
        if since is not None:
            where.append("opened_at >= ?")
            args.append(since)
        if until is not None:
            where.append("opened_at < ?")
            args.append(until)
        if connector_id is not None:
            where.append("connector_id = ?")
            args.append(connector_id)
        if local_ids is not None:
            ids = sorted(set(local_ids))
            where.append(f"local_id IN ({', '.join('?' * len(ids))})")
            args.extend(ids)
        sql = (
            f"SELECT {_TX_COLUMNS} FROM transactions WHERE {' AND '.join(where)}"
            " ORDER BY local_id LIMIT ?"
        )
        last = 0

        def read_after(conn: sqlite3.Connection) -> list[Any]:
            return list(conn.execute(sql, [last, *args, batch]).fetchall())

        while True:
            rows = self._read(read_after)
            for row in rows:
                yield _tx_row(row)
            if len(rows) < batch:
                return
            last = int(rows[-1][0])

    # ---- what sessions prove ----

    def put_proof(self, local_id: int, status: str, reason: str, energy_wh: int | None) -> None:
        """Record (or refresh) a session's verification; the session itself is untouched."""
        self.put_proofs([(local_id, status, reason, energy_wh)])

    def put_proofs(self, proofs: Sequence[tuple[int, str, str, int | None]]) -> None:
        """Several sessions' verifications (local_id, status, reason, energy_wh), one write."""
        now = utc_now()

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO session_proofs (local_id, status, reason, energy_wh, checked_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (local_id) DO UPDATE SET"
                " status = excluded.status, reason = excluded.reason,"
                " energy_wh = excluded.energy_wh, checked_at = excluded.checked_at",
                [(*p, now) for p in proofs],
            )

        self._write(write)

    def proof(self, local_id: int) -> ProofRow | None:
        def read(conn: sqlite3.Connection) -> ProofRow | None:
            row = conn.execute(
                "SELECT local_id, status, reason, energy_wh, checked_at FROM session_proofs"
                " WHERE local_id = ?",
                (local_id,),
            ).fetchone()
            return ProofRow(*row) if row is not None else None

        return self._read(read)

    # ---- pinned meter keys ----

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

    # ---- retention ----

    def prune(self, closed_before: str) -> list[int]:
        """Remove sessions closed before `closed_before` whose messages all reached the CSMS
        (none pending, none flagged); return their local ids. Open sessions, sessions with
        a message still waiting or flagged, and everything newer are kept."""
        _check_timestamp("closed_before", closed_before)

        def write(conn: sqlite3.Connection) -> list[int]:
            ids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT local_id FROM transactions t WHERE closed_at IS NOT NULL"
                    " AND closed_at < ? AND NOT EXISTS (SELECT 1 FROM outbox o"
                    " WHERE o.local_tx_id = t.local_id AND o.status <> 'sent')",
                    (closed_before,),
                )
            ]
            for local_id in ids:
                conn.execute("DELETE FROM outbox WHERE local_tx_id = ?", (local_id,))
                conn.execute("DELETE FROM session_proofs WHERE local_id = ?", (local_id,))
                conn.execute("DELETE FROM transactions WHERE local_id = ?", (local_id,))
            return ids

        return self._write(write)

    # ---- outbox ----

    def enqueue(self, kind: str, data: dict[str, Any], local_tx_id: int | None = None) -> int:
        """Append a message to the outbox; return its sequence number."""
        return self._write(lambda conn: self._append(conn, [(kind, data)], local_tx_id, utc_now()))

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Messages still to send, in the order they were stored."""

        def read(conn: sqlite3.Connection) -> list[OutboxMessage]:
            rows = conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [_outbox_row(r) for r in rows]

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
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE seq = ?", (seq,)
            ).fetchone()
            return _outbox_row(row) if row is not None else None

        return self._read(read)

    def mark_sent(self, seq: int, *, response: dict[str, Any] | None = None) -> None:
        text = _json(f"the response to message {seq}", response) if response is not None else None

        def write(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, response = ? WHERE seq = ?",
                (utc_now(), text, seq),
            )
            if cur.rowcount != 1:
                raise StoreError(f"outbox message {seq} does not exist")

        self._write(write)

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
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE status = 'failed' ORDER BY seq"
            ).fetchall()
            return [_outbox_row(r) for r in rows]

        return self._read(read)

    def outbox_length(self) -> int:
        """Messages still to send."""
        return self._read(
            lambda conn: int(
                conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
            )
        )

    # ---- settings ----

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

    # ---- authorization cache ----

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


# ---- async facade ------------------------------------------------------------------------


class AsyncStore:
    """:class:`Store` for asyncio: every call runs on one dedicated worker thread, in the
    order the calls were made; the event loop never waits for the disk.

    A call whose awaiting task is cancelled before the worker reached it is not run; one the
    worker already started completes (its result is lost to the cancelled caller).
    """

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        self._store = store
        self._executor = executor
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str], station_id: str) -> AsyncStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chargepoint-store")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(executor, Store, path, station_id)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def station_id(self) -> str:
        return self._store.station_id

    async def _run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        # Submitted before the first await: the worker sees calls in the order they were made.
        if self._closed:
            raise StoreError(f"{self._store.path}: the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def close(self) -> None:
        """Finish every call made so far, close the store and stop the worker. Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._store.close)
        finally:
            self._executor.shutdown(wait=True)  # the worker is idle by now

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- sessions ----

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

    async def transaction(self, local_id: int) -> TransactionRow | None:
        return await self._run(self._store.transaction, local_id)

    async def open_transactions(self) -> list[TransactionRow]:
        return await self._run(self._store.open_transactions)

    async def transactions(
        self, limit: int = 100, since: str | None = None, connector_id: int | None = None
    ) -> list[TransactionRow]:
        return await self._run(self._store.transactions, limit, since, connector_id)

    async def put_proof(
        self, local_id: int, status: str, reason: str, energy_wh: int | None
    ) -> None:
        await self._run(self._store.put_proof, local_id, status, reason, energy_wh)

    async def put_proofs(self, proofs: Sequence[tuple[int, str, str, int | None]]) -> None:
        await self._run(self._store.put_proofs, proofs)

    async def proof(self, local_id: int) -> ProofRow | None:
        return await self._run(self._store.proof, local_id)

    async def prune(self, closed_before: str) -> list[int]:
        return await self._run(self._store.prune, closed_before)

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

    async def pin_meter_key(
        self, connector_id: int, meter_serial: str, public_key_hex: str, how: str
    ) -> MeterKeyRow:
        return await self._run(
            self._store.pin_meter_key, connector_id, meter_serial, public_key_hex, how
        )

    async def meter_keys(self, connector_id: int | None = None) -> list[MeterKeyRow]:
        return await self._run(self._store.meter_keys, connector_id)

    # ---- outbox ----

    async def enqueue(self, kind: str, data: dict[str, Any], local_tx_id: int | None = None) -> int:
        return await self._run(self._store.enqueue, kind, data, local_tx_id)

    async def pending(self, limit: int = 100) -> list[OutboxMessage]:
        return await self._run(self._store.pending, limit)

    async def message_index(self, seq: int, local_tx_id: int) -> int:
        return await self._run(self._store.message_index, seq, local_tx_id)

    async def next_pending(self) -> OutboxMessage | None:
        return await self._run(self._store.next_pending)

    async def message(self, seq: int) -> OutboxMessage | None:
        return await self._run(self._store.message, seq)

    async def mark_sent(self, seq: int, *, response: dict[str, Any] | None = None) -> None:
        await self._run(self._store.mark_sent, seq, response=response)

    async def record_attempt(self, seq: int, error: str) -> int:
        return await self._run(self._store.record_attempt, seq, error)

    async def mark_failed(self, seq: int, error: str) -> None:
        await self._run(self._store.mark_failed, seq, error)

    async def failed_messages(self) -> list[OutboxMessage]:
        return await self._run(self._store.failed_messages)

    async def outbox_length(self) -> int:
        return await self._run(self._store.outbox_length)

    # ---- settings ----

    async def get_setting(self, key: str) -> str | None:
        return await self._run(self._store.get_setting, key)

    async def set_setting(self, key: str, value: str) -> None:
        await self._run(self._store.set_setting, key, value)

    async def settings(self, prefix: str = "") -> dict[str, str]:
        return await self._run(self._store.settings, prefix)

    # ---- authorization cache ----

    async def cache_put(
        self, id_tag: str, status: str, expiry: str | None, parent_id_tag: str | None
    ) -> None:
        await self._run(self._store.cache_put, id_tag, status, expiry, parent_id_tag)

    async def cache_get(self, id_tag: str) -> CacheEntry | None:
        return await self._run(self._store.cache_get, id_tag)

    async def cache_clear(self) -> None:
        await self._run(self._store.cache_clear)
