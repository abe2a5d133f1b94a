"""One station's connection: the version-independent part of the CSMS side.

Every frame is logged both ways; the station's CALLs are recorded, checked against the schemas of
its OCPP version and answered (or failed, garbled, delayed, overridden as the test asked); the
CSMS's own CALLs (`send_call`) are validated before sending and their answers after; `send_raw`
waits for the reply to any frame. The version modules (`v16`, `v201`) add the `@on` handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from ocpp.charge_point import (  # type: ignore[import-untyped, unused-ignore]
    ChargePoint as _LibChargePoint,
)
from ocpp.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    NotImplementedError as OcppNotImplemented,
)
from ocpp.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    NotSupportedError,
    OCPPError,
)
from ocpp.messages import (  # type: ignore[import-untyped, unused-ignore]
    Call,
    CallError,
    CallResult,
    unpack,
    validate_payload,
)
from ocpp.v16.enums import Action as Action16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201.enums import Action as Action201  # type: ignore[import-untyped, unused-ignore]
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from chargepoint.testcsms.errors import CallErrorReply, SchemaViolation, StationNotConnected
from chargepoint.testcsms.ocppj import log, ocpp_error_text, unique_id_of
from chargepoint.testcsms.payload_keys import answer_payload, snake_keys
from chargepoint.testcsms.records import Frame, Received, ResponseHandler, SentError
from chargepoint.testcsms.schemas import check_payload


def unhandled_action(action: str, version: str) -> OCPPError:
    """The CALLERROR for a CALL no handler takes: NotImplemented for an action of `version`
    (OCPP-J 4.2.3), NotSupported for one the version does not have."""
    actions = Action16 if version == "1.6" else Action201
    try:
        actions(action)
    except ValueError:
        return NotSupportedError(details={"cause": f"{action} not supported by OCPP{version}."})
    return OcppNotImplemented(details={"cause": f"No handler for {action} registered."})


class SessionHost(Protocol):
    """What a session needs from the CSMS it belongs to (`TestCsms` is one)."""

    # the answers (may change while running)
    boot_status: str
    heartbeat_interval: int
    accept_id_tags: set[str] | None
    # what was seen
    sent_errors: list[SentError]
    bad_frames: list[Frame]
    _answered: set[tuple[str, str]]

    def _record(self, rec: Received) -> None: ...
    def _frame(self, station_id: str, direction: Literal["in", "out"], text: str) -> None: ...

    # what the test asked for
    def _take_garbage(self, action: str) -> str | None: ...
    def _take_failure(self, action: str) -> str | None: ...
    def _delay_for(self, action: str) -> float: ...
    def _override_for(self, action: str) -> ResponseHandler | None: ...

    # OCPP 1.6 transaction ids
    def _start_transaction(self, station_id: str, unique_id: str, key: tuple[Any, ...]) -> int: ...

    # id tokens answered otherwise than Accepted/Invalid: (status, parent/group, expiry)
    def _tag_answer(self, id_tag: str) -> tuple[str, str | None, str | None] | None: ...


@dataclass
class _RawWaiter:
    unique_id: str | None
    future: asyncio.Future[str]


class Session(_LibChargePoint):  # type: ignore[misc, unused-ignore]
    """Version-independent part of a station's connection.

    Overrides the library's `route_message` to record every frame, apply `fail_next`/`delay`/
    `respond_with`, and to route CALLRESULT/CALLERROR frames to `call()` and `send_raw()` (the
    library's own `call()` is not used: it takes dataclasses and converts keys).
    Subclasses add the library's version class (`ocpp.v16.ChargePoint`,
    `ocpp.v201.ChargePoint`: `_call`, `_call_result`, `_ocpp_version`) and the `@on` handlers.
    """

    subprotocol: ClassVar[str]
    # OCPP 1.6 spells the generic JSON error "FormationViolation"; the library uses 2.0.1's name.
    error_code_map: ClassVar[dict[str, str]] = {}

    def __init__(self, station_id: str, connection: ServerConnection, csms: SessionHost) -> None:
        super().__init__(station_id, connection)
        self.station_id = station_id
        self.connection = connection
        self.csms = csms
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._raw_waiters: list[_RawWaiter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._outgoing = asyncio.Lock()
        self._incoming_actions: dict[str, str] = {}
        # the station's CALLs whose answer the handler is making: checked as it is sent
        self._answers_to_check: set[str] = set()
        # per `@on`/`@after` handler (bound method): whether it takes `call_unique_id`
        self._wants_unique_id: dict[Any, bool] = {}

    # -- incoming ------------------------------------------------------------------------
    async def route_message(self, raw_msg: str | bytes) -> None:
        text = raw_msg if isinstance(raw_msg, str) else raw_msg.decode("utf-8", "replace")
        self.csms._frame(self.station_id, "in", text)
        try:
            msg = unpack(text)
        except OCPPError as error:
            log.warning("%s: bad frame %r: %s", self.station_id, text, ocpp_error_text(error))
            self.csms.bad_frames.append(Frame(self.station_id, "in", text, time.monotonic()))
            return
        if isinstance(msg, Call):
            await self._on_call(msg, text)
            return
        self._on_reply(msg, text)

    async def _on_call(self, msg: Any, text: str) -> None:
        uid = str(msg.unique_id)
        # The record's payload is a parse of its own (unpack made a Call of the 4 elements of
        # this same text): the CALL's checks and handler read `msg.payload`, the tests and
        # listeners `rec.payload`, and the two share no dict or list, so neither can change
        # the other (as deep a copy as copy.deepcopy made, by the C parser: less time).
        payload = json.loads(text)[3] if isinstance(msg.payload, dict) else {}
        rec = Received(
            self.station_id,
            str(msg.action),
            payload,
            uid,
            time.monotonic(),
            str(self._ocpp_version),
        )
        self._incoming_actions[uid] = rec.action
        self.csms._record(rec)
        garbage = self.csms._take_garbage(rec.action)
        if garbage is not None:  # a broken answer: the station must not take it as one
            text = garbage.replace("{id}", json.dumps(uid))
            with contextlib.suppress(ConnectionClosed):
                await self._connection.send(text)  # not through _send: it is no answer
                self.csms._frame(self.station_id, "out", text)
            return
        code = self.csms._take_failure(rec.action)
        if code is not None:
            error = CallError(msg.unique_id, code, "Test CSMS: failure injected by fail_next", {})
            with contextlib.suppress(ConnectionClosed):
                await self._send(error.to_json())
            return
        delay = self.csms._delay_for(rec.action)
        if delay > 0:
            task = asyncio.create_task(self._answer_later(msg, rec, delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        await self._answer(msg, rec)

    async def _answer_later(self, msg: Any, rec: Received, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(ConnectionClosed):
            await self._answer(msg, rec)

    async def _answer(self, msg: Any, rec: Received) -> None:
        override = self.csms._override_for(rec.action)
        try:
            if override is None:
                await self._handle(msg)
                return
            await check_payload(msg, self._ocpp_version)
            answer = override(rec)
            payload = await answer if inspect.isawaitable(answer) else answer
            response = msg.create_call_result(payload)
            await check_payload(response, self._ocpp_version)
            await self._send(response.to_json())
        except OCPPError as error:
            log.warning("%s: %s refused: %s", self.station_id, rec.action, ocpp_error_text(error))
            reply = msg.create_call_error(error)
            reply.error_code = self.error_code_map.get(reply.error_code, reply.error_code)
            await self._send(reply.to_json())
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("%s: answering %s failed", self.station_id, rec.action)
            await self._send(msg.create_call_error(RuntimeError()).to_json())  # InternalError

    async def _handle(self, msg: Any) -> None:
        """The library's answer from the `@on` handler (ocppj.on: without the library's schema
        checks), the CALL checked first and the answer as it is sent (`_send`)."""
        if msg.action in self.route_map:  # else the library's NotImplemented / NotSupported
            await check_payload(msg, self._ocpp_version)
        uid = str(msg.unique_id)
        self._answers_to_check.add(uid)
        try:
            await self._handle_call(msg)
        finally:
            self._answers_to_check.discard(uid)

    async def _handle_call(self, msg: Any) -> Any:
        """The library's `ChargePoint._handle_call` (the `@on` handler's answer, the `@after`
        hook), its key renaming done once per key (payload_keys) and each handler's signature
        read once; the answer goes out through `_send` as the library sends it."""
        handlers = self.route_map.get(msg.action)
        handler = handlers.get("_on_action") if handlers is not None else None
        if handlers is None or handler is None:
            raise unhandled_action(msg.action, self._ocpp_version)
        if not handlers.get("_skip_schema_validation", False):
            await validate_payload(msg, self._ocpp_version)
        arguments = snake_keys(msg.payload)
        try:
            response = handler(**arguments, **self._unique_id_argument(handler, msg))
            if inspect.isawaitable(response):
                response = await response
        except Exception as error:
            log.exception("%s: error while handling request %s", self.station_id, msg)
            await self._send(msg.create_call_error(error).to_json())
            return None
        result = msg.create_call_result(answer_payload(response))
        if not handlers.get("_skip_schema_validation", False):
            await validate_payload(result, self._ocpp_version)
        await self._send(result.to_json())
        after = handlers.get("_after_action")
        if after is None:
            return response
        response = after(**arguments, **self._unique_id_argument(after, msg))
        if inspect.isawaitable(response):  # as the library: not awaited here (it may call)
            task = asyncio.ensure_future(response)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return response

    def _unique_id_argument(self, handler: Any, msg: Any) -> dict[str, Any]:
        """`call_unique_id=` for a handler that names it in its signature (read once)."""
        wants = self._wants_unique_id.get(handler)
        if wants is None:
            wants = "call_unique_id" in inspect.signature(handler).parameters
            self._wants_unique_id[handler] = wants
        return {"call_unique_id": msg.unique_id} if wants else {}

    def _on_reply(self, msg: Any, text: str) -> None:
        uid = str(msg.unique_id)
        matched = False
        future = self._pending.get(uid)
        if future is not None and not future.done():
            future.set_result(msg)
            matched = True
        for waiter in self._raw_waiters:
            if waiter.future.done():
                continue
            if waiter.unique_id == uid or (waiter.unique_id is None and isinstance(msg, CallError)):
                waiter.future.set_result(text)
                matched = True
        if not matched:
            log.warning("%s: reply to no outstanding CALL: %s", self.station_id, text)

    # -- outgoing ------------------------------------------------------------------------
    async def _send(self, message: str) -> None:
        try:
            frame = json.loads(message)
        except ValueError:
            frame = None
        if not isinstance(frame, list) or len(frame) < 2:
            await self._connection.send(message)
            self.csms._frame(self.station_id, "out", message)
            return
        uid = str(frame[1])
        if frame[0] == 3 and len(frame) >= 3 and uid in self._answers_to_check:
            # a handler's answer: its schema check (OCPPError: answered with a CALLERROR)
            self._answers_to_check.discard(uid)
            answer = CallResult(uid, frame[2], self._incoming_actions[uid])
            await check_payload(answer, self._ocpp_version)
        await self._connection.send(message)
        self.csms._frame(self.station_id, "out", message)
        if uid not in self._incoming_actions:
            return  # not an answer to a station's CALL (send_raw may send anything)
        if frame[0] == 3:
            self.csms._answered.add((self.station_id, uid))
        elif frame[0] == 4 and len(frame) >= 4:
            self.csms.sent_errors.append(
                SentError(
                    self.station_id,
                    uid,
                    self._incoming_actions.get(uid),
                    str(frame[2]),
                    str(frame[3]),
                    time.monotonic(),
                )
            )

    async def send_call(
        self, action: str, payload: dict[str, Any], seconds: float, validate: bool
    ) -> dict[str, Any]:
        unique_id = str(uuid.uuid4())
        if validate:
            try:
                await check_payload(
                    Call(unique_id, action, copy.deepcopy(payload)), self._ocpp_version
                )
            except OCPPError as error:
                raise SchemaViolation(action, "request", ocpp_error_text(error)) from error
        text = json.dumps([2, unique_id, action, payload], separators=(",", ":"))
        async with self._outgoing:  # OCPP-J: one outstanding CALL per direction
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending[unique_id] = future
            try:
                await self._send(text)
                async with asyncio.timeout(seconds):
                    reply = await future
            except TimeoutError:
                raise TimeoutError(
                    f"{self.station_id}: no answer to {action} within {seconds} s"
                ) from None
            except ConnectionClosed as closed:
                raise StationNotConnected(f"{self.station_id}: connection closed") from closed
            finally:
                gone = self._pending.pop(unique_id, None)
                if gone is not None and gone.done() and not gone.cancelled():
                    gone.exception()  # failed by closed() while the send itself failed: seen
        if isinstance(reply, CallError):
            details = reply.error_details if isinstance(reply.error_details, dict) else {}
            raise CallErrorReply(str(reply.error_code), str(reply.error_description), details)
        answer = reply.payload
        if not isinstance(answer, dict):
            raise SchemaViolation(action, "response", f"payload is not an object: {answer!r}")
        if validate:
            try:
                await check_payload(
                    CallResult(unique_id, copy.deepcopy(answer), action), self._ocpp_version
                )
            except OCPPError as error:
                raise SchemaViolation(action, "response", ocpp_error_text(error)) from error
        return answer

    async def send_raw(self, text: str, seconds: float) -> str | None:
        waiter = _RawWaiter(unique_id_of(text), asyncio.get_running_loop().create_future())
        self._raw_waiters.append(waiter)
        try:
            await self._send(text)
            async with asyncio.timeout(seconds):
                return await waiter.future
        except TimeoutError:
            return None
        finally:
            self._raw_waiters.remove(waiter)

    def closed(self) -> None:
        """The connection is gone: fail outstanding CALLs, drop late answers."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(StationNotConnected(f"{self.station_id}: connection lost"))
        for task in list(self._tasks):
            task.cancel()
