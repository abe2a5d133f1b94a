"""The store's worker thread: :class:`AsyncStoreBase` runs each call of the synchronous
store on it, in the order the calls were made, so the event loop never waits for an fsync."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import ParamSpec, Self, TypeVar

from chargepoint.store.connection import StoreBase
from chargepoint.store.errors import StoreError

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
