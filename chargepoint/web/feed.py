"""The daemon's status as the pages see it: `GET /status` over the control interface, polled
every `interval` seconds while a page listens, each change handed to every listener.

The daemon is asked only while someone watches (a page with live updates open); a page that
renders once asks once. A daemon that does not answer is a state of its own (`error`), shown
on the page, never a crash of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from chargepoint.service.control import ControlAddress, request
from chargepoint.store import utc_now

log = logging.getLogger("chargepoint.web.feed")

REQUEST_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Snapshot:
    """One answer of the daemon (or why there was none). `version` rises with every change."""

    version: int
    status: dict[str, Any] | None
    error: str | None
    online_since: str | None  # when this process saw the CSMS link go up or down
    at: str  # when the daemon was asked


class FeedClosed(Exception):
    """The process is shutting down: listeners stop."""


async def ask_status(address: ControlAddress) -> tuple[dict[str, Any] | None, str | None]:
    """The daemon's status, or None and why it gave none."""
    try:
        code, body = await request(address, "GET", "/status", timeout=REQUEST_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, IndexError) as exc:
        return None, f"the daemon does not answer on {address.describe()}: {exc or type(exc)}"
    if code != 200:
        return None, f"the daemon answered {code}: {body.get('error', '')}"
    return body, None


class StatusFeed:
    def __init__(self, address: ControlAddress, interval: float) -> None:
        self.address = address
        self.interval = interval
        self._snapshot = Snapshot(0, None, "not asked yet", None, utc_now())
        self._changed = asyncio.Event()
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def latest(self) -> Snapshot:
        return self._snapshot

    async def current(self) -> Snapshot:
        """A fresh snapshot: the polled one while polling runs, else the daemon asked now."""
        if self._task is None or self._snapshot.version == 0:
            await self._poll_once()
        return self._snapshot

    async def _poll_once(self) -> None:
        status, error = await ask_status(self.address)
        self._publish(status, error)

    def _publish(self, status: dict[str, Any] | None, error: str | None) -> None:
        old = self._snapshot
        if old.version and old.status == status and old.error == error:
            return
        online_since = old.online_since
        was = bool(old.status and old.status.get("online"))
        now_online = bool(status and status.get("online"))
        if old.version and (was != now_online or (old.status is None) != (status is None)):
            online_since = utc_now()
        self._snapshot = Snapshot(old.version + 1, status, error, online_since, utc_now())
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self._poll_once()
            except Exception as exc:  # a bug here must not end the page's updates
                log.exception("status poll failed")
                self._publish(None, f"status poll failed: {exc!r}")
            await asyncio.sleep(self.interval)

    @contextlib.asynccontextmanager
    async def listening(self) -> Any:
        """While inside, the daemon is polled; yields nothing (use `wait_newer`)."""
        if self._closed:
            raise FeedClosed()
        self._listeners += 1
        if self._task is None:
            self._task = asyncio.create_task(self._poll_loop(), name="web status poll")
        try:
            yield
        finally:
            self._listeners -= 1
            if self._listeners == 0 and self._task is not None:
                task, self._task = self._task, None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def wait_newer(self, version: int, timeout: float) -> Snapshot | None:
        """The first snapshot newer than `version`, or None after `timeout` seconds."""
        while self._snapshot.version <= version:
            if self._closed:
                raise FeedClosed()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return None
        if self._closed:
            raise FeedClosed()
        return self._snapshot

    async def close(self) -> None:
        """Wake every listener (they end) and stop polling."""
        self._closed = True
        self._changed.set()
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def status_json(snapshot: Snapshot) -> str:
    return json.dumps(
        {"status": snapshot.status, "error": snapshot.error, "online_since": snapshot.online_since}
    )
