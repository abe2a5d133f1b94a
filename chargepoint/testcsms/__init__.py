"""A test CSMS for OCPP 1.6J and OCPP 2.0.1: integration tests, benchmarks and the demo.

Built on the `ocpp` library's server side: a websockets server whose connection handler wraps each
station's connection in a library ChargePoint subclass chosen by the negotiated subprotocol
("ocpp1.6": `Ocpp16Session`, "ocpp2.0.1": `Ocpp201Session`; see `SESSION_CLASSES`). The CSMS
offers the versions given to its constructor (both by default) and takes the first subprotocol in
the station's list (the station lists them in its order of preference) that it offers. The default
answers come from `@on` handlers, so every CALL a station sends is checked against the OCPP JSON
schemas of its version and a violation is answered with a CALLERROR (and listed in
`TestCsms.sent_errors`).

What the tests get:
- `received`: every CALL the stations sent, in arrival order, with the payload as on the wire
  (camelCase), including CALLs answered with a CALLERROR on purpose (`fail_next`).
- `call()`: CSMS -> station CALLs with an action name and a camelCase payload dict, one outstanding
  CALL per station as OCPP-J requires; `send_raw()` for frames the schemas would refuse.
- Outages (`refuse_connections`, `disconnect`), late answers (`delay`), CALLERRORs (`fail_next`),
  custom answers (`respond_with`), and `transaction_log()` (1.6) / `transaction_log_201()` (2.0.1)
  built from what was received. All of these work the same for both versions; the action names
  and payloads are those of the station's version.
- Security profiles: HTTP Basic auth per station (1, 2), TLS (2) and TLS client certificates (3);
  `generate_test_pki()` writes a CA, a server and a client certificate for such tests.

Transactions: StartTransaction gets a fresh transactionId from one counter starting at 1. A
StartTransaction repeated with the same connectorId, idTag, meterStart and timestamp (a station
resending because the answer was lost) gets the same transactionId again, as a real CSMS
deduplicates it.

OCPP 2.0.1 transactions: the station names them (`transactionInfo.transactionId`, a string), so
the CSMS assigns nothing; `transaction_log_201()` groups the TransactionEvents by that id. Id
tokens are checked against `accept_id_tags` case-insensitively (the 2.0.1 spec says IdToken is
case insensitive); a token of type "NoAuthorization" is always Accepted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import datetime as dt
import hmac
import http
import inspect
import ipaddress
import json
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, cast
from urllib.parse import unquote, urlsplit

from ocpp import routing as ocpp_routing  # type: ignore[import-untyped, unused-ignore]
from ocpp.charge_point import (  # type: ignore[import-untyped, unused-ignore]
    ChargePoint as _LibChargePoint,
)
from ocpp.exceptions import OCPPError  # type: ignore[import-untyped, unused-ignore]
from ocpp.messages import (  # type: ignore[import-untyped, unused-ignore]
    Call,
    CallError,
    CallResult,
    unpack,
    validate_payload,
)
from ocpp.v16 import ChargePoint as _ChargePoint16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call_result as result16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import datatypes as datatypes16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16.enums import Action as Action16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import ChargePoint as _ChargePoint201  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as result201  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import datatypes as datatypes201  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201.enums import Action as Action201  # type: ignore[import-untyped, unused-ignore]
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

log = logging.getLogger("chargepoint.testcsms")

SUBPROTOCOL_16 = "ocpp1.6"
SUBPROTOCOL_201 = "ocpp2.0.1"
# `TestCsms(versions=...)` names versions; each is offered as this subprotocol.
VERSION_SUBPROTOCOLS: dict[str, str] = {"1.6": SUBPROTOCOL_16, "2.0.1": SUBPROTOCOL_201}
OCPP_PATH = "/ocpp"

_F = TypeVar("_F", bound=Callable[..., Any])


def _on(action: str) -> Callable[[_F], _F]:
    """`ocpp.routing.on` with a type (the library has none)."""
    return cast(Callable[[_F], _F], ocpp_routing.on(action))


def utc_now_text() -> str:
    """The current UTC time as OCPP wants it: ISO 8601 with milliseconds and a `Z`."""
    now = dt.datetime.now(dt.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Received:
    """One CALL a station sent."""

    station_id: str
    action: str
    payload: dict[str, Any]
    unique_id: str
    at: float  # time.monotonic()
    ocpp_version: str = "1.6"  # of the connection it came on: "1.6" or "2.0.1"


@dataclass(frozen=True)
class SentError:
    """A CALLERROR the CSMS answered a station's CALL with (injected, or a schema violation)."""

    station_id: str
    unique_id: str
    action: str | None
    code: str
    description: str
    at: float


