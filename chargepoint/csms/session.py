"""What both OCPP adapters share: one websocket session to the CSMS at a time, reconnecting
with backoff and full jitter, a reader and a worker task per session, tasks owned and
cancelled on stop. The adapters say how to open the link, how to answer the CSMS (their
library ChargePoint) and what to do while connected (boot, then drain the outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import asdict, is_dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from websockets.asyncio.client import ClientConnection

from chargepoint.config import StationConfig
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.csms.link import Backoff, CsmsLinkError
from chargepoint.store import AsyncStore, OutboxMessage

log = logging.getLogger("chargepoint.ocpp")

LOG_PAYLOAD_CHARS = 400  # a message logged longer than this is cut, visibly
LOG_RESULT_CHARS = 200


def clip(text: str, limit: int = LOG_PAYLOAD_CHARS) -> str:
    """`text` for a log line: cut at `limit` characters with a marker saying how much is left
    out, so a cut line is never mistaken for the whole message."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters not logged]"


CP = TypeVar("CP")


class CsmsCallError(Exception):
    """The CSMS answered a CALL with a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        self.code = code
        self.description = description
        super().__init__(f"{code}: {description}")


def as_wire_dict(result: Any) -> dict[str, Any]:
    """A library CALLRESULT payload as the camelCase dict on the wire (None fields left out)."""
    if result is None:
        return {}
    raw = asdict(result) if is_dataclass(result) and not isinstance(result, type) else dict(result)
    converted: dict[str, Any] = snake_to_camel_case({k: v for k, v in raw.items() if v is not None})
    return converted


class CsmsSessionLoop(Generic[CP]):
    def __init__(self, config: StationConfig, calls: ModuleType, store: AsyncStore) -> None:
        """`calls`: the version's library module of CALL payload classes (ocpp.v16.call)."""
        self.config = config
        self.store = store
        self._calls = calls
        self.cp: CP | None = None
        self.ws: ClientConnection | None = None
        self.accepted = asyncio.Event()
        self._stopping = False
        self._owned: set[asyncio.Task[None]] = set()
        self._outbox_event = asyncio.Event()  # the durable outbox or the volatile queue grew
        # messages not worth keeping across a restart: status, heartbeat, triggered values
        self._volatile: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._heartbeat_interval = 0  # seconds; 0 sends none

    # ---- what each adapter provides ------------------------------------------------------

    async def _prepare(self) -> None:
        """Before the first connection."""

    async def _open(self) -> ClientConnection:
        raise NotImplementedError

    def _make_cp(self, ws: ClientConnection) -> CP:
        raise NotImplementedError

    async def _work(self) -> None:
        raise NotImplementedError

    async def _send_durable(self, message: OutboxMessage) -> None:
        """Send one stored transaction message (and mark it sent, retried or flagged)."""
        raise NotImplementedError

    def _volatile_answered(self, action: str, answer: dict[str, Any]) -> None:
        """A volatile message got its answer."""

    # ---- the sender ----------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(
                max(self._heartbeat_interval, 1) if self._heartbeat_interval else 60
            )
            if self._heartbeat_interval <= 0:
                continue
            self._volatile.put_nowait(("Heartbeat", {}))
            self._outbox_event.set()

    async def _drain_forever(self) -> None:
        """Stored transaction messages first, in order; then the volatile ones."""
        while True:
            self._outbox_event.clear()
            message = await self.store.next_pending()
            if message is not None:
                await self._send_durable(message)
                continue
            if not self._volatile.empty():
                action, payload = self._volatile.get_nowait()
                with contextlib.suppress(CsmsCallError, TimeoutError):
                    self._volatile_answered(action, await self.send(action, payload))
                continue
            await self._outbox_event.wait()

    # ---- calls -----------------------------------------------------------------------------

    async def send(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One CALL; CsmsCallError on CALLERROR, TimeoutError, ConnectionClosed."""
        cp = self.cp
        if cp is None:
            raise ConnectionError("not connected to the CSMS")
        request = getattr(self._calls, action)(**camel_to_snake_case(payload))
        log.info("-> %s %s", action, clip(json.dumps(payload)))
        started = time.monotonic()
        try:
            result = await cp.call(request, suppress=False)  # type: ignore[attr-defined]
        except OCPPError as exc:
            log.warning("<- %s CALLERROR %s: %s", action, exc.code, exc.description)
            raise CsmsCallError(exc.code, str(exc.description)) from exc
        answer = as_wire_dict(result)
        log.info(
            "<- %s result in %.0f ms %s",
            action,
            (time.monotonic() - started) * 1000,
            clip(json.dumps(answer), LOG_RESULT_CHARS),
        )
        return answer

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
