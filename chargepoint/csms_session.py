"""What both OCPP adapters share: one websocket session to the CSMS at a time, reconnecting
with backoff and full jitter, a reader and a worker task per session, tasks owned and
cancelled on stop. The adapters say how to open the link, how to answer the CSMS (their
library ChargePoint) and what to do while connected (boot, then drain the outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from websockets.asyncio.client import ClientConnection

from chargepoint.config import StationConfig
from chargepoint.csms_link import Backoff, CsmsLinkError
from chargepoint.tasks import cancel_and_wait

log = logging.getLogger("chargepoint.ocpp")

CP = TypeVar("CP")


class CsmsSessionLoop(Generic[CP]):
    def __init__(self, config: StationConfig) -> None:
        self.config = config
        self.cp: CP | None = None
        self.ws: ClientConnection | None = None
        self.accepted = asyncio.Event()
        self._stopping = False
        self._owned: set[asyncio.Task[None]] = set()

    # ---- what each adapter provides ------------------------------------------------------

    async def _prepare(self) -> None:
        """Before the first connection."""

    async def _open(self) -> ClientConnection:
        raise NotImplementedError

    def _make_cp(self, ws: ClientConnection) -> CP:
        raise NotImplementedError

    async def _work(self) -> None:
        raise NotImplementedError

    # ---- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff(
            self.config.csms.reconnect_min_delay, self.config.csms.reconnect_max_delay
        )
        await self._prepare()
        while not self._stopping:
            try:
                ws = await self._open()
            except Exception as exc:
                delay = backoff.next_delay()
                text = exc if isinstance(exc, CsmsLinkError) else f"{type(exc).__name__}: {exc}"
                log.warning("CSMS unreachable (%s); retrying in %.1f s", text, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            try:
                await self._session(ws)
            except Exception:
                log.exception("OCPP session failed")
            if not self._stopping:
                delay = backoff.next_delay()
                log.warning("CSMS connection lost; reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)

    async def _session(self, ws: ClientConnection) -> None:
        self.ws = ws
        cp = self._make_cp(ws)
        self.cp = cp
        reader = asyncio.create_task(cp.start(), name="ocpp reader")  # type: ignore[attr-defined]
        worker = asyncio.create_task(self._work(), name="ocpp session")
        try:
            await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.accepted.clear()
            await cancel_and_wait((reader, worker))
            with contextlib.suppress(Exception):
                await ws.close()
            self.cp = None
            self.ws = None

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(list(self._owned))
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()

    def _own(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._owned.add(task)
        task.add_done_callback(self._owned.discard)
        return task
