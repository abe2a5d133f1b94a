"""The asynchronous :class:`AsyncStore`: :class:`~chargepoint.store.Store` for asyncio."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from chargepoint.store.auth_cache import AsyncAuthCache
from chargepoint.store.charging_profiles import AsyncChargingProfiles
from chargepoint.store.keys import AsyncMeterKeys
from chargepoint.store.local_list import AsyncLocalAuthList
from chargepoint.store.outbox import AsyncOutbox
from chargepoint.store.proofs import AsyncProofs
from chargepoint.store.reservations import AsyncReservations
from chargepoint.store.retention import AsyncRetention
from chargepoint.store.session_queries import AsyncSessionQueries
from chargepoint.store.sessions import AsyncSessions
from chargepoint.store.settings import AsyncSettings
from chargepoint.store.sync import Store

__all__ = ["AsyncStore"]


class AsyncStore(
    AsyncSessions,
    AsyncSessionQueries,
    AsyncProofs,
    AsyncMeterKeys,
    AsyncRetention,
    AsyncOutbox,
    AsyncSettings,
    AsyncAuthCache,
    AsyncLocalAuthList,
    AsyncReservations,
    AsyncChargingProfiles,
):
    """:class:`Store` for asyncio: every call runs on one dedicated worker thread, in the
    order the calls were made; the event loop never waits for the disk.

    A call whose awaiting task is cancelled before the worker reached it is not run; one the
    worker already started completes (its result is lost to the cancelled caller).
    """

    _store: Store

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        super().__init__(store, executor)

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
