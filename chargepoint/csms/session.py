"""What both OCPP adapters share: one websocket session to the CSMS at a time, reconnecting
with backoff and full jitter, a reader and a worker task per session, tasks owned and
cancelled on stop. The adapters say how to open the link, how to answer the CSMS (their
library ChargePoint) and what to do while connected (boot, then drain the outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, is_dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

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


# ---- what a CSMS's frames may put into the log ---------------------------------------------

BAD_FRAME_LINES_PER_MINUTE = 10
CSMS_FRAME = {"csms_frame": True}  # `extra=` of a log line caused by a frame from the CSMS
_frame_log = logging.getLogger("chargepoint.csms.frames")
_MESSAGE_ID_HEAD = re.compile(r'\s*\[\s*[0-9]\s*,\s*("(?:[^"\\]|\\.){1,36}")')


def message_id_of(text: str | bytes) -> str:
    """The messageId of a frame that could not be parsed, read from its first characters
    (cheap on a frame of any size), or "-1" when it cannot be read (OCPP-J)."""
    head = text[:120] if isinstance(text, str) else text[:120].decode("utf-8", "replace")
    found = _MESSAGE_ID_HEAD.match(head)
    if found is None:
        return "-1"
    try:
        unique_id = json.loads(found.group(1))
    except ValueError:
        return "-1"
    return unique_id if isinstance(unique_id, str) else "-1"


class FrameLogBudget:
    """At most `per_window` log lines about the CSMS's frames in `window_s` seconds; the rest
    are counted and reported in one line when the window ends."""

    def __init__(self, per_window: int = BAD_FRAME_LINES_PER_MINUTE, window_s: float = 60.0):
        self.per_window = per_window
        self.window_s = window_s
        self._window_end = 0.0
        self._used = 0
        self._suppressed = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now >= self._window_end:
            self.flush()
            self._window_end = now + self.window_s
            self._used = 0
        if self._used < self.per_window:
            self._used += 1
            return True
        self._suppressed += 1
        if self._suppressed == 1:
            with contextlib.suppress(RuntimeError):  # outside an event loop: at the next line
                asyncio.get_running_loop().call_later(self._window_end - now, self.flush)
        return False

    def flush(self) -> None:
        """Report the lines left out so far, if any."""
        if self._suppressed:
            count, self._suppressed = self._suppressed, 0
            _frame_log.warning(
                "... %d more log lines about bad frames from the CSMS suppressed "
                "(at most %d in %.0f s)",
                count,
                self.per_window,
                self.window_s,
            )

    def reset(self) -> None:
        self.flush()
        self._window_end = 0.0
        self._used = 0


FRAME_LOG_BUDGET = FrameLogBudget()


class CsmsFrameLog(logging.Filter):
    """The log lines a CSMS's frames cause (the OCPP library's warnings and errors, the
    adapters' lines marked with `extra=CSMS_FRAME`): one line each, cut at LOG_PAYLOAD_CHARS,
    no traceback for a request answered with a CALLERROR on purpose, secrets taken out by
    `redact`, and no more than FRAME_LOG_BUDGET allows, so that a misbehaving CSMS cannot
    flood the controller's log. `marked_only`: leave unmarked lines alone (the adapters'
    own loggers)."""

    def __init__(self, redact: Callable[[str], str] | None = None, marked_only: bool = False):
        super().__init__()
        self.redact = redact or (lambda text: text)
        self.marked_only = marked_only

    def filter(self, record: logging.LogRecord) -> bool:
        if self.marked_only and not getattr(record, "csms_frame", False):
            return True
        if record.levelno < logging.WARNING:
            return True
        if not FRAME_LOG_BUDGET.allow():
            return False
        with contextlib.suppress(Exception):
            text = record.getMessage()
            error = record.exc_info[1] if record.exc_info else None
            if isinstance(error, OCPPError):
                # a request answered with a CALLERROR on purpose: no traceback needed
                text = f"{text} (answered with {error.code}: {error.description})"
                record.exc_info = None
                record.exc_text = None
                record.levelno, record.levelname = logging.WARNING, "WARNING"
            redacted = self.redact(text)
            if redacted != text:  # a traceback could repeat the secret
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = clip(redacted.replace("\n", "\\n")), ()
        return True


def library_logger(name: str, redact: Callable[[str], str] | None = None) -> logging.Logger:
    """The OCPP library's logger for an adapter's sessions: warnings and errors only (every
    frame is logged by the adapter itself), through CsmsFrameLog."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, CsmsFrameLog) for f in logger.filters):
        logger.addFilter(CsmsFrameLog(redact))
    return logger


def limit_frame_lines(logger: logging.Logger) -> None:
    """Put an adapter's lines marked with `extra=CSMS_FRAME` under FRAME_LOG_BUDGET."""
    if not any(isinstance(f, CsmsFrameLog) for f in logger.filters):
        logger.addFilter(CsmsFrameLog(marked_only=True))


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
            if reader.done():
                self._reader_ended(ws, reader)
        finally:
            self.accepted.clear()
            await cancel_and_wait((reader, worker))
            with contextlib.suppress(Exception):
                await ws.close()
            self.cp = None
            self.ws = None

    def _reader_ended(self, ws: ClientConnection, reader: asyncio.Task[None]) -> None:
        """Say why the CSMS's frames stopped being read, when the station is the cause."""
        error = None if reader.cancelled() else reader.exception()
        if isinstance(error, ConnectionClosed):
            sent = error.sent
            if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
                limit = ws.protocol.max_message_size or self.config.csms.max_frame_bytes
                log.warning(
                    "CSMS sent a frame over %d bytes: connection closed by the station "
                    "(csms.max_frame_bytes)",
                    limit,
                )
        elif error is not None:
            log.error("reading the CSMS's frames failed", exc_info=error)
        FRAME_LOG_BUDGET.flush()

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
