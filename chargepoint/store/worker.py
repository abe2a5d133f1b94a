"""The store's worker thread: :class:`AsyncStoreBase` runs each call of the synchronous
store on it, in the order the calls were made, so the event loop never waits for an fsync.
A full disk surfaces as :class:`~chargepoint.store.errors.StoreFull`, whether SQLite or a
plain file write noticed it."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import ParamSpec, Self, TypeVar

from chargepoint.store.connection import StoreBase
from chargepoint.store.errors import StoreError, StoreFull, disk_full

log = logging.getLogger("chargepoint.store")

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStoreBase:
    """What every table family's part of :class:`~chargepoint.store.AsyncStore` builds on.

    Each part narrows ``_store`` to its own part of the synchronous store; the composed
    :class:`~chargepoint.store.AsyncStore` narrows it to the whole
    :class:`~chargepoint.store.Store`.
    """

    _store: StoreBase

    def __init__(self, store: StoreBase, executor: ThreadPoolExecutor) -> None:
        self._store = store
        self._executor = executor
        self._closed = False

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
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs)
            )
        except OSError as exc:
            # a file the store writes beside the database (ENOSPC): typed like SQLITE_FULL
            if disk_full(exc):
                raise StoreFull(f"{self._store.path}: the disk is full ({exc})") from exc
            raise

    async def close(self) -> None:
        """Finish every call made so far, close the store and stop the worker. Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            try:
                await loop.run_in_executor(self._executor, self._store.close)
            except StoreFull as exc:
                # what the close had still to write (acknowledgements) is lost: those
                # messages are sent again after the restart (at least once, never lost)
                log.error("closing the store with the disk full: %s", exc)
                await loop.run_in_executor(self._executor, StoreBase.close, self._store)
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
