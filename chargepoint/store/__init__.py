"""The daemon's durable state: one SQLite file, `<state_dir>/chargepoint.sqlite`.

What it keeps: charging sessions with their signed Begin and End records, the outbox of
transaction-related messages waiting for the CSMS, runtime settings and the authorization
cache.

Durability rules, each kept where it is enforced:

- every write is one SQL transaction on a WAL file with ``synchronous=FULL``
  (:mod:`~chargepoint.store.connection`);
- rows of signed data are never rewritten (triggers) and the schema carries its version,
  migrated forward in one transaction (:mod:`~chargepoint.store.schema`);
- opening never damages what is there, and a new file appears only when complete
  (:mod:`~chargepoint.store.files`).

:class:`Store` is synchronous and owns one connection; :class:`AsyncStore` runs every call on
one dedicated worker thread, so calls keep their order and the event loop never waits for an
fsync. Both are composed of one part per table family (:mod:`~chargepoint.store.sessions`,
:mod:`~chargepoint.store.session_queries`, :mod:`~chargepoint.store.proofs`,
:mod:`~chargepoint.store.keys`, :mod:`~chargepoint.store.retention`,
:mod:`~chargepoint.store.outbox`, :mod:`~chargepoint.store.settings`,
:mod:`~chargepoint.store.auth_cache`); the rows they return are in
:mod:`~chargepoint.store.rows`.
"""

from __future__ import annotations

from chargepoint.store.async_store import AsyncStore
from chargepoint.store.errors import StoreError, StoreFull, disk_full
from chargepoint.store.local_list import LocalListRow
from chargepoint.store.reservations import ReservationRow
from chargepoint.store.rows import (
    CacheEntry,
    MeterKeyRow,
    OutboxMessage,
    ProofRow,
    TransactionRow,
)
from chargepoint.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from chargepoint.store.sync import Store
from chargepoint.store.values import utc_now

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AsyncStore",
    "CacheEntry",
    "LocalListRow",
    "MeterKeyRow",
    "OutboxMessage",
    "ProofRow",
    "ReservationRow",
    "Store",
    "StoreError",
    "StoreFull",
    "TransactionRow",
    "disk_full",
    "utc_now",
]
