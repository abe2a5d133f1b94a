"""The store, read-only, off the event loop: one worker thread (and connection) for the pages,
a few more for downloads, so a long export never holds up a page."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from chargepoint.store import Store, StoreError

P = ParamSpec("P")
T = TypeVar("T")

DOWNLOAD_WORKERS = 2


class StoreReader:
    """Opens the store read-only on first use (the daemon may create it later than this
    process starts) and keeps one connection per worker thread."""

    def __init__(self, path: Path, station_id: str, download_workers: int = DOWNLOAD_WORKERS):
        self.path = path
        self.station_id = station_id
        self._pages = ThreadPoolExecutor(max_workers=1, thread_name_prefix="web-store")
        self._downloads = ThreadPoolExecutor(
            max_workers=download_workers, thread_name_prefix="web-download"
        )
        self._local = threading.local()
        self._opened: list[Store] = []
        self._lock = threading.Lock()
        self._closed = False

    def _store(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None or store.closed:
            if self._closed:
                raise StoreError(f"{self.path}: the web page is shutting down")
            store = Store.open_read_only(self.path, self.station_id)
            self._local.store = store
            with self._lock:
                self._opened.append(store)
        return store

    def _call(self, fn: Callable[Concatenate[Store, P], T], *args: P.args, **kw: P.kwargs) -> T:
        return fn(self._store(), *args, **kw)

    async def read(
        self, fn: Callable[Concatenate[Store, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(store, ...)` on the pages' thread."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, fn, *args, **kwargs)
        return await loop.run_in_executor(self._pages, call)

    async def download(
        self, fn: Callable[Concatenate[Store, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(store, ...)` on a download thread (a store connection of its own)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, fn, *args, **kwargs)
        return await loop.run_in_executor(self._downloads, call)

    async def close(self) -> None:
        """Wait for the reads in progress, then close every connection."""
        self._closed = True
        loop = asyncio.get_running_loop()
        for pool in (self._pages, self._downloads):
            await loop.run_in_executor(None, functools.partial(pool.shutdown, wait=True))
        with self._lock:
            opened, self._opened = self._opened, []
        for store in opened:
            store.close()
