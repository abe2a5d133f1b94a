"""The synchronous :class:`Store`: one connection, and every table family's reads and writes.

A new table family is one module holding its part (a subclass of
:class:`~chargepoint.store.connection.StoreBase`) and its asynchronous twin, and one line in
:class:`Store` here and in :class:`~chargepoint.store.AsyncStore`.
"""

from __future__ import annotations

from chargepoint.store.auth_cache import AuthCache
from chargepoint.store.charging_profiles import ChargingProfiles
from chargepoint.store.keys import MeterKeys
from chargepoint.store.local_list import LocalAuthList
from chargepoint.store.outbox import Outbox
from chargepoint.store.proofs import Proofs
from chargepoint.store.reservations import Reservations
from chargepoint.store.retention import Retention
from chargepoint.store.session_queries import SessionQueries
from chargepoint.store.sessions import Sessions
from chargepoint.store.settings import Settings

__all__ = ["Store"]


class Store(
    Sessions,
    SessionQueries,
    Proofs,
    MeterKeys,
    Retention,
    Outbox,
    Settings,
    AuthCache,
    LocalAuthList,
    Reservations,
    ChargingProfiles,
):
    """The durable state, synchronous. Owns one connection; meant for one worker thread
    (see :class:`AsyncStore`), but every call is serialised by a lock all the same."""
