"""OCPP 2.0.1 adapter over the version-free core: connection, boot, handlers, outbox sender.

Mirrors the 1.6 adapter (chargepoint.csms.ocpp16.adapter): one websocket session at a time with
reconnect and backoff, a BootNotification before anything else, the durable outbox drained in
order (each transaction event becomes a TransactionEvent, chargepoint.csms.ocpp201.messages) and a
volatile queue for StatusNotification, Heartbeat, MeterValues and NotifyReport.

2.0.1 specifics:
- transactionId is the station's own (`messages.transaction_id`), seqNo the index of the
  message among its transaction's messages (`AsyncStore.message_index`): both survive
  resends and restarts.
- The device model (chargepoint.csms.ocpp201.device_model) answers Get/SetVariables and
  GetBaseReport; SecurityCtrlr.SecurityProfile and BasicAuthPassword apply from the next
  connection, so an accepted change of either closes the websocket after the response.
- While the boot is Pending, the CSMS may configure the station: Get/SetVariables,
  GetBaseReport (its NotifyReport pages go out at once), TriggerMessage; transaction requests
  are Rejected. While Rejected, CSMS calls are not answered.
- Frames that are not OCPP-J get a CALLERROR with the 2.0.1 codes: RpcFrameworkError (not
  JSON, not an array, elements missing), MessageTypeNotSupported (unknown MessageTypeId);
  an action 2.0.1 does not define is NotImplemented, one it defines but this station does
  not handle is NotSupported (OCPP 2.0.1 Part 4 4.3; the library has these two swapped).
  Schema violations keep the library's codes (FormatViolation, TypeConstraintViolation,
  ProtocolError, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocpp.exceptions import OccurrenceConstraintViolationError, OCPPError
from ocpp.messages import Call, unpack
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as LibChargePoint
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chargepoint.config import StationConfig
from chargepoint.core import events
from chargepoint.core.auth import Authorizer, AuthStatus, IdTagInfo
from chargepoint.core.diagnostics import LogUploads
from chargepoint.core.firmware import FirmwareUpdates, reported_version
from chargepoint.core.security import StationSecurity
from chargepoint.core.security_events import SecurityEventType
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.status import StatusReport
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transaction import StopReason, TxPoints
from chargepoint.csms.ocpp201 import messages as m
from chargepoint.csms.ocpp201.authorization import AuthorizationHandlers201, attach_authorization
from chargepoint.csms.ocpp201.device_model import REPORT_BASES, DeviceModel, TooManyItems
from chargepoint.csms.ocpp201.security import SecurityHandlers201, attach_security
from chargepoint.csms.ocpp201.smart_charging import (
    SmartChargingHandlers201,
    attach_smart_charging,
    remote_start_profile,
)
from chargepoint.csms.ocpp201.updates import UpdateHandlers201
from chargepoint.csms.secured_link import OUTBOX_KIND, open_secured, security_event_message
from chargepoint.csms.session import (
    CSMS_FRAME,
    CsmsCallError,
    CsmsSessionLoop,
    check_call,
    clip,
    library_logger,
    limit_frame_lines,
    message_id_of,
)
from chargepoint.csms.transaction_flags import TransactionFlags
from chargepoint.csms.update_messages import (
    UPDATE_KINDS,
    firmware_trigger,
    log_trigger,
    update_message,
)
from chargepoint.store import AsyncStore, OutboxMessage, utc_now

log = logging.getLogger("chargepoint.csms.ocpp201")
SUBPROTOCOL = "ocpp2.0.1"
OCPP_VERSION = "2.0.1"
RESET_FLUSH_TIMEOUT_S = 30.0
IDLE_POLL_S = 0.5  # Reset OnIdle: how often to look whether the station became idle
PENDING_SCAN = 10_000  # GetTransactionStatus looks at this many queued messages at most
ERROR_DESCRIPTION_MAX = 255
SECRET_VARIABLES = frozenset({"basicauthpassword"})
ACTIONS_201 = frozenset(a.value for a in Action)
STATUSES_201 = frozenset(s.value for s in AuthStatus)


def _is_secret(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    variable = entry.get("variable")
    name = variable.get("name") if isinstance(variable, dict) else None
    return isinstance(name, str) and name.lower() in SECRET_VARIABLES


def redacted(action: str, payload: Any) -> str:
    """The payload for the log, without the secrets the CSMS may send (BasicAuthPassword)."""
    if action == "SetVariables" and isinstance(payload, dict):
        entries = payload.get("setVariableData")
        if isinstance(entries, list):
            payload = {
                **payload,
                "setVariableData": [
                    {**e, "attributeValue": "***"} if _is_secret(e) else e for e in entries
                ],
            }
    return clip(json.dumps(payload))


_ATTRIBUTE_VALUE = re.compile(r"""(['"]attribute_?[vV]alue['"]\s*:\s*)(['"])(?:\\.|(?!\2).)*\2""")


def _redact_secrets(text: str) -> str:
    """A library log line without the BasicAuthPassword a SetVariables carried."""
    if "basicauthpassword" in text.lower():
        return _ATTRIBUTE_VALUE.sub(r"\1'***'", text)
    return text


# The library's logger for this adapter's sessions (see CsmsFrameLog)
_lib_log = library_logger("chargepoint.csms.ocpp201.library", _redact_secrets)
limit_frame_lines(log)


def _id_tag_info(raw: Any) -> IdTagInfo | None:
    """IdTokenInfoType (camelCase) -> the core's IdTagInfo: 2.0.1's Unknown, NoCredit,
    NotAllowedTypeEVSE, NotAtThisLocation and NotAtThisTime are Invalid here; the group id
    token is the parent, cacheExpiryDateTime the expiry."""
    if not isinstance(raw, dict) or not raw:
        return None
    status_text = str(raw.get("status", "Invalid"))
    status = AuthStatus(status_text) if status_text in STATUSES_201 else AuthStatus.INVALID
    group = raw.get("groupIdToken")
    parent = group.get("idToken") if isinstance(group, dict) else None
    expiry = raw.get("cacheExpiryDateTime")
    return IdTagInfo(
        status,
        str(expiry) if expiry else None,
        str(parent) if parent else None,
    )


def _message_id(value: Any) -> str:
    """The messageId to answer with: "-1" when it cannot be read (OCPP-J); a number is
    answered as its text so that the sender can still match the CALLERROR."""
    if isinstance(value, str):
        return value[:36]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return "-1"


def _frame_error(text: str) -> tuple[str, str]:
    """(unique id, error code) for a frame `unpack` refused."""
    unique_id = "-1"
    code = "RpcFrameworkError"
    with contextlib.suppress(ValueError, TypeError):
        parsed = json.loads(text)
        if isinstance(parsed, list) and parsed:
            if len(parsed) > 1:
                unique_id = _message_id(parsed[1])
            kind = parsed[0]
            if isinstance(kind, int) and not isinstance(kind, bool) and kind not in (2, 3, 4):
                code = "MessageTypeNotSupported"
    return unique_id, code


class StationChargePoint(
    AuthorizationHandlers201,
    SecurityHandlers201,
    UpdateHandlers201,
    SmartChargingHandlers201,
    LibChargePoint,  # type: ignore[misc]
):
    """The station's side of one websocket session (handlers for CSMS calls)."""

    def __init__(self, station_id: str, ws: ClientConnection, adapter: Ocpp201Adapter) -> None:
        super().__init__(
            station_id, ws, response_timeout=adapter.config.csms.call_timeout, logger=_lib_log
        )
        self.adapter = adapter

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Answer frames that are not OCPP-J, and CALLs of actions without a handler, with a
        CALLERROR and keep the connection."""
        text = raw_msg if isinstance(raw_msg, str) else raw_msg.decode("utf-8", "replace")
        try:
            await self._route_message(text)
        except RecursionError:
            # json and the library recurse once per nesting level: a frame nested deeper
            # than the stack allows is malformed, not the end of the connection
            log.warning(
                "bad frame from the CSMS (FormatViolation, nested too deeply): %.200s",
                text,
                extra=CSMS_FRAME,
            )
            self.adapter.security.events.record_soon(
                SecurityEventType.INVALID_MESSAGES, "FormatViolation"
            )
            await self._reply_error(message_id_of(text), "FormatViolation", "nested too deeply")

    async def _route_message(self, text: str) -> None:
        try:
            msg = unpack(text)
        except OCPPError as exc:
            unique_id, code = _frame_error(text)
            log.warning("bad frame from the CSMS (%s): %.200s", code, text, extra=CSMS_FRAME)
            self.adapter.security.events.record_soon(SecurityEventType.INVALID_MESSAGES, code)
            await self._reply_error(unique_id, code, str(exc.details.get("cause") or code))
            return
        if not isinstance(msg, Call):
            if self.adapter.reply_expected(msg.unique_id):
                self.adapter.take_reply(msg, len(text))
            else:
                # an answer to no CALL the station waits on: the library would queue it
                # for the next CALL to skip, or keep it for good
                log.debug("reply to no outstanding CALL dropped: %.100s", text, extra=CSMS_FRAME)
            return
        action = msg.action
        if not isinstance(action, str) or not isinstance(msg.unique_id, str):
            log.warning(
                "bad frame from the CSMS (RpcFrameworkError): %.200s", text, extra=CSMS_FRAME
            )
            await self._reply_error(
                _message_id(msg.unique_id),
                "RpcFrameworkError",
                "messageId and action must be strings",
            )
            return
        log.info("<- %s %s", action, redacted(action, msg.payload))
        if self.adapter.registration == "Rejected":
            # boot Rejected: the station does not answer the CSMS until accepted
            log.warning("boot Rejected: %s from the CSMS left unanswered", action)
            return
        if action not in self.route_map:
            if action in ACTIONS_201:
                code, text_ = "NotSupported", f"{action} is not supported by this station"
            else:
                code, text_ = "NotImplemented", f"{action} is not an OCPP 2.0.1 action"
            log.warning("%s from the CSMS answered with %s", action, code, extra=CSMS_FRAME)
            await self._reply_error(msg.unique_id, code, text_)
            return
        await super().route_message(text)

    async def _reply_error(self, unique_id: str, code: str, description: str) -> None:
        reply = json.dumps(
            [4, unique_id, code, description[:ERROR_DESCRIPTION_MAX], {}], separators=(",", ":")
        )
        await self._send(reply)

    # ---- CSMS -> station ---------------------------------------------------------------

    @on(Action.set_variables)
    async def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.SetVariables:
        try:
            results = await self.adapter.device_model.set_variables(set_variable_data)
        except TooManyItems as exc:
            raise OccurrenceConstraintViolationError(description=str(exc)) from exc
        return call_result.SetVariables(set_variable_result=results)

    @after(Action.set_variables)
    def after_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> None:
        changed = self.adapter.connection_settings_changed()
        if changed:
            self.adapter.start_reconnect(f"{changed} changed by the CSMS")

    @on(Action.get_variables)
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.GetVariables:
        try:
            results = self.adapter.device_model.get_variables(get_variable_data)
        except TooManyItems as exc:
            raise OccurrenceConstraintViolationError(description=str(exc)) from exc
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.get_base_report)
    def on_get_base_report(
        self, request_id: int, report_base: str, **_: Any
    ) -> call_result.GetBaseReport:
        status = "Accepted" if report_base in REPORT_BASES else "NotSupported"
        return call_result.GetBaseReport(status=status)

    @after(Action.get_base_report)
    def after_get_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        if report_base in REPORT_BASES:
            self.adapter.start_report(request_id, report_base)

    @on(Action.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> call_result.Reset:
        if evse_id is not None:
            return call_result.Reset(status="Rejected")  # no reset of a single EVSE
        if type == "OnIdle" and self.adapter.station.busy():
            return call_result.Reset(status="Scheduled")
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:
        if evse_id is None:
            self.adapter.start_reset(immediate=type != "OnIdle")

    @on(Action.change_availability)
    async def on_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> call_result.ChangeAvailability:
        station = self.adapter.station
        evse_id = int(evse.get("id", 0)) if evse else 0
        connector_id = evse.get("connector_id") if evse else None
        if evse_id != 0 and (evse_id not in station.connectors or connector_id not in (None, 1)):
            return call_result.ChangeAvailability(status="Rejected")
        status = await station.change_availability(evse_id, operational_status == "Operative")
        return call_result.ChangeAvailability(status=status)

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        adapter = self.adapter
        supported = {
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "TransactionEvent",
            "SignChargingStationCertificate",
            "LogStatusNotification",
            "FirmwareStatusNotification",
        }
        if requested_message not in supported:
            return call_result.TriggerMessage(status="NotImplemented")
        evse_id = evse.get("id") if evse else None
        connector_id = evse.get("connector_id") if evse else None
        if evse_id is not None and (
            evse_id not in adapter.station.connectors or connector_id not in (None, 1)
        ):
            return call_result.TriggerMessage(status="Rejected")
        if requested_message == "BootNotification" and adapter.registration == "Accepted":
            # F06.FR.17: no BootNotification on request once the boot was accepted
            return call_result.TriggerMessage(status="Rejected")
        if requested_message == "TransactionEvent" and not adapter.open_transactions(evse_id):
            return call_result.TriggerMessage(status="Rejected")
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> None:
        adapter = self.adapter
        evse_id = evse.get("id") if evse else None
        connector_id = evse.get("connector_id") if evse else None
        if evse_id is not None and (
            evse_id not in adapter.station.connectors or connector_id not in (None, 1)
        ):
            return
        if requested_message == "BootNotification" and adapter.registration == "Accepted":
            return
        adapter.start_triggered(requested_message, evse_id)

    @on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None, **_: Any
    ) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.unlock_connector)
    def on_unlock_connector(
        self, evse_id: int, connector_id: int, **_: Any
    ) -> call_result.UnlockConnector:
        station = self.adapter.station
        if evse_id not in station.connectors or connector_id != 1:
            return call_result.UnlockConnector(status="UnknownConnector")
        if station.open_local_id(evse_id) is not None:
            # F05.FR.02: a running transaction is not ended by an unlock
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.request_start_transaction)
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RequestStartTransaction:
        adapter = self.adapter
        station = adapter.station
        if adapter.registration != "Accepted":
            return call_result.RequestStartTransaction(status="Rejected")
        if evse_id is not None and evse_id not in station.connectors:
            return call_result.RequestStartTransaction(status="Rejected")
        id_tag = str(id_token.get("id_token", ""))
        token_type = id_token.get("type")
        profile = None
        if charging_profile is not None:
            profile = remote_start_profile(adapter, charging_profile, evse_id)
            if profile is None:
                return call_result.RequestStartTransaction(status="Rejected")
        ok = station.remote_start(
            id_tag,
            evse_id,
            remote_start_id,
            str(token_type) if token_type else None,
            charging_profile=profile,
        )
        tid = adapter.transaction_for_start(id_tag, evse_id)
        return call_result.RequestStartTransaction(
            status="Accepted" if ok else "Rejected", transaction_id=tid
        )

    @on(Action.request_stop_transaction)
    def on_request_stop_transaction(
        self, transaction_id: str, **_: Any
    ) -> call_result.RequestStopTransaction:
        adapter = self.adapter
        if adapter.registration != "Accepted":
            return call_result.RequestStopTransaction(status="Rejected")
        local_id = m.local_id_of(transaction_id, adapter.config.station.id)
        station = adapter.station
        c = station.transaction_by_local_id(local_id) if local_id is not None else None
        if c is None or not station.stop_transaction(c.id, StopReason.REMOTE):
            return call_result.RequestStopTransaction(status="Rejected")
        return call_result.RequestStopTransaction(status="Accepted")

    @on(Action.clear_cache)
    async def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        cleared = await self.adapter.authorizer.clear()
        return call_result.ClearCache(status="Accepted" if cleared else "Rejected")

    @on(Action.get_transaction_status)
    async def on_get_transaction_status(
        self, transaction_id: str | None = None, **_: Any
    ) -> call_result.GetTransactionStatus:
        in_queue, ongoing = await self.adapter.transaction_status(transaction_id)
        return call_result.GetTransactionStatus(
            messages_in_queue=in_queue, ongoing_indicator=ongoing
        )


class Ocpp201Adapter(CsmsSessionLoop[StationChargePoint]):
    """Keeps the CSMS session alive and drains the durable outbox in order."""

    firmware: FirmwareUpdates | None = None  # set by the daemon
    logs: LogUploads | None = None

    def __init__(
        self,
        config: StationConfig,
        station: Station,
        settings: Settings,
        store: AsyncStore,
        authorizer: Authorizer,
        device_model: DeviceModel,
        security: StationSecurity | None = None,
    ) -> None:
        super().__init__(config, call, store)
        self.security = security or StationSecurity(config, store)
        self.station = station
        self.settings = settings
        self.authorizer = authorizer
        self.device_model = device_model
        self._heartbeat_interval = settings.number("HeartbeatInterval")
        self.last_boot_status = ""
        self.registration = ""  # the last BootNotification answer: Accepted/Pending/Rejected
        self._boot_reason = "PowerUp"  # why the station (last) booted: RemoteReset after Reset
        self._boot_triggered = False  # TriggerMessage BootNotification while not accepted
        self._boot_retry = asyncio.Event()
        self._reported: dict[int, str] = {}  # connector -> connectorStatus last queued
        self._ended: set[int] = set()  # transactions whose Ended went out (or failed)
        # per transaction, in the store: "key_sent" (the meter's key went out), "ended"
        self._tx_flags = TransactionFlags(store, "ocpp201-tx")
        # SecurityProfile and BasicAuthPassword the current connection was opened with
        self._link_settings: tuple[int, str | None] | None = None
        self._onidle_reset: asyncio.Task[None] | None = None
        station.is_online = self.accepted.is_set
        station.outbox_changed = self._outbox_event.set
        station.volatile_meter_values = self._volatile_meter_values
        station.tx_points = lambda: TxPoints(
            device_model.tx_start_points(), device_model.tx_stop_points()
        )
        station.subscribe_status(self._on_status)
        settings.subscribe(self._on_setting)
        if device_model.live.connector_status is None:
            device_model.live.connector_status = self._connector_status
        authorizer.online = self.authorize_online
        self._own(attach_authorization(self).run(), "reservation status updates")
        attach_security(self)
        attach_smart_charging(self)
        self.security.events.outbox_changed = self._outbox_event.set

    # ---- bookkeeping -------------------------------------------------------------------

    def _on_setting(self, key: str, value: str) -> None:
        if key == "HeartbeatInterval":
            self._heartbeat_interval = int(value)

    def _security_settings(self) -> tuple[int, str | None]:
        dm = self.device_model
        return dm.security_profile(), dm.basic_auth_password()

    def connection_settings_changed(self) -> str:
        """Which of SecurityCtrlr.SecurityProfile / BasicAuthPassword differ from what the
        current connection was opened with ("" when neither): they apply from the next
        connection on (A01, A05), so the station reconnects."""
        if self._link_settings is None:
            return ""
        now = self._security_settings()
        names = [
            name
            for name, old, new in zip(
                ("SecurityProfile", "BasicAuthPassword"), self._link_settings, now, strict=True
            )
            if old != new
        ]
        return " and ".join(names)

    def _connector_status(self, connector_id: int) -> str | None:
        c = self.station.connectors.get(connector_id)
        return c.status.value if c is not None else None

    def _on_status(self, report: StatusReport) -> None:
        self._report_status(report, force=False)

    def _report_status(self, report: StatusReport, force: bool) -> None:
        """A StatusNotification when the 2.0.1 status of a connector changed (or `force`)."""
        status = m.connector_status(report.status.value)
        if not force and self._reported.get(report.connector_id) == status:
            return
        self._reported[report.connector_id] = status
        self._volatile.put_nowait(("StatusNotification", self._status_payload(report, status)))
        self._outbox_event.set()

    @staticmethod
    def _status_payload(report: StatusReport, status: str) -> dict[str, Any]:
        return {
            "timestamp": utc_now(),
            "connectorStatus": status,
            "evseId": report.connector_id,
            "connectorId": 1,
        }

    def _volatile_meter_values(
        self, connector_id: int, context: str, samples: list[events.Sample]
    ) -> None:
        if not samples:
            return
        payload = m.meter_values(connector_id, utc_now(), context, samples)
        self._volatile.put_nowait(("MeterValues", payload))
        self._outbox_event.set()

    def open_transactions(self, evse_id: int | None) -> list[tuple[int, int]]:
        """(connector id, local id) of the open transactions on one EVSE or on all."""
        targets = [evse_id] if evse_id is not None else sorted(self.station.connectors)
        found = []
        for cid in targets:
            local_id = self.station.open_local_id(cid)
            if local_id is not None:
                found.append((cid, local_id))
        return found

    def transaction_for_start(self, id_tag: str, evse_id: int | None) -> str | None:
        """The transactionId to name in a RequestStartTransaction answer: the transaction
        already open on that EVSE (or, without an EVSE, the one the start just claimed)."""
        if evse_id is not None:
            local_id = self.station.open_local_id(evse_id)
        else:
            local_id = next(
                (
                    c.tx.local_id
                    for c in self.station.connectors.values()
                    if c.tx is not None and c.pending_id_tag == id_tag
                ),
                None,
            )
        return m.transaction_id(local_id, self.config.station.id) if local_id is not None else None

    async def transaction_status(self, transaction_id: str | None) -> tuple[bool, bool | None]:
        """(messagesInQueue, ongoingIndicator) for GetTransactionStatus."""
        pending = await self.store.pending(PENDING_SCAN)
        if transaction_id is None:
            return any(msg.kind in events.TRANSACTION_KINDS for msg in pending), None
        local_id = m.local_id_of(transaction_id, self.config.station.id)
        if local_id is None:
            return False, False
        in_queue = any(msg.local_tx_id == local_id for msg in pending)
        return in_queue, self.station.transaction_by_local_id(local_id) is not None

    # ---- calls -------------------------------------------------------------------------

    async def authorize_online(self, id_tag: str) -> IdTagInfo | None:
        if not self.accepted.is_set():
            return None
        try:
            answer = await self.send(
                "Authorize", {"idToken": {"idToken": id_tag, "type": "ISO14443"}}
            )
        except (CsmsCallError, TimeoutError, ConnectionError, ConnectionClosed) as exc:
            log.warning("Authorize for %s failed: %s", id_tag, exc)
            return None
        return _id_tag_info(answer.get("idTokenInfo"))

    # ---- connection lifecycle ----------------------------------------------------------

    async def _open(self) -> ClientConnection:
        ping = self.settings.number("WebSocketPingInterval")
        link_settings = self._security_settings()
        ws = await open_secured(
            self.security,
            self.config.station.id,
            SUBPROTOCOL,
            ping if ping > 0 else None,
        )
        self._link_settings = link_settings
        return ws

    def _make_cp(self, ws: ClientConnection) -> StationChargePoint:
        return StationChargePoint(self.config.station.id, ws, self)

    async def _work(self) -> None:
        await self._boot()
        self.station.resetting = False  # a reset ends with the new boot
        self._announce_statuses()
        heartbeat = asyncio.create_task(self._heartbeats(), name="heartbeat")
        try:
            await self._drain_forever()
        finally:
            await cancel_and_wait([heartbeat])

    def _announce_statuses(self) -> None:
        """After an accepted boot: the status of every connector, none of the stale ones
        queued while offline."""
        kept: list[tuple[str, dict[str, Any]]] = []
        while not self._volatile.empty():
            item = self._volatile.get_nowait()
            if item[0] not in ("StatusNotification", "Heartbeat"):
                kept.append(item)
        for item in kept:
            self._volatile.put_nowait(item)
        for report in self.station.status_reports():
            self._report_status(report, force=True)

    def _boot_payload(self, reason: str) -> dict[str, Any]:
        st = self.config.station
        charging_station: dict[str, Any] = {
            "model": st.model[:20],
            "vendorName": st.vendor[:50],
            "firmwareVersion": reported_version(Path(self.config.store.state_dir)),
        }
        if st.serial:
            charging_station["serialNumber"] = st.serial[:25]
        return {"chargingStation": charging_station, "reason": reason}

    async def _boot(self) -> None:
        """BootNotification until Accepted; while Pending the CSMS may configure the station,
        transaction messages wait (B02); while Rejected nothing else happens (B03)."""
        while True:
            reason = "Triggered" if self._boot_triggered else self._boot_reason
            if self.firmware is not None and self.firmware.rebooted:
                reason = "FirmwareUpdate"  # the boot after an installation (L01.FR.23)
            self._boot_triggered = False
            self._boot_retry.clear()
            answer = await self.send("BootNotification", self._boot_payload(reason))
            status = str(answer.get("status"))
            self.last_boot_status = status
            self.registration = status
            interval = int(answer.get("interval", 0))
            if status == "Accepted":
                if interval > 0:
                    self._heartbeat_interval = interval
                    await self.settings.change("HeartbeatInterval", str(interval))
                log.info("boot accepted by the CSMS (heartbeat %d s)", self._heartbeat_interval)
                if self.firmware is not None:
                    self.firmware.rebooted = False
                self.accepted.set()
                return
            wait = interval if interval > 0 else 60
            log.warning("boot %s by the CSMS; trying again in %d s", status, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._boot_retry.wait(), wait)

    # ---- the sender --------------------------------------------------------------------

    async def _send_durable(self, message: OutboxMessage) -> None:
        built = await self._build(message)
        if built is None:
            return
        action, payload = built
        try:
            checked = await check_call(action, payload, OCPP_VERSION)
        except OCPPError as exc:
            # never accepted by any CSMS: do not block the queue with retries
            cause = exc.details.get("cause") if isinstance(exc.details, dict) else None
            reason = f"{action} violates the OCPP 2.0.1 schema: {exc.code}: {cause or exc}"
            await self._give_up(message, reason[:500])
            return
        try:
            answer = await self.send(action, payload, checked=checked, quiet=self.draining_backlog)
        except TimeoutError:
            # no answer is no refusal: keep the message and reconnect
            log.warning("%s (outbox #%d) unanswered; reconnecting", action, message.seq)
            raise
        except CsmsCallError as exc:
            attempts = await self.store.record_attempt(message.seq, str(exc))
            limit = self.settings.number("TransactionMessageAttempts")
            if attempts >= limit:
                log.error(
                    "%s (outbox #%d) failed %d times; kept and flagged: %s",
                    action,
                    message.seq,
                    attempts,
                    exc,
                )
                await self._give_up(message, str(exc), logged=True)
            else:
                await asyncio.sleep(
                    self.settings.number("TransactionMessageRetryInterval") * attempts
                )
            return
        await self._handle_answer(message, payload, answer)
        await self.store.mark_sent(message.seq, response=answer)
        local_id = message.local_tx_id
        if local_id is None:
            return
        if message.kind == events.TRANSACTION_ENDED:
            await self._transaction_done(local_id)
        elif m.payload_carries_key(payload):
            await self._tx_flags.set("key_sent", local_id)

    async def _give_up(self, message: OutboxMessage, reason: str, logged: bool = False) -> None:
        """Flag a message that will not be sent (kept in the store with the reason)."""
        if not logged:
            log.error(
                "outbox #%d (%s) cannot be sent; flagged: %s", message.seq, message.kind, reason
            )
        await self.store.mark_failed(message.seq, reason)
        if message.kind == events.TRANSACTION_ENDED and message.local_tx_id is not None:
            await self._transaction_done(message.local_tx_id)

    async def _transaction_done(self, local_id: int) -> None:
        self._ended.add(local_id)
        await self._tx_flags.set("ended", local_id)

    async def _after_ended(self, local_id: int) -> bool:
        return local_id in self._ended or await self._tx_flags.get("ended", local_id)

    async def _build(self, message: OutboxMessage) -> tuple[str, dict[str, Any]] | None:
        """The TransactionEvent for an outbox message, or None when it was flagged failed."""
        data = message.data
        kind = message.kind
        local_id = message.local_tx_id
        if kind == OUTBOX_KIND:
            return security_event_message(data, OCPP_VERSION)
        if kind in UPDATE_KINDS:
            return update_message(kind, data, OCPP_VERSION)
        if kind not in events.TRANSACTION_KINDS:
            await self._give_up(message, f"unknown event kind {kind}")
            return None
        if local_id is None:
            await self._give_up(message, f"{kind} names no transaction")
            return None
        if kind != events.TRANSACTION_ENDED and await self._after_ended(local_id):
            # only a TriggerMessage can queue one so late; nothing follows an Ended
            await self._give_up(message, "queued after the Ended of its transaction")
            return None
        station_id = self.config.station.id
        try:
            tid = m.transaction_id(local_id, station_id)
            seq_no = await self.store.message_index(message.seq, local_id)
            offline = bool(data.get("offline", False))
            key_mode = str(
                data.get("public_key_mode") or self.settings.raw("PublicKeyWithSignedMeterValue")
            )
            key_sent = await self._tx_flags.get("key_sent", local_id)
            common: dict[str, Any] = {"seq_no": seq_no, "transaction_id": tid, "offline": offline}
            if kind == events.TRANSACTION_STARTED:
                payload = m.started(
                    data,
                    **common,
                    sign_started=bool(data["sign_started"])
                    if data.get("sign_started") is not None
                    else self.settings.flag("SampledDataSignStartedReadings"),
                    key_mode=key_mode,
                )
            elif kind == events.TRANSACTION_BEGIN_SIGNED:
                payload = m.updated_begin_signed(
                    data, **common, key_mode=key_mode, key_already_sent=key_sent
                )
            elif kind == events.TRANSACTION_AUTHORIZED:
                payload = m.updated_authorized(data, **common)
            elif kind == events.TRANSACTION_METER_VALUES:
                payload = m.updated_meter_values(data, **common)
            elif kind == events.TRANSACTION_CHARGING_ENDED:
                payload = m.updated_charging_ended(data, **common)
            else:
                payload = m.ended(data, **common, key_already_sent=key_sent)
        except m.SignedValueTooLong as exc:
            log.error(
                "outbox #%d (%s): the signed value does not fit OCPP 2.0.1: %s",
                message.seq,
                kind,
                exc,
            )
            await self._give_up(message, str(exc), logged=True)
            return None
        except (KeyError, TypeError, ValueError) as exc:
            await self._give_up(message, f"malformed {kind} event: {type(exc).__name__}: {exc}")
            return None
        return "TransactionEvent", payload

    async def _handle_answer(
        self, message: OutboxMessage, payload: dict[str, Any], answer: dict[str, Any]
    ) -> None:
        info = _id_tag_info(answer.get("idTokenInfo"))
        if info is None:
            return
        token = payload.get("idToken") or {}
        id_tag = str(token.get("idToken") or "")
        if id_tag and token.get("type") != "NoAuthorization":
            await self.authorizer.remember(id_tag, info)
        local_id = message.local_tx_id
        if (
            info.status is not AuthStatus.ACCEPTED
            and message.kind in (events.TRANSACTION_STARTED, events.TRANSACTION_AUTHORIZED)
            and local_id is not None
        ):
            log.warning(
                "CSMS answered the id token of transaction %s with %s",
                payload["transactionInfo"]["transactionId"],
                info.status,
            )
            await self.station.deauthorized(local_id)

    # ---- requested messages: TriggerMessage, GetBaseReport, reconnect, Reset ------------

    def _requested(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Messages the CSMS asked for: queued once the boot is accepted, sent at once while
        it is Pending (B02: requested messages may go out then)."""
        if not items:
            return
        if self.accepted.is_set():
            for item in items:
                self._volatile.put_nowait(item)
            self._outbox_event.set()
        else:
            self._own(self._send_now(list(items)), f"requested {items[0][0]}")

    async def _send_now(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        for action, payload in items:
            try:
                await self.send(action, payload)
            except (CsmsCallError, TimeoutError, ConnectionError, ConnectionClosed) as exc:
                log.warning("requested %s not delivered: %s", action, exc)
                return

    def start_report(self, request_id: int, report_base: str) -> None:
        pages = self.device_model.notify_report_pages(request_id, report_base, utc_now())
        self._requested([("NotifyReport", page) for page in pages])

    def start_reconnect(self, why: str) -> None:
        self._own(self._reconnect(why), "reconnect")

    async def _reconnect(self, why: str) -> None:
        """Close the websocket; the next connection uses the settings now in force."""
        log.warning("reconnecting to the CSMS: %s", why)
        ws = self.ws
        if ws is not None:
            await ws.close()

    def start_triggered(self, requested: str, evse_id: int | None) -> None:
        self._own(self.triggered(requested, evse_id), f"TriggerMessage {requested}")

    def start_reset(self, immediate: bool = True) -> None:
        self.security.events.record_soon(
            SecurityEventType.RESET_OR_REBOOT,
            f"{'immediate' if immediate else 'on idle'} reset by the CSMS",
        )
        if self._onidle_reset is not None and not self._onidle_reset.done():
            if not immediate:
                return  # one OnIdle reset is already waiting
            self._onidle_reset.cancel()
        task = self._own(self.reset(immediate), "reset")
        if not immediate:
            self._onidle_reset = task

    async def triggered(self, requested: str, evse_id: int | None) -> None:
        targets = [evse_id] if evse_id is not None else sorted(self.station.connectors)
        if requested == "BootNotification":
            if self.registration != "Accepted":
                self._boot_triggered = True
                self._boot_retry.set()
        elif requested == "Heartbeat":
            self._requested([("Heartbeat", {})])
        elif requested == "StatusNotification":
            reports = [r for r in self.station.status_reports() if r.connector_id in targets]
            items = []
            for report in reports:
                status = m.connector_status(report.status.value)
                self._reported[report.connector_id] = status
                items.append(("StatusNotification", self._status_payload(report, status)))
            self._requested(items)
        elif requested == "MeterValues":
            items = []
            for cid in targets:
                try:
                    samples = await self.station.read_meter(cid)
                except Exception as exc:
                    log.warning("triggered MeterValues for EVSE %d failed: %s", cid, exc)
                    continue
                if samples:
                    items.append(
                        ("MeterValues", m.meter_values(cid, utc_now(), "Trigger", samples))
                    )
            self._requested(items)
        elif requested == "TransactionEvent":
            await self._trigger_transaction_events(evse_id)
        elif requested == "SignChargingStationCertificate":
            self.security.signing.request("TriggerMessage from the CSMS")
        elif requested == "LogStatusNotification":
            self._requested([log_trigger(self.logs, OCPP_VERSION, diagnostics=False)])
        elif requested == "FirmwareStatusNotification":
            self._requested([firmware_trigger(self.firmware, OCPP_VERSION)])

    async def _trigger_transaction_events(self, evse_id: int | None) -> None:
        """An Updated (triggerReason Trigger) for each open transaction, through the durable
        outbox so that its seqNo fits between the transaction's other messages."""
        for cid, local_id in self.open_transactions(evse_id):
            samples: list[events.Sample] = []
            try:
                samples = await self.station.read_meter(cid)
            except Exception as exc:
                log.warning("triggered TransactionEvent for EVSE %d: no reading: %s", cid, exc)
            if self.station.open_local_id(cid) != local_id:
                continue  # ended meanwhile
            await self.store.enqueue(
                events.TRANSACTION_METER_VALUES,
                events.meter_values(
                    connector_id=cid, timestamp=utc_now(), context="Trigger", samples=samples
                ),
                local_tx_id=local_id,
            )
        self._outbox_event.set()

    async def reset(self, immediate: bool = True) -> None:
        """Immediate: end every transaction (signed), deliver its Ended, then start a new
        OCPP session with a BootNotification reason RemoteReset (B11). OnIdle: the same once
        no transaction is open or starting (B12)."""
        if not immediate:
            if self.station.busy():
                log.warning("reset OnIdle scheduled by the CSMS; waiting for the station to idle")
            while self.station.busy():  # noqa: ASYNC110
                await asyncio.sleep(IDLE_POLL_S)
        log.warning("%s reset requested by the CSMS", "immediate" if immediate else "idle")
        self._boot_reason = "RemoteReset"
        await self.station.end_all(StopReason.HARD_RESET if immediate else StopReason.SOFT_RESET)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESET_FLUSH_TIMEOUT_S
        while await self.store.outbox_length() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        ws = self.ws
        if ws is not None:
            await ws.close()
