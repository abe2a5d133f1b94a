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
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any, Generic, NamedTuple, TypeVar

import fastjsonschema
from ocpp.charge_point import remove_nones
from ocpp.exceptions import (
    FormatViolationError,
    OCPPError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType, validate_payload
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from chargepoint.config import StationConfig
from chargepoint.core import events
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.csms.backlog_progress import BacklogProgress
from chargepoint.csms.link import Backoff, CsmsLinkError
from chargepoint.ocppschema.compiled import compiled_check
from chargepoint.store import AsyncStore, OutboxMessage, StoreError, StoreFull
from chargepoint.store.outbox import ACK_DELAY_S

log = logging.getLogger("chargepoint.ocpp")
STORE_FULL_RETRY_S = 10.0  # a full disk: the wait before a message is sent again

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
OUTBOX_READ_AHEAD = 100  # stored messages read at once by the sender


class CsmsCallError(Exception):
    """The CSMS answered a CALL with a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        self.code = code
        self.description = description
        super().__init__(f"{code}: {description}")


SCHEMA_CHECK_INLINE_CHARS = 16_384  # larger frames are checked on a thread


def _schema_error(exc: fastjsonschema.JsonSchemaValueException) -> OCPPError:
    """The library's error for a failed check (ocpp.messages._validate_payload)."""
    details = {"cause": exc.message}
    if exc.rule in ("type", "maxLength"):
        return TypeConstraintViolationError(details=details)
    if exc.rule == "required":
        return ProtocolError(details=details)
    return FormatViolationError(details=details)


async def check_schema(message: Call | CallResult, version: str, size: int) -> None:
    """The JSON-schema check the OCPP library makes of a frame the station sends or of the
    answer it gets (OCPPError when it fails), at a fraction of its cost: the library checks
    each frame with jsonschema on a thread of the default executor (0.3 ms for a
    TransactionEvent, plus the trip to the thread); this checks with the schema compiled to
    Python (20 us), inline for frames up to SCHEMA_CHECK_INLINE_CHARS, on a thread beyond."""
    check = await compiled_check(version, str(message.action), isinstance(message, CallResult))
    if check is None:
        await validate_payload(message, version)
        return
    try:
        if size <= SCHEMA_CHECK_INLINE_CHARS:
            check(message.payload)
        else:
            await asyncio.to_thread(check, message.payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _schema_error(exc) from None


class CheckedCall(NamedTuple):
    """A CALL's payload as it is sent (None values left out), checked against its schema."""

    frame: dict[str, Any]
    text: str  # frame as JSON


def call_frame(payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The payload of a CALL as it is sent (None values left out), and as JSON.

    Most payloads hold no None: their JSON has no `null` anywhere (a None is written as
    `null`, so a text without it had none), and the payload is sent as it is, without the
    copy `remove_nones` makes of every dict and list (a text with `null`, if only inside a
    string, is made again from that copy)."""
    text = json.dumps(payload, separators=(",", ":"))
    if "null" not in text:
        return payload, text
    frame: dict[str, Any] = remove_nones(payload)
    return frame, json.dumps(frame, separators=(",", ":"))


async def check_call(action: str, payload: dict[str, Any], version: str) -> CheckedCall:
    """The schema check of a CALL as it is sent (for `send(action, payload, checked=...)`)."""
    frame, text = call_frame(payload)
    await check_schema(Call("-", action, frame), version, len(text))
    return CheckedCall(frame, text)


class CsmsSessionLoop(Generic[CP]):
    def __init__(self, config: StationConfig, calls: ModuleType, store: AsyncStore) -> None:
        """`calls`: the version's library module of CALL payload classes (ocpp.v16.call);
        the frames are sent from the camelCase payloads (see send)."""
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
        self.awaiting: str | None = None  # the message id of the CALL waiting for its answer
        self._reply: asyncio.Future[CallResult | CallError] | None = None  # its answer
        self._reply_size = 0  # characters of the last answer's frame
        self._backlog: BacklogProgress | None = None  # the backlog being drained

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

    @property
    def draining_backlog(self) -> bool:
        """Whether the sender is draining a backlog (see BacklogProgress)."""
        return self._backlog is not None

    async def _drain_forever(self) -> None:
        """Stored transaction messages first, in order (read ahead OUTBOX_READ_AHEAD at a
        time); then the volatile ones. The CSMS's acknowledgements are written in groups
        (see chargepoint.store.outbox); all of them are on disk before the sender waits.
        A read-ahead that comes back full starts a backlog: its progress is logged, not
        every message (BacklogProgress)."""
        ahead: deque[OutboxMessage] = deque()
        try:
            while True:
                self._outbox_event.clear()
                if not ahead:
                    ahead.extend(await self.store.read_ahead(OUTBOX_READ_AHEAD))
                    if self._backlog is None and len(ahead) >= OUTBOX_READ_AHEAD:
                        self._backlog = BacklogProgress(await self.store.outbox_length())
                if ahead:
                    message = ahead.popleft()
                    if not await self._send_one(message):
                        ahead.clear()  # kept for a retry: read again from it
                    continue
                if self._backlog is not None:
                    self._backlog.finished()
                    self._backlog = None
                with contextlib.suppress(StoreFull):  # written with the next write that succeeds
                    await self.store.flush_acks()
                if not self._volatile.empty():
                    action, payload = self._volatile.get_nowait()
                    with contextlib.suppress(CsmsCallError, TimeoutError):
                        self._volatile_answered(action, await self.send(action, payload))
                    continue
                await self._outbox_event.wait()
        finally:
            self._backlog = None

    async def _send_one(self, message: OutboxMessage) -> bool:
        """Send one stored message; False when it is kept for a retry (not settled)."""
        with contextlib.suppress(StoreFull):  # a full disk: they wait in memory
            await self.store.flush_acks(ACK_DELAY_S)  # none waits long for an answer
        try:
            await self._send_durable(message)
        except StoreFull as exc:
            # the answer could not be recorded: keep the connection, send it again
            # once the store takes writes (the CSMS sees the same message again)
            log.warning(
                "storage full: %s's answer not recorded (%s); sending it again in %g s",
                message.kind,
                exc,
                STORE_FULL_RETRY_S,
            )
            await asyncio.sleep(STORE_FULL_RETRY_S)
            return False
        if not self.store.settled(message.seq):
            return False
        if self._unrecognisable_when_repeated(message):
            with contextlib.suppress(StoreFull):
                await self.store.flush_acks()
        backlog = self._backlog
        if backlog is not None and backlog.settled():
            with contextlib.suppress(StoreError):  # the total of the last line, then
                backlog.update(await self.store.outbox_length())
            backlog.report()
        return True

    def _unrecognisable_when_repeated(self, message: OutboxMessage) -> bool:
        """A message the CSMS cannot tell from a new one when it comes again (a 1.6
        StartTransaction gets a new transactionId): its acknowledgement is written at once,
        not with its group, so that a power loss repeats it no more often than before."""
        return self.config.csms.ocpp_version == "1.6" and message.kind == events.TRANSACTION_STARTED

    # ---- calls -----------------------------------------------------------------------------

    async def send(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        checked: CheckedCall | None = None,
        quiet: bool = False,
    ) -> dict[str, Any]:
        """One CALL; CsmsCallError on CALLERROR (or a frame its schema refuses),
        TimeoutError, ConnectionClosed. `checked`: what check_call made of `payload` (checked
        against its schema already). `quiet`: the line for a CALL answered goes
        to DEBUG, not INFO (a backlog being drained: its progress is logged instead).

        The frame is written here from the camelCase payload as it is (the library's way
        through its payload classes and back costs more than the round trip on loopback) and
        sent through the library's connection under its lock for one outstanding CALL; the
        answer comes from the adapter's reader (take_reply)."""
        cp: Any = self.cp
        if cp is None:
            raise ConnectionError("not connected to the CSMS")
        frame, text = checked if checked is not None else call_frame(payload)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("-> %s %s", action, clip(text))
        started = time.monotonic()
        version = self.config.csms.ocpp_version
        timeout = self.config.csms.call_timeout
        try:
            if checked is None:
                await check_schema(Call("-", action, frame), version, len(text))
            unique_id = str(uuid.uuid4())
            call_text = f"[2,{json.dumps(unique_id)},{json.dumps(action)},{text}]"
            async with cp._call_lock:
                reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self.awaiting, self._reply = unique_id, reply
                try:
                    await cp._send(call_text)
                    async with asyncio.timeout(timeout):
                        response = await reply
                except TimeoutError:
                    log.warning("-> %s %s <- no answer within %s s", action, clip(text), timeout)
                    raise TimeoutError(f"no answer to {action} within {timeout} s") from None
                finally:
                    if self.awaiting == unique_id:
                        self.awaiting, self._reply = None, None
            if response.message_type_id == MessageType.CallError:
                raise response.to_exception()
            answer = response.payload
            if not isinstance(answer, dict):
                raise FormatViolationError(details={"cause": "the payload is no JSON object"})
            response.action = action
            await check_schema(response, version, self._reply_size)
        except OCPPError as exc:
            log.warning(
                "-> %s %s <- CALLERROR %s: %s", action, clip(text), exc.code, exc.description
            )
            raise CsmsCallError(exc.code, str(exc.description)) from exc
        level = logging.DEBUG if quiet else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "-> %s %s <- %.0f ms %s",
                action,
                clip(text),
                (time.monotonic() - started) * 1000,
                clip(json.dumps(answer), LOG_RESULT_CHARS),
            )
        return answer

    def reply_expected(self, unique_id: Any) -> bool:
        """Whether a CALLRESULT or CALLERROR with this message id answers the CALL the
        station is waiting on (any other is for a CALL it never sent, or one given up)."""
        return self.awaiting is not None and unique_id == self.awaiting

    def take_reply(self, reply: CallResult | CallError, size: int) -> None:
        """The adapter's reader got the answer to the CALL waited on (reply_expected), a
        frame of `size` characters."""
        waiting = self._reply
        if waiting is not None and not waiting.done() and reply.unique_id == self.awaiting:
            self._reply_size = size
            waiting.set_result(reply)

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