@dataclass(frozen=True)
class Frame:
    """One websocket text frame, in (from the station) or out (to the station)."""

    station_id: str
    direction: Literal["in", "out"]
    text: str
    at: float


@dataclass(frozen=True)
class Handshake:
    """One opening handshake and the HTTP status it got (101 = accepted)."""

    station_id: str | None
    path: str
    status: int
    reason: str
    at: float


class CallErrorReply(Exception):
    """The station answered a CSMS CALL with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any] | None) -> None:
        self.code = code
        self.description = description
        self.details = details or {}
        super().__init__(f"{code}: {description} {self.details}")


class SchemaViolation(ValueError):
    """A payload failed the OCPP JSON schema: ours before sending, or the station's answer."""

    def __init__(self, action: str, what: str, cause: str) -> None:
        self.action = action
        self.what = what
        self.cause = cause
        super().__init__(f"{action} {what} violates the schema: {cause}")


class StationNotConnected(ConnectionError):
    """The station has no connection to the CSMS (or lost it while a CALL was outstanding)."""


ResponseHandler = Callable[[Received], dict[str, Any] | Awaitable[dict[str, Any]]]


def _ocpp_error_text(error: Exception) -> str:
    if isinstance(error, OCPPError):
        details = error.details if isinstance(error.details, dict) else {}
        cause = details.get("cause", "")
        return f"{error.code}: {error.description} {cause}".strip()
    return repr(error)


def _unique_id_of(text: str) -> str | None:
    """The unique id of a frame, when it parses as an OCPP-J array with one."""
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    if (
        isinstance(frame, list)
        and len(frame) >= 2
        and isinstance(frame[1], str | int)
        and not isinstance(frame[1], bool)
    ):
        return str(frame[1])
    return None


# --------------------------------------------------------------------------------------------
# Sessions: one per station connection, the class chosen by subprotocol


@dataclass
class _RawWaiter:
    unique_id: str | None
    future: asyncio.Future[str]


