"""The schema of the store file, and the migrations that bring an older file forward.

- Rows of signed data are never rewritten: triggers in the schema refuse any UPDATE of a
  session's begin columns, of its end columns once it has ended, and of an outbox message's
  content. (Deleting old sessions, the retention pruning, is left to a later schema version.)
- The schema carries its version in ``PRAGMA user_version``; an older file is migrated
  forward in one transaction, a newer one is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from chargepoint.store.values import utc_now

# `PRAGMA application_id` of every chargepoint store: "EVCP" in ASCII.
APPLICATION_ID = 0x45564350


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
    # migrations and checked before the commit (StoreBase._migrate).
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


# Version 4: the Local Authorization List with its version, reservations, and an index for
# dropping the least recently used cache entries.
_SCHEMA_V4 = (
    """
    CREATE TABLE local_auth_list (
        id_key TEXT PRIMARY KEY NOT NULL,
        id_tag TEXT NOT NULL,
        status TEXT NOT NULL,
        expiry TEXT,
        parent_id_tag TEXT,
        token_type TEXT
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE local_auth_list_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE reservations (
        reservation_id INTEGER PRIMARY KEY,
        connector_id INTEGER,
        id_tag TEXT NOT NULL,
        parent_id_tag TEXT,
        token_type TEXT,
        connector_type TEXT,
        expiry TEXT NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('Accepted', 'Used', 'Cancelled', 'Expired', 'Removed')),
        created_at TEXT NOT NULL,
        ended_at TEXT,
        reported INTEGER NOT NULL DEFAULT 1 CHECK (reported IN (0, 1)),
        CHECK ((state = 'Accepted') = (ended_at IS NULL))
    )
    """,
    "CREATE INDEX reservations_active ON reservations (expiry) WHERE state = 'Accepted'",
    "CREATE INDEX reservations_unreported ON reservations (ended_at) WHERE reported = 0",
    "CREATE INDEX auth_cache_by_use ON auth_cache (updated_at)",
)


def _migrate_to_4(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V4:
        conn.execute(statement)


# Version 5: installed charging profiles (smart charging), the CSMS's and the charge
# controller's external limits, by (source, id).
_SCHEMA_V5 = (
    """
    CREATE TABLE charging_profiles (
        source TEXT NOT NULL CHECK (source IN ('CSO', 'EMS', 'SO', 'Other')),
        profile_id INTEGER NOT NULL,
        connector_id INTEGER NOT NULL CHECK (connector_id >= 0),
        purpose TEXT NOT NULL,
        stack_level INTEGER NOT NULL,
        transaction_local_id INTEGER,
        body TEXT NOT NULL,
        installed_at TEXT NOT NULL,
        PRIMARY KEY (source, profile_id)
    ) WITHOUT ROWID
    """,
)


def _migrate_to_5(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V5:
        conn.execute(statement)


# MIGRATIONS[n - 1] brings a file from version n-1 to n; a new file runs all of them.
MIGRATIONS: tuple[Migration, ...] = (
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
    _migrate_to_4,
    _migrate_to_5,
)
SCHEMA_VERSION = len(MIGRATIONS)


def apply_migrations(conn: sqlite3.Connection, from_version: int) -> None:
    """Inside an open transaction: run every migration after `from_version`."""
    target = SCHEMA_VERSION
    for version in range(from_version + 1, target + 1):
        MIGRATIONS[version - 1](conn)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (f"schema_{version}_at", utc_now()),
        )
    conn.execute(f"PRAGMA user_version = {int(target)}")
