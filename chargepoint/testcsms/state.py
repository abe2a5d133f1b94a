"""What every part of `TestCsms` shares: its configuration, its records and its connections.

`TestCsms` (server.py) is `CsmsState` plus one part per job, each a class over `CsmsState` in a
module of its own: the opening handshake (handshake.py), fault injection (faults.py), reading
what was received (observations.py), transaction logs (transactions.py), CSMS -> station CALLs
(commands.py). A part keeps its own state in its own `__init__` (no arguments; it calls
`super().__init__()` first); what more than one part uses lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, Literal

from chargepoint.testcsms.errors import StationNotConnected
from chargepoint.testcsms.ocppj import log
from chargepoint.testcsms.records import Frame, Handshake, Received, SentError
from chargepoint.testcsms.session import Session


class CsmsState:
    """The configuration (set by `TestCsms.__init__`) and the state the parts share."""

    versions: tuple[str, ...]
    subprotocols: tuple[str, ...]
    # Answers; may be changed while running (e.g. Pending first, then Accepted).
    boot_status: str
    heartbeat_interval: int
    accept_id_tags: set[str] | None
    # Security profiles
    ssl_context: ssl.SSLContext | None
    basic_auth: dict[str, str] | None
    require_client_cert: bool

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.sent_errors: list[SentError] = []
        self.frames: list[Frame] = []
        self.bad_frames: list[Frame] = []
        self.handshakes: list[Handshake] = []

        self._sessions: dict[str, Session] = {}  # station id -> its open connection
        self._info: dict[str, dict[str, Any]] = {}  # station id -> its last accepted connection
        self._refuse = False  # set by `refuse_connections`, read by the handshake
        self._listeners: list[Callable[[Received], None]] = []
        self._changed = asyncio.Event()  # set (and replaced) on every change
        self._answered: set[tuple[str, str]] = set()  # (station id, unique id) with a CALLRESULT

    def answered(self, received: Received) -> bool:
        """Whether that CALL got a CALLRESULT (not a CALLERROR, not lost)."""
        return (received.station_id, received.unique_id) in self._answered

    def _session(self, station_id: str) -> Session:
        session = self._sessions.get(station_id)
        if session is None:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        return session

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, deadline: float) -> bool:
        """Wait for a change until the loop time `deadline`; False when it has passed."""
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await self._changed.wait()
        return True

    async def _wait_until(self, condition: Callable[[], bool], seconds: float) -> bool:
        deadline = asyncio.get_running_loop().time() + seconds
        while not condition():
            if not await self._wait_change(deadline):
                return False
        return True

    def _record(self, rec: Received) -> None:
        self.received.append(rec)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s -> %s %s", rec.station_id, rec.action, json.dumps(rec.payload))
        for listener in self._listeners:
            try:
                listener(rec)
            except Exception:
                log.exception("listener failed")
        self._notify()

    def _frame(self, station_id: str, direction: Literal["in", "out"], text: str) -> None:
        self.frames.append(Frame(station_id, direction, text, time.monotonic()))