class _Session(_LibChargePoint):  # type: ignore[misc, unused-ignore]
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

    def __init__(self, station_id: str, connection: ServerConnection, csms: TestCsms) -> None:
        super().__init__(station_id, connection)
        self.station_id = station_id
        self.connection = connection
        self.csms = csms
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._raw_waiters: list[_RawWaiter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._outgoing = asyncio.Lock()
        self._incoming_actions: dict[str, str] = {}

    # -- incoming ------------------------------------------------------------------------
    async def route_message(self, raw_msg: str | bytes) -> None:
        text = raw_msg if isinstance(raw_msg, str) else raw_msg.decode("utf-8", "replace")
        self.csms._frame(self.station_id, "in", text)
        try:
            msg = unpack(text)
        except OCPPError as error:
            log.warning("%s: bad frame %r: %s", self.station_id, text, _ocpp_error_text(error))
            self.csms.bad_frames.append(Frame(self.station_id, "in", text, time.monotonic()))
            return
        if isinstance(msg, Call):
            await self._on_call(msg)
            return
        self._on_reply(msg, text)

    async def _on_call(self, msg: Any) -> None:
        uid = str(msg.unique_id)
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        rec = Received(
            self.station_id,
            str(msg.action),
            copy.deepcopy(payload),
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
        delay = self.csms._delays.get(rec.action, 0.0)
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
        override = self.csms._overrides.get(rec.action)
        try:
            if override is None:
                await self._handle_call(msg)
                return
            await validate_payload(msg, self._ocpp_version)
            answer = override(rec)
            payload = await answer if inspect.isawaitable(answer) else answer
            response = msg.create_call_result(payload)
            await validate_payload(response, self._ocpp_version)
            await self._send(response.to_json())
        except OCPPError as error:
            log.warning("%s: %s refused: %s", self.station_id, rec.action, _ocpp_error_text(error))
            reply = msg.create_call_error(error)
            reply.error_code = self.error_code_map.get(reply.error_code, reply.error_code)
            await self._send(reply.to_json())
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("%s: answering %s failed", self.station_id, rec.action)
            await self._send(msg.create_call_error(RuntimeError()).to_json())  # InternalError

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
        await self._connection.send(message)
        self.csms._frame(self.station_id, "out", message)
        try:
            frame = json.loads(message)
        except ValueError:
            return
        if not isinstance(frame, list) or len(frame) < 2:
            return
        uid = str(frame[1])
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
                await validate_payload(
                    Call(unique_id, action, copy.deepcopy(payload)), self._ocpp_version
                )
            except OCPPError as error:
                raise SchemaViolation(action, "request", _ocpp_error_text(error)) from error
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
                self._pending.pop(unique_id, None)
        if isinstance(reply, CallError):
            details = reply.error_details if isinstance(reply.error_details, dict) else {}
            raise CallErrorReply(str(reply.error_code), str(reply.error_description), details)
        answer = reply.payload
        if not isinstance(answer, dict):
            raise SchemaViolation(action, "response", f"payload is not an object: {answer!r}")
        if validate:
            try:
                await validate_payload(
                    CallResult(unique_id, copy.deepcopy(answer), action), self._ocpp_version
                )
            except OCPPError as error:
                raise SchemaViolation(action, "response", _ocpp_error_text(error)) from error
        return answer

    async def send_raw(self, text: str, seconds: float) -> str | None:
        waiter = _RawWaiter(_unique_id_of(text), asyncio.get_running_loop().create_future())
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


class Ocpp16Session(_Session, _ChargePoint16):  # type: ignore[misc, unused-ignore]
    """OCPP 1.6J: the answers a CSMS gives to the station-initiated CALLs."""

    subprotocol = SUBPROTOCOL_16
    error_code_map: ClassVar[dict[str, str]] = {"FormatViolation": "FormationViolation"}

    def _id_tag_info(self, id_tag: str) -> Any:
        return datatypes16.IdTagInfo(status=self.csms._tag_status(id_tag))

    @_on(Action16.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return result16.BootNotification(
            current_time=utc_now_text(),
            interval=int(self.csms.heartbeat_interval),
            status=self.csms.boot_status,
        )

    @_on(Action16.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return result16.Heartbeat(current_time=utc_now_text())

    @_on(Action16.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return result16.Authorize(id_tag_info=self._id_tag_info(id_tag))

    @_on(Action16.start_transaction)
    def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        call_unique_id: str,
        **_: Any,
    ) -> Any:
        transaction_id = self.csms._start_transaction(
            self.station_id, str(call_unique_id), (connector_id, id_tag, meter_start, timestamp)
        )
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info=self._id_tag_info(id_tag)
        )

    @_on(Action16.stop_transaction)
    def on_stop_transaction(self, id_tag: str | None = None, **_: Any) -> Any:
        if id_tag is None:
            return result16.StopTransaction()
        return result16.StopTransaction(id_tag_info=self._id_tag_info(id_tag))

    @_on(Action16.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return result16.MeterValues()

    @_on(Action16.status_notification)
    def on_status_notification(self, **_: Any) -> Any:
        return result16.StatusNotification()

    @_on(Action16.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return result16.DataTransfer(status="Accepted")

    @_on(Action16.diagnostics_status_notification)
    def on_diagnostics_status_notification(self, **_: Any) -> Any:
        return result16.DiagnosticsStatusNotification()

    @_on(Action16.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> Any:
        return result16.FirmwareStatusNotification()

    # Security extension (OCPP 1.6 security whitepaper), answered so a station may use them.
    @_on(Action16.security_event_notification)
    def on_security_event_notification(self, **_: Any) -> Any:
        return result16.SecurityEventNotification()

    @_on(Action16.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> Any:
        return result16.LogStatusNotification()

    @_on(Action16.signed_firmware_status_notification)
    def on_signed_firmware_status_notification(self, **_: Any) -> Any:
        return result16.SignedFirmwareStatusNotification()


class Ocpp201Session(_Session, _ChargePoint201):  # type: ignore[misc, unused-ignore]
    """OCPP 2.0.1: the answers a CSMS gives to the station-initiated CALLs.

    The library hands the payload over with snake_case keys, nested objects as dicts (so an
    idToken arrives as {"id_token": ..., "type": ...}). Error codes are the library's, which
    are 2.0.1's ("FormatViolation", "OccurrenceConstraintViolation", ...).
    """

    subprotocol = SUBPROTOCOL_201

    def _id_token_info(self, id_token: dict[str, Any]) -> Any:
        status = self.csms._id_token_status(
            str(id_token.get("id_token", "")), str(id_token.get("type", ""))
        )
        return datatypes201.IdTokenInfoType(status=status)

    @_on(Action201.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return result201.BootNotification(
            current_time=utc_now_text(),
            interval=int(self.csms.heartbeat_interval),
            status=self.csms.boot_status,
        )

    @_on(Action201.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return result201.Heartbeat(current_time=utc_now_text())

    @_on(Action201.status_notification)
    def on_status_notification(self, **_: Any) -> Any:
        return result201.StatusNotification()

    @_on(Action201.notify_report)
    def on_notify_report(self, **_: Any) -> Any:
        return result201.NotifyReport()

    @_on(Action201.notify_event)
    def on_notify_event(self, **_: Any) -> Any:
        return result201.NotifyEvent()

    @_on(Action201.notify_monitoring_report)
    def on_notify_monitoring_report(self, **_: Any) -> Any:
        return result201.NotifyMonitoringReport()

    @_on(Action201.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return result201.Authorize(id_token_info=self._id_token_info(id_token))

    @_on(Action201.transaction_event)
    def on_transaction_event(self, id_token: dict[str, Any] | None = None, **_: Any) -> Any:
        # idTokenInfo is required in the answer when the request carried an idToken.
        if id_token is None:
            return result201.TransactionEvent()
        return result201.TransactionEvent(id_token_info=self._id_token_info(id_token))

    @_on(Action201.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return result201.MeterValues()

    @_on(Action201.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return result201.DataTransfer(status="Accepted")

    @_on(Action201.security_event_notification)
    def on_security_event_notification(self, **_: Any) -> Any:
        return result201.SecurityEventNotification()

    @_on(Action201.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> Any:
        return result201.FirmwareStatusNotification()

    @_on(Action201.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> Any:
        return result201.LogStatusNotification()

    @_on(Action201.sign_certificate)
    def on_sign_certificate(self, **_: Any) -> Any:
        return result201.SignCertificate(status="Accepted")

    @_on(Action201.reservation_status_update)
    def on_reservation_status_update(self, **_: Any) -> Any:
        return result201.ReservationStatusUpdate()

    @_on(Action201.notify_charging_limit)
    def on_notify_charging_limit(self, **_: Any) -> Any:
        return result201.NotifyChargingLimit()

    @_on(Action201.cleared_charging_limit)
    def on_cleared_charging_limit(self, **_: Any) -> Any:
        return result201.ClearedChargingLimit()

    @_on(Action201.report_charging_profiles)
    def on_report_charging_profiles(self, **_: Any) -> Any:
        return result201.ReportChargingProfiles()

    @_on(Action201.notify_customer_information)
    def on_notify_customer_information(self, **_: Any) -> Any:
        return result201.NotifyCustomerInformation()

    @_on(Action201.notify_display_messages)
    def on_notify_display_messages(self, **_: Any) -> Any:
        return result201.NotifyDisplayMessages()


# Every subprotocol the CSMS can speak and the session class of each. Which of them it offers is
# `TestCsms(versions=...)`; the station's order of preference picks among those.
SESSION_CLASSES: dict[str, type[_Session]] = {
    SUBPROTOCOL_16: Ocpp16Session,
    SUBPROTOCOL_201: Ocpp201Session,
}


# --------------------------------------------------------------------------------------------
# The CSMS


def _subject_text(subject: Iterable[Iterable[tuple[str, str]]]) -> str:
    short = {
        "commonName": "CN",
        "organizationName": "O",
        "organizationalUnitName": "OU",
        "countryName": "C",
        "localityName": "L",
        "stateOrProvinceName": "ST",
    }
    parts = [f"{short.get(name, name)}={value}" for rdn in subject for name, value in rdn]
    return ",".join(parts)


class TestCsms:
    """An OCPP 1.6J / 2.0.1 CSMS on loopback for tests; see the module docstring.

    `versions` are the OCPP versions offered ("1.6", "2.0.1"); a station offering none of them
    gets HTTP 400 in the opening handshake.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 300,
        accept_id_tags: set[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        basic_auth: dict[str, str] | None = None,
        require_client_cert: bool = False,
        versions: tuple[str, ...] = ("1.6", "2.0.1"),
    ) -> None:
        unknown = [v for v in versions if v not in VERSION_SUBPROTOCOLS]
        if unknown or not versions:
            raise ValueError(
                f"versions must be some of {sorted(VERSION_SUBPROTOCOLS)}, got {versions!r}"
            )
        self.versions = tuple(dict.fromkeys(versions))
        self.subprotocols = tuple(VERSION_SUBPROTOCOLS[v] for v in self.versions)
        # Answers; may be changed while running (e.g. Pending first, then Accepted).
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        self.accept_id_tags = accept_id_tags
        self.ssl_context = ssl_context
        self.basic_auth = basic_auth
        self.require_client_cert = require_client_cert
        if require_client_cert:
            if ssl_context is None:
                raise ValueError("require_client_cert needs an ssl_context")
            ssl_context.verify_mode = ssl.CERT_REQUIRED

        self.received: list[Received] = []
        self.sent_errors: list[SentError] = []
        self.frames: list[Frame] = []
        self.bad_frames: list[Frame] = []
        self.handshakes: list[Handshake] = []

        self._server: Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._sessions: dict[str, _Session] = {}
        self._info: dict[str, dict[str, Any]] = {}
        self._handshake_info: dict[ServerConnection, dict[str, Any]] = {}
        self._refuse = False
        self._failures: dict[str, list[str]] = {}
        self._garbage: dict[str, list[str]] = {}
        self._delays: dict[str, float] = {}
        self._overrides: dict[str, ResponseHandler] = {}
        self._listeners: list[Callable[[Received], None]] = []
        self._changed = asyncio.Event()
        self._next_transaction_id = 1
        self._tx_by_call: dict[tuple[str, str], int] = {}
        self._tx_by_key: dict[tuple[str, tuple[Any, ...]], int] = {}
        self._answered: set[tuple[str, str]] = set()
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 = a free port); returns the bound port."""
        if self._server is not None:
            raise RuntimeError("the test CSMS is already running")
        self._server = await serve(
            self._handle,
            host,
            port,
            subprotocols=[Subprotocol(p) for p in self.subprotocols],
            select_subprotocol=self._select_subprotocol,
            process_request=self._process_request,
            process_response=self._process_response,
            ssl=self.ssl_context,
        )
        self._host = host
        self._port = int(self._server.sockets[0].getsockname()[1])
        log.debug("test CSMS listening on %s", self.url)
        return self._port

    async def stop(self) -> None:
        """Close every connection (code 1001) and stop listening."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        for session in list(self._sessions.values()):
            session.closed()
        self._sessions.clear()
        self._notify()

    async def __aenter__(self) -> TestCsms:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """ws://HOST:PORT/ocpp (wss:// with TLS); a station appends "/" + its identity."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        host = self._host
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        return f"{scheme}://{host}:{self._port}{OCPP_PATH}"

    # -- behaviour -------------------------------------------------------------------------
    def refuse_connections(self, refuse: bool) -> None:
        """While True, opening handshakes get HTTP 503 (open connections stay)."""
        self._refuse = refuse

    def garble_next(self, action: str, frames: list[str]) -> None:
        """Answer the next CALLs of `action` with these raw frames instead of a CALLRESULT, one
        each (still recorded as received, not as answered); "{id}" becomes the CALL's unique
        id as a JSON string."""
        self._garbage.setdefault(action, []).extend(frames)

    def _take_garbage(self, action: str) -> str | None:
        queue = self._garbage.get(action)
        return queue.pop(0) if queue else None

    def fail_next(self, action: str, count: int = 1, error_code: str = "InternalError") -> None:
        """Answer the next `count` CALLs of `action` with a CALLERROR (still recorded)."""
        self._failures.setdefault(action, []).extend([error_code] * count)

    def delay(self, action: str, seconds: float) -> None:
        """Answer `action` `seconds` late from now on (0 = on time again)."""
        if seconds > 0:
            self._delays[action] = seconds
        else:
            self._delays.pop(action, None)

    def respond_with(self, action: str, handler: ResponseHandler | None) -> None:
        """Answer `action` with handler(received) -> camelCase payload (None = the default).

        The request and the answer are still validated against the schemas.
        """
        if handler is None:
            self._overrides.pop(action, None)
        else:
            self._overrides[action] = handler

    def add_listener(self, listener: Callable[[Received], None]) -> None:
        """Call `listener` with every received CALL as it arrives."""
        self._listeners.append(listener)

    # -- what was received -----------------------------------------------------------------
    def messages(self, action: str, station_id: str | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if r.action == action and (station_id is None or r.station_id == station_id)
        ]

    def answered(self, received: Received) -> bool:
        """Whether that CALL got a CALLRESULT (not a CALLERROR, not lost)."""
        return (received.station_id, received.unique_id) in self._answered

    async def wait_for(
        self,
        action: str,
        predicate: Callable[[Received], bool] | None = None,
        timeout: float = 10.0,
        after: int = 0,
    ) -> Received:
        """The first `action` CALL at index >= `after` in `received` that matches `predicate`.

        Already received ones count. Raises TimeoutError listing what was received.
        """
        index = after
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while index < len(self.received):
                rec = self.received[index]
                index += 1
                if rec.action == action and (predicate is None or predicate(rec)):
                    return rec
            if not await self._wait_change(deadline):
                raise TimeoutError(self._timeout_text(action, predicate, timeout, after))

    async def wait_connected(self, station_id: str, timeout: float = 10.0) -> None:
        if not await self._wait_until(lambda: self.is_connected(station_id), timeout):
            raise TimeoutError(
                f"station {station_id!r} did not connect within {timeout} s; "
                f"connected: {sorted(self._sessions)}; "
                f"last handshakes: {self.handshakes[-5:]}"
            )

    async def wait_disconnected(self, station_id: str, timeout: float = 10.0) -> None:
        if not await self._wait_until(lambda: not self.is_connected(station_id), timeout):
            raise TimeoutError(f"station {station_id!r} still connected after {timeout} s")

    def is_connected(self, station_id: str) -> bool:
        return station_id in self._sessions

    def connected_stations(self) -> list[str]:
        return sorted(self._sessions)

    def connection_info(self, station_id: str) -> dict[str, Any]:
        """The station's last accepted connection: subprotocol, auth user, client certificate.

        Keys: station_id, subprotocol (the negotiated one: "ocpp1.6" or "ocpp2.0.1"),
        ocpp_version ("1.6" or "2.0.1"), offered_subprotocols (the station's list, in its
        order), basic_auth_user, client_cert_subject, client_cert_cn, tls, path, remote,
        connections (how many were accepted so far), connected.
        Raises KeyError for a station that never connected.
        """
        info = dict(self._info[station_id])
        info["connected"] = self.is_connected(station_id)
        return info

    def ocpp_version(self, station_id: str) -> str:
        """ "1.6" or "2.0.1": the version of the station's last accepted connection (KeyError)."""
        return str(self._info[station_id]["ocpp_version"])

    @property
    def transactions(self) -> dict[int, dict[str, Any]]:
        """Same as `transaction_log()`."""
        return self.transaction_log()

    def transaction_log(self) -> dict[int, dict[str, Any]]:
        """transactionId -> {station_id, start, starts, stop, stops, meter_values}.

        Built from the CALLs that got a CALLRESULT: `start`/`stop` are the first
        StartTransaction/StopTransaction payloads, `starts`/`stops` all of them (a resend of a
        start whose answer was lost lands on the same id), `meter_values` the MeterValues
        payloads carrying that transactionId. A StopTransaction for an id never started
        appears with `start` None.
        """
        out: dict[int, dict[str, Any]] = {}

        def entry(tx: int, station_id: str) -> dict[str, Any]:
            return out.setdefault(
                tx,
                {
                    "station_id": station_id,
                    "start": None,
                    "starts": [],
                    "stop": None,
                    "stops": [],
                    "meter_values": [],
                },
            )

        for rec in self.received:
            if not self.answered(rec):
                continue
            if rec.action == "StartTransaction":
                tx = self._tx_by_call.get((rec.station_id, rec.unique_id))
                if tx is None:
                    continue
                e = entry(tx, rec.station_id)
                e["starts"].append(rec.payload)
                if e["start"] is None:
                    e["start"] = rec.payload
            elif rec.action == "StopTransaction" and "transactionId" in rec.payload:
                e = entry(int(rec.payload["transactionId"]), rec.station_id)
                e["stops"].append(rec.payload)
                if e["stop"] is None:
                    e["stop"] = rec.payload
            elif rec.action == "MeterValues" and "transactionId" in rec.payload:
                e = entry(int(rec.payload["transactionId"]), rec.station_id)
                e["meter_values"].append(rec.payload)
        return out

    def transaction_log_201(self) -> dict[str, dict[str, Any]]:
        """OCPP 2.0.1: transactionInfo.transactionId -> the TransactionEvents of that transaction.

        Each entry: {"station_id", "events": the payloads in arrival order, "started": the
        first Started payload or None, "ended": the first Ended payload or None,
        "ended_count": how many Ended, "seq_nos": the seqNo of each event in arrival order}.
        Built, like `transaction_log()`, from the CALLs that got a CALLRESULT: one refused with
        `fail_next` (or as a schema violation) is not in it, its resend is. A resend after an
        answer lost on the way counts twice (same seqNo twice in `seq_nos`).
        """
        out: dict[str, dict[str, Any]] = {}
        for rec in self.received:
            if rec.action != "TransactionEvent" or not self.answered(rec):
                continue
            info = rec.payload.get("transactionInfo")
            if not isinstance(info, dict) or not isinstance(info.get("transactionId"), str):
                continue
            e = out.setdefault(
                info["transactionId"],
                {
                    "station_id": rec.station_id,
                    "events": [],
                    "started": None,
                    "ended": None,
                    "ended_count": 0,
                    "seq_nos": [],
                },
            )
            e["events"].append(rec.payload)
            e["seq_nos"].append(rec.payload.get("seqNo"))
            event_type = rec.payload.get("eventType")
            if event_type == "Started" and e["started"] is None:
                e["started"] = rec.payload
            elif event_type == "Ended":
                e["ended_count"] += 1
                if e["ended"] is None:
                    e["ended"] = rec.payload
        return out

    # -- CSMS -> station -------------------------------------------------------------------
    async def call(
        self,
        station_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float = 30,
        *,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Send a CALL (camelCase payload as on the wire) and return the CALLRESULT payload.

        Raises CallErrorReply on a CALLERROR, TimeoutError, StationNotConnected, and
        SchemaViolation when `validate` and our payload or the station's answer fails the schema.
        """
        return await self._session(station_id).send_call(action, payload, timeout, validate)

    async def send_raw(self, station_id: str, text: str, timeout: float = 10) -> str | None:
        """Send any text frame; return the station's CALLRESULT/CALLERROR to it, or None.

        The reply is matched by unique id when `text` parses as an array with one, otherwise it
        is the first CALLERROR the station sends.
        """
        return await self._session(station_id).send_raw(text, timeout)

    async def disconnect(self, station_id: str, *, abrupt: bool = False) -> None:
        """Drop the station's connection: a close frame, or (abrupt) a TCP abort."""
        session = self._sessions.get(station_id)
        if session is None:
            return
        if abrupt:
            session.connection.transport.abort()
        else:
            await session.connection.close(1000, "test CSMS disconnect")
        await self._wait_until(lambda: self._sessions.get(station_id) is not session, 10)

    # -- internals -------------------------------------------------------------------------
    def _session(self, station_id: str) -> _Session:
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

    def _timeout_text(
        self,
        action: str,
        predicate: Callable[[Received], bool] | None,
        timeout: float,
        after: int,
    ) -> str:
        seen = self.received[after:]
        shown = [f"#{after + i} {r.station_id} {r.action} {r.payload}" for i, r in enumerate(seen)]
        if len(shown) > 30:
            shown = [f"... {len(shown) - 30} earlier", *shown[-30:]]
        what = "matching " + action if predicate is not None else action
        listing = "\n  ".join(shown) if shown else "(nothing)"
        return (
            f"no {what} within {timeout} s (from index {after}); "
            f"connected: {sorted(self._sessions)}; received:\n  {listing}"
        )

    def _record(self, rec: Received) -> None:
        self.received.append(rec)
        log.debug("%s -> %s %s", rec.station_id, rec.action, json.dumps(rec.payload))
        for listener in self._listeners:
            try:
                listener(rec)
            except Exception:
                log.exception("listener failed")
        self._notify()

    def _frame(self, station_id: str, direction: Literal["in", "out"], text: str) -> None:
        self.frames.append(Frame(station_id, direction, text, time.monotonic()))

    def _take_failure(self, action: str) -> str | None:
        queue = self._failures.get(action)
        if not queue:
            return None
        return queue.pop(0)

    def _tag_status(self, id_tag: str) -> str:
        if self.accept_id_tags is None or id_tag in self.accept_id_tags:
            return "Accepted"
        return "Invalid"

    def _id_token_status(self, id_token: str, token_type: str) -> str:
        """OCPP 2.0.1: IdToken is case insensitive; NoAuthorization carries an empty token."""
        if self.accept_id_tags is None or token_type == "NoAuthorization":
            return "Accepted"
        wanted = id_token.casefold()
        if any(tag.casefold() == wanted for tag in self.accept_id_tags):
            return "Accepted"
        return "Invalid"

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        """The first subprotocol in the station's list (its preference) that the CSMS offers."""
        info = self._handshake_info.get(connection)
        if info is not None:
            info["offered_subprotocols"] = [str(p) for p in offered]
        if not offered:
            raise NegotiationError("missing subprotocol")
        for subprotocol in offered:
            if subprotocol in self.subprotocols:
                return subprotocol
        raise NegotiationError(
            "invalid subprotocol; expected one of " + ", ".join(self.subprotocols)
        )

    def _start_transaction(self, station_id: str, unique_id: str, key: tuple[Any, ...]) -> int:
        tx = self._tx_by_call.get((station_id, unique_id)) or self._tx_by_key.get((station_id, key))
        if tx is None:
            tx = self._next_transaction_id
            self._next_transaction_id += 1
        self._tx_by_call[(station_id, unique_id)] = tx
        self._tx_by_key[(station_id, key)] = tx
        return tx

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        prefix = OCPP_PATH + "/"
        segment = path[len(prefix) :] if path.startswith(prefix) else ""
        station_id = "" if "/" in segment else unquote(segment)
        info: dict[str, Any] = {
            "station_id": station_id,
            "path": request.path,
            "basic_auth_user": None,
            "client_cert_subject": None,
            "client_cert_cn": None,
            "tls": self.ssl_context is not None,
            "remote": connection.remote_address,
            "offered_subprotocols": [],  # filled in by _select_subprotocol, which runs later
        }
        self._handshake_info[connection] = info
        if not station_id:
            return connection.respond(
                http.HTTPStatus.NOT_FOUND, f"expected {prefix}<station id>, got {path}\n"
            )
        if self._refuse:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "CSMS unavailable\n")
        user, password = _basic_credentials(request.headers)
        info["basic_auth_user"] = user
        if self.basic_auth is not None:
            expected = self.basic_auth.get(station_id)
            if (
                expected is None
                or user != station_id
                or password is None
                or not hmac.compare_digest(password.encode(), expected.encode())
            ):
                response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
                response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
                return response
        peercert = connection.transport.get_extra_info("peercert")
        if peercert:
            subject = peercert.get("subject", ())
            info["client_cert_subject"] = _subject_text(subject)
            for rdn in subject:
                for name, value in rdn:
                    if name == "commonName":
                        info["client_cert_cn"] = value
        if self.require_client_cert and not peercert:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "client certificate required\n")
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        info = self._handshake_info.get(connection, {})
        status = int(response.status_code)
        reason = response.body.decode("utf-8", "replace").strip() if response.body else ""
        self.handshakes.append(
            Handshake(
                info.get("station_id") or None, request.path, status, reason, time.monotonic()
            )
        )
        if status != http.HTTPStatus.SWITCHING_PROTOCOLS:
            self._handshake_info.pop(connection, None)
            log.info("handshake %s refused: %s %s", request.path, status, reason)
        self._notify()

    async def _handle(self, connection: ServerConnection) -> None:
        info = self._handshake_info.pop(connection, None) or {}
        station_id = str(info.get("station_id") or "")
        subprotocol = connection.subprotocol
        session_class = SESSION_CLASSES.get(str(subprotocol))
        # The handshake checks make this unreachable.
        if not station_id or session_class is None or subprotocol not in self.subprotocols:
            await connection.close(1002, "no station id or subprotocol")
            return
        session = session_class(station_id, connection, self)
        previous = self._sessions.get(station_id)
        self._sessions[station_id] = session
        count = int(self._info.get(station_id, {}).get("connections", 0)) + 1
        self._info[station_id] = {
            **info,
            "subprotocol": subprotocol,
            "ocpp_version": str(session._ocpp_version),
            "connections": count,
        }
        log.info("%s connected (%s, connection %d)", station_id, subprotocol, count)
        self._notify()
        if previous is not None:
            log.info("%s: a new connection replaces the open one", station_id)
            closing = asyncio.create_task(
                previous.connection.close(1000, "replaced by a new connection")
            )
            self._background.add(closing)
            closing.add_done_callback(self._background.discard)
        try:
            await session.start()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("%s: session failed", station_id)
        finally:
            session.closed()
            if self._sessions.get(station_id) is session:
                del self._sessions[station_id]
            log.info("%s disconnected", station_id)
            self._notify()


def _basic_credentials(headers: Headers) -> tuple[str | None, str | None]:
    value = headers.get("Authorization")
    if not value:
        return None, None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return user, (password if sep else None)


# --------------------------------------------------------------------------------------------
# A throwaway PKI for security profile 2 and 3 tests


@dataclass(frozen=True)
class TestPki:
    """A CA, a server certificate for 127.0.0.1/localhost/::1 and a client certificate."""

    __test__: ClassVar[bool] = False

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    station_id: str = "CP-1"

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            ctx.load_verify_locations(self.ca_cert)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_context(self, with_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_cert))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if with_client_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


def generate_test_pki(directory: Path, station_id: str = "CP-1") -> TestPki:
    """Write a CA, a server and a client certificate (CN = station id) as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chargepoint test PKI"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("chargepoint test CA"))
        .issuer_name(name("chargepoint test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, server: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256()), key

    server_cert, server_key = leaf("localhost", server=True)
    client_cert, client_key = leaf(station_id, server=False)
    pem = serialization.Encoding.PEM
    pki = TestPki(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        station_id=station_id,
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    pki.server_cert.write_bytes(server_cert.public_bytes(pem))
    pki.client_cert.write_bytes(client_cert.public_bytes(pem))
    write_key(server_key, pki.server_key)
    write_key(client_key, pki.client_key)
    return pki
